package main

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"math"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Result is everything a run measured.
type Result struct {
	Name    string    `json:"name"`
	Mode    string    `json:"mode"`
	Command string    `json:"command"`
	RunID   string    `json:"runId"`
	Started time.Time `json:"started"`
	Config  Config    `json:"config"`
	Machine Machine   `json:"machine"`
	PID     int       `json:"pid"` // the server's; 0 if unknown
	// FileLimit is the open-files limit the tool (and a server it started)
	// ran with: it bounds the connections one process can hold.
	FileLimit int `json:"fileLimit"`

	UsersCreated int      `json:"usersCreated"` // signed up by this run (the rest existed)
	UsersSec     float64  `json:"usersSec"`     // signing users in (and up)
	ConnectSec   float64  `json:"connectSec"`   // opening and joining every connection
	ConnsHeld    int      `json:"connsHeld"`
	ConnsFailed  int      `json:"connsFailed"`
	SourcesUsed  int      `json:"sourcesUsed"`  // distinct 127.0.0.x addresses the held connections came from
	ConnsDropped int      `json:"connsDropped"` // ended by the server during the run
	DropReasons  []string `json:"dropReasons,omitempty"`

	Planned    int64            `json:"planned"`
	Sent       int64            `json:"sent"`
	Acked      int64            `json:"acked"`
	Failed     int64            `json:"failed"` // error answers
	SendErrors map[string]int64 `json:"sendErrors"`
	Persisted  int64            `json:"persisted"` // messages in the run's rooms afterwards
	Others     int64            `json:"others"`    // message events not from this run

	Outcome

	Delivery Latency `json:"deliveryLatency"` // send → receive, every arrival
	Ack      Latency `json:"ackLatency"`      // send → ack

	MeasuredSec      float64 `json:"measuredSec"` // first send → all delivered (or drain over)
	DeliverySec      float64 `json:"deliverySec"` // first send → last delivery
	AckSec           float64 `json:"ackSec"`      // first send → last ack
	DeliveriesPerSec float64 `json:"deliveriesPerSec"`
	AckedPerSec      float64 `json:"ackedPerSec"`
	PersistedPerSec  float64 `json:"persistedPerSec"` // persisted ÷ (first send → last ack)
	ServerCPUSec     float64 `json:"serverCpuSec"`    // user + system, measured phase; a cluster's processes together
	// CPUByRole splits ServerCPUSec: "primary" (one node: all of it),
	// and in a cluster "edges" and "redis".
	CPUByRole           map[string]float64 `json:"cpuByRole,omitempty"`
	DeliveriesPerCPUSec float64            `json:"deliveriesPerServerCpuSec"`
	ToolCPUSec          float64            `json:"toolCpuSec"`  // this tool's, measured phase
	OtherCPUSec         float64            `json:"otherCpuSec"` // other processes on the machine, measured phase
	// Kernel time of the measured phase: softirq (on loopback, much of
	// the network stack's work for both sides; with tick accounting also
	// charged to whatever process it interrupted) and the hypervisor's
	// steal (charged to none).
	SoftIRQSec   float64 `json:"softirqSec"`
	StealSec     float64 `json:"stealSec"`
	RSSBeforeKB  int64   `json:"rssBeforeKB"`
	RSSAfterKB   int64   `json:"rssAfterKB"`
	MemPerConnKB float64 `json:"memPerConnKB"`
	// The server's Go heap + stacks in use (from /api/chat/metrics) before
	// and after connecting: memory per connection without GC slack.
	HeapBeforeKB  int64   `json:"heapBeforeKB,omitempty"`
	HeapAfterKB   int64   `json:"heapAfterKB,omitempty"`
	HeapPerConnKB float64 `json:"heapPerConnKB,omitempty"`
	// Server counters over the measured phase, when the server exposes
	// them.
	Server    *serverMetrics `json:"server,omitempty"`
	SlotWaits int64          `json:"slotWaits"` // sends that waited for an -inflight slot

	Notes []string `json:"notes,omitempty"`

	sendStart int64
}

// figure is one line of the report.
type figure struct {
	label string
	value func(*Result) float64
	unit  string // printed after the value
	prec  int    // decimals
	known func(*Result) bool
	// noRatio: comparing the modes on this figure means nothing.
	noRatio bool
	// idle: the figure means something in a run without senders too.
	idle bool
	// cluster: the figure exists for a cluster only.
	cluster bool
}

// shown says whether the figure belongs in r's report: a run without
// senders only has connection, memory and CPU figures, one node no
// cluster figures.
func (f figure) shown(r *Result) bool {
	return (f.idle || r.Config.Senders > 0) && (!f.cluster || r.Config.Edges > 0)
}

// cpuOf is a role's share of the server CPU time.
func cpuOf(role string) (value func(*Result) float64, known func(*Result) bool) {
	return func(r *Result) float64 { return r.CPUByRole[role] }, func(r *Result) bool { _, ok := r.CPUByRole[role]; return ok }
}

func hasPID(r *Result) bool { return r.PID != 0 }

var figures = []figure{
	{label: "connections held", value: func(r *Result) float64 { return float64(r.ConnsHeld) }, idle: true},
	{label: "messages planned", value: func(r *Result) float64 { return float64(r.Planned) }},
	{label: "messages sent", value: func(r *Result) float64 { return float64(r.Sent) }},
	{label: "messages acked", value: func(r *Result) float64 { return float64(r.Acked) }},
	{label: "messages persisted", value: func(r *Result) float64 { return float64(r.Persisted) }},
	{label: "deliveries expected", value: func(r *Result) float64 { return float64(r.Expected) }},
	{label: "deliveries received", value: func(r *Result) float64 { return float64(r.Received) }},
	{label: "lost", value: func(r *Result) float64 { return float64(r.Lost) }},
	{label: "duplicated", value: func(r *Result) float64 { return float64(r.Duplicated) }},
	{label: "out of order", value: func(r *Result) float64 { return float64(r.OutOfOrder) }},
	{label: "deliveries/s", value: func(r *Result) float64 { return r.DeliveriesPerSec }, prec: 0},
	{label: "acked messages/s", value: func(r *Result) float64 { return r.AckedPerSec }, prec: 1},
	{label: "persisted messages/s", value: func(r *Result) float64 { return r.PersistedPerSec }, prec: 1},
	{label: "send→receive p50", value: func(r *Result) float64 { return r.Delivery.P50 }, unit: " ms", prec: 1},
	{label: "send→receive p95", value: func(r *Result) float64 { return r.Delivery.P95 }, unit: " ms", prec: 1},
	{label: "send→receive p99", value: func(r *Result) float64 { return r.Delivery.P99 }, unit: " ms", prec: 1},
	{label: "send→receive max", value: func(r *Result) float64 { return r.Delivery.Max }, unit: " ms", prec: 1},
	{label: "send→ack p50", value: func(r *Result) float64 { return r.Ack.P50 }, unit: " ms", prec: 1},
	{label: "send→ack p95", value: func(r *Result) float64 { return r.Ack.P95 }, unit: " ms", prec: 1},
	{label: "send→ack p99", value: func(r *Result) float64 { return r.Ack.P99 }, unit: " ms", prec: 1},
	{label: "send→ack max", value: func(r *Result) float64 { return r.Ack.Max }, unit: " ms", prec: 1},
	{label: "server CPU (measured phase)", value: func(r *Result) float64 { return r.ServerCPUSec }, unit: " s", prec: 2, known: hasPID, idle: true},
	cpuFigure("primary CPU (measured phase)", rolePrimary, true),
	cpuFigure("edges' CPU (measured phase)", roleEdges, true),
	cpuFigure("Redis CPU (measured phase)", roleRedis, true),
	{label: "deliveries per server CPU-second", value: func(r *Result) float64 { return r.DeliveriesPerCPUSec }, prec: 0, known: func(r *Result) bool { return r.PID != 0 && r.ServerCPUSec > 0 }},
	{label: "server memory per connection (RSS)", value: func(r *Result) float64 { return r.MemPerConnKB }, unit: " KiB", prec: 1, known: func(r *Result) bool { return r.RSSBeforeKB > 0 && r.RSSAfterKB > 0 }, idle: true},
	{label: "server heap + stacks per connection", value: func(r *Result) float64 { return r.HeapPerConnKB }, unit: " KiB", prec: 1, known: func(r *Result) bool { return r.HeapAfterKB > 0 }, idle: true},
	{label: "messages per commit (server)", value: func(r *Result) float64 { return r.Server.CommittedMsgs / r.Server.Commits }, prec: 1, known: func(r *Result) bool { return r.Server != nil && r.Server.Commits > 0 }, noRatio: true},
	{label: "slow-client drops (server)", value: func(r *Result) float64 { return r.Server.SlowClientDrops }, known: func(r *Result) bool { return r.Server != nil }, noRatio: true},
	{label: "tool CPU (measured phase)", value: func(r *Result) float64 { return r.ToolCPUSec }, unit: " s", prec: 2, noRatio: true, idle: true},
	{label: "tool CPU per delivery", value: func(r *Result) float64 { return r.ToolCPUSec / float64(r.Received) * 1e6 }, unit: " µs", prec: 2, known: func(r *Result) bool { return r.Received > 0 }, noRatio: true},
	{label: "kernel softirq, all CPUs (measured phase)", value: func(r *Result) float64 { return r.SoftIRQSec }, unit: " s", prec: 2, known: hasPID, noRatio: true, idle: true},
	{label: "other processes' CPU (measured phase)", value: func(r *Result) float64 { return math.Round(r.OtherCPUSec*100) / 100 }, unit: " s", prec: 2, known: hasPID, noRatio: true, idle: true},
}

// cpuFigure is a role's CPU time in the measured phase.
func cpuFigure(label, role string, cluster bool) figure {
	value, known := cpuOf(role)
	return figure{label: label, value: value, known: known, unit: " s", prec: 2, idle: true, cluster: cluster}
}

// Figures the levers of the suite compare, besides those of figures.
var (
	connectFigure = figure{label: "connect + join, every connection", value: func(r *Result) float64 { return r.ConnectSec }, unit: " s", prec: 1, idle: true}
	// cpuPerKMessages is the server's CPU time in the measured phase per
	// 1,000 persisted messages.
	cpuPerKMessages = figure{label: "server CPU per 1,000 persisted messages", value: func(r *Result) float64 { return r.ServerCPUSec * 1000 / float64(r.Persisted) },
		unit: " s", prec: 3, known: func(r *Result) bool { return r.PID != 0 && r.ServerCPUSec > 0 && r.Persisted > 0 }}
)

// figureNamed is the figure of figures with this label; it panics if
// there is none (the suite's tables are fixed data).
func figureNamed(label string) figure {
	for _, f := range figures {
		if f.label == label {
			return f
		}
	}
	panic("chatbench: no figure " + label)
}

func (f figure) format(r *Result) string {
	if f.known != nil && !f.known(r) {
		return "n/a"
	}
	return fmt.Sprintf("%.*f%s", f.prec, f.value(r), f.unit)
}

// printResult writes a run's report as a table.
func printResult(w io.Writer, r *Result) {
	c := r.Config
	fmt.Fprintf(w, "\n%s — %s (run %s)\n", r.Name, r.Mode, r.RunID)
	fmt.Fprintf(w, "%d rooms × %d members, %d users, %d connections from %d source address(es), %s\n",
		c.Rooms, c.Members, c.Users, c.Conns, r.SourcesUsed, c.load())
	if c.Edges > 0 {
		fmt.Fprintf(w, "server: a cluster on this machine, Redis, the primary and %d edges; the connections on the edges\n", c.Edges)
	}
	if len(c.SpawnEnv) > 0 {
		fmt.Fprintf(w, "server environment: %s\n", strings.Join(c.SpawnEnv, " "))
	}
	fmt.Fprintf(w, "set-up: users %.1fs (%d created), connect+join %.1fs; measured %.1fs\n\n",
		r.UsersSec, r.UsersCreated, r.ConnectSec, r.MeasuredSec)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range figures {
		if f.shown(r) {
			fmt.Fprintf(tw, "  %s\t%12s\n", f.label, f.format(r))
		}
	}
	_ = tw.Flush()
	for _, line := range r.extraLines() {
		fmt.Fprintln(w, line)
	}
}

// load describes what the senders do.
func (c Config) load() string {
	var what string
	switch {
	case c.Senders == 0:
		return fmt.Sprintf("no senders: the connections sit for %s", c.Duration)
	case c.Burst > 0:
		what = fmt.Sprintf("%d sender(s) per room, a burst of %d each", c.Senders, c.Burst)
	default:
		what = fmt.Sprintf("%d sender(s) per room, %g msg/s each for %s", c.Senders, c.Rate, c.Duration)
	}
	if c.Inflight > 0 {
		what += fmt.Sprintf(", at most %d in flight", c.Inflight)
	}
	return what
}

// extraLines are the remarks on a run: failures and anything unusual.
func (r *Result) extraLines() []string {
	var out []string
	if r.ConnsFailed > 0 {
		out = append(out, fmt.Sprintf("connections that failed to open: %d", r.ConnsFailed))
	}
	if r.ConnsDropped > 0 {
		out = append(out, fmt.Sprintf("connections ended by the server: %d (%s)", r.ConnsDropped, strings.Join(r.DropReasons, "; ")))
	}
	if len(r.SendErrors) > 0 {
		var parts []string
		for _, k := range slices.Sorted(maps.Keys(r.SendErrors)) {
			parts = append(parts, fmt.Sprintf("%s: %d", k, r.SendErrors[k]))
		}
		out = append(out, "send errors: "+strings.Join(parts, ", "))
	}
	if r.Unacked > 0 || r.Foreign > 0 || r.Others > 0 {
		out = append(out, fmt.Sprintf("arrivals of unacked messages: %d, from a wrong sender or room: %d, not from this run: %d", r.Unacked, r.Foreign, r.Others))
	}
	if r.SlotWaits > 0 {
		out = append(out, fmt.Sprintf("sends that waited for an -inflight slot (%d in flight): %d", r.Config.Inflight, r.SlotWaits))
	}
	if r.Persisted != r.Acked {
		out = append(out, fmt.Sprintf("persisted (%d) ≠ acked (%d)", r.Persisted, r.Acked))
	}
	out = append(out, r.Notes...)
	return out
}

func writeJSON(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
