package cluster_test

import (
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/cluster"
	"pocketchat/internal/hub"
	"pocketchat/internal/redistest"
)

// conn is a hub subscriber that records what it receives.
type conn struct {
	id   uint64
	user string
	ch   chan *chat.Event
}

var connIDs atomic.Uint64

func newConn(user string) *conn {
	return &conn{id: connIDs.Add(1), user: user, ch: make(chan *chat.Event, 10000)}
}

func (c *conn) ConnID() uint64         { return c.id }
func (c *conn) UserID() string         { return c.user }
func (c *conn) Deliver(ev *chat.Event) { c.ch <- ev }

// next waits for the next event of one of the types.
func (c *conn) next(t *testing.T, types ...string) *chat.Event {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		select {
		case ev := <-c.ch:
			for _, typ := range types {
				if ev.Type == typ {
					return ev
				}
			}
		case <-deadline:
			t.Fatalf("no %v event within 10s", types)
			return nil
		}
	}
}

// node is one cluster node in this process: a hub on its own Redis link.
type node struct {
	*cluster.Node
	hub *hub.Hub
}

func startNode(t testing.TB, url, prefix string, cfg cluster.Config) *node {
	t.Helper()
	cfg.URL, cfg.Prefix = url, prefix
	if cfg.Node == "" {
		cfg.Node = cluster.NodeID("test")
	}
	if cfg.TicketTTL == 0 {
		cfg.TicketTTL = 30 * time.Second
	}
	n, err := cluster.Open(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h := hub.New(n.Broker, hub.Config{Directory: n.Directory, PresenceLimit: cfg.PresenceLimit, CountEvery: cfg.CountEvery})
	n.Start(h)
	nd := &node{Node: n, hub: h}
	t.Cleanup(func() { h.Close(); n.Close() })
	return nd
}

// join connects user to the node and joins the room.
func (n *node) join(room string, u chat.User) (*conn, hub.Roster) {
	c := newConn(u.ID)
	n.hub.Register(c)
	return c, n.hub.Join(room, c, u)
}

func message(room string, i int) hub.Envelope {
	ev := chat.MustEvent(chat.EventMessage, chat.MessagePayload{Room: room, Message: chat.Message{ID: fmt.Sprint(i), Room: room, Seq: int64(i)}})
	ev.Room = room
	return hub.Envelope{To: hub.ToRoom(room), Event: ev}
}

func seqOf(t *testing.T, ev *chat.Event) int64 {
	t.Helper()
	var p chat.MessagePayload
	if err := json.Unmarshal(ev.Payload, &p); err != nil {
		t.Fatal(err)
	}
	return p.Message.Seq
}

// Every node delivers a room's events in the order they were published,
// the publishing node included.
func TestBrokerOrderAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	a := startNode(t, srv.URL, "t1:", cluster.Config{})
	b := startNode(t, srv.URL, "t1:", cluster.Config{})
	ca, _ := a.join("r", chat.User{ID: "u1", Name: "Ann"})
	cb, _ := b.join("r", chat.User{ID: "u2", Name: "Bob"})

	const n = 2000
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for i := 1; i <= n; i++ {
			if err := a.hub.Publish(t.Context(), message("r", i)); err != nil {
				t.Error(err)
				return
			}
		}
	}()
	for _, c := range []*conn{ca, cb} {
		for i := 1; i <= n; i++ {
			if got := seqOf(t, c.next(t, chat.EventMessage)); got != int64(i) {
				t.Fatalf("%s: got seq %d, want %d", c.user, got, i)
			}
		}
	}
	wg.Wait()
}

// Users and direct messages reach a user's connections on any node; a
// room's events reach only the nodes where it is joined.
func TestBrokerAudiences(t *testing.T) {
	srv := redistest.Start(t)
	a := startNode(t, srv.URL, "t2:", cluster.Config{})
	b := startNode(t, srv.URL, "t2:", cluster.Config{})
	ca, cb := newConn("u1"), newConn("u2")
	a.hub.Register(ca)
	b.hub.Register(cb)
	ev := chat.MustEvent(chat.EventMessage, chat.MessagePayload{Room: "dm", Message: chat.Message{ID: "x", Seq: 1}})
	ev.Room = "dm"
	if err := a.hub.Publish(t.Context(), hub.Envelope{To: hub.ToUsers("u2"), Event: ev}); err != nil {
		t.Fatal(err)
	}
	got := cb.next(t, chat.EventMessage)
	if got.Room != "dm" || string(got.Payload) != string(ev.Payload) {
		t.Fatalf("got %s %s", got.Room, got.Payload)
	}
	select {
	case ev := <-ca.ch:
		t.Fatalf("u1 got %s", ev.Type)
	case <-time.After(200 * time.Millisecond):
	}
}

// Presence is the same from every node: a join on one is announced on
// the other, rosters list users of both, and a leave is announced once
// the user's last connection anywhere is gone.
func TestPresenceAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	a := startNode(t, srv.URL, "t3:", cluster.Config{})
	b := startNode(t, srv.URL, "t3:", cluster.Config{})
	ann, bob := chat.User{ID: "u1", Name: "Ann"}, chat.User{ID: "u2", Name: "Bob"}
	ca, _ := a.join("r", ann)
	cb, roster := b.join("r", bob)
	if roster.Count != 2 || len(roster.Users) != 2 || roster.Users[0].ID != "u1" || roster.Users[1].ID != "u2" {
		t.Fatalf("roster from b: %+v", roster)
	}
	ev := ca.next(t, chat.EventPresence)
	var p chat.PresencePayload
	_ = json.Unmarshal(ev.Payload, &p)
	if p.User.ID != "u2" || p.Status != chat.StatusOnline {
		t.Fatalf("a saw %s", ev.Payload)
	}
	// Bob on a second node too: leaving one of them is no news.
	cb2, _ := a.join("r", bob)
	b.hub.Unregister(cb)
	if got := a.hub.Online("r"); len(got) != 2 {
		t.Fatalf("online after one of bob's leaves: %+v", got)
	}
	a.hub.Unregister(cb2)
	ev = ca.next(t, chat.EventPresence)
	_ = json.Unmarshal(ev.Payload, &p)
	if p.User.ID != "u2" || p.Status != chat.StatusOffline {
		t.Fatalf("a saw %s", ev.Payload)
	}
	if got := b.hub.Roster("r"); got.Count != 1 || got.Users[0].ID != "u1" {
		t.Fatalf("roster from b after bob left: %+v", got)
	}
}

// A node that stops beating is taken for dead: its users go offline for
// the others within the node TTL.
func TestDeadNodeUsersGoOffline(t *testing.T) {
	srv := redistest.Start(t)
	fast := cluster.Config{Heartbeat: 100 * time.Millisecond, NodeTTL: 600 * time.Millisecond}
	a := startNode(t, srv.URL, "t4:", fast)
	cfgB := fast
	cfgB.Node = "dying"
	b, err := cluster.Open(withURL(cfgB, srv.URL, "t4:"))
	if err != nil {
		t.Fatal(err)
	}
	hb := hub.New(b.Broker, hub.Config{Directory: b.Directory})
	b.Start(hb)
	ca, cb := newConn("u1"), newConn("u2")
	a.hub.Register(ca)
	hb.Register(cb)
	a.hub.Join("r", ca, chat.User{ID: "u1", Name: "Ann"})
	hb.Join("r", cb, chat.User{ID: "u2", Name: "Bob"})
	ca.next(t, chat.EventPresence) // bob online

	// Dies without a word: no goodbye, no more heartbeats.
	start := time.Now()
	b.Broker.Close()
	b.Directory.Kill()
	ev := ca.next(t, chat.EventPresence)
	var p chat.PresencePayload
	_ = json.Unmarshal(ev.Payload, &p)
	if p.User.ID != "u2" || p.Status != chat.StatusOffline {
		t.Fatalf("a saw %s", ev.Payload)
	}
	t.Logf("offline %v after the node died (TTL %v)", time.Since(start).Round(time.Millisecond), fast.NodeTTL)
	if got := a.hub.Roster("r"); got.Count != 1 {
		t.Fatalf("roster after the reap: %+v", got)
	}
}

func withURL(cfg cluster.Config, url, prefix string) cluster.Config {
	cfg.URL, cfg.Prefix = url, prefix
	return cfg
}

// When Redis restarts, nodes subscribe again, write their presence again,
// and every joined room gets a resync carrying the roster; events
// published afterwards flow again.
func TestRedisRestart(t *testing.T) {
	srv := redistest.Start(t)
	a := startNode(t, srv.URL, "t5:", cluster.Config{})
	b := startNode(t, srv.URL, "t5:", cluster.Config{})
	ca, _ := a.join("r", chat.User{ID: "u1", Name: "Ann"})
	cb, _ := b.join("r", chat.User{ID: "u2", Name: "Bob"})

	srv.Restart(t, 300*time.Millisecond)
	for _, c := range []*conn{ca, cb} {
		ev := c.next(t, chat.EventResync)
		var p chat.ResyncPayload
		_ = json.Unmarshal(ev.Payload, &p)
		if p.Room != "r" {
			t.Fatalf("%s: resync %s", c.user, ev.Payload)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		if r := a.hub.Roster("r"); r.Count == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("roster after the restart: %+v", a.hub.Roster("r"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := a.hub.Publish(t.Context(), message("r", 7)); err != nil {
		t.Fatal(err)
	}
	if got := seqOf(t, cb.next(t, chat.EventMessage)); got != 7 {
		t.Fatalf("after the restart b got seq %d", got)
	}
}

// A ticket issued on one node is redeemed on another, once.
func TestTicketsAcrossNodes(t *testing.T) {
	srv := redistest.Start(t)
	a := startNode(t, srv.URL, "t6:", cluster.Config{TicketTTL: 300 * time.Millisecond})
	b := startNode(t, srv.URL, "t6:", cluster.Config{TicketTTL: 300 * time.Millisecond})
	tk, exp, err := a.Tickets.Issue("u1")
	if err != nil || time.Until(exp) <= 0 {
		t.Fatal(tk, exp, err)
	}
	if uid, ok := b.Tickets.Redeem(tk); !ok || uid != "u1" {
		t.Fatalf("redeem on b: %q %v", uid, ok)
	}
	if _, ok := a.Tickets.Redeem(tk); ok {
		t.Fatal("a ticket worked twice")
	}
	tk, _, _ = a.Tickets.Issue("u1")
	time.Sleep(400 * time.Millisecond)
	if _, ok := b.Tickets.Redeem(tk); ok {
		t.Fatal("an expired ticket worked")
	}
	if _, ok := b.Tickets.Redeem("nonsense"); ok {
		t.Fatal("an unknown ticket worked")
	}
}

// Events published while Redis is away are dropped and counted, never
// delivered late: after the resync, the next event is the first one
// published once Redis was back.
func TestPublishWhileRedisAway(t *testing.T) {
	srv := redistest.Start(t)
	a := startNode(t, srv.URL, "t7:", cluster.Config{})
	b := startNode(t, srv.URL, "t7:", cluster.Config{})
	a.join("r", chat.User{ID: "u1", Name: "Ann"})
	cb, _ := b.join("r", chat.User{ID: "u2", Name: "Bob"})

	srv.Kill()
	for i := 1; i <= 3; i++ {
		if err := a.hub.Publish(t.Context(), message("r", i)); err != nil {
			t.Fatal(err)
		}
	}
	for deadline := time.Now().Add(10 * time.Second); a.Broker.Dropped() < 3; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("dropped %d events, want 3", a.Broker.Dropped())
		}
	}
	srv.Resume(t)
	cb.next(t, chat.EventResync)
	if err := a.hub.Publish(t.Context(), message("r", 4)); err != nil {
		t.Fatal(err)
	}
	if got := seqOf(t, cb.next(t, chat.EventMessage)); got != 4 {
		t.Fatalf("after the resync b got seq %d first, want 4", got)
	}
	if got := a.Broker.Dropped(); got != 3 {
		t.Errorf("dropped %d events, want 3 (the gap notice is not one)", got)
	}
}
