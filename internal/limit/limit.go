// Package limit holds the server's abuse limits: token buckets keyed by a
// string (a user id, an address), and counters of things held at once
// (connections per user, per address).
//
// A chat's limits must hold across every way in: a user's native
// WebSockets, socket.io clients and REST requests draw on the same bucket,
// so the buckets live in the server, not in a connection.
package limit

import (
	"math"
	"sync"
	"time"
)

// pruneAt is the number of keys above which idle ones are forgotten, so
// a stream of one-off users or addresses does not grow a limiter without
// bound.
const pruneAt = 4096

// Rate is a token bucket's shape: Per events per second on average, Burst
// at once. A zero Per means no limit.
type Rate struct {
	Per   float64
	Burst int
}

// Off reports whether the rate limits nothing.
func (r Rate) Off() bool { return r.Per <= 0 }

// Buckets is one token bucket per key. The zero value and a nil *Buckets
// allow everything. Safe for concurrent use.
type Buckets struct {
	rate Rate
	now  func() time.Time

	mu   sync.Mutex
	m    map[string]*bucket
	next int // prune when m has this many keys
}

type bucket struct {
	tokens float64
	at     time.Time // when tokens was computed
}

// NewBuckets returns buckets of the given rate, reading the time from now
// (time.Now if nil). A rate that is Off gives nil, which allows all.
func NewBuckets(r Rate, now func() time.Time) *Buckets {
	if r.Off() {
		return nil
	}
	if r.Burst < 1 {
		r.Burst = 1
	}
	if now == nil {
		now = time.Now
	}
	return &Buckets{rate: r, now: now, m: make(map[string]*bucket), next: pruneAt}
}

// Take takes a token from key's bucket. When there is none it takes
// nothing (a refused event costs nothing, so a client that waits as told
// gets through) and returns how long until there is one.
func (b *Buckets) Take(key string) (wait time.Duration, ok bool) {
	if b == nil {
		return 0, true
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	k := b.get(key, now)
	if k.tokens >= 1 {
		k.tokens--
		return 0, true
	}
	secs := (1 - k.tokens) / b.rate.Per
	return time.Duration(math.Ceil(secs * float64(time.Second))), false
}

// get returns key's bucket refilled up to now. b.mu is held.
func (b *Buckets) get(key string, now time.Time) *bucket {
	k := b.m[key]
	if k == nil {
		if len(b.m) >= b.next {
			b.prune(now)
			// When most buckets are busy, wait for the map to double
			// before scanning again, so pruning stays linear overall.
			b.next = max(pruneAt, 2*len(b.m))
		}
		k = &bucket{tokens: float64(b.rate.Burst), at: now}
		b.m[key] = k
		return k
	}
	if elapsed := now.Sub(k.at); elapsed > 0 {
		k.tokens = min(float64(b.rate.Burst), k.tokens+b.rate.Per*elapsed.Seconds())
		k.at = now
	}
	return k
}

// prune forgets the buckets that would be full by now: a new bucket for
// the same key behaves the same. b.mu is held.
func (b *Buckets) prune(now time.Time) {
	for key, k := range b.m {
		if k.tokens+b.rate.Per*now.Sub(k.at).Seconds() >= float64(b.rate.Burst) {
			delete(b.m, key)
		}
	}
}

// Len is the number of keys remembered (for tests and metrics).
func (b *Buckets) Len() int {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.m)
}

// Counts counts what each key holds at once (open connections), up to a
// maximum per key. The zero value is ready; a max of 0 means no limit.
// Safe for concurrent use.
type Counts struct {
	mu sync.Mutex
	m  map[string]int
}

// Acquire counts one more for key unless key holds max already.
func (c *Counts) Acquire(key string, max int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if max > 0 && c.m[key] >= max {
		return false
	}
	if c.m == nil {
		c.m = make(map[string]int)
	}
	c.m[key]++
	return true
}

// Release counts one less for key; a key at zero is forgotten.
func (c *Counts) Release(key string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if n := c.m[key]; n > 1 {
		c.m[key] = n - 1
	} else {
		delete(c.m, key)
	}
}

// Held is what key holds now.
func (c *Counts) Held(key string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[key]
}
