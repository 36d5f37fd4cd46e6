// Package ws runs one WebSocket connection: one goroutine reads, a writer
// goroutine exists only while there is something to write, every write has
// a deadline, and events wait in a bounded queue. A client that cannot keep
// up is disconnected rather than waited on, so it never slows anyone else.
//
//	c := ws.New(gorillaConn, protocol.Native{}, ws.Config{})
//	c.Serve(handler)   // returns at once; handler.Frame gets each text frame
//	...
//	c.Send(event)      // from any goroutine, never blocks
//
// gorilla/websocket does the upgrade and reads frames. Frames to the client
// are written here, straight to the socket: the writer takes everything
// queued for the connection and writes it with one system call, several
// frames at once, from a pooled buffer. An idle connection holds no write
// buffer and no writer goroutine, so many thousands of them fit in little
// memory.
package ws

import (
	"context"
	"encoding/binary"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/websocket"

	"pocketchat/internal/chat"
)

// Close codes sent to clients, beyond the standard ones gorilla names.
const (
	// CloseTooSlow: the client read too slowly and its send queue filled up.
	CloseTooSlow = 4000
)

// Defaults for Config fields left zero.
const (
	// DefaultWriteWait bounds one write, so a dead peer cannot hold the writer.
	DefaultWriteWait = 10 * time.Second
	// DefaultPingPeriod is how often the server pings; a pong (or any
	// frame) must arrive within PongWait.
	DefaultPingPeriod = 25 * time.Second
	// DefaultPongWait is how long the server waits for a frame before it
	// gives the connection up as dead.
	DefaultPongWait = 60 * time.Second
	// DefaultMaxFrame is the largest frame a client may send, in bytes.
	DefaultMaxFrame = 64 << 10
	// DefaultQueue is how many events may wait for a slow client.
	DefaultQueue = 512
)

const (
	// flushAt is how much the writer gathers before a system call: large
	// enough that a busy connection gets dozens of events per write, small
	// enough that the pooled buffers stay cheap.
	flushAt = 32 << 10
	// keepBuf is the largest buffer returned to the pool; one grown by a
	// huge event is left to the garbage collector.
	keepBuf = 64 << 10
	// keepQueue is the largest queue capacity an idle connection keeps.
	keepQueue = 64
)

// Config tunes a connection. Zero fields take the defaults above.
type Config struct {
	WriteWait  time.Duration
	PingPeriod time.Duration
	PongWait   time.Duration
	MaxFrame   int64
	Queue      int
	// Poller, if set, reads the connection when its socket has data
	// instead of a goroutine waiting on it (plain TCP sockets only; the
	// others get a goroutine anyway). See Poller.
	Poller *Poller
}

func (c Config) withDefaults() Config {
	if c.WriteWait <= 0 {
		c.WriteWait = DefaultWriteWait
	}
	if c.PingPeriod <= 0 {
		c.PingPeriod = DefaultPingPeriod
	}
	if c.PongWait <= 0 {
		c.PongWait = DefaultPongWait
	}
	if c.PingPeriod >= c.PongWait {
		c.PingPeriod = c.PongWait * 9 / 10
	}
	if c.MaxFrame <= 0 {
		c.MaxFrame = DefaultMaxFrame
	}
	if c.Queue <= 0 {
		c.Queue = DefaultQueue
	}
	return c
}

// Handler is what a connection serves. Frame runs on the connection's
// reader goroutine, one frame at a time; Settle and Closed run once each,
// in that order, on the same goroutine.
type Handler interface {
	// Frame handles one text frame. The slice is not used by the
	// connection afterwards.
	Frame(frame []byte)
	// Settle is called when reading has stopped. It returns once no reply
	// is still being produced for an earlier frame (an ack waiting for its
	// commit), so that the reply is written before the close frame.
	Settle()
	// Closed is called last, when the socket is closed, with the error
	// that ended reading (nil when the server ended the connection).
	Closed(err error)
}

// closing is why the connection ends, sent to the client as a close frame.
type closing struct {
	code   int
	reason string
	// payload, if not nil, is sent as the close frame's body instead of
	// code and reason (the echo of a client's close).
	payload []byte
}

// silent reports whether no close frame is sent: the peer is gone or the
// socket broke.
func (w closing) silent() bool { return w.code == websocket.CloseAbnormalClosure }

// Conn is one client connection.
type Conn struct {
	ws  *websocket.Conn
	nc  net.Conn
	enc chat.Encoder
	cfg Config

	mu         sync.Mutex
	queue      []*chat.Event // events waiting for the writer
	spare      []*chat.Event // the writer's last batch, reused as the next queue
	writing    bool          // a writer goroutine is running
	pingDue    bool
	pong       []byte // payload of a pong owed to the client, if hasPong
	hasPong    bool
	ending     bool    // Close was called: why is set, the reader is woken
	why        closing // set when ending becomes true
	readerDone bool    // the reader stopped and Settle returned
	finished   bool    // the close frame is written (or given up) and the socket closed
	ping       *time.Timer

	// ended mirrors ending for the readers, which check it without c.mu.
	ended atomic.Bool
	// done and written are made only when someone waits (Done,
	// afterRead): an idle connection has neither. Closed when ending,
	// and finished, become true. c.mu.
	done    chan struct{}
	written chan struct{}

	// Polled connections (poll != nil) have no reader goroutine: drain
	// runs when the socket has data. The fields below are theirs.
	poll        *polled
	h           Handler
	reading     bool   // a drain is running (c.mu)
	readStopped bool   // reading is over: afterRead has started (c.mu)
	partial     []byte // the start of a frame not yet complete (drain's)
	endReadErr  error  // what reading ends with once the connection ends (c.mu)
	frames      frameReader
	lastRead    atomic.Int64 // unix nanoseconds of the last bytes read
}

// New wraps an upgraded connection; call Serve or Run to serve it.
func New(c *websocket.Conn, enc chat.Encoder, cfg Config) *Conn {
	cfg = cfg.withDefaults()
	return &Conn{
		ws: c, nc: c.NetConn(), enc: enc, cfg: cfg,
	}
}

// Send queues an event. It never blocks: when the queue is full the
// connection is closed with CloseTooSlow and the event is dropped. Events
// queued while the connection is closing are still written if the reader
// is finishing a request (its reply must not be lost), unless the client
// is being dropped as too slow.
func (c *Conn) Send(ev *chat.Event) {
	c.mu.Lock()
	switch {
	case c.finished || (c.ending && c.why.code == CloseTooSlow):
		c.mu.Unlock()
	case len(c.queue) >= c.cfg.Queue:
		c.mu.Unlock()
		c.Close(CloseTooSlow, "too slow: send queue full")
	default:
		c.queue = append(c.queue, ev)
		c.kickLocked()
		c.mu.Unlock()
	}
}

// kickLocked starts the writer unless it runs already. c.mu is held.
func (c *Conn) kickLocked() {
	if !c.writing && !c.finished {
		c.writing = true
		go c.writeLoop()
	}
}

// Close ends the connection with a close frame carrying code and reason.
// The first call wins; it returns at once.
func (c *Conn) Close(code int, reason string) {
	c.end(closing{code: code, reason: reason})
}

func (c *Conn) end(why closing) { c.endWith(why, errEnded) }

// endWith is end; on a polled connection that no drain is reading,
// reading is finished with readErr.
func (c *Conn) endWith(why closing, readErr error) {
	c.mu.Lock()
	if c.ending {
		c.mu.Unlock()
		return
	}
	c.setEndingLocked(why, readErr)
	c.stopPollLocked(readErr)
	if why.code == CloseTooSlow {
		// Drop what is queued. A write in progress is left to finish (or
		// time out): cut mid-frame, it would leave the client a broken
		// frame instead of the close frame that says why.
		clear(c.queue)
		c.queue = c.queue[:0]
		c.kickLocked()
	}
	polled := c.poll != nil
	c.mu.Unlock()
	// Wake the reader: it notices the end at its next read, so a frame
	// being handled is finished first. (A drain checks after each frame.)
	if !polled {
		_ = c.nc.SetReadDeadline(time.Now())
	}
}

// stopPollLocked finishes reading a polled connection that no drain is
// reading: nothing else would notice that it ends. c.mu is held.
func (c *Conn) stopPollLocked(readErr error) {
	if c.poll != nil && !c.reading && !c.readStopped {
		c.readStopped = true
		go c.afterRead(c.h, readErr)
	}
}

// setEndingLocked marks the connection as ending. c.mu is held.
func (c *Conn) setEndingLocked(why closing, readErr error) {
	c.ending, c.why, c.endReadErr = true, why, readErr
	c.ended.Store(true)
	if c.done != nil {
		close(c.done)
	}
}

// End closes the connection with 1008 (policy violation) because the
// client broke a rule or was banned; events queued before go out first.
func (c *Conn) End(reason string) { c.Close(websocket.ClosePolicyViolation, reason) }

// Done is closed when the connection is ending.
func (c *Conn) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done == nil {
		c.done = make(chan struct{})
		if c.ending {
			close(c.done)
		}
	}
	return c.done
}

// CloseCode is the code the connection ended with (CloseTooSlow for a
// client dropped as too slow), or 0 while Done is still open.
func (c *Conn) CloseCode() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.ending {
		return 0
	}
	return c.why.code
}

// ErrBinary is the read error when the client sent a binary frame.
var ErrBinary = errors.New("ws: binary frame on a text protocol")

// ErrNotUTF8 is the read error when a text message is not valid UTF-8,
// which RFC 6455 says must fail the connection (close 1007).
var ErrNotUTF8 = errors.New("ws: text message is not valid UTF-8")

// Serve starts reading on a goroutine of its own and returns at once, so
// the HTTP handler that upgraded the connection can return and free what
// net/http keeps for a request.
//
// With a Poller in the Config, a TCP connection is registered with it and
// no goroutine waits on it; otherwise one goroutine reads it.
func (c *Conn) Serve(h Handler) {
	c.mu.Lock()
	c.h = h
	c.ping = time.AfterFunc(c.cfg.PingPeriod, c.pingTick)
	c.mu.Unlock()
	if c.cfg.Poller != nil && c.servePolled(h) {
		return
	}
	go c.readLoop(h)
}

// servePolled registers the connection with the poller; false if it
// cannot be polled.
func (c *Conn) servePolled(h Handler) bool {
	reg, err := c.cfg.Poller.prepare(c)
	if err != nil {
		return false
	}
	c.lastRead.Store(time.Now().UnixNano())
	c.frames.max = int(c.cfg.MaxFrame)
	// Until the socket is armed, reading counts as busy: an end meanwhile
	// is left to whichever reader results (a drain, or the fallback
	// goroutine), so reading is finished exactly once.
	c.mu.Lock()
	c.poll, c.reading = reg, true
	c.mu.Unlock()
	if err := reg.ctl(epollAdd); err != nil {
		reg.remove()
		c.mu.Lock()
		c.poll, c.reading = nil, false
		ending := c.ending
		c.mu.Unlock()
		if ending {
			_ = c.nc.SetReadDeadline(time.Now()) // as end does for a reader goroutine
		}
		return false
	}
	c.mu.Lock()
	c.ws = nil // gorilla's reader and its buffer are not needed
	c.reading = false
	if c.ending {
		c.stopPollLocked(errEnded) // ended before it was armed
		c.mu.Unlock()
		return true
	}
	c.mu.Unlock()
	// A drain that started before reading was free found it busy and
	// left without reading: arm again, so data already there is reported.
	if err := reg.ctl(epollMod); err != nil {
		c.endWith(closing{code: websocket.CloseAbnormalClosure}, err)
	}
	return true
}

// Run serves the connection on the calling goroutine's behalf: it calls
// handle for each text frame and returns when the connection is over,
// with the error that ended reading (nil when the server ended it). When
// ctx ends, the connection closes with 1001 (going away).
func (c *Conn) Run(ctx context.Context, handle func(ctx context.Context, frame []byte)) error {
	f := &funcHandler{ctx: ctx, handle: handle, done: make(chan error, 1)}
	c.Serve(f)
	select {
	case err := <-f.done:
		return err
	case <-ctx.Done():
		c.Close(websocket.CloseGoingAway, "server shutting down")
		return <-f.done
	}
}

type funcHandler struct {
	ctx    context.Context
	handle func(context.Context, []byte)
	done   chan error
}

func (f *funcHandler) Frame(frame []byte) { f.handle(f.ctx, frame) }
func (f *funcHandler) Settle()            {}
func (f *funcHandler) Closed(err error)   { f.done <- err }

// readLoop reads frames until the client leaves or the connection must
// end, then lets the writer finish and reports to h.
func (c *Conn) readLoop(h Handler) {
	c.afterRead(h, c.read(h))
}

// afterRead ends the connection once reading stopped with err: settles
// the handler, lets the writer write what is left and the close frame,
// and reports to h.
func (c *Conn) afterRead(h Handler, err error) {
	c.end(closeFor(err))
	if c.CloseCode() == CloseTooSlow {
		err = nil // the server ended it; the read error only says how
	}
	h.Settle()
	c.mu.Lock()
	c.readerDone = true
	c.kickLocked() // the writer writes what is left and the close frame
	if !c.finished && c.written == nil {
		c.written = make(chan struct{})
	}
	written := c.written
	c.mu.Unlock()
	if written != nil {
		<-written
	}
	if isServerEnd(err) {
		err = nil
	}
	h.Closed(err)
}

// errEnded marks a read that stopped because the connection was ending.
var errEnded = errors.New("ws: connection ending")

func isServerEnd(err error) bool { return errors.Is(err, errEnded) }

func (c *Conn) read(h Handler) error {
	c.ws.SetReadLimit(c.cfg.MaxFrame)
	extend := func() {
		// After Close the deadline stays in the past, so the reader
		// stops at its next read.
		c.mu.Lock()
		if !c.ending {
			_ = c.nc.SetReadDeadline(time.Now().Add(c.cfg.PongWait))
		}
		c.mu.Unlock()
	}
	extend()
	c.ws.SetPongHandler(func(string) error { extend(); return nil })
	c.ws.SetPingHandler(func(data string) error {
		extend()
		c.mu.Lock()
		c.pong, c.hasPong = []byte(data), true // the writer may still hold the last one
		c.kickLocked()
		c.mu.Unlock()
		return nil
	})
	// The close frame is answered by the writer, after what is queued.
	c.ws.SetCloseHandler(func(int, string) error { return nil })
	for {
		typ, frame, err := c.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if c.ended.Load() && !errors.As(err, &ce) {
				return errEnded // woken to end
			}
			return err
		}
		extend()
		if typ != websocket.TextMessage {
			return ErrBinary
		}
		if !utf8.Valid(frame) {
			return ErrNotUTF8
		}
		h.Frame(frame)
	}
}

// closeFor picks the close frame for the reader's error, unless Close
// already chose one. A client's close frame is echoed with its code.
func closeFor(err error) closing {
	var ce *websocket.CloseError
	switch {
	case err == nil, errors.Is(err, errEnded):
		return closing{code: websocket.CloseNormalClosure}
	case errors.Is(err, ErrBinary):
		return closing{code: websocket.CloseUnsupportedData, reason: "binary frames are not supported; send JSON text frames"}
	case errors.Is(err, ErrNotUTF8):
		return closing{code: websocket.CloseInvalidFramePayloadData, reason: "text frames must be valid UTF-8"}
	case errors.Is(err, websocket.ErrReadLimit):
		return closing{code: websocket.CloseMessageTooBig, reason: "frame too large"}
	case errors.As(err, new(*ProtocolError)):
		return closing{code: websocket.CloseProtocolError, reason: err.(*ProtocolError).Reason}
	case errors.As(err, &ce):
		// FormatCloseMessage gives an empty body for 1005 (no status).
		return closing{code: websocket.CloseNoStatusReceived, payload: websocket.FormatCloseMessage(ce.Code, "")}
	}
	return closing{code: websocket.CloseAbnormalClosure}
}

func (c *Conn) pingTick() {
	c.mu.Lock()
	if c.ending || c.finished {
		c.mu.Unlock()
		return
	}
	next := c.cfg.PingPeriod
	if c.poll != nil {
		// No read deadline watches a polled socket: the timer does.
		quiet := time.Duration(time.Now().UnixNano() - c.lastRead.Load())
		if quiet >= c.cfg.PongWait {
			c.mu.Unlock()
			c.endWith(closing{code: websocket.CloseAbnormalClosure}, errNoPong)
			return
		}
		next = min(next, c.cfg.PongWait-quiet)
	}
	c.pingDue = true
	c.kickLocked()
	c.ping.Reset(next)
	c.mu.Unlock()
}

// bufPool holds the writers' buffers; a connection holds one only while
// it writes.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, flushAt+4<<10); return &b }}

// writeLoop writes until nothing is left, then exits; Send, pings and
// the end of the connection start it again.
func (c *Conn) writeLoop() {
	bp := bufPool.Get().(*[]byte)
	buf := (*bp)[:0]
	defer func() {
		if cap(buf) <= keepBuf {
			*bp = buf[:0]
			bufPool.Put(bp)
		}
	}()
	for {
		c.mu.Lock()
		batch := c.queue
		c.queue = c.spare[:0]
		c.spare = nil
		ping, pong, hasPong := c.pingDue, c.pong, c.hasPong
		c.pingDue, c.hasPong = false, false
		ending, why, readerDone := c.ending, c.why, c.readerDone
		finish := ending && (readerDone || why.code == CloseTooSlow || why.silent())
		if len(batch) == 0 && !ping && !hasPong && !finish {
			c.writing = false
			c.queue, c.spare = trim(c.queue), trim(batch)
			c.mu.Unlock()
			return
		}
		c.mu.Unlock()

		ok := true
		if !ending || why.code != CloseTooSlow {
			if hasPong {
				buf = appendFrame(buf, websocket.PongMessage, pong)
			}
			if ping {
				buf = appendFrame(buf, websocket.PingMessage, nil)
			}
			for _, ev := range batch {
				buf = appendFrame(buf, websocket.TextMessage, ev.Encoded(c.enc))
				if len(buf) >= flushAt {
					if ok = c.flush(buf, c.cfg.WriteWait); !ok {
						break
					}
					buf = buf[:0]
				}
			}
		}
		clear(batch) // do not keep delivered events alive
		if ok && len(buf) > 0 {
			ok = c.flush(buf, c.cfg.WriteWait)
		}
		buf = buf[:0]
		if !ok || finish {
			if ok && !why.silent() {
				c.writeClose(buf, why)
			}
			c.stop()
			return
		}
		c.mu.Lock()
		if c.spare == nil {
			c.spare = batch[:0]
		}
		c.mu.Unlock()
	}
}

// trim returns the queue an idle connection keeps: none if it grew big.
func trim(q []*chat.Event) []*chat.Event {
	if cap(q) > keepQueue {
		return nil
	}
	return q[:0]
}

// flush writes buf with one system call (or as few as the kernel takes).
func (c *Conn) flush(buf []byte, wait time.Duration) bool {
	_ = c.nc.SetWriteDeadline(time.Now().Add(wait))
	_, err := c.nc.Write(buf)
	return err == nil
}

func (c *Conn) writeClose(buf []byte, why closing) {
	body := why.payload
	if body == nil {
		body = websocket.FormatCloseMessage(why.code, truncate(why.reason))
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.cfg.WriteWait))
	_, _ = c.nc.Write(appendFrame(buf, websocket.CloseMessage, body))
}

// truncate keeps a close reason within a control frame (125 bytes with
// the 2-byte code), cutting at a UTF-8 boundary.
func truncate(reason string) string {
	const maxReason = 123
	if len(reason) <= maxReason {
		return reason
	}
	i := maxReason
	for i > 0 && reason[i]&0xC0 == 0x80 {
		i--
	}
	return reason[:i]
}

// stop closes the socket once, after the last write; the reader, if still
// blocked, wakes with an error.
func (c *Conn) stop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.finished {
		return
	}
	c.finished = true
	c.writing = false
	clear(c.queue)
	c.queue, c.spare, c.pong = nil, nil, nil
	if c.ping != nil {
		c.ping.Stop()
	}
	if c.poll != nil {
		c.poll.remove() // before the descriptor is closed and reused
	}
	if !c.ending {
		// A write failed before anyone asked to end: the socket broke.
		c.setEndingLocked(closing{code: websocket.CloseAbnormalClosure}, net.ErrClosed)
	}
	c.stopPollLocked(c.endReadErr)
	_ = c.nc.Close()
	if c.written != nil {
		close(c.written)
	}
}

// appendFrame appends one unmasked, unfragmented server frame.
func appendFrame(buf []byte, opcode int, payload []byte) []byte {
	n := len(payload)
	buf = append(buf, 0x80|byte(opcode))
	switch {
	case n < 126:
		buf = append(buf, byte(n))
	case n <= 0xFFFF:
		buf = append(buf, 126)
		buf = binary.BigEndian.AppendUint16(buf, uint16(n))
	default:
		buf = append(buf, 127)
		buf = binary.BigEndian.AppendUint64(buf, uint64(n))
	}
	return append(buf, payload...)
}
