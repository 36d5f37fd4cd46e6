package limit

import (
	"fmt"
	"sync"
	"testing"
	"time"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time        { return c.t }
func (c *clock) add(d time.Duration)   { c.t = c.t.Add(d) }
func newClock() *clock                 { return &clock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)} }
func take(b *Buckets, key string) bool { _, ok := b.Take(key); return ok }
func takeN(b *Buckets, key string, n int) (got int) {
	for range n {
		if take(b, key) {
			got++
		}
	}
	return got
}

func TestBucketsBurstThenRate(t *testing.T) {
	c := newClock()
	b := NewBuckets(Rate{Per: 10, Burst: 20}, c.now)
	if got := takeN(b, "alice", 25); got != 20 {
		t.Fatalf("a fresh bucket allowed %d of 25 at once, want the burst of 20", got)
	}
	wait, ok := b.Take("alice")
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("empty bucket: Take = %v, %v; want a refusal with 100ms to wait", wait, ok)
	}
	// Others are not affected.
	if got := takeN(b, "bob", 20); got != 20 {
		t.Errorf("bob got %d of 20 while alice was limited", got)
	}
	// Waiting as told gets one through; refusals took nothing.
	c.add(wait)
	if !take(b, "alice") {
		t.Errorf("refused after waiting the returned time")
	}
	if take(b, "alice") {
		t.Errorf("a second event passed with only one token refilled")
	}
	// Over a long run the rate holds: 10 a second.
	passed := 0
	for range 1000 { // 10 s in steps of 10 ms, trying each time
		c.add(10 * time.Millisecond)
		passed += takeN(b, "alice", 3)
	}
	if passed < 99 || passed > 101 {
		t.Errorf("%d events passed in 10 s at 10/s", passed)
	}
	// A long pause refills up to the burst, not beyond.
	c.add(time.Hour)
	if got := takeN(b, "alice", 50); got != 20 {
		t.Errorf("after an hour: %d at once, want 20", got)
	}
}

func TestBucketsWaitRoundsUp(t *testing.T) {
	c := newClock()
	b := NewBuckets(Rate{Per: 3, Burst: 1}, c.now)
	take(b, "k")
	wait, ok := b.Take("k")
	if ok || wait < 333*time.Millisecond || wait > 334*time.Millisecond {
		t.Fatalf("Take = %v, %v; want a refusal with a third of a second to wait", wait, ok)
	}
	c.add(wait)
	if !take(b, "k") {
		t.Errorf("the wait returned was too short")
	}
}

func TestBucketsOff(t *testing.T) {
	var nilB *Buckets
	if b := NewBuckets(Rate{}, nil); b != nil {
		t.Fatalf("NewBuckets(zero rate) = %v, want nil", b)
	}
	if got := takeN(nilB, "x", 10_000); got != 10_000 {
		t.Errorf("nil buckets refused %d", 10_000-got)
	}
	if nilB.Len() != 0 {
		t.Errorf("nil buckets remember keys")
	}
}

// A stream of one-off keys must not grow the map without bound, and a
// key pruned and seen again must behave as if never forgotten.
func TestBucketsPrune(t *testing.T) {
	c := newClock()
	b := NewBuckets(Rate{Per: 1, Burst: 2}, c.now)
	for i := range 100_000 {
		take(b, fmt.Sprint("addr-", i))
		c.add(100 * time.Millisecond)
	}
	if n := b.Len(); n > 2*pruneAt {
		t.Errorf("%d keys remembered after 100,000 one-off keys, want at most %d", n, 2*pruneAt)
	}
	// A busy key survives pruning with its state.
	takeN(b, "busy", 2)
	for i := range 3 * pruneAt {
		take(b, fmt.Sprint("more-", i))
	}
	if take(b, "busy") {
		t.Errorf("the busy key's empty bucket was forgotten")
	}
}

func TestBucketsConcurrent(t *testing.T) {
	b := NewBuckets(Rate{Per: 0.001, Burst: 100}, nil) // no refill during the test
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n := takeN(b, "shared", 50)
			mu.Lock()
			passed += n
			mu.Unlock()
		}()
	}
	wg.Wait()
	if passed != 100 {
		t.Errorf("%d passed from 8 goroutines sharing a burst of 100", passed)
	}
}

func TestCounts(t *testing.T) {
	var c Counts
	for i := range 3 {
		if !c.Acquire("u", 3) {
			t.Fatalf("acquire %d of 3 refused", i+1)
		}
	}
	if c.Acquire("u", 3) {
		t.Fatalf("a fourth acquire passed a maximum of 3")
	}
	if !c.Acquire("v", 3) {
		t.Fatalf("another key was refused")
	}
	c.Release("u")
	if !c.Acquire("u", 3) {
		t.Fatalf("refused after a release")
	}
	if c.Held("u") != 3 {
		t.Errorf("Held = %d, want 3", c.Held("u"))
	}
	for range 3 {
		c.Release("u")
	}
	c.Release("u") // one too many: stays at zero
	if c.Held("u") != 0 || len(c.m) != 1 {
		t.Errorf("after releasing everything: held %d, %d keys remembered", c.Held("u"), len(c.m))
	}
	for range 1000 {
		if !c.Acquire("w", 0) {
			t.Fatalf("a maximum of 0 refused")
		}
	}
}
