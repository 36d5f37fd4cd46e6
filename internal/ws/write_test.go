package ws_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"pocketchat/internal/chat"
	"pocketchat/internal/ws"
)

// Frames of every length class (7-bit, 16-bit and 64-bit lengths, and the
// edges between them) arrive intact and in order, also when many are
// written with one system call.
func TestFramesOfEverySizeInOrder(t *testing.T) {
	forEachReader(t, func(t *testing.T, reader func(ws.Config) ws.Config) {
		srv := newTestServer(t, context.Background(), reader(ws.Config{Queue: 20000}), echo)
		client, c := srv.dial(t)

		sizes := []int{0, 1, 117, 118, 119, 120, 125, 126, 127, 1000, 65535 - 8, 65536, 70000, 200000}
		var want []string
		for i, n := range sizes {
			p := bytes.Repeat([]byte{'a' + byte(i)}, n)
			c.Send(reply("s", p))
			want = append(want, "<s:"+string(p)+">")
		}
		for i := range 5000 {
			p := []byte(fmt.Sprintf("%05d", i))
			c.Send(reply("n", p))
			want = append(want, "<n:"+string(p)+">")
		}
		for i, w := range want {
			if got := readText(t, client); got != w {
				t.Fatalf("frame %d: got %d bytes %.40q…, want %d bytes %.40q…", i, len(got), got, len(w), w)
			}
		}
	})
}

// A client's ping is answered with a pong carrying its payload.
func TestClientPingAnswered(t *testing.T) {
	forEachReader(t, func(t *testing.T, reader func(ws.Config) ws.Config) {
		srv := newTestServer(t, context.Background(), reader(ws.Config{}), echo)
		client, _ := srv.dial(t)
		pongs := make(chan string, 1)
		client.SetPongHandler(func(data string) error { pongs <- data; return nil })
		_, done := readLoop(client)
		if err := client.WriteControl(websocket.PingMessage, []byte("are you there"), time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		select {
		case got := <-pongs:
			if got != "are you there" {
				t.Errorf("pong payload %q, want the ping's", got)
			}
		case err := <-done:
			t.Fatalf("connection ended: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("no pong")
		}
	})
}

// A client that closes gets its close code echoed and Run returns the
// close error.
func TestClientCloseEchoed(t *testing.T) {
	forEachReader(t, func(t *testing.T, reader func(ws.Config) ws.Config) {
		srv := newTestServer(t, context.Background(), reader(ws.Config{}), echo)
		client, c := srv.dial(t)
		msg := websocket.FormatCloseMessage(4321, "bye")
		if err := client.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
			t.Fatal(err)
		}
		expectClose(t, client, 4321)
		err := srv.runResult(t, 5*time.Second)
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != 4321 {
			t.Errorf("Run = %v, want the client's close 4321", err)
		}
		if got := c.CloseCode(); got != websocket.CloseNoStatusReceived {
			t.Errorf("CloseCode = %d, want %d (the client closed)", got, websocket.CloseNoStatusReceived)
		}
	})
}

// settleHandler answers its frame late, from Settle, like a session whose
// ack waits for a commit.
type settleHandler struct {
	c       *ws.Conn
	pending chan []byte
	closed  chan error
}

func (h *settleHandler) Frame(frame []byte) { h.pending <- frame }
func (h *settleHandler) Settle() {
	select {
	case f := <-h.pending:
		time.Sleep(100 * time.Millisecond) // the commit
		h.c.Send(reply("late", f))
	default:
	}
}
func (h *settleHandler) Closed(err error) { h.closed <- err }

// serveOnly upgrades and serves connections without holding the HTTP
// handler: what the chat server does. Its cleanup waits until every
// connection it served has ended (see waitServed).
func serveOnly(t *testing.T, cfg ws.Config, newHandler func(*ws.Conn) ws.Handler) (url string, conns <-chan *ws.Conn) {
	t.Helper()
	ch := make(chan *ws.Conn, 1024)
	var serving sync.WaitGroup
	up := websocket.Upgrader{ReadBufferSize: 1024, WriteBufferPool: &sync.Pool{}}
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serving.Add(1)
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			serving.Done()
			return
		}
		c := ws.New(conn, testEncoder{}, cfg)
		c.Serve(closedDone{newHandler(c), serving.Done})
		ch <- c
	}))
	t.Cleanup(func() { hs.Close(); waitServed(t, &serving) })
	return "ws" + strings.TrimPrefix(hs.URL, "http"), ch
}

// closedDone is a Handler that calls done after Closed.
type closedDone struct {
	ws.Handler
	done func()
}

func (h closedDone) Closed(err error) { h.Handler.Closed(err); h.done() }

// A reply still being produced when the server closes goes out before
// the close frame, and Closed comes after both.
func TestSettledReplyBeforeClose(t *testing.T) {
	forEachReader(t, func(t *testing.T, reader func(ws.Config) ws.Config) {
		var h *settleHandler
		url, conns := serveOnly(t, reader(ws.Config{}), func(c *ws.Conn) ws.Handler {
			h = &settleHandler{c: c, pending: make(chan []byte, 1), closed: make(chan error, 1)}
			return h
		})
		client, _, err := websocket.DefaultDialer.Dial(url, nil)
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		c := <-conns
		write(t, client, websocket.TextMessage, "commit me")
		time.Sleep(50 * time.Millisecond) // the frame is pending
		c.Close(websocket.CloseGoingAway, "server shutting down")
		if got := readText(t, client); got != "<late:commit me>" {
			t.Errorf("got %q, want the late reply before the close", got)
		}
		expectClose(t, client, websocket.CloseGoingAway)
		select {
		case err := <-h.closed:
			if err != nil {
				t.Errorf("Closed(%v), want nil: the server ended it", err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("Closed not called")
		}
	})
}

type nopHandler struct{ closed chan struct{} }

func (nopHandler) Frame([]byte)    {}
func (nopHandler) Settle()         {}
func (h nopHandler) Closed(error)  { close(h.closed) }
func newNop(*ws.Conn) ws.Handler   { return nopHandler{closed: make(chan struct{})} }
func eventOf(s string) *chat.Event { return reply("e", []byte(s)) }
func goroutines() int              { runtime.GC(); return runtime.NumGoroutine() }
func sendAll(cs []*ws.Conn, s string) {
	for _, c := range cs {
		c.Send(eventOf(s))
	}
}

// An idle connection runs one goroutine (its reader): the writer exists
// only while something is queued, and comes back for the next event.
func TestIdleConnectionsHaveNoWriter(t *testing.T) {
	forEachReader(t, func(t *testing.T, reader func(ws.Config) ws.Config) {
		const n = 100
		url, conns := serveOnly(t, reader(ws.Config{}), newNop)
		before := goroutines()
		var clients []*websocket.Conn
		var server []*ws.Conn
		for range n {
			client, _, err := websocket.DefaultDialer.Dial(url, nil)
			if err != nil {
				t.Fatal(err)
			}
			defer client.Close()
			clients = append(clients, client)
			server = append(server, <-conns)
		}
		check := func(when string) {
			t.Helper()
			var got int
			for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if got = goroutines() - before; got <= n+5 {
					return
				}
			}
			t.Errorf("%s: %d goroutines for %d idle connections, want about one each", when, got, n)
		}
		check("after connecting")
		for round := range 3 {
			sendAll(server, fmt.Sprint(round))
			for i, client := range clients {
				if got, want := readText(t, client), fmt.Sprintf("<e:%d>", round); got != want {
					t.Fatalf("client %d: %q, want %q", i, got, want)
				}
			}
			check(fmt.Sprintf("after round %d", round))
		}
	})
}
