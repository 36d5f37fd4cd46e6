package server

import (
	"net/http"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
)

// handleWS serves GET /api/chat/ws through the gateway. Every refusal
// (origin, credentials, ban, limits) is PocketBase's JSON error before
// the upgrade; after it, the connection runs until the client leaves or
// the server stops.
func (s *Server) handleWS(e *core.RequestEvent) error {
	return apiError(s.gw.ServeWS(e.Response, e.Request, e.RealIP()))
}

// handleSocketIO returns the handler of /socket.io/ (the gateway's).
func (s *Server) handleSocketIO() func(*core.RequestEvent) error {
	sio := s.gw.SocketIO()
	return func(e *core.RequestEvent) error {
		return apiError(sio(e.Response, e.Request, e.RealIP()))
	}
}

// handleTicket serves POST /api/chat/ticket: a signed-in user gets a
// ticket for opening the socket from a browser.
func (s *Server) handleTicket(e *core.RequestEvent) error {
	if e.Auth.GetBool("banned") {
		return apis.NewForbiddenError("This account is banned.", nil)
	}
	if wait, ok := s.limits.ticket.Take(e.Auth.Id); !ok {
		return tooMany(e, wait, "Too many tickets: wait before asking again.")
	}
	t, exp, err := s.tickets.Issue(e.Auth.Id)
	if err != nil {
		return apis.NewInternalServerError("Could not issue a ticket.", err)
	}
	return e.JSON(http.StatusOK, map[string]any{"ticket": t, "expires": exp.UTC().Format(time.RFC3339Nano)})
}
