// Package cluster lets several pocketchat nodes serve one chat through
// Redis: a broker that carries every room event to every node, presence
// that is the same from every node (with heartbeats, so a dead node's
// users go offline), and tickets any node redeems.
//
//	n, err := cluster.Open(cluster.Config{URL: "redis://127.0.0.1:6379/0", Node: cluster.NodeID(host)})
//	h := hub.New(n.Broker, hub.Config{Directory: n.Directory})
//	n.Start(h)
//	defer n.Close() // after the hub's connections are gone
package cluster

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"pocketchat/internal/hub"
)

// DefaultPrefix starts every key and the channel, so that one Redis can
// serve other programs, or several chats with different prefixes.
const DefaultPrefix = "pocketchat:"

// Config is a node's link to the cluster.
type Config struct {
	// URL is the Redis server (redis://[user:password@]host:port/db, or
	// rediss:// for TLS).
	URL string
	// Prefix starts every key and the channel; "" is DefaultPrefix.
	Prefix string
	// Node identifies this node (NodeID).
	Node string
	// PresenceLimit and CountEvery are the hub's (hub.Config).
	PresenceLimit int
	CountEvery    time.Duration
	// Heartbeat and NodeTTL: see DirectoryConfig.
	Heartbeat, NodeTTL time.Duration
	// TicketTTL is how long a ticket stays valid.
	TicketTTL time.Duration
	// Logger receives losses and recoveries of Redis; nil: discarded.
	Logger *slog.Logger
}

// Node is this node's part of the cluster.
type Node struct {
	Client    *redis.Client
	Broker    *Broker
	Directory *Directory
	Tickets   *Tickets
}

// Open connects to Redis and checks that it answers (an unreachable Redis
// at start is a configuration error; later losses are recovered from).
func Open(cfg Config) (*Node, error) {
	opt, err := redis.ParseURL(cfg.URL)
	if err != nil {
		return nil, fmt.Errorf("cluster: CHAT_REDIS_URL: %w", err)
	}
	if cfg.Prefix == "" {
		cfg.Prefix = DefaultPrefix
	}
	opt.ClientName = "pocketchat-" + cfg.Node
	// Failures are handled here (gap notices, rewrites); go-redis need
	// not retry for long while Redis is away.
	opt.MaxRetries = 1
	opt.DialTimeout = 2 * time.Second
	rdb := redis.NewClient(opt)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := rdb.Ping(ctx).Err(); err != nil {
		_ = rdb.Close()
		return nil, fmt.Errorf("cluster: Redis at %s does not answer: %w", opt.Addr, err)
	}
	channel := cfg.Prefix + "events"
	n := &Node{
		Client: rdb,
		Broker: NewBroker(rdb, BrokerConfig{Channel: channel, Logger: cfg.Logger}),
		Directory: NewDirectory(rdb, DirectoryConfig{
			Prefix: cfg.Prefix, Channel: channel, Node: cfg.Node,
			PresenceLimit: cfg.PresenceLimit, CountEvery: cfg.CountEvery,
			Heartbeat: cfg.Heartbeat, NodeTTL: cfg.NodeTTL, Logger: cfg.Logger,
		}),
		Tickets: NewTickets(rdb, cfg.Prefix, cfg.TicketTTL),
	}
	// After a loss the presence is written again before the sessions
	// resync, so the rosters they get are whole.
	n.Broker.OnRestore(n.Directory.Restore)
	return n, nil
}

// Start gives the directory the hub built on Broker and Directory, and
// waits (up to five seconds) for the broker's subscription.
func (n *Node) Start(h *hub.Hub) {
	n.Directory.Start(h, n.Broker)
	select {
	case <-n.Broker.Ready():
	case <-time.After(5 * time.Second):
	}
}

// Counters is where a node's metrics go (metrics.Node).
type Counters interface {
	CounterFunc(name, help string, f func() float64)
}

// CountDropped adds the broker's lost events to a node's metrics: a rise
// means clients were told to resync.
func (n *Node) CountDropped(c Counters) {
	c.CounterFunc("cluster_events_dropped_total",
		"Room events this node could not publish through Redis (queue full or Redis away); every node's clients resync after them.",
		func() float64 { return float64(n.Broker.Dropped()) })
}

// Close takes this node's users offline for the cluster, publishes what
// is queued, and disconnects.
func (n *Node) Close() {
	n.Directory.Close()
	n.Broker.Close()
	_ = n.Client.Close()
}
