package e2e

import (
	"errors"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"pocketchat/internal/redistest"
)

const clusterSecret = "e2e-cluster-secret-0123456789"

// cluster is one primary and its edges on one Redis.
type cluster struct {
	redis   *redistest.Server
	primary *Server
	edges   []*edgeNode
	opts    clusterOptions
}

// edgeNode is a `pocketchat edge` process; View talks to the cluster
// through it (sockets to the edge, REST proxied to the primary).
type edgeNode struct {
	View *Server
	Addr string // host:port
	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}
}

func clusterEnv(url string) []string {
	return []string{"CHAT_REDIS_URL=" + url, "CHAT_CLUSTER_SECRET=" + clusterSecret, "CHAT_NODE_TTL=2s"}
}

func startCluster(t *testing.T, edges int) *cluster {
	return startClusterWith(t, edges, clusterOptions{})
}

// clusterOptions are more settings for a cluster's nodes.
type clusterOptions struct {
	primary  []Option
	edgeEnv  []string // after the cluster's own
	edgeArgs []string // after --primary and --http
}

func startClusterWith(t *testing.T, edges int, o clusterOptions) *cluster {
	t.Helper()
	c := &cluster{redis: redistest.Start(t), opts: o}
	c.primary = StartServer(t, append([]Option{WithEnv(clusterEnv(c.redis.URL)...)}, o.primary...)...)
	for range edges {
		c.edges = append(c.edges, c.startEdge(t))
	}
	return c
}

func (c *cluster) startEdge(t *testing.T) *edgeNode {
	t.Helper()
	addr := freeAddr(t)
	e := &edgeNode{Addr: addr, out: &syncBuffer{}, done: make(chan struct{})}
	e.cmd = exec.Command(binPath, append([]string{"edge", "--primary", c.primary.URL, "--http", addr}, c.opts.edgeArgs...)...)
	e.cmd.Env = append(append(os.Environ(), clusterEnv(c.redis.URL)...), c.opts.edgeEnv...)
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

// Stop stops the edge with SIGTERM, as systemd does, and waits for it.
func (e *edgeNode) Stop(t *testing.T) {
	t.Helper()
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.done:
	case <-time.After(waitTime):
		t.Fatalf("the edge did not stop after SIGTERM:\n%s", e.out.String())
	}
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

// An edge stopped on purpose closes its sockets with 1001 and takes its
// users offline at once: with heartbeats that expire only after five
// minutes, the others hear of it from the edge itself.
func TestClusterEdgeStops(t *testing.T) {
	slow := []string{"CHAT_NODE_TTL=5m"}
	c := startClusterWith(t, 1, clusterOptions{primary: []Option{WithEnv(slow...)}, edgeEnv: slow})
	general := c.primary.General()
	alice, bob := c.primary.NewUser("Alice"), c.primary.NewUser("Bob")
	b := c.primary.Dial(bob)
	b.Join(general)
	a := c.edges[0].View.Dial(alice)
	a.Join(general)
	b.WaitFor("alice online", func(f Frame) bool { return f.Type() == "presence" && f.Obj("user").Str("id") == alice.ID })
	a.Send(general, "leaving soon")
	c.edges[0].Stop(t)
	var ce *websocket.CloseError
	if err := a.WaitClosed(); !errors.As(err, &ce) || ce.Code != websocket.CloseGoingAway {
		t.Errorf("alice's socket closed with %v, want 1001", err)
	}
	b.WaitFor("alice offline", func(f Frame) bool {
		return f.Type() == "presence" && f.Obj("user").Str("id") == alice.ID && f.Str("status") == "offline"
	})
	probe := c.primary.Dial(nil)
	if got := onlineIDs(probe.Join(general)); !slices.Equal(got, []string{bob.ID}) {
		t.Errorf("online after the edge stopped: %v, want only bob", got)
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
	// Lost for good once the primary gives up publishing them (the Redis
	// client retries for a moment first).
	for deadline := time.Now().Add(waitTime); !strings.Contains(c.primary.Output(), "publishing through Redis failed"); time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the primary did not give up publishing:\n%s", c.primary.Output())
		}
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

// The documented cluster site, deploy/pocketchat-cluster.nginx.conf, in
// front of two edges and the primary: socket.io through nginx (its polls
// and upgrade stay on one edge) talks with native clients on both edges,
// so with one on another edge than its own; REST goes to the primary and
// reaches them all; the edges and the primary count clients' addresses,
// not nginx's or an edge's.
func TestClusterBehindNginx(t *testing.T) {
	c := startClusterWith(t, 2, clusterOptions{
		// What docs/deploy.md tells operators to set.
		primary:  []Option{WithSetting("$.trustedProxy.headers", []string{"X-Real-IP"})},
		edgeEnv:  []string{"CHAT_CONNS_PER_IP=3"},
		edgeArgs: []string{"--ip-header", "X-Real-IP"},
	})
	ng := startNginx(t, "pocketchat-cluster.nginx.conf", map[string]string{
		"127.0.0.1:8090": c.primary.Addr,
		"127.0.0.1:8091": c.edges[0].Addr,
		"127.0.0.1:8092": c.edges[1].Addr,
	})
	p := c.primary.Via(ng.url, ng.tls)
	general := p.General()
	alice, bob, carol := p.NewUser("Alice"), p.NewUser("Bob"), p.NewUser("Carol")

	sio := connectSocketIO(t, ng.url, ng.tls, carol.Token)
	a := c.edges[0].View.Dial(alice)
	b := c.edges[1].View.Dial(bob)
	a.Join(general)
	b.Join(general)
	sio.emit(fmt.Sprintf(`421["join",{"room":%q}]`, general))
	if f := sio.await("431"); !strings.Contains(f, general) {
		t.Fatalf("join ack: %q", f)
	}
	sio.emit(fmt.Sprintf(`422["send",{"room":%q,"text":"hello from socket.io"}]`, general))
	if f := sio.await("432"); !strings.Contains(f, "hello from socket.io") {
		t.Fatalf("send ack: %q", f)
	}
	a.ExpectMessage(general, "hello from socket.io")
	b.ExpectMessage(general, "hello from socket.io")
	for _, cl := range []struct {
		c    *Client
		text string
	}{{a, "hello from the first edge"}, {b, "hello from the second edge"}} {
		cl.c.Send(general, cl.text)
		sio.awaitMessage(cl.text)
	}

	code, _ := restCreateVia(p, carol.Token, map[string]any{"room": general, "author": carol.ID, "text": "hello from REST"})
	if code != http.StatusOK {
		t.Fatalf("REST create through nginx: %d", code)
	}
	a.ExpectMessage(general, "hello from REST")
	b.ExpectMessage(general, "hello from REST")
	sio.awaitMessage("hello from REST")

	// A client's connections all reach one edge, whose limit counts the
	// client's address (X-Real-IP), not nginx's, forged or not.
	for i := range 3 {
		if code := dialFrom(t, p, "127.0.0.2", alice.Token, nil); code != http.StatusSwitchingProtocols {
			t.Fatalf("connection %d from 127.0.0.2: %d", i+1, code)
		}
	}
	forged := http.Header{"X-Real-IP": {"127.0.0.9"}, "X-Forwarded-For": {"127.0.0.9"}}
	if code := dialFrom(t, p, "127.0.0.2", alice.Token, forged); code != http.StatusTooManyRequests {
		t.Errorf("fourth connection from 127.0.0.2 (claiming 127.0.0.9): %d, want 429", code)
	}
	if code := dialFrom(t, p, "127.0.0.3", alice.Token, nil); code != http.StatusSwitchingProtocols {
		t.Errorf("a connection from 127.0.0.3: %d, want 101", code)
	}

	// REST through an edge reaches the primary with the client's
	// address, which the primary logs (and rate-limits by).
	marker := "edge-proxy-" + alice.ID
	nd := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.6")}, Timeout: waitTime}
	from6 := &http.Client{Transport: &http.Transport{DialContext: nd.DialContext}, Timeout: waitTime}
	req, _ := http.NewRequest("GET", c.edges[0].View.URL+"/api/collections/rooms/records?perPage=1&"+marker+"=1", nil)
	req.Header.Set("Authorization", alice.Token)
	req.Header.Set("X-Real-IP", "127.0.0.9") // the edge trusts it only from its proxy: here, it is
	resp, err := from6.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("REST through an edge: %d", resp.StatusCode)
	}
	req, _ = http.NewRequest("GET", c.edges[1].View.URL+"/api/collections/rooms/records?perPage=1&"+marker+"=2", nil)
	req.Header.Set("Authorization", alice.Token)
	if resp, err = from6.Do(req); err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	want := map[string]string{marker + "=1": "127.0.0.9", marker + "=2": "127.0.0.6"}
	logged := map[string]string{}
	path := "/api/logs?perPage=10&filter=" + queryEscape(`data.url~'`+marker+`'`)
	for deadline := time.Now().Add(20 * time.Second); len(logged) < len(want); time.Sleep(200 * time.Millisecond) {
		var logs struct {
			Items []struct {
				Data struct {
					URL    string `json:"url"`
					UserIP string `json:"userIP"`
				} `json:"data"`
			} `json:"items"`
		}
		c.primary.MustDo("GET", path, c.primary.SuperToken(), nil, &logs)
		for _, it := range logs.Items {
			for k := range want {
				if strings.HasSuffix(it.Data.URL, k) {
					logged[k] = it.Data.UserIP
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the primary logged %v, want %v", logged, want)
		}
	}
	if !maps.Equal(logged, want) {
		t.Errorf("the primary saw clients at %v, want %v", logged, want)
	}
}

// Each edge serves its own /api/chat/metrics: its connections, not the
// primary's; to a scraper's token or a superuser the primary accepts.
func TestClusterEdgeMetrics(t *testing.T) {
	const token = "e2e-metrics-token-0123"
	c := startClusterWith(t, 1, clusterOptions{primary: []Option{WithEnv("CHAT_METRICS_TOKEN=" + token)}, edgeEnv: []string{"CHAT_METRICS_TOKEN=" + token}})
	e := c.edges[0].View
	general := c.primary.General()
	alice, bob := c.primary.NewUser("Alice"), c.primary.NewUser("Bob")
	a, b := e.Dial(alice), e.Dial(bob)
	a.Join(general)
	b.Join(general)
	a.Send(general, "counted")
	b.ExpectMessage(general, "counted")

	scrape := func(base, auth string) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("GET", base+"/api/chat/metrics", nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	sample := func(body, name string) string {
		for _, line := range strings.Split(body, "\n") {
			if v, ok := strings.CutPrefix(line, name+" "); ok {
				return v
			}
		}
		return "(none)"
	}
	const natives = `pocketchat_connections_open{transport="native"}`
	code, body := scrape(e.URL, "Bearer "+token)
	if code != http.StatusOK {
		t.Fatalf("edge metrics with the token: %d %s", code, body)
	}
	if got := sample(body, natives); got != "2" {
		t.Errorf("the edge's native connections: %s, want 2", got)
	}
	if got := sample(body, "pocketchat_deliveries_total"); got == "(none)" || got == "0" {
		t.Errorf("the edge's deliveries: %s", got)
	}
	if got := sample(body, "pocketchat_cluster_events_dropped_total"); got != "0" {
		t.Errorf("the edge's dropped events: %s, want 0", got)
	}
	if _, pbody := scrape(c.primary.URL, "Bearer "+token); sample(pbody, natives) != "0" {
		t.Errorf("the primary's native connections: %s, want 0", sample(pbody, natives))
	}
	if code, body := scrape(e.URL, c.primary.SuperToken()); code != http.StatusOK || sample(body, natives) != "2" {
		t.Errorf("edge metrics as a superuser: %d, %s connections", code, sample(body, natives))
	}
	if code, _ := scrape(e.URL, ""); code != http.StatusUnauthorized {
		t.Errorf("edge metrics without credentials: %d, want 401", code)
	}
	if code, _ := scrape(e.URL, alice.Token); code != http.StatusForbidden {
		t.Errorf("edge metrics as a user: %d, want 403", code)
	}
	if code, _ := scrape(e.URL, "Bearer wrong-token-0123456789"); code == http.StatusOK {
		t.Errorf("edge metrics with a wrong token: %d", code)
	}
}
