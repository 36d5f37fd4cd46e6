package bot_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"pocketchat/internal/bot"
)

// clock is a settable clock for tests.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func newClock() *clock { return &clock{t: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)} }

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// verdicts asks n times for user in room and returns the verdicts.
func verdicts(l *bot.Limiter, user, room string, n int) []bot.Verdict {
	out := make([]bot.Verdict, n)
	for i := range out {
		out[i] = l.Allow(user, room)
	}
	return out
}

func TestLimiterUser(t *testing.T) {
	clk := newClock()
	l := bot.NewLimiter(3, 0, clk.Now)
	A, N, D := bot.Allow, bot.NoticeUser, bot.Drop

	// Burst of 3, one notice, then silence.
	check(t, "burst", verdicts(l, "alice", "r", 7), []bot.Verdict{A, A, A, N, D, D, D})
	// Others are not affected.
	check(t, "bob", verdicts(l, "bob", "r", 1), []bot.Verdict{A})
	// 20 s refill one token (3 a minute); the notice window is not over.
	clk.Advance(20 * time.Second)
	check(t, "after 20s", verdicts(l, "alice", "r", 3), []bot.Verdict{A, D, D})
	// A minute after the notice, a new one may be given.
	clk.Advance(40 * time.Second)
	check(t, "after 60s", verdicts(l, "alice", "r", 4), []bot.Verdict{A, A, N, D})
	// Refill stops at the burst.
	clk.Advance(time.Hour)
	check(t, "after an hour", verdicts(l, "alice", "r", 5), []bot.Verdict{A, A, A, N, D})
}

func TestLimiterRoom(t *testing.T) {
	clk := newClock()
	l := bot.NewLimiter(2, 3, clk.Now)
	A, U, R, D := bot.Allow, bot.NoticeUser, bot.NoticeRoom, bot.Drop

	check(t, "alice", verdicts(l, "alice", "r", 3), []bot.Verdict{A, A, U})
	check(t, "bob", verdicts(l, "bob", "r", 3), []bot.Verdict{A, R, D})
	// A refused request costs no token: carol still has her burst for
	// another room.
	check(t, "carol", verdicts(l, "carol", "r", 1), []bot.Verdict{D})
	check(t, "carol elsewhere", verdicts(l, "carol", "other", 2), []bot.Verdict{A, A})
	clk.Advance(20 * time.Second) // the room regains one token
	check(t, "dave", verdicts(l, "dave", "r", 2), []bot.Verdict{A, D})
}

func TestLimiterUnlimited(t *testing.T) {
	l := bot.NewLimiter(0, 0, nil)
	for i, v := range verdicts(l, "alice", "r", 1000) {
		if v != bot.Allow {
			t.Fatalf("request %d: got %v, want Allow", i, v)
		}
	}
}

// TestLimiterManyUsers: idle buckets are forgotten without changing what
// anyone is allowed.
func TestLimiterManyUsers(t *testing.T) {
	clk := newClock()
	l := bot.NewLimiter(1, 0, clk.Now)
	for i := range 10000 {
		if v := l.Allow(fmt.Sprint("u", i), "r"); v != bot.Allow {
			t.Fatalf("user %d: got %v, want Allow", i, v)
		}
		clk.Advance(10 * time.Millisecond)
	}
	check(t, "recent user", verdicts(l, "u9999", "r", 2), []bot.Verdict{bot.NoticeUser, bot.Drop})
}

func TestLimiterConcurrent(t *testing.T) {
	l := bot.NewLimiter(10, 0, nil)
	var wg sync.WaitGroup
	var mu sync.Mutex
	got := map[bot.Verdict]int{}
	for range 8 {
		wg.Go(func() {
			for _, v := range verdicts(l, "alice", "r", 50) {
				mu.Lock()
				got[v]++
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	// The clock runs, so a token may come back during the test.
	if got[bot.Allow] < 10 || got[bot.Allow] > 11 || got[bot.NoticeUser] != 1 {
		t.Errorf("got %v, want 10 (or 11) Allow and 1 NoticeUser", got)
	}
}

func check(t *testing.T, what string, got, want []bot.Verdict) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}
