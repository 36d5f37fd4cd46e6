package main

import (
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
)

// lever is one before/after comparison of the suite: a server setting
// (environment variables of the spawned server) whose default is the
// change measured. One scenario runs against a freshly started server
// with the setting as it was before the change, and against another
// with the default.
type lever struct {
	name  string // short id: file names, -only lever:<name>
	title string
	what  string // what the lever does, one sentence
	about string // the scenario, in words
	args  []string
	// before and after are the "KEY=VALUE" entries of each run's server
	// environment (-spawn-env); an empty after is the server's defaults.
	before, after []string
	figures       []leverFigure
	note          string
	// hooks: the lever is a JS hook's, so it needs the suite's -hooks;
	// without them both runs would be the same server.
	hooks bool
}

// leverFigure is a figure a lever compares, and which way is better:
// "lower", "higher", or "" for a figure shown to explain the others.
type leverFigure struct {
	figure
	better string
}

func lower(label string) leverFigure  { return leverFigure{figureNamed(label), "lower"} }
func higher(label string) leverFigure { return leverFigure{figureNamed(label), "higher"} }

// The two runs of a lever.
const (
	leverBefore = "before"
	leverAfter  = "after"
)

// idleLeverConns is how many connections the epoll lever holds: 5,000,
// or as many as fit the open-files limit (like the idle scenario).
func idleLeverConns(limit int) int { return min(5_000, idleConns(limit)) }

// suiteLevers is the fixed list of levers; limit is the open-files limit.
func suiteLevers(limit int) []lever {
	idle := idleLeverConns(limit)
	return []lever{
		{
			name:  "wal-checkpoint",
			title: "WAL checkpoints in the background",
			what: "The chat's commits leave SQLite's WAL checkpoints (the log and the database file each synced) " +
				"to a goroutine that runs one 250 ms after commits on a read connection, instead of SQLite " +
				"checkpointing on the committing connection after any commit that leaves the log over 1,000 " +
				"pages, stalling that commit and every message queued behind it.",
			about: "Tier A's shape for 30 s instead of 60: 1,000 private rooms of 10 members (10,000 connections " +
				"from 2 source addresses); one sender per room sends 2 messages/s: 2,000 messages/s and 20,000 " +
				"deliveries/s offered, at most 2,000 messages in flight.",
			args: []string{"-rooms", "1000", "-members", "10", "-senders", "1", "-rate", "2", "-duration", "30s",
				"-inflight", "2000", "-sources", "2", "-timeout", "8m"},
			before: []string{"CHAT_CHECKPOINT_EVERY=0"},
			figures: []leverFigure{
				lower("send→receive p50"), lower("send→receive p99"), higher("deliveries per server CPU-second"),
			},
		},
		{
			name:  "group-commit",
			title: "Group commit",
			what: "Messages of all connections that arrive while one transaction commits are saved together in " +
				"the next one (up to 256), instead of one transaction per message.",
			about: "A write-heavy load: 200 private rooms of 5 members (1,000 connections); one sender per room " +
				"sends 25 messages/s for 20 s: 5,000 messages/s and 25,000 deliveries/s offered, at most 5,000 " +
				"messages in flight.",
			args: []string{"-rooms", "200", "-members", "5", "-senders", "1", "-rate", "25", "-duration", "20s",
				"-inflight", "5000", "-timeout", "8m"},
			before: []string{"CHAT_COMMIT_BATCH=1"},
			figures: []leverFigure{
				higher("persisted messages/s"), lower("send→ack p99"), {cpuPerKMessages, "lower"},
				{figureNamed("messages per commit (server)"), ""},
			},
		},
		{
			name:  "js-hook",
			title: "A JS hook bound only when used",
			what: "`pb_hooks/wordfilter.pb.js` binds its `onRecordCreate` and `onRecordUpdate` handlers on " +
				"messages only when `CHAT_WORDFILTER` lists a word; bound, every message saved goes through a " +
				"pooled JavaScript runtime.",
			about: "The steady scenario with twice the rooms and 2.5 times the rate: 100 private rooms of 10 " +
				"members (1,000 connections); one sender per room sends 5 messages/s for 20 s: 500 messages/s " +
				"and 5,000 deliveries/s offered. No message holds the filtered word.",
			args:   []string{"-rooms", "100", "-members", "10", "-senders", "1", "-rate", "5", "-duration", "20s", "-timeout", "5m"},
			before: []string{"CHAT_WORDFILTER=badword"},
			figures: []leverFigure{
				higher("acked messages/s"), lower("send→receive p99"), higher("deliveries per server CPU-second"),
			},
			note: "Here *before* is not an inefficiency since removed: it is what any JS hook on messages " +
				"costs, what an operator pays for using one (this one only checks the text against one word). " +
				"The lever is that the example hook costs nothing when it has no words to filter.",
			hooks: true,
		},
		{
			name:  "epoll",
			title: "Idle sockets read through epoll",
			what: "Native WebSockets are read by one epoll poller instead of a goroutine each: an idle " +
				"connection then holds no goroutine and no read buffer.",
			about: fmt.Sprintf("%s connections (%s private rooms of 10, one connection per user, from 4 source "+
				"addresses) join their rooms and sit for 15 s; nobody sends. The server's memory is read after that.",
				thousands(float64(idle), 0), thousands(float64(idle/10), 0)),
			args: []string{"-rooms", fmt.Sprint(idle / 10), "-members", "10", "-users", fmt.Sprint(idle), "-conns", fmt.Sprint(idle),
				"-senders", "0", "-duration", "15s", "-sources", "4", "-timeout", "8m"},
			before: []string{"CHAT_WS_POLL=false"},
			figures: []leverFigure{
				lower("server memory per connection (RSS)"), lower("server heap + stacks per connection"),
			},
		},
		{
			name:  "presence",
			title: "Presence summaries in big rooms",
			what: "In a room with more than 500 users online, joins and leaves are sent as counts (at most one " +
				"every 5 s) and `joined` lists the first 500, instead of every join announced to everyone in the " +
				"room and every `joined` listing everyone online: O(N²) for N people arriving.",
			about: "One private room of 3,000 members (3,000 connections) fills up; then one of them sends a burst " +
				"of 20 messages (60,000 deliveries).",
			args:   []string{"-rooms", "1", "-members", "3000", "-senders", "1", "-burst", "20", "-drain", "30s", "-timeout", "8m"},
			before: []string{"CHAT_PRESENCE_LIMIT=10000"},
			figures: []leverFigure{
				{connectFigure, "lower"}, higher("deliveries per server CPU-second"), lower("server memory per connection (RSS)"),
			},
		},
	}
}

// leverRun is one run of a lever: its before or its after.
type leverRun struct {
	lv   lever
	side string   // leverBefore or leverAfter
	env  []string // the server's environment entries
	args []string // chatbench flags, -mode and -name included, -spawn… not
}

// commandArgs are the run's chatbench flags after spawnArgs (-spawn…):
// the -spawn-env flags of its server's environment, then the scenario's.
func (r leverRun) commandArgs(spawnArgs []string) []string {
	out := slices.Clone(spawnArgs)
	for _, kv := range r.env {
		out = append(out, "-spawn-env", kv)
	}
	return append(out, r.args...)
}

// leverRunsOf lists the runs of the levers, each before before after.
func leverRunsOf(lvs []lever) []leverRun {
	var out []leverRun
	for _, lv := range lvs {
		for _, side := range []string{leverBefore, leverAfter} {
			env := lv.before
			if side == leverAfter {
				env = lv.after
			}
			args := append([]string{"-mode", ModeNative, "-name", "lever-" + lv.name + "-" + side}, lv.args...)
			out = append(out, leverRun{lv, side, slices.Clone(env), args})
		}
	}
	return out
}

// leverEnvKeys are the environment variables the levers set.
func leverEnvKeys(lvs []lever) []string {
	var keys []string
	for _, lv := range lvs {
		for _, kv := range append(slices.Clone(lv.before), lv.after...) {
			k, _, _ := strings.Cut(kv, "=")
			if !slices.Contains(keys, k) {
				keys = append(keys, k)
			}
		}
	}
	return keys
}

// checkLeverEnv refuses to run the levers when the environment the
// servers inherit sets one of their variables: the "after" runs would not
// have the server's defaults.
func checkLeverEnv(lvs []lever, getenv func(string) string) error {
	for _, k := range leverEnvKeys(lvs) {
		if v := getenv(k); v != "" {
			return fmt.Errorf("%s=%s is set here and every server would inherit it: the levers compare against "+
				"the server's defaults (unset it, or -levers=false)", k, v)
		}
	}
	return nil
}

func leverKey(name, side string) string { return "lever:" + name + "/" + side }

// leverJSONPath is where -json-dir keeps a lever run's result; a
// scenario's file is <scenario>-<mode>-<n>.json.
func leverJSONPath(dir, name, side string, rep int) string {
	return filepath.Join(dir, fmt.Sprintf("lever-%s-%s-%d.json", name, side, rep+1))
}

// selectRuns is what -only and -levers pick: -only lists scenario names,
// lever:<name> for a lever, levers for all of them; empty is everything
// (the levers if -levers).
func selectRuns(scs []scenario, lvs []lever, only string, levers bool) ([]scenario, []lever, error) {
	if strings.TrimSpace(only) == "" {
		if !levers {
			lvs = nil
		}
		return scs, lvs, nil
	}
	var scNames, lvNames []string
	allLevers := false
	for _, n := range strings.Split(only, ",") {
		n = strings.TrimSpace(n)
		switch {
		case n == "":
		case n == "levers":
			allLevers = true
		case strings.HasPrefix(n, "lever:"):
			lvNames = append(lvNames, strings.TrimPrefix(n, "lever:"))
		default:
			scNames = append(scNames, n)
		}
	}
	if !levers && (allLevers || len(lvNames) > 0) {
		return nil, nil, errors.New("-only names levers, but -levers=false")
	}
	var outSc []scenario
	if len(scNames) > 0 {
		var err error
		if outSc, err = selectScenarios(scs, strings.Join(scNames, ",")); err != nil {
			return nil, nil, err
		}
	}
	if allLevers {
		return outSc, lvs, nil
	}
	var outLv []lever
	for _, lv := range lvs {
		if slices.Contains(lvNames, lv.name) {
			outLv = append(outLv, lv)
		}
	}
	for _, n := range lvNames {
		if !slices.ContainsFunc(lvs, func(lv lever) bool { return lv.name == n }) {
			var names []string
			for _, lv := range lvs {
				names = append(names, "lever:"+lv.name)
			}
			return nil, nil, fmt.Errorf("-only: unknown lever %q (there are %s, or levers for all)", n, strings.Join(names, ", "))
		}
	}
	return outSc, outLv, nil
}

// readLeverJSON reads the results a -json-dir run kept of the levers:
// every repeat found of each side.
func (d *suiteDoc) readLeverJSON(dir string) error {
	d.leverRepeat = 0
	for _, r := range leverRunsOf(d.levers) {
		key := leverKey(r.lv.name, r.side)
		rs, err := readRepeats(key, func(rep int) string { return leverJSONPath(dir, r.lv.name, r.side, rep) })
		if err != nil {
			return fmt.Errorf("%w (-levers=false leaves the levers out)", err)
		}
		d.leverResults[key] = append(d.leverResults[key], rs...)
		d.leverRepeat = max(d.leverRepeat, len(d.leverResults[key]))
	}
	return nil
}

// envLabel writes a run's server environment for a table heading.
func envLabel(env []string) string {
	if len(env) == 0 {
		return "defaults"
	}
	return "`" + strings.Join(env, " ") + "`"
}

// leversMarkdown renders the section of the levers that have results.
func (d *suiteDoc) leversMarkdown() string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	some := false
	for _, lv := range d.levers {
		if len(d.leverResults[leverKey(lv.name, leverBefore)]) > 0 || len(d.leverResults[leverKey(lv.name, leverAfter)]) > 0 {
			some = true
		}
	}
	if !some {
		return ""
	}
	p("## Levers: before and after\n\n")
	p("Each lever is a setting of the server (an environment variable) whose default is the change\n")
	p("it stands for. Each is measured on one scenario run twice, natively, against freshly started servers\n")
	p("set up as above: once with the variable set to the behaviour before the change (*before*,\n")
	p("`-spawn-env KEY=VALUE` on the command line) and once with the server's defaults (*after*)")
	if d.leverRepeat > 1 {
		p(";\nbefore and after alternate, %d times each, and every figure is the median of the %d runs", d.leverRepeat, d.leverRepeat)
	}
	p(".\n*after / before* below 1 means the default has less of the figure, above 1 more; *better* says\n")
	p("which way is the improvement. The figures mean what they mean in the scenarios (see *What the\n")
	p("figures mean*).\n\n")
	for _, lv := range d.levers {
		before := d.leverResults[leverKey(lv.name, leverBefore)]
		after := d.leverResults[leverKey(lv.name, leverAfter)]
		if len(before) == 0 && len(after) == 0 {
			continue
		}
		p("### %s\n\n%s\n\nScenario: %s\n\n", lv.title, lv.what, lv.about)
		p("```sh\n")
		for _, side := range []struct {
			name string
			rs   []*Result
		}{{leverBefore, before}, {leverAfter, after}} {
			if len(side.rs) > 0 {
				p("# %s\n%s\n", side.name, side.rs[0].Command)
			}
		}
		p("```\n\n")
		p("| figure | before (%s) | after (%s) | after / before | better |\n", envLabel(lv.before), envLabel(lv.after))
		p("|---|--:|--:|--:|---|\n")
		for _, f := range lv.figures {
			better := f.better
			if better == "" {
				better = "–"
			}
			p("| %s | %s | %s | %s | %s |\n", f.label, f.formatMedian(before), f.formatMedian(after),
				ratioOfMedians(f.figure, after, before), better)
		}
		p("\n")
		if lv.note != "" {
			p("%s\n\n", lv.note)
		}
		clean, sending := true, false
		var remarks []string
		for _, side := range []struct {
			name string
			rs   []*Result
		}{{leverBefore, before}, {leverAfter, after}} {
			for i, r := range side.rs {
				var lines []string
				if r.Lost > 0 || r.Duplicated > 0 || r.OutOfOrder > 0 {
					lines = append(lines, fmt.Sprintf("deliveries lost: %d, duplicated: %d, out of order: %d", r.Lost, r.Duplicated, r.OutOfOrder))
					clean = false
				}
				if r.ConnsHeld-r.ConnsDropped < r.Config.Conns {
					clean = false
				}
				sending = sending || r.Config.Senders > 0
				label := side.name
				if len(side.rs) > 1 {
					label += fmt.Sprintf(", run %d", i+1)
				}
				for _, l := range append(lines, r.extraLines()...) {
					remarks = append(remarks, fmt.Sprintf("- %s: %s\n", label, l))
				}
			}
		}
		switch {
		case clean && sending:
			p("Every run held all its connections and delivered every acked message once, in order.\n\n")
		case clean:
			p("Every run held all its connections.\n\n")
		}
		if len(remarks) > 0 {
			p("%s\n", strings.Join(remarks, ""))
		}
	}
	return b.String()
}
