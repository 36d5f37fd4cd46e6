// Package hub fans events out to the connections of this node.
//
// The hub knows only local connections: which rooms each has joined, which
// user each belongs to, and who is online where. Events reach it through a
// Broker, so that with a broker shared by several nodes an event published on
// one node is delivered on all of them:
//
//	h := hub.New(hub.NewMemoryBroker())
//	h.Register(conn)
//	online := h.Join(roomID, conn, user)
//	h.Publish(ctx, hub.Envelope{To: hub.ToRoom(roomID), Event: ev})
//
// Delivery never blocks: Subscriber.Deliver must queue or drop. Every
// subscriber of a room receives that room's events in the order they were
// published, presence notices in the order of the joins and leaves they
// announce.
//
// Deliver may call back into the hub (leave, join, unregister, publish).
// No hub lock is held while Deliver runs; instead, an event for a room that
// is being delivered to at that moment is queued and delivered, after the
// current one, by the goroutine already delivering. Likewise presence
// notices are published by one goroutine at a time. So Publish, Join and
// Leave may return before the local deliveries they cause are done.
package hub

import (
	"context"
	"hash/maphash"
	"slices"
	"sync"
	"sync/atomic"

	"pocketchat/internal/chat"
)

// Subscriber is one local connection.
type Subscriber interface {
	// ConnID is unique among the node's connections.
	ConnID() uint64
	// UserID is the signed-in user's id, "" for a guest.
	UserID() string
	// Deliver queues ev for the connection. It must not block; a
	// connection that cannot keep up drops itself.
	Deliver(ev *chat.Event)
}

// numShards splits rooms and connections over independent locks so that
// joins, leaves and fan-out in different rooms do not contend.
const numShards = 64

// Hub routes events to local subscribers. The zero value is not usable;
// call New.
type Hub struct {
	broker Broker
	seed   maphash.Seed
	rooms  [numShards]roomShard
	conns  [numShards]connShard
	count  atomic.Int64 // registered connections
	unsub  func()
}

type roomShard struct {
	mu    sync.Mutex
	rooms map[string]*room

	// Presence notices of the shard's rooms, queued under mu in the order
	// of the changes they announce and published in that order by one
	// goroutine at a time (announcing), after the hub's locks are released.
	notices    []notice
	announcing bool
}

type notice struct {
	room   string
	user   chat.User
	status string
}

// room is the local state of one room. subs is copy-on-write so that a
// delivery can read it without holding the shard lock.
//
// Deliveries to the room run one at a time, in publish order, but no lock
// is held while Deliver runs: Deliver may leave the room, which announces
// presence to the room, which must not wait for the delivery that caused
// it. While one goroutine delivers (busy), the envelopes published to the
// room are queued and that goroutine delivers them too before it returns.
type room struct {
	subs   atomic.Pointer[[]Subscriber]
	online map[string]*presence // user id → local connections in the room

	qmu   sync.Mutex
	busy  bool       // a goroutine is delivering to the room
	queue []Envelope // published while busy, delivered by that goroutine
}

type presence struct {
	user chat.User
	n    int
}

type connShard struct {
	mu    sync.Mutex
	conns map[Subscriber]map[string]struct{} // connection → rooms joined
	users map[string][]Subscriber            // user id → connections
	snap  atomic.Pointer[[]Subscriber]       // every connection, for broadcasts
}

// New returns a hub that delivers what b carries. The hub subscribes to b
// at once; Close unsubscribes.
func New(b Broker) *Hub {
	h := &Hub{broker: b, seed: maphash.MakeSeed()}
	for i := range h.rooms {
		h.rooms[i].rooms = make(map[string]*room)
	}
	for i := range h.conns {
		h.conns[i].conns = make(map[Subscriber]map[string]struct{})
		h.conns[i].users = make(map[string][]Subscriber)
	}
	h.unsub = b.Subscribe(h.deliver)
	return h
}

// Close stops receiving from the broker.
func (h *Hub) Close() { h.unsub() }

// Publish hands an envelope to the broker, which delivers it to this hub and
// to those of the other nodes.
func (h *Hub) Publish(ctx context.Context, env Envelope) error {
	return h.broker.Publish(ctx, env)
}

func (h *Hub) roomShard(id string) *roomShard {
	return &h.rooms[h.roomShardIndex(id)]
}

func (h *Hub) roomShardIndex(id string) uint64 {
	return maphash.String(h.seed, id) % numShards
}

func (h *Hub) connShardFor(userID string, sub Subscriber) *connShard {
	// Connections of one user share a shard so the user index needs one lock.
	if userID == "" {
		return &h.conns[sub.ConnID()%numShards]
	}
	return &h.conns[maphash.String(h.seed, userID)%numShards]
}

// Register adds a connection. It receives broadcasts and events for its
// user from then on, and room events once it joins the room.
func (h *Hub) Register(sub Subscriber) {
	s := h.connShardFor(sub.UserID(), sub)
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[sub]; ok {
		return
	}
	s.conns[sub] = make(map[string]struct{})
	if uid := sub.UserID(); uid != "" {
		s.users[uid] = append(s.users[uid], sub)
	}
	s.refreshSnap()
	h.count.Add(1)
}

func (s *connShard) refreshSnap() {
	all := make([]Subscriber, 0, len(s.conns))
	for c := range s.conns {
		all = append(all, c)
	}
	s.snap.Store(&all)
}

// Unregister removes a connection and leaves every room it joined, which
// may announce its user offline there.
func (h *Hub) Unregister(sub Subscriber) {
	uid := sub.UserID()
	s := h.connShardFor(uid, sub)
	s.mu.Lock()
	joined, ok := s.conns[sub]
	if !ok {
		s.mu.Unlock()
		return
	}
	// As in Join, the shard stays locked until the rooms are left too.
	delete(s.conns, sub)
	if uid != "" {
		rest := slices.DeleteFunc(slices.Clone(s.users[uid]), func(c Subscriber) bool { return c == sub })
		if len(rest) == 0 {
			delete(s.users, uid)
		} else {
			s.users[uid] = rest
		}
	}
	s.refreshSnap()
	h.count.Add(-1)
	var noticed [numShards]bool
	for id := range joined {
		if h.leaveRoom(id, sub) {
			noticed[h.roomShardIndex(id)] = true
		}
	}
	s.mu.Unlock()
	for i, ok := range noticed {
		if ok {
			h.announce(&h.rooms[i])
		}
	}
}

// Join subscribes a registered connection to a room and returns the users
// online there, its own user included. When it is the user's first
// connection in the room, the others get a presence "online" event.
// Guests (user.ID == "") read without being announced.
func (h *Hub) Join(roomID string, sub Subscriber, user chat.User) []chat.User {
	// The connection's shard stays locked while the room changes, so that
	// a Leave or Unregister of the same connection on another goroutine
	// (Deliver may call them) sees both changes or neither. Lock order:
	// connection shard, then room shard.
	s := h.connShardFor(sub.UserID(), sub)
	s.mu.Lock()
	rooms, ok := s.conns[sub]
	if ok {
		_, already := rooms[roomID]
		ok = !already
	}
	if !ok {
		s.mu.Unlock()
		return h.Online(roomID)
	}
	rooms[roomID] = struct{}{}
	online, noticed := h.joinRoom(roomID, sub, user)
	s.mu.Unlock()
	sortUsers(online)

	if noticed {
		h.announce(h.roomShard(roomID))
	}
	return online
}

// joinRoom adds sub to the room and returns the users online there. When
// sub is its user's first connection in the room, it queues the presence
// notice in the room's shard and reports it, for the caller to announce
// once it has released its locks.
func (h *Hub) joinRoom(roomID string, sub Subscriber, user chat.User) (online []chat.User, noticed bool) {
	rs := h.roomShard(roomID)
	rs.mu.Lock()
	r := rs.rooms[roomID]
	if r == nil {
		r = &room{online: make(map[string]*presence)}
		r.subs.Store(&[]Subscriber{})
		rs.rooms[roomID] = r
	}
	subs := append(slices.Clone(*r.subs.Load()), sub)
	r.subs.Store(&subs)
	if user.ID != "" {
		p := r.online[user.ID]
		if p == nil {
			p = &presence{user: user}
			r.online[user.ID] = p
			rs.notices = append(rs.notices, notice{roomID, user, chat.StatusOnline})
			noticed = true
		}
		p.n++
	}
	online = onlineUsers(r) // sorted by Join, once the locks are released
	rs.mu.Unlock()
	return online, noticed
}

// Leave unsubscribes a connection from a room. It reports whether the
// connection had joined it. When it was the user's last connection in the
// room, the others get a presence "offline" event.
func (h *Hub) Leave(roomID string, sub Subscriber) bool {
	s := h.connShardFor(sub.UserID(), sub)
	s.mu.Lock()
	rooms, ok := s.conns[sub]
	if ok {
		_, ok = rooms[roomID]
	}
	if !ok {
		s.mu.Unlock()
		return false
	}
	delete(rooms, roomID)
	noticed := h.leaveRoom(roomID, sub)
	s.mu.Unlock()
	if noticed {
		h.announce(h.roomShard(roomID))
	}
	return true
}

// leaveRoom removes sub from the room. When sub was its user's last
// connection there, it queues the presence notice in the room's shard and
// reports it, for the caller to announce once it has released its locks.
// The caller holds sub's connection shard.
func (h *Hub) leaveRoom(roomID string, sub Subscriber) (noticed bool) {
	rs := h.roomShard(roomID)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.rooms[roomID]
	if r == nil {
		return false
	}
	subs := slices.DeleteFunc(slices.Clone(*r.subs.Load()), func(c Subscriber) bool { return c == sub })
	r.subs.Store(&subs)
	if uid := sub.UserID(); uid != "" {
		if p := r.online[uid]; p != nil {
			if p.n--; p.n <= 0 {
				delete(r.online, uid)
				rs.notices = append(rs.notices, notice{roomID, p.user, chat.StatusOffline})
				noticed = true
			}
		}
	}
	if len(subs) == 0 {
		delete(rs.rooms, roomID)
	}
	return noticed
}

// announce publishes the presence notices queued in the shard. Notices
// are published in the order of the changes they announce, so the others
// never see a user go online after the offline that followed; if another
// goroutine is publishing the shard's notices already, it publishes these
// too and announce returns at once. It is called without hub locks held:
// a Deliver that the publication causes may leave or join rooms itself.
func (h *Hub) announce(rs *roomShard) {
	rs.mu.Lock()
	if rs.announcing {
		rs.mu.Unlock()
		return
	}
	rs.announcing = true
	for len(rs.notices) > 0 {
		batch := rs.notices
		rs.notices = nil
		rs.mu.Unlock()
		for _, n := range batch {
			ev := chat.MustEvent(chat.EventPresence, chat.PresencePayload{Room: n.room, User: n.user, Status: n.status})
			ev.Room = n.room
			ev.Actor = n.user.ID
			// A broker failure loses a presence notice, never a message;
			// the joined reply and later joins carry the true state.
			_ = h.Publish(context.Background(), Envelope{To: ToRoom(n.room), SkipUser: n.user.ID, Event: ev})
		}
		rs.mu.Lock()
	}
	rs.announcing = false
	rs.mu.Unlock()
}

// Joined reports whether the connection has joined the room.
func (h *Hub) Joined(roomID string, sub Subscriber) bool {
	s := h.connShardFor(sub.UserID(), sub)
	s.mu.Lock()
	defer s.mu.Unlock()
	_, ok := s.conns[sub][roomID]
	return ok
}

// Online lists the users with at least one connection in the room, by name.
func (h *Hub) Online(roomID string) []chat.User {
	rs := h.roomShard(roomID)
	rs.mu.Lock()
	r := rs.rooms[roomID]
	if r == nil {
		rs.mu.Unlock()
		return []chat.User{}
	}
	users := onlineUsers(r)
	rs.mu.Unlock()
	sortUsers(users)
	return users
}

// onlineUsers copies the room's online users, unsorted: sorting a big
// room's users takes long enough that it is done with no lock held. The
// caller holds the room's shard.
func onlineUsers(r *room) []chat.User {
	users := make([]chat.User, 0, len(r.online))
	for _, p := range r.online {
		users = append(users, p.user)
	}
	return users
}

// sortUsers sorts users by name, then id.
func sortUsers(users []chat.User) {
	slices.SortFunc(users, func(a, b chat.User) int {
		if a.Name != b.Name {
			if a.Name < b.Name {
				return -1
			}
			return 1
		}
		if a.ID < b.ID {
			return -1
		}
		if a.ID > b.ID {
			return 1
		}
		return 0
	})
}

// Stats is a snapshot of the hub's size.
type Stats struct {
	Connections int // registered connections
	Rooms       int // rooms with at least one local subscriber
}

// Stats counts connections and rooms.
func (h *Hub) Stats() Stats {
	st := Stats{Connections: int(h.count.Load())}
	for i := range h.rooms {
		rs := &h.rooms[i]
		rs.mu.Lock()
		st.Rooms += len(rs.rooms)
		rs.mu.Unlock()
	}
	return st
}

// Each calls fn for every registered connection, e.g. to close them all at
// shutdown. fn runs without hub locks held.
func (h *Hub) Each(fn func(Subscriber)) {
	for i := range h.conns {
		if p := h.conns[i].snap.Load(); p != nil {
			for _, sub := range *p {
				fn(sub)
			}
		}
	}
}

// deliver routes one envelope from the broker to local subscribers.
func (h *Hub) deliver(env Envelope) {
	switch env.To.Kind {
	case AudienceRoom:
		rs := h.roomShard(env.To.Room)
		rs.mu.Lock()
		r := rs.rooms[env.To.Room]
		rs.mu.Unlock()
		if r == nil {
			return
		}
		r.deliver(env)
	case AudienceUsers:
		for i, uid := range env.To.Users {
			if uid == "" || slices.Contains(env.To.Users[:i], uid) {
				continue // guests have no id; a user listed twice gets it once
			}
			s := h.connShardFor(uid, nil)
			s.mu.Lock()
			subs := s.users[uid] // replaced, never mutated in place
			s.mu.Unlock()
			deliverAll(subs, env)
		}
	case AudienceAll:
		h.Each(func(sub Subscriber) { deliverOne(sub, env) })
	}
}

// deliver delivers env to the room's subscribers, or queues it for the
// goroutine that is delivering to the room already.
func (r *room) deliver(env Envelope) {
	r.qmu.Lock()
	if r.busy {
		r.queue = append(r.queue, env)
		r.qmu.Unlock()
		return
	}
	r.busy = true
	r.qmu.Unlock()

	deliverAll(*r.subs.Load(), env)
	var batch []Envelope
	for {
		r.qmu.Lock()
		if len(r.queue) == 0 {
			r.busy = false
			r.qmu.Unlock()
			return
		}
		// Take the queue; the emptied batch becomes the next queue, so a
		// busy room stops allocating once both have grown.
		batch, r.queue = r.queue, batch[:0]
		r.qmu.Unlock()
		for i := range batch {
			deliverAll(*r.subs.Load(), batch[i])
		}
		clear(batch) // do not keep delivered events alive
	}
}

func deliverAll(subs []Subscriber, env Envelope) {
	for _, sub := range subs {
		deliverOne(sub, env)
	}
}

func deliverOne(sub Subscriber, env Envelope) {
	if env.SkipUser != "" && sub.UserID() == env.SkipUser {
		return
	}
	sub.Deliver(env.Event)
}
