package main

import (
	"context"
	"encoding/json"
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

// scenario is one entry of the fixed set `make bench-load` runs, in both
// modes.
type scenario struct {
	title string
	about string
	args  []string // chatbench flags, without -mode and -spawn…
}

// suiteScenarios are small on purpose: they run on a 2-core machine next
// to the server in a few minutes.
var suiteScenarios = []scenario{
	{
		title: "Many small rooms, steady load",
		about: "50 private rooms of 10 members, one connection per member (500 connections); one sender " +
			"per room sends 2 messages/s for 20 s: 100 messages/s and 1,000 deliveries/s offered.",
		args: []string{"-name", "steady", "-rooms", "50", "-members", "10", "-senders", "1", "-rate", "2", "-duration", "20s"},
	},
	{
		title: "Fewer rooms, light load",
		about: "10 private rooms of 10 members (100 connections); one sender per room sends 1 message/s " +
			"for 20 s: 10 messages/s and 100 deliveries/s offered, a load both modes keep up with.",
		args: []string{"-name", "light", "-rooms", "10", "-members", "10", "-senders", "1", "-rate", "1", "-duration", "20s"},
	},
	{
		title: "A burst into one big room",
		about: "One private room of 200 members (200 connections); 4 of them send 50 messages each at " +
			"once: 200 messages and 40,000 deliveries as fast as the server goes.",
		args: []string{"-name", "burst", "-rooms", "1", "-members", "200", "-senders", "4", "-burst", "50"},
	},
}

var suiteModes = []string{ModeNative, ModeRealtime}

// suiteMain runs the fixed scenarios in both modes against a freshly
// started server and writes the benchmarks document.
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
	quiet := fs.Bool("q", false, "no progress on stderr")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	if *rev == "" {
		if out, err := exec.Command("git", "describe", "--always", "--dirty").Output(); err == nil {
			*rev = strings.TrimSpace(string(out))
		}
	}
	if *fromJSON != "" {
		results, err := readSuiteResults(*fromJSON)
		if err != nil {
			return err
		}
		return os.WriteFile(*out, []byte(suiteMarkdown(results, *bin, *rev)), 0o644)
	}
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
	cache := newUserCache()
	var results []*Result
	for _, sc := range suiteScenarios {
		for _, mode := range suiteModes {
			runArgs := append([]string{"-mode", mode}, sc.args...)
			spawnArgs := []string{"-spawn", *bin}
			if *hooks != "" {
				spawnArgs = append(spawnArgs, "-spawn-hooks", *hooks)
			}
			cfg, err := parseConfig(append(append(runArgs, spawnArgs...), "-spawn-dir", dir), stderr)
			if err != nil {
				return err
			}
			logf("=== %s, %s", sc.title, mode)
			res, err := run(ctx, cfg, logf, cache)
			if err != nil {
				return fmt.Errorf("%s (%s): %w", sc.title, mode, err)
			}
			res.Command = "bin/chatbench " + strings.Join(append(spawnArgs, runArgs...), " ")
			printResult(stdout, res)
			results = append(results, res)
			if *jsonDir != "" {
				if err := writeJSON(suiteJSONPath(*jsonDir, res.Name, mode), res); err != nil {
					return err
				}
			}
		}
	}
	doc := suiteMarkdown(results, *bin, *rev)
	if err := os.WriteFile(*out, []byte(doc), 0o644); err != nil {
		return err
	}
	logf("wrote %s", *out)
	return nil
}

// suiteMarkdown renders the benchmarks document from the suite's results
// (one per scenario and mode, in suiteScenarios × suiteModes order).
func suiteMarkdown(results []*Result, bin, rev string) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	m := results[0].Machine
	day := results[0].Started.Format(time.DateOnly)

	p("# Load benchmarks\n\n")
	version := ""
	if rev != "" {
		version = fmt.Sprintf(" (pocketchat at `%s`)", rev)
	}
	p("**Baseline, before the tuning levers of issue 6.** Measured on %s%s with `chatbench suite`\n", day, version)
	p("(`cmd/chatbench`; `make bench-load` runs it and rewrites this file): the numbers below are that\n")
	p("run's, unedited.\n")
	p("Each scenario runs twice against the same server binary: through pocketchat's native WebSocket\n")
	p("endpoint, and the way a plain PocketBase app would do it (subscribers on PocketBase's SSE\n")
	p("`/api/realtime`, senders creating records with REST). The last column divides the first by the\n")
	p("second.\n\n")

	p("## Machine\n\n")
	p("| | |\n|---|---|\n")
	p("| CPUs (`nproc`) | %d |\n", m.CPUs)
	p("| CPU model | %s |\n", m.Model)
	p("| memory | %.1f GiB |\n", float64(m.MemoryMB)/1024)
	p("| kernel | %s |\n", m.Kernel)
	p("| Go (the tool; the server is built with the same toolchain) | %s |\n\n", m.GoVersion)
	p("The server and the load tool share these cores: the tool's own CPU time is in the tables, and\n")
	p("so is the CPU time of everything else that ran meanwhile (which should be near 0).\n\n")

	p("## How it was run\n\n")
	p("`make bench-load` builds `%s` and `bin/chatbench`, then runs these one after the other. Each\n", bin)
	p("run starts the server afresh (`serve --http 127.0.0.1:<free port> --dir <data> --dev=false`,\n")
	p("default settings, the JS hooks of `pb_hooks/` as `make run` has them) on one temporary data\n")
	p("directory, so the bench users (`bench-00000@bench.invalid`, …) are created by the first run and\n")
	p("reused; every run creates its own rooms and deletes them at the end.\n\n```sh\n")
	for _, r := range results {
		p("%s\n", r.Command)
	}
	p("```\n\n")
	p("Against a server you started yourself: `go run ./cmd/chatbench -url http://127.0.0.1:8090\n")
	p("-su-email … -su-password … [scenario flags]` (`-h` lists them; `-json FILE` keeps the result).\n\n")

	p("## What the figures mean\n\n")
	p("- **messages acked**: native: an `ack` frame (sent after the commit); PocketBase: a 2xx answer to\n")
	p("  the create request. **persisted**: counted afterwards in the run's rooms through the REST API.\n")
	p("- **deliveries expected**: acked messages × the connections in their room (the sender's own\n")
	p("  connection included). **lost**: expected but never received. **duplicated**: received twice.\n")
	p("  **out of order**: a message received after one with a higher `seq` of the same room, or after a\n")
	p("  later message of the same sender.\n")
	p("- **deliveries/s**: received deliveries ÷ (first send → last delivery); **acked messages/s**:\n")
	p("  acked ÷ (first send → last ack). Under a steady load both follow the offered rate as long as\n")
	p("  the server keeps up; a sender that falls behind catches up but sends nothing after the\n")
	p("  duration, so *messages sent* < *planned* means the server could not keep up.\n")
	p("- **latencies**: from the send (the time is in the message text) to the arrival of the message\n")
	p("  event at each receiver, and to the ack. The tool's own scheduling is included.\n")
	p("- **server CPU**: user + system time of the server process (`/proc/<pid>/stat`) from the first\n")
	p("  send until every delivery arrived. **memory per connection**: the server's VmRSS after all\n")
	p("  connections joined minus before connecting, ÷ connections; coarse at a few hundred\n")
	p("  connections, since the Go heap grows in steps.\n")
	p("- **ratio**: above 1 pocketchat has more of it (good for throughput and deliveries per\n")
	p("  CPU-second); below 1 less (good for latency, CPU, memory).\n")
	p("- pocketbase-realtime senders wait for each create request's answer before sending the next\n")
	p("  (one HTTP/1.1 connection per sender), while native senders pipeline their frames on the\n")
	p("  socket: in a burst, native latencies include the wait behind the sender's earlier messages,\n")
	p("  PocketBase ones do not.\n\n")

	for i, sc := range suiteScenarios {
		pair := results[i*len(suiteModes) : (i+1)*len(suiteModes)]
		nat, pb := pair[0], pair[1]
		p("## %s\n\n%s\n\n", sc.title, sc.about)
		p("| figure | pocketchat (native WebSocket) | PocketBase realtime (SSE + REST) | pocketchat / PocketBase |\n")
		p("|---|--:|--:|--:|\n")
		for _, f := range figures {
			p("| %s | %s | %s | %s |\n", f.label, f.format(nat), f.format(pb), ratio(f, nat, pb))
		}
		p("\n")
		if pb.Sent < pb.Planned {
			p("PocketBase realtime sent %d of the %d planned messages: the server could not keep up with the\n", pb.Sent, pb.Planned)
			p("offered load (its CPU was busy %.0f%% of the measured phase on %d cores).\n\n",
				100*pb.ServerCPUSec/pb.MeasuredSec/float64(max(pb.Machine.CPUs, 1)), pb.Machine.CPUs)
		}
		if pb.OutOfOrder > 0 {
			p("PocketBase realtime delivered %d messages out of order: it hands every event to every\n", pb.OutOfOrder)
			p("subscriber on a goroutine of its own (`routine.FireAndForget` in `apis/realtime.go`), so\n")
			p("nothing keeps a subscriber's events in commit order.\n\n")
		}
		for _, r := range pair {
			if lines := r.extraLines(); len(lines) > 0 {
				p("%s:\n\n", modeTitle(r.Mode))
				for _, l := range lines {
					p("- %s\n", l)
				}
				p("\n")
			}
		}
	}
	return b.String()
}

func modeTitle(mode string) string {
	if mode == ModeNative {
		return "pocketchat (native)"
	}
	return "PocketBase realtime"
}

// ratio is a's figure divided by b's, or – when either is unknown or b's
// is zero.
func ratio(f figure, a, b *Result) string {
	if f.noRatio || f.known != nil && (!f.known(a) || !f.known(b)) {
		return "–"
	}
	x, y := f.value(a), f.value(b)
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
		return fmt.Sprintf("%.0f", r)
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

// suiteJSONPath is where -json-dir keeps a suite run's result.
func suiteJSONPath(dir, name, mode string) string {
	return filepath.Join(dir, fmt.Sprintf("%s-%s.json", name, mode))
}

// readSuiteResults reads the results a -json-dir run kept, in the order
// suiteMarkdown expects.
func readSuiteResults(dir string) ([]*Result, error) {
	var results []*Result
	for _, sc := range suiteScenarios {
		name := sc.args[slices.Index(sc.args, "-name")+1]
		for _, mode := range suiteModes {
			data, err := os.ReadFile(suiteJSONPath(dir, name, mode))
			if err != nil {
				return nil, err
			}
			var r Result
			if err := json.Unmarshal(data, &r); err != nil {
				return nil, fmt.Errorf("%s-%s: %w", name, mode, err)
			}
			results = append(results, &r)
		}
	}
	return results, nil
}
