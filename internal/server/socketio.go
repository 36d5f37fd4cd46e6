package server

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"

	"pocketchat/internal/chat"
	"pocketchat/internal/engineio"
	"pocketchat/internal/session"
	"pocketchat/internal/socketio"
)

// handleSocketIO returns the handler of /socket.io/: engine.io sessions
// (v4 and v3, polling and WebSocket) whose clients speak socket.io and
// chat through the same sessions as the native socket. The heartbeat
// follows the WebSocket settings: the server (v4) or the client (v3)
// pings every CHAT_WS_PING, and a client silent for CHAT_WS_PONG_WAIT is
// dropped.
func (s *Server) handleSocketIO() func(*core.RequestEvent) error {
	eio := engineio.NewServer(engineio.Config{
		PingInterval: s.cfg.WS.PingPeriod,
		PingTimeout:  s.cfg.WS.PongWait - s.cfg.WS.PingPeriod,
		MaxPayload:   int(s.cfg.WS.MaxFrame),
		Queue:        s.cfg.WS.Queue,
		WriteWait:    s.cfg.WS.WriteWait,
	}, s.openSocketIO)
	return func(e *core.RequestEvent) error {
		r := e.Request
		if !s.originAllowed(r) {
			return apis.NewForbiddenError("This origin may not open the chat socket.", nil)
		}
		allowCredentials(e.Response.Header(), r)
		creds := sioCredentialsFrom(r)
		creds.ip = e.RealIP()
		redactCredentials(r)
		ctx := context.WithValue(r.Context(), sioCredentialsKey{}, creds)
		eio.ServeHTTP(e.Response, r.WithContext(ctx))
		return nil
	}
}

// sioCredentials are what a socket.io client presented at its handshake:
// socket.io-client 2.x passes a ticket or token in the query, programs
// may send the Authorization header (extraHeaders).
type sioCredentials struct {
	ticket, token, header string
	ip                    string // the client's address, for the connection limits
}

type sioCredentialsKey struct{}

func sioCredentialsFrom(r *http.Request) sioCredentials {
	q := r.URL.Query()
	return sioCredentials{
		ticket: q.Get("ticket"),
		token:  q.Get("token"),
		header: r.Header.Get("Authorization"),
	}
}

// redactCredentials drops tickets and tokens from the request URL, which
// PocketBase's activity log records when a request fails.
func redactCredentials(r *http.Request) {
	q := r.URL.Query()
	if !q.Has("ticket") && !q.Has("token") {
		return
	}
	q.Del("ticket")
	q.Del("token")
	r.URL.RawQuery = q.Encode()
}

// allowCredentials lets pages of the allowed foreign origins poll with
// credentials (socket.io-client 2.x sends them by default). PocketBase's
// CORS middleware has answered "*", which browsers refuse for them; the
// origin was checked already.
func allowCredentials(h http.Header, r *http.Request) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	if u, err := url.Parse(origin); err == nil && strings.EqualFold(u.Host, r.Host) {
		return
	}
	h.Set("Access-Control-Allow-Origin", origin)
	h.Set("Access-Control-Allow-Credentials", "true")
}

// openSocketIO starts a socket.io client on a new engine.io session. It
// is tracked like a WebSocket, so shutdown closes it.
func (s *Server) openSocketIO(sock *engineio.Socket, r *http.Request) (engineio.Handler, error) {
	creds, _ := r.Context().Value(sioCredentialsKey{}).(sioCredentials)
	slot, err := s.limits.openConn(creds.ip)
	if err != nil {
		return nil, err // a 429 at the handshake
	}
	if !s.track(sock) {
		slot.release()
		return nil, errors.New("the server is shutting down")
	}
	s.metrics.opened(transportSocketIO)
	connect := func(ctx context.Context, auth json.RawMessage, out socketio.Outbox) (socketio.Session, error) {
		user, err := s.sioUser(auth, creds)
		if err != nil {
			return nil, err
		}
		if err := slot.forUser(user); err != nil {
			return nil, refusal(http.StatusTooManyRequests, err.Error())
		}
		return session.New(s.sessionConfig(), s.store, s.hub, out, user, s.connIDs.Add(1)), nil
	}
	return socketio.NewConn(sock, connect, socketio.Config{
		// Requests finish even when shutdown begins mid-way, so their
		// replies (acks of committed messages) still go out.
		Context: context.Background(),
		Hold:    s.cfg.WS.Queue,
		OnClose: func(string) {
			s.metrics.closed(transportSocketIO, sock.CloseCode() == engineio.CloseTooSlow)
			s.untrack(sock)
			slot.release()
		},
	}), nil
}

// sioUser finds who connects: the CONNECT packet's auth ({token} or
// {ticket}, socket.io-client 3.x/4.x), else the handshake's query (ticket
// or token, socket.io-client 2.x), else its Authorization header, else a
// guest if guests are allowed. As on the native socket, bad credentials
// are refused, never downgraded to a guest.
func (s *Server) sioUser(auth json.RawMessage, creds sioCredentials) (*chat.User, error) {
	var a struct {
		Token  string `json:"token"`
		Ticket string `json:"ticket"`
	}
	if len(auth) > 0 && json.Unmarshal(auth, &a) != nil {
		return nil, refusal(http.StatusBadRequest, "auth must be {token: \"…\"} or {ticket: \"…\"} with string values.")
	}
	var user *chat.User
	var err error
	switch {
	case a.Ticket != "":
		user, err = s.userByTicket(a.Ticket)
	case a.Token != "":
		user, err = s.userByToken(a.Token)
	case creds.ticket != "":
		user, err = s.userByTicket(creds.ticket)
	case creds.token != "":
		user, err = s.userByToken(creds.token)
	case creds.header != "":
		user, err = s.userByToken(creds.header)
	default:
		user, err = s.guest()
	}
	if f, ok := err.(*authFailure); ok {
		return nil, refusal(f.status, f.message)
	}
	return user, err
}

// refusal is a socket.io connection refusal; data.status is the HTTP
// status the native socket answers the same credentials with.
func refusal(status int, message string) *socketio.Refusal {
	return &socketio.Refusal{Message: message, Data: map[string]int{"status": status}}
}
