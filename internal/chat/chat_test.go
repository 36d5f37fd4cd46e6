package chat_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unicode/utf8"

	"pocketchat/internal/chat"
)

func TestCleanText(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", ""},
		{"plain", "hello", "hello"},
		{"CRLF to LF", "a\r\nb\r\nc", "a\nb\nc"},
		{"LF kept", "a\nb", "a\nb"},
		{"lone CR dropped", "a\rb", "ab"},
		{"CR CR LF", "a\r\r\nb", "a\nb"},
		{"NUL", "a\x00b", "ab"},
		{"BEL", "a\ab", "ab"},
		{"ESC sequence", "\x1b[31mred\x1b[0m", "[31mred[0m"},
		{"DEL", "a\x7fb", "ab"},
		{"C1 NEL", "a\u0085b", "ab"},
		{"C1 CSI", "a\u009bb", "ab"},
		{"C1 range ends", "a\u0080\u009fb", "ab"},
		{"NBSP kept (first non-C1)", "a\u00a0b", "a\u00a0b"},
		{"line separator", "a\u2028b", "ab"},
		{"paragraph separator", "a\u2029b", "ab"},
		{"BOM", "\ufeffhello", "hello"},
		{"BOM inside", "he\ufeffllo", "hello"},
		{"tab", "a\tb", "ab"},
		{"vertical tab and form feed", "a\v\fb", "ab"},
		{"emoji", "hi 👋🏽 🎉", "hi 👋🏽 🎉"},
		{"emoji ZWJ sequence", "👩‍💻", "👩‍💻"},
		{"CJK", "你好，世界", "你好，世界"},
		{"mixed scripts", "Привет مرحبا こんにちは", "Привет مرحبا こんにちは"},
		{"trims spaces", "   hi   ", "hi"},
		{"trims newlines", "\n\n hi \n\n", "hi"},
		{"trims CRLF", "\r\nhi\r\n", "hi"},
		{"inner blank lines kept", "a\n\nb", "a\n\nb"},
		{"only controls", "\x00\x01\t\r\x7f\u2028", ""},
		{"only white space", " \n \r\n ", ""},
		{"control between spaces then trim", " \x00 hi \x07 ", "hi"},
		{"markup kept verbatim", "<b>&amp;</b>", "<b>&amp;</b>"},
		{"invalid UTF-8 replaced", "a\xffb", "a\ufffdb"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := chat.CleanText(tt.in); got != tt.want {
				t.Errorf("CleanText(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestRequestValidate(t *testing.T) {
	long := strings.Repeat("x", chat.MaxTextLen)
	longEmoji := strings.Repeat("😀", chat.MaxTextLen) // 4 bytes each: the limit counts characters
	tests := []struct {
		name      string
		req       chat.Request
		wantCode  chat.Code // "" means valid
		wantText  string    // checked when valid and non-empty
		wantLimit int       // checked when valid and non-zero
		wantInMsg string    // checked when invalid and non-empty
	}{
		// join, leave, typing: a room.
		{name: "join", req: chat.Request{Type: "join", Room: "r1"}},
		{name: "join without room", req: chat.Request{Type: "join"}, wantCode: chat.CodeBadRequest, wantInMsg: `join needs a "room"`},
		{name: "join blank room", req: chat.Request{Type: "join", Room: "  \t"}, wantCode: chat.CodeBadRequest},
		{name: "leave", req: chat.Request{Type: "leave", Room: "r1"}},
		{name: "leave without room", req: chat.Request{Type: "leave"}, wantCode: chat.CodeBadRequest, wantInMsg: "leave"},
		{name: "typing", req: chat.Request{Type: "typing", Room: "r1"}},
		{name: "typing without room", req: chat.Request{Type: "typing"}, wantCode: chat.CodeBadRequest},

		// send: a room and text, cleaned.
		{name: "send", req: chat.Request{Type: "send", Room: "r1", Text: "hi"}, wantText: "hi"},
		{name: "send cleans text", req: chat.Request{Type: "send", Room: "r1", Text: "  a\r\nb\x00  "}, wantText: "a\nb"},
		{name: "send without room", req: chat.Request{Type: "send", Text: "hi"}, wantCode: chat.CodeBadRequest},
		{name: "send without text", req: chat.Request{Type: "send", Room: "r1"}, wantCode: chat.CodeBadRequest, wantInMsg: `non-empty "text"`},
		{name: "send text of controls only", req: chat.Request{Type: "send", Room: "r1", Text: " \x00\t\u2028 "}, wantCode: chat.CodeBadRequest},
		{name: "send at the limit", req: chat.Request{Type: "send", Room: "r1", Text: long}, wantText: long},
		{name: "send multi-byte at the limit", req: chat.Request{Type: "send", Room: "r1", Text: longEmoji}, wantText: longEmoji},
		{name: "send over the limit", req: chat.Request{Type: "send", Room: "r1", Text: long + "y"}, wantCode: chat.CodeTooLarge, wantInMsg: "4001"},
		{name: "send over the limit after trim is fine", req: chat.Request{Type: "send", Room: "r1", Text: "  " + long + "  "}, wantText: long},

		// dm: a recipient and text.
		{name: "dm", req: chat.Request{Type: "dm", To: "u2", Text: "psst"}, wantText: "psst"},
		{name: "dm cleans text", req: chat.Request{Type: "dm", To: "u2", Text: "\ufeffpsst\r\n"}, wantText: "psst"},
		{name: "dm without to", req: chat.Request{Type: "dm", Text: "psst"}, wantCode: chat.CodeBadRequest, wantInMsg: `"to"`},
		{name: "dm blank to", req: chat.Request{Type: "dm", To: " ", Text: "psst"}, wantCode: chat.CodeBadRequest},
		{name: "dm without text", req: chat.Request{Type: "dm", To: "u2"}, wantCode: chat.CodeBadRequest},
		{name: "dm over the limit", req: chat.Request{Type: "dm", To: "u2", Text: long + "y"}, wantCode: chat.CodeTooLarge},

		// history: a room and a limit, defaulted.
		{name: "history default limit", req: chat.Request{Type: "history", Room: "r1"}, wantLimit: chat.DefaultPageSize},
		{name: "history with before", req: chat.Request{Type: "history", Room: "r1", Before: "m1", Limit: 10}, wantLimit: 10},
		{name: "history limit 1", req: chat.Request{Type: "history", Room: "r1", Limit: 1}, wantLimit: 1},
		{name: "history max limit", req: chat.Request{Type: "history", Room: "r1", Limit: chat.MaxPageSize}, wantLimit: chat.MaxPageSize},
		{name: "history limit too big", req: chat.Request{Type: "history", Room: "r1", Limit: chat.MaxPageSize + 1}, wantCode: chat.CodeBadRequest, wantInMsg: "limit"},
		{name: "history negative limit", req: chat.Request{Type: "history", Room: "r1", Limit: -1}, wantCode: chat.CodeBadRequest},
		{name: "history without room", req: chat.Request{Type: "history"}, wantCode: chat.CodeBadRequest},

		// resume: a room, after, and a limit.
		{name: "resume", req: chat.Request{Type: "resume", Room: "r1", After: "m9"}, wantLimit: chat.DefaultPageSize},
		{name: "resume with limit", req: chat.Request{Type: "resume", Room: "r1", After: "m9", Limit: 7}, wantLimit: 7},
		{name: "resume without after", req: chat.Request{Type: "resume", Room: "r1"}, wantCode: chat.CodeBadRequest, wantInMsg: `"after"`},
		{name: "resume without room", req: chat.Request{Type: "resume", After: "m9"}, wantCode: chat.CodeBadRequest},
		{name: "resume limit too big", req: chat.Request{Type: "resume", Room: "r1", After: "m9", Limit: 1000}, wantCode: chat.CodeBadRequest},

		// ping needs nothing.
		{name: "ping", req: chat.Request{Type: "ping"}},
		{name: "ping ignores other fields", req: chat.Request{Type: "ping", Limit: -5}},

		// type.
		{name: "missing type", req: chat.Request{Room: "r1"}, wantCode: chat.CodeBadRequest, wantInMsg: `missing "type"`},
		{name: "unknown type", req: chat.Request{Type: "shout", Room: "r1"}, wantCode: chat.CodeBadRequest, wantInMsg: `unknown type "shout"`},
		{name: "type is case sensitive", req: chat.Request{Type: "JOIN", Room: "r1"}, wantCode: chat.CodeBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req := tt.req
			err := req.Validate()
			if tt.wantCode == "" {
				if err != nil {
					t.Fatalf("Validate() = %v, want nil", err)
				}
				if tt.wantText != "" && req.Text != tt.wantText {
					t.Errorf("Text after Validate = %q, want %q", req.Text, tt.wantText)
				}
				if tt.wantLimit != 0 && req.Limit != tt.wantLimit {
					t.Errorf("Limit after Validate = %d, want %d", req.Limit, tt.wantLimit)
				}
				return
			}
			if err == nil {
				t.Fatalf("Validate() = nil, want a %s error", tt.wantCode)
			}
			var ce *chat.Error
			if !errors.As(err, &ce) {
				t.Fatalf("Validate() = %T %v, want a *chat.Error", err, err)
			}
			if ce.Code != tt.wantCode {
				t.Errorf("code = %q, want %q (error %v)", ce.Code, tt.wantCode, err)
			}
			if !strings.Contains(ce.Message, tt.wantInMsg) {
				t.Errorf("message = %q, want it to contain %q", ce.Message, tt.wantInMsg)
			}
		})
	}
}

// An unknown type is echoed in the error, shortened, and the message stays
// valid UTF-8 however the cut falls.
func TestRequestValidateUnknownTypeTruncated(t *testing.T) {
	for _, typ := range []string{
		strings.Repeat("a", 100),
		"a" + strings.Repeat("é", 50), // a 2-byte rune straddles byte 32
		strings.Repeat("😀", 20),       // 4-byte runes
	} {
		req := chat.Request{Type: typ}
		err := req.Validate()
		msg := chat.ErrorMessage(err)
		if chat.ErrorCode(err) != chat.CodeBadRequest {
			t.Errorf("Validate(type %q) code = %q, want %q", typ, chat.ErrorCode(err), chat.CodeBadRequest)
		}
		if strings.Contains(msg, typ) {
			t.Errorf("message %q holds the whole %d-byte type; want it shortened", msg, len(typ))
		}
		if len(msg) > 80 {
			t.Errorf("message is %d bytes, want a short one: %q", len(msg), msg)
		}
		if !utf8.ValidString(msg) {
			t.Errorf("message %q is not valid UTF-8", msg)
		}
	}
}

func TestValidID(t *testing.T) {
	tests := []struct {
		name string
		raw  json.RawMessage
		want bool
	}{
		{"absent", nil, true},
		{"empty", json.RawMessage{}, true},
		{"string", json.RawMessage(`"abc"`), true},
		{"empty string", json.RawMessage(`""`), true},
		{"integer", json.RawMessage(`42`), true},
		{"negative", json.RawMessage(`-7`), true},
		{"float", json.RawMessage(`1.5e3`), true},
		{"string of 64 bytes", json.RawMessage(`"` + strings.Repeat("x", 62) + `"`), true},
		{"string of 65 bytes", json.RawMessage(`"` + strings.Repeat("x", 63) + `"`), false},
		{"long number", json.RawMessage(strings.Repeat("9", 65)), false},
		{"null", json.RawMessage(`null`), false},
		{"true", json.RawMessage(`true`), false},
		{"object", json.RawMessage(`{"a":1}`), false},
		{"array", json.RawMessage(`[1]`), false},
		{"bare word", json.RawMessage(`abc`), false},
		{"unterminated string", json.RawMessage(`"abc`), false},
		{"two values", json.RawMessage(`1 2`), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := chat.ValidID(tt.raw); got != tt.want {
				t.Errorf("ValidID(%q) = %v, want %v", tt.raw, got, tt.want)
			}
		})
	}
}

func TestRoomAccess(t *testing.T) {
	const member, other, guest = "u1", "u3", ""
	rooms := map[chat.RoomKind]*chat.Room{
		chat.KindPublic:  {ID: "pub", Kind: chat.KindPublic},
		chat.KindPrivate: {ID: "priv", Kind: chat.KindPrivate, Members: []string{member, "u2"}},
		chat.KindDirect:  {ID: "dm", Kind: chat.KindDirect, Members: []string{member, "u2"}},
	}
	tests := []struct {
		kind             chat.RoomKind
		who, user        string
		wantRead, wantWr bool
	}{
		{chat.KindPublic, "member", member, true, true},
		{chat.KindPublic, "non-member", other, true, true},
		{chat.KindPublic, "guest", guest, true, false},
		{chat.KindPrivate, "member", member, true, true},
		{chat.KindPrivate, "non-member", other, false, false},
		{chat.KindPrivate, "guest", guest, false, false},
		{chat.KindDirect, "member", member, true, true},
		{chat.KindDirect, "non-member", other, false, false},
		{chat.KindDirect, "guest", guest, false, false},
	}
	for _, tt := range tests {
		t.Run(string(tt.kind)+"/"+tt.who, func(t *testing.T) {
			r := rooms[tt.kind]
			if got := r.CanRead(tt.user); got != tt.wantRead {
				t.Errorf("CanRead(%q) = %v, want %v", tt.user, got, tt.wantRead)
			}
			if got := r.CanWrite(tt.user); got != tt.wantWr {
				t.Errorf("CanWrite(%q) = %v, want %v", tt.user, got, tt.wantWr)
			}
		})
	}

	// A guest's empty id must never match a room's members, even a
	// malformed room that lists "".
	odd := &chat.Room{Kind: chat.KindPrivate, Members: []string{""}}
	if odd.CanRead("") || odd.CanWrite("") {
		t.Errorf("private room with an empty member: guest CanRead/CanWrite = %v/%v, want false/false", odd.CanRead(""), odd.CanWrite(""))
	}
	// An unknown kind is treated as closed to non-members.
	unknown := &chat.Room{Kind: "secret", Members: []string{member}}
	if unknown.CanRead(other) {
		t.Errorf("unknown kind: non-member CanRead = true, want false")
	}
}

func TestRoomKindValid(t *testing.T) {
	for k, want := range map[chat.RoomKind]bool{
		chat.KindPublic: true, chat.KindPrivate: true, chat.KindDirect: true,
		"": false, "Public": false, "group": false,
	} {
		if got := k.Valid(); got != want {
			t.Errorf("RoomKind(%q).Valid() = %v, want %v", k, got, want)
		}
	}
}

func TestDirectRoomName(t *testing.T) {
	pairs := [][2]string{{"a", "b"}, {"zz", "aa"}, {"abc123", "abc12"}, {"x", "x"}}
	for _, p := range pairs {
		ab, ba := chat.DirectRoomName(p[0], p[1]), chat.DirectRoomName(p[1], p[0])
		if ab != ba {
			t.Errorf("DirectRoomName(%q, %q) = %q but DirectRoomName(%q, %q) = %q, want equal", p[0], p[1], ab, p[1], p[0], ba)
		}
		if !strings.HasPrefix(ab, "dm:") {
			t.Errorf("DirectRoomName(%q, %q) = %q, want a dm: prefix", p[0], p[1], ab)
		}
	}
	if got, want := chat.DirectRoomName("b", "a"), "dm:a:b"; got != want {
		t.Errorf("DirectRoomName(b, a) = %q, want %q", got, want)
	}
	if chat.DirectRoomName("a", "bc") == chat.DirectRoomName("ab", "c") {
		t.Errorf("different pairs got the same name %q", chat.DirectRoomName("a", "bc"))
	}
}

// countingEncoder counts its Encode calls.
type countingEncoder struct {
	slot  int
	calls atomic.Int32
}

func (e *countingEncoder) Slot() int { return e.slot }

func (e *countingEncoder) Encode(ev *chat.Event) []byte {
	e.calls.Add(1)
	time.Sleep(time.Millisecond) // widen the window for a second call
	return []byte(fmt.Sprintf("%d|%s|%s", e.slot, ev.Type, ev.Payload))
}

func TestEventEncodedOncePerCodec(t *testing.T) {
	ev := chat.MustEvent(chat.EventPong, chat.PongPayload{})
	a := &countingEncoder{slot: 1}
	b := &countingEncoder{slot: 2}

	const goroutines = 50
	var wg sync.WaitGroup
	got := make([][]byte, goroutines)
	start := make(chan struct{})
	for i := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			enc := a
			if i%2 == 1 {
				enc = b
			}
			got[i] = ev.Encoded(enc)
		}()
	}
	close(start)
	wg.Wait()

	if n := a.calls.Load(); n != 1 {
		t.Errorf("encoder in slot 1 called %d times, want 1", n)
	}
	if n := b.calls.Load(); n != 1 {
		t.Errorf("encoder in slot 2 called %d times, want 1", n)
	}
	for i, g := range got {
		want := fmt.Sprintf("%d|pong|{}", 1+i%2)
		if string(g) != want {
			t.Errorf("goroutine %d got %q, want %q", i, g, want)
		}
	}
	// Later calls come from the cache too.
	ev.Encoded(a)
	if n := a.calls.Load(); n != 1 {
		t.Errorf("after another call, encoder called %d times, want 1", n)
	}
}

func TestNewEvent(t *testing.T) {
	p := chat.LeftPayload{Room: "r1"}
	ev, err := chat.NewEvent(chat.EventLeft, p)
	if err != nil {
		t.Fatalf("NewEvent: %v", err)
	}
	if ev.Type != chat.EventLeft || string(ev.Payload) != `{"room":"r1"}` {
		t.Errorf("NewEvent = {Type %q, Payload %s}, want {left, {\"room\":\"r1\"}}", ev.Type, ev.Payload)
	}
	if d, ok := ev.Data.(chat.LeftPayload); !ok || d != p {
		t.Errorf("Data = %#v, want %#v", ev.Data, p)
	}
	if _, err := chat.NewEvent("x", make(chan int)); err == nil {
		t.Error("NewEvent with an unencodable payload: err = nil, want an error")
	}
}

func decodeError(t *testing.T, ev *chat.Event) chat.ErrorPayload {
	t.Helper()
	if ev.Type != chat.EventError {
		t.Fatalf("Type = %q, want %q", ev.Type, chat.EventError)
	}
	var p chat.ErrorPayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatalf("payload %s: %v", ev.Payload, err)
	}
	return p
}

func TestErrorEvent(t *testing.T) {
	id := json.RawMessage(`"req-1"`)
	secret := "dial tcp 10.1.2.3:5432: connection refused (table users)"
	tests := []struct {
		name        string
		err         error
		wantCode    chat.Code
		wantMsg     string
		wantRetryMs int64
	}{
		{"plain error", errors.New(secret), chat.CodeInternal, "internal server error", 0},
		{"wrapped plain error", fmt.Errorf("saving: %w", errors.New(secret)), chat.CodeInternal, "internal server error", 0},
		{"chat error", chat.Errorf(chat.CodeNotFound, "room %s not found", "r9"), chat.CodeNotFound, "room r9 not found", 0},
		{"wrapped chat error", fmt.Errorf("ctx: %w", chat.Errorf(chat.CodeForbidden, "no")), chat.CodeForbidden, "no", 0},
		{"rate limited", &chat.Error{Code: chat.CodeRateLimited, Message: "slow down", RetryAfter: 1500 * time.Millisecond}, chat.CodeRateLimited, "slow down", 1500},
		{"wrapped rate limited", fmt.Errorf("send: %w", &chat.Error{Code: chat.CodeRateLimited, Message: "slow down", RetryAfter: 2 * time.Second}), chat.CodeRateLimited, "slow down", 2000},
		{"rate limited without wait", &chat.Error{Code: chat.CodeRateLimited, Message: "slow down"}, chat.CodeRateLimited, "slow down", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := chat.ErrorEvent(id, tt.err)
			if string(ev.ReplyTo) != string(id) {
				t.Errorf("ReplyTo = %s, want %s", ev.ReplyTo, id)
			}
			p := decodeError(t, ev)
			if p.Code != tt.wantCode || p.Message != tt.wantMsg || p.RetryAfter != tt.wantRetryMs {
				t.Errorf("payload = %+v, want {Code:%s Message:%s RetryAfter:%d}", p, tt.wantCode, tt.wantMsg, tt.wantRetryMs)
			}
			if strings.Contains(string(ev.Payload), "10.1.2.3") || strings.Contains(string(ev.Payload), "users") {
				t.Errorf("payload %s leaks internal details", ev.Payload)
			}
			if tt.wantRetryMs == 0 && strings.Contains(string(ev.Payload), "retryAfter") {
				t.Errorf("payload %s has retryAfter, want it omitted", ev.Payload)
			}
		})
	}
	if ev := chat.ErrorEvent(nil, errors.New("x")); ev.ReplyTo != nil {
		t.Errorf("ErrorEvent(nil, ...).ReplyTo = %s, want nil", ev.ReplyTo)
	}
}

func TestErrorString(t *testing.T) {
	err := chat.Errorf(chat.CodeTooLarge, "text has %d characters", 5000)
	if got, want := err.Error(), "too_large: text has 5000 characters"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

// The presence payloads as the protocol documents them: online_count is
// always in joined; an online event's list is there exactly when the
// room leaves summary mode, even empty.
func TestPresencePayloadsJSON(t *testing.T) {
	ann := chat.User{ID: "u1", Name: "Ann"}
	tests := []struct {
		name    string
		payload any
		want    string
	}{
		{"joined", chat.JoinedPayload{Room: "r1", Online: []chat.User{ann}, OnlineCount: 1, Messages: []chat.Message{}},
			`{"room":"r1","online":[{"id":"u1","name":"Ann","avatar":""}],"online_count":1,"summary":false,"messages":[],"more":false}`},
		{"joined summary", chat.JoinedPayload{Room: "r1", Online: []chat.User{ann}, OnlineCount: 1234, Summary: true, Messages: []chat.Message{}},
			`{"room":"r1","online":[{"id":"u1","name":"Ann","avatar":""}],"online_count":1234,"summary":true,"messages":[],"more":false}`},
		{"online summary", chat.OnlinePayload{Room: "r1", OnlineCount: 501, Summary: true},
			`{"room":"r1","online_count":501,"summary":true}`},
		{"online resumed", chat.OnlinePayload{Room: "r1", OnlineCount: 1, Online: []chat.User{ann}},
			`{"room":"r1","online_count":1,"summary":false,"online":[{"id":"u1","name":"Ann","avatar":""}]}`},
		{"online resumed, nobody", chat.OnlinePayload{Room: "r1", Online: []chat.User{}},
			`{"room":"r1","online_count":0,"summary":false,"online":[]}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := chat.MustEvent(chat.EventOnline, tt.payload)
			if string(ev.Payload) != tt.want {
				t.Errorf("payload\n got %s\nwant %s", ev.Payload, tt.want)
			}
		})
	}
}

func TestCheckEdit(t *testing.T) {
	now := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	m := chat.Message{Author: chat.User{ID: "alice"}, Kind: chat.KindUser, Created: now.Add(-20 * time.Minute)}
	tests := []struct {
		user   string
		window time.Duration
		code   chat.Code
		text   string
	}{
		{"alice", 0, "", ""},
		{"alice", time.Hour, "", ""},
		{"alice", 15 * time.Minute, chat.CodeForbidden, "15 minutes"},
		{"alice", time.Minute, chat.CodeForbidden, "1 minute"},
		{"alice", 90 * time.Second, chat.CodeForbidden, "90 seconds"},
		{"alice", 1500 * time.Millisecond, chat.CodeForbidden, "1.5s"},
		{"bob", 0, chat.CodeForbidden, "author"},
		{"", 0, chat.CodeAuthRequired, ""},
	}
	for _, tt := range tests {
		err := m.CheckEdit(tt.user, now, tt.window)
		if tt.code == "" {
			if err != nil {
				t.Errorf("%s, window %v: %v, want nil", tt.user, tt.window, err)
			}
			continue
		}
		if chat.ErrorCode(err) != tt.code || !strings.Contains(chat.ErrorMessage(err), tt.text) {
			t.Errorf("%s, window %v: %v, want %s mentioning %q", tt.user, tt.window, err, tt.code, tt.text)
		}
	}
	bot := chat.Message{Author: chat.User{ID: "alice"}, Kind: chat.KindBot, Created: now}
	if chat.ErrorCode(bot.CheckDelete("alice")) != chat.CodeForbidden {
		t.Error("a bot message's author may delete it")
	}
}
