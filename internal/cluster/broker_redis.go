package cluster

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"pocketchat/internal/chat"
	"pocketchat/internal/hub"
)

// Broker carries the hub's envelopes between nodes over one Redis
// pub/sub channel. Every node publishes to it and every node, the
// publisher included, delivers what arrives to its own connections, so all
// nodes see one order: Redis relays a channel's messages in the order it
// received them, and a node publishes through one goroutine, in Publish
// order, one pipeline at a time.
//
// What Redis does not carry while it is unreachable is lost. The broker
// makes sure every node learns of it: when its subscription comes back it
// delivers a chat.EventGap locally, and when publishing failed, the first
// publication that succeeds again is a gap notice for every node. Sessions
// turn the gap into a resync event per joined room, and clients resume.
type Broker struct {
	rdb     *redis.Client
	channel string
	log     *slog.Logger
	maxQ    int

	subs atomic.Pointer[[]*func(hub.Envelope)]
	smu  sync.Mutex // serializes changes of subs

	mu      sync.Mutex
	queue   [][]byte
	wake    chan struct{}
	lost    bool // a publication failed: tell every node once Redis answers
	dropped atomic.Uint64

	onRestore []func() // run after the subscription is back, before the gap is delivered

	ready  chan struct{} // closed once subscribed the first time
	ctx    context.Context
	cancel context.CancelFunc
	done   sync.WaitGroup
}

var _ hub.Broker = (*Broker)(nil)

// BrokerConfig tunes a Broker.
type BrokerConfig struct {
	// Channel is the pub/sub channel every node of the cluster uses.
	Channel string
	// MaxQueue bounds the envelopes waiting to be published while Redis
	// is slow or away; beyond it the oldest are dropped (the gap notice
	// covers them). 0: 100,000.
	MaxQueue int
	// Logger receives connection losses and recoveries; nil: discarded.
	Logger *slog.Logger
}

// NewBroker starts publishing and receiving on cfg.Channel. Close stops it.
func NewBroker(rdb *redis.Client, cfg BrokerConfig) *Broker {
	if cfg.MaxQueue <= 0 {
		cfg.MaxQueue = 100_000
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	b := &Broker{
		rdb: rdb, channel: cfg.Channel, log: cfg.Logger, maxQ: cfg.MaxQueue,
		wake: make(chan struct{}, 1), ready: make(chan struct{}),
		ctx: ctx, cancel: cancel,
	}
	b.subs.Store(&[]*func(hub.Envelope){})
	b.done.Add(2)
	go b.publishLoop()
	go b.receiveLoop()
	return b
}

// Ready is closed once the broker has subscribed: from then on it
// receives what any node publishes.
func (b *Broker) Ready() <-chan struct{} { return b.ready }

// OnRestore registers fn to run each time the subscription comes back
// after a loss, before the gap is delivered: the presence directory
// writes this node's presence again there, so the resync that follows
// carries it. Register before anything is published.
func (b *Broker) OnRestore(fn func()) { b.onRestore = append(b.onRestore, fn) }

// Publish queues env for publication and returns: envelopes are published
// in the order of the calls. It fails only for an envelope that cannot be
// encoded.
func (b *Broker) Publish(_ context.Context, env hub.Envelope) error {
	msg, err := encodeEnvelope(env)
	if err != nil {
		return err
	}
	b.mu.Lock()
	if len(b.queue) >= b.maxQ {
		n := len(b.queue) - b.maxQ + 1
		clear(b.queue[:n])
		b.queue = b.queue[n:]
		b.lost = true
		b.dropped.Add(uint64(n))
	}
	b.queue = append(b.queue, msg)
	b.mu.Unlock()
	select {
	case b.wake <- struct{}{}:
	default:
	}
	return nil
}

// Subscribe registers fn for every envelope received.
func (b *Broker) Subscribe(fn func(hub.Envelope)) func() {
	p := &fn
	b.smu.Lock()
	next := append(slices.Clone(*b.subs.Load()), p)
	b.subs.Store(&next)
	b.smu.Unlock()
	return func() {
		b.smu.Lock()
		next := slices.DeleteFunc(slices.Clone(*b.subs.Load()), func(q *func(hub.Envelope)) bool { return q == p })
		b.subs.Store(&next)
		b.smu.Unlock()
	}
}

// Dropped counts envelopes never published: dropped because the queue
// was full, or in a pipeline Redis did not take.
func (b *Broker) Dropped() uint64 { return b.dropped.Load() }

// Close stops publishing and receiving; what is still queued is published
// first, for up to a second.
func (b *Broker) Close() {
	deadline := time.Now().Add(time.Second)
	for time.Now().Before(deadline) {
		b.mu.Lock()
		n := len(b.queue)
		b.mu.Unlock()
		if n == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	b.cancel()
	b.done.Wait()
}

func (b *Broker) deliver(env hub.Envelope) {
	for _, fn := range *b.subs.Load() {
		(*fn)(env)
	}
}

// gapEnvelope tells every connection of a node that events may be missing.
func gapEnvelope() hub.Envelope {
	return hub.Envelope{To: hub.ToAll(), Event: &chat.Event{Type: chat.EventGap, Payload: []byte("{}")}}
}

// publishLoop publishes the queue, a pipeline at a time, in order.
func (b *Broker) publishLoop() {
	defer b.done.Done()
	gap, _ := encodeEnvelope(gapEnvelope())
	backoff := backoff{min: 50 * time.Millisecond, max: time.Second}
	for {
		// The flag goes with the queue it covers: a drop or failure after
		// this sets it again for the next batch.
		b.mu.Lock()
		batch, lost := b.queue, b.lost
		b.queue, b.lost = nil, false
		b.mu.Unlock()
		if len(batch) == 0 && !lost {
			select {
			case <-b.wake:
				continue
			case <-b.ctx.Done():
				return
			}
		}
		if lost {
			batch = append([][]byte{gap}, batch...)
		}
		_, err := b.rdb.Pipelined(b.ctx, func(p redis.Pipeliner) error {
			for _, m := range batch {
				p.Publish(b.ctx, b.channel, m)
			}
			return nil
		})
		if err == nil {
			if lost {
				b.log.Info("chat: publishing through Redis again")
			}
			backoff.reset()
			continue
		}
		if b.ctx.Err() != nil {
			return
		}
		// The batch is dropped: delivered late, its events would arrive
		// after the resync that replaces them. Every node hears of the
		// gap with the first publication that succeeds.
		if !lost {
			b.log.Warn("chat: publishing through Redis failed; events are lost until it answers", "error", err, "events", len(batch))
		}
		if lost {
			b.dropped.Add(uint64(len(batch) - 1)) // not the gap notice
		} else {
			b.dropped.Add(uint64(len(batch)))
		}
		b.mu.Lock()
		b.lost = true
		b.mu.Unlock()
		if !backoff.wait(b.ctx) {
			return
		}
	}
}

// receiveLoop reads the subscription, reconnecting when it breaks.
func (b *Broker) receiveLoop() {
	defer b.done.Done()
	ps := b.rdb.Subscribe(b.ctx, b.channel)
	stop := context.AfterFunc(b.ctx, func() { _ = ps.Close() }) // ends a read in progress
	defer stop()
	subscribed, broken := false, false
	backoff := backoff{min: 50 * time.Millisecond, max: time.Second}
	for {
		msg, err := ps.ReceiveTimeout(b.ctx, 5*time.Second)
		if b.ctx.Err() != nil {
			return
		}
		if err != nil {
			var nerr interface{ Timeout() bool }
			if errors.As(err, &nerr) && nerr.Timeout() && !broken {
				// Quiet channel: a ping proves the connection is alive;
				// its pong, or its failure, comes through Receive.
				_ = ps.Ping(b.ctx)
				continue
			}
			if !broken {
				b.log.Warn("chat: Redis subscription lost; reconnecting", "error", err)
			}
			broken = true
			if !backoff.wait(b.ctx) {
				return
			}
			continue
		}
		backoff.reset()
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind != "subscribe" {
				continue
			}
			if !subscribed {
				subscribed = true
				close(b.ready)
				continue
			}
			// Back after a loss (go-redis resubscribed on a new
			// connection): whatever was published meanwhile is gone.
			broken = false
			b.log.Info("chat: Redis subscription restored")
			for _, fn := range b.onRestore {
				fn()
			}
			b.deliver(gapEnvelope())
		case *redis.Message:
			env, err := decodeEnvelope([]byte(m.Payload))
			if err != nil {
				b.log.Warn("chat: undecodable envelope on the Redis channel", "error", err)
				continue
			}
			b.deliver(env)
		}
	}
}

// backoff is a doubling wait between retries.
type backoff struct{ min, max, cur time.Duration }

func (b *backoff) reset() { b.cur = 0 }

// wait sleeps for the next delay; false if ctx ended first.
func (b *backoff) wait(ctx context.Context) bool {
	if b.cur == 0 {
		b.cur = b.min
	} else {
		b.cur = min(2*b.cur, b.max)
	}
	t := time.NewTimer(b.cur)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}
