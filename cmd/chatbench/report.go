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

	UsersCreated int      `json:"usersCreated"` // signed up by this run (the rest existed)
	UsersSec     float64  `json:"usersSec"`     // signing users in (and up)
	ConnectSec   float64  `json:"connectSec"`   // opening and joining every connection
	ConnsHeld    int      `json:"connsHeld"`
	ConnsFailed  int      `json:"connsFailed"`
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

	MeasuredSec         float64 `json:"measuredSec"` // first send → all delivered (or drain over)
	DeliverySec         float64 `json:"deliverySec"` // first send → last delivery
	AckSec              float64 `json:"ackSec"`      // first send → last ack
	DeliveriesPerSec    float64 `json:"deliveriesPerSec"`
	AckedPerSec         float64 `json:"ackedPerSec"`
	ServerCPUSec        float64 `json:"serverCpuSec"` // user + system, measured phase
	DeliveriesPerCPUSec float64 `json:"deliveriesPerServerCpuSec"`
	ToolCPUSec          float64 `json:"toolCpuSec"`  // this tool's, measured phase
	OtherCPUSec         float64 `json:"otherCpuSec"` // everything else on the machine, measured phase
	RSSBeforeKB         int64   `json:"rssBeforeKB"`
	RSSAfterKB          int64   `json:"rssAfterKB"`
	MemPerConnKB        float64 `json:"memPerConnKB"`

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
}

func hasPID(r *Result) bool { return r.PID != 0 }

var figures = []figure{
	{label: "connections held", value: func(r *Result) float64 { return float64(r.ConnsHeld) }},
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
	{label: "send→receive p50", value: func(r *Result) float64 { return r.Delivery.P50 }, unit: " ms", prec: 1},
	{label: "send→receive p95", value: func(r *Result) float64 { return r.Delivery.P95 }, unit: " ms", prec: 1},
	{label: "send→receive p99", value: func(r *Result) float64 { return r.Delivery.P99 }, unit: " ms", prec: 1},
	{label: "send→receive max", value: func(r *Result) float64 { return r.Delivery.Max }, unit: " ms", prec: 1},
	{label: "send→ack p50", value: func(r *Result) float64 { return r.Ack.P50 }, unit: " ms", prec: 1},
	{label: "send→ack p95", value: func(r *Result) float64 { return r.Ack.P95 }, unit: " ms", prec: 1},
	{label: "send→ack p99", value: func(r *Result) float64 { return r.Ack.P99 }, unit: " ms", prec: 1},
	{label: "send→ack max", value: func(r *Result) float64 { return r.Ack.Max }, unit: " ms", prec: 1},
	{label: "server CPU (measured phase)", value: func(r *Result) float64 { return r.ServerCPUSec }, unit: " s", prec: 2, known: hasPID},
	{label: "deliveries per server CPU-second", value: func(r *Result) float64 { return r.DeliveriesPerCPUSec }, prec: 0, known: func(r *Result) bool { return r.PID != 0 && r.ServerCPUSec > 0 }},
	{label: "server memory per connection", value: func(r *Result) float64 { return r.MemPerConnKB }, unit: " KiB", prec: 1, known: func(r *Result) bool { return r.RSSBeforeKB > 0 && r.RSSAfterKB > 0 }},
	{label: "tool CPU (measured phase)", value: func(r *Result) float64 { return r.ToolCPUSec }, unit: " s", prec: 2, noRatio: true},
	{label: "other processes' CPU (measured phase)", value: func(r *Result) float64 { return math.Round(r.OtherCPUSec*100) / 100 }, unit: " s", prec: 2, known: hasPID, noRatio: true},
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
	what := fmt.Sprintf("%g msg/s per sender for %s", c.Rate, c.Duration)
	if c.Burst > 0 {
		what = fmt.Sprintf("a burst of %d per sender", c.Burst)
	}
	fmt.Fprintf(w, "%d rooms × %d members, %d users, %d connections, %d sender(s) per room, %s\n",
		c.Rooms, c.Members, c.Users, c.Conns, c.Senders, what)
	fmt.Fprintf(w, "set-up: users %.1fs (%d created), connect+join %.1fs; measured %.1fs\n\n",
		r.UsersSec, r.UsersCreated, r.ConnectSec, r.MeasuredSec)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range figures {
		fmt.Fprintf(tw, "  %s\t%12s\n", f.label, f.format(r))
	}
	_ = tw.Flush()
	for _, line := range r.extraLines() {
		fmt.Fprintln(w, line)
	}
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
