package pb_migrations_test

import (
	"net/http"
	"slices"
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"pocketchat/pb_migrations"
)

const botUserMigration = "1763700002_bot_user.go"

// botUsers returns the accounts flagged as bots.
func botUsers(t *testing.T, app core.App) []*core.Record {
	t.Helper()
	recs, err := app.FindAllRecords("users", dbx.HashExp{"bot": true})
	if err != nil {
		t.Fatal(err)
	}
	return recs
}

func mustBot(t *testing.T, app core.App) *core.Record {
	t.Helper()
	bots := botUsers(t, app)
	if len(bots) != 1 {
		t.Fatalf("got %d bot users, want 1", len(bots))
	}
	return bots[0]
}

// passwordHash is the stored hash of an auth record's password.
func passwordHash(r *core.Record) string {
	if v, ok := r.GetRaw(core.FieldNamePassword).(*core.PasswordFieldValue); ok {
		return v.Hash
	}
	return ""
}

// botMigration returns the registered bot user migration.
func botMigration(t *testing.T) *core.Migration {
	t.Helper()
	i := slices.IndexFunc(core.AppMigrations.Items(), func(m *core.Migration) bool { return m.File == botUserMigration })
	if i < 0 {
		t.Fatalf("%s not registered", botUserMigration)
	}
	return core.AppMigrations.Item(i)
}

func TestBotUser(t *testing.T) {
	t.Parallel()
	app := newApp(t) // migrated from an empty dir, like TestSchema's

	bot := mustBot(t, app)
	if got, want := bot.Email(), pb_migrations.BotEmail; got != want {
		t.Errorf("email: got %q, want %q", got, want)
	}
	if got, want := bot.GetString("name"), "bot"; got != want {
		t.Errorf("name: got %q, want %q", got, want)
	}
	if bot.GetBool("banned") || bot.EmailVisibility() {
		t.Errorf("banned %v, emailVisibility %v: want both false", bot.GetBool("banned"), bot.EmailVisibility())
	}
	if passwordHash(bot) == "" || bot.TokenKey() == "" {
		t.Errorf("password hash or token key missing")
	}
	for _, guess := range []string{"", "bot", "password", "12345678", pb_migrations.BotEmail} {
		if bot.ValidatePassword(guess) {
			t.Errorf("the bot's password is %q", guess)
		}
	}
}

// TestBotUserUpTwice: re-running up keeps the account and what the server
// or an operator changed on it.
func TestBotUserUpTwice(t *testing.T) {
	t.Parallel()
	app := newApp(t)
	bot := mustBot(t, app)
	bot.Set("name", "小爱")
	bot.Set("banned", true)
	hash := passwordHash(bot)
	if err := app.Save(bot); err != nil {
		t.Fatal(err)
	}
	if err := app.RunInTransaction(botMigration(t).Up); err != nil {
		t.Fatalf("re-running up: %v", err)
	}
	again := mustBot(t, app)
	if again.Id != bot.Id || again.GetString("name") != "小爱" || !again.GetBool("banned") || passwordHash(again) != hash {
		t.Errorf("got %s %q banned=%v, want %s %q banned=true and the same password", again.Id, again.GetString("name"), again.GetBool("banned"), bot.Id, "小爱")
	}

	// An account that lost its flag gets it back.
	again.Set("bot", false)
	if err := app.Save(again); err != nil {
		t.Fatal(err)
	}
	if err := app.RunInTransaction(botMigration(t).Up); err != nil {
		t.Fatalf("re-running up: %v", err)
	}
	if got := mustBot(t, app).Id; got != bot.Id {
		t.Errorf("bot id: got %s, want %s", got, bot.Id)
	}
}

// TestBotUserDown: down removes the account (its messages stay, without
// an author), a second down is harmless, and up creates it again.
func TestBotUserDown(t *testing.T) {
	t.Parallel()
	app := newApp(t)
	bot := mustBot(t, app)
	general, err := app.FindFirstRecordByData("rooms", "name", pb_migrations.GeneralRoomName)
	if err != nil {
		t.Fatal(err)
	}
	msg := core.NewRecord(mustCollection(t, app, "messages"))
	msg.Load(map[string]any{"room": general.Id, "author": bot.Id, "text": "beep", "kind": "bot"})
	if err := app.Save(msg); err != nil {
		t.Fatal(err)
	}

	m := botMigration(t)
	for i := range 2 {
		if err := app.RunInTransaction(m.Down); err != nil {
			t.Fatalf("down %d: %v", i+1, err)
		}
	}
	if got := botUsers(t, app); len(got) != 0 {
		t.Errorf("got %d bot users after down, want 0", len(got))
	}
	kept, err := app.FindRecordById("messages", msg.Id)
	if err != nil {
		t.Fatalf("the bot's message is gone: %v", err)
	}
	if got := kept.GetString("author"); got != "" {
		t.Errorf("author of the bot's message: got %q, want none", got)
	}

	if err := app.RunInTransaction(m.Up); err != nil {
		t.Fatalf("up: %v", err)
	}
	if got := mustBot(t, app); got.Id == bot.Id {
		t.Errorf("got the old id %s, want a new account", got.Id)
	}
}

// TestBotUserRules: people see the bot's name, never its email, and
// cannot change it.
func TestBotUserRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bot := mustBot(t, f.app)
	botURL := "/api/collections/users/records/" + bot.Id
	f.run(t, []apiCase{
		{name: "user views the bot", method: http.MethodGet, url: botURL, as: "Bob",
			wantStatus: http.StatusOK, want: []string{`"name":"bot"`, `"bot":true`}, notWant: []string{pb_migrations.BotEmail}},
		{name: "user lists users", method: http.MethodGet, url: "/api/collections/users/records?filter=(bot=true)", as: "Bob",
			wantStatus: http.StatusOK, want: []string{`"totalItems":1`, bot.Id}, notWant: []string{pb_migrations.BotEmail}},
		{name: "user renames the bot", method: http.MethodPatch, url: botURL, as: "Bob", body: `{"name":"evil"}`,
			wantStatus: http.StatusNotFound},
		{name: "user deletes the bot", method: http.MethodDelete, url: botURL, as: "Bob",
			wantStatus: http.StatusNotFound},
		{name: "sign in as the bot", method: http.MethodPost, url: "/api/collections/users/auth-with-password",
			body: `{"identity":"` + pb_migrations.BotEmail + `","password":"password123"}`, wantStatus: http.StatusBadRequest},
	})
	if got := mustBot(t, f.app).GetString("name"); got != "bot" {
		t.Errorf("bot name: got %q, want %q", got, "bot")
	}
}
