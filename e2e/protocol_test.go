package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// ---- helpers shared by protocol_test.go, history_test.go and shutdown_test.go ----

// subtest runs f as a subtest of t on srv. While it runs, the server's
// helpers (and so the clients dialed through it) report failures on the
// subtest, on the goroutine running it, and those clients are closed when
// the subtest ends.
func subtest(t *testing.T, srv *Server, name string, f func(t *testing.T)) {
	t.Helper()
	t.Run(name, func(t *testing.T) {
		prev := srv.t
		srv.t = t
		defer func() { srv.t = prev }()
		f(t)
	})
}

// next returns the next frame the client received, whatever it is.
func next(c *Client) Frame {
	c.t.Helper()
	return c.WaitFor("any", func(Frame) bool { return true })
}

// tryRequest is Request for goroutines other than the test's: it never
// fails the test, it returns an error instead (the connection closed, or
// no reply within waitTime).
func tryRequest(c *Client, typ string, fields map[string]any) (Frame, error) {
	id := fmt.Sprintf("g%d", c.ids.Add(1))
	msg := map[string]any{"type": typ, "id": id}
	for k, v := range fields {
		msg[k] = v
	}
	b, err := json.Marshal(msg)
	if err != nil {
		return nil, err
	}
	if err := c.Conn.WriteMessage(websocket.TextMessage, b); err != nil {
		return nil, fmt.Errorf("writing %s: %w", typ, err)
	}
	f, ok := c.take(func(f Frame) bool { return f.Str("id") == id }, waitTime)
	if !ok {
		return nil, fmt.Errorf("no reply to %s %s (closed: %v)", typ, id, c.CloseErr())
	}
	return f, nil
}

// takeMessages takes the next n message events of room, in arrival order,
// failing if they do not all arrive within waitTime each.
func takeMessages(c *Client, room string, n int) []Frame {
	c.t.Helper()
	out := make([]Frame, 0, n)
	for len(out) < n {
		f, ok := c.take(func(f Frame) bool { return f.Type() == "message" && f.Str("room") == room }, waitTime)
		if !ok {
			c.t.Fatalf("got %d of %d messages (closed: %v)", len(out), n, c.CloseErr())
		}
		out = append(out, f.Obj("message"))
	}
	return out
}

// ids lists the ids of messages.
func ids(msgs []Frame) []string {
	out := make([]string, len(msgs))
	for i, m := range msgs {
		out[i] = m.Str("id")
	}
	return out
}

// more is the "more" flag of a joined or history frame.
func more(f Frame) bool {
	b, _ := f["more"].(bool)
	return b
}

// seqOf is the seq of a message.
func seqOf(m Frame) int64 {
	f, _ := m["seq"].(float64)
	return int64(f)
}

// checkSeqIncreasing fails unless the seqs of msgs strictly increase.
func checkSeqIncreasing(t testing.TB, what string, msgs []Frame) {
	t.Helper()
	for i := 1; i < len(msgs); i++ {
		if a, b := seqOf(msgs[i-1]), seqOf(msgs[i]); b <= a {
			t.Fatalf("%s: seq of #%d (%s) is %d, not above the previous one (%s) %d", what, i, msgs[i].Str("id"), b, msgs[i-1].Str("id"), a)
		}
	}
}

// firstDiff describes the first difference between two id lists, "" if
// they are equal.
func firstDiff(got, want []string) string {
	for i := 0; i < len(got) && i < len(want); i++ {
		if got[i] != want[i] {
			return fmt.Sprintf("at #%d got %s, want %s (len got %d, want %d)", i, got[i], want[i], len(got), len(want))
		}
	}
	if len(got) != len(want) {
		return fmt.Sprintf("len got %d, want %d", len(got), len(want))
	}
	return ""
}

// closeCode is the code of a websocket close error, -1 if err is not one.
func closeCode(err error) int {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return ce.Code
	}
	return -1
}

// ---- bad input, sanitizing, ping, presence, typing ----

func TestProtocolRequests(t *testing.T) {
	srv := StartServer(t)
	general := srv.General()

	subtest(t, srv, "BadInput", func(t *testing.T) {
		alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
		c := srv.Dial(alice)
		guest := srv.Dial(nil)
		long := strings.Repeat("x", 4001)
		frame := func(m map[string]any) string {
			b, err := json.Marshal(m)
			if err != nil {
				t.Fatal(err)
			}
			return string(b)
		}
		cases := []struct {
			name  string
			guest bool
			frame string
			id    any // the id the error must carry, nil for none
			code  string
		}{
			{name: "malformed JSON", frame: `{"type":"ping","id":"b1"`, code: "bad_request"},
			{name: "not JSON", frame: `hello`, code: "bad_request"},
			{name: "array", frame: `[{"type":"ping","id":"b2"}]`, code: "bad_request"},
			{name: "string", frame: `"ping"`, code: "bad_request"},
			{name: "number", frame: `42`, code: "bad_request"},
			{name: "null", frame: `null`, code: "bad_request"},
			{name: "missing type", frame: `{"id":"b3","room":"` + general + `"}`, id: "b3", code: "bad_request"},
			{name: "type as number", frame: `{"id":"b4","type":7}`, id: "b4", code: "bad_request"},
			{name: "unknown type", frame: `{"type":"shout","id":"b5"}`, id: "b5", code: "bad_request"},
			{name: "join without room", frame: `{"type":"join","id":"b6"}`, id: "b6", code: "bad_request"},
			{name: "join blank room", frame: `{"type":"join","id":"b7","room":"   "}`, id: "b7", code: "bad_request"},
			{name: "room as number", frame: `{"type":"join","id":"b8","room":42}`, id: "b8", code: "bad_request"},
			{name: "numeric id echoed", frame: `{"type":"join","id":17}`, id: float64(17), code: "bad_request"},
			{name: "send empty text", frame: frame(map[string]any{"type": "send", "id": "b9", "room": general, "text": ""}), id: "b9", code: "bad_request"},
			{name: "send without text", frame: frame(map[string]any{"type": "send", "id": "b10", "room": general}), id: "b10", code: "bad_request"},
			{name: "send whitespace text", frame: frame(map[string]any{"type": "send", "id": "b11", "room": general, "text": " \n\t \r\n "}), id: "b11", code: "bad_request"},
			{name: "send control-only text", frame: frame(map[string]any{"type": "send", "id": "b12", "room": general, "text": "\u0000\u0007\u001b"}), id: "b12", code: "bad_request"},
			{name: "send 4001 characters", frame: frame(map[string]any{"type": "send", "id": "b13", "room": general, "text": long}), id: "b13", code: "too_large"},
			{name: "join unknown room", frame: `{"type":"join","id":"b14","room":"nosuchroom00000"}`, id: "b14", code: "not_found"},
			{name: "send to unknown room", frame: `{"type":"send","id":"b15","room":"nosuchroom00000","text":"hi"}`, id: "b15", code: "not_found"},
			{name: "history of unknown room", frame: `{"type":"history","id":"b16","room":"nosuchroom00000"}`, id: "b16", code: "not_found"},
			{name: "history limit 101", frame: `{"type":"history","id":"b17","room":"` + general + `","limit":101}`, id: "b17", code: "bad_request"},
			{name: "history limit -1", frame: `{"type":"history","id":"b18","room":"` + general + `","limit":-1}`, id: "b18", code: "bad_request"},
			{name: "history limit string", frame: `{"type":"history","id":"b19","room":"` + general + `","limit":"x"}`, id: "b19", code: "bad_request"},
			{name: "history limit fraction", frame: `{"type":"history","id":"b20","room":"` + general + `","limit":2.5}`, id: "b20", code: "bad_request"},
			{name: "history unknown before", frame: `{"type":"history","id":"b21","room":"` + general + `","before":"nosuchmsg000000"}`, id: "b21", code: "not_found"},
			{name: "resume without after", frame: `{"type":"resume","id":"b22","room":"` + general + `"}`, id: "b22", code: "bad_request"},
			{name: "resume unknown message", frame: `{"type":"resume","id":"b23","room":"` + general + `","after":"nosuchmsg000000"}`, id: "b23", code: "not_found"},
			{name: "dm to self", frame: `{"type":"dm","id":"b24","to":"` + alice.ID + `","text":"me"}`, id: "b24", code: "bad_request"},
			{name: "dm to missing user", frame: `{"type":"dm","id":"b25","to":"nosuchuser00000","text":"hi"}`, id: "b25", code: "not_found"},
			{name: "dm without to", frame: `{"type":"dm","id":"b26","text":"hi"}`, id: "b26", code: "bad_request"},
			{name: "id as object", frame: `{"type":"ping","id":{"a":1}}`, code: "bad_request"},
			{name: "id as array", frame: `{"type":"ping","id":["a"]}`, code: "bad_request"},
			{name: "id too long", frame: `{"type":"ping","id":"` + strings.Repeat("i", 80) + `"}`, code: "bad_request"},
			{name: "duplicate member", frame: `{"type":"join","id":"b27","room":"` + general + `","room":"x"}`, id: "b27", code: "bad_request"},
			{name: "guest send", guest: true, frame: `{"type":"send","id":"b28","room":"` + general + `","text":"hi"}`, id: "b28", code: "auth_required"},
			{name: "guest dm", guest: true, frame: `{"type":"dm","id":"b29","to":"` + bob.ID + `","text":"hi"}`, id: "b29", code: "auth_required"},
			{name: "guest typing", guest: true, frame: `{"type":"typing","id":"b30","room":"` + general + `"}`, id: "b30", code: "auth_required"},
		}
		for i, tc := range cases {
			conn := c
			if tc.guest {
				conn = guest
			}
			conn.SendRaw(tc.frame)
			pingID := fmt.Sprintf("after-%d", i)
			conn.SendRaw(`{"type":"ping","id":"` + pingID + `"}`)

			// The very next frame is the error, the one after it the pong:
			// one reply per request, in order, and the socket still works.
			f := next(conn)
			if f.Type() != "error" || f.Str("code") != tc.code {
				t.Fatalf("%s: got %v, want an error with code %s", tc.name, f, tc.code)
			}
			if f.Str("message") == "" {
				t.Errorf("%s: error without a message: %v", tc.name, f)
			}
			gotID, hasID := f["id"]
			if tc.id == nil && hasID {
				t.Errorf("%s: error id = %v, want none", tc.name, gotID)
			}
			if tc.id != nil && !reflect.DeepEqual(gotID, tc.id) {
				t.Errorf("%s: error id = %#v, want %#v", tc.name, gotID, tc.id)
			}
			if p := next(conn); p.Type() != "pong" || p.Str("id") != pingID {
				t.Fatalf("%s: after the error got %v, want pong %s", tc.name, p, pingID)
			}
		}
		if err := c.CloseErr(); err != nil {
			t.Fatalf("connection closed: %v", err)
		}
	})

	subtest(t, srv, "TextLimitCountsCharacters", func(t *testing.T) {
		alice := srv.NewUser("Alice")
		c := srv.Dial(alice)
		text := strings.Repeat("é", 4000) // 8000 bytes, 4000 characters
		if got := c.Send(general, text).Str("text"); got != text {
			t.Fatalf("acked text has %d characters, want 4000", len([]rune(got)))
		}
		f := c.Request("send", map[string]any{"room": general, "text": text + "é"})
		if f.Type() != "error" || f.Str("code") != "too_large" {
			t.Fatalf("4001 characters: got %v, want too_large", f)
		}
	})

	subtest(t, srv, "ControlCharsStrippedHTMLKept", func(t *testing.T) {
		alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
		a, b := srv.Dial(alice), srv.Dial(bob)
		b.Join(general)
		const sent = "a\u0000b\u0007c\r\nd <img src=x onerror=alert(1)>"
		const want = "abc\nd <img src=x onerror=alert(1)>"
		msg := a.Send(general, sent)
		if got := msg.Str("text"); got != want {
			t.Errorf("acked text = %q, want %q", got, want)
		}
		if got := b.ExpectMessage(general, want); got.Str("id") != msg.Str("id") {
			t.Errorf("broadcast id = %s, want %s", got.Str("id"), msg.Str("id"))
		}
		var rec Record
		srv.MustDo("GET", "/api/collections/messages/records/"+msg.Str("id"), alice.Token, nil, &rec)
		if got, _ := rec["text"].(string); got != want {
			t.Errorf("REST text = %q, want %q", got, want)
		}
	})

	subtest(t, srv, "Ping", func(t *testing.T) {
		c := srv.Dial(srv.NewUser("Alice"))
		if f := c.Request("ping", nil); f.Type() != "pong" {
			t.Fatalf("got %v, want pong", f)
		}
		c.SendRaw(`{"type":"ping","id":12345}`)
		f := next(c)
		if f.Type() != "pong" || !reflect.DeepEqual(f["id"], float64(12345)) {
			t.Fatalf("got %v, want pong with id 12345", f)
		}
		c.SendRaw(`{"type":"ping"}`)
		f = next(c)
		if _, has := f["id"]; f.Type() != "pong" || has {
			t.Fatalf("got %v, want pong without id", f)
		}
		g := srv.Dial(nil) // guests may ping too
		if f := g.Request("ping", nil); f.Type() != "pong" {
			t.Fatalf("guest: got %v, want pong", f)
		}
	})

	subtest(t, srv, "PresenceTwoTabs", func(t *testing.T) {
		alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
		b := srv.Dial(bob)
		b.Join(general)
		a1, a2 := srv.Dial(alice), srv.DialTicket(alice)
		aboutAlice := func(status string) func(Frame) bool {
			return func(f Frame) bool {
				return f.Type() == "presence" && f.Str("room") == general &&
					f.Obj("user").Str("id") == alice.ID && (status == "" || f.Str("status") == status)
			}
		}

		a1.Join(general)
		b.WaitFor("presence online alice", aboutAlice("online"))
		joined := a2.Join(general)
		var n int
		var sawBob bool
		for _, u := range joined.List("online") {
			n += map[bool]int{true: 1}[u.Str("id") == alice.ID]
			sawBob = sawBob || u.Str("id") == bob.ID
		}
		if n != 1 || !sawBob {
			t.Errorf("second tab's joined online = %v, want alice once and bob", joined["online"])
		}
		b.ExpectNone("second presence about alice", aboutAlice(""))

		if f := a1.MustRequest("leave", map[string]any{"room": general}); f.Type() != "left" || f.Str("room") != general {
			t.Fatalf("leave: got %v, want left", f)
		}
		b.ExpectNone("presence while alice still has a tab in the room", aboutAlice(""))

		a2.Close()
		a2.WaitClosed()
		b.WaitFor("presence offline alice", aboutAlice("offline"))
		b.ExpectNone("second offline presence", aboutAlice(""))

		// A user's own connections never hear about themselves.
		for i, c := range []*Client{a1, a2} {
			for _, f := range c.Pending() {
				if aboutAlice("")(f) {
					t.Errorf("alice's tab %d got presence about herself: %v", i+1, f)
				}
			}
		}
	})

	subtest(t, srv, "Typing", func(t *testing.T) {
		alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
		side := srv.CreateRoom("Side "+alice.ID, "public").ID()
		a1, a2, b := srv.Dial(alice), srv.Dial(alice), srv.Dial(bob)
		for _, c := range []*Client{a1, a2, b} {
			c.Join(general)
		}
		typingAlice := func(f Frame) bool {
			return f.Type() == "typing" && f.Obj("user").Str("id") == alice.ID
		}
		a1.SendRaw(`{"type":"typing","room":"` + general + `"}`)
		f := b.WaitFor("typing", typingAlice)
		if f.Str("room") != general || f.Obj("user").Str("name") != "Alice" {
			t.Errorf("typing = %v, want room %s user Alice", f, general)
		}
		a2.ExpectNone("typing about herself (other tab)", typingAlice)
		if got := a1.Pending(); slices.ContainsFunc(got, typingAlice) {
			t.Errorf("typing tab got its own typing: %v", got)
		}

		f = a1.Request("typing", map[string]any{"room": side})
		if f.Type() != "error" || f.Str("code") != "bad_request" {
			t.Errorf("typing in a room not joined: got %v, want error bad_request", f)
		}
		b.ExpectNone("typing from a room not joined", func(f Frame) bool { return typingAlice(f) && f.Str("room") == side })
	})
}

// ---- close codes ----

func TestProtocolCloseCodes(t *testing.T) {
	srv := StartServer(t, WithEnv("CHAT_WS_MAX_FRAME=2048"))
	general := srv.General()
	bob, carol := srv.NewUser("Bob"), srv.NewUser("Carol")
	b, c := srv.Dial(bob), srv.Dial(carol)
	b.Join(general)
	c.Join(general)
	stillWorks := func(t *testing.T, text string) {
		msg := b.Send(general, text)
		if got := c.ExpectMessage(general, text); got.Str("id") != msg.Str("id") {
			t.Fatalf("carol got %s, want %s", got.Str("id"), msg.Str("id"))
		}
	}

	subtest(t, srv, "Binary", func(t *testing.T) {
		b.t, c.t = t, t
		a := srv.Dial(srv.NewUser("Alice"))
		a.Join(general)
		if err := a.Conn.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"ping"}`)); err != nil {
			t.Fatal(err)
		}
		if got := closeCode(a.WaitClosed()); got != websocket.CloseUnsupportedData {
			t.Fatalf("close code = %d (%v), want %d", got, a.CloseErr(), websocket.CloseUnsupportedData)
		}
		stillWorks(t, "after binary")
	})

	subtest(t, srv, "TooBig", func(t *testing.T) {
		b.t, c.t = t, t
		a := srv.Dial(srv.NewUser("Alice"))
		a.Join(general)
		// A frame just under the limit is fine.
		okText := strings.Repeat("y", 1900)
		if got := a.Send(general, okText).Str("text"); got != okText {
			t.Fatalf("1900-character text not acked intact")
		}
		big, _ := json.Marshal(map[string]any{"type": "send", "id": "big", "room": general, "text": strings.Repeat("z", 4096)})
		// The client writes the message as two frames (its write buffer
		// is 4 KiB); the server may close after reading the first one's
		// header, so the rest can meet a reset, or the client's reader may
		// have answered the server's close frame already. That is fine.
		if err := a.Conn.WriteMessage(websocket.TextMessage, big); err != nil {
			if !errors.Is(err, syscall.ECONNRESET) && !errors.Is(err, syscall.EPIPE) && !errors.Is(err, websocket.ErrCloseSent) {
				t.Fatal(err)
			}
			t.Logf("writing the big frame: %v", err)
		}
		if got := closeCode(a.WaitClosed()); got != websocket.CloseMessageTooBig {
			t.Fatalf("close code = %d (%v), want %d", got, a.CloseErr(), websocket.CloseMessageTooBig)
		}
		if slices.ContainsFunc(a.Pending(), func(f Frame) bool { return f.Str("id") == "big" }) {
			t.Errorf("the oversized request was answered: %v", a.Pending())
		}
		c.ExpectNone("the oversized message", func(f Frame) bool {
			return f.Type() == "message" && strings.HasPrefix(f.Obj("message").Str("text"), "zzz")
		})
		stillWorks(t, "after too big")
	})
}

// ---- ordering ----

func TestMessageOrderSameForEveryone(t *testing.T) {
	srv := StartServer(t, WithEnv("CHAT_SEND_RATE=0")) // sends faster than the per-user limit on purpose
	general := srv.General()
	const senders, perSender = 4, 50

	listeners := []*Client{srv.Dial(srv.NewUser("L1")), srv.DialTicket(srv.NewUser("L2")), srv.Dial(nil)}
	for _, l := range listeners {
		l.Join(general)
	}
	conns := make([]*Client, senders)
	for i := range conns {
		conns[i] = srv.Dial(srv.NewUser(fmt.Sprintf("Sender %d", i)))
	}

	acked := make([][]Frame, senders)
	errs := make([]error, senders)
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range perSender {
				f, err := tryRequest(c, "send", map[string]any{"room": general, "text": fmt.Sprintf("s%d-%d", i, j)})
				if err == nil && f.Type() != "ack" {
					err = fmt.Errorf("send %d: got %v, want ack", j, f)
				}
				if err != nil {
					errs[i] = err
					return
				}
				acked[i] = append(acked[i], f.Obj("message"))
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}

	ackedIDs := make(map[string]bool)
	for i, msgs := range acked {
		// Each sender waited for each ack, so its messages are in order.
		checkSeqIncreasing(t, fmt.Sprintf("sender %d acks", i), msgs)
		for _, m := range msgs {
			if ackedIDs[m.Str("id")] {
				t.Fatalf("id %s acked twice", m.Str("id"))
			}
			ackedIDs[m.Str("id")] = true
		}
	}
	const total = senders * perSender
	if len(ackedIDs) != total {
		t.Fatalf("acked %d distinct ids, want %d", len(ackedIDs), total)
	}

	var first []string
	for i, l := range listeners {
		msgs := takeMessages(l, general, total)
		got := ids(msgs)
		seen := make(map[string]bool)
		for _, id := range got {
			if !ackedIDs[id] || seen[id] {
				t.Fatalf("listener %d: id %s unknown or repeated", i, id)
			}
			seen[id] = true
		}
		checkSeqIncreasing(t, fmt.Sprintf("listener %d", i), msgs)
		if i == 0 {
			first = got
		} else if d := firstDiff(got, first); d != "" {
			t.Fatalf("listener %d order differs from listener 0: %s", i, d)
		}
	}
	listeners[0].ExpectNone("extra message", func(f Frame) bool { return f.Type() == "message" })

	// The history, paged backwards, has the same order.
	var hist []Frame
	f := listeners[1].MustRequest("history", map[string]any{"room": general, "limit": 100})
	for {
		hist = append(f.List("messages"), hist...)
		if !more(f) {
			break
		}
		f = listeners[1].MustRequest("history", map[string]any{"room": general, "before": hist[0].Str("id"), "limit": 100})
	}
	if d := firstDiff(ids(hist), first); d != "" {
		t.Fatalf("history order differs from the live order: %s", d)
	}
	t.Logf("%d messages from %d senders, same order for %d listeners and the history", total, senders, len(listeners))
}

// ---- slow reader ----

func TestSlowReaderDropped(t *testing.T) {
	srv := StartServer(t, WithEnv("CHAT_WS_QUEUE=16", "CHAT_SEND_RATE=0")) // sends faster than the per-user limit on purpose
	general := srv.General()
	slowUser, bob, carol := srv.NewUser("Slow"), srv.NewUser("Bob"), srv.NewUser("Carol")

	listener := srv.Dial(carol)
	listener.Join(general)

	// The slow client: small TCP buffers, one join frame, then it reads
	// nothing until the flood is over. Besides a small receive buffer it
	// advertises a small MSS: on loopback (MTU 64 KiB) the server's kernel
	// would otherwise size its send buffer to a few MB and absorb the
	// whole flood; with 536-byte segments it keeps some tens of KB.
	dialer := websocket.Dialer{
		HandshakeTimeout: waitTime,
		NetDialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
				var serr error
				if err := rc.Control(func(fd uintptr) {
					serr = errors.Join(
						syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096),
						syscall.SetsockoptInt(int(fd), syscall.IPPROTO_TCP, syscall.TCP_MAXSEG, 536),
					)
				}); err != nil {
					return err
				}
				return serr
			}}
			return d.DialContext(ctx, network, addr)
		},
	}
	h := http.Header{}
	h.Set("Authorization", "Bearer "+slowUser.Token)
	slow, resp, err := dialer.Dial(srv.WSURL(""), h)
	if err != nil {
		t.Fatalf("dial: %v (%s)", err, respStatus(resp))
	}
	defer slow.Close()
	if err := slow.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","id":"j","room":"`+general+`"}`)); err != nil {
		t.Fatal(err)
	}

	// The slow user's join is done once the listener hears of it.
	listener.WaitFor("slow user online", func(f Frame) bool {
		return f.Type() == "presence" && f.Obj("user").Str("id") == slowUser.ID && f.Str("status") == "online"
	})

	sender := srv.Dial(bob)
	sender.Join(general)
	const flood = 300
	pad := strings.Repeat("p", 1000)
	start := time.Now()
	var sent []string
	for i := range flood {
		sent = append(sent, sender.Send(general, fmt.Sprintf("%04d %s", i, pad)).Str("id"))
	}
	t.Logf("sender: %d acks in %v", len(sent), time.Since(start).Round(time.Millisecond))

	if d := firstDiff(ids(takeMessages(listener, general, flood)), sent); d != "" {
		t.Fatalf("listener: %s", d)
	}
	if d := firstDiff(ids(takeMessages(sender, general, flood)), sent); d != "" {
		t.Fatalf("sender's own broadcasts: %s", d)
	}

	// Now read the slow connection: it must end, with 4000 if the close
	// frame made it through.
	_ = slow.SetReadDeadline(time.Now().Add(waitTime))
	var got int
	for {
		_, data, err := slow.ReadMessage()
		if err != nil {
			var ne net.Error
			switch {
			case closeCode(err) == 4000:
				t.Logf("slow client: close 4000 after %d messages", got)
			case closeCode(err) >= 0:
				t.Fatalf("slow client: close code %d (%v), want 4000", closeCode(err), err)
			case errors.As(err, &ne) && ne.Timeout():
				t.Fatalf("slow client still connected after reading %d of %d messages", got, flood)
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), errors.Is(err, syscall.ECONNRESET):
				t.Logf("slow client: dropped without a visible close frame (%v) after %d messages", err, got)
			default:
				t.Logf("slow client: read ended with %v after %d messages", err, got)
			}
			break
		}
		var f Frame
		if json.Unmarshal(data, &f) == nil && f.Type() == "message" {
			got++
		}
	}
	if got >= flood {
		t.Errorf("slow client got all %d messages: it was not dropped for being slow", got)
	}
	// The server forgot it: the others see it go offline.
	listener.WaitFor("slow user offline", func(f Frame) bool {
		return f.Type() == "presence" && f.Obj("user").Str("id") == slowUser.ID && f.Str("status") == "offline"
	})
	if err := listener.CloseErr(); err != nil {
		t.Fatalf("listener closed: %v", err)
	}
}
