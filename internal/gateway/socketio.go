package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"

	"pocketchat/internal/chat"
	"pocketchat/internal/engineio"
	"pocketchat/internal/socketio"
)

// SocketIO returns the handler of /socket.io/ (GET and POST) for a client
// at address ip: engine.io sessions (v4 and v3, polling and WebSocket)
// whose clients speak socket.io and chat through the same sessions as
// the native socket. The heartbeat follows the WebSocket settings: the
// server (v4) or the client (v3) pings every WS.PingPeriod, and a client
// silent for WS.PongWait is dropped. A refusal before the handshake (the
// origin) is a *Refusal; the rest is answered by engine.io.
func (g *Gateway) SocketIO() func(w http.ResponseWriter, r *http.Request, ip string) error {
	eio := engineio.NewServer(engineio.Config{
		PingInterval: g.cfg.WS.PingPeriod,
		PingTimeout:  g.cfg.WS.PongWait - g.cfg.WS.PingPeriod,
		MaxPayload:   int(g.cfg.WS.MaxFrame),
		Queue:        g.cfg.WS.Queue,
		WriteWait:    g.cfg.WS.WriteWait,
	}, g.openSocketIO)
	return func(w http.ResponseWriter, r *http.Request, ip string) error {
		if !g.OriginAllowed(r) {
			return &Refusal{http.StatusForbidden, "This origin may not open the chat socket."}
		}
		allowCredentials(w.Header(), r)
		creds := sioCredentialsFrom(r)
		creds.ip = ip
		redactCredentials(r)
		ctx := context.WithValue(r.Context(), sioCredentialsKey{}, creds)
		eio.ServeHTTP(w, r.WithContext(ctx))
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
// request logs record when a request fails.
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
// credentials (socket.io-client 2.x sends them by default). A CORS
// middleware that answered "*" is refused by browsers for them; the
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
func (g *Gateway) openSocketIO(sock *engineio.Socket, r *http.Request) (engineio.Handler, error) {
	creds, _ := r.Context().Value(sioCredentialsKey{}).(sioCredentials)
	slot, err := g.conns.open(creds.ip)
	if err != nil {
		return nil, err // a 429 at the handshake
	}
	if !g.track(sock) {
		slot.release()
		return nil, errors.New("the server is shutting down")
	}
	g.metrics.Opened(TransportSocketIO)
	connect := func(ctx context.Context, auth json.RawMessage, out socketio.Outbox) (socketio.Session, error) {
		user, err := g.sioUser(ctx, auth, creds)
		if err != nil {
			var ref *Refusal
			if errors.As(err, &ref) {
				return nil, refusal(ref.Status, ref.Message)
			}
			return nil, err
		}
		if err := slot.forUser(user); err != nil {
			return nil, refusal(http.StatusTooManyRequests, err.Error())
		}
		return g.newSession(out, user), nil
	}
	return socketio.NewConn(sock, connect, socketio.Config{
		// Requests finish even when shutdown begins mid-way, so their
		// replies (acks of committed messages) still go out.
		Context: context.Background(),
		Hold:    g.cfg.WS.Queue,
		OnClose: func(string) {
			g.metrics.Closed(TransportSocketIO, sock.CloseCode() == engineio.CloseTooSlow)
			g.untrack(sock)
			slot.release()
		},
	}), nil
}

// sioUser finds who connects: the CONNECT packet's auth ({token} or
// {ticket}, socket.io-client 3.x/4.x), else the handshake's query (ticket
// or token, socket.io-client 2.x), else its Authorization header, else a
// guest if guests are allowed. As on the native socket, bad credentials
// are refused, never downgraded to a guest.
func (g *Gateway) sioUser(ctx context.Context, auth json.RawMessage, creds sioCredentials) (*chat.User, error) {
	var a struct {
		Token  string `json:"token"`
		Ticket string `json:"ticket"`
	}
	if len(auth) > 0 && json.Unmarshal(auth, &a) != nil {
		return nil, &Refusal{http.StatusBadRequest, "auth must be {token: \"…\"} or {ticket: \"…\"} with string values."}
	}
	switch {
	case a.Ticket != "":
		return g.auth.UserByTicket(ctx, a.Ticket)
	case a.Token != "":
		return g.auth.UserByToken(ctx, a.Token)
	case creds.ticket != "":
		return g.auth.UserByTicket(ctx, creds.ticket)
	case creds.token != "":
		return g.auth.UserByToken(ctx, creds.token)
	case creds.header != "":
		return g.auth.UserByToken(ctx, creds.header)
	default:
		return g.guest()
	}
}

// refusal is a socket.io connection refusal; data.status is the HTTP
// status the native socket answers the same credentials with.
func refusal(status int, message string) *socketio.Refusal {
	return &socketio.Refusal{Message: message, Data: map[string]int{"status": status}}
}
