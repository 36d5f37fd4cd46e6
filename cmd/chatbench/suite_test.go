package main

import (
	"context"
	"strings"
	"testing"
	"time"
)

const testMicroOutput = `goos: linux
goarch: amd64
pkg: pocketchat/internal/hub
cpu: AMD EPYC
BenchmarkFanout/room=10-2         	  100000	      1200 ns/op	      64 B/op	       2 allocs/op
BenchmarkFanout/room=10-2         	  100000	      1000 ns/op	      64 B/op	       2 allocs/op
BenchmarkFanout/room=10-2         	  100000	      5000 ns/op	      64 B/op	       2 allocs/op
BenchmarkBroadcast-2   	    5000	    250000 ns/op	   4000000 deliveries/s	       0 B/op	       0 allocs/op
PASS
ok  	pocketchat/internal/hub	3.2s
pkg: pocketchat/internal/protocol
BenchmarkEncode-2   	 1000000	        85.5 ns/op
--- FAIL: BenchmarkBroken
`

func TestParseMicro(t *testing.T) {
	benches, err := parseMicro(strings.NewReader(testMicroOutput))
	if err != nil {
		t.Fatal(err)
	}
	if len(benches) != 3 {
		t.Fatalf("%d benchmarks, want 3: %+v", len(benches), benches)
	}
	fan := benches[0]
	if fan.Pkg != "pocketchat/internal/hub" || fan.Name != "BenchmarkFanout/room=10" || len(fan.Samples["ns/op"]) != 3 {
		t.Errorf("first: %+v", fan)
	}
	if got := median(fan.Samples["ns/op"]); got != 1200 {
		t.Errorf("median ns/op = %v, want 1200", got)
	}
	if benches[2].Pkg != "pocketchat/internal/protocol" || benches[2].Name != "BenchmarkEncode" {
		t.Errorf("third: %+v", benches[2])
	}
	if n := microRuns(benches); n != 3 {
		t.Errorf("microRuns = %d, want 3", n)
	}
	md := microMarkdown(benches)
	for _, want := range []string{
		"| `internal/hub` | `Fanout/room=10` | 1200 | 64 | 2 |  |",
		"| `internal/hub` | `Broadcast` | 250,000 | 0 | 0 | 4,000,000 deliveries/s |",
		"| `internal/protocol` | `Encode` | 85.5 | – | – |  |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("table lacks %q:\n%s", want, md)
		}
	}
}

func TestMedian(t *testing.T) {
	for _, tt := range []struct {
		xs   []float64
		want float64
	}{{nil, 0}, {[]float64{3}, 3}, {[]float64{3, 1, 2}, 2}, {[]float64{4, 1, 3, 2}, 2.5}} {
		if got := median(tt.xs); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.want)
		}
	}
}

func TestThousands(t *testing.T) {
	for _, tt := range []struct {
		v    float64
		prec int
		want string
	}{
		{0, 0, "0"}, {2000, 0, "2000"}, {19800, 0, "19,800"}, {1234567.891, 1, "1,234,567.9"},
		{-25000, 0, "-25,000"}, {100000, 0, "100,000"}, {12.5, 1, "12.5"},
	} {
		if got := thousands(tt.v, tt.prec); got != tt.want {
			t.Errorf("thousands(%v, %d) = %q, want %q", tt.v, tt.prec, got, tt.want)
		}
	}
}

func TestIdleConns(t *testing.T) {
	for limit, want := range map[int]int{20000: 19900, 1 << 20: 20000, 0: 20000, 5005: 4900} {
		if got := idleConns(limit); got != want {
			t.Errorf("idleConns(%d) = %d, want %d", limit, got, want)
		}
	}
}

// TestSuiteScenariosParse: every run of the suite is a valid scenario,
// within the bounds, and the idle one fits the open-files limit.
func TestSuiteScenariosParse(t *testing.T) {
	scs := suiteScenarios(20000)
	for _, r := range runsOf(scs) {
		cfg, err := parseConfig(append(r.args, "-spawn", "bin/pocketchat"), new(strings.Builder))
		if err != nil {
			t.Errorf("%s (%s): %v", r.sc.name, r.mode, err)
			continue
		}
		if r.sc.name == "idle" && (cfg.Conns != 19900 || cfg.Senders != 0 || cfg.Sources < 2) {
			t.Errorf("idle: %d connections, %d senders, %d sources", cfg.Conns, cfg.Senders, cfg.Sources)
		}
		if r.mode == ModeRealtime && r.sc.name == "tier-a" && (cfg.Inflight != 4 || cfg.Conns != 10000) {
			t.Errorf("tier-a on PocketBase: the override flags did not apply: %+v", cfg)
		}
	}
	if n := len(runsOf(scs)); n != 10 {
		t.Errorf("%d runs, want 10", n)
	}
}

func TestSelectScenarios(t *testing.T) {
	all := suiteScenarios(20000)
	got, err := selectScenarios(all, "idle, steady")
	if err != nil || len(got) != 2 || got[0].name != "steady" || got[1].name != "idle" {
		t.Errorf("selectScenarios(idle, steady) = %v, %v", got, err)
	}
	if got, err := selectScenarios(all, ""); err != nil || len(got) != len(all) {
		t.Errorf("selectScenarios(\"\") = %d scenarios, %v", len(got), err)
	}
	if _, err := selectScenarios(all, "steady,nope"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("selectScenarios(nope): err = %v", err)
	}
}

func TestVerdicts(t *testing.T) {
	sc := scenario{name: "x", targets: append([]target{p99Below(50)}, correctness()...), compare: true}
	nat := func(p99 float64, lost int64) *Result {
		r := &Result{PID: 1, ServerCPUSec: 1, DeliveriesPerCPUSec: 100_000, PersistedPerSec: 500, Planned: 10, Sent: 10}
		r.Delivery = Latency{Count: 10, P99: p99}
		r.Lost = lost
		r.Config.Rate = 1
		return r
	}
	pb := &Result{PID: 1, ServerCPUSec: 1, DeliveriesPerCPUSec: 100, PersistedPerSec: 50, Planned: 10, Sent: 3, Delivery: Latency{Count: 3, P99: 900}}
	d := &suiteDoc{results: map[string][]*Result{
		// The median p99 is 40 (met) though one run had 70; lost median 0.
		suiteKey("x", ModeNative):   {nat(40, 0), nat(70, 5), nat(30, 0)},
		suiteKey("x", ModeRealtime): {pb},
	}}
	want := map[string]string{
		"send→receive p99": "met", "lost deliveries": "met",
		"deliveries per server CPU-second vs PocketBase": "met",
		"persisted messages/s vs PocketBase":             "met",
		"send→receive p99 vs PocketBase":                 "met",
	}
	for _, v := range d.verdicts(sc) {
		if w, ok := want[v.label]; ok && v.word() != w {
			t.Errorf("%s: %s (%s), want %s", v.label, v.word(), v.got, w)
		}
	}
	// Both keeping up with a steady rate: messages/s says nothing.
	pb.Sent = 10
	for _, v := range d.verdicts(sc) {
		if v.label == "persisted messages/s vs PocketBase" && v.known {
			t.Errorf("persisted ratio judged though both kept up: %+v", v)
		}
	}
}

func TestBenchIndex(t *testing.T) {
	for _, i := range []int{0, 7, 99999} {
		if got, ok := benchIndex(benchEmail(i)); !ok || got != i {
			t.Errorf("benchIndex(%s) = %d, %v", benchEmail(i), got, ok)
		}
	}
	for _, e := range []string{"bench-1@bench.invalid", "bench-00001@example.com", "x-00001@bench.invalid", "bench-0000a@bench.invalid"} {
		if _, ok := benchIndex(e); ok {
			t.Errorf("benchIndex(%s) accepted", e)
		}
	}
}

func TestParseMetrics(t *testing.T) {
	m := parseMetrics([]byte(`# HELP go_goroutines Number of goroutines.
# TYPE go_goroutines gauge
go_goroutines 23
go_memstats_heap_inuse_bytes 4.448256e+06
pocketchat_slow_client_drops_total{transport="native"} 2
pocketchat_slow_client_drops_total{transport="socketio"} 1
pocketchat_commit_batch_size_sum 120 1700000000000
odd{a="}"} 5
`))
	for name, want := range map[string]float64{
		"go_goroutines": 23, "go_memstats_heap_inuse_bytes": 4448256,
		"pocketchat_slow_client_drops_total": 3, "pocketchat_commit_batch_size_sum": 120, "odd": 5,
	} {
		if m[name] != want {
			t.Errorf("%s = %v, want %v", name, m[name], want)
		}
	}
}

func TestStamp(t *testing.T) {
	b := &bench{epoch: time.Now().Add(-time.Minute)}
	now := b.now()
	if got := b.stamp(now - int64(time.Millisecond)); got < now {
		t.Errorf("1 ms late: stamped %d, want the send time (≥ %d)", got, now)
	}
	late := now - int64(time.Second)
	if got := b.stamp(late); got != late {
		t.Errorf("1 s late: stamped %d, want the due time %d", got, late)
	}
}

func TestInflightSlots(t *testing.T) {
	b := &bench{slots: make(chan struct{}, 2)}
	ctx := context.Background()
	soon := func() time.Time { return time.Now().Add(20 * time.Millisecond) }
	if !b.acquire(ctx, soon()) || !b.acquire(ctx, soon()) {
		t.Fatal("the first two slots were refused")
	}
	if b.acquire(ctx, soon()) {
		t.Fatal("a third slot with two in flight")
	}
	b.release(1)
	if !b.acquire(ctx, soon()) {
		t.Fatal("no slot after a release")
	}
	b.release(5) // more than taken: must not block
	if len(b.slots) != 0 {
		t.Errorf("%d slots taken after releasing all", len(b.slots))
	}
	done := make(chan bool)
	b.acquire(ctx, soon())
	b.acquire(ctx, soon())
	go func() { done <- b.acquire(ctx, time.Now().Add(5*time.Second)) }()
	time.Sleep(10 * time.Millisecond)
	b.release(1)
	if !<-done {
		t.Error("a waiting sender did not get the freed slot")
	}
	var none bench // no -inflight: never waits
	if !none.acquire(ctx, time.Now()) {
		t.Error("acquire without a limit refused")
	}
	none.release(3)
}

func TestMergeArgs(t *testing.T) {
	base := []string{"-name", "x", "-duration", "60s", "-inflight", "2000"}
	got := mergeArgs(base, []string{"-duration", "20s", "-drain", "30s"})
	want := "-name x -duration 20s -inflight 2000 -drain 30s"
	if strings.Join(got, " ") != want {
		t.Errorf("mergeArgs = %q, want %q", strings.Join(got, " "), want)
	}
	if strings.Join(base, " ") != "-name x -duration 60s -inflight 2000" {
		t.Errorf("base changed: %q", base)
	}
}
