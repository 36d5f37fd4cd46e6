package e2e

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// botApology is bot.Apology, spelled out: this is a black-box test.
const botApology = "Sorry, I can't answer right now. Please try again later."

// startBotServer starts a server and fails the test if the server (built
// with -race under go test -race) reports a data race.
func startBotServer(t *testing.T, opts ...Option) *Server {
	t.Helper()
	srv := StartServer(t, opts...)
	t.Cleanup(func() { // runs before StartServer's cleanup kills it
		if out := srv.Output(); strings.Contains(out, "WARNING: DATA RACE") {
			t.Errorf("the server reported a data race:\n%s", out)
		}
	})
	return srv
}

// botUserID finds the bot's account the way a client would: listing users
// flagged as bots (any signed-in user may list users).
func botUserID(t *testing.T, srv *Server, as *User) string {
	t.Helper()
	var list struct {
		Items []Record
	}
	srv.MustDo("GET", "/api/collections/users/records?filter=(bot=true)", as.Token, nil, &list)
	if len(list.Items) != 1 {
		t.Fatalf("bot users: got %d, want 1", len(list.Items))
	}
	return list.Items[0].ID()
}

// isBotMessage matches a message event by the bot in the room.
func isBotMessage(room, botID string) func(Frame) bool {
	return func(f Frame) bool {
		m := f.Obj("message")
		return f.Type() == "message" && f.Str("room") == room && m.Obj("author").Str("id") == botID
	}
}

// expectBotReply waits for the bot's next message in the room, checks it
// is a bot message, and returns its text.
func expectBotReply(t *testing.T, c *Client, room, botID string) string {
	t.Helper()
	m := c.WaitFor("bot reply", isBotMessage(room, botID)).Obj("message")
	if got := m.Str("kind"); got != "bot" {
		t.Errorf("bot reply %q: kind %q, want bot", m.Str("text"), got)
	}
	return m.Str("text")
}

// expectNoBotReply checks that the bot stays silent in the room.
func expectNoBotReply(c *Client, room, botID string) {
	c.t.Helper()
	c.ExpectNone("bot reply", isBotMessage(room, botID))
}

var diceReply = regexp.MustCompile(`^🎲 2d6: ([1-6]) \+ ([1-6]) = (\d+)$`)

func TestBotAnswers(t *testing.T) {
	srv := startBotServer(t)
	general := srv.General()
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	botID := botUserID(t, srv, alice)
	a, b := srv.Dial(alice), srv.Dial(bob)
	a.Join(general)
	b.Join(general)

	// Over the WebSocket: the room sees the bot typing, then its answer.
	// (Bob watches the bot from here on; Alice checks the first answer.)
	a.Send(general, "@bot roll 2d6")
	first := b.WaitFor("bot typing or reply", func(f Frame) bool {
		return (f.Type() == "typing" && f.Obj("user").Str("id") == botID) || isBotMessage(general, botID)(f)
	})
	if first.Type() != "typing" || first.Str("room") != general || first.Obj("user").Str("name") != "bot" {
		t.Fatalf("first bot frame: got %v, want typing in General by the bot", first)
	}
	reply := b.WaitFor("bot reply", isBotMessage(general, botID)).Obj("message")
	m := diceReply.FindStringSubmatch(reply.Str("text"))
	if m == nil || reply.Str("kind") != "bot" || reply.Obj("author").Str("name") != "bot" {
		t.Fatalf("reply: got %v, want a 2d6 roll by the bot, kind bot", reply)
	}
	d1, _ := strconv.Atoi(m[1])
	d2, _ := strconv.Atoi(m[2])
	if sum, _ := strconv.Atoi(m[3]); sum != d1+d2 {
		t.Errorf("reply %q: wrong total", reply.Str("text"))
	}
	if got := expectBotReply(t, a, general, botID); got != reply.Str("text") {
		t.Errorf("Alice got %q, Bob got %q", got, reply.Str("text"))
	}
	expectNoBotReply(b, general, botID)

	// Through REST, like any SDK client: answered too. The help text
	// mentions @bot itself, and the bot does not answer itself.
	srv.MustDo("POST", "/api/collections/messages/records", alice.Token,
		map[string]any{"room": general, "author": alice.ID, "text": "@bot help"}, nil)
	if got := expectBotReply(t, b, general, botID); !strings.HasPrefix(got, "I answer when you mention @bot") || !strings.Contains(got, "roll NdM") {
		t.Errorf("help: got %q", got)
	}
	expectNoBotReply(b, general, botID)

	// A slash command needs no mention.
	a.Send(general, "/time")
	if got := expectBotReply(t, b, general, botID); !regexp.MustCompile(`^It is \w{3}, \d\d \w{3} \d{4} \d\d:\d\d:\d\d UTC\.$`).MatchString(got) {
		t.Errorf("time: got %q", got)
	}

	// Not triggers.
	a.Send(general, "robot help")
	a.Send(general, "mail me at alice@bot.com")
	a.Send(general, "roll 2d6")
	expectNoBotReply(b, general, botID)

	// who lists the users online in the room.
	b.Send(general, "@bot who")
	if got, want := expectBotReply(t, b, general, botID), "Online here (2): Alice, Bob."; got != want {
		t.Errorf("who: got %q, want %q", got, want)
	}

	// stats counts people's messages: 6 by Alice, 1 by Bob, and this one.
	a.Send(general, "@bot stats")
	got := expectBotReply(t, b, general, botID)
	if want := "In total: 8 messages from 2 people."; !strings.HasPrefix(got, "Today (UTC): ") || !strings.HasSuffix(got, want) {
		t.Errorf("stats: got %q, want … %q", got, want)
	}

	// A direct message to the bot needs no mention; the answer comes in
	// the direct room, to Alice only.
	ack := a.MustRequest("dm", map[string]any{"to": botID, "text": "roll 2d6"})
	dm := ack.Obj("message").Str("room")
	if got := expectBotReply(t, a, dm, botID); !diceReply.MatchString(got) {
		t.Errorf("dm reply: got %q, want a 2d6 roll", got)
	}
	expectNoBotReply(b, dm, botID)
}

// TestBotRateLimit: ten quick mentions get the allowed five answers and
// exactly one slow-down notice.
func TestBotRateLimit(t *testing.T) {
	srv := startBotServer(t)
	general := srv.General()
	alice := srv.NewUser("Alice")
	botID := botUserID(t, srv, alice)
	a := srv.Dial(alice)
	a.Join(general)
	for i := range 10 {
		a.Send(general, fmt.Sprintf("@bot roll %dd6", i+1))
	}
	var rolls, notices []string
	for range 6 {
		text := expectBotReply(t, a, general, botID)
		if strings.HasPrefix(text, "🎲") {
			rolls = append(rolls, text)
		} else {
			notices = append(notices, text)
		}
	}
	expectNoBotReply(a, general, botID)
	want := "Alice, please slow down: I answer at most 5 messages a minute per person."
	if len(rolls) != 5 || len(notices) != 1 || notices[0] != want {
		t.Errorf("got rolls %q and notices %q, want 5 rolls and %q", rolls, notices, want)
	}
}

func TestBotName(t *testing.T) {
	srv := startBotServer(t, WithEnv("CHAT_BOT_NAME=小爱"))
	general := srv.General()
	alice := srv.NewUser("Alice")
	botID := botUserID(t, srv, alice)
	a := srv.Dial(alice)
	a.Join(general)

	a.Send(general, "@bot help")
	expectNoBotReply(a, general, botID)
	a.Send(general, "@小爱 help")
	reply := a.WaitFor("bot reply", isBotMessage(general, botID)).Obj("message")
	if got := reply.Obj("author").Str("name"); got != "小爱" {
		t.Errorf("bot name: got %q, want 小爱", got)
	}
	if got := reply.Str("text"); !strings.HasPrefix(got, "I answer when you mention @小爱") {
		t.Errorf("help: got %q", got)
	}
}

func TestBotOff(t *testing.T) {
	srv := startBotServer(t, WithEnv("CHAT_BOT=false"))
	general := srv.General()
	alice := srv.NewUser("Alice")
	botID := botUserID(t, srv, alice)
	a := srv.Dial(alice)
	a.Join(general)
	a.Send(general, "@bot help")
	a.Send(general, "/time")
	a.MustRequest("dm", map[string]any{"to": botID, "text": "hello?"})
	a.ExpectNone("bot message", func(f Frame) bool {
		return f.Type() == "message" && f.Obj("message").Obj("author").Str("id") == botID
	})
}

// fakeModel is an OpenAI-compatible endpoint in the test process.
type fakeModel struct {
	t   *testing.T
	srv *httptest.Server

	mu   sync.Mutex
	reqs [][]map[string]string // the messages of each request
}

func newFakeModel(t *testing.T) *fakeModel {
	f := &fakeModel{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeModel) serve(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model    string              `json:"model"`
		Messages []map[string]string `json:"messages"`
	}
	body, _ := io.ReadAll(r.Body)
	if err := json.Unmarshal(body, &req); err != nil || len(req.Messages) == 0 {
		f.t.Errorf("model request %q: %v", body, err)
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	if r.Method != "POST" || r.URL.Path != "/v1/chat/completions" || r.Header.Get("Authorization") != "Bearer test-key" || req.Model != "test-model" {
		f.t.Errorf("model request: %s %s, auth %q, model %q", r.Method, r.URL.Path, r.Header.Get("Authorization"), req.Model)
	}
	f.mu.Lock()
	f.reqs = append(f.reqs, req.Messages)
	f.mu.Unlock()
	last := req.Messages[len(req.Messages)-1]["content"]
	if strings.Contains(last, "fail") {
		http.Error(w, `{"error":{"message":"overloaded"}}`, http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{
		"choices": []any{map[string]any{"message": map[string]any{"role": "assistant", "content": "fake answer to " + last}}},
	})
}

func (f *fakeModel) requests() [][]map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([][]map[string]string(nil), f.reqs...)
}

func TestBotOpenAI(t *testing.T) {
	model := newFakeModel(t)
	srv := startBotServer(t, WithEnv(
		"CHAT_BOT_BACKEND=openai",
		"CHAT_BOT_API_URL="+model.srv.URL+"/v1",
		"CHAT_BOT_API_KEY=test-key",
		"CHAT_BOT_MODEL=test-model",
		"CHAT_BOT_PROMPT=You are a test.",
	))
	general := srv.General()
	alice := srv.NewUser("Alice")
	botID := botUserID(t, srv, alice)
	a := srv.Dial(alice)
	a.Join(general)

	a.Send(general, "@bot what is up?")
	if got, want := expectBotReply(t, a, general, botID), "fake answer to Alice: @bot what is up?"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	// Commands are still answered locally.
	a.Send(general, "/roll 2d6")
	if got := expectBotReply(t, a, general, botID); !diceReply.MatchString(got) {
		t.Errorf("roll: got %q", got)
	}
	// A failing model: an apology in the room.
	a.Send(general, "@bot please fail")
	if got := expectBotReply(t, a, general, botID); got != botApology {
		t.Errorf("got %q, want %q", got, botApology)
	}

	reqs := model.requests()
	if len(reqs) != 2 {
		t.Fatalf("got %d model requests, want 2", len(reqs))
	}
	var turns []string
	for _, m := range reqs[1] {
		turns = append(turns, m["role"]+": "+m["content"])
	}
	want := []string{
		"system: You are a test.",
		"user: Alice: @bot what is up?",
		"assistant: fake answer to Alice: @bot what is up?",
		"user: Alice: /roll 2d6",
		"assistant: 🎲 2d6: ",
		"user: Alice: @bot please fail",
	}
	ok := len(turns) == len(want)
	for i := 0; ok && i < len(want); i++ {
		ok = turns[i] == want[i] || (i == 4 && strings.HasPrefix(turns[i], want[i])) // the roll varies
	}
	if !ok {
		t.Errorf("second request's messages:\n got %q\nwant %q", turns, want)
	}
}
