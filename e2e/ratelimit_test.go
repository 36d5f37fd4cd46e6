package e2e

import (
	"fmt"
	"net/http"
	"testing"
)

// PocketBase's HTTP rate limiter is on by default for sign-ups and
// sign-ins, per client address; superusers are not limited, and
// exempting an address in the settings keeps the chat's rules.
func TestHTTPRateLimits(t *testing.T) {
	srv := StartServer(t, WithHTTPRateLimits())
	super := srv.SuperToken() // superusers' sign-ins are counted apart from users'

	signUp := func(i int) int {
		return srv.Do("POST", "/api/collections/users/records", "", map[string]any{
			"name": "User", "email": fmt.Sprintf("user%d@example.com", i),
			"password": "correct-horse-42", "passwordConfirm": "correct-horse-42",
		}, nil)
	}
	for i := range 10 {
		if code := signUp(i); code != http.StatusOK {
			t.Fatalf("sign-up %d: %d, want 200", i+1, code)
		}
	}
	resp, body := restRaw(srv, "POST", "/api/collections/users/records", "", map[string]any{
		"name": "User", "email": "user10@example.com", "password": "correct-horse-42", "passwordConfirm": "correct-horse-42",
	})
	if resp.StatusCode != http.StatusTooManyRequests || jsonInt(body["status"]) != http.StatusTooManyRequests {
		t.Fatalf("11th sign-up in a minute: %d %v, want a 429 JSON error", resp.StatusCode, body)
	}
	// Superusers (the dashboard) are not limited.
	srv.MustDo("POST", "/api/collections/users/records", super, map[string]any{
		"name": "Admin-made", "email": "made@example.com", "password": "correct-horse-42", "passwordConfirm": "correct-horse-42",
	}, nil)

	signIn := func() int {
		return srv.Do("POST", "/api/collections/users/auth-with-password", "", map[string]any{
			"identity": "user0@example.com", "password": "correct-horse-42",
		}, nil)
	}
	for i := range 20 {
		if code := signIn(); code != http.StatusOK {
			t.Fatalf("sign-in %d: %d, want 200", i+1, code)
		}
	}
	if code := signIn(); code != http.StatusTooManyRequests {
		t.Fatalf("21st sign-in in a minute: %d, want 429", code)
	}

	var settings struct {
		RateLimits struct {
			Enabled     bool
			ExcludedIPs []string
			Rules       []struct{ Label string }
		}
	}
	srv.MustDo("GET", "/api/settings", super, nil, &settings)
	if rl := settings.RateLimits; !rl.Enabled || len(rl.Rules) != 3 || len(rl.ExcludedIPs) != 0 {
		t.Errorf("settings: %+v, want the 3 rules on and no exempt address", rl)
	}
}

// Exempting loopback in the settings, as the other tests' servers do,
// keeps the chat's rules and lets sign-ins through.
func TestHTTPRateLimitsExemptAddresses(t *testing.T) {
	srv := StartServer(t)
	var settings struct {
		RateLimits struct {
			Enabled     bool
			ExcludedIPs []string
			Rules       []struct{ Label string }
		}
	}
	srv.MustDo("GET", "/api/settings", srv.SuperToken(), nil, &settings)
	if rl := settings.RateLimits; !rl.Enabled || len(rl.Rules) != 3 || len(rl.ExcludedIPs) != 2 {
		t.Fatalf("settings: %+v, want the 3 rules on and 2 exempt addresses", rl)
	}
	u := srv.NewUser("Alice")
	for i := range 21 { // one more than the limit
		if code := signIn(srv, u); code != http.StatusOK {
			t.Fatalf("sign-in %d from an exempt address: %d", i+1, code)
		}
	}
}
