package gateway

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"pocketchat/internal/chat"
	"pocketchat/internal/protocol"
	"pocketchat/internal/session"
	"pocketchat/internal/ws"
)

// ServeWS serves GET /api/chat/ws for a client at address ip. Every
// refusal (origin, credentials, ban, limits) is a *Refusal returned before
// the upgrade, for the caller to answer as JSON; after the upgrade the
// connection runs until the client leaves or the gateway stops, and
// ServeWS returns nil at once.
func (g *Gateway) ServeWS(w http.ResponseWriter, r *http.Request, ip string) error {
	// First of all, so that no refusal below leaves a live ticket in a
	// request log.
	tickets, hasTicket := TakeTickets(r)
	if !g.OriginAllowed(r) {
		return &Refusal{http.StatusForbidden, "This origin may not open the chat socket."}
	}
	user, err := g.authenticate(r, tickets, hasTicket)
	if err != nil {
		return err
	}
	if !websocket.IsWebSocketUpgrade(r) {
		return &Refusal{http.StatusBadRequest, "Expected a WebSocket upgrade request."}
	}
	slot, err := g.conns.open(ip)
	if err == nil {
		if err = slot.forUser(user); err != nil {
			slot.release()
		}
	}
	if err != nil {
		return err
	}
	conn, err := g.upgrader.Upgrade(w, r, nil)
	if err != nil {
		slot.release()
		return nil // gorilla has answered; the connection is hijacked
	}
	c := ws.New(conn, protocol.Native{}, g.cfg.WS)
	if !g.track(c) {
		slot.release()
		closeNow(conn, websocket.CloseGoingAway, "server shutting down")
		return nil
	}
	g.metrics.Opened(TransportNative)
	// Requests finish even when shutdown begins mid-way, so their replies
	// (acks of committed messages) still go out. Not the request's
	// context: it ends when the handler returns, right after the
	// connection starts.
	sess := g.newSession(c, user)
	if err := sess.Start(context.Background()); err != nil {
		g.log.Error("chat: session start failed", "error", err)
		closeNow(conn, websocket.CloseInternalServerErr, "internal error")
		g.metrics.Closed(TransportNative, false)
		g.untrack(c)
		slot.release()
		return nil
	}
	c.Serve(&nativeConn{gw: g, conn: c, sess: sess, slot: slot})
	return nil
}

// nativeConn serves one native WebSocket once it is upgraded: frames are
// decoded and handled by the chat session. It runs on the connection's
// own reader goroutine, so net/http's per-request state is freed when
// ServeWS returns.
type nativeConn struct {
	gw   *Gateway
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
	n.gw.metrics.Closed(TransportNative, n.conn.CloseCode() == ws.CloseTooSlow)
	n.gw.untrack(n.conn)
	n.slot.release()
}

func closeNow(conn *websocket.Conn, code int, reason string) {
	_ = conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(code, reason), time.Now().Add(time.Second))
	_ = conn.Close()
}

// authenticate finds who opens the socket: a single-use ticket (browsers),
// an Authorization header with a users token (programs), or nobody (a
// guest, if guests are allowed).
func (g *Gateway) authenticate(r *http.Request, tickets []string, hasTicket bool) (*chat.User, error) {
	switch header := r.Header.Get("Authorization"); {
	case hasTicket && (len(tickets) != 1 || tickets[0] == ""):
		return nil, &Refusal{http.StatusUnauthorized, "Send exactly one ticket."}
	case hasTicket:
		return g.auth.UserByTicket(r.Context(), tickets[0])
	case header != "":
		return g.auth.UserByToken(r.Context(), header)
	default:
		return g.guest()
	}
}

// guest is a client without credentials: nil user, if guests may read.
func (g *Gateway) guest() (*chat.User, error) {
	if !g.cfg.Guests {
		return nil, &Refusal{http.StatusUnauthorized, "Sign in to chat."}
	}
	return nil, nil
}

// TakeTickets removes every ticket parameter from the request URL, which
// request logs record, and returns their values. hasTicket is true if the
// parameter was present at all, even empty: a request that tries a ticket
// is judged as one.
func TakeTickets(r *http.Request) (tickets []string, hasTicket bool) {
	q := r.URL.Query()
	tickets, hasTicket = q["ticket"]
	if hasTicket {
		q.Del("ticket")
		r.URL.RawQuery = q.Encode()
	}
	return tickets, hasTicket
}

// OriginAllowed applies the same-origin rule to browser requests, with
// the configured allow-list. Requests without Origin come from programs,
// which authenticate with a header browsers cannot be made to send.
func (g *Gateway) OriginAllowed(r *http.Request) bool {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return true
	}
	u, err := url.Parse(origin)
	if err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host) {
		return true
	}
	for _, o := range g.cfg.AllowedOrigins {
		if o == "*" || strings.EqualFold(o, origin) {
			return true
		}
	}
	return false
}
