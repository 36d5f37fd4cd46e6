package ws_test

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"pocketchat/internal/ws"
)

// Tests of polled connections (Config.Poller) with a hand-made client,
// for input gorilla's client never sends: split, merged, interleaved and
// malformed frames.

// recorder is a Handler that passes on each frame and the error Closed
// got. frame, if set, is called after a frame is passed on.
type recorder struct {
	frames chan string
	closed chan error
	frame  func(string)
}

func (r *recorder) Frame(f []byte) {
	r.frames <- string(f)
	if r.frame != nil {
		r.frame(string(f))
	}
}
func (r *recorder) Settle()          {}
func (r *recorder) Closed(err error) { r.closed <- err }

// next returns the next frame the handler got.
func (r *recorder) next(t *testing.T) string {
	t.Helper()
	select {
	case f := <-r.frames:
		return f
	case <-time.After(5 * time.Second):
		t.Fatal("handler got no frame within 5s")
	}
	return ""
}

// expect checks that the handler gets want, in order.
func (r *recorder) expect(t *testing.T, want ...string) {
	t.Helper()
	for i, w := range want {
		if got := r.next(t); got != w {
			t.Fatalf("frame %d: handler got %d bytes %.40q, want %d bytes %.40q", i, len(got), got, len(w), w)
		}
	}
}

// closedErr waits for Closed and returns its error.
func (r *recorder) closedErr(t *testing.T) error {
	t.Helper()
	select {
	case err := <-r.closed:
		return err
	case <-time.After(5 * time.Second):
		t.Fatal("Closed not called within 5s")
	}
	return nil
}

// servePolled serves connections read by a poller made for the test;
// each gets a recorder, sent on the channel in the order they come,
// with setup (if not nil) applied first.
func servePolled(t *testing.T, cfg ws.Config, setup func(*recorder)) (url string, recs <-chan *recorder) {
	t.Helper()
	cfg.Poller = newPoller(t) // before serveOnly: closed after its cleanup
	ch := make(chan *recorder, 1024)
	url, _ = serveOnly(t, cfg, func(*ws.Conn) ws.Handler {
		r := &recorder{frames: make(chan string, 1024), closed: make(chan error, 1)}
		if setup != nil {
			setup(r)
		}
		ch <- r
		return r
	})
	return url, ch
}

// nextRecorder returns the recorder of the connection just made.
func nextRecorder(t *testing.T, recs <-chan *recorder) *recorder {
	t.Helper()
	select {
	case r := <-recs:
		return r
	case <-time.After(5 * time.Second):
		t.Fatal("server did not serve the connection")
	}
	return nil
}

// rawClient is a WebSocket client that writes whatever bytes it is given.
type rawClient struct {
	t  *testing.T
	nc net.Conn
	br *bufio.Reader
}

// dialRaw connects to a test server's URL and does the opening handshake.
func dialRaw(t *testing.T, url string) *rawClient {
	t.Helper()
	addr := strings.TrimPrefix(url, "ws://")
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatalf("dial: %v", err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
	// The key and its accept value are RFC 6455's example.
	fmt.Fprintf(nc, "GET / HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n", addr)
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("handshake: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusSwitchingProtocols || resp.Header.Get("Sec-WebSocket-Accept") != "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=" {
		t.Fatalf("handshake answered %s, accept %q", resp.Status, resp.Header.Get("Sec-WebSocket-Accept"))
	}
	_ = nc.SetDeadline(time.Time{})
	return &rawClient{t: t, nc: nc, br: br}
}

// send writes the frames with one write.
func (c *rawClient) send(frames ...[]byte) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.nc.Write(concat(frames...)); err != nil {
		c.t.Fatalf("client write: %v", err)
	}
}

// readFrame reads one server frame; it fails the test on a read error.
func (c *rawClient) readFrame() (op byte, payload []byte) {
	c.t.Helper()
	op, payload, err := c.tryReadFrame()
	if err != nil {
		c.t.Fatalf("client read: %v", err)
	}
	return op, payload
}

func (c *rawClient) tryReadFrame() (op byte, payload []byte, err error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(5 * time.Second))
	var h [2]byte
	if _, err := io.ReadFull(c.br, h[:]); err != nil {
		return 0, nil, err
	}
	if h[0] != 0x80|h[0]&0x0F || h[1]&0x80 != 0 {
		return 0, nil, fmt.Errorf("server frame header %#x %#x: want FIN, no RSV, no mask", h[0], h[1])
	}
	n := uint64(h[1])
	switch n {
	case 126, 127:
		ext := make([]byte, 2+6*(n-126))
		if _, err := io.ReadFull(c.br, ext); err != nil {
			return 0, nil, err
		}
		n = 0
		for _, b := range ext {
			n = n<<8 | uint64(b)
		}
	}
	if n > 1<<20 {
		return 0, nil, fmt.Errorf("server frame of %d bytes", n)
	}
	payload = make([]byte, n)
	if _, err := io.ReadFull(c.br, payload); err != nil {
		return 0, nil, err
	}
	return h[0] & 0x0F, payload, nil
}

// expectPong reads the next frame, which must be a pong with payload.
func (c *rawClient) expectPong(payload string) {
	c.t.Helper()
	op, got := c.readFrame()
	if op != opPong || string(got) != payload {
		c.t.Fatalf("client got opcode %#x %q, want a pong %q", op, got, payload)
	}
}

// expectClose reads the next frame, which must be a close with code, and
// then the end of the stream: the server closes the socket.
func (c *rawClient) expectClose(code int) {
	c.t.Helper()
	op, body := c.readFrame()
	if op != opClose || len(body) < 2 {
		c.t.Fatalf("client got opcode %#x %q, want a close %d", op, body, code)
	}
	if got := int(binary.BigEndian.Uint16(body)); got != code {
		c.t.Fatalf("close code %d (%q), want %d", got, body[2:], code)
	}
	c.expectEnd()
}

// expectEnd checks that the server closed the socket: nothing more to
// read but the end of the stream (or a reset).
func (c *rawClient) expectEnd() {
	c.t.Helper()
	op, b, err := c.tryReadFrame()
	if err == nil {
		c.t.Fatalf("client got opcode %#x %q after the end, want EOF", op, b)
	}
	if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
		c.t.Fatalf("client read %v, want EOF: the server closes the socket", err)
	}
}

// Opcodes and header bits of client frames.
const (
	opCont   = 0x0
	opText   = 0x1
	opBinary = 0x2
	opClose  = 0x8
	opPing   = 0x9
	opPong   = 0xA
	fin      = 0x80
	rsv1     = 0x40
)

var maskKey = [4]byte{0x37, 0xfa, 0x21, 0x3d}

// header is a masked client frame's header; b0 holds FIN, RSV and the
// opcode.
func header(b0 byte, n int) []byte {
	h := []byte{b0}
	switch {
	case n < 126:
		h = append(h, 0x80|byte(n))
	case n <= 0xFFFF:
		h = binary.BigEndian.AppendUint16(append(h, 0x80|126), uint16(n))
	default:
		h = binary.BigEndian.AppendUint64(append(h, 0x80|127), uint64(n))
	}
	return append(h, maskKey[:]...)
}

// frame is a masked client frame.
func frame(b0 byte, payload string) []byte {
	f := header(b0, len(payload))
	for i := range len(payload) {
		f = append(f, payload[i]^maskKey[i%4])
	}
	return f
}

func text(s string) []byte { return frame(fin|opText, s) }

func closeBody(code int, reason string) string {
	return string(binary.BigEndian.AppendUint16(nil, uint16(code))) + reason
}

func concat(frames ...[]byte) []byte {
	var b []byte
	for _, f := range frames {
		b = append(b, f...)
	}
	return b
}

// A fragmented message is handed over once, whole; pings between its
// fragments are answered at once.
func TestPolledFragmentsWithPings(t *testing.T) {
	url, recs := servePolled(t, ws.Config{}, nil)
	c := dialRaw(t, url)
	rec := nextRecorder(t, recs)

	for _, f := range [][]byte{
		frame(opText, "hel"),
		frame(fin|opPing, "p1"),
		frame(opCont, "lo "),
		frame(fin|opPing, "p2"),
		frame(fin|opCont, "world"),
		text("after"),
	} {
		c.send(f)
		time.Sleep(5 * time.Millisecond) // likely a read of its own
	}
	c.expectPong("p1")
	c.expectPong("p2")
	rec.expect(t, "hello world", "after")
	if len(rec.frames) != 0 {
		t.Errorf("handler got %q as well", <-rec.frames)
	}
}

// Frames that arrive one byte at a time are reassembled.
func TestPolledOneBytePerWrite(t *testing.T) {
	url, recs := servePolled(t, ws.Config{}, nil)
	c := dialRaw(t, url)
	rec := nextRecorder(t, recs)

	long := strings.Repeat("0123456789", 13) // a 16-bit length
	stream := concat(text("a"), frame(fin|opPing, "pp"), text(long), frame(opText, "fr"), frame(fin|opCont, "ag"), text("z"))
	for i := range stream {
		c.send(stream[i : i+1])
		time.Sleep(200 * time.Microsecond)
	}
	rec.expect(t, "a", long, "frag", "z")
	c.expectPong("pp")
}

// Many frames in one write (more than one read buffer, so some straddle
// two reads) are all handled, in order.
func TestPolledManyFramesInOneWrite(t *testing.T) {
	url, recs := servePolled(t, ws.Config{}, nil)
	c := dialRaw(t, url)
	rec := nextRecorder(t, recs)

	var frames [][]byte
	var want []string
	for i := range 200 {
		m := fmt.Sprintf("%03d-%s", i, strings.Repeat("x", i))
		frames = append(frames, text(m))
		want = append(want, m)
	}
	c.send(frames...)
	rec.expect(t, want...)
}

// A frame of MaxFrame bytes is handled; one byte more is refused with
// 1009 as soon as its header is read, without waiting for the payload.
func TestPolledMaxFrame(t *testing.T) {
	const max = 70000 // a 64-bit length, bigger than a read buffer
	url, recs := servePolled(t, ws.Config{MaxFrame: max}, nil)

	t.Run("frame", func(t *testing.T) {
		c := dialRaw(t, url)
		rec := nextRecorder(t, recs)
		atMax := strings.Repeat("m", max)
		c.send(text(atMax))
		rec.expect(t, atMax)

		c.send(header(fin|opText, max+1)) // and never the payload
		c.expectClose(websocket.CloseMessageTooBig)
		if err := rec.closedErr(t); !errors.Is(err, websocket.ErrReadLimit) {
			t.Errorf("Closed(%v), want ErrReadLimit", err)
		}
	})
	t.Run("fragments", func(t *testing.T) {
		c := dialRaw(t, url)
		rec := nextRecorder(t, recs)
		half := strings.Repeat("h", max/2)
		c.send(frame(opText, half), frame(opCont, half), header(fin|opCont, 1))
		c.expectClose(websocket.CloseMessageTooBig)
		if err := rec.closedErr(t); !errors.Is(err, websocket.ErrReadLimit) {
			t.Errorf("Closed(%v), want ErrReadLimit", err)
		}
		if len(rec.frames) != 0 {
			t.Errorf("handler got %d bytes of an oversize message", len(<-rec.frames))
		}
	})
}

// Each frame that breaks RFC 6455 ends the connection with 1002, after
// the frames before it are handled.
func TestPolledProtocolErrors(t *testing.T) {
	url, recs := servePolled(t, ws.Config{}, nil)
	for _, tt := range []struct {
		name string
		bad  []byte
	}{
		{"unmasked", []byte{fin | opText, 2, 'h', 'i'}},
		{"rsv1", frame(fin|rsv1|opText, "hi")},
		{"opcode 3", frame(fin|0x3, "hi")},
		{"long ping", frame(fin|opPing, strings.Repeat("p", 126))},
		{"fragmented ping", frame(opPing, "p")},
		{"continuation first", frame(fin|opCont, "x")},
		{"text inside fragmented", concat(frame(opText, "a"), text("b"))},
		{"close 1-byte body", frame(fin|opClose, "\x03")},
		{"close 1005", frame(fin|opClose, closeBody(1005, ""))},
		{"close 999", frame(fin|opClose, closeBody(999, ""))},
		{"close reason not UTF-8", frame(fin|opClose, closeBody(1000, "bad \xff"))},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := dialRaw(t, url)
			rec := nextRecorder(t, recs)
			c.send(text("ok"), tt.bad)
			rec.expect(t, "ok")
			c.expectClose(websocket.CloseProtocolError)
			var pe *ws.ProtocolError
			if err := rec.closedErr(t); !errors.As(err, &pe) {
				t.Errorf("Closed(%v), want a *ws.ProtocolError", err)
			}
			if len(rec.frames) != 0 {
				t.Errorf("handler got %q as well", <-rec.frames)
			}
		})
	}
}

func TestPolledBinaryCloses1003(t *testing.T) {
	url, recs := servePolled(t, ws.Config{}, nil)
	c := dialRaw(t, url)
	rec := nextRecorder(t, recs)
	c.send(text("ok"), frame(fin|opBinary, "\x00\x01"))
	rec.expect(t, "ok")
	c.expectClose(websocket.CloseUnsupportedData)
	if err := rec.closedErr(t); !errors.Is(err, ws.ErrBinary) {
		t.Errorf("Closed(%v), want ErrBinary", err)
	}
}

func TestPolledClientCloseEchoed(t *testing.T) {
	url, recs := servePolled(t, ws.Config{}, nil)
	c := dialRaw(t, url)
	rec := nextRecorder(t, recs)
	c.send(frame(fin|opClose, closeBody(4321, "bye")))
	c.expectClose(4321)
	var ce *websocket.CloseError
	if err := rec.closedErr(t); !errors.As(err, &ce) || ce.Code != 4321 || ce.Text != "bye" {
		t.Errorf("Closed(%v), want the client's close 4321 bye", err)
	}
}

// A client that neither reads nor writes (gone without a FIN) is dropped
// by the ping timer: the socket is closed without a close frame.
func TestPolledHalfOpenClientDropped(t *testing.T) {
	cfg := ws.Config{PongWait: 300 * time.Millisecond, PingPeriod: 100 * time.Millisecond}
	url, recs := servePolled(t, cfg, nil)
	c := dialRaw(t, url)
	rec := nextRecorder(t, recs)
	start := time.Now()

	select {
	case err := <-rec.closed:
		t.Logf("dropped after %v: %v", time.Since(start), err)
		if err == nil || errors.As(err, new(*websocket.CloseError)) {
			t.Errorf("Closed(%v), want the missing-pong error", err)
		}
	case <-time.After(cfg.PongWait + 2*time.Second):
		t.Fatal("silent client not dropped")
	}
	// What the client finds: the pings it never answered, then the end.
	for {
		op, b, err := c.tryReadFrame()
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, syscall.ECONNRESET) {
				t.Fatalf("client read %v, want EOF: the server closes the socket", err)
			}
			break
		}
		if op != opPing {
			t.Fatalf("client got opcode %#x %q, want only pings", op, b)
		}
	}
}

// Idle polled connections hold no goroutine: N of them add only a few
// goroutines in all, and none is left when they end.
func TestPolledIdleConnectionsHaveNoGoroutine(t *testing.T) {
	const n, slack = 200, 10
	url, recs := servePolled(t, ws.Config{}, nil)
	before := goroutines()
	settles := func(when string, ok func(extra int) bool) {
		t.Helper()
		var extra int
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			if extra = goroutines() - before; ok(extra) {
				return
			}
		}
		t.Errorf("%s: %d goroutines more than before %d connections", when, extra, n)
	}

	clients := make([]*rawClient, n)
	rs := make([]*recorder, n)
	for i := range n {
		clients[i] = dialRaw(t, url)
		rs[i] = nextRecorder(t, recs)
	}
	settles("connected", func(extra int) bool { return extra <= slack })
	for i, c := range clients {
		c.send(text(fmt.Sprint("hi ", i)))
	}
	for i, r := range rs {
		r.expect(t, fmt.Sprint("hi ", i))
	}
	settles("after a frame on each", func(extra int) bool { return extra <= slack })

	for _, c := range clients {
		c.nc.Close()
	}
	for _, r := range rs {
		if err := r.closedErr(t); err == nil {
			t.Error("Closed(nil) after the client left, want the read error")
		}
	}
	settles("all closed", func(extra int) bool { return extra <= 0 })
}

// A connection's frames are handled one at a time: while the handler is
// busy with one, the next wait, and then come in order.
func TestPolledBlockedHandlerHoldsLaterFrames(t *testing.T) {
	entered := make(chan struct{})
	release := make(chan struct{})
	var busy atomic.Int32
	url, recs := servePolled(t, ws.Config{}, func(r *recorder) {
		r.frame = func(f string) {
			if busy.Add(1) != 1 {
				t.Errorf("frame %q handled while another is", f)
			}
			defer busy.Add(-1)
			if f == "block" {
				close(entered)
				select {
				case <-release:
				case <-time.After(10 * time.Second):
				}
			}
		}
	})
	c := dialRaw(t, url)
	rec := nextRecorder(t, recs)

	c.send(text("block"))
	rec.expect(t, "block")
	select {
	case <-entered:
	case <-time.After(5 * time.Second):
		t.Fatal("handler did not start")
	}
	for _, m := range []string{"a", "b", "c"} {
		c.send(text(m))
	}
	time.Sleep(200 * time.Millisecond) // the frames are there to read
	if len(rec.frames) != 0 {
		t.Fatalf("handler got %q while blocked in the previous frame", <-rec.frames)
	}
	close(release)
	rec.expect(t, "a", "b", "c")
}
