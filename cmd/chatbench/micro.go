package main

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// The micro-benchmarks (`go test -bench` over ./internal/...) go into the
// same document as the load runs: `make bench` runs them with -count N
// into a file, and the suite summarizes it, one line per benchmark with
// the median of its N runs.

// microBench is one benchmark's runs.
type microBench struct {
	Pkg     string
	Name    string               // without the -GOMAXPROCS suffix
	Units   []string             // in the order go test printed them
	Samples map[string][]float64 // per unit, one per run
}

// parseMicro reads `go test -bench` output (several packages, -count
// runs of each benchmark); other lines are ignored. Benchmarks keep the
// order of their first appearance.
func parseMicro(r io.Reader) ([]*microBench, error) {
	var out []*microBench
	index := map[string]*microBench{}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if p, ok := strings.CutPrefix(line, "pkg: "); ok {
			pkg = strings.TrimSpace(p)
			continue
		}
		name, values, ok := parseBenchLine(line)
		if !ok {
			continue
		}
		key := pkg + " " + name
		mb := index[key]
		if mb == nil {
			mb = &microBench{Pkg: pkg, Name: name, Samples: map[string][]float64{}}
			index[key] = mb
			out = append(out, mb)
		}
		for _, v := range values {
			if _, seen := mb.Samples[v.unit]; !seen {
				mb.Units = append(mb.Units, v.unit)
			}
			mb.Samples[v.unit] = append(mb.Samples[v.unit], v.value)
		}
	}
	return out, sc.Err()
}

type benchValue struct {
	value float64
	unit  string
}

// parseBenchLine reads "BenchmarkX/sub-2   1234   56.7 ns/op   8 B/op …";
// ok is false for any other line.
func parseBenchLine(line string) (name string, values []benchValue, ok bool) {
	f := strings.Fields(line)
	if len(f) < 4 || !strings.HasPrefix(f[0], "Benchmark") || len(f)%2 != 0 {
		return "", nil, false
	}
	if _, err := strconv.ParseInt(f[1], 10, 64); err != nil {
		return "", nil, false
	}
	name = f[0]
	if i := strings.LastIndexByte(name, '-'); i > 0 {
		if _, err := strconv.Atoi(name[i+1:]); err == nil {
			name = name[:i]
		}
	}
	for i := 2; i+1 < len(f); i += 2 {
		v, err := strconv.ParseFloat(f[i], 64)
		if err != nil {
			return "", nil, false
		}
		values = append(values, benchValue{v, f[i+1]})
	}
	return name, values, true
}

// median of xs (the mean of the middle two for an even count); 0 for none.
func median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// runs is how many times the benchmarks ran (the most samples of any).
func microRuns(benches []*microBench) int {
	n := 0
	for _, mb := range benches {
		for _, s := range mb.Samples {
			n = max(n, len(s))
		}
	}
	return n
}

// microMarkdown renders the benchmarks as a table: ns/op, B/op and
// allocs/op in their own columns, any other metric (b.ReportMetric) in
// the last one.
func microMarkdown(benches []*microBench) string {
	var b strings.Builder
	b.WriteString("| package | benchmark | ns/op | B/op | allocs/op | other metrics |\n|---|---|--:|--:|--:|---|\n")
	for _, mb := range benches {
		cell := func(unit string) string {
			s, ok := mb.Samples[unit]
			if !ok {
				return "–"
			}
			return formatMetric(median(s))
		}
		var other []string
		for _, u := range mb.Units {
			if u != "ns/op" && u != "B/op" && u != "allocs/op" {
				other = append(other, formatMetric(median(mb.Samples[u]))+" "+u)
			}
		}
		fmt.Fprintf(&b, "| `%s` | `%s` | %s | %s | %s | %s |\n", strings.TrimPrefix(mb.Pkg, "pocketchat/"),
			strings.TrimPrefix(mb.Name, "Benchmark"), cell("ns/op"), cell("B/op"), cell("allocs/op"), strings.Join(other, ", "))
	}
	return b.String()
}

// formatMetric prints a whole value as it is (with thousands separators
// from 10,000 on) and others with about 3 significant digits, without an
// exponent.
func formatMetric(v float64) string {
	switch a := max(v, -v); {
	case v == math.Trunc(v) && a < 1e15, a >= 100:
		return thousands(math.Round(v), 0)
	case a >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	case a >= 1:
		return strconv.FormatFloat(v, 'f', 2, 64)
	default:
		return strconv.FormatFloat(v, 'g', 3, 64)
	}
}
