// Package engineio is a server of the Engine.IO protocol, the transport
// under Socket.IO, in its versions 4 (socket.io-client 3.x and 4.x) and 3
// (socket.io-client 2.x): sessions carried by HTTP long-polling or by a
// WebSocket, the upgrade from the first to the second, heartbeats and
// their timeouts.
//
//	srv := engineio.NewServer(engineio.Config{}, func(s *engineio.Socket, r *http.Request) (engineio.Handler, error) {
//		return myHandler{s}, nil // OnMessage(data) for each message; s.Send(...) to answer
//	})
//	mux.Handle("/socket.io/", srv)
//
// A Socket keeps one bounded queue of outgoing packets whatever carries it.
// A poll takes everything queued; after an upgrade the WebSocket's writer
// takes the rest, so a packet is written once, by exactly one transport.
// Incoming messages reach the Handler one at a time, in order, from
// whichever transport brought them.
package engineio

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/gorilla/websocket"
)

// Defaults for Config fields left zero.
const (
	// DefaultPingInterval is how often a ping crosses the session: sent by
	// the server in v4, by the client in v3.
	DefaultPingInterval = 25 * time.Second
	// DefaultPingTimeout is how long the other side may take to answer.
	DefaultPingTimeout = 20 * time.Second
	// DefaultMaxPayload is the largest message, in bytes: a WebSocket
	// frame, or one packet of a polling payload.
	DefaultMaxPayload = 64 << 10
	// DefaultMaxPollBody bounds one polling POST body. socket.io-client 4
	// splits its posts at maxPayload; 2.x and 3.x post all they buffered.
	DefaultMaxPollBody = 1 << 20
	// DefaultQueue is how many messages may wait for a slow client.
	DefaultQueue = 512
	// DefaultWriteWait bounds one write to a client.
	DefaultWriteWait = 10 * time.Second
	// DefaultUpgradeTimeout bounds an upgrade, from the WebSocket's
	// opening to the client's upgrade packet.
	DefaultUpgradeTimeout = 10 * time.Second
)

// Config tunes a Server. Zero fields take the defaults above.
type Config struct {
	// PingInterval is the handshake's pingInterval: how often the server
	// (v4) or the client (v3) pings.
	PingInterval time.Duration
	// PingTimeout is the handshake's pingTimeout: how long a ping may wait
	// for its pong. A v4 session without a pong that long after a ping,
	// or a v3 session silent for PingInterval + PingTimeout, is closed.
	PingTimeout time.Duration
	// MaxPayload is the largest packet a client may send, in bytes (the
	// v4 handshake's maxPayload); a larger one closes the session.
	MaxPayload int
	// MaxPollBody bounds one polling POST body, in bytes.
	MaxPollBody int
	// Queue is how many messages may wait for a client before it is
	// dropped as too slow.
	Queue int
	// WriteWait bounds one write to a client.
	WriteWait time.Duration
	// UpgradeTimeout bounds an upgrade, from the WebSocket's opening to
	// the client's upgrade packet.
	UpgradeTimeout time.Duration
}

func (c Config) withDefaults() Config {
	if c.PingInterval <= 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.PingTimeout <= 0 {
		c.PingTimeout = DefaultPingTimeout
	}
	if c.MaxPayload <= 0 {
		c.MaxPayload = DefaultMaxPayload
	}
	if c.MaxPollBody <= 0 {
		c.MaxPollBody = DefaultMaxPollBody
	}
	if c.MaxPollBody < c.MaxPayload {
		c.MaxPollBody = c.MaxPayload
	}
	if c.Queue <= 0 {
		c.Queue = DefaultQueue
	}
	if c.WriteWait <= 0 {
		c.WriteWait = DefaultWriteWait
	}
	if c.UpgradeTimeout <= 0 {
		c.UpgradeTimeout = DefaultUpgradeTimeout
	}
	return c
}

// Handler receives the messages of one session. Its methods are called one
// at a time.
type Handler interface {
	// OnMessage receives the data of a text message packet. Binary
	// messages are dropped: the layer above decides what to answer when
	// it announces them.
	OnMessage(data string)
	// OnClose is called once, when the session has ended and its last
	// packets are written (or dropped).
	OnClose(reason string)
}

// Opener is a Handler that wants to act as soon as its session is open
// (before the handshake's answer is written): OnOpen is called first, one
// at a time with the other methods.
type Opener interface {
	OnOpen()
}

// Settler is a Handler whose replies may still be in production when the
// session ends (acks waiting for a commit): Settle is called once no
// packet is being handled any more, and returns when those replies are
// queued, so they are written before the session closes.
type Settler interface {
	Settle()
}

// OpenFunc is called for each new session, on the handshake request,
// before anything is sent to the client (the open packet is queued). It
// returns the session's handler, or an error to refuse the session with
// 503 Service Unavailable, or with the status of an error that has an
// HTTPStatus() int method (429 for a client over its connection limit).
// A session opened on a WebSocket is refused with close code 1013 (try
// again later) and the error's text.
type OpenFunc func(s *Socket, r *http.Request) (Handler, error)

// Server serves engine.io sessions on one path.
type Server struct {
	cfg      Config
	open     OpenFunc
	upgrader websocket.Upgrader

	mu       sync.Mutex
	sessions map[string]*Socket
}

// NewServer returns a server that calls open for each new session.
func NewServer(cfg Config, open OpenFunc) *Server {
	return &Server{
		cfg:  cfg.withDefaults(),
		open: open,
		upgrader: websocket.Upgrader{
			ReadBufferSize:  4096,
			WriteBufferSize: 4096,
			WriteBufferPool: &sync.Pool{},
			// The caller checks the origin before handing the request over.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		sessions: make(map[string]*Socket),
	}
}

// Config is the server's configuration, defaults applied.
func (srv *Server) Config() Config { return srv.cfg }

// Len is the number of open sessions.
func (srv *Server) Len() int {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return len(srv.sessions)
}

// Close ends every session at once (as a server going away).
func (srv *Server) Close() {
	srv.mu.Lock()
	all := make([]*Socket, 0, len(srv.sessions))
	for _, s := range srv.sessions {
		all = append(all, s)
	}
	srv.mu.Unlock()
	for _, s := range all {
		s.Close(websocket.CloseGoingAway, "server shutting down")
	}
}

// The error codes of engine.io's JSON error bodies.
const (
	errUnknownTransport = 0
	errUnknownSID       = 1
	errBadHandshake     = 2
	errBadRequest       = 3
	errForbidden        = 4
	errBadVersion       = 5
)

// writeError answers a request with an engine.io JSON error body, which the
// reference clients understand: {"code":1,"message":"Session ID unknown"}.
func writeError(w http.ResponseWriter, status, code int, message string) {
	b, _ := json.Marshal(struct {
		Code    int    `json:"code"`
		Message string `json:"message"`
	}{code, message})
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// ServeHTTP serves every request of the protocol: handshakes, polls, posts
// and WebSockets, told apart by the query's transport and sid.
func (srv *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	version := 0
	switch q.Get("EIO") {
	case "4":
		version = 4
	case "3":
		version = 3
	default:
		writeError(w, http.StatusBadRequest, errBadVersion, "Unsupported protocol version: this server speaks EIO=4 (socket.io-client 3 and 4) and EIO=3 (socket.io-client 2)")
		return
	}
	transport := q.Get("transport")
	if transport != "polling" && transport != "websocket" {
		writeError(w, http.StatusBadRequest, errUnknownTransport, "Transport unknown")
		return
	}
	if q.Has("j") {
		writeError(w, http.StatusBadRequest, errBadRequest, "JSONP polling is not supported: use XHR polling or the WebSocket transport")
		return
	}
	sid := q.Get("sid")
	if sid == "" {
		srv.handshake(w, r, version, transport)
		return
	}
	s := srv.lookup(sid)
	if s == nil {
		writeError(w, http.StatusBadRequest, errUnknownSID, "Session ID unknown")
		return
	}
	if s.version != version {
		writeError(w, http.StatusBadRequest, errBadRequest, "Bad request: EIO does not match the session's")
		return
	}
	switch {
	case transport == "websocket":
		srv.upgrade(w, r, s)
	case r.Method == http.MethodGet:
		s.poll(w, r)
	case r.Method == http.MethodPost:
		s.post(w, r)
	default:
		writeError(w, http.StatusBadRequest, errBadHandshake, "Bad request method")
	}
}

func (srv *Server) lookup(sid string) *Socket {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	return srv.sessions[sid]
}

func (srv *Server) remove(s *Socket) {
	srv.mu.Lock()
	if srv.sessions[s.id] == s {
		delete(srv.sessions, s.id)
	}
	srv.mu.Unlock()
}

// handshake opens a session: on a polling GET it answers with the open
// packet (and whatever the handler queued meanwhile); on a WebSocket the
// open packet is the first frame.
func (srv *Server) handshake(w http.ResponseWriter, r *http.Request, version int, transport string) {
	if transport == "polling" && r.Method != http.MethodGet {
		writeError(w, http.StatusBadRequest, errBadHandshake, "Bad handshake method")
		return
	}
	if transport == "websocket" && !websocket.IsWebSocketUpgrade(r) {
		writeError(w, http.StatusBadRequest, errBadRequest, "Bad request: expected a WebSocket upgrade")
		return
	}
	s := newSocket(srv, newID(), version)
	upgrades := []string{"websocket"}
	if transport == "websocket" {
		upgrades = []string{}
		s.transport = transportWebSocket
	}
	s.queue = append(s.queue, rawPacket(AppendPacket(nil, Open, srv.openData(s.id, version, upgrades))))

	var conn *websocket.Conn
	if transport == "websocket" {
		c, err := srv.upgrader.Upgrade(w, r, nil)
		if err != nil {
			return // gorilla has answered
		}
		conn = c
	}
	h, err := srv.open(s, r)
	if err != nil {
		status, reason := http.StatusServiceUnavailable, "Service unavailable: "+err.Error()
		if se, ok := err.(interface{ HTTPStatus() int }); ok {
			status, reason = se.HTTPStatus(), err.Error()
		}
		if conn != nil {
			closeConn(conn, websocket.CloseTryAgainLater, reason, srv.cfg.WriteWait) // our reasons are short
			_ = conn.Close()
			return
		}
		writeError(w, status, errBadRequest, reason)
		return
	}
	s.handler = h
	srv.mu.Lock()
	srv.sessions[s.id] = s
	srv.mu.Unlock()
	s.startHeartbeat()
	if o, ok := h.(Opener); ok {
		s.inMu.Lock()
		o.OnOpen()
		s.inMu.Unlock()
	}
	if conn != nil {
		s.runWebSocket(r.Context(), conn)
		return
	}
	s.poll(w, r)
}

func (srv *Server) openData(sid string, version int, upgrades []string) string {
	ms := func(d time.Duration) int64 { return d.Milliseconds() }
	b := []byte(`{"sid":`)
	b = strconv.AppendQuote(b, sid)
	up, _ := json.Marshal(upgrades)
	b = append(b, `,"upgrades":`...)
	b = append(b, up...)
	b = append(b, `,"pingInterval":`...)
	b = strconv.AppendInt(b, ms(srv.cfg.PingInterval), 10)
	b = append(b, `,"pingTimeout":`...)
	b = strconv.AppendInt(b, ms(srv.cfg.PingTimeout), 10)
	if version == 4 {
		b = append(b, `,"maxPayload":`...)
		b = strconv.AppendInt(b, int64(srv.cfg.MaxPayload), 10)
	}
	return string(append(b, '}'))
}

// newID returns a random session id: 120 bits in 20 URL-safe characters.
func newID() string {
	var b [15]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}
