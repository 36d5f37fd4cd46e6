package pb_migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
	"github.com/pocketbase/pocketbase/tools/types"
)

// Moderation: users get muted_until, a date set from the dashboard. Until
// then the user can read but not write: the update rule below refuses
// their edits, and the chat refuses their creates on every path with the
// time the mute ends (a 403 for REST, before the create rule is checked,
// and the messages' create hook for anything else). The create rule
// leaves mutes out: it could only answer a bare 400. Like banned, it is the moderators' field: users
// cannot set it on sign-up nor change it on update. Banned users can no
// longer update their own record either (a new avatar is an upload).
const (
	// notMuted is true for a request whose user is not muted now. An
	// unset date field is "" in rules.
	notMuted = `(@request.auth.muted_until = "" || @request.auth.muted_until <= @now)`

	usersCreateRuleModerated = usersCreateRule +
		` && (@request.body.muted_until:isset = false || @request.body.muted_until = "")`
	usersUpdateRuleModerated = usersUpdateRule + ` && banned = false` +
		` && (@request.body.muted_until:isset = false || @request.body.muted_until = muted_until)`
	messagesUpdateRuleModerated = messagesUpdateRule + ` && ` + notMuted
)

func init() {
	m.Register(moderationUp, moderationDown)
}

func moderationUp(app core.App) error {
	users, err := app.FindCollectionByNameOrId(usersCollectionId)
	if err != nil {
		return fmt.Errorf("find users collection: %w", err)
	}
	if _, ok := users.Fields.GetByName("muted_until").(*core.DateField); !ok {
		users.Fields.Add(&core.DateField{Name: "muted_until"})
	}
	users.CreateRule = types.Pointer(usersCreateRuleModerated)
	users.UpdateRule = types.Pointer(usersUpdateRuleModerated)
	if err := app.Save(users); err != nil {
		return fmt.Errorf("save users collection: %w", err)
	}
	return setMessageUpdateRule(app, messagesUpdateRuleModerated)
}

func moderationDown(app core.App) error {
	users, err := findCollection(app, usersCollectionId)
	if err != nil {
		return err
	}
	// Already reverted (or never applied): the rules to restore may name
	// fields an earlier down removed.
	if users == nil || users.Fields.GetByName("muted_until") == nil {
		return nil
	}
	users.Fields.RemoveByName("muted_until")
	users.CreateRule = types.Pointer(usersCreateRule)
	users.UpdateRule = types.Pointer(usersUpdateRule)
	if err := app.Save(users); err != nil {
		return fmt.Errorf("save users collection: %w", err)
	}
	return setMessageUpdateRule(app, messagesUpdateRule)
}

func setMessageUpdateRule(app core.App, update string) error {
	messages, err := findCollection(app, messagesCollection)
	if err != nil || messages == nil {
		return err
	}
	messages.UpdateRule = types.Pointer(update)
	if err := app.Save(messages); err != nil {
		return fmt.Errorf("save messages collection: %w", err)
	}
	return nil
}
