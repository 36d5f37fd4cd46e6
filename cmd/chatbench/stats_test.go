package main

import (
	"testing"
)

func TestPercentile(t *testing.T) {
	one := []int64{7}
	ten := []int64{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}
	hundred := make([]int64, 100)
	for i := range hundred {
		hundred[i] = int64(i + 1)
	}
	tests := []struct {
		name   string
		sorted []int64
		p      float64
		want   int64
	}{
		{"empty", nil, 50, 0},
		{"one p50", one, 50, 7},
		{"one p99", one, 99, 7},
		{"ten p50", ten, 50, 5},
		{"ten p95", ten, 95, 10},
		{"ten p10", ten, 10, 1},
		{"ten p11", ten, 11, 2},
		{"ten p100", ten, 100, 10},
		{"ten p0 is the minimum", ten, 0, 1},
		{"hundred p95", hundred, 95, 95},
		{"hundred p99", hundred, 99, 99},
		{"hundred p99.5", hundred, 99.5, 100},
		{"two p50", []int64{3, 9}, 50, 3},
		{"two p51", []int64{3, 9}, 51, 9},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Percentile(tt.sorted, tt.p); got != tt.want {
				t.Errorf("Percentile(%v, %v) = %d, want %d", tt.sorted, tt.p, got, tt.want)
			}
		})
	}
}

func TestSummarize(t *testing.T) {
	ms := int64(1e6)
	ns := []int64{4 * ms, 1 * ms, 3 * ms, 2 * ms}
	got := Summarize(ns)
	want := Latency{Count: 4, P50: 2, P95: 4, P99: 4, Max: 4}
	if got != want {
		t.Errorf("Summarize = %+v, want %+v", got, want)
	}
	if got := Summarize(nil); got != (Latency{}) {
		t.Errorf("Summarize(nil) = %+v, want zero", got)
	}
}

// d is a delivery from sender s with its sequence number and server seq.
func d(s int32, sseq int32, seq int64) Delivery { return Delivery{Sender: s, SSeq: sseq, Seq: seq} }

func TestAccount(t *testing.T) {
	// Two rooms: connections 0, 1, 2 in room 0 (0 sends), 3, 4 in room 1
	// (3 sends). acks: sender 0 sent three messages, all acked; sender 3
	// sent two, the second not acked.
	roomOf := []int{0, 0, 0, 1, 1}
	acked := [][]bool{{true, true, true}, nil, nil, {true, false}, nil}
	all0 := []Delivery{d(0, 1, 10), d(0, 2, 11), d(0, 3, 12)}
	all3 := []Delivery{d(3, 1, 20)}

	tests := []struct {
		name string
		got  [][]Delivery
		want Outcome
	}{
		{
			name: "perfect",
			got:  [][]Delivery{all0, all0, all0, all3, all3},
			want: Outcome{Expected: 11, Received: 11},
		},
		{
			name: "one lost, one receiver got nothing",
			got:  [][]Delivery{all0, {d(0, 1, 10), d(0, 3, 12)}, nil, all3, all3},
			want: Outcome{Expected: 11, Received: 7, Lost: 4},
		},
		{
			name: "duplicate is not counted twice nor out of order",
			got:  [][]Delivery{all0, {d(0, 1, 10), d(0, 2, 11), d(0, 2, 11), d(0, 3, 12)}, all0, all3, {d(3, 1, 20), d(3, 1, 20), d(3, 1, 20)}},
			want: Outcome{Expected: 11, Received: 11, Duplicated: 3},
		},
		{
			name: "swapped pair: one late arrival",
			got:  [][]Delivery{all0, {d(0, 2, 11), d(0, 1, 10), d(0, 3, 12)}, all0, all3, all3},
			want: Outcome{Expected: 11, Received: 11, OutOfOrder: 1},
		},
		{
			name: "server seq goes backwards",
			got:  [][]Delivery{all0, all0, {d(0, 1, 10), d(0, 2, 15), d(0, 3, 12)}, all3, all3},
			want: Outcome{Expected: 11, Received: 11, OutOfOrder: 1},
		},
		{
			name: "server seq repeats",
			got:  [][]Delivery{all0, all0, {d(0, 1, 10), d(0, 2, 10), d(0, 3, 12)}, all3, all3},
			want: Outcome{Expected: 11, Received: 11, OutOfOrder: 1},
		},
		{
			name: "sender order broken while seq increases",
			got:  [][]Delivery{all0, all0, {d(0, 1, 10), d(0, 3, 11), d(0, 2, 12)}, all3, all3},
			want: Outcome{Expected: 11, Received: 11, OutOfOrder: 1},
		},
		{
			name: "unacked message that arrived anyway",
			got:  [][]Delivery{all0, all0, all0, {d(3, 1, 20), d(3, 2, 21)}, {d(3, 1, 20), d(3, 2, 21)}},
			want: Outcome{Expected: 11, Received: 11, Unacked: 2},
		},
		{
			name: "foreign deliveries: other room, unknown sender, unused seq",
			got:  [][]Delivery{all0, all0, all0, {d(3, 1, 20), d(0, 1, 10), d(1, 1, 5), d(3, 9, 30)}, {d(3, 1, 20), d(3, 0, 1), d(99, 1, 1)}},
			want: Outcome{Expected: 11, Received: 11, Foreign: 5},
		},
		{
			name: "all lost",
			got:  make([][]Delivery, 5),
			want: Outcome{Expected: 11, Lost: 11},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Account(roomOf, acked, tt.got); got != tt.want {
				t.Errorf("Account = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestAccountSeveralSenders: two senders interleaved in one room; each
// sender's order and the room order are checked separately.
func TestAccountSeveralSenders(t *testing.T) {
	roomOf := []int{0, 0, 0}
	acked := [][]bool{{true, true}, {true, true}, nil}
	good := []Delivery{d(0, 1, 1), d(1, 1, 2), d(1, 2, 3), d(0, 2, 4)}
	bad := []Delivery{d(1, 1, 2), d(0, 1, 1), d(0, 2, 4), d(1, 2, 3)}
	got := Account(roomOf, acked, [][]Delivery{good, good, bad})
	want := Outcome{Expected: 12, Received: 12, OutOfOrder: 2}
	if got != want {
		t.Errorf("Account = %+v, want %+v", got, want)
	}
}

func TestParseText(t *testing.T) {
	text := formatText(nil, "ab12", 42, 7, 123456789)
	tests := []struct {
		name string
		text string
		run  string
		ok   bool
	}{
		{"ours", string(text), "ab12", true},
		{"other run", string(text), "zz99", false},
		{"not ours", "hello world", "ab12", false},
		{"truncated", "cb ab12 42 7", "ab12", false},
		{"bad number", "cb ab12 42 x 5", "ab12", false},
		{"negative", "cb ab12 -1 7 5", "ab12", false},
		{"empty", "", "ab12", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, seq, sent, ok := parseText([]byte(tt.text), tt.run)
			if ok != tt.ok {
				t.Fatalf("parseText(%q) ok = %v, want %v", tt.text, ok, tt.ok)
			}
			if ok && (s != 42 || seq != 7 || sent != 123456789) {
				t.Errorf("parseText = %d %d %d, want 42 7 123456789", s, seq, sent)
			}
		})
	}
}

func TestSubscriptionTopic(t *testing.T) {
	// What the JS SDK posts for
	// pb.collection('messages').subscribe('*', cb, {filter: 'room="r1"'}).
	got := subscriptionTopic("r1")
	want := "messages/*?options=%7B%22query%22%3A%7B%22filter%22%3A%22room%3D%5C%22r1%5C%22%22%7D%7D"
	if got != want {
		t.Errorf("subscriptionTopic = %s\nwant               %s", got, want)
	}
}

func TestRatio(t *testing.T) {
	f := figure{value: func(r *Result) float64 { return float64(r.Sent) }}
	unknown := figure{value: f.value, known: func(r *Result) bool { return r.PID != 0 }}
	res := func(sent int64) *Result { return &Result{Sent: sent} }
	tests := []struct {
		f    figure
		a, b int64
		want string
	}{
		{f, 10, 10, "1"},
		{f, 0, 0, "="},
		{f, 5, 0, "–"},
		{f, 1, 4, "0.25"},
		{f, 1, 30, "0.033"},
		{f, 12, 34567, "0.00035"},
		{f, 95, 10, "9.50"},
		{f, 1000, 96, "10"},
		{unknown, 1, 2, "–"},
	}
	for _, tt := range tests {
		if got := ratioOfMedians(tt.f, []*Result{res(tt.a)}, []*Result{res(tt.b)}); got != tt.want {
			t.Errorf("ratio(%d, %d) = %q, want %q", tt.a, tt.b, got, tt.want)
		}
	}
}
