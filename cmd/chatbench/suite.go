package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"time"
)

// scenario is one entry of the fixed set `make bench` runs.
type scenario struct {
	name  string // short id: file names, -only
	title string
	about string
	args  []string // chatbench flags of the native run, without -mode and -spawn…
	// pb, if set, also runs the scenario the plain-PocketBase way, with
	// these flags after args (later flags win). A PocketBase variant that
	// differs from the native run says why in its note.
	pb *variant
	// targets are checked on the native run's medians.
	targets []target
	// compare checks the goals against PocketBase realtime (≥100×
	// deliveries per server CPU-second, ≥5× persisted messages/s, a lower
	// p99) when both ran.
	compare bool
	// analysis, if set, follows the figures: what bounds the scenario on
	// this machine, from profiles taken outside the suite.
	analysis string
	// cluster also runs the scenario natively against a cluster on this
	// machine (Redis, the primary, clusterEdges edges), the connections
	// on the edges.
	cluster bool
}

// clusterEdges is how many edges the suite's cluster runs have.
const clusterEdges = 2

// kindCluster is the suite's name for a native run against a cluster, in
// the results' keys and file names beside the modes.
const kindCluster = "cluster"

type variant struct {
	args []string
	note string
}

// target is one goal a scenario's native run must meet: a figure, taken
// as its median over the repeats, against a limit.
type target struct {
	label string
	value func(*Result) float64
	cmp   string // "<", "<=", ">=", "=="
	limit float64
	unit  string
	prec  int
}

// cmpSymbol is how the document writes a comparison.
func cmpSymbol(cmp string) string {
	switch cmp {
	case "<=":
		return "≤"
	case ">=":
		return "≥"
	case "==":
		return "="
	}
	return cmp
}

func (t target) holds(v float64) bool {
	switch t.cmp {
	case "<":
		return v < t.limit
	case "<=":
		return v <= t.limit
	case ">=":
		return v >= t.limit
	default:
		return v == t.limit
	}
}

// The targets every scenario shares: each acked message reaches every
// member's connection once, in order.
func correctness() []target {
	return []target{
		{label: "lost deliveries", value: func(r *Result) float64 { return float64(r.Lost) }, cmp: "==", limit: 0},
		{label: "duplicated deliveries", value: func(r *Result) float64 { return float64(r.Duplicated) }, cmp: "==", limit: 0},
		{label: "deliveries out of order", value: func(r *Result) float64 { return float64(r.OutOfOrder) }, cmp: "==", limit: 0},
	}
}

func held(n int) target {
	return target{label: "connections held", value: func(r *Result) float64 { return float64(r.ConnsHeld - r.ConnsDropped) }, cmp: ">=", limit: float64(n)}
}

// idleHeld is held(n), saying so when n falls short of the 20,000 wanted.
func idleHeld(n int) target {
	t := held(n)
	if n < 20_000 {
		t.label = "connections held (of the 20,000 wanted, as many as the open-files limit allows)"
	}
	return t
}

func allSent() target {
	return target{label: "planned messages not sent (server fell behind)", value: func(r *Result) float64 { return float64(r.Planned - r.Sent) }, cmp: "==", limit: 0}
}

func p99Below(ms float64) target {
	return target{label: "send→receive p99", value: func(r *Result) float64 { return r.Delivery.P99 }, cmp: "<", limit: ms, unit: " ms", prec: 1}
}

// idleConns is how many connections the idle scenario holds: 20,000, or
// as many as one process may have files for. The tool and the server
// each hold one socket per connection under the same limit, which
// setrlimit cannot raise above the hard limit without CAP_SYS_RESOURCE.
func idleConns(limit int) int {
	n := 20_000
	if limit > 0 {
		n = min(n, maxConnsForLimit(limit))
	}
	return n / 10 * 10 // whole rooms of 10
}

// suiteScenarios is the fixed set; limit is the open-files limit, which
// bounds the idle scenario.
func suiteScenarios(limit int) []scenario {
	idle := idleConns(limit)
	idleAbout := fmt.Sprintf("%s connections (%s private rooms of 10; %s users, so each user has two connections "+
		"in two rooms) join their rooms and sit for 15 s; nobody sends. The server's memory is read after that. "+
		"Connections come from 4 source addresses (127.0.0.1–4).",
		thousands(float64(idle), 0), thousands(float64(idle/10), 0), thousands(float64(min(idle, 10_000)), 0))
	if idle < 20_000 {
		idleAbout += fmt.Sprintf(" The goal is 20,000 connections; %s is as many as fit: the open-files limit here is %s "+
			"for soft and hard alike, and a process without CAP_SYS_RESOURCE cannot raise it, so neither the server "+
			"nor the tool can hold 20,000 sockets (%d files are left for the server's database, listener and REST "+
			"connections).", thousands(float64(idle), 0), thousands(float64(limit), 0), fileMargin)
	}
	scs := []scenario{
		{
			name:  "steady",
			title: "Many small rooms, steady load",
			about: "50 private rooms of 10 members, one connection per member (500 connections); one sender " +
				"per room sends 2 messages/s for 20 s: 100 messages/s and 1,000 deliveries/s offered.",
			args:    []string{"-name", "steady", "-rooms", "50", "-members", "10", "-senders", "1", "-rate", "2", "-duration", "20s", "-timeout", "5m"},
			pb:      &variant{},
			targets: correctness(),
			compare: true,
		},
		{
			name:  "burst",
			title: "A burst into one room of 200",
			about: "One private room of 200 members (200 connections); 4 of them send 50 messages each at " +
				"once: 200 messages and 40,000 deliveries as fast as the server goes.",
			args:    []string{"-name", "burst", "-rooms", "1", "-members", "200", "-senders", "4", "-burst", "50", "-timeout", "5m"},
			pb:      &variant{},
			targets: correctness(),
			compare: true,
		},
		{
			name:  "tier-a",
			title: "Tier A: 10,000 connections, 2,000 messages/s in, 20,000 deliveries/s out",
			about: "1,000 private rooms of 10 members (10,000 connections from 2 source addresses); one sender " +
				"per room sends 2 messages/s for 60 s: 2,000 messages/s and 20,000 deliveries/s offered, " +
				"at most 2,000 messages in flight (a second's worth).",
			args: []string{"-name", "tier-a", "-rooms", "1000", "-members", "10", "-senders", "1", "-rate", "2",
				"-duration", "60s", "-inflight", "2000", "-sources", "2", "-timeout", "8m"},
			pb: &variant{
				args: []string{"-duration", "20s", "-inflight", "4", "-drain", "30s"},
				note: "PocketBase realtime runs the same rooms and connections for 20 s instead of 60, with at most 4 " +
					"create requests in flight: each create checks the message against every one of the 10,000 " +
					"subscriptions (a database query each: seconds of CPU per message, see the server CPU below), " +
					"so 1,000 senders waiting on 1,000 requests would leave a backlog far longer than the run. " +
					"The rates and per-CPU-second figures compare; the counts do not.",
			},
			targets: append([]target{
				held(10_000),
				allSent(),
				{label: "acked messages/s", value: func(r *Result) float64 { return r.AckedPerSec }, cmp: ">=", limit: 1980, prec: 0},
				{label: "deliveries/s", value: func(r *Result) float64 { return r.DeliveriesPerSec }, cmp: ">=", limit: 19_800, prec: 0},
				p99Below(50),
			}, correctness()...),
			compare: true,
		},
		{
			name:  "tier-b",
			title: "Tier B: 10,000 persisted messages/s, 100,000 deliveries/s",
			about: "1,000 private rooms of 10 members (10,000 connections from 2 source addresses); one sender " +
				"per room sends 10 messages/s for 30 s: 10,000 messages/s and 100,000 deliveries/s offered, " +
				"at most 5,000 messages in flight.",
			args: []string{"-name", "tier-b", "-rooms", "1000", "-members", "10", "-senders", "1", "-rate", "10",
				"-duration", "30s", "-inflight", "5000", "-sources", "2", "-timeout", "8m"},
			targets: append([]target{
				allSent(),
				{label: "persisted messages/s", value: func(r *Result) float64 { return r.PersistedPerSec }, cmp: ">=", limit: 9_900, prec: 0},
				{label: "deliveries/s", value: func(r *Result) float64 { return r.DeliveriesPerSec }, cmp: ">=", limit: 99_000, prec: 0},
				{label: "acked messages not persisted", value: func(r *Result) float64 { return float64(r.Acked - r.Persisted) }, cmp: "<=", limit: 0},
				p99Below(100),
			}, correctness()...),
			analysis: "**What bounds it here.** CPU profiles of the server under Tier A's load (2,000 messages/s in, " +
				"20,000 deliveries/s out, 10 members a room) put about 600 µs of server CPU on each message: about " +
				"220 µs to save it (PocketBase's record save, with its hooks, field interceptors and SQL, about 140 µs, " +
				"plus its share of the savepoint, the transaction and the commit), about 140 µs to write its ten " +
				"deliveries to ten sockets (one write system call each, 12–16 µs of kernel time on loopback with the " +
				"receiver's TCP processing: see *Machine*), 5–10% in the garbage collector, and the rest reading, " +
				"decoding, publishing and queueing. At 10,000 messages/s the saves alone would take 1.4–2.2 CPU-seconds " +
				"per second and the 100,000 socket writes another 1.4, with the load tool on the same 2 cores (a " +
				"third to half a core). Every message is saved through PocketBase, on the path every other client " +
				"and hook uses, so the rate measured here is that path's ceiling on this machine, not a queue " +
				"that tuning would drain: the levers (see *Levers: before and after*) moved it, group commit most; the target is about 4× " +
				"beyond it.",
		},
		{
			name:  "fanout",
			title: "Burst fan-out: one room of 5,000 members",
			about: "One private room of 5,000 members (5,000 connections); 5 of them send 100 messages each at " +
				"once: 500 messages and 2,500,000 deliveries as fast as the server goes.",
			args: []string{"-name", "fanout", "-rooms", "1", "-members", "5000", "-senders", "5", "-burst", "100",
				"-drain", "30s", "-timeout", "8m"},
			pb: &variant{
				args: []string{"-senders", "1", "-burst", "2"},
				note: "PocketBase realtime runs the same room and connections with one sender of 2 messages " +
					"(10,000 deliveries): each create checks the message against each of the 5,000 subscriptions " +
					"with a database query whose access rule reads the room's 5,000 members: tens of CPU-seconds " +
					"per message (see the server CPU below), so the full burst would take hours. Deliveries per " +
					"server CPU-second compare; the counts do not.",
			},
			targets: append([]target{
				{label: "deliveries per server CPU-second", value: func(r *Result) float64 { return r.DeliveriesPerCPUSec }, cmp: ">=", limit: 500_000, prec: 0},
			}, correctness()...),
			compare: true,
		},
		{
			name:  "idle",
			title: fmt.Sprintf("Idle: %s connections", thousands(float64(idle), 0)),
			about: idleAbout,
			args: []string{"-name", "idle", "-rooms", fmt.Sprint(idle / 10), "-members", "10", "-users", fmt.Sprint(min(idle, 10_000)),
				"-conns", fmt.Sprint(idle), "-senders", "0", "-duration", "15s", "-sources", "4", "-timeout", "8m"},
			targets: []target{
				idleHeld(idle),
				{label: "server memory per connection (RSS)", value: func(r *Result) float64 { return r.MemPerConnKB }, cmp: "<=", limit: 12, unit: " KiB", prec: 1},
			},
		},
	}
	for i := range scs {
		scs[i].cluster = true // every scenario, the same as on one node
	}
	return scs
}

// suiteRun is one run of the suite: a scenario in one mode, or natively
// against a cluster (kindCluster).
type suiteRun struct {
	sc   scenario
	mode string   // ModeNative, ModeRealtime or kindCluster
	args []string // chatbench flags, -mode included, -spawn… not
}

// runsOf lists the runs of the scenarios: native, then PocketBase, then
// the cluster.
func runsOf(scs []scenario) []suiteRun {
	var out []suiteRun
	for _, sc := range scs {
		out = append(out, suiteRun{sc, ModeNative, append([]string{"-mode", ModeNative}, sc.args...)})
		if sc.pb != nil {
			args := append([]string{"-mode", ModeRealtime}, mergeArgs(sc.args, sc.pb.args)...)
			out = append(out, suiteRun{sc, ModeRealtime, args})
		}
		if sc.cluster {
			args := append([]string{"-mode", ModeNative}, sc.args...)
			out = append(out, suiteRun{sc, kindCluster, append(args, "-spawn-edges", fmt.Sprint(clusterEdges))})
		}
	}
	return out
}

// mergeArgs is base with the "-flag value" pairs of override: a flag base
// has gets the new value in its place, others are added at the end. (The
// flag package would take the last of two anyway; the document shows each
// command once, as it means.)
func mergeArgs(base, override []string) []string {
	out := slices.Clone(base)
	for i := 0; i+1 < len(override); i += 2 {
		if j := slices.Index(out, override[i]); j >= 0 && j+1 < len(out) {
			out[j+1] = override[i+1]
		} else {
			out = append(out, override[i], override[i+1])
		}
	}
	return out
}

// selectScenarios keeps the scenarios named in only (comma-separated;
// empty keeps all), in the suite's order.
func selectScenarios(all []scenario, only string) ([]scenario, error) {
	if only == "" {
		return all, nil
	}
	want := map[string]bool{}
	for _, n := range strings.Split(only, ",") {
		if n = strings.TrimSpace(n); n != "" {
			want[n] = true
		}
	}
	var out []scenario
	for _, sc := range all {
		if want[sc.name] {
			out = append(out, sc)
			delete(want, sc.name)
		}
	}
	if len(want) > 0 {
		var names []string
		for _, sc := range all {
			names = append(names, sc.name)
		}
		unknown := slices.Sorted(func(yield func(string) bool) {
			for n := range want {
				if !yield(n) {
					return
				}
			}
		})
		return nil, fmt.Errorf("-only: unknown scenario(s) %s (there are %s)", strings.Join(unknown, ", "), strings.Join(names, ", "))
	}
	return out, nil
}

// suiteDoc is what the document is made of.
type suiteDoc struct {
	scenarios []scenario
	results   map[string][]*Result // by suiteKey, one per repeat
	repeat    int
	// The levers: results by leverKey, one per repeat.
	levers       []lever
	leverResults map[string][]*Result
	leverRepeat  int
	bin, rev     string
	micro        []*microBench
	limit        int // open-files limit
}

func suiteKey(name, mode string) string { return name + "/" + mode }

// suiteMain runs the fixed scenarios against freshly started servers and
// writes the benchmarks document.
func suiteMain(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("chatbench suite", flag.ContinueOnError)
	fs.SetOutput(stderr)
	bin := fs.String("bin", "bin/pocketchat", "the pocketchat binary to start for each run")
	hooks := fs.String("hooks", "pb_hooks", "CHAT_HOOKS_DIR for the server, as make run has it (empty: none)")
	out := fs.String("out", "docs/benchmarks.md", "the Markdown document to write")
	data := fs.String("data", "", "data directory shared by the runs (default: a temporary one); bench users are kept in it")
	jsonDir := fs.String("json-dir", "", "also write each run's result as JSON into this directory")
	rev := fs.String("rev", "", "what was measured, for the document (default: git describe --always --dirty)")
	fromJSON := fs.String("from-json", "", "run nothing: write the document from the results a -json-dir run kept in this directory")
	repeat := fs.Int("repeat", 1, "run each scenario this many times; the document shows medians")
	only := fs.String("only", "", "run only these scenarios (comma-separated names: steady, burst, tier-a, tier-b, fanout, idle) "+
		"and levers (lever:wal-checkpoint, lever:group-commit, lever:js-hook, lever:epoll, lever:presence; levers: all of them)")
	cluster := fs.Bool("cluster", true, fmt.Sprintf("also run each scenario against a cluster on this machine (Redis, the primary, %d edges)", clusterEdges))
	levers := fs.Bool("levers", true, "after the scenarios, run the levers: a scenario each against a server with a setting as before a change and with the default")
	leverRepeat := fs.Int("lever-repeat", 1, "run each lever's before and after this many times (alternately); the document shows medians")
	micro := fs.String("micro", "", "`go test -bench` output of the micro-benchmarks to summarize in the document")
	timeout := fs.Duration("timeout", 150*time.Minute, "hard limit on the whole suite (each run also has its own)")
	cpuProfile := fs.String("cpuprofile", "", "write the tool's CPU profile (whole suite) to this file")
	quiet := fs.Bool("q", false, "no progress on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *repeat < 1 || *repeat > 20 {
		return errors.New("-repeat must be 1…20")
	}
	if *leverRepeat < 1 || *leverRepeat > 20 {
		return errors.New("-lever-repeat must be 1…20")
	}
	if *rev == "" {
		if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
			*rev = strings.TrimSpace(string(out))
		}
	}
	limit := fileLimit()
	scs, lvs, err := selectRuns(suiteScenarios(limit), suiteLevers(limit), *only, *levers)
	if err != nil {
		return err
	}
	if !*cluster {
		for i := range scs {
			scs[i].cluster = false
		}
	}
	if *hooks == "" {
		// Without the JS hooks a hook's lever has the same server twice.
		lvs = slices.DeleteFunc(lvs, func(lv lever) bool { return lv.hooks })
	}
	doc := &suiteDoc{scenarios: scs, results: map[string][]*Result{}, repeat: *repeat, bin: *bin, rev: *rev, limit: limit,
		levers: lvs, leverResults: map[string][]*Result{}, leverRepeat: *leverRepeat}
	if *micro != "" {
		f, err := os.Open(*micro)
		if err != nil {
			return err
		}
		doc.micro, err = parseMicro(f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", *micro, err)
		}
	}
	if *fromJSON != "" {
		if err := doc.readJSON(*fromJSON); err != nil {
			return err
		}
		if err := doc.readLeverJSON(*fromJSON); err != nil {
			return err
		}
		return os.WriteFile(*out, []byte(doc.markdown()), 0o644)
	}
	if err := checkLeverEnv(lvs, os.Getenv); err != nil {
		return err
	}
	if *cpuProfile != "" {
		stop, err := startCPUProfile(*cpuProfile)
		if err != nil {
			return err
		}
		defer stop()
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
	defer cancel()
	dir := *data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "chatbench-suite-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	logf := progress(*quiet, stderr)
	if *jsonDir != "" {
		// Results of an earlier suite with more repeats would be read
		// back by -from-json as this one's.
		for rep := range 100 {
			for _, r := range runsOf(scs) {
				_ = os.Remove(suiteJSONPath(*jsonDir, r.sc.name, r.mode, rep))
			}
			for _, r := range leverRunsOf(lvs) {
				_ = os.Remove(leverJSONPath(*jsonDir, r.lv.name, r.side, rep))
			}
		}
	}
	cache := newUserCache()
	start := time.Now()
	// No per-user send limit: the scenarios' users send faster than
	// people do (the burst scenarios 50 at once) by design. No limit on
	// connections per address either: every client is on 127.0.0.1.
	spawnArgs := []string{"-spawn", *bin, "-spawn-env", "CHAT_SEND_RATE=0", "-spawn-env", "CHAT_CONNS_PER_IP=0"}
	if *hooks != "" {
		spawnArgs = append(spawnArgs, "-spawn-hooks", *hooks)
	}
	// one runs chatbench with args (-spawn-dir added) and keeps the
	// result under key, and as JSON in jsonPath with -json-dir.
	one := func(what string, args []string, key, jsonPath string) error {
		cfg, err := parseConfig(append(slices.Clone(args), "-spawn-dir", dir), stderr)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		logf("=== %s; the suite has run %s", what, time.Since(start).Round(time.Second))
		res, err := run(ctx, cfg, logf, cache)
		if err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		res.Command = "bin/chatbench " + strings.Join(args, " ")
		printResult(stdout, res)
		if strings.HasPrefix(key, "lever:") {
			doc.leverResults[key] = append(doc.leverResults[key], res)
		} else {
			doc.results[key] = append(doc.results[key], res)
		}
		if *jsonDir != "" {
			if err := os.MkdirAll(*jsonDir, 0o755); err != nil {
				return err
			}
			return writeJSON(jsonPath, res)
		}
		return nil
	}
	for _, r := range runsOf(scs) {
		for rep := range *repeat {
			what := fmt.Sprintf("%s, %s (%d of %d)", r.sc.title, r.mode, rep+1, *repeat)
			if err := one(what, append(slices.Clone(spawnArgs), r.args...), suiteKey(r.sc.name, r.mode),
				suiteJSONPath(*jsonDir, r.sc.name, r.mode, rep)); err != nil {
				return err
			}
		}
	}
	// Each lever's before and after alternate, so that a drift of the
	// machine over the repeats weighs on both alike.
	for _, lv := range lvs {
		for rep := range *leverRepeat {
			for _, r := range leverRunsOf([]lever{lv}) {
				what := fmt.Sprintf("lever %s, %s (%d of %d)", r.lv.title, r.side, rep+1, *leverRepeat)
				if err := one(what, r.commandArgs(spawnArgs), leverKey(r.lv.name, r.side), leverJSONPath(*jsonDir, r.lv.name, r.side, rep)); err != nil {
					return err
				}
			}
		}
	}
	if err := os.WriteFile(*out, []byte(doc.markdown()), 0o644); err != nil {
		return err
	}
	logf("wrote %s after %s", *out, time.Since(start).Round(time.Second))
	return nil
}

// suiteJSONPath is where -json-dir keeps a suite run's result.
func suiteJSONPath(dir, name, mode string, rep int) string {
	return filepath.Join(dir, fmt.Sprintf("%s-%s-%d.json", name, mode, rep+1))
}

// readJSON reads the results a -json-dir run kept: every repeat found of
// each run of the selected scenarios.
func (d *suiteDoc) readJSON(dir string) error {
	d.repeat = 0
	for _, r := range runsOf(d.scenarios) {
		key := suiteKey(r.sc.name, r.mode)
		rs, err := readRepeats(key, func(rep int) string { return suiteJSONPath(dir, r.sc.name, r.mode, rep) })
		if err != nil {
			return err
		}
		d.results[key] = append(d.results[key], rs...)
		d.repeat = max(d.repeat, len(d.results[key]))
	}
	return nil
}

// readRepeats reads the kept results of one run, repeat 0, 1, … until
// the first missing file; the first must exist.
func readRepeats(key string, path func(rep int) string) ([]*Result, error) {
	var out []*Result
	for rep := 0; ; rep++ {
		data, err := os.ReadFile(path(rep))
		if errors.Is(err, os.ErrNotExist) && rep > 0 {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
		var res Result
		if err := json.Unmarshal(data, &res); err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		out = append(out, &res)
	}
}

// medianOf is a figure's median over runs; ok is false if any run lacks
// it.
func medianOf(rs []*Result, value func(*Result) float64, known func(*Result) bool) (float64, bool) {
	if len(rs) == 0 {
		return 0, false
	}
	var xs []float64
	for _, r := range rs {
		if known != nil && !known(r) {
			return 0, false
		}
		xs = append(xs, value(r))
	}
	return median(xs), true
}

// verdict is a target's outcome.
type verdict struct {
	scenario, label, want, got string
	met, known                 bool
}

func (v verdict) word() string {
	switch {
	case !v.known:
		return "n/a"
	case v.met:
		return "met"
	default:
		return "**not met**"
	}
}

// verdicts checks a scenario's targets, and the goals against PocketBase
// realtime where both ran.
func (d *suiteDoc) verdicts(sc scenario) []verdict {
	nat := d.results[suiteKey(sc.name, ModeNative)]
	var out []verdict
	for _, t := range sc.targets {
		v := verdict{scenario: sc.name, label: t.label, want: fmt.Sprintf("%s %s%s", cmpSymbol(t.cmp), thousands(t.limit, t.prec), t.unit)}
		if x, ok := medianOf(nat, t.value, nil); ok {
			v.known, v.met, v.got = true, t.holds(x), thousands(x, t.prec)+t.unit
		}
		out = append(out, v)
	}
	// The cluster must be as correct as one node, and hold as many.
	if cl := d.results[suiteKey(sc.name, kindCluster)]; len(cl) > 0 {
		for _, t := range sc.targets {
			if !clusterTarget(t) {
				continue
			}
			v := verdict{scenario: sc.name, label: "cluster: " + t.label, want: fmt.Sprintf("%s %s%s", cmpSymbol(t.cmp), thousands(t.limit, t.prec), t.unit)}
			if x, ok := medianOf(cl, t.value, nil); ok {
				v.known, v.met, v.got = true, t.holds(x), thousands(x, t.prec)+t.unit
			}
			out = append(out, v)
		}
	}
	pb := d.results[suiteKey(sc.name, ModeRealtime)]
	if !sc.compare || len(nat) == 0 || len(pb) == 0 {
		return out
	}
	ratioVerdict := func(label string, value func(*Result) float64, known func(*Result) bool, min float64) verdict {
		v := verdict{scenario: sc.name, label: label, want: fmt.Sprintf("≥ %g×", min)}
		x, ok1 := medianOf(nat, value, known)
		y, ok2 := medianOf(pb, value, known)
		if ok1 && ok2 && y > 0 {
			r := x / y
			v.known, v.met, v.got = true, r >= min, thousands(r, 1)+"×"
		}
		return v
	}
	hasCPU := func(r *Result) bool { return r.PID != 0 && r.ServerCPUSec > 0 }
	out = append(out, ratioVerdict("deliveries per server CPU-second vs PocketBase", func(r *Result) float64 { return r.DeliveriesPerCPUSec }, hasCPU, 100))
	pv := ratioVerdict("persisted messages/s vs PocketBase", func(r *Result) float64 { return r.PersistedPerSec }, nil, 5)
	if keptUp(nat) && keptUp(pb) {
		pv.known, pv.got = false, "both kept up with the offered rate"
	}
	out = append(out, pv)
	lat := verdict{scenario: sc.name, label: "send→receive p99 vs PocketBase", want: "lower"}
	x, ok1 := medianOf(nat, func(r *Result) float64 { return r.Delivery.P99 }, func(r *Result) bool { return r.Delivery.Count > 0 })
	y, ok2 := medianOf(pb, func(r *Result) float64 { return r.Delivery.P99 }, func(r *Result) bool { return r.Delivery.Count > 0 })
	if ok1 && ok2 {
		lat.known, lat.met, lat.got = true, x < y, fmt.Sprintf("%s ms vs %s ms", thousands(x, 1), thousands(y, 1))
	}
	return append(out, lat)
}

// clusterTarget says whether a cluster run is held to target t too: the
// correctness of every delivery and the connections held. The rates and
// latencies are one node's goals; the cluster's figures stand beside
// them.
func clusterTarget(t target) bool {
	for _, c := range correctness() {
		if c.label == t.label {
			return true
		}
	}
	return strings.HasPrefix(t.label, "connections held")
}

// keptUp says whether every run sent at a steady rate all it planned:
// then messages/s is the offered rate, not what the server can do.
func keptUp(rs []*Result) bool {
	for _, r := range rs {
		if r.Config.Burst > 0 || r.Sent < r.Planned {
			return false
		}
	}
	return true
}

// markdown renders the benchmarks document.
func (d *suiteDoc) markdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	var first *Result
	for _, sc := range d.scenarios {
		if rs := d.results[suiteKey(sc.name, ModeNative)]; len(rs) > 0 && first == nil {
			first = rs[0]
		}
	}
	for _, r := range leverRunsOf(d.levers) {
		if rs := d.leverResults[leverKey(r.lv.name, r.side)]; len(rs) > 0 && first == nil {
			first = rs[0]
		}
	}
	levers := d.leversMarkdown()
	if first == nil {
		return "# Load benchmarks\n\nNo results.\n"
	}
	m := first.Machine
	p("# Load benchmarks\n\n")
	version := ""
	if d.rev != "" {
		version = fmt.Sprintf(" (pocketchat at `%s`)", d.rev)
	}
	p("Measured on %s%s by `make bench`: the micro-benchmarks of `internal/`, then `chatbench suite`\n", first.Started.Format(time.DateOnly), version)
	p("(`cmd/chatbench`), which rewrote this file. The numbers are that run's, unedited")
	if d.repeat > 1 && len(d.scenarios) > 0 {
		p("; every figure of the load scenarios is the median of %d runs", d.repeat)
	}
	p(".\n")
	p("Load scenarios run against pocketchat's native WebSocket endpoint and, where it can be bounded in\n")
	p("time, the way a plain PocketBase app would do it (subscribers on PocketBase's SSE `/api/realtime`,\n")
	p("senders creating records with REST), against the same server binary")
	if d.hasCluster() {
		p(", and natively against a cluster of that\n")
		p("binary on this machine (Redis, the primary and %d edges, the connections on the edges; see *Scaling out*)", clusterEdges)
	}
	p(".")
	if levers != "" {
		p(" The levers (*Levers: before and\n")
		p("after*) each run one scenario natively twice: with one of the server's settings as it was before\n")
		p("a change, and with the default.")
	}
	p("\n\n")

	var targets []string
	for _, sc := range d.scenarios {
		for _, v := range d.verdicts(sc) {
			got := v.got
			if got == "" {
				got = "–"
			}
			targets = append(targets, fmt.Sprintf("| %s | %s | %s | %s | %s |\n", sc.name, v.label, v.want, got, v.word()))
		}
	}
	if len(targets) > 0 {
		p("## Targets\n\n")
		p("| scenario | goal | wanted | measured | |\n|---|---|---|--:|---|\n")
		p("%s\n", strings.Join(targets, ""))
	}

	p("## Machine\n\n")
	p("| | |\n|---|---|\n")
	p("| CPUs (`nproc`) | %d |\n", m.CPUs)
	p("| CPU model | %s |\n", m.Model)
	p("| memory | %.1f GiB |\n", float64(m.MemoryMB)/1024)
	p("| kernel | %s |\n", m.Kernel)
	p("| open files (`ulimit -n`, soft = hard) | %s |\n", thousands(float64(first.FileLimit), 0))
	p("| Go (the tool; the server is built with the same toolchain) | %s |\n", m.GoVersion)
	if m.LoopbackFrameUS > 0 {
		p("| loopback TCP: CPU per 400-byte frame written and read (both sides), one frame per write | %.1f µs |\n", m.LoopbackFrameUS)
		p("| the same, 20 frames per write | %.2f µs |\n", m.LoopbackBatchedUS)
	}
	p("\n")
	p("The server and the load tool share these cores: the tool's own CPU time is in the tables, and\n")
	p("so are the kernel's softirq time and the CPU time of everything else that ran meanwhile.\n\n")

	p("## How it was run\n\n")
	p("`make bench` builds `%s` and `bin/chatbench`, runs the micro-benchmarks, then the load runs below\n", d.bin)
	p("one after the other (`make bench BENCH_REPEAT=3` repeats each load scenario three times and reports medians;\n")
	p("`BENCH_LEVER_REPEAT=3` does the same for the levers' runs).\n")
	p("Each load run starts the server afresh (`serve --http 127.0.0.1:<free port> --dir <data> --dev=false`,\n")
	p("default settings except `CHAT_SEND_RATE=0` and `CHAT_CONNS_PER_IP=0`, the JS hooks of `pb_hooks/` as `make run` has them, the tool's\n")
	p("open-files limit; the per-user send limit, 10 messages/s by default, and the limit of 200 connections per address are\n")
	p("abuse controls, and the tool's users send faster than people, all from 127.0.0.1, by design)\n")
	p("on one temporary data directory. The bench users (`bench-00000@bench.invalid`, …) are created once, by\n")
	p("the first run that needs them (with bcrypt's lowest cost while they are created: the measured traffic\n")
	p("never checks a password), and every run gets their tokens by superuser impersonation; every run\n")
	p("creates its own rooms and deletes them at the end.")
	if d.hasCluster() {
		p(" A cluster run (`-spawn-edges %d`) first starts `redis-server` (no\n", clusterEdges)
		p("persistence, a free port, a temporary directory), then the primary as above with `CHAT_REDIS_URL` and a\n")
		p("fresh `CHAT_CLUSTER_SECRET`, then %d `pocketchat edge --primary <primary> --http 127.0.0.1:<free port>`\n", clusterEdges)
		p("with the same environment. The members of a room take the edges in turn, so every room spans the\n")
		p("edges and each delivery crosses Redis; users, rooms and counting go to the primary.")
	}
	p("\n\n```sh\n")
	for _, r := range runsOf(d.scenarios) {
		if rs := d.results[suiteKey(r.sc.name, r.mode)]; len(rs) > 0 {
			p("%s\n", rs[0].Command)
		}
	}
	if levers != "" {
		p("# then the levers' runs: see Levers: before and after\n")
	}
	p("```\n\n")
	p("Each run's raw result is kept as JSON in `bin/bench-results/`; `bin/chatbench suite -from-json\n")
	p("bin/bench-results -micro bin/bench-micro.txt` writes this document again from them.\n\n")
	p("Against a server you started yourself: `go run ./cmd/chatbench -url http://127.0.0.1:8090\n")
	p("-su-email … -su-password … [scenario flags]` (`-h` lists them; `-json FILE` keeps the result).\n\n")

	p("%s", levers)

	if len(d.micro) > 0 {
		p("## Micro-benchmarks\n\n")
		p("`go test -run='^$' -bench=. -benchmem -count=%d ./internal/...`: the median of the %d runs of each.\n\n", microRuns(d.micro), microRuns(d.micro))
		p("%s\n", microMarkdown(d.micro))
	}

	p("## What the figures mean\n\n")
	p("- **messages acked**: native: an `ack` frame (sent after the commit); PocketBase: a 2xx answer to\n")
	p("  the create request. **persisted**: counted afterwards in the run's rooms through the REST API.\n")
	p("- **deliveries expected**: acked messages × the connections in their room (the sender's own\n")
	p("  connection included). **lost**: expected but never received. **duplicated**: received twice.\n")
	p("  **out of order**: a message received after one with a higher `seq` of the same room, or after a\n")
	p("  later message of the same sender.\n")
	p("- **deliveries/s**: received deliveries ÷ (first send → last delivery); **acked** and **persisted\n")
	p("  messages/s**: acked (persisted) ÷ (first send → last ack). Under a steady load they follow the\n")
	p("  offered rate as long as the server keeps up; a sender that falls behind catches up but sends\n")
	p("  nothing after the duration, so *messages sent* < *planned* means the server could not keep up.\n")
	p("- **in flight**: where a scenario bounds the messages sent and not yet answered (`-inflight`), a\n")
	p("  sender waits for a free slot: that keeps a run against a server that cannot keep up bounded in\n")
	p("  time (the backlog when the senders stop is at most that many messages). The wait counts in\n")
	p("  the latencies (below).\n")
	p("- **latencies**: from the send to the arrival of the message event at each receiver, and to the\n")
	p("  ack. At a steady rate a sender more than 5 ms behind its schedule (held back by `-inflight` or\n")
	p("  by a server that answers slowly) counts from the scheduled time instead, so falling behind\n")
	p("  shows in the latencies rather than hiding in the send times. The tool's own scheduling is\n")
	p("  included.\n")
	p("- **server CPU**: user + system time of the server process (`/proc/<pid>/stat`) from the first\n")
	p("  send until every delivery arrived. **memory per connection (RSS)**: the server's VmRSS after all\n")
	p("  connections joined (idle: after they sat) minus before connecting, ÷ connections; coarse at a few\n")
	p("  hundred connections, since the Go heap grows in steps. **heap + stacks**: the same from the Go\n")
	p("  runtime's heap and stacks in use (`/api/chat/metrics`), without the garbage collector's slack.\n")
	if d.hasCluster() {
		p("  For a cluster, **server CPU** is all its processes together (the primary, the edges, Redis),\n")
		p("  split in the **primary**, **edges'** and **Redis CPU** rows (on one node, the primary is the whole\n")
		p("  server); memory per connection is the edges' (they hold the connections), and the server's\n")
		p("  counters are the primary's and the edges' summed.\n")
	}
	p("- **messages per commit**, **slow-client drops**: the server's own counters over the measured\n")
	p("  phase (`pocketchat_commit_batch_size`, `pocketchat_slow_client_drops_total`).\n")
	p("- **tool CPU per delivery**: the tool's CPU time in the measured phase ÷ deliveries (sending and\n")
	p("  reading acks included): what measuring costs, on the same cores. Much of it is the kernel's:\n")
	p("  see *loopback TCP* under Machine: a frame that arrives alone costs the tool a read of its own,\n")
	p("  while frames the server writes together are read together.\n")
	p("- **kernel softirq**: the machine's softirq time (`/proc/stat`); on loopback that is much of the\n")
	p("  network stack's work for the server and the tool alike. It overlaps the other CPU figures: a\n")
	p("  softirq tick is also charged to the process it interrupted. **other processes**: the machine's\n")
	p("  busy time less the server's, the tool's and the hypervisor's steal; softirq work done outside\n")
	p("  both processes (`ksoftirqd`) lands there too. Near 0 on a quiet machine.\n")
	p("- **ratio**: above 1 pocketchat has more of it (good for throughput and deliveries per\n")
	p("  CPU-second); below 1 less (good for latency, CPU, memory).\n")
	p("- pocketbase-realtime senders wait for each create request's answer before sending the next\n")
	p("  (one HTTP/1.1 connection per sender), while native senders pipeline their frames on the socket.\n\n")

	for _, sc := range d.scenarios {
		nat := d.results[suiteKey(sc.name, ModeNative)]
		pb := d.results[suiteKey(sc.name, ModeRealtime)]
		if len(nat) == 0 {
			continue
		}
		p("## %s\n\n%s\n\n", sc.title, sc.about)
		if sc.pb != nil && sc.pb.note != "" && len(pb) > 0 {
			p("%s\n\n", sc.pb.note)
		}
		cl := d.results[suiteKey(sc.name, kindCluster)]
		p("%s\n", figureTable(nat, pb, cl))
		vs := d.verdicts(sc)
		if len(vs) > 0 {
			p("Targets:\n\n")
			for _, v := range vs {
				got := v.got
				if got == "" {
					got = "unknown"
				}
				p("- %s %s: %s, %s\n", v.label, v.want, got, strings.Trim(v.word(), "*"))
			}
			p("\n")
		}
		if sc.analysis != "" {
			p("%s\n\n", sc.analysis)
		}
		// Which run, when there were several: the table's medians may
		// come from others.
		inRun := func(i int) string {
			if len(pb) < 2 {
				return ""
			}
			return fmt.Sprintf("In run %d, ", i+1)
		}
		for i, r := range pb {
			if r.Sent < r.Planned && r.Config.Burst == 0 {
				p("%sPocketBase realtime sent %d of the %d planned messages: the server could not keep up with the\n", inRun(i), r.Sent, r.Planned)
				p("offered load (its CPU was busy %.0f%% of the measured phase on %d cores).\n\n",
					100*r.ServerCPUSec/r.MeasuredSec/float64(max(r.Machine.CPUs, 1)), r.Machine.CPUs)
				break
			}
		}
		for i, r := range pb {
			if r.OutOfOrder > 0 {
				noun := "messages"
				if r.OutOfOrder == 1 {
					noun = "message"
				}
				p("%sPocketBase realtime delivered %s %s out of order: it hands every event to every\n", inRun(i), thousands(float64(r.OutOfOrder), 0), noun)
				p("subscriber on a goroutine of its own (`routine.FireAndForget` in `apis/realtime.go`), so\n")
				p("nothing keeps a subscriber's events in commit order.\n\n")
				break
			}
		}
		for _, rs := range [][]*Result{nat, pb, cl} {
			for i, r := range rs {
				lines := append([]string{fmt.Sprintf("set-up: %s users (%s created) in %.1f s, %s connections opened in %.1f s",
					thousands(float64(r.Config.Users), 0), thousands(float64(r.UsersCreated), 0), r.UsersSec,
					thousands(float64(r.ConnsHeld), 0), r.ConnectSec)}, r.extraLines()...)
				label := runTitle(r)
				if len(rs) > 1 {
					label += fmt.Sprintf(", run %d", i+1)
				}
				p("%s:\n\n", label)
				for _, l := range lines {
					p("- %s\n", l)
				}
				p("\n")
			}
		}
	}
	p("%s", d.scalingMarkdown())
	return b.String()
}

// hasCluster says whether any scenario ran against a cluster.
func (d *suiteDoc) hasCluster() bool {
	for _, sc := range d.scenarios {
		if len(d.results[suiteKey(sc.name, kindCluster)]) > 0 {
			return true
		}
	}
	return false
}

func runTitle(r *Result) string {
	switch {
	case r.Config.Edges > 0:
		return fmt.Sprintf("pocketchat cluster (Redis, primary, %d edges)", r.Config.Edges)
	case r.Mode == ModeNative:
		return "pocketchat (native)"
	}
	return "PocketBase realtime"
}

// figureTable is a scenario's figures: one node natively, PocketBase
// realtime and the cluster where they ran (pb, cl may be empty), with
// the ratios pocketchat / PocketBase and cluster / one node.
func figureTable(nat, pb, cl []*Result) string {
	type column struct {
		title string
		rs    []*Result
	}
	type ratio struct {
		title string
		a, b  []*Result
	}
	cols := []column{{"pocketchat (native WebSocket)", nat}}
	var ratios []ratio
	if len(pb) > 0 {
		cols = append(cols, column{"PocketBase realtime (SSE + REST)", pb})
		ratios = append(ratios, ratio{"pocketchat / PocketBase", nat, pb})
	}
	if len(cl) > 0 {
		cols = append(cols, column{fmt.Sprintf("pocketchat cluster (Redis, primary, %d edges)", cl[0].Config.Edges), cl})
		ratios = append(ratios, ratio{"cluster / one node", cl, nat})
	}
	var b strings.Builder
	b.WriteString("| figure |")
	for _, c := range cols {
		b.WriteString(" " + c.title + " |")
	}
	for _, r := range ratios {
		b.WriteString(" " + r.title + " |")
	}
	b.WriteString("\n|---|" + strings.Repeat("--:|", len(cols)+len(ratios)) + "\n")
	for _, f := range figures {
		shown := false
		for _, c := range cols {
			shown = shown || f.shown(c.rs[0])
		}
		if !shown {
			continue
		}
		b.WriteString("| " + f.label + " |")
		for _, c := range cols {
			b.WriteString(" " + f.formatMedian(c.rs) + " |")
		}
		for _, r := range ratios {
			b.WriteString(" " + ratioOfMedians(f, r.a, r.b) + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}

// formatMedian is the figure's median over rs, or n/a.
func (f figure) formatMedian(rs []*Result) string {
	v, ok := medianOf(rs, f.value, f.known)
	if !ok {
		return "n/a"
	}
	return thousands(v, f.prec) + f.unit
}

// ratioOfMedians is a's median divided by b's, or – when either is
// unknown or b's is zero.
func ratioOfMedians(f figure, a, b []*Result) string {
	if f.noRatio {
		return "–"
	}
	x, ok1 := medianOf(a, f.value, f.known)
	y, ok2 := medianOf(b, f.value, f.known)
	if !ok1 || !ok2 {
		return "–"
	}
	if y == 0 {
		if x == 0 {
			return "="
		}
		return "–"
	}
	r := x / y
	switch {
	case r == 1:
		return "1"
	case r < 0.1:
		return smallRatio(r)
	case r < 10:
		return fmt.Sprintf("%.2f", r)
	default:
		return thousands(r, 0)
	}
}

// smallRatio writes r < 0.1 with two significant digits and no exponent
// (0.00035).
func smallRatio(r float64) string {
	if r <= 0 {
		return "0"
	}
	decimals := 1 - int(math.Floor(math.Log10(r)))
	return fmt.Sprintf("%.*f", decimals, r)
}

// thousands formats v with prec decimals and commas between thousands
// (from 10,000 on: 2000 stays 2000, as a year would).
func thousands(v float64, prec int) string {
	s := fmt.Sprintf("%.*f", prec, v)
	if math.Abs(v) < 10_000 {
		return s
	}
	sign := ""
	if s[0] == '-' {
		sign, s = "-", s[1:]
	}
	intPart, frac, _ := strings.Cut(s, ".")
	var b strings.Builder
	for i, c := range intPart {
		if i > 0 && (len(intPart)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if frac != "" {
		b.WriteString("." + frac)
	}
	return sign + b.String()
}
