package bot

import (
	"sync"
	"time"
)

// Window is the period the rates are counted over and the shortest gap
// between two slow-down notices to the same user (or room).
const Window = time.Minute

// pruneAt is the number of buckets above which idle ones are forgotten,
// so a stream of one-off users does not grow the limiter without bound.
const pruneAt = 4096

// Verdict is what the limiter says about one request for an answer.
type Verdict uint8

// The verdicts.
const (
	// Allow: answer.
	Allow Verdict = iota
	// NoticeUser: the user is over their rate; tell them to slow down.
	// It is given once per Window; later requests get Drop.
	NoticeUser
	// NoticeRoom: the room is over its rate; tell the room, once per Window.
	NoticeRoom
	// Drop: over a rate and already told; stay silent.
	Drop
)

// Limiter bounds the answers per user and per room with token buckets: a
// bucket holds up to rate tokens (the burst), refills at rate per Window,
// and each answer takes one from the user's bucket and one from the
// room's. It is safe for concurrent use.
type Limiter struct {
	userRate, roomRate int // per Window; 0 means no limit
	now                func() time.Time

	mu    sync.Mutex
	users buckets
	rooms buckets
}

// buckets are the buckets of users or of rooms, by id.
type buckets struct {
	m    map[string]*bucket
	next int // prune when m has this many buckets
}

type bucket struct {
	tokens  float64
	at      time.Time // when tokens was computed
	noticed time.Time // last slow-down notice; zero if none
}

// NewLimiter returns a limiter allowing userRate answers per user and
// roomRate per room in each Window (0 = unlimited), reading the time from
// now (time.Now if nil).
func NewLimiter(userRate, roomRate int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{
		userRate: userRate, roomRate: roomRate, now: now,
		users: buckets{m: make(map[string]*bucket), next: pruneAt},
		rooms: buckets{m: make(map[string]*bucket), next: pruneAt},
	}
}

// Allow takes a token from the user's and the room's buckets if both have
// one. Otherwise it takes none (a refused request costs nothing) and says
// whether this is the first refusal of the window, which deserves a notice.
func (l *Limiter) Allow(user, room string) Verdict {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	u := l.users.get(user, l.userRate, now)
	r := l.rooms.get(room, l.roomRate, now)
	switch {
	case u != nil && u.tokens < 1:
		return noticeOnce(u, now, NoticeUser)
	case r != nil && r.tokens < 1:
		return noticeOnce(r, now, NoticeRoom)
	}
	if u != nil {
		u.tokens--
	}
	if r != nil {
		r.tokens--
	}
	return Allow
}

func noticeOnce(b *bucket, now time.Time, v Verdict) Verdict {
	if !b.noticed.IsZero() && now.Sub(b.noticed) < Window {
		return Drop
	}
	b.noticed = now
	return v
}

// get returns key's bucket refilled up to now, nil when rate is 0.
func (bs *buckets) get(key string, rate int, now time.Time) *bucket {
	if rate <= 0 {
		return nil
	}
	b := bs.m[key]
	if b == nil {
		if len(bs.m) >= bs.next {
			prune(bs.m, rate, now)
			// When most buckets are busy, wait for the map to double
			// before scanning again, so pruning stays linear overall.
			bs.next = max(pruneAt, 2*len(bs.m))
		}
		b = &bucket{tokens: float64(rate), at: now}
		bs.m[key] = b
		return b
	}
	if elapsed := now.Sub(b.at); elapsed > 0 {
		b.tokens = min(float64(rate), b.tokens+float64(rate)*elapsed.Seconds()/Window.Seconds())
		b.at = now
	}
	return b
}

// prune forgets the buckets that would be full by now and owe no notice
// gap: a new bucket for the same key behaves the same.
func prune(m map[string]*bucket, rate int, now time.Time) {
	for k, b := range m {
		full := b.tokens+float64(rate)*now.Sub(b.at).Seconds()/Window.Seconds() >= float64(rate)
		if full && now.Sub(b.noticed) >= Window {
			delete(m, k)
		}
	}
}
