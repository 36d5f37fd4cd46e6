// Package socketio speaks the Socket.IO protocol, versions 5 (socket.io
// 3.x and 4.x, over engine.io v4) and 4 (socket.io 2.x, over engine.io
// v3), on the default namespace, and maps it onto pocketchat's chat
// requests and events.
//
//	conn := socketio.NewConn(engineSocket, connect, socketio.Config{OnClose: untrack})
//	// the handler engineio.Server's OpenFunc returns; engine.io then calls
//	// conn.OnOpen(), conn.OnMessage(data) for each message, conn.OnClose at the end
//
// A client emits requests by their native type with the other fields as
// one object, ["send",{"room":"r1","text":"hi"}]; with an ack callback
// the reply comes back through it. The server emits every other event
// under its type with its payload, ["message",{"room":…,"message":…}].
// Codec holds the encoding, DecodeEvent the decoding.
package socketio

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/engineio"
)

// DefaultConnectTimeout is how long a client may stay connected to the
// engine without being connected to the namespace.
const DefaultConnectTimeout = 45 * time.Second

// DefaultHold bounds the events held while a session starts.
const DefaultHold = 512

// Transport is the engine.io session under a Conn (*engineio.Socket).
type Transport interface {
	Send(m engineio.Outgoing) bool
	Close(code int, reason string)
	Version() int
}

// Outbox is what a session sends its events through (session.Outbox).
type Outbox interface {
	Send(ev *chat.Event)
	End(reason string)
}

// Session is the chat session of a connected client (*session.Session).
type Session interface {
	Start(ctx context.Context) error
	Handle(ctx context.Context, req *chat.Request)
	// Wait returns once the replies to the requests already handled are
	// queued: a send's ack follows its commit, after Handle returned.
	Wait()
	Close()
}

// ConnectFunc authenticates a client connecting to the namespace and
// returns its session, not yet started, sending through out. auth is the
// CONNECT packet's payload (socket.io 3.x/4.x clients' auth option), nil
// if there is none. A *Refusal refuses the client with its message;
// any other error is reported as an internal error.
type ConnectFunc func(ctx context.Context, auth json.RawMessage, out Outbox) (Session, error)

// Refusal refuses a connection: the client gets CONNECT_ERROR with
// {"message":Message,"data":Data} (v5), or ERROR with the message (v4).
type Refusal struct {
	Message string
	Data    any
}

func (e *Refusal) Error() string { return e.Message }

// Config tunes a Conn. Zero fields take the defaults.
type Config struct {
	// Context is given to the session's Start and Handle; requests run
	// to completion, so it should not be cancelled by a shutdown.
	Context context.Context
	// ConnectTimeout closes a client that is not connected to the
	// namespace this long after opening or after disconnecting from it.
	ConnectTimeout time.Duration
	// Hold bounds the events held while a session starts; beyond it the
	// client is closed as too slow.
	Hold int
	// OnClose is called once the engine.io session has ended.
	OnClose func(reason string)
}

// Conn is one client: an engine.io session and, once the client has
// connected to the namespace, its chat session.
type Conn struct {
	t       Transport
	connect ConnectFunc
	cfg     Config

	mu     sync.Mutex
	sess   Session
	out    *outbox
	timer  *time.Timer
	closed bool
}

var (
	_ engineio.Handler = (*Conn)(nil)
	_ engineio.Opener  = (*Conn)(nil)
)

// NewConn returns the client carried by t.
func NewConn(t Transport, connect ConnectFunc, cfg Config) *Conn {
	if cfg.Context == nil {
		cfg.Context = context.Background()
	}
	if cfg.ConnectTimeout <= 0 {
		cfg.ConnectTimeout = DefaultConnectTimeout
	}
	if cfg.Hold <= 0 {
		cfg.Hold = DefaultHold
	}
	return &Conn{t: t, connect: connect, cfg: cfg}
}

// OnOpen starts the client. A socket.io 2.x client (engine.io v3) is
// connected to the default namespace at once, with the handshake's
// credentials; newer clients send CONNECT, for which OnOpen starts the
// timeout.
func (c *Conn) OnOpen() {
	if c.t.Version() == 3 {
		c.connectRoot(nil)
		return
	}
	c.mu.Lock()
	c.armTimeout()
	c.mu.Unlock()
}

// armTimeout closes the client if it is still not connected after the
// connect timeout. The caller holds c.mu.
func (c *Conn) armTimeout() {
	if c.timer != nil {
		c.timer.Stop()
	}
	c.timer = time.AfterFunc(c.cfg.ConnectTimeout, func() {
		c.mu.Lock()
		idle := c.sess == nil && !c.closed
		c.mu.Unlock()
		if idle {
			c.t.Close(1000, "not connected to a namespace in time")
		}
	})
}

// OnMessage handles one socket.io packet.
func (c *Conn) OnMessage(data string) {
	p, err := DecodePacket(data)
	if err != nil {
		c.reply(chat.ErrorEvent(nil, chat.Errorf(chat.CodeBadRequest, "malformed socket.io packet")))
		return
	}
	if p.Namespace != RootNamespace {
		if p.Type == Connect {
			c.refuse(p.Namespace, &Refusal{Message: "Invalid namespace: pocketchat serves only \"/\""})
		}
		return
	}
	switch p.Type {
	case Connect:
		c.connectRoot(p.Data)
	case Disconnect:
		c.disconnect()
	case Event:
		c.event(p)
	case BinaryEvent:
		id := json.RawMessage(normalizeID(p.ID))
		if len(id) == 0 {
			id = nil
		}
		c.reply(chat.ErrorEvent(id, chat.Errorf(chat.CodeBadRequest,
			"binary attachments are not supported: send JSON (strings, numbers, objects)")))
	}
	// ACK and BINARY_ACK answer events that asked for one, and the
	// server asks for none; CONNECT_ERROR is the server's to send.
}

func (c *Conn) event(p Packet) {
	req, err := DecodeEvent(p.Data, p.ID)
	c.mu.Lock()
	sess, out := c.sess, c.out
	c.mu.Unlock()
	switch {
	case sess == nil:
		c.reply(chat.ErrorEvent(req.ID, chat.Errorf(chat.CodeBadRequest, "not connected: connect to the namespace \"/\" first")))
	case err != nil:
		out.Send(chat.ErrorEvent(req.ID, err))
	default:
		sess.Handle(c.cfg.Context, req)
	}
}

// reply sends an event through the session's outbox when connected (to
// keep its order), straight to the transport otherwise.
func (c *Conn) reply(ev *chat.Event) {
	c.mu.Lock()
	out := c.out
	c.mu.Unlock()
	if out != nil {
		out.Send(ev)
		return
	}
	c.t.Send(eventPacket{ev})
}

// connectRoot connects the client to the default namespace: it
// authenticates, starts the session and answers CONNECT, then releases
// the events the session queued meanwhile (hello first).
func (c *Conn) connectRoot(auth json.RawMessage) {
	c.mu.Lock()
	busy := c.sess != nil || c.closed
	c.mu.Unlock()
	if busy {
		return // a second CONNECT changes nothing
	}
	if len(auth) > 0 && string(auth) != "null" && auth[0] != '{' {
		c.refuse(RootNamespace, &Refusal{Message: "auth must be an object: {token} or {ticket}"})
		return
	}
	out := &outbox{t: c.t, limit: c.cfg.Hold}
	sess, err := c.connect(c.cfg.Context, auth, out)
	if err != nil {
		c.refuse(RootNamespace, err)
		return
	}
	if err := sess.Start(c.cfg.Context); err != nil {
		sess.Close()
		c.refuse(RootNamespace, err)
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		sess.Close()
		return
	}
	c.sess, c.out = sess, out
	if c.timer != nil {
		c.timer.Stop()
	}
	c.mu.Unlock()
	out.release(engineio.TextMessage(c.connectReply()))
}

func (c *Conn) connectReply() string {
	if c.t.Version() == 3 {
		return string(Connect)
	}
	var b [15]byte
	_, _ = rand.Read(b[:])
	sid := base64.RawURLEncoding.EncodeToString(b[:])
	return string(Connect) + `{"sid":"` + sid + `"}`
}

// refuse answers a CONNECT with CONNECT_ERROR (v5) or ERROR (v4).
func (c *Conn) refuse(nsp string, err error) {
	msg := "internal error"
	var data any
	if ce, ok := errors.AsType[*Refusal](err); ok {
		msg, data = ce.Message, ce.Data
	}
	p := Packet{Type: ConnectError, Namespace: nsp}
	if c.t.Version() == 3 {
		p.Data, _ = json.Marshal(msg)
	} else {
		p.Data, _ = json.Marshal(struct {
			Message string `json:"message"`
			Data    any    `json:"data,omitempty"`
		}{msg, data})
	}
	c.t.Send(engineio.TextMessage(string(p.Append(nil))))
}

// disconnect ends the chat session; the engine.io session stays, and the
// client may connect again.
func (c *Conn) disconnect() {
	c.mu.Lock()
	sess, out := c.sess, c.out
	c.sess, c.out = nil, nil
	if sess != nil && !c.closed {
		c.armTimeout()
	}
	c.mu.Unlock()
	if sess != nil {
		out.close()
		sess.Close()
	}
}

// OnClose ends the chat session with the engine.io session.
func (c *Conn) OnClose(reason string) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	if c.timer != nil {
		c.timer.Stop()
	}
	sess, out := c.sess, c.out
	c.sess, c.out = nil, nil
	c.mu.Unlock()
	if sess != nil {
		out.close()
		sess.Close()
	}
	if c.cfg.OnClose != nil {
		c.cfg.OnClose(reason)
	}
}

// Settle returns once the connected session has queued the replies of
// every request already handled (acks wait for their commit, after the
// request itself returned). An engine.io session that closes with a
// drain must call it after the packet in progress and before it takes
// its queue, so that those replies are written before the close.
func (c *Conn) Settle() {
	c.mu.Lock()
	sess := c.sess
	c.mu.Unlock()
	if sess != nil {
		sess.Wait()
	}
}

// Connected reports whether the client is connected to the namespace.
func (c *Conn) Connected() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.sess != nil
}

// eventPacket is a chat event waiting in a transport's queue, encoded by
// the writer; a broadcast event is encoded once for every socket.io
// client.
type eventPacket struct{ ev *chat.Event }

func (p eventPacket) Encode() []byte { return p.ev.Encoded(Codec{}) }

// outbox is a session's way to the transport. Until the CONNECT reply is
// out, events (hello, and anything the hub delivers meanwhile) are held,
// so the client sees them after it is connected.
type outbox struct {
	t     Transport
	limit int

	mu     sync.Mutex
	open   bool
	closed bool
	held   []*chat.Event
}

func (o *outbox) Send(ev *chat.Event) {
	o.mu.Lock()
	defer o.mu.Unlock()
	switch {
	case o.closed:
	case o.open:
		o.t.Send(eventPacket{ev})
	case len(o.held) >= o.limit:
		o.closed = true
		o.held = nil
		o.t.Close(engineio.CloseTooSlow, "too slow: "+strconv.Itoa(o.limit)+" events held")
	default:
		o.held = append(o.held, ev)
	}
}

// End disconnects the client from the server's side, as
// socket.disconnect(true) does in the reference server: after the events
// queued, a DISCONNECT packet (the client reports "io server disconnect"
// and does not reconnect by itself), then the engine.io session closes.
// The events still held before the CONNECT reply are dropped: a client
// ended that early has not seen hello yet.
func (o *outbox) End(reason string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	o.closed = true
	o.held = nil
	if o.open {
		o.t.Send(engineio.TextMessage(string(Packet{Type: Disconnect, Namespace: RootNamespace}.Append(nil))))
	}
	// 1000 lets the queue drain: the error that says why, then the
	// DISCONNECT, go out before the close.
	o.t.Close(1000, reason)
}

// release sends first, then the held events, and lets later ones through.
func (o *outbox) release(first engineio.Outgoing) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.closed {
		return
	}
	o.t.Send(first)
	for _, ev := range o.held {
		o.t.Send(eventPacket{ev})
	}
	o.held = nil
	o.open = true
}

func (o *outbox) close() {
	o.mu.Lock()
	o.closed = true
	o.held = nil
	o.mu.Unlock()
}
