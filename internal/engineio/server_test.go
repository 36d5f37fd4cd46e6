package engineio_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"pocketchat/internal/engineio"
)

// waitTime bounds every wait for something that should happen.
const waitTime = 5 * time.Second

// session is a test handler: it records messages, echoes those starting
// with "echo:", and can hold a message until released (a slow request).
type session struct {
	sock   *engineio.Socket
	msgs   chan string
	closed chan string
	hold   chan struct{} // when set, OnMessage("slow") waits on it
}

func (h *session) OnMessage(data string) {
	if data == "slow" && h.hold != nil {
		<-h.hold
		h.sock.Send(engineio.TextMessage("reply"))
	}
	if rest, ok := strings.CutPrefix(data, "echo:"); ok {
		h.sock.Send(engineio.TextMessage(rest))
	}
	h.msgs <- data
}

func (h *session) OnClose(reason string) { h.closed <- reason }

func (h *session) expectClosed(t *testing.T) string {
	t.Helper()
	select {
	case r := <-h.closed:
		return r
	case <-time.After(waitTime):
		t.Fatal("session not closed")
		return ""
	}
}

func (h *session) expectMsg(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-h.msgs:
		if got != want {
			t.Fatalf("message %q, want %q", got, want)
		}
	case <-time.After(waitTime):
		t.Fatalf("no message %q", want)
	}
}

type server struct {
	t    *testing.T
	eio  *engineio.Server
	http *httptest.Server
	hold chan struct{}

	mu       sync.Mutex
	sessions map[string]*session
}

func newServer(t *testing.T, cfg engineio.Config) *server {
	t.Helper()
	s := &server{t: t, sessions: make(map[string]*session)}
	s.eio = engineio.NewServer(cfg, func(sock *engineio.Socket, r *http.Request) (engineio.Handler, error) {
		if r.URL.Query().Get("refuse") != "" {
			return nil, errors.New("no thanks")
		}
		h := &session{sock: sock, msgs: make(chan string, 1000), closed: make(chan string, 1), hold: s.hold}
		s.mu.Lock()
		s.sessions[sock.ID()] = h
		s.mu.Unlock()
		return h, nil
	})
	mux := http.NewServeMux()
	mux.Handle("/socket.io/", s.eio)
	s.http = httptest.NewServer(mux)
	t.Cleanup(func() {
		s.eio.Close()
		s.http.Close()
	})
	return s
}

func (s *server) url(query string) string { return s.http.URL + "/socket.io/?" + query }

// session returns the handler of the session sid.
func (s *server) session(sid string) *session {
	s.t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	h := s.sessions[sid]
	if h == nil {
		s.t.Fatalf("no session %q", sid)
	}
	return h
}

// dialOpen opens a WebSocket-only session and returns it with its
// handler, the open packet read.
func (s *server) dialOpen(version int) (*websocket.Conn, *session) {
	s.t.Helper()
	conn := s.dial(fmt.Sprintf("EIO=%d&transport=websocket", version))
	open := readFrame(s.t, conn)
	var hs handshake
	if !strings.HasPrefix(open, "0") || json.Unmarshal([]byte(open[1:]), &hs) != nil {
		s.t.Fatalf("open frame %q", open)
	}
	if len(hs.Upgrades) != 0 {
		s.t.Errorf("WebSocket session offers upgrades %v", hs.Upgrades)
	}
	return conn, s.session(hs.SID)
}

func (s *server) do(method, url, body string) (int, string) {
	s.t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		s.t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "text/plain;charset=UTF-8")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

type handshake struct {
	SID          string   `json:"sid"`
	Upgrades     []string `json:"upgrades"`
	PingInterval int      `json:"pingInterval"`
	PingTimeout  int      `json:"pingTimeout"`
	MaxPayload   *int     `json:"maxPayload"`
}

// open handshakes over polling and returns the sid and the session.
func (s *server) open(version int) (string, *session) {
	s.t.Helper()
	code, body := s.do("GET", s.url(fmt.Sprintf("EIO=%d&transport=polling&t=x", version)), "")
	if code != 200 {
		s.t.Fatalf("handshake: %d %s", code, body)
	}
	packets, err := engineio.DecodePayload(version, body)
	if err != nil || len(packets) != 1 || packets[0].Type != engineio.Open {
		s.t.Fatalf("handshake answer %q: %v", body, err)
	}
	var hs handshake
	if err := json.Unmarshal([]byte(packets[0].Data), &hs); err != nil {
		s.t.Fatal(err)
	}
	return hs.SID, s.session(hs.SID)
}

func (s *server) poll(version int, sid string) string {
	s.t.Helper()
	code, body := s.do("GET", s.url(fmt.Sprintf("EIO=%d&transport=polling&sid=%s", version, sid)), "")
	if code != 200 {
		s.t.Fatalf("poll: %d %s", code, body)
	}
	return body
}

func (s *server) post(version int, sid, payload string) {
	s.t.Helper()
	code, body := s.do("POST", s.url(fmt.Sprintf("EIO=%d&transport=polling&sid=%s", version, sid)), payload)
	if code != 200 || body != "ok" {
		s.t.Fatalf("post: %d %s", code, body)
	}
}

func (s *server) dial(query string) *websocket.Conn {
	s.t.Helper()
	u := "ws" + strings.TrimPrefix(s.url(query), "http")
	conn, resp, err := websocket.DefaultDialer.Dial(u, nil)
	if err != nil {
		s.t.Fatalf("dial: %v (%v)", err, resp)
	}
	s.t.Cleanup(func() { conn.Close() })
	return conn
}

func readFrame(t *testing.T, conn *websocket.Conn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(waitTime))
	_, b, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

func writeFrame(t *testing.T, conn *websocket.Conn, s string) {
	t.Helper()
	if err := conn.WriteMessage(websocket.TextMessage, []byte(s)); err != nil {
		t.Fatal(err)
	}
}

func TestHandshake(t *testing.T) {
	srv := newServer(t, engineio.Config{PingInterval: 25 * time.Second, PingTimeout: 20 * time.Second, MaxPayload: 1000})
	for _, version := range []int{4, 3} {
		t.Run(fmt.Sprint("v", version), func(t *testing.T) {
			resp, err := http.Get(srv.url(fmt.Sprintf("EIO=%d&transport=polling&t=N8hyd6w", version)))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=UTF-8" {
				t.Errorf("Content-Type %q", ct)
			}
			b, _ := io.ReadAll(resp.Body)
			packets, err := engineio.DecodePayload(version, string(b))
			if err != nil || len(packets) != 1 || packets[0].Type != engineio.Open {
				t.Fatalf("answer %q: %v", b, err)
			}
			var hs handshake
			if err := json.Unmarshal([]byte(packets[0].Data), &hs); err != nil {
				t.Fatal(err)
			}
			if len(hs.SID) != 20 || len(hs.Upgrades) != 1 || hs.Upgrades[0] != "websocket" ||
				hs.PingInterval != 25000 || hs.PingTimeout != 20000 {
				t.Errorf("handshake %+v", hs)
			}
			switch {
			case version == 4 && (hs.MaxPayload == nil || *hs.MaxPayload != 1000):
				t.Errorf("v4 maxPayload %v, want 1000", hs.MaxPayload)
			case version == 3 && hs.MaxPayload != nil:
				t.Errorf("v3 handshake has maxPayload")
			}
			srv.session(hs.SID)
		})
	}
}

func TestBadRequests(t *testing.T) {
	srv := newServer(t, engineio.Config{})
	sid, _ := srv.open(4)
	tests := []struct {
		method, query string
		status, code  int
	}{
		{"GET", "transport=polling", 400, 5},
		{"GET", "EIO=5&transport=polling", 400, 5},
		{"GET", "EIO=4&transport=flashsocket", 400, 0},
		{"GET", "EIO=4&transport=polling&j=0", 400, 3},
		{"GET", "EIO=4&transport=polling&sid=nope", 400, 1},
		{"POST", "EIO=4&transport=polling", 400, 2},
		{"GET", "EIO=3&transport=polling&sid=" + sid, 400, 3},
		{"GET", "EIO=4&transport=websocket", 400, 3}, // not an upgrade
		{"PUT", "EIO=4&transport=polling&sid=" + sid, 400, 2},
		{"GET", "EIO=4&transport=polling&refuse=1", 503, 3},
	}
	for _, tt := range tests {
		code, body := srv.do(tt.method, srv.url(tt.query), "")
		var e struct{ Code int }
		if err := json.Unmarshal([]byte(body), &e); err != nil || code != tt.status || e.Code != tt.code {
			t.Errorf("%s %s: %d %s, want %d with code %d", tt.method, tt.query, code, body, tt.status, tt.code)
		}
	}
}

func TestPolling(t *testing.T) {
	for _, tt := range []struct {
		version int
		post    string
		poll    string
	}{
		{4, "4echo:a\x1e4echo:😀\x1e4plain", "4a\x1e4😀"},
		{3, "7:4echo:a8:4echo:😀6:4plain", "2:4a3:4😀"},
	} {
		t.Run(fmt.Sprint("v", tt.version), func(t *testing.T) {
			srv := newServer(t, engineio.Config{})
			sid, h := srv.open(tt.version)
			srv.post(tt.version, sid, tt.post)
			h.expectMsg(t, "echo:a")
			h.expectMsg(t, "echo:😀")
			h.expectMsg(t, "plain")
			if got := srv.poll(tt.version, sid); got != tt.poll {
				t.Errorf("poll = %q, want %q", got, tt.poll)
			}
		})
	}
}

// A poll waits for something to send.
func TestPollWaits(t *testing.T) {
	srv := newServer(t, engineio.Config{})
	sid, h := srv.open(4)
	got := make(chan string, 1)
	go func() { got <- srv.poll(4, sid) }()
	select {
	case b := <-got:
		t.Fatalf("poll answered %q with nothing queued", b)
	case <-time.After(100 * time.Millisecond):
	}
	h.sock.Send(engineio.TextMessage("late"))
	select {
	case b := <-got:
		if b != "4late" {
			t.Fatalf("poll = %q", b)
		}
	case <-time.After(waitTime):
		t.Fatal("poll not answered")
	}
}

// Two polls at once break the protocol: the second is refused and the
// session closed, which ends the first with the close packet.
func TestOverlappingPolls(t *testing.T) {
	srv := newServer(t, engineio.Config{})
	sid, h := srv.open(4)
	first := make(chan string, 1)
	go func() { first <- srv.poll(4, sid) }()
	time.Sleep(50 * time.Millisecond)
	if code, _ := srv.do("GET", srv.url("EIO=4&transport=polling&sid="+sid), ""); code != 400 {
		t.Fatalf("second poll: %d", code)
	}
	if b := <-first; b != "1" {
		t.Fatalf("first poll = %q, want the close packet", b)
	}
	h.expectClosed(t)
	if code, _ := srv.do("GET", srv.url("EIO=4&transport=polling&sid="+sid), ""); code != 400 {
		t.Fatalf("poll after close: %d", code)
	}
}

// The upgrade loses and repeats nothing: messages sent all along arrive
// once each, in order, some by polls and the rest on the WebSocket.
func TestUpgradeLosesNothing(t *testing.T) {
	for _, version := range []int{4, 3} {
		t.Run(fmt.Sprint("v", version), func(t *testing.T) {
			srv := newServer(t, engineio.Config{})
			sid, h := srv.open(version)
			const n = 300
			go func() {
				for i := range n {
					h.sock.Send(engineio.TextMessage(fmt.Sprint("m", i)))
					time.Sleep(50 * time.Microsecond)
				}
			}()
			var got []string
			var pausing atomic.Bool
			polled := make(chan []string)
			go func() { // the client's polling, paused once the probe is answered
				var mine []string
				for {
					packets, err := engineio.DecodePayload(version, srv.poll(version, sid))
					if err != nil {
						t.Error(err)
					}
					for _, p := range packets {
						if p.Type == engineio.Message {
							mine = append(mine, p.Data)
						}
					}
					if pausing.Load() {
						polled <- mine
						return
					}
				}
			}()
			time.Sleep(2 * time.Millisecond)
			conn := srv.dial(fmt.Sprintf("EIO=%d&transport=websocket&sid=%s", version, sid))
			writeFrame(t, conn, "2probe")
			if f := readFrame(t, conn); f != "3probe" {
				t.Fatalf("probe answer %q", f)
			}
			pausing.Store(true)
			got = append(got, <-polled...)
			writeFrame(t, conn, "5")
			for len(got) < n {
				f := readFrame(t, conn)
				if !strings.HasPrefix(f, "4") {
					t.Fatalf("frame %q", f)
				}
				got = append(got, f[1:])
			}
			for i, m := range got {
				if m != fmt.Sprint("m", i) {
					t.Fatalf("message %d is %q: %v", i, m, got)
				}
			}
			if tr := h.sock.Transport(); tr != "websocket" {
				t.Errorf("transport %s", tr)
			}
			// Messages now come by the WebSocket; polls are refused.
			writeFrame(t, conn, "4echo:hi")
			h.expectMsg(t, "echo:hi")
			if f := readFrame(t, conn); f != "4hi" {
				t.Errorf("frame %q", f)
			}
			if code, _ := srv.do("GET", srv.url(fmt.Sprintf("EIO=%d&transport=polling&sid=%s", version, sid)), ""); code != 400 {
				t.Errorf("poll after upgrade: %d", code)
			}
		})
	}
}

// A probe that never completes leaves the session on polling.
func TestFailedProbe(t *testing.T) {
	srv := newServer(t, engineio.Config{UpgradeTimeout: 100 * time.Millisecond})
	sid, h := srv.open(4)
	conn := srv.dial("EIO=4&transport=websocket&sid=" + sid)
	writeFrame(t, conn, "2probe")
	if f := readFrame(t, conn); f != "3probe" {
		t.Fatalf("probe answer %q", f)
	}
	if _, _, err := conn.ReadMessage(); err == nil {
		t.Fatal("probe socket still open after the upgrade timeout")
	}
	h.sock.Send(engineio.TextMessage("still"))
	if got := srv.poll(4, sid); got != "4still" {
		t.Fatalf("poll = %q", got)
	}
}

func TestWebSocketOnly(t *testing.T) {
	srv := newServer(t, engineio.Config{})
	conn, h := srv.dialOpen(4)
	writeFrame(t, conn, "4echo:x")
	h.expectMsg(t, "echo:x")
	if f := readFrame(t, conn); f != "4x" {
		t.Fatalf("frame %q", f)
	}
	// Binary frames are dropped, the session goes on.
	if err := conn.WriteMessage(websocket.BinaryMessage, []byte{1, 2, 3}); err != nil {
		t.Fatal(err)
	}
	writeFrame(t, conn, "4after")
	h.expectMsg(t, "after")
	writeFrame(t, conn, "1")
	h.expectClosed(t)
}

func TestHeartbeatV4(t *testing.T) {
	cfg := engineio.Config{PingInterval: 50 * time.Millisecond, PingTimeout: 250 * time.Millisecond}
	t.Run("websocket", func(t *testing.T) {
		srv := newServer(t, cfg)
		conn, h := srv.dialOpen(4)
		for range 5 {
			if f := readFrame(t, conn); f != "2" {
				t.Fatalf("frame %q, want a ping", f)
			}
			writeFrame(t, conn, "3")
		}
		select {
		case r := <-h.closed:
			t.Fatalf("closed while answering pings: %s", r)
		default:
		}
		start := time.Now()
		if r := h.expectClosed(t); r != "ping timeout" {
			t.Errorf("reason %q", r)
		}
		if d := time.Since(start); d > time.Second {
			t.Errorf("closed after %v", d)
		}
	})
	t.Run("polling", func(t *testing.T) {
		srv := newServer(t, cfg)
		sid, h := srv.open(4)
		for range 3 {
			if b := srv.poll(4, sid); b != "2" {
				t.Fatalf("poll %q, want a ping", b)
			}
			srv.post(4, sid, "3")
		}
		// No more polls: closed within pingInterval + pingTimeout.
		if r := h.expectClosed(t); r != "ping timeout" {
			t.Errorf("reason %q", r)
		}
		if code, _ := srv.do("GET", srv.url("EIO=4&transport=polling&sid="+sid), ""); code != 400 {
			t.Errorf("poll after timeout: %d", code)
		}
	})
}

func TestHeartbeatV3(t *testing.T) {
	srv := newServer(t, engineio.Config{PingInterval: 50 * time.Millisecond, PingTimeout: 250 * time.Millisecond})
	sid, h := srv.open(3)
	for range 5 {
		srv.post(3, sid, "1:2")
		if b := srv.poll(3, sid); b != "1:3" {
			t.Fatalf("poll %q, want a pong", b)
		}
		time.Sleep(50 * time.Millisecond)
	}
	select {
	case r := <-h.closed:
		t.Fatalf("closed while pinging: %s", r)
	default:
	}
	if r := h.expectClosed(t); r != "ping timeout" {
		t.Errorf("reason %q", r)
	}
}

// A client whose queue fills up is dropped; polling or not.
func TestTooSlow(t *testing.T) {
	t.Run("polling", func(t *testing.T) {
		srv := newServer(t, engineio.Config{Queue: 4})
		sid, h := srv.open(4)
		for i := range 5 {
			ok := h.sock.Send(engineio.TextMessage(fmt.Sprint(i)))
			if ok != (i < 4) {
				t.Fatalf("Send %d = %v", i, ok)
			}
		}
		if r := h.expectClosed(t); !strings.HasPrefix(r, "too slow") {
			t.Errorf("reason %q", r)
		}
		if got := h.sock.CloseCode(); got != engineio.CloseTooSlow {
			t.Errorf("CloseCode = %d, want %d", got, engineio.CloseTooSlow)
		}
		if code, _ := srv.do("GET", srv.url("EIO=4&transport=polling&sid="+sid), ""); code != 400 {
			t.Errorf("poll after close: %d", code)
		}
	})
	t.Run("websocket", func(t *testing.T) {
		srv := newServer(t, engineio.Config{Queue: 4})
		conn, h := srv.dialOpen(4)
		for i := 0; h.sock.Send(engineio.TextMessage(strings.Repeat("x", 1<<16))) && i < 100000; i++ {
		}
		h.expectClosed(t)
		var err error
		for err == nil {
			_ = conn.SetReadDeadline(time.Now().Add(waitTime))
			_, _, err = conn.ReadMessage()
		}
		if !websocket.IsCloseError(err, engineio.CloseTooSlow) {
			t.Errorf("read error %v, want close %d", err, engineio.CloseTooSlow)
		}
	})
}

// Closing as the server goes away finishes the request being handled and
// writes its reply, and everything queued, before the close.
func TestCloseDrains(t *testing.T) {
	t.Run("polling", func(t *testing.T) {
		srv := newServer(t, engineio.Config{})
		srv.hold = make(chan struct{})
		sid, h := srv.open(4)
		pollDone := make(chan string, 1)
		go func() { pollDone <- srv.poll(4, sid) }()
		postDone := make(chan struct{})
		go func() { srv.post(4, sid, "4slow"); close(postDone) }()
		time.Sleep(50 * time.Millisecond) // the post is being handled
		h.sock.Close(websocket.CloseGoingAway, "server shutting down")
		time.Sleep(20 * time.Millisecond)
		close(srv.hold)
		if b := <-pollDone; b != "4reply\x1e1" {
			t.Fatalf("poll = %q, want the reply then the close packet", b)
		}
		<-postDone
		h.expectClosed(t)
	})
	t.Run("websocket", func(t *testing.T) {
		srv := newServer(t, engineio.Config{})
		conn, h := srv.dialOpen(4)
		for i := range 3 {
			h.sock.Send(engineio.TextMessage(fmt.Sprint(i)))
		}
		h.sock.Close(websocket.CloseGoingAway, "server shutting down")
		for i := range 3 {
			if f := readFrame(t, conn); f != fmt.Sprint("4", i) {
				t.Fatalf("frame %q", f)
			}
		}
		_, _, err := conn.ReadMessage()
		if !websocket.IsCloseError(err, websocket.CloseGoingAway) {
			t.Fatalf("read error %v, want 1001", err)
		}
		h.expectClosed(t)
	})
}

func TestTooLarge(t *testing.T) {
	srv := newServer(t, engineio.Config{MaxPayload: 100, MaxPollBody: 1000})
	sid, h := srv.open(4)
	srv.post(4, sid, "4"+strings.Repeat("x", 99)) // exactly the limit
	h.expectMsg(t, strings.Repeat("x", 99))
	if code, _ := srv.do("POST", srv.url("EIO=4&transport=polling&sid="+sid), "4"+strings.Repeat("x", 100)); code != 413 {
		t.Fatalf("oversize packet: %d", code)
	}
	h.expectClosed(t)

	sid, h = srv.open(4)
	if code, _ := srv.do("POST", srv.url("EIO=4&transport=polling&sid="+sid), strings.Repeat("4x\x1e", 400)+"4x"); code != 413 {
		t.Fatalf("oversize body: %d", code)
	}
	h.expectClosed(t)

	conn, h := srv.dialOpen(4)
	writeFrame(t, conn, "4"+strings.Repeat("x", 100))
	_, _, err := conn.ReadMessage()
	if !websocket.IsCloseError(err, websocket.CloseMessageTooBig) {
		t.Fatalf("read error %v, want 1009", err)
	}
	h.expectClosed(t)
}

// Binary messages are dropped whatever brings them.
func TestBinaryDropped(t *testing.T) {
	srv := newServer(t, engineio.Config{})
	sid, h := srv.open(4)
	srv.post(4, sid, "4before\x1ebAQID\x1e4after")
	h.expectMsg(t, "before")
	h.expectMsg(t, "after")

	sid, h = srv.open(3)
	// socket.io-client 2.x posts binary data as a binary payload.
	body := []byte{0, 3, 255, '4', 'h', 'i', 1, 4, 255, 4, 1, 2, 3}
	req, _ := http.NewRequest("POST", srv.url("EIO=3&transport=polling&sid="+sid), strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("binary payload: %d", resp.StatusCode)
	}
	h.expectMsg(t, "hi")
}

func TestMalformedPostClosesSession(t *testing.T) {
	srv := newServer(t, engineio.Config{})
	sid, h := srv.open(3)
	if code, _ := srv.do("POST", srv.url("EIO=3&transport=polling&sid="+sid), "9:4"); code != 400 {
		t.Fatalf("malformed payload: %d", code)
	}
	h.expectClosed(t)
}

// A poll that ends early (the client left, or the server is going away)
// closes the session.
func TestAbandonedPoll(t *testing.T) {
	srv := newServer(t, engineio.Config{})
	sid, h := srv.open(4)
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", srv.url("EIO=4&transport=polling&sid="+sid), nil)
	done := make(chan struct{})
	go func() {
		defer close(done)
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}()
	time.Sleep(50 * time.Millisecond)
	cancel()
	<-done
	h.expectClosed(t)
}

func TestServerClose(t *testing.T) {
	srv := newServer(t, engineio.Config{})
	_, h1 := srv.open(4)
	_, h2 := srv.dialOpen(3)
	if n := srv.eio.Len(); n != 2 {
		t.Fatalf("Len = %d", n)
	}
	srv.eio.Close()
	h1.expectClosed(t)
	h2.expectClosed(t)
	if n := srv.eio.Len(); n != 0 {
		t.Fatalf("Len = %d after Close", n)
	}
}

// Many sessions at once, on both transports, under the race detector.
func TestConcurrentSessions(t *testing.T) {
	srv := newServer(t, engineio.Config{})
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if i%2 == 0 {
				sid, h := srv.open(4)
				srv.post(4, sid, "4echo:a")
				if got := srv.poll(4, sid); got != "4a" {
					t.Errorf("poll %q", got)
				}
				h.expectMsg(t, "echo:a")
				return
			}
			conn, _ := srv.dialOpen(4)
			writeFrame(t, conn, "4echo:b")
			if f := readFrame(t, conn); f != "4b" {
				t.Errorf("frame %q", f)
			}
		}()
	}
	wg.Wait()
}
