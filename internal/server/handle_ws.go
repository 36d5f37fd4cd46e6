package server

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"

	"pocketchat/internal/chat"
	"pocketchat/internal/protocol"
	"pocketchat/internal/session"
	"pocketchat/internal/ws"
)

// handleWS serves GET /api/chat/ws. Every refusal (origin, credentials,
// ban) is a JSON error before the upgrade; after it, the connection runs
// until the client leaves or the server stops.
func (s *Server) handleWS(e *core.RequestEvent) error {
	// First of all, so that no refusal below leaves a live ticket in
	// PocketBase's request log.
	tickets, hasTicket := takeTickets(e.Request)
	if !s.originAllowed(e.Request) {
		return apis.NewForbiddenError("This origin may not open the chat socket.", nil)
	}
	user, err := s.authenticate(e, tickets, hasTicket)
	if err != nil {
		return err
	}
	if !websocket.IsWebSocketUpgrade(e.Request) {
		return apis.NewBadRequestError("Expected a WebSocket upgrade request.", nil)
	}
	slot, err := s.limits.openConn(e.RealIP())
	if err == nil {
		if err = slot.forUser(user); err != nil {
			slot.release()
		}
	}
	if err != nil {
		return apis.NewApiError(http.StatusTooManyRequests, err.Error(), nil)
	}
	conn, err := s.upgrader.Upgrade(e.Response, e.Request, nil)
	if err != nil {
		slot.release()
		return nil // gorilla has answered; the connection is hijacked
	}
	c := ws.New(conn, protocol.Native{}, s.cfg.WS)
	if !s.track(c) {
		slot.release()
		closeNow(conn, websocket.CloseGoingAway, "server shutting down")
		return nil
	}
	s.metrics.opened(transportNative)
	// Requests finish even when shutdown begins mid-way, so their replies
	// (acks of committed messages) still go out. Not the request's
	// context: it ends when this handler returns, right after the
	// connection starts.
	sess := session.New(s.sessionConfig(), s.store, s.hub, c, user, s.connIDs.Add(1))
	if err := sess.Start(context.Background()); err != nil {
		e.App.Logger().Error("chat: session start failed", "error", err)
		closeNow(conn, websocket.CloseInternalServerErr, "internal error")
		s.metrics.closed(transportNative, false)
		s.untrack(c)
		slot.release()
		return nil
	}
	c.Serve(&nativeConn{srv: s, conn: c, sess: sess, slot: slot})
	return nil
}

// nativeConn serves one native WebSocket once it is upgraded: frames are
// decoded and handled by the chat session. It runs on the connection's
// own reader goroutine, so net/http's per-request state is freed when
// handleWS returns.
type nativeConn struct {
	srv  *Server
	conn *ws.Conn
	sess *session.Session
	slot *connSlot
}

func (n *nativeConn) Frame(frame []byte) {
	req, err := protocol.DecodeNative(frame)
	if err != nil {
		var id json.RawMessage
		if req != nil {
			id = req.ID
		}
		n.conn.Send(chat.ErrorEvent(id, err))
		return
	}
	switch req.Type {
	case chat.RequestJoin, chat.RequestHistory, chat.RequestResume, chat.RequestOpen, chat.RequestDM:
		// These query the database, whose driver (SQLite compiled to Go)
		// needs a deep stack. Run on the reader, that stack would stay
		// with the connection for as long as it lives; on a goroutine of
		// its own it is freed when the request is done. The reader waits,
		// so requests are still handled one at a time, in order.
		onFreshStack(func() { n.sess.Handle(context.Background(), req) })
	default:
		n.sess.Handle(context.Background(), req)
	}
}

// onFreshStack runs fn on a new goroutine and waits for it.
func onFreshStack(fn func()) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	<-done
}

// Settle waits for the acks of sends still being committed, so they are
// written before the close frame.
func (n *nativeConn) Settle() { n.sess.Wait() }

func (n *nativeConn) Closed(error) {
	n.sess.Close()
	n.srv.metrics.closed(transportNative, n.conn.CloseCode() == ws.CloseTooSlow)
	n.srv.untrack(n.conn)
	n.slot.release()
}

func closeNow(conn *websocket.Conn, code int, reason string) {
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	_ = conn.Close()
}

// authenticate finds who opens the socket: a single-use ticket (browsers),
// an Authorization header with a users token (programs), or nobody (a
// guest, if guests are allowed). A refusal is PocketBase's JSON error.
func (s *Server) authenticate(e *core.RequestEvent, tickets []string, hasTicket bool) (*chat.User, error) {
	var user *chat.User
	var err error
	switch header := e.Request.Header.Get("Authorization"); {
	case hasTicket && (len(tickets) != 1 || tickets[0] == ""):
		err = &authFailure{http.StatusUnauthorized, "Send exactly one ticket."}
	case hasTicket:
		user, err = s.userByTicket(tickets[0])
	case header != "":
		user, err = s.userByToken(header)
	default:
		user, err = s.guest()
	}
	if f, ok := err.(*authFailure); ok {
		return nil, f.apiError()
	}
	return user, err
}

// takeTickets removes every ticket parameter from the request URL, which
// PocketBase's activity log records when the request ends, and returns
// their values. hasTicket is true if the parameter was present at all,
// even empty: a request that tries a ticket is judged as one.
func takeTickets(r *http.Request) (tickets []string, hasTicket bool) {
	q := r.URL.Query()
	tickets, hasTicket = q["ticket"]
	if hasTicket {
		q.Del("ticket")
		r.URL.RawQuery = q.Encode()
	}
	return tickets, hasTicket
}

// originAllowed applies the same-origin rule to browser upgrades, with the
// configured allow-list. Requests without Origin come from programs, which
// authenticate with a header browsers cannot be made to send.
func (s *Server) originAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range s.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
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
