package server

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// seqPublished records what a sequencer publishes, in order.
type seqPublished struct {
	mu   sync.Mutex
	list []string
}

// fn returns a publish callback that records label.
func (p *seqPublished) fn(label string) func() {
	return func() {
		p.mu.Lock()
		p.list = append(p.list, label)
		p.mu.Unlock()
	}
}

func (p *seqPublished) get() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.list)
}

func (p *seqPublished) check(t *testing.T, when string, want ...string) {
	t.Helper()
	if got := p.get(); !slices.Equal(got, want) {
		t.Errorf("%s: seqPublished %q, want %q", when, got, want)
	}
}

func seqStartAt(last int64) func() (int64, error) {
	return func() (int64, error) { return last, nil }
}

// seqBegin begins a message with key name in room and checks its seq.
func seqBegin(t *testing.T, q *sequencer, key, room string, wantSeq int64) {
	t.Helper()
	seq, err := q.begin(key, room)
	if err != nil {
		t.Fatalf("begin(%s): %v", key, err)
	}
	if seq != wantSeq {
		t.Fatalf("begin(%s) = seq %d, want %d", key, seq, wantSeq)
	}
}

func TestSequencerInOrder(t *testing.T) {
	q := newSequencer(seqStartAt(0))
	var p seqPublished
	for i, k := range []string{"m1", "m2", "m3"} {
		seqBegin(t, q, k, "r", int64(i+1))
	}
	q.done("m1", p.fn("m1"))
	p.check(t, "after done m1", "m1")
	q.done("m2", p.fn("m2"))
	q.done("m3", p.fn("m3"))
	p.check(t, "after done m3", "m1", "m2", "m3")
}

func TestSequencerOutOfOrder(t *testing.T) {
	q := newSequencer(seqStartAt(0))
	var p seqPublished
	for i, k := range []string{"m1", "m2", "m3"} {
		seqBegin(t, q, k, "r", int64(i+1))
	}
	q.done("m1", p.fn("m1"))
	q.done("m3", p.fn("m3"))
	p.check(t, "m3 done before m2", "m1")
	q.done("m2", p.fn("m2"))
	p.check(t, "after m2", "m1", "m2", "m3")
}

func TestSequencerFailedSlotSkipped(t *testing.T) {
	tests := []struct {
		name  string
		order []string // done calls; "!" prefix = failed
		want  []string
	}{
		{"failed middle", []string{"!m2", "m3", "m1"}, []string{"m1", "m3"}},
		{"failed head", []string{"m2", "m3", "!m1"}, []string{"m2", "m3"}},
		{"failed tail", []string{"m1", "m2", "!m3"}, []string{"m1", "m2"}},
		{"all failed", []string{"!m3", "!m1", "!m2"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := newSequencer(seqStartAt(0))
			var p seqPublished
			for i, k := range []string{"m1", "m2", "m3"} {
				seqBegin(t, q, k, "r", int64(i+1))
			}
			for _, k := range tt.order {
				if k[0] == '!' {
					q.done(k[1:], nil)
				} else {
					q.done(k, p.fn(k))
				}
			}
			p.check(t, "end", tt.want...)
			// The room is free again: the next message goes out at once.
			seqBegin(t, q, "m4", "r", 4)
			q.done("m4", p.fn("m4"))
			p.check(t, "after m4", append(slices.Clone(tt.want), "m4")...)
			seqCheckEmpty(t, q)
		})
	}
}

func TestSequencerRoomsIndependent(t *testing.T) {
	q := newSequencer(seqStartAt(0))
	var p seqPublished
	seqBegin(t, q, "a1", "A", 1)
	seqBegin(t, q, "b1", "B", 2)
	seqBegin(t, q, "a2", "A", 3)
	seqBegin(t, q, "b2", "B", 4)

	q.done("b1", p.fn("b1"))
	q.done("a2", p.fn("a2"))
	q.done("b2", p.fn("b2"))
	p.check(t, "a1 pending", "b1", "b2")
	q.done("a1", p.fn("a1"))
	p.check(t, "a1 done", "b1", "b2", "a1", "a2")
}

func TestSequencerUnknownKeyPublishedAtOnce(t *testing.T) {
	q := newSequencer(seqStartAt(0))
	var p seqPublished
	seqBegin(t, q, "m1", "r", 1) // pending: does not hold back a key begin never saw
	q.done("other", p.fn("other"))
	p.check(t, "unknown key", "other")
	q.done("other", nil) // a failure of an unknown key is a no-op
	p.check(t, "unknown failure", "other")
}

func TestSequencerStuckSlot(t *testing.T) {
	const stuck = 50 * time.Millisecond
	q := newSequencer(seqStartAt(0))
	q.stuckAfter = stuck
	var p seqPublished

	start := time.Now()
	seqBegin(t, q, "m1", "r", 1) // never finishes in time
	seqBegin(t, q, "m2", "r", 2)
	q.done("m2", p.fn("m2"))
	p.check(t, "m1 pending")

	// Nothing else is called: the timer publishes m2 once m1 counts as stuck.
	seqWaitFor(t, 2*time.Second, func() bool { return len(p.get()) == 1 })
	if took := time.Since(start); took < stuck {
		t.Errorf("m2 seqPublished %v after m1 began, want no sooner than stuckAfter (%v)", took, stuck)
	}
	p.check(t, "after stuckAfter", "m2")

	// m1 no longer holds the room back.
	seqBegin(t, q, "m3", "r", 3)
	q.done("m3", p.fn("m3"))
	p.check(t, "m3 done", "m2", "m3")

	// m1 commits late: seqPublished anyway, not lost.
	q.done("m1", p.fn("m1"))
	p.check(t, "m1 late", "m2", "m3", "m1")

	// The room works normally afterwards.
	seqBegin(t, q, "m4", "r", 4)
	q.done("m4", p.fn("m4"))
	p.check(t, "m4", "m2", "m3", "m1", "m4")
	seqCheckEmpty(t, q)
}

// A stuck slot that fails later is simply dropped.
func TestSequencerStuckSlotFailsLate(t *testing.T) {
	q := newSequencer(seqStartAt(0))
	q.stuckAfter = 20 * time.Millisecond
	var p seqPublished
	seqBegin(t, q, "m1", "r", 1)
	seqBegin(t, q, "m2", "r", 2)
	q.done("m2", p.fn("m2"))
	seqWaitFor(t, 2*time.Second, func() bool { return len(p.get()) == 1 })
	q.done("m1", nil)
	p.check(t, "end", "m2")
	seqCheckEmpty(t, q)
}

func TestSequencerLoad(t *testing.T) {
	var calls atomic.Int32
	q := newSequencer(func() (int64, error) {
		calls.Add(1)
		return 41, nil
	})
	var wg sync.WaitGroup
	seqs := make([]int64, 20)
	for i := range seqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			seq, err := q.begin(i, fmt.Sprint("r", i%3))
			if err != nil {
				t.Errorf("begin: %v", err)
			}
			seqs[i] = seq
		}()
	}
	wg.Wait()
	if n := calls.Load(); n != 1 {
		t.Errorf("load called %d times, want 1", n)
	}
	slices.Sort(seqs)
	for i, s := range seqs {
		if want := int64(42 + i); s != want {
			t.Fatalf("seqs = %v, want 42..61", seqs)
		}
	}
}

func TestSequencerLoadError(t *testing.T) {
	fail := errors.New("database is locked")
	var calls int
	q := newSequencer(func() (int64, error) {
		calls++
		if calls == 1 {
			return 0, fail
		}
		return 7, nil
	})
	if _, err := q.begin("m1", "r"); !errors.Is(err, fail) {
		t.Fatalf("begin with a failing load = %v, want %v", err, fail)
	}
	// The next begin loads again and continues from the stored seq.
	seqBegin(t, q, "m2", "r", 8)
	seqBegin(t, q, "m3", "r", 9)
	if calls != 2 {
		t.Errorf("load called %d times, want 2", calls)
	}
	var p seqPublished
	q.done("m2", p.fn("m2"))
	p.check(t, "the failed begin holds nothing back", "m2")
}

// Many writers over a few rooms with random completion order: each room's
// messages are seqPublished in strictly increasing seq, each committed one
// exactly once, failed ones never.
func TestSequencerStress(t *testing.T) {
	const (
		writers  = 8
		perWrite = 500
		rooms    = 4
	)
	q := newSequencer(seqStartAt(1000))

	type pub struct {
		seq int64
		key string
	}
	var mu sync.Mutex
	got := make(map[string][]pub)       // room → publications in order
	committed := make(map[string]int64) // key → seq
	failed := make(map[string]bool)

	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(w), 1))
			type slot struct {
				key, room string
				seq       int64
			}
			for i := 0; i < perWrite; {
				// Begin a small batch, then finish it in random order, as
				// concurrent saves would.
				batch := make([]slot, 1+rng.IntN(3))
				for j := range batch {
					if i == perWrite {
						batch = batch[:j]
						break
					}
					room := fmt.Sprint("room", rng.IntN(rooms))
					key := fmt.Sprintf("w%d-%d", w, i)
					seq, err := q.begin(key, room)
					if err != nil {
						t.Errorf("begin: %v", err)
						return
					}
					batch[j] = slot{key, room, seq}
					i++
				}
				rng.Shuffle(len(batch), func(a, b int) { batch[a], batch[b] = batch[b], batch[a] })
				for _, s := range batch {
					if d := rng.IntN(100); d < 50 {
						time.Sleep(time.Duration(d) * time.Microsecond)
					}
					if rng.IntN(10) == 0 {
						mu.Lock()
						failed[s.key] = true
						mu.Unlock()
						q.done(s.key, nil)
						continue
					}
					mu.Lock()
					committed[s.key] = s.seq
					mu.Unlock()
					q.done(s.key, func() {
						mu.Lock()
						got[s.room] = append(got[s.room], pub{s.seq, s.key})
						mu.Unlock()
					})
				}
			}
		}()
	}
	wg.Wait()

	seen := make(map[string]int)
	for room, list := range got {
		for i, p := range list {
			seen[p.key]++
			if i > 0 && p.seq <= list[i-1].seq {
				t.Errorf("%s: seq %d seqPublished after %d", room, p.seq, list[i-1].seq)
			}
		}
	}
	for key, seq := range committed {
		if n := seen[key]; n != 1 {
			t.Errorf("%s (seq %d) seqPublished %d times, want once", key, seq, n)
		}
	}
	for key := range failed {
		if seen[key] != 0 {
			t.Errorf("failed %s was seqPublished", key)
		}
	}
	if total := len(committed) + len(failed); total != writers*perWrite {
		t.Errorf("%d messages accounted for, want %d", total, writers*perWrite)
	}
	// Every begin took the next seq after the loaded value.
	q.mu.Lock()
	last := q.last
	q.mu.Unlock()
	if want := int64(1000 + writers*perWrite); last != want {
		t.Errorf("last seq = %d, want %d", last, want)
	}
	seqCheckEmpty(t, q)
}

// seqCheckEmpty asserts the sequencer holds no state once every slot is done.
func seqCheckEmpty(t *testing.T, q *sequencer) {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.pending) != 0 || len(q.rooms) != 0 {
		t.Errorf("sequencer holds %d pending slots and %d room queues after all finished, want none", len(q.pending), len(q.rooms))
	}
}

func seqWaitFor(t *testing.T, within time.Duration, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(within); time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("condition not met within %v", within)
}
