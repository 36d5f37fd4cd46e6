// Package ws runs one WebSocket connection: exactly one goroutine reads
// and one writes, every write has a deadline, and events wait in a bounded
// queue. A client that cannot keep up is disconnected rather than waited
// on, so it never slows anyone else.
//
//	c := ws.New(gorillaConn, protocol.Native{}, ws.Config{})
//	err := c.Run(ctx, func(ctx context.Context, frame []byte) { ... c.Send(reply) ... })
package ws

import (
	"context"
	"errors"
	"sync"
	"time"

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

// Config tunes a connection. Zero fields take the defaults above.
type Config struct {
	WriteWait  time.Duration
	PingPeriod time.Duration
	PongWait   time.Duration
	MaxFrame   int64
	Queue      int
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

// closing is why the connection ends, sent to the client as a close frame.
type closing struct {
	code   int
	reason string
}

// Conn is one client connection.
type Conn struct {
	ws   *websocket.Conn
	enc  chat.Encoder
	cfg  Config
	send chan *chat.Event

	once   sync.Once
	closed chan struct{} // closed when the connection must end
	why    closing       // set before closed is closed
}

// New wraps an upgraded connection; call Run to serve it.
func New(c *websocket.Conn, enc chat.Encoder, cfg Config) *Conn {
	cfg = cfg.withDefaults()
	return &Conn{
		ws: c, enc: enc, cfg: cfg,
		send:   make(chan *chat.Event, cfg.Queue),
		closed: make(chan struct{}),
	}
}

// Send queues an event. It never blocks: when the queue is full the
// connection is closed with CloseTooSlow and the event is dropped. Events
// queued while the connection is closing are still written if the reader
// is finishing a request (its reply must not be lost).
func (c *Conn) Send(ev *chat.Event) {
	select {
	case c.send <- ev:
	default:
		c.Close(CloseTooSlow, "too slow: send queue full")
	}
}

// Close ends the connection with a close frame carrying code and reason.
// The first call wins; it returns at once.
func (c *Conn) Close(code int, reason string) {
	c.once.Do(func() {
		c.why = closing{code, reason}
		close(c.closed)
	})
}

// Done is closed when the connection is ending.
func (c *Conn) Done() <-chan struct{} { return c.closed }

// CloseCode is the code the connection ended with (CloseTooSlow for a
// client dropped as too slow), or 0 while Done is still open.
func (c *Conn) CloseCode() int {
	select {
	case <-c.closed:
		return c.why.code // written before closed was closed
	default:
		return 0
	}
}

// ErrBinary is returned by Run when the client sent a binary frame.
var ErrBinary = errors.New("ws: binary frame on a text protocol")

// Run reads frames and passes each text frame to handle, one at a time,
// until the client leaves, Close is called or ctx ends (which closes with
// 1001, going away). A request in progress is finished and everything
// queued is written before the close frame, except for a client closed as
// too slow. Run returns when both goroutines have stopped and the socket
// is closed.
func (c *Conn) Run(ctx context.Context, handle func(ctx context.Context, frame []byte)) error {
	readerDone := make(chan struct{})
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		c.writePump(readerDone)
	}()
	err := c.readPump(ctx, handle)
	c.Close(closeFor(err))
	close(readerDone)
	<-writerDone
	return err
}

// readPump runs on the caller's goroutine. It notices that the connection
// must end at its next read, so a request being handled is finished.
func (c *Conn) readPump(ctx context.Context, handle func(context.Context, []byte)) error {
	c.ws.SetReadLimit(c.cfg.MaxFrame)
	// The deadline is moved forward by every frame and pong, and set to
	// now when the connection must end; the mutex keeps a late forward
	// move from undoing the wake-up.
	var mu sync.Mutex
	ending := false
	extend := func() {
		mu.Lock()
		if !ending {
			_ = c.ws.SetReadDeadline(time.Now().Add(c.cfg.PongWait))
		}
		mu.Unlock()
	}
	go func() {
		select {
		case <-ctx.Done():
			c.Close(websocket.CloseGoingAway, "server shutting down")
		case <-c.closed:
		}
		mu.Lock()
		ending = true
		_ = c.ws.SetReadDeadline(time.Now())
		mu.Unlock()
	}()
	extend()
	c.ws.SetPongHandler(func(string) error { extend(); return nil })
	for {
		typ, frame, err := c.ws.ReadMessage()
		if err != nil {
			select {
			case <-c.closed:
				return nil // woken to end
			default:
				return err
			}
		}
		extend()
		if typ != websocket.TextMessage {
			return ErrBinary
		}
		handle(ctx, frame)
	}
}

// closeFor picks the close frame for the reader's error, unless Close
// already chose one. Codes 1005 and 1006 mean no close frame is sent: the
// peer already closed, or the socket broke.
func closeFor(err error) (int, string) {
	var ce *websocket.CloseError
	switch {
	case err == nil:
		return websocket.CloseNormalClosure, ""
	case errors.Is(err, ErrBinary):
		return websocket.CloseUnsupportedData, "binary frames are not supported; send JSON text frames"
	case errors.Is(err, websocket.ErrReadLimit):
		return websocket.CloseMessageTooBig, "frame too large"
	case errors.As(err, &ce):
		return websocket.CloseNoStatusReceived, ""
	}
	return websocket.CloseAbnormalClosure, ""
}

// writePump is the only goroutine that writes frames.
func (c *Conn) writePump(readerDone <-chan struct{}) {
	ping := time.NewTicker(c.cfg.PingPeriod)
	defer ping.Stop()
	defer c.ws.Close()
	for {
		// A closed connection stops at once, even with events queued:
		// select alone would pick among ready cases at random.
		select {
		case <-c.closed:
			c.finish(readerDone)
			return
		default:
		}
		select {
		case ev := <-c.send:
			if !c.write(ev) {
				return
			}
		case <-ping.C:
			if c.ws.WriteControl(websocket.PingMessage, nil, time.Now().Add(c.cfg.WriteWait)) != nil {
				return
			}
		case <-c.closed:
			c.finish(readerDone)
			return
		}
	}
}

func (c *Conn) write(ev *chat.Event) bool {
	_ = c.ws.SetWriteDeadline(time.Now().Add(c.cfg.WriteWait))
	return c.ws.WriteMessage(websocket.TextMessage, ev.Encoded(c.enc)) == nil
}

// finish writes the close frame. Unless the client is too slow to take
// them, it first waits for the reader to stop and writes what is queued,
// so the reply to a request in progress goes out.
func (c *Conn) finish(readerDone <-chan struct{}) {
	switch c.why.code {
	case websocket.CloseNoStatusReceived, websocket.CloseAbnormalClosure:
		return
	case CloseTooSlow:
	default:
		<-readerDone
		if !c.drain() {
			return
		}
	}
	msg := websocket.FormatCloseMessage(c.why.code, c.why.reason)
	_ = c.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(c.cfg.WriteWait))
}

// drain writes every queued event; it reports false if a write failed.
func (c *Conn) drain() bool {
	for {
		select {
		case ev := <-c.send:
			if !c.write(ev) {
				return false
			}
		default:
			return true
		}
	}
}
