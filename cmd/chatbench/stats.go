package main

import (
	"math"
	"slices"
	"time"
)

// Delivery is one message event as a receiving connection saw it. The
// fields come from the message's text (Sender, SSeq, the send time) and
// from the server (Seq), plus the arrival time.
type Delivery struct {
	Sender int32 // the sending connection's index
	SSeq   int32 // the sender's sequence number, from 1
	Seq    int64 // the server's room order (messages.seq)
	Lat    int64 // arrival minus send time, in nanoseconds
}

// Outcome is the accounting of every delivery of a run.
type Outcome struct {
	// Expected is acked messages × the connections of their room: every
	// connection that joined a room must get each acked message of it once,
	// the sender's own included.
	Expected int64 `json:"expected"`
	// Received counts the expected deliveries that arrived (once or more).
	Received int64 `json:"received"`
	// Lost is Expected − Received.
	Lost int64 `json:"lost"`
	// Duplicated counts arrivals of a message a connection already had.
	Duplicated int64 `json:"duplicated"`
	// OutOfOrder counts arrivals (not duplicates) whose server seq is not
	// above every seq the connection saw before, or whose sender sequence
	// number is not above every earlier one of the same sender.
	OutOfOrder int64 `json:"outOfOrder"`
	// Unacked counts arrivals of messages whose sender never got an ack
	// (committed, but the ack was lost or came too late): neither expected
	// nor lost.
	Unacked int64 `json:"unacked"`
	// Foreign counts arrivals from a sender that is not in the receiver's
	// room, or with a sequence number the sender never used.
	Foreign int64 `json:"foreign"`
}

// Account checks every connection's deliveries against what was acked.
// roomOf[c] is connection c's room; acked[c][i] says whether the message
// of sender c with sequence number i+1 was acked (nil for connections that
// did not send); got[c] is what connection c received, in arrival order.
// Every connection is a receiver in its room.
func Account(roomOf []int, acked [][]bool, got [][]Delivery) Outcome {
	var out Outcome
	sendersOf := map[int][]int{}
	for c, a := range acked {
		if a != nil {
			sendersOf[roomOf[c]] = append(sendersOf[roomOf[c]], c)
		}
	}
	seen := map[int32][]bool{} // per sender, reused across receivers
	last := map[int32]int32{}  // highest sender seq seen, per sender
	for c, deliveries := range got {
		room := roomOf[c]
		clear(last)
		for _, s := range sendersOf[room] {
			seen[int32(s)] = make([]bool, len(acked[s]))
		}
		var lastSeq int64 = math.MinInt64
		for _, d := range deliveries {
			sn, ok := seen[d.Sender]
			if !ok || int(d.Sender) >= len(roomOf) || roomOf[d.Sender] != room || d.SSeq < 1 || int(d.SSeq) > len(sn) {
				out.Foreign++
				continue
			}
			if sn[d.SSeq-1] {
				out.Duplicated++
				continue
			}
			sn[d.SSeq-1] = true
			if !acked[d.Sender][d.SSeq-1] {
				out.Unacked++
			}
			prev, had := last[d.Sender]
			if d.Seq <= lastSeq || (had && d.SSeq <= prev) {
				out.OutOfOrder++
			}
			lastSeq = max(lastSeq, d.Seq)
			last[d.Sender] = max(prev, d.SSeq)
		}
		for _, s := range sendersOf[room] {
			sn := seen[int32(s)]
			for i, a := range acked[s] {
				if !a {
					continue
				}
				out.Expected++
				if sn[i] {
					out.Received++
				} else {
					out.Lost++
				}
			}
		}
		for _, s := range sendersOf[room] {
			delete(seen, int32(s))
		}
	}
	return out
}

// Latency summarizes a set of durations.
type Latency struct {
	Count int64   `json:"count"`
	P50   float64 `json:"p50Ms"`
	P95   float64 `json:"p95Ms"`
	P99   float64 `json:"p99Ms"`
	Max   float64 `json:"maxMs"`
}

// Summarize sorts ns (nanoseconds) in place and returns its percentiles in
// milliseconds.
func Summarize(ns []int64) Latency {
	slices.Sort(ns)
	l := Latency{Count: int64(len(ns))}
	if len(ns) == 0 {
		return l
	}
	ms := func(v int64) float64 { return float64(v) / float64(time.Millisecond) }
	l.P50 = ms(Percentile(ns, 50))
	l.P95 = ms(Percentile(ns, 95))
	l.P99 = ms(Percentile(ns, 99))
	l.Max = ms(ns[len(ns)-1])
	return l
}

// Percentile is the nearest-rank percentile p (0 < p ≤ 100) of sorted: the
// smallest value with at least p% of the values at or below it. It is 0
// for an empty slice.
func Percentile(sorted []int64, p float64) int64 {
	n := len(sorted)
	if n == 0 {
		return 0
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}
