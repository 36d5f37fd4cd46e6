package server_test

import (
	"fmt"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"pocketchat/internal/chat"
	"pocketchat/internal/server"
	"pocketchat/pb_migrations"
)

// botApp is a migrated test app with the chat registered and served (so
// the bot has started), and two users.
type botApp struct {
	app        *tests.TestApp
	srv        *server.Server
	alice, bob chat.User
	botID      string
	general    string
	conns      uint64 // listener ids handed out
}

func newBotApp(t *testing.T, cfg server.BotConfig) *botApp {
	t.Helper()
	c := server.DefaultConfig()
	c.Banner = false
	c.Bot = cfg
	app, srv, _ := serveTestApp(t, c)
	b := &botApp{app: app, srv: srv}
	b.alice = b.newUser(t, "Alice")
	b.bob = b.newUser(t, "Bob")
	bot, err := app.FindAuthRecordByEmail("users", pb_migrations.BotEmail)
	if err != nil {
		t.Fatalf("bot user: %v", err)
	}
	b.botID = bot.Id
	general, err := app.FindFirstRecordByData("rooms", "name", pb_migrations.GeneralRoomName)
	if err != nil {
		t.Fatal(err)
	}
	b.general = general.Id
	return b
}

func (b *botApp) newUser(t *testing.T, name string) chat.User {
	t.Helper()
	col, err := b.app.FindCollectionByNameOrId("users")
	if err != nil {
		t.Fatal(err)
	}
	rec := core.NewRecord(col)
	rec.SetEmail(strings.ToLower(name) + "@example.com")
	rec.SetRaw(core.FieldNamePassword, &core.PasswordFieldValue{Hash: "not-a-hash"}) // nobody signs in here
	rec.Set("name", name)
	if err := b.app.Save(rec); err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	return chat.User{ID: rec.Id, Name: name}
}

func (b *botApp) newRoom(t *testing.T, name string, kind chat.RoomKind, members ...string) string {
	t.Helper()
	col, err := b.app.FindCollectionByNameOrId("rooms")
	if err != nil {
		t.Fatal(err)
	}
	rec := core.NewRecord(col)
	rec.Load(map[string]any{"name": name, "kind": string(kind), "members": members})
	if err := b.app.Save(rec); err != nil {
		t.Fatalf("create room %s: %v", name, err)
	}
	return rec.Id
}

// say saves a message as any path would (REST, dashboard, Go code).
func (b *botApp) say(t *testing.T, room string, author chat.User, text string, kind chat.MessageKind) string {
	t.Helper()
	col, err := b.app.FindCollectionByNameOrId("messages")
	if err != nil {
		t.Fatal(err)
	}
	rec := core.NewRecord(col)
	rec.Load(map[string]any{"room": room, "author": author.ID, "text": text, "kind": string(kind)})
	if err := b.app.Save(rec); err != nil {
		t.Fatalf("save message: %v", err)
	}
	return rec.Id
}

// botReplies returns the texts of the bot's answers (kind bot) in a room,
// in order.
func (b *botApp) botReplies(t *testing.T, room string) []string {
	t.Helper()
	recs, err := b.app.FindRecordsByFilter("messages", "room = {:room} && author = {:bot} && kind = 'bot'", "seq", 0, 0,
		dbx.Params{"room": room, "bot": b.botID})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, r := range recs {
		out = append(out, r.GetString("text"))
	}
	return out
}

// waitReplies waits for the room to hold n bot replies and returns them.
func (b *botApp) waitReplies(t *testing.T, room string, n int) []string {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		got := b.botReplies(t, room)
		if len(got) >= n {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("got %d bot replies %q, want %d", len(got), got, n)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// quiet checks that the room gets no more than n bot replies for a while.
func (b *botApp) quiet(t *testing.T, room string, n int) {
	t.Helper()
	time.Sleep(300 * time.Millisecond)
	if got := b.botReplies(t, room); len(got) != n {
		t.Fatalf("got %d bot replies %q, want %d", len(got), got, n)
	}
}

// listener is a hub connection that records the events it gets.
type listener struct {
	id   uint64
	user string
	mu   sync.Mutex
	evs  []*chat.Event
}

func (l *listener) ConnID() uint64 { return l.id }
func (l *listener) UserID() string { return l.user }
func (l *listener) Deliver(ev *chat.Event) {
	l.mu.Lock()
	l.evs = append(l.evs, ev)
	l.mu.Unlock()
}

// events lists "type:author-or-user:text" for each event received.
func (l *listener) events() []string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []string
	for _, ev := range l.evs {
		switch p := ev.Data.(type) {
		case chat.TypingPayload:
			out = append(out, "typing:"+p.User.ID)
		case chat.MessagePayload:
			out = append(out, "message:"+p.Message.Author.ID+":"+p.Message.Text)
		}
	}
	return out
}

// listen registers a connection of user on the hub, joined to room ("" for none).
func (b *botApp) listen(user chat.User, room string) *listener {
	b.conns++
	l := &listener{id: 1<<50 + b.conns, user: user.ID}
	h := b.srv.Hub()
	h.Register(l)
	if room != "" {
		h.Join(room, l, user)
	}
	return l
}

func TestBotAnswersThroughTheHook(t *testing.T) {
	b := newBotApp(t, server.DefaultConfig().Bot)
	watch := b.listen(b.bob, b.general)
	b.listen(b.alice, b.general)

	b.say(t, b.general, b.alice, "@bot roll 2d6", chat.KindUser)
	got := b.waitReplies(t, b.general, 1)
	if !regexp.MustCompile(`^🎲 2d6: [1-6] \+ [1-6] = \d+$`).MatchString(got[0]) {
		t.Errorf("reply: got %q, want a roll of 2d6", got[0])
	}
	// Bob saw Alice's message, the bot typing, then its answer.
	want := []string{"message:" + b.alice.ID + ":@bot roll 2d6", "typing:" + b.botID, "message:" + b.botID + ":" + got[0]}
	waitEvents(t, watch, want)

	// The bot is online nowhere, but knows who is.
	b.say(t, b.general, b.bob, "@bot who", chat.KindUser)
	if got := b.waitReplies(t, b.general, 2)[1]; got != "Online here (2): Alice, Bob." {
		t.Errorf("who: got %q", got)
	}
	// Its own messages, bot and system messages are never answered.
	b.say(t, b.general, b.alice, "@bot help", chat.KindBot)
	b.say(t, b.general, b.alice, "@bot help", chat.KindSystem)
	b.say(t, b.general, chat.User{ID: b.botID}, "@bot help", chat.KindUser)
	b.say(t, b.general, b.alice, "robot help", chat.KindUser)
	b.say(t, b.general, b.alice, "roll 2d6", chat.KindUser)
	b.quiet(t, b.general, 2)
}

func waitEvents(t *testing.T, l *listener, want []string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := l.events()
		if slices.Equal(got, want) {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("events:\n got %q\nwant %q", got, want)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestBotSlashCommandAndRooms(t *testing.T) {
	b := newBotApp(t, server.DefaultConfig().Bot)
	b.say(t, b.general, b.alice, "/time", chat.KindUser)
	if got := b.waitReplies(t, b.general, 1)[0]; !strings.HasPrefix(got, "It is ") || !strings.HasSuffix(got, " UTC.") {
		t.Errorf("/time: got %q", got)
	}

	// A private room without the bot: not even a mention is answered.
	secret := b.newRoom(t, "Secret", chat.KindPrivate, b.alice.ID, b.bob.ID)
	b.say(t, secret, b.alice, "@bot help", chat.KindUser)
	b.say(t, secret, b.alice, "/help", chat.KindUser)
	// With the bot as a member, it is.
	club := b.newRoom(t, "Club", chat.KindPrivate, b.alice.ID, b.botID)
	b.say(t, club, b.alice, "@bot help", chat.KindUser)
	if got := b.waitReplies(t, club, 1)[0]; !strings.HasPrefix(got, "I answer when you mention @bot") {
		t.Errorf("help: got %q", got)
	}
	b.quiet(t, secret, 0)
}

// TestBotDirectRoom: anything written to the bot directly is answered, and
// the members get typing and the answer without having joined the room.
func TestBotDirectRoom(t *testing.T) {
	b := newBotApp(t, server.DefaultConfig().Bot)
	dm := b.newRoom(t, chat.DirectRoomName(b.alice.ID, b.botID), chat.KindDirect, b.alice.ID, b.botID)
	watch := b.listen(b.alice, "")
	b.say(t, dm, b.alice, "hello there", chat.KindUser)
	got := b.waitReplies(t, dm, 1)
	if want := `Hi! Say "@bot help" to see what I can do.`; !strings.HasPrefix(got[0], "I don't know how to answer that yet.") {
		t.Errorf("got %q, want the fallback like %q", got[0], want)
	}
	waitEvents(t, watch, []string{"message:" + b.alice.ID + ":hello there", "typing:" + b.botID, "message:" + b.botID + ":" + got[0]})
}

func TestBotName(t *testing.T) {
	cfg := server.DefaultConfig().Bot
	cfg.Name = "@小爱"
	cfg.Aliases = []string{"xiaoai"}
	b := newBotApp(t, cfg)
	rec, err := b.app.FindRecordById("users", b.botID)
	if err != nil {
		t.Fatal(err)
	}
	if got := rec.GetString("name"); got != "小爱" {
		t.Errorf("bot user name: got %q, want %q", got, "小爱")
	}
	b.say(t, b.general, b.alice, "@bot help", chat.KindUser)
	b.say(t, b.general, b.alice, "@小爱 help", chat.KindUser)
	b.say(t, b.general, b.alice, "@XiaoAi time", chat.KindUser)
	got := b.waitReplies(t, b.general, 2)
	if !strings.HasPrefix(got[0], "I answer when you mention @小爱 (or @xiaoai)") || !strings.HasPrefix(got[1], "It is ") {
		t.Errorf("got %q, want help then time", got)
	}
	b.quiet(t, b.general, 2)
}

func TestBotOff(t *testing.T) {
	cfg := server.DefaultConfig().Bot
	cfg.Enabled = false
	b := newBotApp(t, cfg)
	b.say(t, b.general, b.alice, "@bot help", chat.KindUser)
	b.say(t, b.general, b.alice, "/time", chat.KindUser)
	b.quiet(t, b.general, 0)
}

// TestBotBanned: banning the bot user silences it.
func TestBotBanned(t *testing.T) {
	b := newBotApp(t, server.DefaultConfig().Bot)
	rec, err := b.app.FindRecordById("users", b.botID)
	if err != nil {
		t.Fatal(err)
	}
	rec.Set("banned", true)
	if err := b.app.Save(rec); err != nil {
		t.Fatal(err)
	}
	b.say(t, b.general, b.alice, "@bot help", chat.KindUser)
	b.quiet(t, b.general, 0)
}

func TestBotStats(t *testing.T) {
	b := newBotApp(t, server.DefaultConfig().Bot)
	other := b.newRoom(t, "Other", chat.KindPublic)
	old := b.say(t, b.general, b.bob, "long ago", chat.KindUser)
	if _, err := b.app.DB().Update("messages", dbx.Params{"created": "2020-01-01 00:00:00.000Z"}, dbx.HashExp{"id": old}).Execute(); err != nil {
		t.Fatal(err)
	}
	b.say(t, b.general, b.alice, "hi", chat.KindUser)
	b.say(t, b.general, b.alice, "system note", chat.KindSystem)
	b.say(t, other, b.bob, "elsewhere", chat.KindUser)
	b.say(t, b.general, b.alice, "@bot stats", chat.KindUser)
	got := b.waitReplies(t, b.general, 1)[0]
	if want := "Today (UTC): 2 messages from 1 person. In total: 3 messages from 2 people."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// The bot's answer is not counted.
	b.say(t, b.general, b.alice, "/stats", chat.KindUser)
	if got, want := b.waitReplies(t, b.general, 2)[1], "Today (UTC): 3 messages from 1 person. In total: 4 messages from 2 people."; got != want {
		t.Errorf("again: got %q, want %q", got, want)
	}
}

// TestBotRateLimit: a flood of mentions gets the allowed answers and one
// slow-down notice; the sender's saves never wait for the bot.
func TestBotRateLimit(t *testing.T) {
	cfg := server.DefaultConfig().Bot
	cfg.UserRate = 3
	b := newBotApp(t, cfg)
	for i := range 10 {
		b.say(t, b.general, b.alice, fmt.Sprintf("@bot roll d%d", i+2), chat.KindUser)
	}
	got := b.waitReplies(t, b.general, 4)
	b.quiet(t, b.general, 4)
	notices := slices.DeleteFunc(slices.Clone(got), func(s string) bool { return strings.HasPrefix(s, "🎲") })
	if want := []string{"Alice, please slow down: I answer at most 3 messages a minute per person."}; !slices.Equal(notices, want) {
		t.Errorf("got replies %q, want 3 rolls and %q", got, want)
	}
}

func TestBotConfigFromEnv(t *testing.T) {
	env := map[string]string{
		"CHAT_BOT":           "true",
		"CHAT_BOT_NAME":      "@小爱",
		"CHAT_BOT_ALIASES":   " xiaoai, @helper ,,",
		"CHAT_BOT_BACKEND":   "OpenAI",
		"CHAT_BOT_API_URL":   "http://localhost:11434/v1",
		"CHAT_BOT_API_KEY":   "sk-secret",
		"CHAT_BOT_MODEL":     "llama3",
		"CHAT_BOT_PROMPT":    "Be brief.",
		"CHAT_BOT_TIMEOUT":   "5s",
		"CHAT_BOT_CONTEXT":   "0",
		"CHAT_BOT_USER_RATE": "0",
		"CHAT_BOT_ROOM_RATE": "100",
	}
	c, err := server.ConfigFromEnv(func(k string) string { return env[k] })
	if err != nil {
		t.Fatal(err)
	}
	want := server.BotConfig{
		Enabled: true, Name: "@小爱", Aliases: []string{"xiaoai", "helper"},
		Backend: server.BotOpenAI, APIURL: "http://localhost:11434/v1", APIKey: "sk-secret", Model: "llama3",
		Prompt: "Be brief.", Timeout: 5 * time.Second, Context: 0, UserRate: 0, RoomRate: 100,
	}
	if got := c.Bot; fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("got  %+v\nwant %+v", got, want)
	}

	def := server.DefaultConfig().Bot
	if want := (server.BotConfig{Enabled: true, Name: "bot", Backend: server.BotLocal, APIURL: "https://api.openai.com/v1",
		Timeout: 20 * time.Second, Context: 20, UserRate: 5, RoomRate: 20}); fmt.Sprint(def) != fmt.Sprint(want) {
		t.Errorf("defaults: got %+v, want %+v", def, want)
	}
}

func TestBotConfigErrors(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want string // in the error
	}{
		{map[string]string{"CHAT_BOT": "maybe"}, "CHAT_BOT"},
		{map[string]string{"CHAT_BOT_NAME": "@"}, "CHAT_BOT_NAME"},
		{map[string]string{"CHAT_BOT_NAME": strings.Repeat("b", 51)}, "CHAT_BOT_NAME"},
		{map[string]string{"CHAT_BOT_BACKEND": "gpt"}, "CHAT_BOT_BACKEND"},
		{map[string]string{"CHAT_BOT_BACKEND": "openai"}, "CHAT_BOT_MODEL is required"},
		{map[string]string{"CHAT_BOT_BACKEND": "openai", "CHAT_BOT_MODEL": "m", "CHAT_BOT_API_URL": "localhost:8080"}, "CHAT_BOT_API_URL"},
		{map[string]string{"CHAT_BOT_TIMEOUT": "soon"}, "CHAT_BOT_TIMEOUT"},
		{map[string]string{"CHAT_BOT_CONTEXT": "101"}, "CHAT_BOT_CONTEXT"},
		{map[string]string{"CHAT_BOT_USER_RATE": "-1"}, "CHAT_BOT_USER_RATE"},
		{map[string]string{"CHAT_BOT_ROOM_RATE": "x"}, "CHAT_BOT_ROOM_RATE"},
	}
	for _, tt := range tests {
		_, err := server.ConfigFromEnv(func(k string) string { return tt.env[k] })
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: got error %v, want one about %s", tt.env, err, tt.want)
		}
	}
	// A bot that is off is not checked.
	off := map[string]string{"CHAT_BOT": "false", "CHAT_BOT_BACKEND": "gpt"}
	if _, err := server.ConfigFromEnv(func(k string) string { return off[k] }); err != nil {
		t.Errorf("bot off: got %v, want no error", err)
	}
	// Register refuses what ConfigFromEnv would.
	c := server.DefaultConfig()
	c.Bot.Backend = "gpt"
	if _, err := server.Register(core.NewBaseApp(core.BaseAppConfig{DataDir: t.TempDir()}), c); err == nil {
		t.Errorf("Register with a bad bot backend: got no error")
	}
}
