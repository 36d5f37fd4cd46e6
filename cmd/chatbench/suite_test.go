package main

import (
	"context"
	"math"
	"slices"
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
		if wantEdges := map[bool]int{true: clusterEdges}[r.mode == kindCluster]; cfg.Edges != wantEdges || cfg.Mode != ModeNative && r.mode == kindCluster {
			t.Errorf("%s (%s): %d edges, mode %s", r.sc.name, r.mode, cfg.Edges, cfg.Mode)
		}
	}
	// Every scenario natively and on a cluster; four on PocketBase too.
	if n := len(runsOf(scs)); n != 16 {
		t.Errorf("%d runs, want 16", n)
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

// TestLeverRuns: each lever is a before and an after run of a valid
// scenario, the server's environment on the command line, the JSON files
// apart from the scenarios'.
func TestLeverRuns(t *testing.T) {
	lvs := suiteLevers(20000)
	runs := leverRunsOf(lvs)
	if len(runs) != 2*len(lvs) || len(lvs) != 5 {
		t.Fatalf("%d runs of %d levers, want 10 of 5", len(runs), len(lvs))
	}
	spawnArgs := []string{"-spawn", "bin/pocketchat", "-spawn-hooks", "pb_hooks"}
	for i, r := range runs {
		wantSide := []string{leverBefore, leverAfter}[i%2]
		if r.side != wantSide || r.lv.name != lvs[i/2].name {
			t.Errorf("run %d: %s %s, want %s %s", i, r.lv.name, r.side, lvs[i/2].name, wantSide)
		}
		cfg, err := parseConfig(r.commandArgs(spawnArgs), new(strings.Builder))
		if err != nil {
			t.Errorf("%s %s: %v", r.lv.name, r.side, err)
			continue
		}
		if cfg.Mode != ModeNative || cfg.Name != "lever-"+r.lv.name+"-"+r.side || cfg.SpawnHooks != "pb_hooks" {
			t.Errorf("%s %s: mode %s, name %q, hooks %q", r.lv.name, r.side, cfg.Mode, cfg.Name, cfg.SpawnHooks)
		}
		wantEnv := r.lv.before
		if r.side == leverAfter {
			wantEnv = r.lv.after
		}
		if strings.Join(cfg.SpawnEnv, " ") != strings.Join(wantEnv, " ") {
			t.Errorf("%s %s: server environment %q, want %q", r.lv.name, r.side, cfg.SpawnEnv, wantEnv)
		}
		if r.side == leverBefore && len(cfg.SpawnEnv) == 0 {
			t.Errorf("%s: the before run sets nothing", r.lv.name)
		}
		if len(r.lv.figures) == 0 {
			t.Errorf("%s: no figures", r.lv.name)
		}
	}
	cfgOf := func(name, side string) Config {
		for _, r := range runs {
			if r.lv.name == name && r.side == side {
				cfg, _ := parseConfig(r.commandArgs(spawnArgs), new(strings.Builder))
				return cfg
			}
		}
		t.Fatalf("no run %s %s", name, side)
		return Config{}
	}
	if c := cfgOf("group-commit", leverBefore); c.Rate != 25 || c.Inflight != 5000 || c.Rooms != 200 ||
		strings.Join(c.SpawnEnv, " ") != "CHAT_COMMIT_BATCH=1" {
		t.Errorf("group-commit before: %+v", c)
	}
	if c := cfgOf("wal-checkpoint", leverAfter); c.Conns != 10000 || c.Duration != 30*time.Second || len(c.SpawnEnv) != 0 {
		t.Errorf("wal-checkpoint after: %+v", c)
	}
	if c := cfgOf("epoll", leverBefore); c.Conns != 5000 || c.Users != 5000 || c.Senders != 0 || c.SpawnEnv[0] != "CHAT_WS_POLL=false" {
		t.Errorf("epoll before: %+v", c)
	}
	// A low open-files limit shrinks the idle lever as it does the idle
	// scenario.
	for _, lv := range suiteLevers(3005) {
		if lv.name == "epoll" && !slices.Contains(lv.args, "2900") {
			t.Errorf("epoll under a limit of 3005: %q", lv.args)
		}
	}

	paths := map[string]string{}
	add := func(p, what string) {
		if prev, ok := paths[p]; ok {
			t.Errorf("%s and %s both write %s", prev, what, p)
		}
		paths[p] = what
	}
	for rep := range 3 {
		for _, r := range runsOf(suiteScenarios(20000)) {
			add(suiteJSONPath("d", r.sc.name, r.mode, rep), r.sc.name+" "+r.mode)
		}
		for _, r := range runs {
			p := leverJSONPath("d", r.lv.name, r.side, rep)
			if !strings.HasPrefix(p, "d/lever-") {
				t.Errorf("lever file %s", p)
			}
			add(p, "lever "+r.lv.name+" "+r.side)
		}
	}
	if keys := strings.Join(leverEnvKeys(lvs), " "); keys != "CHAT_CHECKPOINT_EVERY CHAT_COMMIT_BATCH CHAT_WORDFILTER CHAT_WS_POLL CHAT_PRESENCE_LIMIT" {
		t.Errorf("leverEnvKeys = %s", keys)
	}
	env := map[string]string{"CHAT_COMMIT_BATCH": "64"}
	if err := checkLeverEnv(lvs, func(k string) string { return env[k] }); err == nil || !strings.Contains(err.Error(), "CHAT_COMMIT_BATCH=64") {
		t.Errorf("checkLeverEnv with CHAT_COMMIT_BATCH set: %v", err)
	}
	if err := checkLeverEnv(lvs, func(string) string { return "" }); err != nil {
		t.Errorf("checkLeverEnv, nothing set: %v", err)
	}
}

func TestSelectRuns(t *testing.T) {
	scs, lvs := suiteScenarios(20000), suiteLevers(20000)
	names := func(s []scenario, l []lever) string {
		var out []string
		for _, sc := range s {
			out = append(out, sc.name)
		}
		for _, lv := range l {
			out = append(out, "lever:"+lv.name)
		}
		return strings.Join(out, ",")
	}
	for _, tt := range []struct {
		only   string
		levers bool
		want   string // or the error's text
		err    bool
	}{
		{"", true, "steady,burst,tier-a,tier-b,fanout,idle,lever:wal-checkpoint,lever:group-commit,lever:js-hook,lever:epoll,lever:presence", false},
		{"", false, "steady,burst,tier-a,tier-b,fanout,idle", false},
		{"lever:presence, steady ,lever:group-commit", true, "steady,lever:group-commit,lever:presence", false},
		{"levers", true, "lever:wal-checkpoint,lever:group-commit,lever:js-hook,lever:epoll,lever:presence", false},
		{"idle", true, "idle", false},
		{"lever:nope", true, "nope", true},
		{"nope", true, "nope", true},
		{"lever:epoll", false, "-levers=false", true},
	} {
		s, l, err := selectRuns(scs, lvs, tt.only, tt.levers)
		switch {
		case tt.err && (err == nil || !strings.Contains(err.Error(), tt.want)):
			t.Errorf("selectRuns(%q, %v): err = %v, want one about %q", tt.only, tt.levers, err, tt.want)
		case !tt.err && err != nil:
			t.Errorf("selectRuns(%q, %v): %v", tt.only, tt.levers, err)
		case !tt.err && names(s, l) != tt.want:
			t.Errorf("selectRuns(%q, %v) = %s, want %s", tt.only, tt.levers, names(s, l), tt.want)
		}
	}
}

func TestSpawnEnvFlag(t *testing.T) {
	cfg, err := parseConfig([]string{"-spawn", "bin/pocketchat", "-spawn-env", "CHAT_COMMIT_BATCH=1",
		"-spawn-env", "CHAT_WORDFILTER=", "-spawn-env", "X_2=a=b c"}, new(strings.Builder))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(cfg.SpawnEnv, "|"); got != "CHAT_COMMIT_BATCH=1|CHAT_WORDFILTER=|X_2=a=b c" {
		t.Errorf("SpawnEnv = %q", cfg.SpawnEnv)
	}
	for _, bad := range []string{"CHAT_COMMIT_BATCH", "=1", "1A=x", "A-B=x", "A B=x", "é=x", "A=x\x00y", ""} {
		if _, err := parseConfig([]string{"-spawn", "bin/pocketchat", "-spawn-env", bad}, new(strings.Builder)); err == nil {
			t.Errorf("-spawn-env %q accepted", bad)
		}
	}
	if _, err := parseConfig([]string{"-spawn-env", "A=1"}, new(strings.Builder)); err == nil || !strings.Contains(err.Error(), "needs -spawn") {
		t.Errorf("-spawn-env without -spawn: %v", err)
	}
	// A Config built in code is checked too.
	c := Config{Spawn: "bin/pocketchat", SpawnEnv: []string{"no shape"}}
	c.Mode, c.Rooms, c.Members, c.Senders, c.Rate, c.Duration, c.Timeout, c.AuthWorkers, c.DialWorkers = ModeNative, 1, 1, 1, 1, time.Second, time.Minute, 1, 1
	c.fill()
	if err := c.validate(); err == nil || !strings.Contains(err.Error(), "KEY=VALUE") {
		t.Errorf("validate with a bad SpawnEnv: %v", err)
	}
}

// leverResult is a synthetic result of a lever run, as the suite would
// have it.
func leverResult(t *testing.T, r leverRun, persistedPerSec, ackP99 float64, commits float64) *Result {
	t.Helper()
	spawnArgs := []string{"-spawn", "bin/pocketchat", "-spawn-hooks", "pb_hooks"}
	args := r.commandArgs(spawnArgs)
	cfg, err := parseConfig(args, new(strings.Builder))
	if err != nil {
		t.Fatal(err)
	}
	res := &Result{Name: cfg.Name, Mode: cfg.Mode, Config: cfg, PID: 42, Started: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC),
		Command: "bin/chatbench " + strings.Join(args, " "), ConnsHeld: cfg.Conns,
		Planned: 100_000, Sent: 100_000, Acked: 100_000, Persisted: 100_000,
		PersistedPerSec: persistedPerSec, ServerCPUSec: 100_000 / persistedPerSec,
		Server: &serverMetrics{Commits: commits, CommittedMsgs: 100_000}}
	res.Machine.CPUs = 2
	res.Ack.P99 = ackP99
	return res
}

// TestLeversMarkdown renders the levers' section from synthetic results,
// directly and through JSON files as -from-json reads them.
func TestLeversMarkdown(t *testing.T) {
	var gc lever
	for _, lv := range suiteLevers(20000) {
		if lv.name == "group-commit" {
			gc = lv
		}
	}
	runs := leverRunsOf([]lever{gc})
	before, after := runs[0], runs[1]
	d := &suiteDoc{results: map[string][]*Result{}, levers: []lever{gc}, leverRepeat: 3, leverResults: map[string][]*Result{
		// Medians: 2000 persisted/s, 400 ms p99, 100,000 commits (1 per
		// commit), 50 s of CPU (0.5 s per 1,000).
		leverKey(gc.name, leverBefore): {
			leverResult(t, before, 2000, 500, 100_000), leverResult(t, before, 1000, 400, 100_000), leverResult(t, before, 4000, 10, 100_000),
		},
		// 5000/s, 20 ms, 20 s (0.2 s per 1,000), 100 per commit.
		leverKey(gc.name, leverAfter): {
			leverResult(t, after, 5000, 20, 1000), leverResult(t, after, 5000, 30, 1000), leverResult(t, after, 6000, 15, 1000),
		},
	}}
	d.leverResults[leverKey(gc.name, leverBefore)][1].Lost = 3
	md := d.markdown()
	t.Log("\n" + md)
	for _, want := range []string{
		"## Levers: before and after",
		"### Group commit",
		"alternate, 3 times each",
		"# before\nbin/chatbench -spawn bin/pocketchat -spawn-hooks pb_hooks -spawn-env CHAT_COMMIT_BATCH=1 -mode native -name lever-group-commit-before -rooms 200",
		"# after\nbin/chatbench -spawn bin/pocketchat -spawn-hooks pb_hooks -mode native -name lever-group-commit-after -rooms 200",
		"| figure | before (`CHAT_COMMIT_BATCH=1`) | after (defaults) | after / before | better |",
		"| persisted messages/s | 2000.0 | 5000.0 | 2.50 | higher |",
		"| send→ack p99 | 400.0 ms | 20.0 ms | 0.050 | lower |",
		"| server CPU per 1,000 persisted messages | 0.500 s | 0.200 s | 0.40 | lower |",
		"| messages per commit (server) | 1.0 | 100.0 | – | – |",
		"- before, run 2: deliveries lost: 3, duplicated: 0, out of order: 0",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("document lacks %q", want)
		}
	}
	if strings.Contains(md, "No results") || strings.Contains(md, "## Targets") {
		t.Error("a document of levers only: no results, or targets of no scenario")
	}
	if strings.Contains(md, "delivered every acked message once") {
		t.Error("a run lost deliveries, yet the document says every run delivered everything")
	}
	how, lev, fig := strings.Index(md, "## How it was run"), strings.Index(md, "## Levers"), strings.Index(md, "## What the figures mean")
	if !(how >= 0 && how < lev && lev < fig) {
		t.Errorf("sections out of place: how it was run %d, levers %d, figures %d", how, lev, fig)
	}

	// Through JSON, as -json-dir keeps them and -from-json reads them.
	dir := t.TempDir()
	for _, side := range []string{leverBefore, leverAfter} {
		for rep, r := range d.leverResults[leverKey(gc.name, side)] {
			if err := writeJSON(leverJSONPath(dir, gc.name, side, rep), r); err != nil {
				t.Fatal(err)
			}
		}
	}
	back := &suiteDoc{results: map[string][]*Result{}, levers: []lever{gc}, leverResults: map[string][]*Result{}}
	if err := back.readLeverJSON(dir); err != nil {
		t.Fatal(err)
	}
	if back.leverRepeat != 3 || len(back.leverResults[leverKey(gc.name, leverAfter)]) != 3 {
		t.Errorf("read back %d repeats", back.leverRepeat)
	}
	if got := back.markdown(); got != md {
		t.Errorf("the document from JSON differs:\n%s", got)
	}
	if r := back.leverResults[leverKey(gc.name, leverBefore)][0]; strings.Join(r.Config.SpawnEnv, " ") != "CHAT_COMMIT_BATCH=1" {
		t.Errorf("the server environment did not survive JSON: %q", r.Config.SpawnEnv)
	}
	// A lever whose files are missing is an error, with the way out.
	other := &suiteDoc{results: map[string][]*Result{}, levers: suiteLevers(20000)[:1], leverResults: map[string][]*Result{}}
	if err := other.readLeverJSON(dir); err == nil || !strings.Contains(err.Error(), "-levers=false") {
		t.Errorf("missing lever files: %v", err)
	}
}

// A scenario's analysis follows its figures and targets in the document.
func TestScenarioAnalysisRendered(t *testing.T) {
	var tierB scenario
	for _, sc := range suiteScenarios(20_000) {
		if sc.name == "tier-b" {
			tierB = sc
		}
	}
	if tierB.analysis == "" {
		t.Fatal("tier-b has no analysis")
	}
	r := &Result{PID: 1, ServerCPUSec: 1, DeliveriesPerCPUSec: 1000, Planned: 10, Sent: 10}
	r.Delivery = Latency{Count: 10, P99: 5}
	d := &suiteDoc{scenarios: []scenario{tierB}, repeat: 1, results: map[string][]*Result{suiteKey("tier-b", ModeNative): {r}}}
	md := d.markdown()
	i, j := strings.Index(md, "Targets:\n"), strings.Index(md, tierB.analysis)
	if j < 0 || i < 0 || j < i {
		t.Errorf("analysis missing or before the targets (targets at %d, analysis at %d)", i, j)
	}
}

// clusterResult is a cluster run of a scenario with the given work and
// CPU time by role.
func clusterResult(senders int, msgs, deliveries int64, sec, primary, edges, redis float64) *Result {
	r := &Result{PID: 1, Persisted: msgs, Acked: msgs, MeasuredSec: sec, ConnsHeld: 100, RSSBeforeKB: 1000, RSSAfterKB: 1500, MemPerConnKB: 5}
	r.Config.Senders, r.Config.Edges = senders, 2
	r.Received = deliveries
	r.ServerCPUSec = primary + edges + redis
	r.CPUByRole = map[string]float64{rolePrimary: primary, roleEdges: edges, roleRedis: redis}
	r.Machine.CPUs = 2
	return r
}

// TestFitEdges: the fit finds the cost per message and per delivery the
// runs were made of, background taken out, and says when it cannot.
func TestFitEdges(t *testing.T) {
	const a, b, bg = 20e-6, 3e-6, 0.05 // per message (all edges), per delivery, per second
	mk := func(msgs, deliveries, sec float64) clusterCosts {
		return clusterCosts{messages: msgs, deliver: deliveries, sec: sec, edges: a*msgs + b*deliveries + bg*sec}
	}
	cs := []clusterCosts{mk(120_000, 1_200_000, 60), mk(500, 2_500_000, 10), mk(2000, 20_000, 20)}
	gotA, gotB, ok := fitEdges(cs, background{edges: bg})
	if !ok || math.Abs(gotA-a) > 1e-9 || math.Abs(gotB-b) > 1e-9 {
		t.Errorf("fitEdges = %g, %g, %v; want %g, %g, true", gotA, gotB, ok, a, b)
	}
	// Every run with 10 deliveries a message: the two costs cannot be told apart.
	if _, _, ok := fitEdges([]clusterCosts{mk(1000, 10_000, 10), mk(5000, 50_000, 10)}, background{edges: bg}); ok {
		t.Error("fitEdges separated costs from proportional runs")
	}
	if _, _, ok := fitEdges(cs[:1], background{}); ok {
		t.Error("fitEdges fitted two costs to one run")
	}
}

// TestClusterMarkdown: with cluster runs the tables get the cluster's
// column and ratio, its correctness targets, and the Scaling out
// section its estimates; without them, none of it.
func TestClusterMarkdown(t *testing.T) {
	scs := suiteScenarios(20000)
	var picked []scenario
	for _, sc := range scs {
		if sc.name == "tier-a" || sc.name == "fanout" || sc.name == "idle" {
			picked = append(picked, sc)
		}
	}
	one := func(senders int, msgs, deliveries int64, cpu float64) *Result {
		r := &Result{Mode: ModeNative, PID: 1, Persisted: msgs, Acked: msgs, ServerCPUSec: cpu, MeasuredSec: 60, ConnsHeld: 100}
		r.Config.Senders = senders
		r.Received = deliveries
		r.CPUByRole = map[string]float64{rolePrimary: cpu}
		r.Machine.CPUs = 2
		return r
	}
	d := &suiteDoc{scenarios: picked, repeat: 1, results: map[string][]*Result{
		suiteKey("tier-a", ModeNative):   {one(1, 120_000, 1_200_000, 70)},
		suiteKey("tier-a", kindCluster):  {clusterResult(1, 120_000, 1_200_000, 60, 48, 45, 1.2)},
		suiteKey("fanout", ModeNative):   {one(5, 500, 2_500_000, 4)},
		suiteKey("fanout", kindCluster):  {clusterResult(5, 500, 2_500_000, 12, 1, 9, 0.1)},
		suiteKey("idle", ModeNative):     {one(0, 0, 0, 1)},
		suiteKey("idle", kindCluster):    {clusterResult(0, 0, 0, 15, 0.3, 0.6, 0.15)},
		suiteKey("tier-a", ModeRealtime): {one(1, 1000, 10_000, 60)},
	}}
	md := d.markdown()
	for _, want := range []string{
		"| pocketchat cluster (Redis, primary, 2 edges) |",
		"| cluster / one node |",
		"| edges' CPU (measured phase) | n/a | n/a | 45.00 s |",
		"| tier-a | cluster: lost deliveries | = 0 | 0 | met |",
		"## Scaling out",
		"per delivery plus",
		"The first of these to bind is",
		"-spawn-edges 2",
		"The micro-benchmark that\n  measures that alone did not run",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("the document lacks %q", want)
		}
	}
	// With the micro-benchmark of hearing, the edges' limit is read from it.
	d.micro = []*microBench{{Pkg: "pocketchat/internal/cluster", Name: "BenchmarkBrokerHear/members=0",
		Units: []string{"ns/op", "cpu-ns/op"}, Samples: map[string][]float64{"ns/op": {1}, "cpu-ns/op": {6000, 5000, 4000}}}}
	md = d.markdown()
	if want := "5.0 µs of CPU each"; !strings.Contains(md, want) {
		t.Errorf("the document lacks %q", want)
	}
	if want := "half a core at about 100,000 messages/s"; !strings.Contains(md, want) {
		t.Errorf("the document lacks %q", want)
	}
	d.micro = nil
	for k := range d.results {
		if strings.HasSuffix(k, "/"+kindCluster) {
			delete(d.results, k)
		}
	}
	md = d.markdown()
	for _, unwanted := range []string{"Scaling out", "cluster / one node", "edges' CPU", "-spawn-edges"} {
		if strings.Contains(md, unwanted) {
			t.Errorf("without cluster runs the document still has %q", unwanted)
		}
	}
}

// A remark about one of several runs says which run it was: the table
// beside it holds medians.
func TestSuiteRemarkNamesItsRun(t *testing.T) {
	var steady []scenario
	for _, sc := range suiteScenarios(20000) {
		if sc.name == "steady" {
			steady = append(steady, sc)
		}
	}
	run := func(mode string, sent int64, outOfOrder int64) *Result {
		r := &Result{Mode: mode, PID: 1, Planned: 2000, Sent: sent, Acked: sent, Persisted: sent, Received: 10 * sent,
			OutOfOrder: outOfOrder, ServerCPUSec: 10, MeasuredSec: 20, ConnsHeld: 500}
		r.Config.Senders, r.Config.Rate = 1, 2
		r.Machine.CPUs = 2
		return r
	}
	d := &suiteDoc{scenarios: steady, repeat: 3, results: map[string][]*Result{
		suiteKey("steady", ModeNative):   {run(ModeNative, 2000, 0)},
		suiteKey("steady", ModeRealtime): {run(ModeRealtime, 2000, 0), run(ModeRealtime, 300, 0), run(ModeRealtime, 2000, 2)},
	}}
	md := d.markdown()
	for _, want := range []string{"In run 2, PocketBase realtime sent 300 of the 2000 planned messages",
		"In run 3, PocketBase realtime delivered 2 messages out of order"} {
		if !strings.Contains(md, want) {
			t.Errorf("the document lacks %q", want)
		}
	}
	d.results[suiteKey("steady", ModeRealtime)] = d.results[suiteKey("steady", ModeRealtime)][1:2]
	if md := d.markdown(); !strings.Contains(md, "\nPocketBase realtime sent 300 of the 2000") {
		t.Error("with one run the remark should not name it")
	}
}
