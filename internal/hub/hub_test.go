package hub_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/hub"
)

// testSub is a Subscriber that records what it is delivered.
type testSub struct {
	id  uint64
	uid string

	// onDeliver, if set, runs after the event is recorded, without the
	// recording lock held, so it may call back into the hub.
	onDeliver func(ev *chat.Event)

	mu  sync.Mutex
	evs []*chat.Event
}

var nextConnID atomic.Uint64

func newSub(uid string) *testSub {
	return &testSub{id: nextConnID.Add(1), uid: uid}
}

func (s *testSub) ConnID() uint64 { return s.id }
func (s *testSub) UserID() string { return s.uid }

func (s *testSub) Deliver(ev *chat.Event) {
	s.mu.Lock()
	s.evs = append(s.evs, ev)
	s.mu.Unlock()
	if s.onDeliver != nil {
		s.onDeliver(ev)
	}
}

func (s *testSub) events() []*chat.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.evs)
}

// take returns the recorded events and forgets them.
func (s *testSub) take() []*chat.Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	evs := s.evs
	s.evs = nil
	return evs
}

func (s *testSub) String() string { return fmt.Sprintf("conn %d (user %q)", s.id, s.uid) }

func user(id, name string) chat.User { return chat.User{ID: id, Name: name, Avatar: "/avatars/" + id} }

// guest is the chat.User a guest joins with.
var guest chat.User

func newHub(t testing.TB) *hub.Hub {
	t.Helper()
	h := hub.New(hub.NewMemoryBroker(), hub.Config{})
	t.Cleanup(h.Close)
	return h
}

// register returns a registered connection of the user ("" for a guest).
func register(h *hub.Hub, uid string) *testSub {
	s := newSub(uid)
	h.Register(s)
	return s
}

// msg returns a message event of the room whose text identifies it.
func msg(room, text string) *chat.Event {
	ev := chat.MustEvent(chat.EventMessage, chat.MessagePayload{Room: room, Message: chat.Message{Room: room, Text: text}})
	ev.Room = room
	return ev
}

func publish(t testing.TB, h *hub.Hub, env hub.Envelope) {
	t.Helper()
	if err := h.Publish(context.Background(), env); err != nil {
		t.Fatalf("Publish: %v", err)
	}
}

func publishRoom(t testing.TB, h *hub.Hub, room, text string) *chat.Event {
	t.Helper()
	ev := msg(room, text)
	publish(t, h, hub.Envelope{To: hub.ToRoom(room), Event: ev})
	return ev
}

func presenceOf(t testing.TB, ev *chat.Event) chat.PresencePayload {
	t.Helper()
	if ev.Type != chat.EventPresence {
		t.Fatalf("event type = %q, want %q", ev.Type, chat.EventPresence)
	}
	var p chat.PresencePayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatalf("decoding presence payload %s: %v", ev.Payload, err)
	}
	return p
}

// wantPresence checks that evs is exactly one presence event for u in room.
func wantPresence(t testing.TB, who fmt.Stringer, evs []*chat.Event, room string, u chat.User, status string) {
	t.Helper()
	if len(evs) != 1 {
		t.Fatalf("%v got %d events %v, want one presence %q", who, len(evs), describe(evs), status)
	}
	ev := evs[0]
	got := presenceOf(t, ev)
	want := chat.PresencePayload{Room: room, User: u, Status: status}
	if got != want {
		t.Errorf("%v presence payload = %+v, want %+v", who, got, want)
	}
	if ev.Room != room {
		t.Errorf("%v presence ev.Room = %q, want %q", who, ev.Room, room)
	}
	if ev.Actor != u.ID {
		t.Errorf("%v presence ev.Actor = %q, want %q", who, ev.Actor, u.ID)
	}
	if ev.ReplyTo != nil {
		t.Errorf("%v presence ev.ReplyTo = %s, want nil for a broadcast", who, ev.ReplyTo)
	}
}

func wantNone(t testing.TB, who fmt.Stringer, evs []*chat.Event) {
	t.Helper()
	if len(evs) != 0 {
		t.Errorf("%v got %d events %v, want none", who, len(evs), describe(evs))
	}
}

// wantEvents checks that the subscriber got exactly the events, by identity.
func wantEvents(t testing.TB, who fmt.Stringer, got []*chat.Event, want ...*chat.Event) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Errorf("%v got %v, want %v", who, describe(got), describe(want))
	}
}

func describe(evs []*chat.Event) []string {
	out := make([]string, len(evs))
	for i, ev := range evs {
		out[i] = ev.Type + ":" + string(ev.Payload)
	}
	return out
}

func ids(users []chat.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.ID
	}
	return out
}

func TestRegisterUnregisterStats(t *testing.T) {
	h := newHub(t)
	if got, want := h.Stats(), (hub.Stats{}); got != want {
		t.Fatalf("new hub Stats = %+v, want %+v", got, want)
	}
	a1, a2, b, g := newSub("a"), newSub("a"), newSub("b"), newSub("")
	for _, s := range []*testSub{a1, a2, b, g} {
		h.Register(s)
	}
	if got, want := h.Stats(), (hub.Stats{Connections: 4}); got != want {
		t.Errorf("after 4 registrations Stats = %+v, want %+v", got, want)
	}
	h.Register(a1) // registering twice is a no-op
	if got, want := h.Stats(), (hub.Stats{Connections: 4}); got != want {
		t.Errorf("after registering twice Stats = %+v, want %+v", got, want)
	}

	h.Join("r1", a1, user("a", "Ann"))
	h.Join("r1", b, user("b", "Bob"))
	h.Join("r2", a2, user("a", "Ann"))
	h.Join("r3", g, guest)
	if got, want := h.Stats(), (hub.Stats{Connections: 4, Rooms: 3}); got != want {
		t.Errorf("after joins Stats = %+v, want %+v", got, want)
	}

	h.Unregister(a2) // r2 loses its only subscriber
	if got, want := h.Stats(), (hub.Stats{Connections: 3, Rooms: 2}); got != want {
		t.Errorf("after unregistering a2 Stats = %+v, want %+v", got, want)
	}
	h.Unregister(a2) // twice is a no-op
	h.Unregister(newSub("x"))
	if got, want := h.Stats(), (hub.Stats{Connections: 3, Rooms: 2}); got != want {
		t.Errorf("after no-op unregistrations Stats = %+v, want %+v", got, want)
	}
	h.Unregister(a1) // r1 still has b
	if got, want := h.Stats(), (hub.Stats{Connections: 2, Rooms: 2}); got != want {
		t.Errorf("after unregistering a1 Stats = %+v, want %+v", got, want)
	}
	h.Unregister(b)
	h.Unregister(g)
	if got, want := h.Stats(), (hub.Stats{}); got != want {
		t.Errorf("after unregistering all Stats = %+v, want %+v", got, want)
	}
}

func TestJoinReturnsOnlineSortedIncludingSelf(t *testing.T) {
	h := newHub(t)
	carol, alice, bob := register(h, "u3"), register(h, "u1"), register(h, "u2")
	bob2 := register(h, "u2")
	g := register(h, "")

	steps := []struct {
		sub  *testSub
		u    chat.User
		want []string
	}{
		{carol, user("u3", "carol"), []string{"u3"}},
		{alice, user("u1", "alice"), []string{"u1", "u3"}},
		{g, guest, []string{"u1", "u3"}},
		{bob, user("u2", "bob"), []string{"u1", "u2", "u3"}},
		{bob2, user("u2", "bob"), []string{"u1", "u2", "u3"}}, // one entry per user
	}
	for _, st := range steps {
		if got := ids(h.Join("room", st.sub, st.u).Users); !slices.Equal(got, st.want) {
			t.Errorf("Join by %v returned %v, want %v", st.sub, got, st.want)
		}
	}
	got := h.Online("room")
	want := []chat.User{user("u1", "alice"), user("u2", "bob"), user("u3", "carol")}
	if !slices.Equal(got, want) {
		t.Errorf("Online = %+v, want %+v", got, want)
	}

	if got := h.Online("nowhere"); got == nil || len(got) != 0 {
		t.Errorf("Online of an unknown room = %#v, want an empty, non-nil slice", got)
	}
}

func TestOnlineTiesSortedByID(t *testing.T) {
	h := newHub(t)
	for _, id := range []string{"z", "m", "a"} {
		h.Join("room", register(h, id), user(id, "Sam"))
	}
	h.Join("room", register(h, "b"), user("b", "Al"))
	if got, want := ids(h.Online("room")), []string{"b", "a", "m", "z"}; !slices.Equal(got, want) {
		t.Errorf("Online = %v, want %v (by name, then id)", got, want)
	}
}

func TestGuests(t *testing.T) {
	h := newHub(t)
	a := register(h, "a")
	h.Join("room", a, user("a", "Ann"))
	g1, g2 := register(h, ""), register(h, "")

	if got := ids(h.Join("room", g1, guest).Users); !slices.Equal(got, []string{"a"}) {
		t.Errorf("guest Join returned %v, want [a]", got)
	}
	h.Join("room", g2, guest)
	wantNone(t, a, a.take()) // guests are not announced
	if got := ids(h.Online("room")); !slices.Equal(got, []string{"a"}) {
		t.Errorf("Online = %v, want [a]: guests are never listed", got)
	}
	if !h.Joined("room", g1) {
		t.Errorf("Joined(room, guest) = false, want true")
	}

	ev := publishRoom(t, h, "room", "hello")
	for _, s := range []*testSub{a, g1, g2} {
		wantEvents(t, s, s.take(), ev)
	}

	// A presence event of another user reaches guests too.
	b := register(h, "b")
	h.Join("room", b, user("b", "Bob"))
	wantPresence(t, g1, g1.take(), "room", user("b", "Bob"), chat.StatusOnline)
	g2.take()
	a.take()

	if !h.Leave("room", g1) {
		t.Errorf("guest Leave = false, want true")
	}
	h.Unregister(g2)
	wantNone(t, a, a.take())
	wantNone(t, b, b.take())
	if got := ids(h.Online("room")); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("Online = %v, want [a b]", got)
	}
}

func TestPresenceIsPerUser(t *testing.T) {
	ann, bob := user("a", "Ann"), user("b", "Bob")

	for _, lastBy := range []string{"Leave", "Unregister"} {
		t.Run(lastBy, func(t *testing.T) {
			h := newHub(t)
			a1, a2 := register(h, "a"), register(h, "a")
			aOut := register(h, "a") // a connection of a that never joins
			b := register(h, "b")
			g := register(h, "")
			h.Join("room", b, bob)
			h.Join("room", g, guest)

			h.Join("room", a1, ann)
			wantPresence(t, b, b.take(), "room", ann, chat.StatusOnline)
			wantPresence(t, g, g.take(), "room", ann, chat.StatusOnline)
			wantNone(t, a1, a1.take()) // SkipUser: never one's own presence
			wantNone(t, aOut, aOut.take())

			if got := ids(h.Join("room", a2, ann).Users); !slices.Equal(got, []string{"a", "b"}) {
				t.Errorf("second connection's Join returned %v, want [a b]", got)
			}
			for _, s := range []*testSub{a1, a2, aOut, b, g} {
				wantNone(t, s, s.take()) // a was already online
			}

			if !h.Leave("room", a1) {
				t.Fatalf("Leave(a1) = false, want true")
			}
			for _, s := range []*testSub{a1, a2, aOut, b, g} {
				wantNone(t, s, s.take()) // a is still online through a2
			}
			if got := ids(h.Online("room")); !slices.Equal(got, []string{"a", "b"}) {
				t.Errorf("Online after one of two connections left = %v, want [a b]", got)
			}

			if lastBy == "Leave" {
				if !h.Leave("room", a2) {
					t.Fatalf("Leave(a2) = false, want true")
				}
			} else {
				h.Unregister(a2)
			}
			wantPresence(t, b, b.take(), "room", ann, chat.StatusOffline)
			wantPresence(t, g, g.take(), "room", ann, chat.StatusOffline)
			for _, s := range []*testSub{a1, a2, aOut} {
				wantNone(t, s, s.take())
			}
			if got := ids(h.Online("room")); !slices.Equal(got, []string{"b"}) {
				t.Errorf("Online after a left = %v, want [b]", got)
			}

			// Coming back is announced again, once.
			h.Join("room", a1, ann)
			wantPresence(t, b, b.take(), "room", ann, chat.StatusOnline)
		})
	}
}

func TestUnregisterAnnouncesOfflineInEveryRoom(t *testing.T) {
	h := newHub(t)
	ann := user("a", "Ann")
	a := register(h, "a")
	b1, b2 := register(h, "b"), register(h, "b")
	h.Join("r1", b1, user("b", "Bob"))
	h.Join("r2", b2, user("b", "Bob"))
	h.Join("r1", a, ann)
	h.Join("r2", a, ann)
	h.Join("r3", a, ann) // nobody else there
	b1.take()
	b2.take()

	h.Unregister(a)
	wantPresence(t, b1, b1.take(), "r1", ann, chat.StatusOffline)
	wantPresence(t, b2, b2.take(), "r2", ann, chat.StatusOffline)
	wantNone(t, a, a.take())
	for _, r := range []string{"r1", "r2", "r3"} {
		if h.Joined(r, a) {
			t.Errorf("Joined(%s) after Unregister = true, want false", r)
		}
	}
	if got, want := h.Stats(), (hub.Stats{Connections: 2, Rooms: 2}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestRoomAudience(t *testing.T) {
	h := newHub(t)
	in1, in2 := register(h, "a"), register(h, "")
	out := register(h, "a") // same user, not joined
	other := register(h, "c")
	h.Join("room", in1, user("a", "Ann"))
	h.Join("room", in2, guest)
	h.Join("other", other, user("c", "Cy"))
	in1.take()
	other.take()

	ev := publishRoom(t, h, "room", "hi")
	wantEvents(t, in1, in1.take(), ev)
	wantEvents(t, in2, in2.take(), ev)
	wantNone(t, out, out.take())
	wantNone(t, other, other.take())

	// SkipUser leaves out the user's connections only.
	ev = msg("room", "typing")
	publish(t, h, hub.Envelope{To: hub.ToRoom("room"), SkipUser: "a", Event: ev})
	wantNone(t, in1, in1.take())
	wantEvents(t, in2, in2.take(), ev)

	// After leaving, nothing more arrives.
	h.Leave("room", in1)
	wantPresence(t, in2, in2.take(), "room", user("a", "Ann"), chat.StatusOffline)
	ev = publishRoom(t, h, "room", "bye")
	wantNone(t, in1, in1.take())
	wantEvents(t, in2, in2.take(), ev)

	// A room nobody joined: nothing happens.
	publishRoom(t, h, "empty", "echo")
	for _, s := range []*testSub{in1, in2, out, other} {
		wantNone(t, s, s.take())
	}
}

func TestUsersAudience(t *testing.T) {
	h := newHub(t)
	a1, a2 := register(h, "a"), register(h, "a")
	b := register(h, "b")
	c := register(h, "c")
	g := register(h, "")
	h.Join("room", a1, user("a", "Ann")) // joined or not makes no difference
	h.Join("room", c, user("c", "Cy"))
	h.Join("room", g, guest)
	for _, s := range []*testSub{a1, a2, b, c, g} {
		s.take()
	}

	ev := msg("dm", "psst")
	publish(t, h, hub.Envelope{To: hub.ToUsers("a", "b", "nobody"), Event: ev})
	wantEvents(t, a1, a1.take(), ev)
	wantEvents(t, a2, a2.take(), ev)
	wantEvents(t, b, b.take(), ev)
	wantNone(t, c, c.take())
	wantNone(t, g, g.take())

	ev = msg("dm", "skip")
	publish(t, h, hub.Envelope{To: hub.ToUsers("a", "b"), SkipUser: "a", Event: ev})
	wantNone(t, a1, a1.take())
	wantNone(t, a2, a2.take())
	wantEvents(t, b, b.take(), ev)

	// Each connection gets an event once, however often its user is listed.
	ev = msg("dm", "twice")
	publish(t, h, hub.Envelope{To: hub.ToUsers("b", "a", "b"), Event: ev})
	wantEvents(t, a1, a1.take(), ev)
	wantEvents(t, a2, a2.take(), ev)
	wantEvents(t, b, b.take(), ev)

	// Guests have no user id: addressing "" reaches nobody (and must not
	// crash the broker's goroutine).
	ev = msg("dm", "guest")
	publish(t, h, hub.Envelope{To: hub.ToUsers(""), Event: ev})
	publish(t, h, hub.Envelope{To: hub.ToUsers(), Event: ev})
	for _, s := range []*testSub{a1, a2, b, c, g} {
		wantNone(t, s, s.take())
	}

	// Unregistered connections are not reached.
	h.Unregister(a2)
	ev = msg("dm", "after")
	publish(t, h, hub.Envelope{To: hub.ToUsers("a"), Event: ev})
	wantEvents(t, a1, a1.take(), ev)
	wantNone(t, a2, a2.take())
}

func TestAllAudience(t *testing.T) {
	h := newHub(t)
	var subs []*testSub
	for i := range 200 { // enough to land in many shards
		uid := ""
		if i%3 != 0 {
			uid = fmt.Sprintf("u%d", i%50)
		}
		s := register(h, uid)
		if i%2 == 0 {
			h.Join(fmt.Sprintf("r%d", i%7), s, user(uid, "N"+uid))
		}
		subs = append(subs, s)
	}
	for _, s := range subs {
		s.take()
	}

	ev := chat.MustEvent(chat.EventRoom, chat.RoomPayload{Action: chat.ActionCreate, Room: chat.Room{ID: "new", Kind: chat.KindPublic}})
	publish(t, h, hub.Envelope{To: hub.ToAll(), Event: ev})
	for _, s := range subs {
		wantEvents(t, s, s.take(), ev)
	}

	ev = chat.MustEvent(chat.EventRoom, chat.RoomPayload{Action: chat.ActionUpdate, Room: chat.Room{ID: "new"}})
	publish(t, h, hub.Envelope{To: hub.ToAll(), SkipUser: "u1", Event: ev})
	for _, s := range subs {
		if s.uid == "u1" {
			wantNone(t, s, s.take())
		} else {
			wantEvents(t, s, s.take(), ev)
		}
	}

	gone := subs[:100]
	for _, s := range gone {
		h.Unregister(s)
	}
	for _, s := range subs {
		s.take() // offline notices
	}
	publish(t, h, hub.Envelope{To: hub.ToAll(), Event: ev})
	for i, s := range subs {
		if i < len(gone) {
			wantNone(t, s, s.take())
		} else {
			wantEvents(t, s, s.take(), ev)
		}
	}
}

func TestLeave(t *testing.T) {
	h := newHub(t)
	a := register(h, "a")
	if h.Leave("room", a) {
		t.Errorf("Leave of a room never joined = true, want false")
	}
	if h.Leave("room", newSub("z")) {
		t.Errorf("Leave by an unregistered connection = true, want false")
	}
	h.Join("room", a, user("a", "Ann"))
	if h.Leave("other", a) {
		t.Errorf("Leave of another room = true, want false")
	}
	if !h.Joined("room", a) {
		t.Errorf("Joined = false after Join")
	}
	if !h.Leave("room", a) {
		t.Errorf("Leave of a joined room = false, want true")
	}
	if h.Joined("room", a) {
		t.Errorf("Joined = true after Leave")
	}
	if h.Leave("room", a) {
		t.Errorf("second Leave = true, want false")
	}
	if got, want := h.Stats(), (hub.Stats{Connections: 1}); got != want {
		t.Errorf("Stats = %+v, want %+v", got, want)
	}
}

func TestJoinTwiceIsIdempotent(t *testing.T) {
	h := newHub(t)
	ann := user("a", "Ann")
	a, b := register(h, "a"), register(h, "b")
	h.Join("room", b, user("b", "Bob"))

	h.Join("room", a, ann)
	if got := ids(h.Join("room", a, ann).Users); !slices.Equal(got, []string{"a", "b"}) {
		t.Errorf("second Join returned %v, want [a b]", got)
	}
	wantPresence(t, b, b.take(), "room", ann, chat.StatusOnline)

	ev := publishRoom(t, h, "room", "once")
	wantEvents(t, a, a.take(), ev)
	wantEvents(t, b, b.take(), ev)

	// One Leave undoes both joins: the second did not count twice.
	if !h.Leave("room", a) {
		t.Fatalf("Leave = false, want true")
	}
	wantPresence(t, b, b.take(), "room", ann, chat.StatusOffline)
	if got := ids(h.Online("room")); !slices.Equal(got, []string{"b"}) {
		t.Errorf("Online = %v, want [b]", got)
	}
	publishRoom(t, h, "room", "gone")
	wantNone(t, a, a.take())
}

func TestJoinUnregistered(t *testing.T) {
	h := newHub(t)
	b := register(h, "b")
	h.Join("room", b, user("b", "Bob"))

	a := newSub("a") // never registered
	if got := ids(h.Join("room", a, user("a", "Ann")).Users); !slices.Equal(got, []string{"b"}) {
		t.Errorf("Join by an unregistered connection returned %v, want [b]", got)
	}
	if h.Joined("room", a) {
		t.Errorf("Joined = true for an unregistered connection")
	}
	wantNone(t, b, b.take())
	publishRoom(t, h, "room", "x")
	wantNone(t, a, a.take())
}

func TestCloseStopsDelivery(t *testing.T) {
	b := hub.NewMemoryBroker()
	h := hub.New(b, hub.Config{})
	a := register(h, "a")
	h.Join("room", a, user("a", "Ann"))
	ev := publishRoom(t, h, "room", "before")
	wantEvents(t, a, a.take(), ev)
	h.Close()
	publishRoom(t, h, "room", "after")
	wantNone(t, a, a.take())
}

// Two hubs on one broker stand for two nodes: what one publishes reaches
// the connections of both, presence included.
func TestHubsShareBroker(t *testing.T) {
	b := hub.NewMemoryBroker()
	h1, h2 := hub.New(b, hub.Config{}), hub.New(b, hub.Config{})
	defer h1.Close()
	defer h2.Close()
	x := register(h1, "x")
	y := register(h2, "y")
	h2.Join("room", y, user("y", "Yu"))

	h1.Join("room", x, user("x", "Xi"))
	wantPresence(t, y, y.take(), "room", user("x", "Xi"), chat.StatusOnline)

	ev := publishRoom(t, h1, "room", "across")
	wantEvents(t, x, x.take(), ev)
	wantEvents(t, y, y.take(), ev)

	ev = msg("dm", "dm")
	publish(t, h2, hub.Envelope{To: hub.ToUsers("x"), Event: ev})
	wantEvents(t, x, x.take(), ev)
	wantNone(t, y, y.take())
}

func TestEachVisitsEveryConnectionOnce(t *testing.T) {
	h := newHub(t)
	want := map[hub.Subscriber]int{}
	for i := range 300 {
		uid := ""
		if i%4 != 0 {
			uid = fmt.Sprintf("u%d", i%37) // many connections per user
		}
		s := register(h, uid)
		want[s] = 1
		if i%5 == 0 {
			h.Join("room", s, user(uid, uid))
		}
	}
	removed := 0
	for s := range want {
		if removed == 50 {
			break
		}
		h.Unregister(s)
		delete(want, s)
		removed++
	}

	got := map[hub.Subscriber]int{}
	h.Each(func(s hub.Subscriber) { got[s]++ })
	if len(got) != len(want) {
		t.Errorf("Each visited %d connections, want %d", len(got), len(want))
	}
	for s, n := range got {
		if n != 1 {
			t.Errorf("Each visited %v %d times, want once", s, n)
		}
		if _, ok := want[s]; !ok {
			t.Errorf("Each visited %v, which is not registered", s)
		}
	}

	// fn runs without hub locks: it may unregister, as a shutdown does.
	h.Each(h.Unregister)
	if got, want := h.Stats(), (hub.Stats{}); got != want {
		t.Errorf("Stats after unregistering from Each = %+v, want %+v", got, want)
	}
	n := 0
	h.Each(func(hub.Subscriber) { n++ })
	if n != 0 {
		t.Errorf("Each on an empty hub visited %d connections", n)
	}
}

// within runs fn and fails the test if it has not returned after a while:
// a deadlocked hub.
func within(t *testing.T, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		fn()
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("%s: deadlocked", what)
	}
}

// A session leaves a room from Deliver when it loses access to it; a
// connection that cannot keep up unregisters from Deliver. Neither may
// deadlock, whatever audience the event had.
func TestDeliverMayCallBackIntoHub(t *testing.T) {
	audiences := map[string]hub.Audience{
		"room":  hub.ToRoom("room"),
		"users": hub.ToUsers("x"),
		"all":   hub.ToAll(),
	}
	for name, to := range audiences {
		for _, action := range []string{"Leave", "Unregister"} {
			t.Run(name+"/"+action, func(t *testing.T) {
				h := newHub(t)
				xi := user("x", "Xi")
				x := register(h, "x")
				y := register(h, "y")
				h.Join("room", x, xi)
				h.Join("room", y, user("y", "Yu"))
				x.take()
				y.take()
				var left atomic.Int32
				x.onDeliver = func(ev *chat.Event) {
					if ev.Type != chat.EventMessage || left.Add(1) != 1 {
						return
					}
					if action == "Leave" {
						if !h.Leave("room", x) {
							t.Errorf("Leave from Deliver = false, want true")
						}
					} else {
						h.Unregister(x)
					}
				}

				ev := msg("room", "you lost access")
				within(t, "Publish", func() {
					publish(t, h, hub.Envelope{To: to, Event: ev})
				})
				wantEvents(t, x, x.take(), ev)
				got := y.take()
				switch name {
				case "users":
					// Only x was addressed; y learns x went offline.
					wantPresence(t, y, got, "room", xi, chat.StatusOffline)
				case "room":
					// In room order: the message, then the notice it caused.
					if len(got) != 2 || got[0] != ev {
						t.Fatalf("y got %v, want the message then x's offline presence", describe(got))
					}
					wantPresence(t, y, got[1:], "room", xi, chat.StatusOffline)
				case "all":
					// Broadcasts are not ordered with room events: the
					// notice may overtake the message if x is visited first.
					i := slices.Index(got, ev)
					if len(got) != 2 || i < 0 {
						t.Fatalf("y got %v, want the message and x's offline presence", describe(got))
					}
					wantPresence(t, y, slices.Delete(got, i, i+1), "room", xi, chat.StatusOffline)
				}
				if h.Joined("room", x) {
					t.Errorf("x still joined")
				}

				ev = publishRoom(t, h, "room", "later")
				wantNone(t, x, x.take())
				wantEvents(t, y, y.take(), ev)
			})
		}
	}
}

// Deliver may also join rooms and publish, to the room being delivered
// included; what it publishes reaches everyone after the event at hand.
func TestDeliverMayJoinAndPublish(t *testing.T) {
	h := newHub(t)
	x := register(h, "x")
	y := register(h, "y")
	z := register(h, "z")
	h.Join("room", x, user("x", "Xi"))
	h.Join("room", y, user("y", "Yu"))
	h.Join("lobby", z, user("z", "Zo"))
	x.take()

	reply := msg("room", "reply")
	x.onDeliver = func(ev *chat.Event) {
		if ev.Type == chat.EventMessage && ev.Room == "room" && ev != reply {
			h.Join("lobby", x, user("x", "Xi"))
			if err := h.Publish(context.Background(), hub.Envelope{To: hub.ToRoom("room"), Event: reply}); err != nil {
				t.Errorf("Publish from Deliver: %v", err)
			}
		}
	}
	ev := msg("room", "ping")
	within(t, "Publish", func() { publish(t, h, hub.Envelope{To: hub.ToRoom("room"), Event: ev}) })
	wantEvents(t, x, x.take(), ev, reply)
	wantEvents(t, y, y.take(), ev, reply)
	wantPresence(t, z, z.take(), "lobby", user("x", "Xi"), chat.StatusOnline)
}

// Two rooms delivering at once on two goroutines, each subscriber of one
// leaving the other from Deliver: the presence notices cross.
func TestDeliverCrossRoomLeaves(t *testing.T) {
	h := newHub(t)
	x, y := register(h, "x"), register(h, "y")
	w1, w2 := register(h, "w1"), register(h, "w2")
	for _, r := range []string{"r1", "r2"} {
		h.Join(r, x, user("x", "Xi"))
		h.Join(r, y, user("y", "Yu"))
		h.Join(r, w1, user("w1", "W1"))
		h.Join(r, w2, user("w2", "W2"))
	}
	var start sync.WaitGroup
	start.Add(2)
	x.onDeliver = func(ev *chat.Event) {
		if ev.Type == chat.EventMessage && ev.Room == "r1" {
			start.Done()
			start.Wait() // both deliveries are under way
			h.Leave("r2", x)
		}
	}
	y.onDeliver = func(ev *chat.Event) {
		if ev.Type == chat.EventMessage && ev.Room == "r2" {
			start.Done()
			start.Wait()
			h.Leave("r1", y)
		}
	}
	within(t, "crossing publishes", func() {
		var wg sync.WaitGroup
		wg.Go(func() { publishRoom(t, h, "r1", "one") })
		wg.Go(func() { publishRoom(t, h, "r2", "two") })
		wg.Wait()
	})
	if got := ids(h.Online("r1")); !slices.Equal(got, []string{"w1", "w2", "x"}) {
		t.Errorf("Online(r1) = %v", got)
	}
	if got := ids(h.Online("r2")); !slices.Equal(got, []string{"w1", "w2", "y"}) {
		t.Errorf("Online(r2) = %v", got)
	}
}

// Many goroutines publish to one room at once: every subscriber sees the
// same sequence, and each publisher's events in the order it published them.
func TestRoomOrderUnderConcurrentPublishers(t *testing.T) {
	const (
		publishers = 8
		perPub     = 300
		nsubs      = 20
	)
	h := newHub(t)
	subs := make([]*testSub, nsubs)
	for i := range subs {
		uid := fmt.Sprintf("u%d", i)
		if i%4 == 0 {
			uid = ""
		}
		subs[i] = register(h, uid)
		h.Join("room", subs[i], user(uid, uid))
	}
	for _, s := range subs {
		s.take()
	}

	type tag struct{ pub, n int }
	var wg sync.WaitGroup
	for p := range publishers {
		wg.Go(func() {
			for n := range perPub {
				ev := msg("room", "m")
				ev.Data = tag{p, n}
				if err := h.Publish(context.Background(), hub.Envelope{To: hub.ToRoom("room"), Event: ev}); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	wg.Wait()

	ref := subs[0].events()
	if len(ref) != publishers*perPub {
		t.Fatalf("%v got %d events, want %d", subs[0], len(ref), publishers*perPub)
	}
	next := make([]int, publishers)
	for i, ev := range ref {
		tg := ev.Data.(tag)
		if tg.n != next[tg.pub] {
			t.Fatalf("event %d is publisher %d's #%d, want its #%d", i, tg.pub, tg.n, next[tg.pub])
		}
		next[tg.pub]++
	}
	for _, s := range subs[1:] {
		got := s.events()
		if len(got) != len(ref) {
			t.Errorf("%v got %d events, want %d", s, len(got), len(ref))
			continue
		}
		for i := range got {
			if got[i] != ref[i] {
				t.Errorf("%v: event %d is %v, %v has %v", s, i, got[i].Data, subs[0], ref[i].Data)
				break
			}
		}
	}
}

// Joins, leaves, unregistrations (also racing one another on the same
// connection, as when a session leaves from Deliver while its reader joins)
// and publishes across many rooms. Afterwards nothing may be left over:
// no room, no connection, nobody online, no delivery. Also with a
// presence limit small enough for rooms to switch to summaries and back.
func TestConcurrentStress(t *testing.T) {
	t.Run("per-user", func(t *testing.T) { stress(t, hub.Config{}) })
	t.Run("summaries", func(t *testing.T) { stress(t, hub.Config{PresenceLimit: 3, CountEvery: time.Millisecond}) })
}

func stress(t *testing.T, cfg hub.Config) {
	const (
		nconns  = 64
		nrooms  = 12
		workers = 4 // goroutines per connection
		ops     = 150
	)
	h := newHubWith(t, cfg)
	rooms := make([]string, nrooms)
	for i := range rooms {
		rooms[i] = fmt.Sprintf("room%d", i)
	}
	subs := make([]*testSub, nconns)
	for i := range subs {
		uid := fmt.Sprintf("u%d", i%16) // 4 connections per user
		if i%8 == 0 {
			uid = ""
		}
		subs[i] = newSub(uid)
		h.Register(subs[i])
	}

	var wg sync.WaitGroup
	for i, s := range subs {
		u := user(s.uid, "name-"+s.uid)
		for w := range workers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(i), uint64(w)))
				for n := range ops {
					room := rooms[rng.IntN(nrooms)]
					switch k := rng.IntN(10); {
					case k < 4:
						h.Join(room, s, u)
					case k < 7:
						h.Leave(room, s)
					case k < 9:
						publishRoom(t, h, room, "stress")
					default:
						if w == 0 && n == ops/2 {
							h.Unregister(s) // races the other workers' joins
						}
						h.Online(room)
						h.Joined(room, s)
					}
				}
			})
		}
	}
	for range 2 {
		wg.Go(func() {
			for range ops {
				publish(t, h, hub.Envelope{To: hub.ToAll(), Event: msg("", "all")})
				publish(t, h, hub.Envelope{To: hub.ToUsers("u1", "u2"), Event: msg("", "dm")})
				h.Stats()
				h.Each(func(hub.Subscriber) {})
			}
		})
	}
	wg.Wait()

	for _, s := range subs {
		h.Unregister(s)
	}
	if got, want := h.Stats(), (hub.Stats{}); got != want {
		t.Errorf("Stats after unregistering everything = %+v, want %+v", got, want)
	}
	for _, r := range rooms {
		if got := h.Online(r); len(got) != 0 {
			t.Errorf("Online(%s) after unregistering everything = %v", r, ids(got))
		}
	}
	for _, s := range subs {
		s.take()
	}
	for _, r := range rooms {
		publishRoom(t, h, r, "anyone?")
	}
	publish(t, h, hub.Envelope{To: hub.ToAll(), Event: msg("", "all")})
	for _, s := range subs {
		wantNone(t, s, s.take())
	}
}

// churn runs conns connections of each of users users (ids u0…), each
// joining and leaving "room" rounds times at once with the others, then
// joining a last time and unregistering; it returns when all are done.
func churn(h *hub.Hub, users, conns, rounds int) {
	var wg sync.WaitGroup
	for u := range users {
		uid := fmt.Sprintf("u%d", u)
		for range conns {
			s := register(h, uid)
			wg.Go(func() {
				for range rounds {
					h.Join("room", s, user(uid, uid))
					h.Leave("room", s)
				}
				h.Join("room", s, user(uid, uid))
				h.Unregister(s)
			})
		}
	}
	wg.Wait()
}

// Presence stays consistent under concurrency: watching a room, an
// observer sees each user's online and offline notices alternate, starting
// with online, and ends with everybody offline. Several connections of
// one user joining and leaving at once make transitions race; the notices
// must still be published in the order of the transitions.
func TestConcurrentPresenceConsistent(t *testing.T) {
	const users, conns, rounds = 6, 3, 300
	h := newHub(t)
	obs := register(h, "observer")
	h.Join("room", obs, user("observer", "Observer"))

	churn(h, users, conns, rounds)

	status := map[string]string{}
	bad := 0
	for i, ev := range obs.take() {
		p := presenceOf(t, ev)
		if p.Room != "room" || ev.Room != "room" {
			t.Fatalf("notice %d is for room %q/%q", i, p.Room, ev.Room)
		}
		prev := status[p.User.ID]
		want := chat.StatusOnline
		if prev == chat.StatusOnline {
			want = chat.StatusOffline
		}
		if p.Status != want && bad < 5 {
			t.Errorf("notice %d: user %s %s after %q, want %s", i, p.User.ID, p.Status, prev, want)
			bad++
		}
		status[p.User.ID] = p.Status
	}
	if len(status) != users {
		t.Errorf("observer heard of %d users, want %d", len(status), users)
	}
	for uid, st := range status {
		if st != chat.StatusOffline {
			t.Errorf("observer last saw %s %s, want offline", uid, st)
		}
	}
	if got := ids(h.Online("room")); !slices.Equal(got, []string{"observer"}) {
		t.Errorf("Online = %v, want [observer]", got)
	}
}

// Delivering an event allocates nothing, whatever its audience: the
// events are built once by the publisher and shared.
func TestFanoutDoesNotAllocate(t *testing.T) {
	h := newHub(t)
	var count atomic.Int64
	for i := range 200 {
		s := &counterSub{id: uint64(i + 1), uid: fmt.Sprintf("u%d", i%50), n: &count}
		if i%10 == 0 {
			s.uid = ""
		}
		h.Register(s)
		h.Join(fmt.Sprintf("room%d", i%3), s, chat.User{ID: s.uid, Name: s.uid})
	}
	ev := msg("room0", "x")
	ctx := context.Background()
	for name, env := range map[string]hub.Envelope{
		"room":  {To: hub.ToRoom("room0"), SkipUser: "u1", Event: ev},
		"users": {To: hub.ToUsers("u1", "u2", "u3", "u2"), Event: ev},
		"all":   {To: hub.ToAll(), SkipUser: "u3", Event: ev},
	} {
		count.Store(0)
		allocs := testing.AllocsPerRun(100, func() { _ = h.Publish(ctx, env) })
		if allocs != 0 {
			t.Errorf("publishing to %s: %v allocations per publish, want 0", name, allocs)
		}
		if count.Load() == 0 {
			t.Errorf("publishing to %s delivered nothing", name)
		}
	}
}
