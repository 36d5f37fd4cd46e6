// Package server binds pocketchat to PocketBase: the chat routes, the
// record hooks that broadcast, the store that maps records to the chat's
// domain, and the configuration.
//
//	app := pocketbase.New()
//	cfg, err := server.ConfigFromEnv(os.Getenv)
//	srv, err := server.Register(app, cfg)
//	app.Start()
//
// Register takes a core.App, so tests pass a tests.TestApp or a BaseApp
// of their own.
package server

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pocketbase/pocketbase/core"

	"pocketchat/internal/hub"
	"pocketchat/internal/session"
	"pocketchat/internal/ws"
)

// Server is the chat bound to one PocketBase app.
type Server struct {
	app     core.App
	cfg     Config
	hub     *hub.Hub
	store   *store
	seq     *sequencer
	tickets Tickets
	metrics *metrics
	limits  *limits

	upgrader websocket.Upgrader
	connIDs  atomic.Uint64

	mu       sync.Mutex
	conns    map[closer]struct{}
	stopping bool
	active   sync.WaitGroup

	out io.Writer // where the start banner goes
}

// Register binds the chat to app: routes on serve, record hooks, and a
// graceful shutdown on terminate.
func Register(app core.App, cfg Config) (*Server, error) {
	h := hub.New(hub.NewMemoryBroker(), hub.Config{PresenceLimit: cfg.PresenceLimit})
	m := newMetrics(h)
	s := &Server{
		app:     app,
		cfg:     cfg,
		hub:     h,
		store:   newStore(app, m),
		tickets: newMemoryTickets(cfg.TicketTTL),
		metrics: m,
		limits:  newLimits(cfg),
		conns:   make(map[closer]struct{}),
		out:     os.Stdout,
	}
	s.seq = newSequencer(func() (int64, error) { return maxSeq(app) })
	s.upgrader = websocket.Upgrader{
		// Frames are read through a small buffer (bigger ones in several
		// reads): it is held for as long as the connection lives.
		ReadBufferSize: 1024,
		// ws.Conn writes frames itself from pooled buffers; with a pool
		// set, gorilla allocates no write buffer of its own.
		WriteBufferPool: &sync.Pool{},
		// The origin is checked before the upgrade, with a JSON error.
		CheckOrigin: func(*http.Request) bool { return true },
	}
	if cfg.WSPoll {
		// The poller lives as long as the server; connections that
		// cannot be polled get a reader goroutine.
		p, err := ws.NewPoller()
		if err != nil {
			app.Logger().Warn("chat: no WebSocket poller, one goroutine per connection", "error", err)
		}
		s.cfg.WS.Poller = p
	}
	s.bindHooks()
	if err := s.registerBot(); err != nil {
		return nil, err
	}
	app.OnServe().BindFunc(s.serve)
	app.OnTerminate().BindFunc(func(e *core.TerminateEvent) error {
		s.Shutdown()
		return e.Next()
	})
	return s, nil
}

// Hub is the server's hub, for tests and tools that publish directly.
func (s *Server) Hub() *hub.Hub { return s.hub }

func (s *Server) serve(e *core.ServeEvent) error {
	if err := s.routes(e); err != nil {
		return err
	}
	if s.cfg.Banner && e.Server != nil {
		base := "http://" + e.Server.Addr
		fmt.Fprintf(s.out, "pocketchat\n├─ Chat page:  %s/\n├─ WebSocket:  ws://%s/api/chat/ws\n├─ Dashboard:  %s/_/\n└─ First superuser: open the installer link below, or run\n   %s superuser upsert EMAIL PASSWORD --dir %s\n",
			base, e.Server.Addr, base, os.Args[0], e.App.DataDir())
	}
	return e.Next()
}

// closer is a live client connection that shutdown closes: a native
// WebSocket (*ws.Conn) or a socket.io session (*engineio.Socket).
type closer interface {
	Close(code int, reason string)
}

// track registers a live connection; it reports false when the server
// is shutting down and takes no new ones.
func (s *Server) track(c closer) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.stopping {
		return false
	}
	s.conns[c] = struct{}{}
	s.active.Add(1)
	return true
}

func (s *Server) untrack(c closer) {
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.active.Done()
}

// Shutdown closes every connection with 1001 (going away) after its
// request in progress and queued events, and waits for them up to
// Config.ShutdownWait. Every ack sent was for a committed message, so
// nothing acknowledged is lost.
func (s *Server) Shutdown() {
	s.mu.Lock()
	s.stopping = true
	for c := range s.conns {
		c.Close(websocket.CloseGoingAway, "server shutting down")
	}
	s.mu.Unlock()
	done := make(chan struct{})
	go func() {
		s.active.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(s.cfg.ShutdownWait):
		s.app.Logger().Warn("chat: shutdown timed out waiting for connections")
	}
	s.hub.Close()
	if p := s.cfg.WS.Poller; p != nil {
		_ = p.Close()
	}
}

// sessionConfig is the configuration of every chat session, whatever
// its transport.
func (s *Server) sessionConfig() session.Config {
	abuse := s.cfg.AbuseRefusals
	if abuse == 0 {
		abuse = -1 // never closed
	}
	return session.Config{PageSize: s.cfg.PageSize, MaxText: s.cfg.MaxText, Metrics: s.metrics,
		Limits: s.limits, AbuseRefusals: abuse, EditWindow: s.cfg.EditWindow,
		MaxJoins: s.cfg.JoinsPerConn}
}
