package e2e

import (
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"pocketchat/internal/redistest"
)

const clusterSecret = "e2e-cluster-secret-0123456789"

// cluster is one primary and its edges on one Redis.
type cluster struct {
	redis   *redistest.Server
	primary *Server
	edges   []*edgeNode
}

// edgeNode is a `pocketchat edge` process; View talks to the cluster
// through it (sockets to the edge, REST proxied to the primary).
type edgeNode struct {
	View *Server
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

func clusterEnv(url string) []string {
	return []string{"CHAT_REDIS_URL=" + url, "CHAT_CLUSTER_SECRET=" + clusterSecret, "CHAT_NODE_TTL=2s"}
}

func startCluster(t *testing.T, edges int) *cluster {
	t.Helper()
	c := &cluster{redis: redistest.Start(t)}
	c.primary = StartServer(t, WithEnv(clusterEnv(c.redis.URL)...))
	for range edges {
		c.edges = append(c.edges, c.startEdge(t))
	}
	return c
}

func (c *cluster) startEdge(t *testing.T) *edgeNode {
	t.Helper()
	addr := freeAddr(t)
	e := &edgeNode{out: &syncBuffer{}, done: make(chan struct{})}
	e.cmd = exec.Command(binPath, "edge", "--primary", c.primary.URL, "--http", addr)
	e.cmd.Env = append(os.Environ(), clusterEnv(c.redis.URL)...)
	e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = e.cmd.Wait(); close(e.done) }()
	t.Cleanup(e.Kill)
	e.View = c.primary.Via("http://"+addr, nil)
	e.View.done = e.done
	if !e.View.waitReady() {
		t.Fatalf("edge did not start:\n%s", e.out.String())
	}
	return e
}

// Kill stops the edge with SIGKILL, as a crash would.
func (e *edgeNode) Kill() {
	select {
	case <-e.done:
		return
	default:
	}
	_ = e.cmd.Process.Kill()
	<-e.done
}

func onlineIDs(f Frame) []string {
	ids := f.userIDs("online")
	sort.Strings(ids)
	return ids
}

// Users on the primary and on two edges chat in one room and in a direct
// chat; every node sees the same messages in the same order, and the
// same people online.
func TestClusterChat(t *testing.T) {
	c := startCluster(t, 2)
	p, e1, e2 := c.primary, c.edges[0].View, c.edges[1].View
	general := p.General()
	alice, bob, carol := p.NewUser("Alice"), p.NewUser("Bob"), p.NewUser("Carol")
	a := e1.DialTicket(alice) // a ticket from the primary, redeemed on an edge
	b := e2.Dial(bob)         // a token the edge has the primary verify
	k := p.Dial(carol)
	a.Join(general)
	b.Join(general)
	k.Join(general)

	t.Run("presence is the same from every node", func(t *testing.T) {
		want := []string{alice.ID, bob.ID, carol.ID}
		sort.Strings(want)
		for _, v := range []*Server{p, e1, e2} {
			probe := v.Dial(nil)
			got := onlineIDs(probe.Join(general))
			probe.Close()
			if !slices.Equal(got, want) {
				t.Fatalf("online from %s: %v, want %v", v.URL, got, want)
			}
		}
	})

	t.Run("one room, one order", func(t *testing.T) {
		const n = 9 // within the send burst
		done := make(chan struct{})
		go func() {
			defer close(done)
			for i := range n {
				a.Send(general, "from alice "+string(rune('A'+i%26)))
			}
		}()
		for i := range n {
			k.Send(general, "from carol "+string(rune('A'+i%26)))
		}
		<-done
		var orders [][]string
		for _, cl := range []*Client{a, b, k} {
			var ids []string
			for len(ids) < 2*n {
				f := cl.WaitFor("message", func(f Frame) bool { return f.Type() == "message" && f.Str("room") == general })
				ids = append(ids, f.Obj("message").Str("id"))
			}
			orders = append(orders, ids)
		}
		for i := 1; i < len(orders); i++ {
			if !slices.Equal(orders[0], orders[i]) {
				t.Fatalf("client %d saw another order:\n%v\n%v", i, orders[0], orders[i])
			}
		}
	})

	t.Run("direct chat across edges", func(t *testing.T) {
		ack := a.MustRequest("dm", map[string]any{"to": bob.ID, "text": "psst bob"})
		m := ack.Obj("message")
		got := b.ExpectMessage(m.Str("room"), "psst bob")
		if got.Str("id") != m.Str("id") {
			t.Fatalf("bob got %v", got)
		}
		k.ExpectNone("the dm", func(f Frame) bool {
			return f.Type() == "message" && strings.Contains(f.Obj("message").Str("text"), "psst")
		})
	})
}

// An edge dies: its clients reconnect to the other edge and resume, and
// nothing acknowledged is lost; the others see its users go offline.
func TestClusterEdgeDies(t *testing.T) {
	c := startCluster(t, 2)
	e1, e2 := c.edges[0].View, c.edges[1].View
	general := c.primary.General()
	alice, bob := c.primary.NewUser("Alice"), c.primary.NewUser("Bob")
	a := e1.Dial(alice)
	b := e2.Dial(bob)
	b.Join(general)
	a.Join(general)
	b.WaitFor("alice online", func(f Frame) bool { return f.Type() == "presence" && f.Obj("user").Str("id") == alice.ID })

	var acked []string
	for i := range 15 {
		acked = append(acked, a.Send(general, "before the crash "+string(rune('a'+i))).Str("id"))
	}
	last := acked[len(acked)-1]
	c.edges[0].Kill()
	start := time.Now()
	b.WaitFor("alice offline", func(f Frame) bool {
		return f.Type() == "presence" && f.Obj("user").Str("id") == alice.ID && f.Str("status") == "offline"
	})
	t.Logf("alice offline %v after her edge died", time.Since(start).Round(time.Millisecond))
	// Bob wrote while Alice was away.
	for i := range 5 {
		b.Send(general, "while away "+string(rune('a'+i)))
	}
	a2 := e2.Dial(alice)
	a2.Join(general)
	h := a2.MustRequest("resume", map[string]any{"room": general, "after": last, "limit": 100})
	var texts []string
	for _, m := range h.List("messages") {
		texts = append(texts, m.Str("text"))
	}
	if len(texts) != 5 || texts[0] != "while away a" {
		t.Fatalf("resume after the crash: %v", texts)
	}
	all := a2.MustRequest("history", map[string]any{"room": general, "limit": 100})
	have := map[string]bool{}
	for _, m := range all.List("messages") {
		have[m.Str("id")] = true
	}
	for _, id := range acked {
		if !have[id] {
			t.Fatalf("acked message %s is lost", id)
		}
	}
}

// Redis restarts mid-conversation: nodes reconnect, every joined client
// gets a resync, resumes, and has every message once.
func TestClusterRedisRestarts(t *testing.T) {
	c := startCluster(t, 1)
	e1 := c.edges[0].View
	general := c.primary.General()
	alice, bob := c.primary.NewUser("Alice"), c.primary.NewUser("Bob")
	a := e1.Dial(alice)
	b := c.primary.Dial(bob)
	a.Join(general)
	b.Join(general)
	var last string
	for i := range 5 {
		last = b.Send(general, "before "+string(rune('a'+i))).Str("id")
	}
	for range 5 {
		a.WaitFor("message", func(f Frame) bool { return f.Type() == "message" })
	}
	c.redis.Kill()
	// Sends still commit and are acked while Redis is away; their
	// broadcasts are lost.
	for i := range 3 {
		b.Send(general, "during "+string(rune('a'+i)))
	}
	c.redis.Resume(t)
	a.WaitFor("resync", func(f Frame) bool { return f.Type() == "resync" && f.Str("room") == general })
	h := a.MustRequest("resume", map[string]any{"room": general, "after": last, "limit": 100})
	seen := map[string]int{}
	for _, m := range h.List("messages") {
		seen[m.Str("text")]++
	}
	for _, f := range a.Pending() {
		if f.Type() == "message" {
			seen[f.Obj("message").Str("text")]++
		}
	}
	for i := range 3 {
		if txt := "during " + string(rune('a'+i)); seen[txt] != 1 {
			t.Fatalf("%q seen %d times after the restart (%v)", txt, seen[txt], seen)
		}
	}
	b.Send(general, "after")
	a.ExpectMessage(general, "after")
}
