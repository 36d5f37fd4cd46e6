package server

import (
	"os"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
)

// routes lists the whole HTTP surface the chat adds to PocketBase's.
func (s *Server) routes(e *core.ServeEvent) error {
	e.Router.GET("/api/chat/ws", s.handleWS)
	e.Router.POST("/api/chat/ticket", s.handleTicket).Bind(apis.RequireAuth(colUsers))
	sio := s.handleSocketIO() // socket.io clients: engine.io v3/v4 polling (GET/POST) and WebSocket
	e.Router.GET("/socket.io/", sio).Bind(apis.SkipSuccessActivityLog())
	e.Router.POST("/socket.io/", sio).Bind(apis.SkipSuccessActivityLog())
	e.Router.GET("/api/chat/metrics", s.handleMetrics()).Bind(apis.SkipSuccessActivityLog(), s.requireMetricsAccess())
	s.clusterRoutes(e.Router) // for edge nodes, with CHAT_CLUSTER_SECRET

	switch {
	case s.cfg.PublicDir != "":
		e.Router.GET("/{path...}", apis.Static(os.DirFS(s.cfg.PublicDir), false))
	case s.cfg.Public != nil:
		e.Router.GET("/{path...}", apis.Static(s.cfg.Public, false))
	}
	return nil
}
