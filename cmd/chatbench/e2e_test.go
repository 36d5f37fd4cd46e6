package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// serverBin is the pocketchat binary built once for the end-to-end test.
var serverBin string

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Dir(filepath.Dir(filepath.Dir(file)))
		dir, err := os.MkdirTemp("", "chatbench-test-bin")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		defer os.RemoveAll(dir)
		serverBin = filepath.Join(dir, "pocketchat")
		build := exec.Command("go", "build", "-o", serverBin, ".")
		build.Dir = root
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "building pocketchat:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// TestEndToEnd runs a tiny scenario in both modes against the real server,
// and natively against a real cluster (redis-server, the primary, two
// edges), and checks the accounting: every acked message stored and
// delivered once, in order, to every connection of its room. No timing
// is checked.
func TestEndToEnd(t *testing.T) {
	dir := t.TempDir()
	cache := newUserCache() // later runs reuse the first one's sign-ins
	for _, name := range []string{ModeNative, ModeRealtime, kindCluster} {
		mode, edges := name, "0"
		if name == kindCluster {
			mode, edges = ModeNative, "2"
		}
		t.Run(name, func(t *testing.T) {
			// 3 rooms × 3 members, one sender per room, 7 messages each:
			// 21 messages, 63 deliveries. Two source addresses.
			//
			// Natively the 7 go as a burst (pipelined on the socket).
			// PocketBase's realtime hands every event to every client on
			// a goroutine of its own, so a burst may arrive out of order
			// (the tool counts that; the suite shows it): there the
			// messages are paced, 100 ms apart.
			// At most 2 messages in flight, so senders wait for slots
			// and answers free them.
			pace := []string{"-burst", "7", "-inflight", "2"}
			if mode == ModeRealtime {
				pace = []string{"-rate", "10", "-duration", "700ms"}
			}
			cfg, err := parseConfig(append([]string{
				"-mode", mode, "-spawn", serverBin, "-spawn-dir", dir,
				"-rooms", "3", "-members", "3", "-senders", "1",
				"-sources", "2", "-drain", "10s", "-timeout", "2m", "-spawn-edges", edges,
			}, pace...), os.Stderr)
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
			defer cancel()
			res, err := run(ctx, cfg, t.Logf, cache)
			if err != nil {
				t.Fatal(err)
			}
			var sb strings.Builder
			printResult(&sb, res)
			t.Log(sb.String())

			checks := []struct {
				name      string
				got, want int64
			}{
				{"connections held", int64(res.ConnsHeld), 9},
				{"planned", res.Planned, 21},
				{"sent", res.Sent, 21},
				{"acked", res.Acked, 21},
				{"persisted", res.Persisted, res.Acked},
				{"expected deliveries", res.Expected, 63},
				{"received", res.Received, 63},
				{"lost", res.Lost, 0},
				{"duplicated", res.Duplicated, 0},
				{"out of order", res.OutOfOrder, 0},
				{"unacked arrivals", res.Unacked, 0},
				{"foreign arrivals", res.Foreign, 0},
				{"connections dropped", int64(res.ConnsDropped), 0},
				{"send errors", res.Failed, 0},
				{"delivery latencies", res.Delivery.Count, 63},
				{"ack latencies", res.Ack.Count, 21},
			}
			for _, c := range checks {
				if c.got != c.want {
					t.Errorf("%s = %d, want %d", c.name, c.got, c.want)
				}
			}
			if res.PID == 0 || res.ServerCPUSec < 0 {
				t.Errorf("no server process figures: pid %d, cpu %v", res.PID, res.ServerCPUSec)
			}
			if name != kindCluster {
				return
			}
			// Every process is measured, and the edges' metrics (read with
			// the superuser's token, which they check with the primary)
			// are in. (A run this small may take under a clock tick of
			// CPU on a process: the figures are not compared to zero.)
			for _, role := range []string{rolePrimary, roleEdges, roleRedis} {
				if _, ok := res.CPUByRole[role]; !ok {
					t.Errorf("no CPU figure for the %s: %v", role, res.CPUByRole)
				}
			}
			if res.Server == nil || res.HeapAfterKB == 0 || res.RSSAfterKB == 0 {
				t.Errorf("no figures from the edges: server metrics %v, heap %d kB, RSS %d kB", res.Server, res.HeapAfterKB, res.RSSAfterKB)
			}
		})
	}
}

// TestEndToEndIdle: connections that only sit, from two source
// addresses, are held and measured.
func TestEndToEndIdle(t *testing.T) {
	cfg, err := parseConfig([]string{
		"-spawn", serverBin, "-rooms", "2", "-members", "3", "-senders", "0",
		"-duration", "300ms", "-sources", "2", "-timeout", "2m",
	}, os.Stderr)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	res, err := run(ctx, cfg, t.Logf, nil)
	if err != nil {
		t.Fatal(err)
	}
	if res.ConnsHeld != 6 || res.ConnsDropped != 0 || res.SourcesUsed != 2 || res.Planned != 0 || res.Received != 0 {
		t.Errorf("held %d, dropped %d, sources %d, planned %d, received %d; want 6, 0, 2, 0, 0",
			res.ConnsHeld, res.ConnsDropped, res.SourcesUsed, res.Planned, res.Received)
	}
	if res.RSSAfterKB == 0 || res.MeasuredSec < 0.3 {
		t.Errorf("no memory figure (RSS %d kB) or a short hold (%.2f s)", res.RSSAfterKB, res.MeasuredSec)
	}
}

// TestRefusesOtherHosts: only the loopback addresses are targets.
func TestRefusesOtherHosts(t *testing.T) {
	tests := []struct {
		url  string
		want string // the base URL, or "" for a refusal
	}{
		{"http://127.0.0.1:8090", "http://127.0.0.1:8090"},
		{"http://127.0.0.1:8090/", "http://127.0.0.1:8090"},
		{"http://localhost:8090", "http://127.0.0.1:8090"},
		{"http://[::1]:8090", "http://[::1]:8090"},
		{"http://10.0.0.1:8090", ""},
		{"http://127.0.0.2:8090", ""},
		{"http://example.com:8090", ""},
		{"http://0.0.0.0:8090", ""},
		{"https://127.0.0.1:8090", ""},
		{"http://127.0.0.1", ""},
		{"http://127.0.0.1:8090/api", ""},
		{"http://user:pw@127.0.0.1:8090", ""},
	}
	for _, tt := range tests {
		got, err := loopbackBase(tt.url)
		if tt.want == "" {
			if err == nil {
				t.Errorf("loopbackBase(%q) = %q, want a refusal", tt.url, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("loopbackBase(%q) = %q, %v; want %q", tt.url, got, err, tt.want)
		}
	}
}

func TestConfigBounds(t *testing.T) {
	tests := []struct {
		args []string
		ok   bool
	}{
		{[]string{}, true},
		{[]string{"-mode", "pocketbase-realtime", "-burst", "5"}, true},
		{[]string{"-mode", "sse"}, false},
		{[]string{"-rooms", "0"}, false},
		{[]string{"-members", "20000"}, false},
		{[]string{"-users", "3", "-members", "10"}, false},
		{[]string{"-senders", "11"}, false},
		{[]string{"-rate", "0"}, false},
		{[]string{"-duration", "1h"}, false},
		{[]string{"-burst", "100000"}, false},
		{[]string{"-rooms", "1000", "-members", "100", "-conns", "100000", "-sources", "1"}, false},
		{[]string{"-rooms", "1000", "-members", "100", "-conns", "100000"}, true}, // picks -sources
		{[]string{"-url", "http://192.168.1.1:8090"}, false},
		{[]string{"-rooms", "100", "-members", "1000", "-senders", "100", "-burst", "1000"}, false},
		{[]string{"-senders", "0", "-duration", "5s"}, true}, // idle
		{[]string{"-senders", "0", "-duration", "0s"}, false},
		{[]string{"-inflight", "-1"}, false},
		{[]string{"-signup-cost", "3"}, false},
		{[]string{"-signup-cost", "0"}, true},
		{[]string{"-spawn", "bin/pocketchat", "-spawn-edges", "2"}, true},
		{[]string{"-spawn-edges", "2"}, false}, // a cluster the tool starts only
		{[]string{"-spawn", "bin/pocketchat", "-spawn-edges", "9"}, false},
		{[]string{"-spawn", "bin/pocketchat", "-spawn-edges", "-1"}, false},
		{[]string{"-spawn", "bin/pocketchat", "-spawn-edges", "2", "-mode", "pocketbase-realtime"}, false},
	}
	for _, tt := range tests {
		_, err := parseConfig(tt.args, new(strings.Builder))
		if (err == nil) != tt.ok {
			t.Errorf("parseConfig(%q): err = %v, want ok = %v", tt.args, err, tt.ok)
		}
	}
}

func TestParseStatTicks(t *testing.T) {
	stat := []byte("1234 (pocket chat) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9 0 100 0 0")
	got, err := parseStatTicks(stat)
	if err != nil || got != 325 {
		t.Errorf("parseStatTicks = %d, %v; want 325", got, err)
	}
	if _, err := parseStatTicks([]byte("garbage")); err == nil {
		t.Error("parseStatTicks(garbage): no error")
	}
}

func TestListeningInodes(t *testing.T) {
	table := []byte(`  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F9A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 11111 1 0 100 0 0 10 0
   1: 0100007F:1F9A 0100007F:D431 01 00000000:00000000 00:00000000 00000000     0        0 22222 1 0 20 4 30 10 -1
   2: 0100007F:1F9B 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 33333 1 0 100 0 0 10 0
`)
	got := listeningInodes(table, 8090)
	if len(got) != 1 || got[0] != "11111" {
		t.Errorf("listeningInodes = %v, want [11111]", got)
	}
}

func TestParseCPUStat(t *testing.T) {
	got, err := parseCPUStat("cpu  100 5 50 9000 40 3 2 1 0 0")
	if err != nil || got != (cpuStat{Busy: 161, SoftIRQ: 2, Steal: 1}) {
		t.Errorf("parseCPUStat = %+v, %v; want busy 161, softirq 2, steal 1", got, err)
	}
	if _, err := parseCPUStat("cpu0 1 2"); err == nil {
		t.Error("parseCPUStat(short line): no error")
	}
}

// TestWSURLSpreadsRooms: in a cluster every room has members on each
// edge, so its deliveries cross Redis; on one node every connection goes
// to the server.
func TestWSURLSpreadsRooms(t *testing.T) {
	b := &bench{cfg: Config{Rooms: 3}, base: "http://127.0.0.1:9000"}
	if got := b.wsURL(&conn{idx: 4}); got != "ws://127.0.0.1:9000/api/chat/ws" {
		t.Errorf("one node: %s", got)
	}
	b.edges = []string{"http://127.0.0.1:9001", "http://127.0.0.1:9002"}
	edgesOf := map[int]map[string]bool{}
	for k := range 12 { // 3 rooms × 4 members; connection k is in room k mod 3
		room := k % 3
		if edgesOf[room] == nil {
			edgesOf[room] = map[string]bool{}
		}
		edgesOf[room][b.wsURL(&conn{idx: k, room: room})] = true
	}
	for room, edges := range edgesOf {
		if len(edges) != 2 {
			t.Errorf("room %d is on %d edge(s): %v", room, len(edges), edges)
		}
	}
}
