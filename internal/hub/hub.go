// Package hub fans events out to the connections of this node.
//
// The hub knows only local connections: which rooms each has joined, which
// user each belongs to, and who is online where. Events reach it through a
// Broker, so that with a broker shared by several nodes an event published on
// one node is delivered on all of them:
//
//	h := hub.New(hub.NewMemoryBroker(), hub.Config{PresenceLimit: 500})
//	h.Register(conn)
//	roster := h.Join(roomID, conn, user)
//	h.Publish(ctx, hub.Envelope{To: hub.ToRoom(roomID), Event: ev})
//
// Delivery never blocks: Subscriber.Deliver must queue or drop. Every
// subscriber of a room receives that room's events in the order they were
// published, presence notices (users' and rooms' counts) in the order of
// the joins and leaves they announce.
//
// # Presence in big rooms
//
// While a room has at most Config.PresenceLimit users online, each user's
// first join and last leave is announced to the room (chat.EventPresence).
// Beyond that, announcing every join to everyone costs O(N²) for N users
// connecting, so the room switches to a summary: one chat.EventOnline
// (summary true, with the count) instead of the join that crossed the
// limit, then the count at most once per Config.CountEvery while it
// changes. The room goes back to per-user presence when its count falls
// to the resume mark (a tenth below the limit, so that a room hovering at
// the limit does not switch on every join and leave), with one
// chat.EventOnline carrying the whole list (summary false). Join reports
// at most PresenceLimit users, the first by name, and the count.
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
	"strings"
	"sync"
	"sync/atomic"
	"time"

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

// Defaults of Config.
const (
	// DefaultPresenceLimit is Config.PresenceLimit when it is not set.
	DefaultPresenceLimit = 500
	// DefaultCountEvery is Config.CountEvery when it is not set.
	DefaultCountEvery = 5 * time.Second
)

// Config tunes a hub. The zero value is the defaults.
type Config struct {
	// PresenceLimit is the largest number of users online in a room for
	// which each one's joins and leaves are announced, and the most users
	// Join reports; a room with more online sends counts instead (see the
	// package doc). Zero or less means DefaultPresenceLimit.
	PresenceLimit int
	// CountEvery is the shortest time between two count updates of a room
	// in summary mode: the price of a count update is one event to every
	// connection of the room, so it must not be paid per join. Zero or
	// less means DefaultCountEvery.
	CountEvery time.Duration
	// Directory, when set, is who is online across the nodes of a
	// cluster: it announces presence instead of the hub.
	Directory Directory
}

// Directory is who is online in each room across every node of a
// cluster. The hub reports its own changes; the directory reads this
// node's state back through LocalOnline.
type Directory interface {
	// Changed reports that a user came online in the room on this node
	// (their first connection here) or went offline here (their last).
	// It is called with hub locks held: it must only take note.
	Changed(room string)
	// Roster is who is online in the room on every node, at most limit
	// users by name, once this node's changes reported so far are
	// known to the directory.
	Roster(room string, limit int) Roster
}

// Hub routes events to local subscribers. The zero value is not usable;
// call New.
type Hub struct {
	broker Broker
	seed   maphash.Seed
	rooms  [numShards]roomShard
	conns  [numShards]connShard
	count  atomic.Int64 // registered connections
	unsub  func()
	closed atomic.Bool // count updates still scheduled publish nothing

	dir        Directory     // Config.Directory; nil: presence is this hub's
	limit      int           // Config.PresenceLimit
	resume     int           // a summary room with this many online or fewer goes back to per-user presence
	countEvery time.Duration // Config.CountEvery
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

// notice is a presence change to publish: a user's status (status set),
// or the room's summary (status "": count, summary, and the whole list of
// users when the room goes back to per-user presence).
type notice struct {
	room   string
	user   chat.User
	status string

	count   int
	summary bool
	users   []chat.User
}

// room is the local state of one room. subs is copy-on-write (a join may
// append in place, see joinRoom) so that a delivery can read it without
// holding the shard lock. The presence fields are guarded by the shard's
// lock.
//
// Deliveries to the room run one at a time, in publish order, but no lock
// is held while Deliver runs: Deliver may leave the room, which announces
// presence to the room, which must not wait for the delivery that caused
// it. While one goroutine delivers (busy), the envelopes published to the
// room are queued and that goroutine delivers them too before it returns.
type room struct {
	subs   atomic.Pointer[[]Subscriber]
	online map[string]*presence // user id → local connections in the room
	// byName holds the values of online sorted by name, then id, so that
	// a join copies the first users without sorting them: a binary search
	// and a move of pointers per change instead of a sort per join.
	byName []*presence
	// top is the roster's list of users, shared by the joins that report
	// it until a change reaches it; nil when it must be rebuilt. In a big
	// room most joins and leaves happen past the first users by name, so
	// most joins copy nothing.
	top []chat.User

	summary   bool // per-user presence is off: too many users are online
	sentCount int  // the count the room was last told, in summary mode
	countDue  bool // a count update is scheduled

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
	conns map[Subscriber][]string      // connection → rooms joined (few: a slice is smaller than a set)
	users map[string][]Subscriber      // user id → connections
	snap  atomic.Pointer[[]Subscriber] // every connection, for broadcasts
}

// New returns a hub that delivers what b carries. The hub subscribes to b
// at once; Close unsubscribes.
func New(b Broker, cfg Config) *Hub {
	if cfg.PresenceLimit <= 0 {
		cfg.PresenceLimit = DefaultPresenceLimit
	}
	if cfg.CountEvery <= 0 {
		cfg.CountEvery = DefaultCountEvery
	}
	h := &Hub{
		broker: b, seed: maphash.MakeSeed(),
		limit:      cfg.PresenceLimit,
		resume:     cfg.PresenceLimit - max(1, cfg.PresenceLimit/10),
		countEvery: cfg.CountEvery,
		dir:        cfg.Directory,
	}
	for i := range h.rooms {
		h.rooms[i].rooms = make(map[string]*room)
	}
	for i := range h.conns {
		h.conns[i].conns = make(map[Subscriber][]string)
		h.conns[i].users = make(map[string][]Subscriber)
	}
	h.unsub = b.Subscribe(h.deliver)
	return h
}

// Close stops receiving from the broker. Count updates scheduled before
// are dropped.
func (h *Hub) Close() {
	h.closed.Store(true)
	h.unsub()
}

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
	s.conns[sub] = nil // no room joined yet
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
	for _, id := range joined {
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

// Roster is who is online in a room, as Join reports it.
type Roster struct {
	// Users are the first users online by name, then id, at most
	// Config.PresenceLimit of them; never nil. The slice is shared with
	// other joins of the room: read it, never write to it.
	Users []chat.User
	// Count is the number of users online in the room (guests are not).
	Count int
	// Summary reports that the room's presence is a summary: users' joins
	// and leaves are not announced, count updates are (see the package
	// doc).
	Summary bool
}

// Join subscribes a registered connection to a room and returns who is
// online there, its own user included. When it is the user's first
// connection in the room, the others get a presence "online" event, or,
// if that makes more users online than the limit, the room's summary.
// Guests (user.ID == "") read without being announced or counted.
func (h *Hub) Join(roomID string, sub Subscriber, user chat.User) Roster {
	// The connection's shard stays locked while the room changes, so that
	// a Leave or Unregister of the same connection on another goroutine
	// (Deliver may call them) sees both changes or neither. Lock order:
	// connection shard, then room shard.
	s := h.connShardFor(sub.UserID(), sub)
	s.mu.Lock()
	rooms, ok := s.conns[sub]
	if ok {
		ok = !slices.Contains(rooms, roomID)
	}
	if !ok {
		s.mu.Unlock()
		return h.Roster(roomID)
	}
	s.conns[sub] = append(rooms, roomID)
	roster, noticed := h.joinRoom(roomID, sub, user)
	s.mu.Unlock()

	if noticed {
		h.announce(h.roomShard(roomID))
	}
	if h.dir != nil {
		return h.dir.Roster(roomID, h.limit)
	}
	return roster
}

// joinRoom adds sub to the room and returns who is online there. When sub
// is its user's first connection in the room, it queues the presence
// notice in the room's shard and reports it, for the caller to announce
// once it has released its locks.
func (h *Hub) joinRoom(roomID string, sub Subscriber, user chat.User) (roster Roster, noticed bool) {
	rs := h.roomShard(roomID)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.rooms[roomID]
	if r == nil {
		r = &room{online: make(map[string]*presence)}
		r.subs.Store(&[]Subscriber{})
		rs.rooms[roomID] = r
	}
	// Appending in place is safe for deliveries reading an older slice:
	// they never look past their own length, and nothing shrinks a slice
	// in place (leaving copies). So a join does not copy the room's
	// subscribers, which would make filling a room O(N²).
	subs := append(*r.subs.Load(), sub)
	r.subs.Store(&subs)
	if user.ID != "" {
		p := r.online[user.ID]
		if p == nil {
			p = &presence{user: user}
			r.online[user.ID] = p
			if r.add(p) < h.limit {
				r.top = nil
			}
			if h.dir != nil {
				h.dir.Changed(roomID)
			} else {
				noticed = h.joined(rs, roomID, r, user)
			}
		}
		p.n++
	}
	return h.rosterOf(r), noticed
}

// joined decides how a user's first join of a room is announced, and
// queues the notice if there is one. The caller holds the shard.
func (h *Hub) joined(rs *roomShard, roomID string, r *room, user chat.User) (noticed bool) {
	switch n := len(r.online); {
	case r.summary:
		h.countChanged(roomID, r)
		return false
	case n > h.limit:
		// The joining connection learns the summary from Join; its
		// user's other connections are not in the room (first join).
		r.summary, r.sentCount = true, n
		rs.notices = append(rs.notices, notice{room: roomID, user: user, count: n, summary: true})
	default:
		rs.notices = append(rs.notices, notice{room: roomID, user: user, status: chat.StatusOnline})
	}
	return true
}

// Leave unsubscribes a connection from a room. It reports whether the
// connection had joined it. When it was the user's last connection in the
// room, the others get a presence "offline" event, unless the room's
// presence is a summary.
func (h *Hub) Leave(roomID string, sub Subscriber) bool {
	s := h.connShardFor(sub.UserID(), sub)
	s.mu.Lock()
	rooms := s.conns[sub]
	i := slices.Index(rooms, roomID)
	if i < 0 {
		s.mu.Unlock()
		return false
	}
	s.conns[sub] = slices.Delete(rooms, i, i+1)
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
				if r.remove(p) < h.limit {
					r.top = nil
				}
				if h.dir != nil {
					h.dir.Changed(roomID)
				} else {
					noticed = h.left(rs, roomID, r, p.user)
				}
			}
		}
	}
	if len(subs) == 0 {
		delete(rs.rooms, roomID)
	}
	return noticed
}

// left decides how a user's last leave of a room is announced, and queues
// the notice if there is one. The caller holds the shard.
func (h *Hub) left(rs *roomShard, roomID string, r *room, user chat.User) (noticed bool) {
	switch n := len(r.online); {
	case r.summary && n <= h.resume:
		// The connections' lists went stale while the room was a
		// summary: they get the whole list, then per-user changes again.
		// It is at most the limit, and happens once per crossing of the
		// gap between the limit and the resume mark.
		r.summary = false
		rs.notices = append(rs.notices, notice{room: roomID, count: n, users: r.users(n)})
	case r.summary:
		h.countChanged(roomID, r)
		return false
	default:
		rs.notices = append(rs.notices, notice{room: roomID, user: user, status: chat.StatusOffline})
	}
	return true
}

// countChanged schedules a count update of a room in summary mode, unless
// one is scheduled already, so that the count reaches the room at most
// once per countEvery however many join and leave. The caller holds the
// room's shard.
func (h *Hub) countChanged(roomID string, r *room) {
	if r.countDue {
		return
	}
	r.countDue = true
	time.AfterFunc(h.countEvery, func() { h.publishCount(roomID, r) })
}

// publishCount tells a room in summary mode its count, if it changed since
// the room was last told. It runs on a timer's goroutine.
func (h *Hub) publishCount(roomID string, r *room) {
	rs := h.roomShard(roomID)
	rs.mu.Lock()
	r.countDue = false
	// A room that emptied is gone from the shard; if it is joined again,
	// that is a new room, with its own presence.
	if h.closed.Load() || rs.rooms[roomID] != r || !r.summary || len(r.online) == r.sentCount {
		rs.mu.Unlock()
		return
	}
	r.sentCount = len(r.online)
	rs.notices = append(rs.notices, notice{room: roomID, count: r.sentCount, summary: true})
	rs.mu.Unlock()
	h.announce(rs)
}

// announce publishes the presence notices queued in the shard. Notices
// are published in the order of the changes they announce, so the others
// never see a user go online after the offline that followed, nor a count
// older than the one before; if another goroutine is publishing the
// shard's notices already, it publishes these too and announce returns at
// once. It is called without hub locks held: a Deliver that the
// publication causes may leave or join rooms itself.
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
			// A broker failure loses a presence notice, never a message;
			// the joined reply and later joins carry the true state.
			_ = h.Publish(context.Background(), n.envelope())
		}
		rs.mu.Lock()
	}
	rs.announcing = false
	rs.mu.Unlock()
}

// envelope builds the event of a notice. The user whose join or leave
// caused it does not get it: that connection knows from Join, and a
// user's other connections are not in the room when it is a first join
// or a last leave.
func (n *notice) envelope() Envelope {
	if n.status != "" {
		return PresenceNotice(n.room, n.user, n.status)
	}
	env := SummaryNotice(n.room, n.count, n.summary, n.users)
	env.SkipUser, env.Event.Actor = n.user.ID, n.user.ID
	return env
}

// PresenceNotice is the announcement to a room that a user came online
// (chat.StatusOnline) or went offline there; the user's own connections
// do not get it.
func PresenceNotice(room string, user chat.User, status string) Envelope {
	ev := chat.MustEvent(chat.EventPresence, chat.PresencePayload{Room: room, User: user, Status: status})
	ev.Room, ev.Actor = room, user.ID
	return Envelope{To: ToRoom(room), SkipUser: user.ID, Event: ev}
}

// SummaryNotice is a room's presence summary (chat.EventOnline): its
// count while summary is true, or everyone online when it goes back to
// per-user presence.
func SummaryNotice(room string, count int, summary bool, users []chat.User) Envelope {
	ev := chat.MustEvent(chat.EventOnline, chat.OnlinePayload{Room: room, OnlineCount: count, Summary: summary, Online: users})
	ev.Room = room
	return Envelope{To: ToRoom(room), Event: ev}
}

// Joined reports whether the connection has joined the room.
func (h *Hub) Joined(roomID string, sub Subscriber) bool {
	s := h.connShardFor(sub.UserID(), sub)
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Contains(s.conns[sub], roomID)
}

// JoinedCount is the number of rooms the connection has joined.
func (h *Hub) JoinedCount(sub Subscriber) int {
	s := h.connShardFor(sub.UserID(), sub)
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns[sub])
}

// Online lists every user with at least one connection in the room, by
// name, then id, on every node when there is a directory. Unlike Join it
// is not limited: it is for the few who need everyone (the bot's "who").
func (h *Hub) Online(roomID string) []chat.User {
	if h.dir != nil {
		return h.dir.Roster(roomID, -1).Users
	}
	return h.LocalOnline(roomID)
}

// LocalOnline lists the users with at least one connection in the room
// on this node, by name, then id.
func (h *Hub) LocalOnline(roomID string) []chat.User {
	rs := h.roomShard(roomID)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.rooms[roomID]
	if r == nil {
		return []chat.User{}
	}
	return r.users(len(r.byName))
}

// LocalRooms lists the rooms joined by at least one connection of this
// node.
func (h *Hub) LocalRooms() []string {
	var ids []string
	for i := range h.rooms {
		rs := &h.rooms[i]
		rs.mu.Lock()
		for id := range rs.rooms {
			ids = append(ids, id)
		}
		rs.mu.Unlock()
	}
	return ids
}

// Roster reports who is online in a room without joining it: on every
// node when there is a directory.
func (h *Hub) Roster(roomID string) Roster {
	if h.dir != nil {
		return h.dir.Roster(roomID, h.limit)
	}
	rs := h.roomShard(roomID)
	rs.mu.Lock()
	defer rs.mu.Unlock()
	r := rs.rooms[roomID]
	if r == nil {
		return Roster{Users: []chat.User{}}
	}
	return h.rosterOf(r)
}

// rosterOf reports the first users of the room: at worst a copy of limit
// users, whatever the room's size. The caller holds the room's shard.
func (h *Hub) rosterOf(r *room) Roster {
	if r.top == nil {
		r.top = r.users(min(len(r.byName), h.limit))
	}
	return Roster{Users: r.top, Count: len(r.online), Summary: r.summary}
}

// users copies the first n online users, by name. The caller holds the
// room's shard.
func (r *room) users(n int) []chat.User {
	users := make([]chat.User, n)
	for i, p := range r.byName[:n] {
		users[i] = p.user
	}
	return users
}

// add inserts p into byName at its place, and returns that place.
func (r *room) add(p *presence) int {
	i, _ := slices.BinarySearchFunc(r.byName, p, byNameThenID)
	r.byName = slices.Insert(r.byName, i, p)
	return i
}

// remove takes p out of byName, and returns where it was.
func (r *room) remove(p *presence) int {
	i, ok := slices.BinarySearchFunc(r.byName, p, byNameThenID)
	if ok {
		r.byName = slices.Delete(r.byName, i, i+1)
	}
	return i
}

// byNameThenID orders users by name, then id (ids are unique, so two
// different users are never equal).
func byNameThenID(a, b *presence) int {
	if c := strings.Compare(a.user.Name, b.user.Name); c != 0 {
		return c
	}
	return strings.Compare(a.user.ID, b.user.ID)
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
		if env.Event.Type == chat.EventGap {
			h.resync()
			return
		}
		h.Each(func(sub Subscriber) { deliverOne(sub, env) })
	}
}

// resync tells the connections of every local room that its events may
// have been lost (chat.EventGap): each gets a chat.EventResync with who
// is online now, and resumes. It runs on the broker's goroutine before
// any later event is delivered, so a client's last message is one from
// before the gap.
func (h *Hub) resync() {
	for _, id := range h.LocalRooms() {
		roster := h.Roster(id)
		ev := chat.MustEvent(chat.EventResync, chat.ResyncPayload{Room: id, Online: roster.Users, OnlineCount: roster.Count, Summary: roster.Summary})
		ev.Room = id
		rs := h.roomShard(id)
		rs.mu.Lock()
		r := rs.rooms[id]
		rs.mu.Unlock()
		if r != nil {
			r.deliver(Envelope{To: ToRoom(id), Event: ev})
		}
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
