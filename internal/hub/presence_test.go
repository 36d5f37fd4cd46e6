package hub_test

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/hub"
)

// never is a CountEvery so long that no count update happens during a
// test: what is left is what joins and leaves publish themselves.
const never = time.Hour

func newHubWith(t testing.TB, cfg hub.Config) *hub.Hub {
	t.Helper()
	h := hub.New(hub.NewMemoryBroker(), cfg)
	t.Cleanup(h.Close)
	return h
}

// onlineOf decodes an online event, checking its routing too.
func onlineOf(t testing.TB, ev *chat.Event) chat.OnlinePayload {
	t.Helper()
	if ev.Type != chat.EventOnline {
		t.Fatalf("event %s:%s, want type %q", ev.Type, ev.Payload, chat.EventOnline)
	}
	var p chat.OnlinePayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatalf("decoding online payload %s: %v", ev.Payload, err)
	}
	if ev.Room != p.Room {
		t.Errorf("online ev.Room = %q, payload room %q", ev.Room, p.Room)
	}
	if ev.ReplyTo != nil {
		t.Errorf("online ev.ReplyTo = %s, want nil for a broadcast", ev.ReplyTo)
	}
	return p
}

// wantSummary checks that evs is exactly one online event saying that the
// room's presence is a summary of count users, without a list.
func wantSummary(t testing.TB, who fmt.Stringer, evs []*chat.Event, room string, count int) {
	t.Helper()
	if len(evs) != 1 {
		t.Fatalf("%v got %d events %v, want one online summary of %d", who, len(evs), describe(evs), count)
	}
	p := onlineOf(t, evs[0])
	if p.Room != room || p.OnlineCount != count || !p.Summary || p.Online != nil {
		t.Errorf("%v got %s, want the summary of %s: %d online, no list", who, evs[0].Payload, room, count)
	}
	if bytes.Contains(evs[0].Payload, []byte(`"online":`)) {
		t.Errorf("%v got %s: a summary has no online list", who, evs[0].Payload)
	}
}

// wantResume checks that evs is exactly one online event bringing the
// room back to per-user presence, with the whole list.
func wantResume(t testing.TB, who fmt.Stringer, evs []*chat.Event, room string, users ...chat.User) {
	t.Helper()
	if len(evs) != 1 {
		t.Fatalf("%v got %d events %v, want one online list of %v", who, len(evs), describe(evs), ids(users))
	}
	p := onlineOf(t, evs[0])
	if p.Room != room || p.Summary || p.OnlineCount != len(users) || !slices.Equal(p.Online, users) {
		t.Errorf("%v got %s, want room %s back to per-user presence with %v", who, evs[0].Payload, room, ids(users))
	}
	if !bytes.Contains(evs[0].Payload, []byte(`"online":[`)) {
		t.Errorf("%v got %s: the list must be there, even empty", who, evs[0].Payload)
	}
}

func wantRoster(t testing.TB, what string, got hub.Roster, count int, summary bool, users ...string) {
	t.Helper()
	if got.Count != count || got.Summary != summary || !slices.Equal(ids(got.Users), users) {
		t.Errorf("%s: roster {users %v, count %d, summary %v}, want {users %v, count %d, summary %v}",
			what, ids(got.Users), got.Count, got.Summary, users, count, summary)
	}
	if got.Users == nil {
		t.Errorf("%s: roster users nil, want a slice (it is sent as a JSON array)", what)
	}
}

func TestDefaultPresenceLimit(t *testing.T) {
	h := newHub(t) // hub.Config{}
	for i := range hub.DefaultPresenceLimit + 1 {
		uid := fmt.Sprintf("u%04d", i)
		h.Join("room", register(h, uid), user(uid, uid))
	}
	r := h.Join("room", register(h, ""), guest)
	if len(r.Users) != hub.DefaultPresenceLimit || r.Count != hub.DefaultPresenceLimit+1 || !r.Summary {
		t.Errorf("roster of %d users with the default limit: %d users, count %d, summary %v; want %d users, summary",
			hub.DefaultPresenceLimit+1, len(r.Users), r.Count, r.Summary, hub.DefaultPresenceLimit)
	}
}

// The roster lists the first users by name, at most the limit of them,
// and counts them all; guests are neither listed nor counted.
func TestJoinRosterIsLimitedAndCounted(t *testing.T) {
	h := newHubWith(t, hub.Config{PresenceLimit: 3, CountEvery: never})
	steps := []struct {
		uid, name string
		count     int
		summary   bool
		want      []string
	}{
		{"e", "Eve", 1, false, []string{"e"}},
		{"b", "Bob", 2, false, []string{"b", "e"}},
		{"", "", 2, false, []string{"b", "e"}}, // a guest
		{"d", "Dan", 3, false, []string{"b", "d", "e"}},
		{"a", "Ann", 4, true, []string{"a", "b", "d"}},
		{"f", "Fay", 5, true, []string{"a", "b", "d"}},
		{"c", "Cy", 6, true, []string{"a", "b", "c"}},
		{"b", "Bob", 6, true, []string{"a", "b", "c"}}, // a second connection
	}
	for _, st := range steps {
		u := guest
		if st.uid != "" {
			u = user(st.uid, st.name)
		}
		got := h.Join("room", register(h, st.uid), u)
		wantRoster(t, "join of "+st.name, got, st.count, st.summary, st.want...)
	}
	if got, want := ids(h.Online("room")), []string{"a", "b", "c", "d", "e", "f"}; !slices.Equal(got, want) {
		t.Errorf("Online = %v, want everyone, by name: %v", got, want)
	}

	// A connection that joined already, or is not registered, gets the
	// roster too; an empty room's is empty.
	wantRoster(t, "unregistered", h.Join("room", newSub("z"), user("z", "Zed")), 6, true, "a", "b", "c")
	wantRoster(t, "empty room", h.Join("nowhere", newSub("z"), user("z", "Zed")), 0, false)
}

// Above the limit nobody hears of joins and leaves one by one: the join
// that crosses it is announced as the room's summary, with the count.
// The room goes back to per-user presence at the resume mark, with the
// whole list.
func TestPresenceSummaryAboveLimit(t *testing.T) {
	const limit = 3 // the resume mark is 2
	h := newHubWith(t, hub.Config{PresenceLimit: limit, CountEvery: never})
	ann, bob, cy, dan, eve := user("a", "Ann"), user("b", "Bob"), user("c", "Cy"), user("d", "Dan"), user("e", "Eve")
	a, b, c, d, e := register(h, "a"), register(h, "b"), register(h, "c"), register(h, "d"), register(h, "e")
	g := register(h, "")
	h.Join("room", g, guest)
	h.Join("room", a, ann)
	wantPresence(t, g, g.take(), "room", ann, chat.StatusOnline)
	h.Join("room", b, bob)
	wantPresence(t, a, a.take(), "room", bob, chat.StatusOnline)
	g.take()
	h.Join("room", c, cy) // 3 online: still at the limit
	wantPresence(t, a, a.take(), "room", cy, chat.StatusOnline)
	wantPresence(t, b, b.take(), "room", cy, chat.StatusOnline)
	wantPresence(t, g, g.take(), "room", cy, chat.StatusOnline)

	// The fourth user: a summary for the others, the roster for Dan.
	wantRoster(t, "Dan's join", h.Join("room", d, dan), 4, true, "a", "b", "c")
	for _, s := range []*testSub{a, b, c, g} {
		wantSummary(t, s, s.take(), "room", 4)
	}
	wantNone(t, d, d.take())

	// In summary mode joins and leaves are silent.
	h.Join("room", e, eve)
	h.Leave("room", a)
	h.Leave("room", b) // 3 online: at the limit, but above the resume mark
	for _, s := range []*testSub{a, b, c, d, e, g} {
		wantNone(t, s, s.take())
	}
	wantRoster(t, "a join at the limit, still a summary", h.Join("room", register(h, ""), guest), 3, true, "c", "d", "e")

	// At the resume mark: the whole list, then users one by one again.
	h.Leave("room", c)
	for _, s := range []*testSub{d, e, g} {
		wantResume(t, s, s.take(), "room", dan, eve)
	}
	wantNone(t, c, c.take())
	h.Leave("room", d)
	wantPresence(t, e, e.take(), "room", dan, chat.StatusOffline)
	wantPresence(t, g, g.take(), "room", dan, chat.StatusOffline)
	wantRoster(t, "after the resume", h.Join("room", a, ann), 2, false, "a", "e")
	wantPresence(t, e, e.take(), "room", ann, chat.StatusOnline)
	g.take()
	h.Join("room", b, bob)
	wantPresence(t, e, e.take(), "room", bob, chat.StatusOnline)
	g.take()
	a.take()

	// And a summary again past the limit.
	h.Join("room", c, cy)
	for _, s := range []*testSub{a, b, e, g} {
		wantSummary(t, s, s.take(), "room", 4)
	}
}

// A limit of 1 resumes only when nobody is online: the list is then
// empty, and still sent.
func TestPresenceResumeWithNobodyOnline(t *testing.T) {
	h := newHubWith(t, hub.Config{PresenceLimit: 1, CountEvery: never})
	a, b, g := register(h, "a"), register(h, "b"), register(h, "")
	h.Join("room", g, guest)
	h.Join("room", a, user("a", "Ann"))
	g.take()
	h.Join("room", b, user("b", "Bob"))
	wantSummary(t, g, g.take(), "room", 2)
	wantSummary(t, a, a.take(), "room", 2)
	h.Leave("room", b)
	wantNone(t, g, g.take())
	h.Unregister(a)
	wantResume(t, g, g.take(), "room", []chat.User{}...)
	wantRoster(t, "guest's second join", h.Join("room", g, guest), 0, false)
}

// Joins and leaves of a user's second connection change nothing, in a
// summary room as in another.
func TestPresenceSummaryCountsUsersNotConnections(t *testing.T) {
	h := newHubWith(t, hub.Config{PresenceLimit: 2, CountEvery: never})
	obs := register(h, "o")
	h.Join("room", obs, user("o", "Obs"))
	a1, a2 := register(h, "a"), register(h, "a")
	h.Join("room", a1, user("a", "Ann"))
	h.Join("room", register(h, "b"), user("b", "Bob"))
	obs.take()
	a1.take()
	wantRoster(t, "second connection", h.Join("room", a2, user("a", "Ann")), 3, true, "a", "b")
	h.Leave("room", a1)
	wantNone(t, obs, obs.take())
	wantRoster(t, "after one of two connections left", h.Join("room", register(h, ""), guest), 3, true, "a", "b")
}

// The count of a summary room reaches it at most once per CountEvery, and
// eventually matches the room's.
func TestSummaryCountUpdates(t *testing.T) {
	t.Run("not per join", func(t *testing.T) {
		h := newHubWith(t, hub.Config{PresenceLimit: 2, CountEvery: never})
		obs := register(h, "o")
		h.Join("room", obs, user("o", "Obs"))
		for i := range 10 {
			uid := fmt.Sprintf("u%d", i)
			h.Join("room", register(h, uid), user(uid, uid))
		}
		evs := obs.take()
		wantPresence(t, obs, evs[:1], "room", user("u0", "u0"), chat.StatusOnline)
		wantSummary(t, obs, evs[1:], "room", 3) // and then nothing for an hour
	})

	t.Run("eventually right", func(t *testing.T) {
		h := newHubWith(t, hub.Config{PresenceLimit: 2, CountEvery: 5 * time.Millisecond})
		obs := register(h, "o")
		h.Join("room", obs, user("o", "Obs"))
		var subs []*testSub
		for i := range 20 {
			uid := fmt.Sprintf("u%d", i)
			s := register(h, uid)
			h.Join("room", s, user(uid, uid))
			subs = append(subs, s)
		}
		for _, s := range subs[10:15] {
			h.Leave("room", s)
		}
		waitCount(t, obs, "room", 16)
		// The count stops changing, so nothing more is published.
		for _, s := range subs[15:] {
			h.Join("room", s, user(s.uid, s.uid)) // joined already
		}
		time.Sleep(50 * time.Millisecond)
		wantNone(t, obs, obs.take())
	})
}

// waitCount waits for s to be told count for the room, failing if it is
// told anything else than growing or shrinking counts on the way.
func waitCount(t *testing.T, s *testSub, room string, count int) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	last := -1
	for time.Now().Before(deadline) {
		for _, ev := range s.take() {
			if ev.Type == chat.EventPresence {
				continue // before the summary
			}
			p := onlineOf(t, ev)
			if !p.Summary || p.Room != room {
				t.Fatalf("%v got %s, want summaries of %s", s, ev.Payload, room)
			}
			if p.OnlineCount == last {
				t.Errorf("%v told count %d twice in a row", s, last)
			}
			last = p.OnlineCount
		}
		if last == count {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("%v was last told count %d, want %d", s, last, count)
}

// A closed hub publishes no count update that was due: an observer on
// another hub of the same broker (another node) hears nothing more.
func TestCloseDropsCountUpdates(t *testing.T) {
	b := hub.NewMemoryBroker()
	h1 := hub.New(b, hub.Config{PresenceLimit: 1, CountEvery: 10 * time.Millisecond})
	h2 := hub.New(b, hub.Config{})
	defer h2.Close()
	obs := register(h2, "o")
	h2.Join("room", obs, user("o", "Obs"))
	h1.Join("room", register(h1, "a"), user("a", "Ann"))
	h1.Join("room", register(h1, "b"), user("b", "Bob"))
	h1.Join("room", register(h1, "c"), user("c", "Cy")) // schedules an update
	evs := obs.take()
	wantPresence(t, obs, evs[:1], "room", user("a", "Ann"), chat.StatusOnline)
	wantSummary(t, obs, evs[1:], "room", 2)
	h1.Close()
	time.Sleep(50 * time.Millisecond)
	wantNone(t, obs, obs.take())
}

// The roster of a big room is its first users by name, through any order
// of joins and leaves.
func TestRosterOrderThroughChurn(t *testing.T) {
	const limit = 20
	h := newHubWith(t, hub.Config{PresenceLimit: limit, CountEvery: never})
	rng := rand.New(rand.NewPCG(1, 2))
	online := map[string]chat.User{}
	conns := map[string]*testSub{}
	for range 3000 {
		// Few names, so that many users share one and the id decides.
		uid := fmt.Sprintf("u%03d", rng.IntN(400))
		if s := conns[uid]; s != nil {
			h.Leave("room", s)
			delete(conns, uid)
			delete(online, uid)
			continue
		}
		u := user(uid, fmt.Sprintf("name%02d", rng.IntN(60)))
		s := register(h, uid)
		h.Join("room", s, u)
		conns[uid], online[uid] = s, u
	}
	want := make([]chat.User, 0, len(online))
	for _, u := range online {
		want = append(want, u)
	}
	slices.SortFunc(want, func(a, b chat.User) int { return cmp.Or(cmp.Compare(a.Name, b.Name), cmp.Compare(a.ID, b.ID)) })
	if got := h.Online("room"); !slices.Equal(got, want) {
		t.Errorf("Online has %d users, want %d, by name then id:\n got %v\nwant %v", len(got), len(want), ids(got), ids(want))
	}
	r := h.Join("room", register(h, ""), guest)
	if r.Count != len(want) || !slices.Equal(r.Users, want[:limit]) {
		t.Errorf("roster = %v (count %d), want the first %d of %v (count %d)", ids(r.Users), r.Count, limit, ids(want), len(want))
	}
}

// roomView is what a client knows of a room's presence, built from the
// events it is sent, as the protocol says to: per-user events change the
// list; a summary replaces the count; the end of a summary replaces both.
type roomView struct {
	self    string
	summary bool
	count   int // told by the last online event
	users   map[string]bool
}

func (v *roomView) apply(t *testing.T, i int, ev *chat.Event) {
	t.Helper()
	switch ev.Type {
	case chat.EventPresence:
		p := presenceOf(t, ev)
		if v.summary {
			t.Fatalf("event %d: presence of %s %s in a summary room", i, p.User.ID, p.Status)
		}
		if was := v.users[p.User.ID]; was == (p.Status == chat.StatusOnline) {
			t.Fatalf("event %d: %s %s, and was online: %v", i, p.User.ID, p.Status, was)
		}
		if p.Status == chat.StatusOnline {
			v.users[p.User.ID] = true
		} else {
			delete(v.users, p.User.ID)
		}
	case chat.EventOnline:
		p := onlineOf(t, ev)
		if !p.Summary && !v.summary {
			t.Fatalf("event %d: end of a summary in a room that is not one", i)
		}
		v.summary, v.count = p.Summary, p.OnlineCount
		if !p.Summary {
			clear(v.users)
			for _, u := range p.Online {
				if u.ID != v.self { // presence never speaks of oneself
					v.users[u.ID] = true
				}
			}
		}
	default:
		t.Fatalf("event %d: unexpected %s", i, ev.Type)
	}
}

// Presence stays consistent under concurrency across the limit: an
// observer never gets a user's presence while the room is a summary, sees
// each user's online and offline alternate, and, once everybody else has
// gone, knows the room is back to per-user presence with nobody else in it.
func TestConcurrentPresenceAcrossLimit(t *testing.T) {
	const users, conns, rounds = 8, 2, 200
	h := newHubWith(t, hub.Config{PresenceLimit: 3, CountEvery: time.Millisecond})
	obs := register(h, "observer")
	h.Join("room", obs, user("observer", "Observer"))

	churn(h, users, conns, rounds)

	// A count update's goroutine may still be publishing notices the
	// workers queued: wait for the observer to settle.
	view := roomView{self: "observer", users: map[string]bool{}}
	n := 0
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, ev := range obs.take() {
			view.apply(t, n, ev)
			n++
		}
		if !view.summary && len(view.users) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %d events the observer sees summary %v, others online %v; want no summary, nobody", n, view.summary, view.users)
		}
		time.Sleep(time.Millisecond)
	}
	wantRoster(t, "observer alone", h.Join("room", obs, user("observer", "Observer")), 1, false, "observer")
}
