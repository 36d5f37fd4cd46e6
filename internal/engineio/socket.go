package engineio

import (
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Close codes, in WebSocket terms, for Socket.Close and the close frames
// of the WebSocket transport.
const (
	// CloseTooSlow: the client read too slowly and its queue filled up
	// (the same code as the native chat socket).
	CloseTooSlow = 4000
	// closeSilently ends a session without a close frame: the peer is
	// gone or broke the protocol's timing.
	closeSilently = websocket.CloseAbnormalClosure
)

// Outgoing is an outgoing engine.io packet, type digit included. It is
// encoded when a transport writes it, on the transport's goroutine, so a
// message broadcast to many sessions can be encoded once and shared.
type Outgoing interface {
	Encode() []byte
}

// rawPacket is an Outgoing already encoded.
type rawPacket []byte

func (p rawPacket) Encode() []byte { return p }

// TextMessage returns a message packet carrying data.
func TextMessage(data string) Outgoing { return rawPacket(AppendPacket(nil, Message, data)) }

type transportKind int

const (
	transportPolling transportKind = iota
	transportWebSocket
)

// closing records why a session ends.
type closing struct {
	code   int
	reason string
	drain  bool // finish the packet being handled and write the queue first
}

// Socket is one engine.io session.
type Socket struct {
	srv     *Server
	cfg     Config
	id      string
	version int
	handler Handler

	// inMu is held while an incoming packet is handled: packets are
	// handled one at a time, in the order they came, and closing waits
	// for the one in progress.
	inMu        sync.Mutex
	handlerDone bool // under inMu: OnMessage is never called again

	mu         sync.Mutex
	queue      []Outgoing
	transport  transportKind
	getActive  bool            // a poll is waiting or writing
	postActive bool            // a post is being read or handled
	upgrading  bool            // a WebSocket is probing
	probed     bool            // it answered the probe: polls end at once
	probe      *websocket.Conn // the probing WebSocket
	ws         *websocket.Conn // the WebSocket transport, once upgraded
	closing    bool
	why        closing
	finished   bool
	awaitPong  bool      // v4: a ping is out
	lastSeen   time.Time // v3: when the client last sent anything
	timer      *time.Timer

	pollWake chan struct{} // wakes the waiting poll
	wsWake   chan struct{} // wakes the WebSocket writer
	done     chan struct{}
}

func newSocket(srv *Server, id string, version int) *Socket {
	return &Socket{
		srv: srv, cfg: srv.cfg, id: id, version: version,
		lastSeen: time.Now(),
		pollWake: make(chan struct{}, 1),
		wsWake:   make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
}

// ID is the session id (the handshake's sid).
func (s *Socket) ID() string { return s.id }

// Version is the protocol version: 4 or 3.
func (s *Socket) Version() int { return s.version }

// Transport names the transport carrying the session now: "polling" or
// "websocket".
func (s *Socket) Transport() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.transport == transportWebSocket {
		return "websocket"
	}
	return "polling"
}

// Done is closed once the session has ended and OnClose was called.
func (s *Socket) Done() <-chan struct{} { return s.done }

// CloseCode is the code the session is closing or closed with
// (CloseTooSlow for a client dropped as too slow), or 0 while it is open.
func (s *Socket) CloseCode() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.closing {
		return 0
	}
	return s.why.code
}

// Send queues a message. It never blocks: when the queue is full the
// session is closed with CloseTooSlow and the message dropped. While a
// session closes with a drain, messages are still taken: the reply to the
// packet being handled goes out. It reports whether the message was
// queued.
func (s *Socket) Send(m Outgoing) bool {
	s.mu.Lock()
	if s.closing && (!s.why.drain || s.finished) {
		s.mu.Unlock()
		return false
	}
	if len(s.queue) >= s.cfg.Queue {
		s.mu.Unlock()
		s.shut(closing{CloseTooSlow, "too slow: send queue full", false})
		return false
	}
	s.queue = append(s.queue, m)
	s.mu.Unlock()
	s.wake()
	return true
}

// control queues a packet of the protocol itself (ping, pong), which the
// queue's bound does not count. The caller holds s.mu.
func (s *Socket) control(t Type, data string) {
	s.queue = append(s.queue, rawPacket(AppendPacket(nil, t, data)))
}

func (s *Socket) wake() {
	select {
	case s.pollWake <- struct{}{}:
	default:
	}
	select {
	case s.wsWake <- struct{}{}:
	default:
	}
}

// Close ends the session. With code 1000 or 1001 (a server going away)
// the packet being handled is finished and everything queued is written
// first; other codes drop the queue. A WebSocket gets a close frame with
// code and reason; a waiting poll gets the close packet. The first call
// wins; Close returns at once.
func (s *Socket) Close(code int, reason string) {
	drain := code == websocket.CloseNormalClosure || code == websocket.CloseGoingAway
	s.shut(closing{code, reason, drain})
}

// shut starts closing the session. The transport consuming the queue (a
// waiting poll, the WebSocket writer) finishes it; with none, it finishes
// here, on another goroutine, since a caller may be the handler itself.
func (s *Socket) shut(why closing) {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	s.closing = true
	s.why = why
	if !why.drain {
		s.queue = nil
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	probe := s.probe
	s.probe = nil
	ws := s.ws
	idle := s.transport == transportPolling && !s.getActive
	s.mu.Unlock()

	s.srv.remove(s)
	if probe != nil {
		_ = probe.Close()
	}
	if ws != nil {
		// Wakes the reader at its next read: a packet being handled
		// is finished first.
		_ = ws.SetReadDeadline(time.Now())
	}
	s.wake()
	if idle {
		go s.finish()
	}
}

// waitIdle returns once no packet is being handled; after shut, none
// will be.
func (s *Socket) waitIdle() {
	s.inMu.Lock()
	s.handlerDone = true
	s.inMu.Unlock()
	if st, ok := s.handler.(Settler); ok {
		st.Settle()
	}
}

// finish ends the session once: no more packets are handled, then the
// handler learns it is closed.
func (s *Socket) finish() {
	s.waitIdle()
	s.mu.Lock()
	if s.finished {
		s.mu.Unlock()
		return
	}
	s.finished = true
	reason := s.why.reason
	s.mu.Unlock()
	if s.handler != nil {
		s.handler.OnClose(reason)
	}
	close(s.done)
}

// take removes and returns everything queued. The caller holds s.mu.
func (s *Socket) take() []Outgoing {
	q := s.queue
	s.queue = nil
	return q
}

// receive handles one incoming packet, whichever transport brought it.
func (s *Socket) receive(p Packet) {
	s.inMu.Lock()
	defer s.inMu.Unlock()
	s.mu.Lock()
	if s.closing || s.handlerDone {
		s.mu.Unlock()
		return
	}
	s.lastSeen = time.Now()
	switch p.Type {
	case Ping:
		// v3's heartbeat; a v4 client only pings to probe, on the
		// probing socket, but an answer does no harm.
		s.control(Pong, p.Data)
		s.mu.Unlock()
		s.wake()
		return
	case Pong:
		if s.awaitPong && s.timer != nil {
			s.awaitPong = false
			s.timer.Reset(s.cfg.PingInterval)
		}
		s.mu.Unlock()
		return
	case Close:
		s.mu.Unlock()
		s.shut(closing{closeSilently, "client closed the session", false})
		return
	}
	s.mu.Unlock()
	if p.Type == Message && !p.Binary {
		s.handler.OnMessage(p.Data)
	}
	// Binary messages are dropped: the layer above refuses them when it
	// reads their announcement. Open, upgrade and noop mean nothing on
	// an established transport.
}

// startHeartbeat arms the session's one timer: in v4 it sends the pings
// and waits for the pongs; in v3 it drops a client silent for longer than
// pingInterval + pingTimeout.
func (s *Socket) startHeartbeat() {
	s.mu.Lock()
	defer s.mu.Unlock()
	d := s.cfg.PingInterval
	if s.version == 3 {
		d += s.cfg.PingTimeout
	}
	s.timer = time.AfterFunc(d, s.onTimer)
}

func (s *Socket) onTimer() {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return
	}
	if s.version == 3 {
		limit := s.cfg.PingInterval + s.cfg.PingTimeout
		if idle := time.Since(s.lastSeen); idle < limit {
			s.timer.Reset(limit - idle)
			s.mu.Unlock()
			return
		}
		s.mu.Unlock()
		s.shut(closing{closeSilently, "ping timeout", false})
		return
	}
	if s.awaitPong {
		s.mu.Unlock()
		s.shut(closing{closeSilently, "ping timeout", false})
		return
	}
	s.awaitPong = true
	s.control(Ping, "")
	s.timer.Reset(s.cfg.PingTimeout)
	s.mu.Unlock()
	s.wake()
}
