package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// wsTestServer upgrades with gorilla/websocket (a full implementation) and
// runs serve on each connection.
func wsTestServer(t *testing.T, serve func(*websocket.Conn)) string {
	t.Helper()
	up := websocket.Upgrader{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer tok" {
			http.Error(w, "no token", http.StatusUnauthorized)
			return
		}
		ws, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		serve(ws)
	}))
	t.Cleanup(srv.Close)
	return "ws" + strings.TrimPrefix(srv.URL, "http") + "/ws"
}

// testHandler passes every message it needs on a channel (copied) and
// counts those that start with "d" as deliveries.
type testHandler struct {
	need   func(head []byte) frameNeed
	frames chan string
	end    chan error
}

func newTestHandler(need func([]byte) frameNeed) *testHandler {
	if need == nil {
		need = func([]byte) frameNeed { return needWhole }
	}
	return &testHandler{need: need, frames: make(chan string, 100), end: make(chan error, 1)}
}

func (h *testHandler) classify(head []byte) frameNeed { return h.need(head) }
func (h *testHandler) frame(p []byte, _ int64) bool {
	h.frames <- string(p)
	return len(p) > 0 && p[0] == 'd'
}
func (h *testHandler) ended(err error) { h.end <- err }

func (h *testHandler) next(t *testing.T) string {
	t.Helper()
	select {
	case f := <-h.frames:
		return f
	case err := <-h.end:
		t.Fatalf("connection ended: %v", err)
	case <-time.After(5 * time.Second):
		t.Fatal("no frame")
	}
	return ""
}

// pollTest dials url with h and attaches the connection to a poller.
func pollTest(t *testing.T, url string, h frameHandler) (*wsConn, *atomic.Int64) {
	t.Helper()
	var count atomic.Int64
	p, err := newPoller(&count, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.close)
	c, err := dialWS(context.Background(), url, net.IPv4(127, 0, 0, 1), http.Header{"Authorization": {"Bearer tok"}}, 5*time.Second, h)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.attach(c); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.close)
	return c, &count
}

func TestWSEchoSkipAndBig(t *testing.T) {
	big := strings.Repeat("x", 3*wsReadBuffer) // larger than the read buffer
	url := wsTestServer(t, func(ws *websocket.Conn) {
		_ = ws.WriteMessage(websocket.TextMessage, []byte("hello, sent with the upgrade"))
		for {
			_, p, err := ws.ReadMessage()
			if err != nil {
				return
			}
			// Something to skip (also bigger than the buffer), the echo,
			// then a big one to read whole.
			_ = ws.WriteMessage(websocket.TextMessage, []byte("skip "+big))
			_ = ws.WriteMessage(websocket.TextMessage, p)
			_ = ws.WriteMessage(websocket.TextMessage, []byte("dbig "+big))
		}
	})
	h := newTestHandler(func(head []byte) frameNeed {
		if bytes.HasPrefix(head, []byte("skip")) {
			return needNone
		}
		return needWhole
	})
	c, count := pollTest(t, url, h)
	if got := h.next(t); got != "hello, sent with the upgrade" {
		t.Fatalf("first frame %.40q", got)
	}
	for i, msg := range []string{"d1", strings.Repeat("y", 200), "d" + strings.Repeat("z", 70000)} {
		if err := c.writeText([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		if got := h.next(t); got != msg {
			t.Fatalf("echo %d: %.40q, want %.40q", i, got, msg)
		}
		if got := h.next(t); got != "dbig "+big {
			t.Fatalf("big frame %d: %d bytes", i, len(got))
		}
	}
	deadline := time.Now().Add(2 * time.Second)
	for count.Load() != 5 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if n := count.Load(); n != 5 { // d1, the d… echo and three dbig
		t.Errorf("deliveries counted: %d, want 5", n)
	}
}

func TestWSHeadOnly(t *testing.T) {
	long := `{"type":"joined","id":-1,"online":[` + strings.Repeat(`"someone",`, 5000) + `""]}`
	url := wsTestServer(t, func(ws *websocket.Conn) {
		_ = ws.WriteMessage(websocket.TextMessage, []byte(long))
		_ = ws.WriteMessage(websocket.TextMessage, []byte(`{"type":"ack","id":1}`))
		_, _, _ = ws.ReadMessage()
	})
	h := newTestHandler(func(head []byte) frameNeed {
		if bytes.Contains(head, []byte("joined")) {
			return needHead
		}
		return needWhole
	})
	pollTest(t, url, h)
	if got := h.next(t); got != long[:headLen] {
		t.Fatalf("head: %q", got)
	}
	if got := h.next(t); got != `{"type":"ack","id":1}` {
		t.Fatalf("after the head: %q", got)
	}
}

func TestWSPingFragmentsClose(t *testing.T) {
	pong := make(chan string, 1)
	url := wsTestServer(t, func(ws *websocket.Conn) {
		ws.SetPongHandler(func(s string) error { pong <- s; return nil })
		// A message in two fragments with a ping between them, written
		// raw (gorilla writes a message in one frame).
		part1, part2 := `{"type":"message",`, `"n":2}`
		raw := append([]byte{opText, byte(len(part1))}, part1...)
		raw = append(raw, 0x80|opPing, 2, 'h', 'i')
		raw = append(raw, 0x80|opContinuation, byte(len(part2)))
		raw = append(raw, part2...)
		_, _ = ws.NetConn().Write(raw)
		go func() { _, _, _ = ws.ReadMessage() }() // reads the pong
		time.Sleep(100 * time.Millisecond)
		_ = ws.WriteMessage(websocket.CloseMessage, websocket.FormatCloseMessage(4000, "too slow"))
		time.Sleep(100 * time.Millisecond)
	})
	h := newTestHandler(nil)
	pollTest(t, url, h)
	if got := h.next(t); got != `{"type":"message","n":2}` {
		t.Fatalf("fragmented message: %q", got)
	}
	select {
	case s := <-pong:
		if s != "hi" {
			t.Errorf("pong %q, want hi", s)
		}
	case <-time.After(2 * time.Second):
		t.Error("no pong")
	}
	select {
	case err := <-h.end:
		var ce *wsCloseError
		if !errors.As(err, &ce) || ce.Code != 4000 || ce.Text != "too slow" {
			t.Fatalf("close: %v", err)
		}
	case <-time.After(2 * time.Second):
		t.Fatal("the close frame did not end the connection")
	}
}

func TestWSRefused(t *testing.T) {
	url := wsTestServer(t, func(*websocket.Conn) {})
	_, err := dialWS(context.Background(), url, net.IPv4(127, 0, 0, 1), nil, 5*time.Second, newTestHandler(nil))
	var he *wsHandshakeError
	if !errors.As(err, &he) || he.Status != http.StatusUnauthorized || he.Body != "no token" {
		t.Fatalf("err = %v, want a 401 refusal", err)
	}
}

func TestParseFrameHeader(t *testing.T) {
	tests := []struct {
		b          []byte
		fin        bool
		op         byte
		hlen, plen int
		bad        bool
	}{
		{b: []byte{0x81}},
		{b: []byte{0x81, 5}, fin: true, op: opText, hlen: 2, plen: 5},
		{b: []byte{0x01, 126, 1}},
		{b: []byte{0x01, 126, 1, 0}, op: opText, hlen: 4, plen: 256},
		{b: []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0}},
		{b: []byte{0x82, 127, 0, 0, 0, 0, 0, 1, 0, 0}, fin: true, op: opBinary, hlen: 10, plen: 65536},
		{b: []byte{0x82, 127, 0, 0, 0, 1, 0, 0, 0, 0}, bad: true}, // 4 GiB
		{b: []byte{0x81, 0x85}, bad: true},                        // masked
		{b: []byte{0xC1, 5}, bad: true},                           // RSV1
	}
	for _, tt := range tests {
		fin, op, hlen, plen, err := parseFrameHeader(tt.b)
		if tt.bad {
			if err == nil {
				t.Errorf("%x: no error", tt.b)
			}
			continue
		}
		if err != nil || fin != tt.fin || op != tt.op || hlen != tt.hlen || plen != tt.plen {
			t.Errorf("%x: %v %d %d %d %v", tt.b, fin, op, hlen, plen, err)
		}
	}
}

func TestMaskBytes(t *testing.T) {
	for n := range 40 {
		p := make([]byte, n)
		for i := range p {
			p[i] = byte(i * 7)
		}
		want := append([]byte(nil), p...)
		const key = 0x01020304
		var kb [4]byte
		binary.BigEndian.PutUint32(kb[:], key)
		for i := range want {
			want[i] ^= kb[i%4]
		}
		maskBytes(p, key)
		if !bytes.Equal(p, want) {
			t.Fatalf("n=%d: %x, want %x", n, p, want)
		}
	}
}

// TestSourceAddresses: connections from 127.0.0.2 and .3 arrive from
// there.
func TestSourceAddresses(t *testing.T) {
	seen := make(chan string, 4)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		host, _, _ := net.SplitHostPort(r.RemoteAddr)
		seen <- host
		http.Error(w, "no", http.StatusForbidden)
	}))
	defer srv.Close()
	url := "ws" + strings.TrimPrefix(srv.URL, "http")
	for i := 1; i <= 2; i++ {
		_, err := dialWS(context.Background(), url, sourceIP(i), nil, 5*time.Second, newTestHandler(nil))
		if err == nil {
			t.Fatal("upgrade accepted")
		}
		if got, want := <-seen, sourceIP(i).String(); got != want {
			t.Errorf("connection from %s, want %s", got, want)
		}
	}
	for k, want := range []int{0, 1, 2, 0, 1} {
		if got := sourceIndex(k, 3); got != want {
			t.Errorf("sourceIndex(%d, 3) = %d, want %d", k, got, want)
		}
	}
}

// TestConsumeChunks feeds a stream of frames (small, big, skipped,
// head-only, fragmented, a ping) to consume in chunks of every size, as
// reads may cut it anywhere, and checks the handler sees the same.
func TestConsumeChunks(t *testing.T) {
	frame := func(fin bool, op byte, p string) []byte {
		b := []byte{op}
		if fin {
			b[0] |= 0x80
		}
		switch n := len(p); {
		case n < 126:
			b = append(b, byte(n))
		case n <= 0xffff:
			b = append(b, 126, byte(n>>8), byte(n))
		default:
			b = append(b, 127)
			b = binary.BigEndian.AppendUint64(b, uint64(n))
		}
		return append(b, p...)
	}
	big := "w" + strings.Repeat("b", 100_000)
	skipped := "s" + strings.Repeat("x", 20_000)
	headOnly := "h" + strings.Repeat("y", 300)
	var stream []byte
	stream = append(stream, frame(true, opText, "w1")...)
	stream = append(stream, frame(true, opText, skipped)...)
	stream = append(stream, frame(true, opText, big)...)
	stream = append(stream, frame(true, opText, headOnly)...)
	stream = append(stream, frame(false, opText, "wpart1-")...)
	stream = append(stream, frame(true, opPong, "")...)
	stream = append(stream, frame(true, opContinuation, "part2")...)
	stream = append(stream, frame(true, opText, "")...)
	stream = append(stream, frame(true, opText, "w2")...)
	want := []string{"w1", big, headOnly[:headLen], "wpart1-part2", "", "w2"}

	for _, chunk := range []int{1, 2, 3, 7, 64, 65, 1000, 8191, 8192, 70_000, len(stream)} {
		h := newTestHandler(func(head []byte) frameNeed {
			switch {
			case bytes.HasPrefix(head, []byte("s")):
				return needNone
			case bytes.HasPrefix(head, []byte("h")):
				return needHead
			}
			return needWhole
		})
		h.frames = make(chan string, len(want)+1)
		c := &wsConn{h: h, fd: -1, wclosed: true, buf: make([]byte, wsReadBuffer)}
		rest := stream
		for len(rest) > 0 {
			if c.w == len(c.buf) {
				c.makeRoom(len(c.buf) + 1)
			}
			n := copy(c.buf[c.w:], rest[:min(chunk, len(rest))])
			c.w += n
			rest = rest[n:]
			if _, err := c.consume(0); err != nil {
				t.Fatalf("chunk %d: %v", chunk, err)
			}
		}
		close(h.frames)
		var got []string
		for f := range h.frames {
			got = append(got, f)
		}
		if len(got) != len(want) {
			t.Fatalf("chunk %d: %d frames, want %d", chunk, len(got), len(want))
		}
		for i := range want {
			if got[i] != want[i] {
				t.Errorf("chunk %d, frame %d: %.30q (%d bytes), want %.30q (%d bytes)", chunk, i, got[i], len(got[i]), want[i], len(want[i]))
			}
		}
		if c.r != 0 || c.w != 0 || len(c.buf) != wsReadBuffer {
			t.Errorf("chunk %d: buffer left at r=%d w=%d len=%d", chunk, c.r, c.w, len(c.buf))
		}
	}
}
