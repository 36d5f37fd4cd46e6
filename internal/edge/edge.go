// Package edge runs an edge node: it holds chat connections (the native
// WebSocket, socket.io, the browser client's files) and fans events out
// to them, and reaches everything else through the primary: its cluster
// API for the database, its HTTP server for REST, the dashboard and SSE
// (proxied, so a client may use an edge as its only address). Events
// arrive through Redis, like on every node; an edge never opens the
// SQLite file.
//
//	pocketchat edge --primary http://10.0.0.1:8090 --http 0.0.0.0:8091
package edge

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/cluster"
	"pocketchat/internal/gateway"
	"pocketchat/internal/hub"
	"pocketchat/internal/limit"
	"pocketchat/internal/metrics"
	"pocketchat/internal/server"
	"pocketchat/internal/ws"
)

// Main runs `pocketchat edge` with args (after "edge") and the CHAT_*
// settings from getenv, until SIGINT or SIGTERM. public is the browser
// client.
func Main(args []string, getenv func(string) string, public fs.FS, out io.Writer) error {
	fl := flag.NewFlagSet("edge", flag.ContinueOnError)
	fl.SetOutput(out)
	primaryURL := fl.String("primary", "", "the primary's base URL, e.g. http://10.0.0.1:8090 (required)")
	addr := fl.String("http", "127.0.0.1:8091", "the address to listen on")
	ipHeader := fl.String("ip-header", "", "take each client's address from this request header (e.g. X-Real-IP), set by the proxy in front of the edges; "+
		"only when clients cannot reach the edge but through that proxy (empty: the peer's address)")
	if err := fl.Parse(args); err != nil {
		return err
	}
	cfg, err := server.ConfigFromEnv(getenv)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return Run(ctx, Config{Primary: *primaryURL, Addr: *addr, IPHeader: *ipHeader, Chat: cfg, Public: public, Out: out})
}

// Config is an edge node's.
type Config struct {
	Primary string // the primary's base URL
	Addr    string // where to listen
	// IPHeader names the header that carries the client's address when
	// a proxy sits in front (nginx's X-Real-IP); empty: the peer's
	// address. The per-address connection limit counts it, and the
	// primary gets it as X-Real-IP on proxied requests.
	IPHeader string
	Chat     server.Config // the CHAT_* settings (RedisURL and ClusterSecret required)
	Public   fs.FS         // the browser client; nil: CHAT_PUBLIC_DIR or nothing
	Out      io.Writer     // the start banner; nil: none
	// Ready, when set, gets the address the edge listens on once it
	// accepts connections.
	Ready func(addr string)
}

// Run serves until ctx ends, then closes every connection (1001) and
// takes its users offline for the cluster.
func Run(ctx context.Context, cfg Config) error {
	c := cfg.Chat
	if cfg.Primary == "" {
		return errors.New("edge: --primary is required")
	}
	base, err := url.Parse(cfg.Primary)
	if err != nil || base.Host == "" {
		return fmt.Errorf("edge: --primary %q is not a URL", cfg.Primary)
	}
	if c.RedisURL == "" || c.ClusterSecret == "" {
		return errors.New("edge: CHAT_REDIS_URL and CHAT_CLUSTER_SECRET must be set (the same as the primary's)")
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	node, err := cluster.Open(c.ClusterConfig(log))
	if err != nil {
		return err
	}
	h := hub.New(node.Broker, hub.Config{PresenceLimit: c.PresenceLimit, Directory: node.Directory})
	p := newPrimary(base, c.ClusterSecret)
	st := newStore(p)
	// Cached rooms go stale when a room changes anywhere.
	unsub := node.Broker.Subscribe(func(env hub.Envelope) {
		if env.Event.Type == chat.EventRoom {
			st.roomChanged()
		}
	})
	defer unsub()
	node.Start(h)
	if c.WSPoll {
		if poller, err := ws.NewPoller(); err == nil {
			c.WS.Poller = poller
			defer poller.Close()
		}
	}
	m := metrics.New(func() float64 { return float64(h.Stats().Rooms) })
	node.CountDropped(m)
	gw := gateway.New(c.GatewayConfig(sendsAtPrimary{typing: limit.NewBuckets(c.TypingRate, nil)}, log),
		auth{p: p, tickets: node.Tickets}, st, h, m)

	l, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		node.Close()
		return err
	}
	mux := routes(gw, base, clientAddr{header: cfg.IPHeader}, c, cfg.Public)
	mux.Handle("GET /api/chat/metrics", metricsAccess{token: c.MetricsToken, primary: p}.wrap(m.Handler()))
	srv := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	if cfg.Out != nil {
		fmt.Fprintf(cfg.Out, "pocketchat edge\n├─ Listening:  http://%s/\n└─ Primary:    %s\n", l.Addr(), base)
	}
	if cfg.Ready != nil {
		cfg.Ready(l.Addr().String())
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err = <-errc:
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownWait)
	defer cancel()
	_ = srv.Shutdown(sctx) // hijacked connections are the gateway's
	gw.Shutdown()
	h.Close()
	node.Close()
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// routes: the chat's sockets here, REST, the dashboard and SSE at the
// primary, the browser client's files here.
func routes(gw *gateway.Gateway, primary *url.URL, ip clientAddr, c server.Config, public fs.FS) *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/chat/ws", func(w http.ResponseWriter, r *http.Request) {
		writeRefusal(w, gw.ServeWS(w, r, ip.of(r)))
	})
	sio := gw.SocketIO()
	serveSIO := func(w http.ResponseWriter, r *http.Request) { writeRefusal(w, sio(w, r, ip.of(r))) }
	mux.HandleFunc("GET /socket.io/", serveSIO)
	mux.HandleFunc("POST /socket.io/", serveSIO)
	proxy := &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(primary)
			pr.SetXForwarded()
			// The primary trusts X-Real-IP (docs/deploy.md): it gets
			// the address this edge resolved, never one a client sent.
			addr := ip.of(pr.In)
			pr.Out.Header.Set("X-Real-IP", addr)
			pr.Out.Header.Set("X-Forwarded-For", addr)
		},
		FlushInterval: -1, // SSE
	}
	mux.Handle("/api/", proxy)
	mux.Handle("/_/", proxy)
	switch {
	case c.PublicDir != "":
		mux.Handle("/", http.FileServerFS(os.DirFS(c.PublicDir)))
	case public != nil:
		mux.Handle("/", http.FileServerFS(public))
	}
	return mux
}

// writeRefusal answers a refusal as the primary's JSON errors look.
func writeRefusal(w http.ResponseWriter, err error) {
	if err == nil {
		return
	}
	status, msg := http.StatusInternalServerError, "Something went wrong while processing your request."
	var ref *gateway.Refusal
	if errors.As(err, &ref) {
		status, msg = ref.Status, ref.Message
	}
	b, _ := json.Marshal(map[string]any{"status": status, "message": msg, "data": map[string]any{}})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

// clientAddr finds a request's client: the peer, or with header set the
// address the proxy in front wrote there. A list (X-Forwarded-For) counts
// by its last entry, the one that proxy appended; a value that is not an
// address falls back to the peer.
type clientAddr struct{ header string }

func (a clientAddr) of(r *http.Request) string {
	if a.header != "" {
		v := r.Header.Get(a.header)
		if i := strings.LastIndexByte(v, ','); i >= 0 {
			v = v[i+1:]
		}
		if ip := net.ParseIP(strings.TrimSpace(v)); ip != nil {
			return unmapped(ip.String())
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return unmapped(host)
}

func unmapped(host string) string { return strings.TrimPrefix(host, "::ffff:") }

// sendsAtPrimary is the session.Limits of an edge: the primary takes
// each message from the user's one allowance when it saves it (and
// refuses with rate_limited), so every node and REST share it; typing
// notices are limited here.
type sendsAtPrimary struct{ typing *limit.Buckets }

func (sendsAtPrimary) Send(string) (time.Duration, bool)       { return 0, true }
func (l sendsAtPrimary) Typing(u string) (time.Duration, bool) { return l.typing.Take(u) }
