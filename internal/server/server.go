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
	"os"

	"github.com/pocketbase/pocketbase/core"

	"pocketchat/internal/cluster"
	"pocketchat/internal/gateway"
	"pocketchat/internal/hub"
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
	auth    pbAuth // the chat's credentials, for the gateway and the edges
	gw      *gateway.Gateway
	cluster *cluster.Node // nil on a single node

	out io.Writer // where the start banner goes
}

// Register binds the chat to app: routes on serve, record hooks, and a
// graceful shutdown on terminate. With cfg.RedisURL the node joins a
// cluster: events go through Redis, presence and tickets live there.
func Register(app core.App, cfg Config) (*Server, error) {
	var broker hub.Broker = hub.NewMemoryBroker()
	var dir hub.Directory
	var tickets Tickets = newMemoryTickets(cfg.TicketTTL)
	var node *cluster.Node
	if cfg.RedisURL != "" {
		var err error
		node, err = cluster.Open(cfg.ClusterConfig(app.Logger()))
		if err != nil {
			return nil, err
		}
		broker, dir, tickets = node.Broker, node.Directory, node.Tickets
	}
	h := hub.New(broker, hub.Config{PresenceLimit: cfg.PresenceLimit, Directory: dir})
	if node != nil {
		node.Start(h)
	}
	m := newMetrics(h)
	if node != nil {
		node.CountDropped(m.node)
	}
	s := &Server{
		app:     app,
		cfg:     cfg,
		hub:     h,
		store:   newStore(app, m),
		tickets: tickets,
		metrics: m,
		limits:  newLimits(cfg),
		auth:    pbAuth{app: app, tickets: tickets},
		cluster: node,
		out:     os.Stdout,
	}
	s.seq = newSequencer(func() (int64, error) { return maxSeq(app) })
	if cfg.WSPoll {
		// The poller lives as long as the server; connections that
		// cannot be polled get a reader goroutine.
		p, err := ws.NewPoller()
		if err != nil {
			app.Logger().Warn("chat: no WebSocket poller, one goroutine per connection", "error", err)
		}
		s.cfg.WS.Poller = p
	}
	s.gw = gateway.New(s.cfg.GatewayConfig(s.limits, app.Logger()), s.auth, s.store, h, m.node)
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

// Shutdown closes every connection with 1001 (going away) after its
// request in progress and queued events, and waits for them up to
// Config.ShutdownWait. Every ack sent was for a committed message, so
// nothing acknowledged is lost. A cluster node then takes its users
// offline for the others and disconnects from Redis.
func (s *Server) Shutdown() {
	s.gw.Shutdown()
	s.hub.Close()
	if s.cluster != nil {
		s.cluster.Close()
	}
	if p := s.cfg.WS.Poller; p != nil {
		_ = p.Close()
	}
}
