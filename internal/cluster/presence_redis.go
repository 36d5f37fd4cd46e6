package cluster

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"pocketchat/internal/chat"
	"pocketchat/internal/hub"
)

// Local is this node's own presence: the hub.
type Local interface {
	// LocalOnline lists the users with a connection in the room here.
	LocalOnline(room string) []chat.User
	// LocalRooms lists the rooms some connection here has joined.
	LocalRooms() []string
}

// Publisher sends the notices the directory builds itself (summaries, the
// users of a dead node) through the node's broker.
type Publisher interface {
	Publish(ctx context.Context, env hub.Envelope) error
}

// DirectoryConfig tunes a Directory.
type DirectoryConfig struct {
	// Prefix starts every key, Channel is the broker's channel (presence
	// notices go out on it too).
	Prefix, Channel string
	// Node identifies this node among the cluster's.
	Node string
	// PresenceLimit is hub.Config.PresenceLimit: beyond it a room's
	// presence is a summary, for the whole cluster.
	PresenceLimit int
	// CountEvery is hub.Config.CountEvery: the shortest time between two
	// count updates this node sends to a room in summary mode.
	CountEvery time.Duration
	// Heartbeat is how often the node renews its presence and looks for
	// dead nodes; NodeTTL how long after its last heartbeat a node's
	// users go offline. 0: one second and five.
	Heartbeat, NodeTTL time.Duration
	// Logger receives failures and recoveries; nil: discarded.
	Logger *slog.Logger
}

// Directory is the cluster's presence in Redis (a hub.Directory): who is
// online in each room on any node. Each node writes only its own part:
// the hub reports which rooms changed, and one goroutine brings Redis in
// line with the hub's state, many rooms per round trip. Writing state
// rather than events makes every write safe to repeat: after a failure,
// a lost Redis, or this node being taken for dead, it writes its whole
// state again.
type Directory struct {
	rdb   *redis.Client
	cfg   DirectoryConfig
	local Local
	pub   Publisher
	log   *slog.Logger

	resume int // a summary room with this many online or fewer announces users again

	mu      sync.Mutex
	dirty   map[string]struct{}
	restore bool   // rewrite everything: Redis does not know this node
	gen     uint64 // changes reported so far
	written uint64 // the gen the last successful write covered
	waiters []waiter
	counts  map[string]bool // rooms with a count update scheduled

	synced map[string]map[string]chat.User // what Redis has of this node; the worker's only

	wake   chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	done   sync.WaitGroup
}

type waiter struct {
	gen uint64
	ch  chan struct{}
}

var _ hub.Directory = (*Directory)(nil)

// NewDirectory returns a directory that starts working once Start gives it
// the hub.
func NewDirectory(rdb *redis.Client, cfg DirectoryConfig) *Directory {
	if cfg.PresenceLimit <= 0 {
		cfg.PresenceLimit = hub.DefaultPresenceLimit
	}
	if cfg.CountEvery <= 0 {
		cfg.CountEvery = hub.DefaultCountEvery
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = time.Second
	}
	if cfg.NodeTTL <= 0 {
		cfg.NodeTTL = 5 * time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Directory{
		rdb: rdb, cfg: cfg, log: cfg.Logger,
		resume: cfg.PresenceLimit - max(1, cfg.PresenceLimit/10),
		dirty:  make(map[string]struct{}), counts: make(map[string]bool),
		synced: make(map[string]map[string]chat.User),
		wake:   make(chan struct{}, 1), ctx: ctx, cancel: cancel,
	}
}

// Start begins writing local's presence, and publishing notices through
// pub.
func (d *Directory) Start(local Local, pub Publisher) {
	d.local, d.pub = local, pub
	d.done.Add(1)
	go d.run()
}

// Changed marks a room for the next write (hub.Directory).
func (d *Directory) Changed(room string) {
	d.mu.Lock()
	d.dirty[room] = struct{}{}
	d.gen++
	d.mu.Unlock()
	d.signal()
}

func (d *Directory) signal() {
	select {
	case d.wake <- struct{}{}:
	default:
	}
}

// Restore makes the directory write this node's whole presence again
// (Redis came back empty) and waits, up to a few seconds, until it has.
func (d *Directory) Restore() {
	d.mu.Lock()
	d.restore = true
	d.gen++
	d.mu.Unlock()
	d.signal()
	d.await()
}

// await waits until the changes reported so far are written, or a
// while: a Redis that does not answer must not stall a join.
func (d *Directory) await() {
	d.mu.Lock()
	if d.written >= d.gen {
		d.mu.Unlock()
		return
	}
	w := waiter{gen: d.gen, ch: make(chan struct{})}
	d.waiters = append(d.waiters, w)
	d.mu.Unlock()
	t := time.NewTimer(2 * time.Second)
	defer t.Stop()
	select {
	case <-w.ch:
	case <-t.C:
	case <-d.ctx.Done():
	}
}

// Roster is who is online in the room on every node (hub.Directory). If
// Redis cannot answer, it is this node's users.
func (d *Directory) Roster(room string, limit int) hub.Roster {
	d.await()
	r, err := d.roster(room, limit)
	if err != nil {
		users := d.local.LocalOnline(room)
		r = hub.Roster{Users: users, Count: len(users)}
		if limit >= 0 && len(users) > limit {
			r.Users = users[:limit]
		}
	}
	return r
}

func (d *Directory) key(kind, id string) string { return d.cfg.Prefix + kind + id }

// Close takes this node's users offline in every room, announcing it,
// and stops. Call it after the hub's connections are gone and before the
// broker closes.
func (d *Directory) Close() {
	d.cancel()
	d.done.Wait()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	d.reap(ctx, d.cfg.Node)
}

// Kill stops the directory as a crash would: the node's users stay
// online until another node finds its heartbeat expired.
func (d *Directory) Kill() {
	d.cancel()
	d.done.Wait()
}

// run writes changes as they come and beats the heart.
func (d *Directory) run() {
	defer d.done.Done()
	beat := time.NewTicker(d.cfg.Heartbeat)
	defer beat.Stop()
	first := true
	retry := backoff{min: 50 * time.Millisecond, max: time.Second}
	for {
		select {
		case <-d.ctx.Done():
			return
		case <-d.wake:
		case <-beat.C:
			d.heartbeat(&first)
		}
		if first {
			d.heartbeat(&first)
		}
		if !d.write() {
			if !retry.wait(d.ctx) {
				return
			}
			d.signal()
			continue
		}
		retry.reset()
	}
}

// heartbeat renews the node's registration; a node Redis does not know
// (new, reaped while it stalled, or Redis restarted) rewrites its whole
// presence. Then it takes one dead node's users offline, if any.
func (d *Directory) heartbeat(first *bool) {
	added, err := heartbeatScript.Run(d.ctx, d.rdb, []string{d.cfg.Prefix + "nodes"}, d.cfg.Node, d.cfg.NodeTTL.Milliseconds()).Int()
	if err != nil {
		return
	}
	if added == 1 && !*first {
		d.log.Warn("chat: this node's presence was gone from Redis; writing it again", "node", d.cfg.Node)
		d.mu.Lock()
		d.restore = true
		d.mu.Unlock()
	}
	*first = false
	d.reap(d.ctx, "")
}

// reap takes a node's users offline: node, or one whose heartbeat
// expired when node is "".
func (d *Directory) reap(ctx context.Context, node string) {
	res, err := reapScript.Run(ctx, d.rdb, []string{d.cfg.Prefix + "nodes"}, d.cfg.Prefix, node, d.resume).StringSlice()
	if err != nil {
		if ctx.Err() == nil {
			d.log.Warn("chat: taking a node's users offline failed", "error", err)
		}
		return
	}
	summaries := map[string]string{}
	for i := 0; i+2 < len(res); i += 3 {
		room, js, mode := res[i], res[i+1], res[i+2]
		if mode != "u" {
			if summaries[room] != "l" {
				summaries[room] = mode
			}
			continue
		}
		var u chat.User
		if json.Unmarshal([]byte(js), &u) != nil {
			continue
		}
		env, err := encodeEnvelope(hub.PresenceNotice(room, u, chat.StatusOffline))
		if err != nil {
			continue
		}
		_ = publishAbsentScript.Run(ctx, d.rdb, []string{d.key("pc:", room)}, u.ID, d.cfg.Channel, env).Err()
	}
	for room, mode := range summaries {
		d.summary(room, mode == "l")
	}
}

// write brings Redis in line with the hub for the rooms that changed. It
// reports false if Redis failed; the rooms stay marked.
func (d *Directory) write() bool {
	d.mu.Lock()
	rooms := d.dirty
	d.dirty = make(map[string]struct{})
	restore := d.restore
	d.restore = false
	gen := d.gen
	d.mu.Unlock()

	if restore {
		d.synced = make(map[string]map[string]chat.User)
		for _, id := range d.local.LocalRooms() {
			rooms[id] = struct{}{}
		}
	}
	type op struct {
		room    string
		user    chat.User
		present bool
		cmd     *redis.Cmd
	}
	var ops []op
	next := make(map[string]map[string]chat.User, len(rooms))
	for room := range rooms {
		now := make(map[string]chat.User)
		for _, u := range d.local.LocalOnline(room) {
			now[u.ID] = u
		}
		old := d.synced[room]
		for id, u := range now {
			if _, ok := old[id]; !ok {
				ops = append(ops, op{room: room, user: u, present: true})
			}
		}
		for id, u := range old {
			if _, ok := now[id]; !ok {
				ops = append(ops, op{room: room, user: u, present: false})
			}
		}
		next[room] = now
	}
	if len(ops) > 0 {
		run := func(p redis.Pipeliner) {
			for i := range ops {
				o := &ops[i]
				ops[i].cmd = d.set(p, o.room, o.user, o.present)
			}
		}
		_, err := d.rdb.Pipelined(d.ctx, func(p redis.Pipeliner) error { run(p); return nil })
		if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
			// Redis restarted and forgot the scripts: load them, and
			// write again (each write is safe to repeat).
			_ = setScript.Load(d.ctx, d.rdb).Err()
			_, err = d.rdb.Pipelined(d.ctx, func(p redis.Pipeliner) error { run(p); return nil })
		}
		if err != nil {
			if d.ctx.Err() == nil {
				d.log.Warn("chat: writing presence to Redis failed; retrying", "error", err)
			}
			d.mu.Lock()
			for room := range rooms {
				d.dirty[room] = struct{}{}
			}
			d.restore = d.restore || restore
			d.mu.Unlock()
			return false
		}
		for _, o := range ops {
			res, _ := o.cmd.Int64Slice()
			if len(res) == 2 {
				switch res[0] {
				case 2, 3:
					d.summary(o.room, false)
				case 4:
					d.summary(o.room, true)
				}
			}
		}
	}
	for room, now := range next {
		if len(now) == 0 {
			delete(d.synced, room)
		} else {
			d.synced[room] = now
		}
	}
	d.mu.Lock()
	d.written = max(d.written, gen)
	kept := d.waiters[:0]
	for _, w := range d.waiters {
		if w.gen <= gen {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	d.waiters = kept
	d.mu.Unlock()
	return true
}

// set queues setScript for one user in one room on p.
func (d *Directory) set(p redis.Pipeliner, room string, u chat.User, present bool) *redis.Cmd {
	js, _ := json.Marshal(u)
	on, _ := encodeEnvelope(hub.PresenceNotice(room, u, chat.StatusOnline))
	off, _ := encodeEnvelope(hub.PresenceNotice(room, u, chat.StatusOffline))
	flag := "0"
	if present {
		flag = "1"
	}
	keys := []string{d.key("node:", d.cfg.Node), d.key("pc:", room), d.key("pn:", room), d.key("pm:", room), d.key("pu:", room), d.key("ps:", room)}
	return setScript.EvalSha(d.ctx, p, keys, room+"\x00"+u.ID, u.ID, u.Name+"\x00"+u.ID, js, flag,
		d.cfg.Channel, on, off, d.cfg.PresenceLimit, d.resume)
}

// summary announces a room's presence summary: its whole list at once
// when it goes back to per-user presence (full), else its count, at most
// once per CountEvery from this node.
func (d *Directory) summary(room string, full bool) {
	if full {
		r, _ := d.roster(room, d.cfg.PresenceLimit)
		_ = d.pub.Publish(d.ctx, hub.SummaryNotice(room, r.Count, false, r.Users))
		return
	}
	d.mu.Lock()
	if d.counts[room] {
		d.mu.Unlock()
		return
	}
	d.counts[room] = true
	d.mu.Unlock()
	time.AfterFunc(d.cfg.CountEvery, func() {
		d.mu.Lock()
		delete(d.counts, room)
		d.mu.Unlock()
		if d.ctx.Err() != nil {
			return
		}
		if r, err := d.roster(room, 0); err == nil && r.Summary {
			_ = d.pub.Publish(d.ctx, hub.SummaryNotice(room, r.Count, true, nil))
		}
	})
}

// roster reads the room's roster without waiting for this node's writes.
func (d *Directory) roster(room string, limit int) (hub.Roster, error) {
	res, err := rosterScript.Run(d.ctx, d.rdb, []string{d.key("pc:", room), d.key("pn:", room), d.key("pu:", room), d.key("ps:", room)}, limit).Slice()
	if err == nil && len(res) < 2 {
		err = errors.New("cluster: short roster reply")
	}
	if err != nil {
		return hub.Roster{Users: []chat.User{}}, err
	}
	n, _ := res[0].(int64)
	sum, _ := res[1].(int64)
	r := hub.Roster{Users: make([]chat.User, 0, len(res)-2), Count: int(n), Summary: sum == 1}
	for _, v := range res[2:] {
		var u chat.User
		if s, ok := v.(string); ok && json.Unmarshal([]byte(s), &u) == nil {
			r.Users = append(r.Users, u)
		}
	}
	return r, nil
}

// NodeID is a fresh identifier for a node: its host name and random
// bytes, so that a restarted node is a new one.
func NodeID(host string) string {
	b := make([]byte, 6)
	_, _ = rand.Read(b)
	host = strings.Map(func(r rune) rune {
		if r == '\x00' || r == ' ' {
			return '-'
		}
		return r
	}, host)
	return host + "-" + hex.EncodeToString(b)
}
