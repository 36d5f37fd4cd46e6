package bot_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"pocketchat/internal/bot"
	"pocketchat/internal/chat"
)

// completeFunc is a Backend that answers from a function.
type completeFunc func() (string, error)

func (f completeFunc) Complete(context.Context, []bot.Turn) (string, error) { return f() }

// history is a fixed History that records how it was asked.
type history struct {
	msgs           []chat.Message
	err            error
	gotRoom, gotID string
	gotN           int
}

func (h *history) Recent(_ context.Context, room, before string, n int) ([]chat.Message, error) {
	h.gotRoom, h.gotID, h.gotN = room, before, n
	return h.msgs, h.err
}

// fakeAPI is an OpenAI-compatible endpoint whose answer each test sets.
type fakeAPI struct {
	t      *testing.T
	srv    *httptest.Server
	answer func(w http.ResponseWriter, r *http.Request)

	mu   sync.Mutex
	reqs []apiRequest
}

type apiRequest struct {
	Path, Auth, ContentType string
	Model                   string     `json:"model"`
	Messages                []bot.Turn `json:"messages"`
}

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t}
	f.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req apiRequest
		body, _ := io.ReadAll(r.Body)
		if err := json.Unmarshal(body, &req); err != nil {
			t.Errorf("request body %q: %v", body, err)
		}
		req.Path, req.Auth, req.ContentType = r.Method+" "+r.URL.Path, r.Header.Get("Authorization"), r.Header.Get("Content-Type")
		f.mu.Lock()
		f.reqs = append(f.reqs, req)
		f.mu.Unlock()
		f.answer(w, r)
	}))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) requests() []apiRequest {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]apiRequest(nil), f.reqs...)
}

func completion(content string) string {
	b, _ := json.Marshal(map[string]any{
		"id": "chatcmpl-1", "object": "chat.completion", "model": "test-model",
		"choices": []any{map[string]any{"index": 0, "finish_reason": "stop",
			"message": map[string]any{"role": "assistant", "content": content, "refusal": nil}}},
	})
	return string(b)
}

func respond(status int, body string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		io.WriteString(w, body)
	}
}

// modelBot is a bot on the fake API with a short timeout, asked by Alice
// in General after some conversation.
func modelBot(t *testing.T, f *fakeAPI, timeout time.Duration) (*bot.Bot, *history) {
	t.Helper()
	h := &history{msgs: []chat.Message{
		{ID: "m1", Author: alice, Text: "hi all", Kind: chat.KindUser},
		{ID: "m2", Author: bob, Text: "@bot hello", Kind: chat.KindUser},
		{ID: "m3", Author: botUser, Text: "Hello Bob!", Kind: chat.KindBot},
		{ID: "m4", Text: "Bob was renamed", Kind: chat.KindSystem},
		{ID: "m5", Author: bob, Image: "/api/files/messages/m5/cat.png", Kind: chat.KindUser},
	}}
	b := bot.New(bot.Config{Name: "bot", Prompt: "You are a test bot.", Context: 20, Timeout: timeout}, botUser, bot.Deps{
		History: h,
		Backend: &bot.OpenAI{BaseURL: f.srv.URL + "/v1/", Key: "sk-test", Model: "test-model"},
	})
	return b, h
}

func ask(b *bot.Bot, text string) string {
	query, _ := bot.Mentioned(text, b.Names())
	msg := chat.Message{ID: "m6", Room: general.ID, Author: alice, Text: text, Kind: chat.KindUser}
	return b.Reply(context.Background(), bot.Task{Room: general, Message: msg, Query: query})
}

func TestOpenAIAnswer(t *testing.T) {
	f := newFakeAPI(t)
	f.answer = respond(http.StatusOK, completion("  Paris is the capital of France.\n"))
	b, h := modelBot(t, f, 5*time.Second)

	if got, want := ask(b, "@bot what is the capital of France?"), "Paris is the capital of France."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if h.gotRoom != general.ID || h.gotID != "m6" || h.gotN != 20 {
		t.Errorf("history asked for room %q before %q n %d; want %q, m6, 20", h.gotRoom, h.gotID, h.gotN, general.ID)
	}
	reqs := f.requests()
	if len(reqs) != 1 {
		t.Fatalf("got %d requests, want 1", len(reqs))
	}
	req := reqs[0]
	if got, want := req.Path, "POST /v1/chat/completions"; got != want {
		t.Errorf("path: got %q, want %q", got, want)
	}
	if got, want := req.Auth, "Bearer sk-test"; got != want {
		t.Errorf("Authorization: got %q, want %q", got, want)
	}
	if got, want := req.ContentType, "application/json"; got != want {
		t.Errorf("Content-Type: got %q, want %q", got, want)
	}
	if got, want := req.Model, "test-model"; got != want {
		t.Errorf("model: got %q, want %q", got, want)
	}
	want := []bot.Turn{
		{Role: "system", Content: "You are a test bot."},
		{Role: "user", Content: "Alice: hi all"},
		{Role: "user", Content: "Bob: @bot hello"},
		{Role: "assistant", Content: "Hello Bob!"},
		{Role: "user", Content: "Bob: [an image]"},
		{Role: "user", Content: "Alice: @bot what is the capital of France?"},
	}
	if !reflect.DeepEqual(req.Messages, want) {
		t.Errorf("messages:\n got %+v\nwant %+v", req.Messages, want)
	}
}

// TestOpenAICommandsFirst: commands are answered locally, without a call.
func TestOpenAICommandsFirst(t *testing.T) {
	f := newFakeAPI(t)
	f.answer = respond(http.StatusOK, completion("from the model"))
	b, _ := modelBot(t, f, 5*time.Second)
	if got := ask(b, "@bot roll 2d6"); !strings.HasPrefix(got, "🎲 2d6: ") {
		t.Errorf("roll: got %q", got)
	}
	if n := len(f.requests()); n != 0 {
		t.Errorf("got %d model requests for a command, want 0", n)
	}
}

func TestOpenAIFailures(t *testing.T) {
	long := strings.Repeat("ab", 3000)
	tests := []struct {
		name   string
		answer func(http.ResponseWriter, *http.Request)
		want   string
	}{
		{"server error", respond(http.StatusInternalServerError, `{"error":{"message":"boom"}}`), bot.Apology},
		{"unauthorized", respond(http.StatusUnauthorized, `{"error":{"message":"bad key"}}`), bot.Apology},
		{"malformed JSON", respond(http.StatusOK, `{"choices":[{"message":`), bot.Apology},
		{"not JSON", respond(http.StatusOK, `<html>gateway</html>`), bot.Apology},
		{"no choices", respond(http.StatusOK, `{"choices":[]}`), bot.Apology},
		{"empty content", respond(http.StatusOK, completion("  ")), bot.Apology},
		{"null content", respond(http.StatusOK, `{"choices":[{"message":{"role":"assistant","content":null}}]}`), bot.Apology},
		{"refusal", respond(http.StatusOK, `{"choices":[{"message":{"role":"assistant","content":null,"refusal":"I can't help with that request."}}]}`), bot.Refusal},
		{"huge", respond(http.StatusOK, completion(strings.Repeat("x", 2<<20))), bot.Apology},
		{"long answer", respond(http.StatusOK, completion(long)), long[:chat.MaxTextLen-1] + "…"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFakeAPI(t)
			f.answer = tt.answer
			b, _ := modelBot(t, f, 5*time.Second)
			if got := ask(b, "@bot hello"); got != tt.want {
				t.Errorf("got %.80q, want %.80q", got, tt.want)
			}
		})
	}
}

func TestOpenAITimeout(t *testing.T) {
	f := newFakeAPI(t)
	f.answer = func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(30 * time.Second):
			respond(http.StatusOK, completion("too late"))(w, r)
		}
	}
	const timeout = 200 * time.Millisecond
	b, _ := modelBot(t, f, timeout)
	start := time.Now()
	got := ask(b, "@bot hello")
	// The answer would take 30 s: returning well before it shows the
	// timeout cut the call short. The bound is loose on purpose, so a
	// busy machine cannot fail the test.
	if took := time.Since(start); took > 10*time.Second {
		t.Errorf("took %v: the %v timeout did not stop the call", took, timeout)
	}
	if got != bot.Apology {
		t.Errorf("got %q, want the apology", got)
	}
}

func TestOpenAINoKey(t *testing.T) {
	f := newFakeAPI(t)
	f.answer = respond(http.StatusOK, completion("ok"))
	o := &bot.OpenAI{BaseURL: f.srv.URL + "/v1", Model: "m"}
	if _, err := o.Complete(context.Background(), []bot.Turn{{Role: "user", Content: "x"}}); err != nil {
		t.Fatal(err)
	}
	if got := f.requests()[0].Auth; got != "" {
		t.Errorf("Authorization without a key: got %q, want none", got)
	}
}

func TestOpenAIErrors(t *testing.T) {
	f := newFakeAPI(t)
	f.answer = respond(http.StatusOK, `{"choices":[{"message":{"refusal":"no"}}]}`)
	o := &bot.OpenAI{BaseURL: f.srv.URL, Model: "m"}
	if _, err := o.Complete(context.Background(), nil); !errors.Is(err, bot.ErrRefused) {
		t.Errorf("refusal: got %v, want ErrRefused", err)
	}
	f.answer = respond(http.StatusOK, `{"choices":[]}`)
	if _, err := o.Complete(context.Background(), nil); !errors.Is(err, bot.ErrEmpty) {
		t.Errorf("no choices: got %v, want ErrEmpty", err)
	}
	unreachable := &bot.OpenAI{BaseURL: "http://127.0.0.1:1", Model: "m"}
	if _, err := unreachable.Complete(context.Background(), nil); err == nil {
		t.Errorf("unreachable server: got no error")
	}
}

// TestHistoryFailure: without context the question is still asked.
func TestHistoryFailure(t *testing.T) {
	f := newFakeAPI(t)
	f.answer = respond(http.StatusOK, completion("fine"))
	b, h := modelBot(t, f, 5*time.Second)
	h.msgs, h.err = nil, errors.New("database is locked")
	if got := ask(b, "@bot hello"); got != "fine" {
		t.Errorf("got %q, want %q", got, "fine")
	}
	if got := len(f.requests()[0].Messages); got != 2 {
		t.Errorf("got %d turns, want 2 (prompt and question)", got)
	}
}
