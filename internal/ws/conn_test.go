package ws_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"pocketchat/internal/chat"
	"pocketchat/internal/ws"
)

// testEncoder is a wire format of its own: it wraps type and payload, and
// uses a slot other than the native codec's.
type testEncoder struct{}

func (testEncoder) Slot() int { return 1 }

func (testEncoder) Encode(e *chat.Event) []byte {
	return []byte("<" + e.Type + ":" + string(e.Payload) + ">")
}

func reply(typ string, payload []byte) *chat.Event {
	return &chat.Event{Type: typ, Payload: append([]byte(nil), payload...)}
}

// handlerFunc is the per-frame handler of a test server; c is the
// connection the frame came on.
type handlerFunc func(c *ws.Conn, ctx context.Context, frame []byte)

func echo(c *ws.Conn, _ context.Context, frame []byte) { c.Send(reply("echo", frame)) }

// testServer upgrades every request and runs a ws.Conn on it.
type testServer struct {
	url   string
	conns chan *ws.Conn // each connection, once it is about to Run
	runs  chan error    // what each Run returned
}

func newTestServer(t *testing.T, ctx context.Context, cfg ws.Config, handle handlerFunc) *testServer {
	t.Helper()
	s := &testServer{conns: make(chan *ws.Conn, 8), runs: make(chan error, 8)}
	var serving sync.WaitGroup
	var up websocket.Upgrader
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		serving.Add(1)
		defer serving.Done()
		conn, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		c := ws.New(conn, testEncoder{}, cfg)
		s.conns <- c
		s.runs <- c.Run(ctx, func(ctx context.Context, frame []byte) { handle(c, ctx, frame) })
	}))
	t.Cleanup(func() { hs.Close(); waitServed(t, &serving) })
	s.url = "ws" + strings.TrimPrefix(hs.URL, "http")
	return s
}

// waitServed waits until every connection a test server served has ended,
// which the test's cleanups that close its clients make happen. Closing
// the server does not wait for them (they are hijacked), and a poller
// must outlive its connections.
func waitServed(t *testing.T, serving *sync.WaitGroup) {
	t.Helper()
	ended := make(chan struct{})
	go func() { serving.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(5 * time.Second):
		t.Error("served connections still open 5s after the test")
	}
}

// dial connects a client and returns it with the server's side of it.
func (s *testServer) dial(t *testing.T) (*websocket.Conn, *ws.Conn) {
	t.Helper()
	client, _, err := websocket.DefaultDialer.Dial(s.url, nil)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	select {
	case c := <-s.conns:
		return client, c
	case <-time.After(5 * time.Second):
		t.Fatal("server did not start the connection")
	}
	return nil, nil
}

// runResult waits for the connection's Run to return.
func (s *testServer) runResult(t *testing.T, within time.Duration) error {
	t.Helper()
	select {
	case err := <-s.runs:
		return err
	case <-time.After(within):
		t.Fatalf("Run did not return within %v", within)
	}
	return nil
}

// running reports whether Run is still going, without waiting.
func (s *testServer) running() bool {
	select {
	case err := <-s.runs:
		s.runs <- err // put it back for runResult
		return false
	default:
		return true
	}
}

// forEachReader runs test once per read mode, as subtests: "goroutine",
// where a goroutine per connection reads it, and "poller", where a Poller
// made for the subtest reads it when its socket has data. reader puts the
// mode into a Config. The poller is closed last, after the test's servers
// (cleanups run in reverse order) and so after its connections.
func forEachReader(t *testing.T, test func(t *testing.T, reader func(ws.Config) ws.Config)) {
	t.Run("goroutine", func(t *testing.T) {
		test(t, func(cfg ws.Config) ws.Config { return cfg })
	})
	t.Run("poller", func(t *testing.T) {
		p := newPoller(t)
		test(t, func(cfg ws.Config) ws.Config { cfg.Poller = p; return cfg })
	})
}

// newPoller starts a poller for the test and closes it in a cleanup:
// register it before the servers that use it.
func newPoller(t *testing.T) *ws.Poller {
	t.Helper()
	p, err := ws.NewPoller()
	if err != nil {
		t.Skipf("no poller: %v", err)
	}
	t.Cleanup(func() {
		if err := p.Close(); err != nil {
			t.Errorf("poller Close: %v", err)
		}
	})
	return p
}

func write(t *testing.T, client *websocket.Conn, typ int, data string) {
	t.Helper()
	if err := client.WriteMessage(typ, []byte(data)); err != nil {
		t.Fatalf("client write: %v", err)
	}
}

func readText(t *testing.T, client *websocket.Conn) string {
	t.Helper()
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	typ, b, err := client.ReadMessage()
	if err != nil {
		t.Fatalf("client read: %v", err)
	}
	if typ != websocket.TextMessage {
		t.Fatalf("client got frame type %d, want text", typ)
	}
	return string(b)
}

// expectClose reads until the connection ends and checks the close frame.
func expectClose(t *testing.T, client *websocket.Conn, wantCode int) *websocket.CloseError {
	t.Helper()
	_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
	for {
		_, b, err := client.ReadMessage()
		if err == nil {
			t.Errorf("client got %q, want close %d", b, wantCode)
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) {
			t.Fatalf("client read error %v, want close %d", err, wantCode)
		}
		if ce.Code != wantCode {
			t.Fatalf("close code %d (%q), want %d", ce.Code, ce.Text, wantCode)
		}
		return ce
	}
}

func TestFramesHandledInOrder(t *testing.T) {
	forEachReader(t, func(t *testing.T, reader func(ws.Config) ws.Config) {
		srv := newTestServer(t, context.Background(), reader(ws.Config{}), echo)
		client, _ := srv.dial(t)

		const n = 200
		for i := range n {
			write(t, client, websocket.TextMessage, strconv.Itoa(i))
		}
		for i := range n {
			if got, want := readText(t, client), fmt.Sprintf("<echo:%d>", i); got != want {
				t.Fatalf("reply %d = %q, want %q", i, got, want)
			}
		}

		// A normal close from the client is answered and ends Run.
		msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "bye")
		if err := client.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err != nil {
			t.Fatalf("client close: %v", err)
		}
		expectClose(t, client, websocket.CloseNormalClosure)
		err := srv.runResult(t, 5*time.Second)
		if !websocket.IsCloseError(err, websocket.CloseNormalClosure) {
			t.Errorf("Run = %v, want the client's close 1000", err)
		}
	})
}

func TestBinaryFrameCloses1003(t *testing.T) {
	forEachReader(t, func(t *testing.T, reader func(ws.Config) ws.Config) {
		srv := newTestServer(t, context.Background(), reader(ws.Config{}), echo)
		client, _ := srv.dial(t)

		write(t, client, websocket.TextMessage, "first")
		write(t, client, websocket.BinaryMessage, "\x00\x01")
		if got, want := readText(t, client), "<echo:first>"; got != want {
			t.Errorf("reply = %q, want %q", got, want)
		}
		expectClose(t, client, websocket.CloseUnsupportedData)
		if err := srv.runResult(t, 5*time.Second); !errors.Is(err, ws.ErrBinary) {
			t.Errorf("Run = %v, want ErrBinary", err)
		}
	})
}

func TestInvalidUTF8Closes1007(t *testing.T) {
	forEachReader(t, func(t *testing.T, reader func(ws.Config) ws.Config) {
		srv := newTestServer(t, context.Background(), reader(ws.Config{}), echo)
		client, _ := srv.dial(t)

		write(t, client, websocket.TextMessage, "first")
		write(t, client, websocket.TextMessage, "bad \xff\xfe")
		if got, want := readText(t, client), "<echo:first>"; got != want {
			t.Errorf("reply = %q, want %q", got, want)
		}
		expectClose(t, client, websocket.CloseInvalidFramePayloadData)
		if err := srv.runResult(t, 5*time.Second); !errors.Is(err, ws.ErrNotUTF8) {
			t.Errorf("Run = %v, want ErrNotUTF8", err)
		}
	})
}

func TestOversizeFrameCloses1009(t *testing.T) {
	forEachReader(t, func(t *testing.T, reader func(ws.Config) ws.Config) {
		srv := newTestServer(t, context.Background(), reader(ws.Config{MaxFrame: 1024}), echo)
		client, _ := srv.dial(t)

		atLimit := strings.Repeat("a", 1024)
		write(t, client, websocket.TextMessage, atLimit)
		if got, want := readText(t, client), "<echo:"+atLimit+">"; got != want {
			t.Errorf("reply to a 1024-byte frame = %d bytes, want %d", len(got), len(want))
		}
		write(t, client, websocket.TextMessage, strings.Repeat("b", 1025))
		expectClose(t, client, websocket.CloseMessageTooBig)
		if err := srv.runResult(t, 5*time.Second); !errors.Is(err, websocket.ErrReadLimit) {
			t.Errorf("Run = %v, want ErrReadLimit", err)
		}
	})
}

// Canceling Run's context closes with 1001, but only after the request in
// progress has finished and its reply has gone out.
func TestShutdownFinishesRequestInProgress(t *testing.T) {
	forEachReader(t, func(t *testing.T, reader func(ws.Config) ws.Config) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		started := make(chan struct{}, 1)
		srv := newTestServer(t, ctx, reader(ws.Config{}), func(c *ws.Conn, ctx context.Context, frame []byte) {
			if string(frame) != "slow" {
				echo(c, ctx, frame)
				return
			}
			started <- struct{}{}
			time.Sleep(200 * time.Millisecond)
			c.Send(reply("done", frame))
		})
		client, _ := srv.dial(t)

		write(t, client, websocket.TextMessage, "quick")
		if got := readText(t, client); got != "<echo:quick>" {
			t.Fatalf("reply = %q, want <echo:quick>", got)
		}
		write(t, client, websocket.TextMessage, "slow")
		select {
		case <-started:
		case <-time.After(5 * time.Second):
			t.Fatal("handler did not start")
		}
		cancel() // during the handler's sleep

		if got, want := readText(t, client), "<done:slow>"; got != want {
			t.Errorf("reply after shutdown began = %q, want %q", got, want)
		}
		ce := expectClose(t, client, websocket.CloseGoingAway)
		if ce.Text == "" {
			t.Error("close 1001 has no reason, want one")
		}
		if err := srv.runResult(t, 5*time.Second); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
	})
}

func TestShutdownIdle(t *testing.T) {
	forEachReader(t, func(t *testing.T, reader func(ws.Config) ws.Config) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		srv := newTestServer(t, ctx, reader(ws.Config{}), echo)
		client, c := srv.dial(t)

		start := time.Now()
		cancel()
		expectClose(t, client, websocket.CloseGoingAway)
		if err := srv.runResult(t, 5*time.Second); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("idle shutdown took %v, want it prompt", d)
		}
		select {
		case <-c.Done():
		default:
			t.Error("Done() not closed after shutdown")
		}
	})
}

func TestCloseFromAnotherGoroutine(t *testing.T) {
	forEachReader(t, func(t *testing.T, reader func(ws.Config) ws.Config) {
		tests := []struct {
			code   int
			reason string
		}{
			{ws.CloseTooSlow, "too slow"},
			{4001, "kicked"},
			{websocket.CloseNormalClosure, "bye"},
			{websocket.CloseGoingAway, "server shutting down"},
		}
		for _, tt := range tests {
			t.Run(strconv.Itoa(tt.code), func(t *testing.T) {
				srv := newTestServer(t, context.Background(), reader(ws.Config{}), echo)
				client, c := srv.dial(t)

				write(t, client, websocket.TextMessage, "hi")
				if got := readText(t, client); got != "<echo:hi>" {
					t.Fatalf("reply = %q, want <echo:hi>", got)
				}
				go c.Close(tt.code, tt.reason)
				ce := expectClose(t, client, tt.code)
				if ce.Text != tt.reason {
					t.Errorf("close reason = %q, want %q", ce.Text, tt.reason)
				}
				if err := srv.runResult(t, 5*time.Second); err != nil {
					t.Errorf("Run = %v, want nil", err)
				}
				// Later calls lose: the first close wins and nothing blocks.
				c.Close(4002, "again")
				c.Send(reply("late", nil))
			})
		}
	})
}

// A client that does not read is dropped, and Send never waits for it.
func TestSlowClientDisconnected(t *testing.T) {
	forEachReader(t, func(t *testing.T, reader func(ws.Config) ws.Config) {
		srv := newTestServer(t, context.Background(), reader(ws.Config{Queue: 4, WriteWait: time.Second}), echo)
		client, c := srv.dial(t)

		big := reply("big", bytes.Repeat([]byte("x"), 64<<10))
		const sends = 5000 // 320 MB if any of it were queued
		start := time.Now()
		for range sends {
			c.Send(big)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%d Sends took %v; Send must not block", sends, d)
		}
		select {
		case <-c.Done():
		default:
			t.Fatal("queue overflowed but the connection is not closing")
		}
		if got := c.CloseCode(); got != ws.CloseTooSlow {
			t.Errorf("CloseCode = %d, want %d", got, ws.CloseTooSlow)
		}
		if err := srv.runResult(t, 10*time.Second); err != nil {
			t.Errorf("Run = %v, want nil", err)
		}

		// Sends after the end return at once too.
		start = time.Now()
		for range sends {
			c.Send(big)
		}
		if d := time.Since(start); d > 5*time.Second {
			t.Errorf("%d Sends after Run returned took %v; Send must not block", sends, d)
		}

		// The client gets at most what was queued, then (unless the writer was
		// still stuck in a write when the connection ended) the close 4000.
		_ = client.SetReadDeadline(time.Now().Add(5 * time.Second))
		got := 0
		for {
			_, _, err := client.ReadMessage()
			if err == nil {
				got++
				continue
			}
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				if ce.Code != ws.CloseTooSlow && ce.Code != websocket.CloseAbnormalClosure {
					t.Errorf("close code %d, want %d", ce.Code, ws.CloseTooSlow)
				}
				t.Logf("client read %d events, then close %d", got, ce.Code)
			} else {
				t.Logf("client read %d events, then %v (close frame not observable)", got, err)
			}
			break
		}
		// The writer may still take a few queued events before it notices the
		// close (select picks at random among ready cases), but nowhere near
		// everything that was sent.
		if got > 64 {
			t.Errorf("client received %d of %d events, want only the few queued before the close", got, sends)
		}
	})
}

// pingCounter counts the pings a client answers; gorilla's default handler
// still sends the pong.
func pingCounter(client *websocket.Conn) *atomic.Int32 {
	var n atomic.Int32
	pong := client.PingHandler()
	client.SetPingHandler(func(data string) error {
		n.Add(1)
		return pong(data)
	})
	return &n
}

// readLoop reads until an error, passing text frames on; it closes done
// when it stops.
func readLoop(client *websocket.Conn) (frames <-chan string, done <-chan error) {
	f := make(chan string, 16)
	d := make(chan error, 1)
	go func() {
		for {
			_, b, err := client.ReadMessage()
			if err != nil {
				d <- err
				close(d)
				return
			}
			f <- string(b)
		}
	}()
	return f, d
}

var keepalive = ws.Config{PingPeriod: 50 * time.Millisecond, PongWait: 200 * time.Millisecond}

func TestPingKeepsReadingClientConnected(t *testing.T) {
	forEachReader(t, func(t *testing.T, reader func(ws.Config) ws.Config) {
		srv := newTestServer(t, context.Background(), reader(keepalive), echo)
		client, _ := srv.dial(t)
		pings := pingCounter(client)
		frames, done := readLoop(client)

		time.Sleep(time.Second) // five PongWaits
		if !srv.running() {
			t.Fatalf("Run returned while the client answered pings: %v", srv.runResult(t, 0))
		}
		if n := pings.Load(); n < 5 {
			t.Errorf("client saw %d pings in 1s at a 50ms period, want many", n)
		}
		write(t, client, websocket.TextMessage, "still here")
		select {
		case got := <-frames:
			if got != "<echo:still here>" {
				t.Errorf("reply = %q, want <echo:still here>", got)
			}
		case err := <-done:
			t.Fatalf("connection ended: %v", err)
		case <-time.After(5 * time.Second):
			t.Fatal("no reply")
		}

		client.Close()
		<-done
		if err := srv.runResult(t, 5*time.Second); err == nil {
			t.Error("Run = nil after the client vanished, want the read error")
		}
	})
}

func TestPingDropsSilentClient(t *testing.T) {
	forEachReader(t, func(t *testing.T, reader func(ws.Config) ws.Config) {
		srv := newTestServer(t, context.Background(), reader(keepalive), echo)
		client, c := srv.dial(t)
		pings := pingCounter(client)
		_, done := readLoop(client)

		time.Sleep(300 * time.Millisecond) // answering: stays
		if !srv.running() {
			t.Fatal("Run returned while the client answered pings")
		}
		if pings.Load() == 0 {
			t.Fatal("client saw no ping in 300ms")
		}
		// Stop reading: the client no longer answers pings.
		stopped := time.Now()
		_ = client.SetReadDeadline(stopped)
		<-done

		err := srv.runResult(t, keepalive.PongWait+2*time.Second)
		took := time.Since(stopped)
		if err == nil {
			t.Error("Run = nil, want the read timeout")
		}
		t.Logf("dropped %v after the client went silent", took)
		if limit := keepalive.PongWait + time.Second; took > limit {
			t.Errorf("dropped %v after the client went silent, want within ~%v", took, limit)
		}
		select {
		case <-c.Done():
		default:
			t.Error("Done() not closed after the drop")
		}
	})
}

// Every way a connection ends leaves no goroutine behind.
func TestNoLeakedGoroutines(t *testing.T) {
	before := runtime.NumGoroutine()
	for name, test := range map[string]func(*testing.T){
		"echo":           TestFramesHandledInOrder,
		"binary":         TestBinaryFrameCloses1003,
		"oversize":       TestOversizeFrameCloses1009,
		"shutdown":       TestShutdownFinishesRequestInProgress,
		"shutdown idle":  TestShutdownIdle,
		"close":          TestCloseFromAnotherGoroutine,
		"slow client":    TestSlowClientDisconnected,
		"silent client":  TestPingDropsSilentClient,
		"reading client": TestPingKeepsReadingClientConnected,
		"frame sizes":    TestFramesOfEverySizeInOrder,
		"client ping":    TestClientPingAnswered,
		"client close":   TestClientCloseEchoed,
		"settle":         TestSettledReplyBeforeClose,
		"idle":           TestIdleConnectionsHaveNoWriter,
	} {
		if !t.Run(name, test) {
			return
		}
	}
	var after int
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if after = runtime.NumGoroutine(); after <= before {
			return
		}
	}
	buf := make([]byte, 1<<16)
	buf = buf[:runtime.Stack(buf, true)]
	t.Errorf("%d goroutines before, %d after every connection ended:\n%s", before, after, buf)
}
