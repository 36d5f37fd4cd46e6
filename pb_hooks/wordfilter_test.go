package pb_hooks_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/plugins/jsvm"
	"github.com/pocketbase/pocketbase/tests"

	_ "pocketchat/pb_migrations"
)

const envVar = "CHAT_WORDFILTER"

// newHookedApp returns a migrated test app with the JS hooks of this folder
// loaded, plus a user and the General room to post with.
//
// jsvm binds the hook handlers when it is registered (its only bootstrap
// work is writing types.d.ts), and the file binds them only if
// CHAT_WORDFILTER lists a word: set the variable before calling this.
func newHookedApp(t *testing.T) (app *tests.TestApp, author, room *core.Record) {
	t.Helper()
	app, err := tests.NewTestApp(t.TempDir()) // runs pb_migrations
	if err != nil {
		t.Fatalf("NewTestApp: %v", err)
	}
	t.Cleanup(app.Cleanup)

	hooksDir, err := filepath.Abs(".") // go test runs in the package dir
	if err != nil {
		t.Fatal(err)
	}
	if err := jsvm.Register(app, jsvm.Config{
		HooksDir:      hooksDir,
		HooksPoolSize: 2,
		MigrationsDir: t.TempDir(), // empty: no JS migrations
		TypesDir:      t.TempDir(), // keep types.d.ts out of the source tree
	}); err != nil {
		t.Fatalf("jsvm.Register: %v", err)
	}

	users, err := app.FindCollectionByNameOrId("users")
	if err != nil {
		t.Fatal(err)
	}
	// Test-only: cheapest bcrypt cost, creating the user is not under test.
	users.Fields.GetByName("password").(*core.PasswordField).Cost = 4
	if err := app.Save(users); err != nil {
		t.Fatal(err)
	}
	author = core.NewRecord(users)
	author.SetEmail("writer@example.com")
	author.SetPassword("password123")
	author.Set("name", "Writer")
	if err := app.Save(author); err != nil {
		t.Fatalf("create user: %v", err)
	}

	room, err = app.FindFirstRecordByData("rooms", "name", "General")
	if err != nil {
		t.Fatalf("find General: %v", err)
	}
	return app, author, room
}

// post saves a message through app.Save, which fires onRecordCreate.
func post(t *testing.T, app core.App, author, room *core.Record, text string) *core.Record {
	t.Helper()
	messages, err := app.FindCollectionByNameOrId("messages")
	if err != nil {
		t.Fatal(err)
	}
	m := core.NewRecord(messages)
	m.Load(map[string]any{"room": room.Id, "author": author.Id, "text": text, "kind": "user"})
	if err := app.Save(m); err != nil {
		t.Fatalf("save message %q: %v", text, err)
	}
	return m
}

func storedText(t *testing.T, app core.App, m *core.Record) string {
	t.Helper()
	fresh, err := app.FindRecordById("messages", m.Id)
	if err != nil {
		t.Fatal(err)
	}
	return fresh.GetString("text")
}

func TestWordFilterOnCreate(t *testing.T) {
	cases := []struct {
		name   string
		filter string
		unset  bool
		text   string
		want   string
	}{
		{"masks listed words, any case", "darn", false, "you Darn fool, darn!", "you **** fool, ****!"},
		{"whole words only", "darn", false, "darned undarn Darnit", "darned undarn Darnit"},
		{"several words, spaces and empty entries in the list", " DARN , ,heck ", false, "Heck, darn it. HECK", "****, **** it. ****"},
		{"unicode letters are word characters", "école", false, "ÉCOLE école écoles préécole", "***** ***** écoles préécole"},
		{"decomposed input is matched after NFC", "école", false, "e\u0301cole!", "*****!"},
		{"regex characters are literal", "c++,a.b", false, "c++ and a.b, not axb or c", "*** and ***, not axb or c"},
		{"non-latin script", "блин", false, "Блин, блины", "****, блины"},
		{"empty list does nothing", "", false, "you Darn fool, darn!", "you Darn fool, darn!"},
		{"list of blanks does nothing", " , ", false, "you Darn fool", "you Darn fool"},
		{"unset does nothing", "", true, "you Darn fool, darn!", "you Darn fool, darn!"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Setenv(envVar, c.filter) // restored after the subtest
			if c.unset {
				os.Unsetenv(envVar)
			}
			app, author, room := newHookedApp(t)
			m := post(t, app, author, room, c.text)
			if got := storedText(t, app, m); got != c.want {
				t.Errorf("%s=%q, text %q: got %q, want %q", envVar, c.filter, c.text, got, c.want)
			}
		})
	}
}

func TestWordFilterOnUpdate(t *testing.T) {
	t.Setenv(envVar, "darn")
	app, author, room := newHookedApp(t)

	m := post(t, app, author, room, "all fine")
	if got, want := storedText(t, app, m), "all fine"; got != want {
		t.Errorf("created: got %q, want %q", got, want)
	}
	m.Set("text", "edited: darn it")
	if err := app.Save(m); err != nil {
		t.Fatalf("update: %v", err)
	}
	if got, want := storedText(t, app, m), "edited: **** it"; got != want {
		t.Errorf("after edit: got %q, want %q", got, want)
	}
}

// Without a list the handlers are not bound: a message save runs no
// JavaScript. The list is read at startup, so setting it later does not
// turn the filter on.
func TestWordFilterUnboundWithoutList(t *testing.T) {
	t.Setenv(envVar, " , ")
	app, author, room := newHookedApp(t)
	t.Setenv(envVar, "darn")
	m := post(t, app, author, room, "darn")
	if got, want := storedText(t, app, m), "darn"; got != want {
		t.Errorf("got %q, want %q: the filter was bound without a list", got, want)
	}
}
