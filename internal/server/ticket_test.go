package server

import (
	"net/url"
	"regexp"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// ticketClock is a settable now for memoryTickets.
type ticketClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *ticketClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *ticketClock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func newClockedTickets(ttl time.Duration) (*memoryTickets, *ticketClock) {
	clock := &ticketClock{t: time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)}
	tk := newMemoryTickets(ttl)
	tk.now = clock.now
	return tk, clock
}

func issueTicket(t *testing.T, tk *memoryTickets, user string) string {
	t.Helper()
	ticket, _, err := tk.Issue(user)
	if err != nil {
		t.Fatalf("Issue(%q): %v", user, err)
	}
	return ticket
}

func TestTicketRedeemOnce(t *testing.T) {
	tk, clock := newClockedTickets(30 * time.Second)
	ticket, exp, err := tk.Issue("u1")
	if err != nil {
		t.Fatalf("Issue: %v", err)
	}
	if want := clock.now().Add(30 * time.Second); !exp.Equal(want) {
		t.Errorf("expires = %v, want %v", exp, want)
	}
	if user, ok := tk.Redeem(ticket); !ok || user != "u1" {
		t.Fatalf("first Redeem = (%q, %v), want (u1, true)", user, ok)
	}
	if user, ok := tk.Redeem(ticket); ok || user != "" {
		t.Errorf("second Redeem = (%q, %v), want (\"\", false)", user, ok)
	}
}

func TestTicketRedeemRejects(t *testing.T) {
	const ttl = 30 * time.Second
	tests := []struct {
		name   string
		after  time.Duration // between issue and redeem
		ticket func(issued string) string
		wantOK bool
	}{
		{"fresh", 0, nil, true},
		{"just before expiry", ttl - time.Nanosecond, nil, true},
		{"at expiry", ttl, nil, false},
		{"long expired", time.Hour, nil, false},
		{"unknown", 0, func(string) string { return "not-a-ticket" }, false},
		{"empty", 0, func(string) string { return "" }, false},
		{"prefix of a ticket", 0, func(s string) string { return s[:len(s)-1] }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tk, clock := newClockedTickets(ttl)
			issued := issueTicket(t, tk, "u1")
			clock.advance(tt.after)
			ticket := issued
			if tt.ticket != nil {
				ticket = tt.ticket(issued)
			}
			user, ok := tk.Redeem(ticket)
			if ok != tt.wantOK {
				t.Fatalf("Redeem = (%q, %v), want ok %v", user, ok, tt.wantOK)
			}
			if ok && user != "u1" {
				t.Errorf("Redeem user = %q, want u1", user)
			}
			if !ok && user != "" {
				t.Errorf("failed Redeem returned user %q, want \"\"", user)
			}
		})
	}
}

// A rejected expired ticket is gone, even if the clock went backwards.
func TestTicketExpiredIsConsumed(t *testing.T) {
	tk, clock := newClockedTickets(time.Second)
	ticket := issueTicket(t, tk, "u1")
	clock.advance(2 * time.Second)
	if _, ok := tk.Redeem(ticket); ok {
		t.Fatal("expired ticket redeemed")
	}
	clock.advance(-2 * time.Second)
	if _, ok := tk.Redeem(ticket); ok {
		t.Error("an expired ticket that was refused could be redeemed later")
	}
}

var ticketChars = regexp.MustCompile(`^[A-Za-z0-9_-]+$`)

func TestTicketsUniqueAndURLSafe(t *testing.T) {
	tk, _ := newClockedTickets(time.Minute)
	const n = 2000
	seen := make(map[string]bool, n)
	for range n {
		ticket := issueTicket(t, tk, "u1")
		if seen[ticket] {
			t.Fatalf("ticket %q issued twice", ticket)
		}
		seen[ticket] = true
		if !ticketChars.MatchString(ticket) || url.QueryEscape(ticket) != ticket {
			t.Fatalf("ticket %q is not URL-safe", ticket)
		}
		if len(ticket) < 32 { // 24 random bytes
			t.Fatalf("ticket %q has %d characters, want at least 32", ticket, len(ticket))
		}
	}
}

func TestTicketSweepOnIssue(t *testing.T) {
	tk, clock := newClockedTickets(10 * time.Second)
	old := []string{issueTicket(t, tk, "u1"), issueTicket(t, tk, "u2"), issueTicket(t, tk, "u3")}
	clock.advance(5 * time.Second)
	young := issueTicket(t, tk, "u4")
	if got := len(tk.m); got != 4 {
		t.Fatalf("%d tickets held before any expired, want 4", got)
	}
	clock.advance(5 * time.Second) // the first three expire now
	fresh := issueTicket(t, tk, "u5")
	if got := len(tk.m); got != 2 {
		t.Errorf("%d tickets held after the sweep, want 2 (the unexpired and the new one)", got)
	}
	for _, ticket := range old {
		if _, ok := tk.m[ticket]; ok {
			t.Errorf("expired ticket %q not swept", ticket)
		}
	}
	for _, ticket := range []string{young, fresh} {
		if _, ok := tk.Redeem(ticket); !ok {
			t.Errorf("unexpired ticket %q was swept", ticket)
		}
	}
}

// Of many concurrent redemptions of one ticket, exactly one succeeds.
func TestTicketConcurrentRedeem(t *testing.T) {
	tk := newMemoryTickets(time.Minute) // the real clock
	for range 20 {
		ticket := issueTicket(t, tk, "u1")
		var wins atomic.Int32
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, ok := tk.Redeem(ticket); ok {
					wins.Add(1)
				}
				_, _, _ = tk.Issue("u2") // sweeping concurrently
			}()
		}
		wg.Wait()
		if n := wins.Load(); n != 1 {
			t.Fatalf("ticket redeemed %d times, want once", n)
		}
	}
}
