package pb_migrations_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"pocketchat/pb_migrations"
)

// The migration files this package registers, in order.
var ourMigrations = []string{
	"1763700000_chat_schema.go",
	"1763700001_general_room.go",
	"1763700002_bot_user.go",
	"1763700003_moderation.go",
	"1763700004_rate_limits.go",
	"1763700005_protected_images.go",
}

// Rules as they must be stored. They are spelled out again here (instead of
// being imported) so that a change to a rule is a deliberate change to this
// file too.
const (
	usersCreate = `(@request.body.bot:isset = false || @request.body.bot = false)` +
		` && (@request.body.banned:isset = false || @request.body.banned = false)` +
		` && (@request.body.emailVisibility:isset = false || @request.body.emailVisibility = false)` +
		` && (@request.body.muted_until:isset = false || @request.body.muted_until = "")`
	usersUpdate = `id = @request.auth.id` +
		` && (@request.body.bot:isset = false || @request.body.bot = bot)` +
		` && (@request.body.banned:isset = false || @request.body.banned = banned)` +
		` && (@request.body.emailVisibility:isset = false || @request.body.emailVisibility = false)` +
		` && banned = false` +
		` && (@request.body.muted_until:isset = false || @request.body.muted_until = muted_until)`

	roomsRead   = `kind = "public" || (@request.auth.id != "" && members.id ?= @request.auth.id)`
	roomsCreate = `@request.auth.collectionName = "users" && @request.auth.banned = false && owner = @request.auth.id && (kind = "public" || kind = "private")`
	roomsUpdate = `@request.auth.collectionName = "users" && owner = @request.auth.id && kind != "direct" && (@request.body.owner:isset = false || @request.body.owner = @request.auth.id) && (@request.body.kind:isset = false || @request.body.kind != "direct")`
	roomsDelete = `@request.auth.collectionName = "users" && owner = @request.auth.id && kind != "direct"`

	messagesRead   = `room.kind = "public" || (@request.auth.id != "" && room.members.id ?= @request.auth.id)`
	messagesCreate = `@request.auth.collectionName = "users" && @request.auth.banned = false && author = @request.auth.id && (room.kind = "public" || room.members.id ?= @request.auth.id) && (@request.body.kind:isset = false || @request.body.kind = "user") && @request.body.seq:isset = false`
	messagesUpdate = `@request.auth.collectionName = "users" && @request.auth.banned = false && author = @request.auth.id && @request.body.room:isset = false && @request.body.author:isset = false && @request.body.kind:isset = false && @request.body.seq:isset = false && (@request.auth.muted_until = "" || @request.auth.muted_until <= @now)`
	messagesDelete = `@request.auth.collectionName = "users" && author = @request.auth.id`
)

var imageTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp"}

// templateDir is a data dir migrated once by TestMain. Creating and
// migrating a database costs about a second under -race while cloning this
// one costs under 0.1 s, so tests clone it. TestSchema still migrates
// from an empty dir of its own.
var templateDir string

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	empty, err := os.MkdirTemp("", "pb_migrations_test_*")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	app, err := tests.NewTestApp(empty) // migrates a copy of empty
	os.RemoveAll(empty)
	if err != nil {
		fmt.Fprintln(os.Stderr, "migrate template app:", err)
		return 1
	}
	templateDir = app.DataDir()
	defer os.RemoveAll(templateDir)
	if err := app.ResetBootstrapState(); err != nil { // close its databases
		fmt.Fprintln(os.Stderr, "close template app:", err)
		return 1
	}
	return m.Run()
}

// newApp returns a migrated app of its own, cloned from templateDir.
func newApp(t *testing.T) *tests.TestApp {
	t.Helper()
	return cloneApp(t, templateDir)
}

// cloneApp returns an app of its own on a copy of the data dir dir,
// migrated as at the start of `serve`.
func cloneApp(t *testing.T, dir string) *tests.TestApp {
	t.Helper()
	app, err := tests.NewTestApp(dir)
	if err != nil {
		t.Fatalf("NewTestApp: %v", err)
	}
	t.Cleanup(app.Cleanup)
	return app
}

// migrationsSince counts our migrations from file to the newest, the
// number runner.Down needs to revert file.
func migrationsSince(t *testing.T, file string) int {
	t.Helper()
	i := slices.Index(ourMigrations, file)
	if i < 0 {
		t.Fatalf("%s is not one of our migrations %q", file, ourMigrations)
	}
	return len(ourMigrations) - i
}

// newEmptyApp returns an app migrated from an empty data dir.
func newEmptyApp(t *testing.T) *tests.TestApp {
	t.Helper()
	app, err := tests.NewTestApp(t.TempDir())
	if err != nil {
		t.Fatalf("NewTestApp: %v", err)
	}
	t.Cleanup(app.Cleanup)
	return app
}

// mustGeneral returns the seeded General room.
func mustGeneral(t *testing.T, app core.App) *core.Record {
	t.Helper()
	general, err := app.FindFirstRecordByData("rooms", "name", "General")
	if err != nil {
		t.Fatal(err)
	}
	return general
}

func mustCollection(t *testing.T, app core.App, name string) *core.Collection {
	t.Helper()
	c, err := app.FindCollectionByNameOrId(name)
	if err != nil {
		t.Fatalf("FindCollectionByNameOrId(%q): %v", name, err)
	}
	return c
}

// checkFields compares the type and the listed JSON options (what the
// dashboard shows) of each listed field. Values are compared in their JSON
// form, so 50 matches a decoded 50.0 and a []string matches a JSON array.
func checkFields(t *testing.T, c *core.Collection, want map[string]map[string]any) {
	t.Helper()
	for name, wantProps := range want {
		f := c.Fields.GetByName(name)
		if f == nil {
			t.Errorf("%s: field %q missing", c.Name, name)
			continue
		}
		raw, err := json.Marshal(f)
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]any{}
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		got["type"] = f.Type() // the type is only in the fields list's JSON
		for k, w := range wantProps {
			if g, w := jsonOf(t, got[k]), jsonOf(t, w); g != w {
				t.Errorf("%s.%s %s: got %s, want %s", c.Name, name, k, g, w)
			}
		}
	}
}

func jsonOf(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func checkRules(t *testing.T, c *core.Collection, list, view, create, update, del string) {
	t.Helper()
	rules := []struct {
		name string
		got  *string
		want string
	}{
		{"ListRule", c.ListRule, list},
		{"ViewRule", c.ViewRule, view},
		{"CreateRule", c.CreateRule, create},
		{"UpdateRule", c.UpdateRule, update},
		{"DeleteRule", c.DeleteRule, del},
	}
	for _, r := range rules {
		if r.got == nil {
			t.Errorf("%s.%s: got nil (superusers only), want %q", c.Name, r.name, r.want)
			continue
		}
		if *r.got != r.want {
			t.Errorf("%s.%s:\n got %s\nwant %s", c.Name, r.name, *r.got, r.want)
		}
	}
}

// checkSchema verifies everything the chat schema migration promises.
func checkSchema(t *testing.T, app core.App) {
	t.Helper()

	users := mustCollection(t, app, "_pb_users_auth_")
	if users.Name != "users" || !users.IsAuth() {
		t.Errorf("users collection: got name %q type %q, want users/auth", users.Name, users.Type)
	}
	checkFields(t, users, map[string]map[string]any{
		"name":   {"type": "text", "required": true, "max": 50},
		"avatar": {"type": "file", "maxSelect": 1, "maxSize": 5242880, "mimeTypes": imageTypes, "thumbs": []string{"100x100"}},
		"bot":    {"type": "bool", "required": false},
		"banned": {"type": "bool", "required": false},
	})
	checkRules(t, users, `@request.auth.id != ""`, `@request.auth.id != ""`, usersCreate, usersUpdate, `id = @request.auth.id`)

	rooms := mustCollection(t, app, "rooms")
	if !rooms.IsBase() {
		t.Errorf("rooms: got type %q, want base", rooms.Type)
	}
	checkFields(t, rooms, map[string]map[string]any{
		"name":        {"type": "text", "required": true, "max": 100},
		"description": {"type": "text", "required": false, "max": 500},
		"kind":        {"type": "select", "required": true, "maxSelect": 1, "values": []string{"public", "private", "direct"}},
		"members":     {"type": "relation", "required": false, "maxSelect": 10000, "collectionId": users.Id, "cascadeDelete": false},
		"owner":       {"type": "relation", "required": false, "maxSelect": 1, "collectionId": users.Id, "cascadeDelete": false},
		"created":     {"type": "autodate", "onCreate": true, "onUpdate": false},
		"updated":     {"type": "autodate", "onCreate": true, "onUpdate": true},
	})
	checkRules(t, rooms, roomsRead, roomsRead, roomsCreate, roomsUpdate, roomsDelete)
	if got, want := rooms.Indexes, []string{"CREATE UNIQUE INDEX `idx_rooms_name` ON `rooms` (`name`)"}; !slices.Equal(got, want) {
		t.Errorf("rooms.Indexes:\n got %q\nwant %q", got, want)
	}

	messages := mustCollection(t, app, "messages")
	checkFields(t, messages, map[string]map[string]any{
		"room":    {"type": "relation", "required": true, "maxSelect": 1, "collectionId": rooms.Id, "cascadeDelete": true},
		"author":  {"type": "relation", "required": false, "maxSelect": 1, "collectionId": users.Id, "cascadeDelete": false},
		"text":    {"type": "text", "required": false, "max": 4000},
		"image":   {"type": "file", "maxSelect": 1, "maxSize": 5242880, "mimeTypes": imageTypes, "thumbs": []string{"200x200"}, "protected": true},
		"kind":    {"type": "select", "required": false, "maxSelect": 1, "values": []string{"user", "bot", "system"}},
		"seq":     {"type": "number", "required": false, "onlyInt": true},
		"created": {"type": "autodate", "onCreate": true, "onUpdate": false},
		"updated": {"type": "autodate", "onCreate": true, "onUpdate": true},
	})
	checkRules(t, messages, messagesRead, messagesRead, messagesCreate, messagesUpdate, messagesDelete)
	wantIdx := []string{
		"CREATE INDEX `idx_messages_room_created` ON `messages` (`room`, `created`)",
		"CREATE UNIQUE INDEX `idx_messages_room_seq` ON `messages` (`room`, `seq`) WHERE `seq` > 0",
	}
	if got := messages.Indexes; !slices.Equal(got, wantIdx) {
		t.Errorf("messages.Indexes:\n got %q\nwant %q", got, wantIdx)
	}

	// The indexes must exist in SQLite too, not only in the collection JSON.
	for _, name := range []string{"idx_rooms_name", "idx_messages_room_created", "idx_messages_room_seq"} {
		var sqlText string
		err := app.DB().Select("sql").From("sqlite_master").
			Where(dbx.HashExp{"type": "index", "name": name}).Row(&sqlText)
		if err != nil {
			t.Errorf("index %s not in sqlite_master: %v", name, err)
		}
		if name == "idx_messages_room_seq" && !strings.Contains(sqlText, "WHERE `seq` > 0") {
			t.Errorf("index %s: got %q, want a partial index WHERE `seq` > 0", name, sqlText)
		}
	}
}

func countGeneral(t *testing.T, app core.App) int64 {
	t.Helper()
	n, err := app.CountRecords("rooms", dbx.HashExp{"name": pb_migrations.GeneralRoomName})
	if err != nil {
		t.Fatalf("count General: %v", err)
	}
	return n
}

func TestMigrationsRegistered(t *testing.T) {
	t.Parallel()
	var got []string
	for _, m := range core.AppMigrations.Items() {
		if slices.Contains(ourMigrations, m.File) {
			got = append(got, m.File)
		}
	}
	if !slices.Equal(got, ourMigrations) {
		t.Fatalf("registered migrations: got %q, want %q", got, ourMigrations)
	}
}

func TestSchema(t *testing.T) {
	t.Parallel()
	app := newEmptyApp(t)
	checkSchema(t, app)
	checkRateLimits(t, app)

	if got, want := countGeneral(t, app), int64(1); got != want {
		t.Fatalf("General rooms: got %d, want %d", got, want)
	}
	general := mustGeneral(t, app)
	if got, want := general.GetString("kind"), "public"; got != want {
		t.Errorf("General kind: got %q, want %q", got, want)
	}
	if got, want := general.GetString("description"), "Everyone's room"; got != want {
		t.Errorf("General description: got %q, want %q", got, want)
	}
}

// TestSeqIndexIsPartial: unnumbered messages (seq 0) may share a room, a
// real seq may not repeat within a room but may in another room.
func TestSeqIndexIsPartial(t *testing.T) {
	t.Parallel()
	app := newApp(t)
	general := mustGeneral(t, app)
	other := core.NewRecord(mustCollection(t, app, "rooms"))
	other.Load(map[string]any{"name": "Other", "kind": "public"})
	if err := app.Save(other); err != nil {
		t.Fatal(err)
	}
	messages := mustCollection(t, app, "messages")

	save := func(roomId string, seq int) error {
		m := core.NewRecord(messages)
		m.Load(map[string]any{"room": roomId, "text": "x", "seq": seq})
		return app.Save(m)
	}
	steps := []struct {
		room    string
		seq     int
		wantErr bool
	}{
		{general.Id, 0, false},
		{general.Id, 0, false}, // unnumbered rows never collide
		{general.Id, 1, false},
		{general.Id, 1, true}, // duplicate seq in one room
		{other.Id, 1, false},  // same seq, other room
	}
	for i, s := range steps {
		err := save(s.room, s.seq)
		if got := err != nil; got != s.wantErr {
			t.Errorf("step %d (seq %d): got err %v, want error %v", i, s.seq, err, s.wantErr)
		}
	}

	// Duplicate room names are refused by the unique index.
	dup := core.NewRecord(mustCollection(t, app, "rooms"))
	dup.Load(map[string]any{"name": "General", "kind": "public"})
	if err := app.Save(dup); err == nil {
		t.Errorf("second room named General: got no error, want a unique violation")
	}
}

// TestUpTwiceIsHarmless re-runs both up functions on a migrated database
// that already holds data, and re-runs the whole migration list.
func TestUpTwiceIsHarmless(t *testing.T) {
	t.Parallel()
	app := newApp(t)

	general := mustGeneral(t, app)
	msg := core.NewRecord(mustCollection(t, app, "messages"))
	msg.Load(map[string]any{"room": general.Id, "text": "still here"})
	if err := app.Save(msg); err != nil {
		t.Fatal(err)
	}
	fieldIds := map[string]string{}
	for _, f := range mustCollection(t, app, "messages").Fields {
		fieldIds[f.GetName()] = f.GetId()
	}

	for _, m := range core.AppMigrations.Items() {
		if !slices.Contains(ourMigrations, m.File) {
			continue
		}
		if err := app.RunInTransaction(m.Up); err != nil {
			t.Fatalf("re-running up of %s: %v", m.File, err)
		}
	}
	if err := app.RunAllMigrations(); err != nil {
		t.Fatalf("RunAllMigrations again: %v", err)
	}

	checkSchema(t, app)
	if got, want := countGeneral(t, app), int64(1); got != want {
		t.Errorf("General rooms: got %d, want %d", got, want)
	}
	again, err := app.FindFirstRecordByData("rooms", "name", "General")
	if err != nil {
		t.Fatal(err)
	}
	if again.Id != general.Id {
		t.Errorf("General id: got %s, want %s (unchanged)", again.Id, general.Id)
	}
	kept, err := app.FindRecordById("messages", msg.Id)
	if err != nil {
		t.Fatalf("message lost by re-running up: %v", err)
	}
	if got, want := kept.GetString("text"), "still here"; got != want {
		t.Errorf("message text: got %q, want %q", got, want)
	}
	for _, f := range mustCollection(t, app, "messages").Fields {
		if got, want := f.GetId(), fieldIds[f.GetName()]; got != want {
			t.Errorf("messages.%s id: got %s, want %s (a changed id means the column was recreated)", f.GetName(), got, want)
		}
	}
}

// TestDownThenUp reverts both migrations through the migrations runner on a
// database with data in it, checks that users is back to PocketBase's
// defaults, and applies them again.
func TestDownThenUp(t *testing.T) {
	t.Parallel()
	app := newApp(t)
	general := mustGeneral(t, app)
	msg := core.NewRecord(mustCollection(t, app, "messages"))
	msg.Load(map[string]any{"room": general.Id, "text": "bye"})
	if err := app.Save(msg); err != nil {
		t.Fatal(err)
	}

	runner := core.NewMigrationsRunner(app, core.AppMigrations)
	reverted, err := runner.Down(len(ourMigrations))
	if err != nil {
		t.Fatalf("Down: %v", err)
	}
	wantReverted := slices.Clone(ourMigrations)
	slices.Reverse(wantReverted)
	if !slices.Equal(reverted, wantReverted) {
		t.Fatalf("reverted: got %q, want %q", reverted, wantReverted)
	}

	for _, name := range []string{"rooms", "messages"} {
		if _, err := app.FindCollectionByNameOrId(name); err == nil {
			t.Errorf("collection %s still exists after down", name)
		}
	}
	users := mustCollection(t, app, "users")
	for _, name := range []string{"bot", "banned"} {
		if users.Fields.GetByName(name) != nil {
			t.Errorf("users.%s still exists after down", name)
		}
	}
	checkFields(t, users, map[string]map[string]any{
		"name":   {"type": "text", "required": false, "max": 255},
		"avatar": {"type": "file", "maxSelect": 1, "maxSize": 0, "mimeTypes": []string{"image/jpeg", "image/png", "image/svg+xml", "image/gif", "image/webp"}, "thumbs": []string{}},
	})
	owner := `id = @request.auth.id`
	checkRules(t, users, owner, owner, "", owner, owner)
	if app.Settings().RateLimits.Enabled {
		t.Error("the HTTP rate limiter is still on after down")
	}

	// Down again (nothing left to remove) must not fail either.
	for _, m := range slices.Backward(core.AppMigrations.Items()) {
		if slices.Contains(ourMigrations, m.File) {
			if err := app.RunInTransaction(m.Down); err != nil {
				t.Fatalf("re-running down of %s: %v", m.File, err)
			}
		}
	}

	// The next start applies them again: `migrate down` and `serve` are
	// separate processes, so a new app on the same database runs them. A
	// new app also keeps PocketBase's background deletion of the dropped
	// collections' files, which reads the settings, away from the settings
	// that rateLimitsUp saves.
	if err := app.ResetBootstrapState(); err != nil {
		t.Fatal(err)
	}
	app = cloneApp(t, app.DataDir())
	var logged []string
	if err := app.DB().NewQuery("SELECT file FROM _migrations ORDER BY file").Column(&logged); err != nil {
		t.Fatal(err)
	}
	applied := slices.DeleteFunc(logged, func(f string) bool { return !slices.Contains(ourMigrations, f) })
	if !slices.Equal(applied, ourMigrations) {
		t.Fatalf("applied: got %q, want %q", applied, ourMigrations)
	}
	checkSchema(t, app)
	if got, want := countGeneral(t, app), int64(1); got != want {
		t.Errorf("General rooms: got %d, want %d", got, want)
	}
	checkRateLimits(t, app)
}

// checkRateLimits: PocketBase's HTTP limiter is on, with the chat's rules
// for sign-ups, sign-ins and creates.
func checkRateLimits(t *testing.T, app core.App) {
	t.Helper()
	rl := app.Settings().RateLimits
	want := []core.RateLimitRule{
		{Label: "users:create", MaxRequests: 10, Duration: 60},
		{Label: "*:auth", MaxRequests: 20, Duration: 60},
		{Label: "*:create", MaxRequests: 60, Duration: 10},
	}
	if !rl.Enabled || !slices.Equal(rl.Rules, want) {
		t.Errorf("rate limits: enabled %v rules %+v, want on with %+v", rl.Enabled, rl.Rules, want)
	}
}

// A limiter the operator turned on already keeps their rules.
func TestRateLimitsKeepOperatorRules(t *testing.T) {
	t.Parallel()
	app := newApp(t)
	checkRateLimits(t, app)
	runner := core.NewMigrationsRunner(app, core.AppMigrations)
	if _, err := runner.Down(migrationsSince(t, "1763700004_rate_limits.go")); err != nil {
		t.Fatal(err)
	}
	if app.Settings().RateLimits.Enabled {
		t.Fatal("the limiter is still on after reverting the rate limits")
	}
	settings := app.Settings()
	settings.RateLimits.Enabled = true
	settings.RateLimits.Rules = []core.RateLimitRule{{Label: "/api/", MaxRequests: 5, Duration: 1}}
	if err := app.Save(settings); err != nil {
		t.Fatal(err)
	}
	if _, err := runner.Up(); err != nil {
		t.Fatal(err)
	}
	if rules := app.Settings().RateLimits.Rules; len(rules) != 1 || rules[0].Label != "/api/" {
		t.Errorf("operator's rules replaced: %+v", rules)
	}
}

// ---------------------------------------------------------------------------
// Rule behaviour, checked with real records.
// ---------------------------------------------------------------------------

type fixture struct {
	app                   *tests.TestApp
	alice, bob, mallory   *core.Record // mallory is banned
	general, secret, void *core.Record // public; private with alice; private with nobody
	generalMsg, secretMsg *core.Record // both by alice
	tokens                map[string]string
	mux                   http.Handler
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	app := newApp(t)
	f := &fixture{app: app, tokens: map[string]string{}}

	// Test-only: bcrypt at its minimum cost (4) so creating users is cheap,
	// also under -race.
	users := mustCollection(t, app, "users")
	users.Fields.GetByName("password").(*core.PasswordField).Cost = 4
	if err := app.Save(users); err != nil {
		t.Fatal(err)
	}

	newUser := func(name string, banned bool) *core.Record {
		u := core.NewRecord(users)
		u.SetEmail(strings.ToLower(name) + "@example.com")
		u.SetPassword("password123")
		u.Set("name", name)
		u.Set("banned", banned)
		if err := app.Save(u); err != nil {
			t.Fatalf("create user %s: %v", name, err)
		}
		tok, err := u.NewAuthToken()
		if err != nil {
			t.Fatal(err)
		}
		f.tokens[name] = tok
		return u
	}
	f.alice = newUser("Alice", false)
	f.bob = newUser("Bob", false)
	f.mallory = newUser("Mallory", true)

	var err error
	f.general, err = app.FindFirstRecordByData("rooms", "name", "General")
	if err != nil {
		t.Fatal(err)
	}
	rooms := mustCollection(t, app, "rooms")
	newRoom := func(name, kind string, owner *core.Record, members ...string) *core.Record {
		r := core.NewRecord(rooms)
		r.Load(map[string]any{"name": name, "kind": kind, "owner": owner.Id, "members": members})
		if err := app.Save(r); err != nil {
			t.Fatalf("create room %s: %v", name, err)
		}
		return r
	}
	f.secret = newRoom("Secret", "private", f.alice, f.alice.Id)
	f.void = newRoom("Void", "private", f.alice) // no members at all

	messages := mustCollection(t, app, "messages")
	newMsg := func(room *core.Record, text string) *core.Record {
		m := core.NewRecord(messages)
		m.Load(map[string]any{"room": room.Id, "author": f.alice.Id, "text": text, "kind": "user"})
		if err := app.Save(m); err != nil {
			t.Fatalf("create message: %v", err)
		}
		return m
	}
	f.generalMsg = newMsg(f.general, "hello all")
	f.secretMsg = newMsg(f.secret, "psst")
	return f
}

func TestReadRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	app := f.app
	rooms := mustCollection(t, app, "rooms")
	messages := mustCollection(t, app, "messages")
	users := mustCollection(t, app, "users")

	cases := []struct {
		name   string
		record *core.Record
		rule   *string
		auth   *core.Record // nil = guest
		want   bool
	}{
		{"public room, guest", f.general, rooms.ViewRule, nil, true},
		{"public room, user", f.general, rooms.ViewRule, f.bob, true},
		{"private room, member", f.secret, rooms.ViewRule, f.alice, true},
		{"private room, non-member", f.secret, rooms.ViewRule, f.bob, false},
		{"private room, guest", f.secret, rooms.ViewRule, nil, false},
		{"private room, list rule, non-member", f.secret, rooms.ListRule, f.bob, false},
		{"memberless private room, guest", f.void, rooms.ViewRule, nil, false},
		{"memberless private room, its owner", f.void, rooms.ViewRule, f.alice, false},
		{"message in public room, guest", f.generalMsg, messages.ViewRule, nil, true},
		{"message in public room, user", f.generalMsg, messages.ListRule, f.bob, true},
		{"message in private room, member", f.secretMsg, messages.ViewRule, f.alice, true},
		{"message in private room, non-member", f.secretMsg, messages.ViewRule, f.bob, false},
		{"message in private room, guest", f.secretMsg, messages.ViewRule, nil, false},
		{"message in private room, list rule, guest", f.secretMsg, messages.ListRule, nil, false},
		{"other user, signed in", f.alice, users.ViewRule, f.bob, true},
		{"user, guest", f.alice, users.ViewRule, nil, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := app.CanAccessRecord(c.record, &core.RequestInfo{Auth: c.auth}, c.rule)
			if err != nil {
				t.Fatalf("CanAccessRecord: %v", err)
			}
			if got != c.want {
				t.Errorf("got %v, want %v", got, c.want)
			}
		})
	}
}

// TestMembershipMatchNeedsAuthGuard pins the PocketBase behaviour that the
// `@request.auth.id != ""` guard in the read rules exists for: for a guest,
// @request.auth.id is "" and `members.id ?= ""` is TRUE for a room with no
// members (PocketBase compares through COALESCE(members.id, <empty string>)), so without the
// guard a guest could read memberless private rooms and their messages.
func TestMembershipMatchNeedsAuthGuard(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	bare := `members.id ?= @request.auth.id`
	cases := []struct {
		name string
		room *core.Record
		auth *core.Record
		want bool
	}{
		{"guest, room without members", f.void, nil, true}, // the trap
		{"guest, room with members", f.secret, nil, false},
		{"user, room without members", f.void, f.bob, false},
		{"member", f.secret, f.alice, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := f.app.CanAccessRecord(c.room, &core.RequestInfo{Auth: c.auth}, &bare)
			if err != nil {
				t.Fatal(err)
			}
			if got != c.want {
				t.Errorf("%s: got %v, want %v", bare, got, c.want)
			}
		})
	}
}

// apiCase is one REST request against the fixture app.
type apiCase struct {
	name       string
	method     string
	url        string
	as         string // token owner; "" = guest
	body       string
	wantStatus int
	want       []string // substrings of the response body
	notWant    []string
}

// handler returns the app's real HTTP handler (PocketBase's router with all
// its routes and middlewares), built once per fixture.
//
// tests.ApiScenario is not used: it calls apis.NewRouter for every scenario,
// and apis.NewRouter binds the dashboard's UI-extensions OnServe handler on
// the app each time, so a second scenario against the same app panics with
// `pattern "GET /_/extensions.js" conflicts` (v0.40.4). A fresh app per
// scenario would work but costs a migrated database and users per request.
func (f *fixture) handler(t *testing.T) http.Handler {
	t.Helper()
	if f.mux != nil {
		return f.mux
	}
	router, err := apis.NewRouter(f.app)
	if err != nil {
		t.Fatal(err)
	}
	se := &core.ServeEvent{App: f.app, Router: router}
	err = f.app.OnServe().Trigger(se, func(se *core.ServeEvent) error {
		mux, err := se.Router.BuildMux()
		f.mux = mux
		return err
	})
	if err != nil {
		t.Fatalf("OnServe: %v", err)
	}
	return f.mux
}

func (f *fixture) run(t *testing.T, cases []apiCase) {
	t.Helper()
	h := f.handler(t)
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			req := httptest.NewRequest(c.method, c.url, strings.NewReader(c.body))
			req.Header.Set("Content-Type", "application/json")
			if c.as != "" {
				req.Header.Set("Authorization", f.tokens[c.as])
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)

			body := rec.Body.String()
			if rec.Code != c.wantStatus {
				t.Errorf("%s %s as %q: got status %d, want %d; body %s", c.method, c.url, c.as, rec.Code, c.wantStatus, body)
			}
			for _, w := range c.want {
				if !strings.Contains(body, w) {
					t.Errorf("body lacks %s:\n%s", w, body)
				}
			}
			for _, w := range c.notWant {
				if strings.Contains(body, w) {
					t.Errorf("body contains %s:\n%s", w, body)
				}
			}
		})
	}
}

// ruleDenied is in the body of a 400 caused by a create rule: the error has
// no field errors (a validation failure would list them).
var ruleDenied = []string{`"data":{}`}

func TestMessageCreateRule(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	post := func(name, as, body string, status int) apiCase {
		c := apiCase{name: name, method: http.MethodPost, url: "/api/collections/messages/records", as: as, body: body, wantStatus: status}
		if status == http.StatusOK {
			c.want = []string{`"collectionName":"messages"`}
		} else {
			c.want = ruleDenied
		}
		return c
	}
	msg := func(room, author *core.Record, extra string) string {
		return fmt.Sprintf(`{"room":%q,"author":%q,"text":"hi"%s}`, room.Id, author.Id, extra)
	}
	f.run(t, []apiCase{
		post("user posts to public room", "Alice", msg(f.general, f.alice, ""), http.StatusOK),
		post("user posts to public room as non-member", "Bob", msg(f.general, f.bob, ""), http.StatusOK),
		post("member posts to private room", "Alice", msg(f.secret, f.alice, ""), http.StatusOK),
		post("explicit kind user", "Alice", msg(f.general, f.alice, `,"kind":"user"`), http.StatusOK),
		post("non-member posts to private room", "Bob", msg(f.secret, f.bob, ""), http.StatusBadRequest),
		post("user posts to memberless private room", "Bob", msg(f.void, f.bob, ""), http.StatusBadRequest),
		post("user posts as someone else", "Bob", msg(f.general, f.alice, ""), http.StatusBadRequest),
		post("banned user posts", "Mallory", msg(f.general, f.mallory, ""), http.StatusBadRequest),
		post("guest posts", "", `{"room":"`+f.general.Id+`","text":"hi"}`, http.StatusBadRequest),
		post("user posts a bot message", "Alice", msg(f.general, f.alice, `,"kind":"bot"`), http.StatusBadRequest),
		post("user posts a system message", "Alice", msg(f.general, f.alice, `,"kind":"system"`), http.StatusBadRequest),
		post("user sets seq", "Alice", msg(f.general, f.alice, `,"seq":7`), http.StatusBadRequest),
	})

	// The successful posts really were stored: 4 by the API plus the
	// fixture's 2.
	if got, err := f.app.CountRecords("messages"); err != nil || got != 6 {
		t.Errorf("messages stored: got %d (err %v), want 6", got, err)
	}
}

func TestMessageUpdateDeleteRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	url := "/api/collections/messages/records/" + f.generalMsg.Id
	patch := func(name, as, body string, status int) apiCase {
		c := apiCase{name: name, method: http.MethodPatch, url: url, as: as, body: body, wantStatus: status}
		if status == http.StatusOK {
			c.want = []string{`"text":"edited"`}
		} else {
			c.want = []string{`"status":404`}
		}
		return c
	}
	f.run(t, []apiCase{
		patch("author edits text", "Alice", `{"text":"edited"}`, http.StatusOK),
		patch("someone else edits", "Bob", `{"text":"edited"}`, http.StatusNotFound),
		patch("guest edits", "", `{"text":"edited"}`, http.StatusNotFound),
		patch("author moves message", "Alice", fmt.Sprintf(`{"room":%q}`, f.secret.Id), http.StatusNotFound),
		patch("author hands message over", "Alice", fmt.Sprintf(`{"author":%q}`, f.bob.Id), http.StatusNotFound),
		patch("author changes kind", "Alice", `{"kind":"system"}`, http.StatusNotFound),
		patch("author sets seq", "Alice", `{"seq":3}`, http.StatusNotFound),
		{name: "someone else deletes", method: http.MethodDelete, url: url, as: "Bob", wantStatus: http.StatusNotFound, want: []string{`"status":404`}},
		{name: "author deletes", method: http.MethodDelete, url: url, as: "Alice", wantStatus: http.StatusNoContent},
	})
}

func TestRoomRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	create := func(name, as, body string, status int, want ...string) apiCase {
		return apiCase{name: name, method: http.MethodPost, url: "/api/collections/rooms/records", as: as, body: body, wantStatus: status, want: want}
	}
	room := func(name, kind string, owner *core.Record) string {
		return fmt.Sprintf(`{"name":%q,"kind":%q,"owner":%q}`, name, kind, owner.Id)
	}
	secretURL := "/api/collections/rooms/records/" + f.secret.Id
	patch := func(name, as, url, body string, status int) apiCase {
		c := apiCase{name: name, method: http.MethodPatch, url: url, as: as, body: body, wantStatus: status}
		if status == http.StatusOK {
			c.want = []string{`"collectionName":"rooms"`}
		} else {
			c.want = []string{`"status":404`}
		}
		return c
	}
	f.run(t, []apiCase{
		create("user creates private room", "Alice", room("Alice's", "private", f.alice), http.StatusOK, `"kind":"private"`),
		create("user creates public room", "Bob", room("Bob's", "public", f.bob), http.StatusOK, `"kind":"public"`),
		create("user creates direct room", "Alice", room("DM", "direct", f.alice), http.StatusBadRequest, ruleDenied...),
		create("user creates room owned by another", "Alice", room("Framed", "public", f.bob), http.StatusBadRequest, ruleDenied...),
		create("banned user creates room", "Mallory", room("Spam", "public", f.mallory), http.StatusBadRequest, ruleDenied...),
		create("guest creates room", "", `{"name":"Anon","kind":"public"}`, http.StatusBadRequest, ruleDenied...),
		create("duplicate name", "Bob", room("General", "public", f.bob), http.StatusBadRequest, `"name":{"code":"validation_not_unique"`),

		patch("owner edits description", "Alice", secretURL, `{"description":"shh"}`, http.StatusOK),
		patch("owner makes room public", "Alice", secretURL, `{"kind":"public"}`, http.StatusOK),
		patch("owner turns room direct", "Alice", secretURL, `{"kind":"direct"}`, http.StatusNotFound),
		patch("owner gives room away", "Alice", secretURL, fmt.Sprintf(`{"owner":%q}`, f.bob.Id), http.StatusNotFound),
		patch("non-owner edits", "Bob", secretURL, `{"description":"mine"}`, http.StatusNotFound),
		patch("nobody owns General", "Bob", "/api/collections/rooms/records/"+f.general.Id, `{"description":"mine"}`, http.StatusNotFound),

		{name: "non-owner deletes", method: http.MethodDelete, url: secretURL, as: "Bob", wantStatus: http.StatusNotFound, want: []string{`"status":404`}},
		{name: "owner deletes", method: http.MethodDelete, url: secretURL, as: "Alice", wantStatus: http.StatusNoContent},
	})

	// Deleting the room took its message along (messages.room cascades).
	if _, err := f.app.FindRecordById("messages", f.secretMsg.Id); err == nil {
		t.Errorf("message of deleted room still exists")
	}
}

func TestUserRules(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	aliceURL := "/api/collections/users/records/" + f.alice.Id
	self := func(name, as string, user *core.Record, body string, status int) apiCase {
		c := apiCase{name: name, method: http.MethodPatch, url: "/api/collections/users/records/" + user.Id, as: as, body: body, wantStatus: status}
		if status == http.StatusOK {
			c.want = []string{`"collectionName":"users"`}
		} else {
			c.want = []string{`"status":404`}
		}
		return c
	}
	signup := func(name, email, extra string, status int, want ...string) apiCase {
		return apiCase{
			name: name, method: http.MethodPost, url: "/api/collections/users/records",
			body:       fmt.Sprintf(`{"email":%q,"password":"password123","passwordConfirm":"password123","name":"New"%s}`, email, extra),
			wantStatus: status, want: want,
		}
	}
	f.run(t, []apiCase{
		{name: "user views another user without email", method: http.MethodGet, url: aliceURL, as: "Bob",
			wantStatus: http.StatusOK, want: []string{`"name":"Alice"`}, notWant: []string{"alice@example.com"}},
		{name: "user lists users without emails", method: http.MethodGet, url: "/api/collections/users/records", as: "Bob",
			wantStatus: http.StatusOK, want: []string{`"totalItems":4`}, notWant: []string{"alice@example.com", "mallory@example.com"}},
		{name: "user sees own email", method: http.MethodGet, url: aliceURL, as: "Alice",
			wantStatus: http.StatusOK, want: []string{"alice@example.com"}},
		{name: "guest views user", method: http.MethodGet, url: aliceURL, wantStatus: http.StatusNotFound, want: []string{`"status":404`}},

		signup("sign up", "new@example.com", "", http.StatusOK, `"name":"New"`, `"bot":false`, `"banned":false`),
		signup("sign up with explicit false flags", "new2@example.com", `,"bot":false,"banned":false,"emailVisibility":false`, http.StatusOK, `"name":"New"`),
		signup("sign up as bot", "bot@example.com", `,"bot":true`, http.StatusBadRequest, ruleDenied...),
		signup("sign up banned", "b@example.com", `,"banned":true`, http.StatusBadRequest, ruleDenied...),
		signup("sign up muted", "m@example.com", `,"muted_until":"2030-01-01 00:00:00.000Z"`, http.StatusBadRequest, ruleDenied...),
		signup("sign up with public email", "pub@example.com", `,"emailVisibility":true`, http.StatusBadRequest, ruleDenied...),
		{name: "sign up with long name", method: http.MethodPost, url: "/api/collections/users/records",
			body:       `{"email":"long@example.com","password":"password123","passwordConfirm":"password123","name":"` + strings.Repeat("x", 51) + `"}`,
			wantStatus: http.StatusBadRequest, want: []string{`"name":{"code":"validation_max_text_constraint"`}},
		{name: "sign up without name", method: http.MethodPost, url: "/api/collections/users/records",
			body:       `{"email":"noname@example.com","password":"password123","passwordConfirm":"password123"}`,
			wantStatus: http.StatusBadRequest, want: []string{`"name":{"code":"validation_required"`}},

		self("user renames self", "Bob", f.bob, `{"name":"Robert"}`, http.StatusOK),
		self("user echoes own flags", "Bob", f.bob, `{"name":"Rob","bot":false,"banned":false,"emailVisibility":false}`, http.StatusOK),
		self("user makes self a bot", "Bob", f.bob, `{"bot":true}`, http.StatusNotFound),
		self("user publishes email", "Bob", f.bob, `{"emailVisibility":true}`, http.StatusNotFound),
		self("banned user unbans self", "Mallory", f.mallory, `{"banned":false}`, http.StatusNotFound),
		self("banned user updates self", "Mallory", f.mallory, `{"name":"M","banned":true}`, http.StatusNotFound),
		self("user echoes own empty mute", "Bob", f.bob, `{"name":"Rob","muted_until":""}`, http.StatusOK),
		self("user mutes self", "Bob", f.bob, `{"muted_until":"2030-01-01 00:00:00.000Z"}`, http.StatusNotFound),
		self("user edits another user", "Bob", f.alice, `{"name":"Hacked"}`, http.StatusNotFound),
		{name: "user deletes another user", method: http.MethodDelete, url: aliceURL, as: "Bob", wantStatus: http.StatusNotFound, want: []string{`"status":404`}},
	})

	m, err := f.app.FindRecordById("users", f.mallory.Id)
	if err != nil {
		t.Fatal(err)
	}
	if !m.GetBool("banned") {
		t.Errorf("mallory: got banned=false, want still banned")
	}
}
