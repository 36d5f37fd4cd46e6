package pb_migrations

import (
	"slices"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// HTTP rate limits. PocketBase's limiter ships turned off; the chat turns
// it on for what scripts abuse first: signing up, signing in (password,
// OAuth2, OTP) and creating records (REST messages, images, rooms). It
// counts requests per client address (behind a proxy, as the trusted
// proxy settings resolve it) over fixed windows. A user's REST messages
// also share their chat send allowance; superusers are never limited.
// The rules can be changed in the dashboard (Settings → Rate limiting);
// a limiter already turned on there is left as it is.
var rateLimitRules = []core.RateLimitRule{
	{Label: "users:create", MaxRequests: 10, Duration: 60}, // sign-ups
	{Label: "*:auth", MaxRequests: 20, Duration: 60},       // sign-ins
	{Label: "*:create", MaxRequests: 60, Duration: 10},     // other creates
}

func init() {
	m.Register(rateLimitsUp, rateLimitsDown)
}

func rateLimitsUp(app core.App) error {
	settings := app.Settings()
	if settings.RateLimits.Enabled {
		return nil
	}
	settings.RateLimits.Enabled = true
	settings.RateLimits.Rules = slices.Clone(rateLimitRules)
	return app.Save(settings)
}

// rateLimitsDown turns the limiter off again if it still has our rules.
// Settings already off are not saved again: a save reloads the settings
// of the running app, which is worth doing only for a change.
func rateLimitsDown(app core.App) error {
	settings := app.Settings()
	if !settings.RateLimits.Enabled || !slices.Equal(settings.RateLimits.Rules, rateLimitRules) {
		return nil
	}
	settings.RateLimits.Enabled = false
	return app.Save(settings)
}
