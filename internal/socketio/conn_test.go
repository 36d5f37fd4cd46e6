package socketio_test

import (
	"context"
	"encoding/json"
	"errors"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/engineio"
	"pocketchat/internal/socketio"
)

// transport is an engine.io session that records what it is given.
type transport struct {
	version int

	mu     sync.Mutex
	sent   []string
	closes []int
}

func (t *transport) Send(m engineio.Outgoing) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.sent = append(t.sent, string(m.Encode()))
	return true
}

func (t *transport) Close(code int, reason string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.closes = append(t.closes, code)
}

func (t *transport) Version() int { return t.version }

// take returns and forgets what was sent.
func (t *transport) take() []string {
	t.mu.Lock()
	defer t.mu.Unlock()
	s := t.sent
	t.sent = nil
	return s
}

func (t *transport) closed() []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return append([]int(nil), t.closes...)
}

// fakeSession is a chat session that says hello on Start and records
// the requests it handles.
type fakeSession struct {
	out      socketio.Outbox
	startErr error
	extra    int // events delivered during Start, as a hub could

	mu      sync.Mutex
	handled []*chat.Request
	closed  int
	waits   int
}

func (s *fakeSession) Start(ctx context.Context) error {
	if s.startErr != nil {
		return s.startErr
	}
	s.out.Send(chat.MustEvent(chat.EventHello, chat.HelloPayload{}))
	for range s.extra {
		s.out.Send(chat.MustEvent(chat.EventTyping, chat.TypingPayload{Room: "r1"}))
	}
	return nil
}

func (s *fakeSession) Handle(ctx context.Context, req *chat.Request) {
	s.mu.Lock()
	s.handled = append(s.handled, req)
	s.mu.Unlock()
	ev := chat.MustEvent(chat.EventLeft, chat.LeftPayload{Room: req.Room})
	ev.ReplyTo = req.ID
	s.out.Send(ev)
}

// Wait counts its calls; Handle replies at once, so nothing is in flight.
func (s *fakeSession) Wait() {
	s.mu.Lock()
	s.waits++
	s.mu.Unlock()
}

func (s *fakeSession) Close() {
	s.mu.Lock()
	s.closed++
	s.mu.Unlock()
}

// connector hands out fake sessions and records the auth it was given.
type connector struct {
	refuse   error
	startErr error
	extra    int

	mu       sync.Mutex
	auths    []string
	sessions []*fakeSession
}

func (c *connector) connect(ctx context.Context, auth json.RawMessage, out socketio.Outbox) (socketio.Session, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.auths = append(c.auths, string(auth))
	if c.refuse != nil {
		return nil, c.refuse
	}
	s := &fakeSession{out: out, startErr: c.startErr, extra: c.extra}
	c.sessions = append(c.sessions, s)
	return s, nil
}

func (c *connector) last(t *testing.T) *fakeSession {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.sessions) == 0 {
		t.Fatal("no session")
	}
	return c.sessions[len(c.sessions)-1]
}

func newConn(version int, c *connector, cfg socketio.Config) (*socketio.Conn, *transport) {
	tr := &transport{version: version}
	conn := socketio.NewConn(tr, c.connect, cfg)
	conn.OnOpen()
	return conn, tr
}

var sidReply = regexp.MustCompile(`^40\{"sid":"[A-Za-z0-9_-]{20}"\}$`)

func expectSent(t *testing.T, tr *transport, want ...string) {
	t.Helper()
	got := tr.take()
	if len(got) != len(want) {
		t.Fatalf("sent %q, want %q", got, want)
	}
	for i := range got {
		if want[i] == "<sid>" {
			if !sidReply.MatchString(got[i]) {
				t.Errorf("packet %d = %q, want the CONNECT reply with a sid", i, got[i])
			}
			continue
		}
		if got[i] != want[i] {
			t.Errorf("packet %d = %q, want %q", i, got[i], want[i])
		}
	}
}

const helloPacket = `42["hello",{"user":null,"rooms":null}]`

func TestConnectV5(t *testing.T) {
	c := &connector{extra: 2}
	conn, tr := newConn(4, c, socketio.Config{})
	expectSent(t, tr)
	conn.OnMessage(`0{"token":"tok"}`)
	// The reply first, then hello, then what arrived meanwhile.
	typing := `42["typing",{"room":"r1","user":{"id":"","name":"","avatar":""}}]`
	expectSent(t, tr, "<sid>", helloPacket, typing, typing)
	if !conn.Connected() || len(c.auths) != 1 || c.auths[0] != `{"token":"tok"}` {
		t.Fatalf("connected %v, auths %q", conn.Connected(), c.auths)
	}
	conn.OnMessage(`0{"token":"again"}`) // ignored: already connected
	expectSent(t, tr)

	conn.OnMessage(`23["leave",{"room":"r1"}]`)
	expectSent(t, tr, `433[{"room":"r1"}]`)
	conn.OnMessage(`2["leave",{"room":"r2"}]`)
	expectSent(t, tr, `42["left",{"room":"r2"}]`)
	if h := c.last(t).handled; len(h) != 2 || string(h[0].ID) != "3" || h[0].Type != "leave" || h[1].ID != nil {
		t.Fatalf("handled %+v", h)
	}
}

func TestConnectV4Implicit(t *testing.T) {
	c := &connector{}
	conn, tr := newConn(3, c, socketio.Config{})
	expectSent(t, tr, "40", helloPacket)
	if !conn.Connected() || len(c.auths) != 1 || c.auths[0] != "" {
		t.Fatalf("connected %v, auths %q", conn.Connected(), c.auths)
	}
}

func TestRefused(t *testing.T) {
	refusal := &socketio.Refusal{Message: "The token is invalid or expired.", Data: map[string]int{"status": 401}}
	t.Run("v5", func(t *testing.T) {
		c := &connector{refuse: refusal}
		conn, tr := newConn(4, c, socketio.Config{})
		conn.OnMessage(`0{"token":"bad"}`)
		expectSent(t, tr, `44{"message":"The token is invalid or expired.","data":{"status":401}}`)
		conn.OnMessage(`21["send",{"room":"r1","text":"hi"}]`)
		expectSent(t, tr, `431[{"error":{"code":"bad_request","message":"not connected: connect to the namespace \"/\" first"}}]`)
		// The client may try again with other credentials.
		c.refuse = nil
		conn.OnMessage(`0{"token":"good"}`)
		expectSent(t, tr, "<sid>", helloPacket)
	})
	t.Run("v4", func(t *testing.T) {
		c := &connector{refuse: refusal}
		conn, tr := newConn(3, c, socketio.Config{})
		expectSent(t, tr, `44"The token is invalid or expired."`)
		if conn.Connected() {
			t.Fatal("connected")
		}
	})
	t.Run("internal", func(t *testing.T) {
		c := &connector{refuse: errors.New("database is down")}
		conn, tr := newConn(4, c, socketio.Config{})
		conn.OnMessage(`0`)
		expectSent(t, tr, `44{"message":"internal error"}`)
	})
	t.Run("start fails", func(t *testing.T) {
		c := &connector{startErr: errors.New("no rooms")}
		conn, tr := newConn(4, c, socketio.Config{})
		conn.OnMessage(`0`)
		expectSent(t, tr, `44{"message":"internal error"}`)
		if s := c.last(t); s.closed != 1 || conn.Connected() {
			t.Fatalf("session closed %d times, connected %v", s.closed, conn.Connected())
		}
	})
	t.Run("auth not an object", func(t *testing.T) {
		c := &connector{}
		conn, tr := newConn(4, c, socketio.Config{})
		conn.OnMessage(`0"token"`)
		expectSent(t, tr, `44{"message":"auth must be an object: {token} or {ticket}"}`)
		if len(c.auths) != 0 {
			t.Fatal("connector called")
		}
	})
	t.Run("other namespace", func(t *testing.T) {
		conn, tr := newConn(4, &connector{}, socketio.Config{})
		conn.OnMessage(`0/admin,`)
		expectSent(t, tr, `44/admin,{"message":"Invalid namespace: pocketchat serves only \"/\""}`)
		conn.OnMessage(`2/admin,["join",{}]`) // ignored
		expectSent(t, tr)
		conn3, tr3 := newConn(3, &connector{}, socketio.Config{})
		tr3.take()
		conn3.OnMessage(`0/admin?x=1,`)
		expectSent(t, tr3, `44/admin,"Invalid namespace: pocketchat serves only \"/\""`)
	})
}

func TestBadPackets(t *testing.T) {
	c := &connector{}
	conn, tr := newConn(4, c, socketio.Config{})
	conn.OnMessage(`0`)
	tr.take()
	conn.OnMessage(`9`)
	expectSent(t, tr, `42["error",{"code":"bad_request","message":"malformed socket.io packet"}]`)
	conn.OnMessage(`25["join","r1"]`)
	expectSent(t, tr, `435[{"error":{"code":"bad_request","message":"the argument of \"join\" must be an object of the request's fields"}}]`)
	conn.OnMessage(`51-6["send",{"room":"r1","text":{"_placeholder":true,"num":0}}]`)
	expectSent(t, tr, `436[{"error":{"code":"bad_request","message":"binary attachments are not supported: send JSON (strings, numbers, objects)"}}]`)
	conn.OnMessage(`51-["send",{"_placeholder":true,"num":0}]`)
	expectSent(t, tr, `42["error",{"code":"bad_request","message":"binary attachments are not supported: send JSON (strings, numbers, objects)"}]`)
	conn.OnMessage(`31[]`) // an ACK: the server asked for none
	conn.OnMessage(`61-1[{"_placeholder":true,"num":0}]`)
	expectSent(t, tr)
	if n := len(c.last(t).handled); n != 0 {
		t.Fatalf("%d requests handled", n)
	}
}

func TestDisconnect(t *testing.T) {
	c := &connector{}
	closed := make(chan string, 1)
	conn, tr := newConn(4, c, socketio.Config{ConnectTimeout: 50 * time.Millisecond, OnClose: func(r string) { closed <- r }})
	conn.OnMessage(`0`)
	tr.take()
	s := c.last(t)
	conn.OnMessage(`1`)
	if s.closed != 1 || conn.Connected() {
		t.Fatalf("session closed %d times, connected %v", s.closed, conn.Connected())
	}
	// Events sent by the old session after DISCONNECT go nowhere.
	s.out.Send(chat.MustEvent(chat.EventLeft, chat.LeftPayload{}))
	expectSent(t, tr)
	// Not connected again in time: the engine.io session is closed.
	deadline := time.Now().Add(time.Second)
	for len(tr.closed()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := tr.closed(); len(got) != 1 || got[0] != 1000 {
		t.Fatalf("transport closes %v", got)
	}
	conn.OnClose("client closed")
	conn.OnClose("again")
	if r := <-closed; r != "client closed" {
		t.Fatalf("OnClose reason %q", r)
	}
	select {
	case r := <-closed:
		t.Fatalf("OnClose called twice: %q", r)
	default:
	}
}

func TestCloseEndsSession(t *testing.T) {
	c := &connector{}
	conn, tr := newConn(3, c, socketio.Config{})
	tr.take()
	conn.OnClose("ping timeout")
	if s := c.last(t); s.closed != 1 {
		t.Fatalf("session closed %d times", s.closed)
	}
	if conn.Connected() {
		t.Fatal("still connected")
	}
}

// Settle waits for the connected session's replies in flight, and does
// nothing before a session or after it ended.
func TestSettle(t *testing.T) {
	c := &connector{}
	conn, _ := newConn(4, c, socketio.Config{})
	conn.Settle() // not connected yet
	conn.OnMessage("0")
	s := c.last(t)
	conn.Settle()
	if s.waits != 1 {
		t.Fatalf("session waited %d times, want 1", s.waits)
	}
	conn.OnClose("transport close")
	conn.Settle()
	if s.waits != 1 {
		t.Errorf("session waited %d times after it closed, want still 1", s.waits)
	}
}

func TestConnectTimeout(t *testing.T) {
	_, tr := newConn(4, &connector{}, socketio.Config{ConnectTimeout: 20 * time.Millisecond})
	deadline := time.Now().Add(time.Second)
	for len(tr.closed()) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if len(tr.closed()) != 1 {
		t.Fatal("not closed after the connect timeout")
	}
	conn, tr := newConn(4, &connector{}, socketio.Config{ConnectTimeout: 20 * time.Millisecond})
	conn.OnMessage("0")
	time.Sleep(60 * time.Millisecond)
	if len(tr.closed()) != 0 {
		t.Fatal("closed although connected")
	}
}

// A session that queues more than Hold events before it is connected is
// too slow.
func TestHoldOverflow(t *testing.T) {
	c := &connector{extra: 10}
	conn, tr := newConn(4, c, socketio.Config{Hold: 5})
	conn.OnMessage("0")
	if got := tr.closed(); len(got) != 1 || got[0] != engineio.CloseTooSlow {
		t.Fatalf("transport closes %v", got)
	}
	for _, p := range tr.take() {
		if strings.HasPrefix(p, "42") {
			t.Fatalf("event %q sent", p)
		}
	}
}

// A session ends its client (a ban, a flood): what it queued goes out,
// then a DISCONNECT, which socket.io-client reports as "io server
// disconnect" and does not reconnect after, then the transport closes with
// a code that lets the queue drain. Nothing is sent after.
func TestEnd(t *testing.T) {
	c := &connector{}
	conn, tr := newConn(4, c, socketio.Config{})
	conn.OnMessage("0")
	expectSent(t, tr, "<sid>", helloPacket)
	out := c.last(t).out
	out.Send(chat.ErrorEvent(nil, chat.Errorf(chat.CodeForbidden, "this account is banned")))
	out.End("banned")
	out.Send(chat.MustEvent(chat.EventTyping, chat.TypingPayload{Room: "r1"}))
	out.End("again")
	expectSent(t, tr, `42["error",{"code":"forbidden","message":"this account is banned"}]`, "41")
	if got := tr.closed(); len(got) != 1 || got[0] != 1000 {
		t.Fatalf("transport closes %v, want one with 1000", got)
	}
}
