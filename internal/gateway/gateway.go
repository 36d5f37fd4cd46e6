// Package gateway serves chat clients over HTTP: the native WebSocket and
// socket.io (engine.io polling and WebSocket), each connection a
// session.Session. It knows nothing of PocketBase: the primary serves it
// inside PocketBase's router with the store and auth of the database, an
// edge node on a plain net/http server with those of the primary, reached
// over HTTP.
//
//	gw := gateway.New(cfg, auth, store, hub, metrics)
//	err := gw.ServeWS(w, r, clientIP) // a *Refusal before the upgrade
//	sio := gw.SocketIO()              // GET and POST /socket.io/
//	gw.Shutdown()                     // closes every connection with 1001
package gateway

import (
	"context"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"

	"pocketchat/internal/chat"
	"pocketchat/internal/hub"
	"pocketchat/internal/session"
	"pocketchat/internal/ws"
)

// Transport names, the label of the per-transport metrics.
const (
	TransportNative   = "native"
	TransportSocketIO = "socketio"
)

// Config tunes the gateway.
type Config struct {
	// AllowedOrigins lists origins besides the request's own host whose
	// pages may open the chat; "*" allows any.
	AllowedOrigins []string
	// Guests lets clients without credentials connect and read.
	Guests bool
	// WS tunes every WebSocket (with a Poller, idle native sockets are
	// read through it).
	WS ws.Config
	// Session configures every chat session.
	Session session.Config
	// ConnsPerUser and ConnsPerIP bound the open connections of one user
	// and of one client address on this node; 0: no limit.
	ConnsPerUser, ConnsPerIP int
	// ShutdownWait bounds how long Shutdown waits for connections to
	// finish their request in progress and flush their queue.
	ShutdownWait time.Duration
	// Logger receives what goes wrong; nil: discarded.
	Logger *slog.Logger
}

// Authenticator resolves credentials to users. A refusal is a *Refusal
// (status and words for the client); any other error is an internal one.
type Authenticator interface {
	// UserByTicket redeems a single-use ticket.
	UserByTicket(ctx context.Context, ticket string) (*chat.User, error)
	// UserByToken verifies a users auth token ("Bearer " prefix optional).
	UserByToken(ctx context.Context, token string) (*chat.User, error)
}

// Metrics counts connections and deliveries; nil counts nothing.
type Metrics interface {
	session.Metrics
	// Opened and Closed keep the open connections of a transport;
	// tooSlow reports a close for a full queue.
	Opened(transport string)
	Closed(transport string, tooSlow bool)
}

// Refusal is why a connection is not accepted: an HTTP error before a
// WebSocket upgrade or engine.io handshake, the data.status of a
// socket.io connect error.
type Refusal struct {
	Status  int
	Message string
}

func (r *Refusal) Error() string { return r.Message }

// HTTPStatus is the status the refusal is answered with.
func (r *Refusal) HTTPStatus() int { return r.Status }

// Gateway owns the chat connections of one node.
type Gateway struct {
	cfg     Config
	auth    Authenticator
	store   session.Store
	hub     *hub.Hub
	metrics Metrics
	log     *slog.Logger
	conns   connLimits

	upgrader websocket.Upgrader
	connIDs  atomic.Uint64

	mu       sync.Mutex
	live     map[closer]struct{}
	stopping bool
	active   sync.WaitGroup
}

// New returns a gateway; m may be nil.
func New(cfg Config, auth Authenticator, store session.Store, h *hub.Hub, m Metrics) *Gateway {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if m == nil {
		m = noMetrics{}
	}
	cfg.Session.Metrics = m
	return &Gateway{
		cfg: cfg, auth: auth, store: store, hub: h, metrics: m, log: cfg.Logger,
		conns: connLimits{perUser: cfg.ConnsPerUser, perIP: cfg.ConnsPerIP},
		upgrader: websocket.Upgrader{
			// Frames are read through a small buffer (bigger ones in
			// several reads): it is held for as long as the connection
			// lives.
			ReadBufferSize: 1024,
			// ws.Conn writes frames itself from pooled buffers; with a
			// pool set, gorilla allocates no write buffer of its own.
			WriteBufferPool: &sync.Pool{},
			// The origin is checked before the upgrade, with a JSON error.
			CheckOrigin: func(*http.Request) bool { return true },
		},
		live: make(map[closer]struct{}),
	}
}

type noMetrics struct{}

func (noMetrics) Delivered()              {}
func (noMetrics) Committed(time.Duration) {}
func (noMetrics) Opened(string)           {}
func (noMetrics) Closed(string, bool)     {}

// closer is a live client connection that shutdown closes: a native
// WebSocket (*ws.Conn) or a socket.io session (*engineio.Socket).
type closer interface {
	Close(code int, reason string)
}

// track registers a live connection; it reports false when the gateway
// is shutting down and takes no new ones.
func (g *Gateway) track(c closer) bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.stopping {
		return false
	}
	g.live[c] = struct{}{}
	g.active.Add(1)
	return true
}

func (g *Gateway) untrack(c closer) {
	g.mu.Lock()
	delete(g.live, c)
	g.mu.Unlock()
	g.active.Done()
}

// Shutdown closes every connection with 1001 (going away) after its
// request in progress and queued events, and waits for them up to
// Config.ShutdownWait. Every ack sent was for a committed message, so
// nothing acknowledged is lost.
func (g *Gateway) Shutdown() {
	g.mu.Lock()
	g.stopping = true
	for c := range g.live {
		c.Close(websocket.CloseGoingAway, "server shutting down")
	}
	g.mu.Unlock()
	done := make(chan struct{})
	go func() {
		g.active.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(g.cfg.ShutdownWait):
		g.log.Warn("chat: shutdown timed out waiting for connections")
	}
}

// newSession starts the chat state of one connection.
func (g *Gateway) newSession(out session.Outbox, user *chat.User) *session.Session {
	return session.New(g.cfg.Session, g.store, g.hub, out, user, g.connIDs.Add(1))
}
