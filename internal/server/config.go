package server

import (
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/cluster"
	"pocketchat/internal/gateway"
	"pocketchat/internal/hub"
	"pocketchat/internal/limit"
	"pocketchat/internal/session"
	"pocketchat/internal/ws"
)

// Config holds the chat's settings. ConfigFromEnv fills it from CHAT_*
// environment variables; the README lists them.
type Config struct {
	// AllowedOrigins lists origins (scheme://host[:port]) besides the
	// server's own whose pages may open the WebSocket; "*" allows any.
	// Requests without an Origin header (programs) are always allowed.
	AllowedOrigins []string
	// Guests lets clients without credentials connect and read public rooms.
	Guests bool
	// PageSize is the number of latest messages sent on join.
	PageSize int
	// PresenceLimit is the most users online in a room for which joins
	// and leaves are announced one by one, and the most users a joined
	// reply lists; bigger rooms get counts (hub.Config.PresenceLimit).
	PresenceLimit int
	// MaxText is the longest message text accepted over the chat
	// protocols, in characters; the schema caps it at 4000.
	MaxText int
	// TicketTTL is how long a WebSocket ticket stays valid.
	TicketTTL time.Duration
	// ShutdownWait bounds how long shutdown waits for connections to
	// finish their request in progress and flush their queue.
	ShutdownWait time.Duration
	// WS tunes every WebSocket connection (frame limit, queue, keepalive).
	WS ws.Config
	// WSPoll reads idle native WebSockets through one epoll poller
	// (ws.Poller) instead of a goroutine each: a quiet connection then
	// holds no goroutine stack and no read buffer.
	WSPoll bool
	// Public is the file system served at "/" (the browser client); nil
	// serves nothing there.
	Public fs.FS
	// PublicDir, when set, serves the browser client from this directory
	// instead of Public (to edit it without rebuilding).
	PublicDir string
	// HooksDir is where operators' JS hooks (*.pb.js) live; "" is
	// PocketBase's default, pb_data/../pb_hooks.
	HooksDir string
	// HooksPool is the number of JS runtimes kept warm for hooks.
	HooksPool int
	// Banner prints the chat's addresses at start.
	Banner bool
	// Bot configures the chat bot (BotConfig, in bot.go).
	Bot BotConfig
	// MetricsToken, when set, lets a scraper read /api/chat/metrics with
	// "Authorization: Bearer <MetricsToken>"; superusers always may.
	MetricsToken string
	// CommitBatch bounds the chat messages saved in one transaction by the
	// group commit (committer.go); the messages that arrive while one
	// batch commits form the next.
	CommitBatch int
	// CommitWait makes a batch that is not full wait this long for more
	// messages before it commits, when messages come faster than commits
	// (the previous batch held several): bigger groups for a little
	// latency under load. A message after a quiet spell commits at once.
	// 0 commits at once whatever is queued.
	CommitWait time.Duration
	// CheckpointEvery: the group commit leaves SQLite's WAL checkpoints to
	// a background goroutine, which runs one this long after commits
	// (checkpoint.go). 0 lets SQLite checkpoint after commits itself.
	CheckpointEvery time.Duration
	// SendRate is each user's allowance of messages, over all their
	// connections and REST together (token bucket; Per 0: unlimited).
	SendRate limit.Rate
	// AbuseRefusals is how many rate_limited refusals a connection may
	// get within a minute before it is closed with 1008; 0 never closes.
	AbuseRefusals int
	// ConnsPerUser bounds a user's open chat connections (native and
	// socket.io together); 0: no limit.
	ConnsPerUser int
	// ConnsPerIP bounds the open chat connections from one client address
	// (as PocketBase's trusted-proxy settings resolve it); 0: no limit.
	ConnsPerIP int
	// JoinsPerConn bounds the rooms one connection has joined at once;
	// 0: no limit.
	JoinsPerConn int
	// TypingRate is each user's allowance of typing notices.
	TypingRate limit.Rate
	// TicketRate is each user's allowance of WebSocket tickets.
	TicketRate limit.Rate
	// EditWindow is how long after posting users may edit their messages,
	// on every path (REST too); 0: at any time. Deleting one's own
	// message has no time limit; superusers edit and delete any.
	EditWindow time.Duration
	// RedisURL, when set, makes this node part of a cluster through
	// Redis: room events, presence and tickets go through it.
	RedisURL string
	// RedisPrefix starts the cluster's keys and channel in Redis.
	RedisPrefix string
	// ClusterSecret, when set, opens the cluster API (/api/chat/cluster/)
	// to edge nodes that present it; every edge must have the same.
	ClusterSecret string
	// NodeTTL is how long after its last heartbeat a node is taken for
	// dead and its users go offline; nodes beat every NodeTTL/5.
	NodeTTL time.Duration
}

// Bounds of the group commit's settings.
const (
	maxCommitBatch = 4096        // one IN (...) list per relation field must stay small
	maxCommitWait  = time.Second // beyond that, a send would feel stuck
	// maxCheckpointEvery: beyond that the WAL grows to tens of thousands
	// of pages under load, and reads slow down.
	maxCheckpointEvery = 10 * time.Second
)

// maxPresenceLimit bounds CHAT_PRESENCE_LIMIT: a joined reply lists up
// to that many users, and it must stay a reasonable frame.
const maxPresenceLimit = 10000

// DefaultConfig is the configuration with every setting at its default.
func DefaultConfig() Config {
	return Config{
		Guests:        true,
		PageSize:      chat.DefaultPageSize,
		PresenceLimit: hub.DefaultPresenceLimit,
		MaxText:       chat.MaxTextLen,
		TicketTTL:     30 * time.Second,
		ShutdownWait:  5 * time.Second,
		WS: ws.Config{
			WriteWait:  ws.DefaultWriteWait,
			PingPeriod: ws.DefaultPingPeriod,
			PongWait:   ws.DefaultPongWait,
			MaxFrame:   ws.DefaultMaxFrame,
			Queue:      ws.DefaultQueue,
		},
		WSPoll:          true,
		HooksPool:       4,
		Banner:          true,
		Bot:             defaultBotConfig(),
		CommitBatch:     defaultCommitBatch,
		CommitWait:      defaultCommitWait,
		CheckpointEvery: checkpointEvery,
		SendRate:        limit.Rate{Per: 10, Burst: 20},
		AbuseRefusals:   30,
		EditWindow:      15 * time.Minute,
		ConnsPerUser:    20,
		ConnsPerIP:      200,
		JoinsPerConn:    1000,
		TypingRate:      limit.Rate{Per: 2, Burst: 5},
		TicketRate:      limit.Rate{Per: 1, Burst: 10},
		RedisPrefix:     cluster.DefaultPrefix,
		NodeTTL:         5 * time.Second,
	}
}

// ConfigFromEnv reads the CHAT_* variables through getenv (os.Getenv in
// main, a map in tests) over DefaultConfig.
func ConfigFromEnv(getenv func(string) string) (Config, error) {
	c := DefaultConfig()
	r := envReader{get: getenv}
	if v := getenv("CHAT_ALLOWED_ORIGINS"); v != "" {
		for _, o := range strings.Split(v, ",") {
			if o = strings.TrimRight(strings.TrimSpace(o), "/"); o != "" {
				c.AllowedOrigins = append(c.AllowedOrigins, o)
			}
		}
	}
	c.Guests = r.bool("CHAT_GUESTS", c.Guests)
	c.PageSize = r.int("CHAT_HISTORY_PAGE", c.PageSize, 1, chat.MaxPageSize)
	c.PresenceLimit = r.int("CHAT_PRESENCE_LIMIT", c.PresenceLimit, 1, maxPresenceLimit)
	c.MaxText = r.int("CHAT_MAX_TEXT", c.MaxText, 1, chat.MaxTextLen)
	c.TicketTTL = r.duration("CHAT_TICKET_TTL", c.TicketTTL)
	c.ShutdownWait = r.duration("CHAT_SHUTDOWN_WAIT", c.ShutdownWait)
	c.WS.MaxFrame = int64(r.int("CHAT_WS_MAX_FRAME", int(c.WS.MaxFrame), 1024, 16<<20))
	c.WS.Queue = r.int("CHAT_WS_QUEUE", c.WS.Queue, 1, 1<<20)
	c.WS.PingPeriod = r.duration("CHAT_WS_PING", c.WS.PingPeriod)
	c.WS.PongWait = r.duration("CHAT_WS_PONG_WAIT", c.WS.PongWait)
	c.WS.WriteWait = r.duration("CHAT_WS_WRITE_WAIT", c.WS.WriteWait)
	c.WSPoll = r.bool("CHAT_WS_POLL", c.WSPoll)
	c.PublicDir = getenv("CHAT_PUBLIC_DIR")
	c.HooksDir = getenv("CHAT_HOOKS_DIR")
	c.HooksPool = r.int("CHAT_HOOKS_POOL", c.HooksPool, 0, 1000)
	c.Bot = r.botConfig(c.Bot)
	c.MetricsToken = getenv("CHAT_METRICS_TOKEN")
	c.CommitBatch = r.int("CHAT_COMMIT_BATCH", c.CommitBatch, 1, maxCommitBatch)
	c.CommitWait = r.durationIn("CHAT_COMMIT_WAIT", c.CommitWait, 0, maxCommitWait)
	c.CheckpointEvery = r.durationIn("CHAT_CHECKPOINT_EVERY", c.CheckpointEvery, 0, maxCheckpointEvery)
	c.SendRate.Per = r.float("CHAT_SEND_RATE", c.SendRate.Per, 0, 1e6)
	c.SendRate.Burst = r.int("CHAT_SEND_BURST", c.SendRate.Burst, 1, 1e6)
	c.AbuseRefusals = r.int("CHAT_ABUSE_REFUSALS", c.AbuseRefusals, 0, 1e6)
	c.ConnsPerUser = r.int("CHAT_CONNS_PER_USER", c.ConnsPerUser, 0, 1e6)
	c.ConnsPerIP = r.int("CHAT_CONNS_PER_IP", c.ConnsPerIP, 0, 1e7)
	c.JoinsPerConn = r.int("CHAT_JOINS_PER_CONN", c.JoinsPerConn, 0, 1e6)
	c.TypingRate.Per = r.float("CHAT_TYPING_RATE", c.TypingRate.Per, 0, 1e6)
	c.TypingRate.Burst = r.int("CHAT_TYPING_BURST", c.TypingRate.Burst, 1, 1e6)
	c.TicketRate.Per = r.float("CHAT_TICKET_RATE", c.TicketRate.Per, 0, 1e6)
	c.TicketRate.Burst = r.int("CHAT_TICKET_BURST", c.TicketRate.Burst, 1, 1e6)
	c.EditWindow = r.durationIn("CHAT_EDIT_WINDOW", c.EditWindow, 0, 100*365*24*time.Hour)
	c.RedisURL = getenv("CHAT_REDIS_URL")
	if v := getenv("CHAT_REDIS_PREFIX"); v != "" {
		c.RedisPrefix = v
	}
	c.ClusterSecret = getenv("CHAT_CLUSTER_SECRET")
	if c.ClusterSecret != "" && len(c.ClusterSecret) < 16 {
		r.errs = append(r.errs, "CHAT_CLUSTER_SECRET must be at least 16 characters")
	}
	c.NodeTTL = r.durationIn("CHAT_NODE_TTL", c.NodeTTL, 500*time.Millisecond, 5*time.Minute)
	if c.WS.PingPeriod >= c.WS.PongWait {
		r.errs = append(r.errs, fmt.Sprintf("CHAT_WS_PING (%s) must be shorter than CHAT_WS_PONG_WAIT (%s)", c.WS.PingPeriod, c.WS.PongWait))
	}
	if len(r.errs) > 0 {
		return c, fmt.Errorf("configuration: %s", strings.Join(r.errs, "; "))
	}
	return c, nil
}

// ClusterConfig is this node's link to the cluster.
func (c Config) ClusterConfig(log *slog.Logger) cluster.Config {
	host, _ := os.Hostname()
	return cluster.Config{
		URL: c.RedisURL, Prefix: c.RedisPrefix, Node: cluster.NodeID(host),
		PresenceLimit: c.PresenceLimit, TicketTTL: c.TicketTTL,
		NodeTTL: c.NodeTTL, Heartbeat: c.NodeTTL / 5, Logger: log,
	}
}

// GatewayConfig is the configuration of the chat connections: every
// session, whatever its transport, draws on l.
func (c Config) GatewayConfig(l session.Limits, log *slog.Logger) gateway.Config {
	abuse := c.AbuseRefusals
	if abuse == 0 {
		abuse = -1 // never closed
	}
	return gateway.Config{
		AllowedOrigins: c.AllowedOrigins, Guests: c.Guests, WS: c.WS,
		Session: session.Config{PageSize: c.PageSize, MaxText: c.MaxText,
			Limits: l, AbuseRefusals: abuse, EditWindow: c.EditWindow,
			MaxJoins: c.JoinsPerConn},
		ConnsPerUser: c.ConnsPerUser, ConnsPerIP: c.ConnsPerIP,
		ShutdownWait: c.ShutdownWait, Logger: log,
	}
}

type envReader struct {
	get  func(string) string
	errs []string
}

func (r *envReader) int(key string, def, lo, hi int) int {
	v := r.get(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.errs = append(r.errs, fmt.Sprintf("%s=%q: want an integer from %d to %d", key, v, lo, hi))
		return def
	}
	return n
}

func (r *envReader) float(key string, def, lo, hi float64) float64 {
	v := r.get(key)
	if v == "" {
		return def
	}
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || !(f >= lo && f <= hi) { // NaN fails both
		r.errs = append(r.errs, fmt.Sprintf("%s=%q: want a number from %g to %g", key, v, lo, hi))
		return def
	}
	return f
}

func (r *envReader) bool(key string, def bool) bool {
	v := r.get(key)
	if v == "" {
		return def
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.errs = append(r.errs, fmt.Sprintf("%s=%q: want true or false", key, v))
		return def
	}
	return b
}

func (r *envReader) duration(key string, def time.Duration) time.Duration {
	v := r.get(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		r.errs = append(r.errs, fmt.Sprintf("%s=%q: want a positive duration such as 30s", key, v))
		return def
	}
	return d
}

// durationIn reads a duration from lo to hi, both included (lo may be 0).
func (r *envReader) durationIn(key string, def, lo, hi time.Duration) time.Duration {
	v := r.get(key)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo || d > hi {
		r.errs = append(r.errs, fmt.Sprintf("%s=%q: want a duration from %s to %s", key, v, lo, hi))
		return def
	}
	return d
}
