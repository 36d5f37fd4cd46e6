package server

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// Tickets issues single-use credentials for opening the WebSocket from a
// browser, which cannot set an Authorization header on it. A ticket lives
// for a few seconds, so seeing one in a URL is worth little.
type Tickets interface {
	// Issue returns a new ticket for the user and when it expires.
	Issue(userID string) (ticket string, expires time.Time, err error)
	// Redeem consumes a ticket and returns its user; ok is false for an
	// unknown, expired or already used ticket.
	Redeem(ticket string) (userID string, ok bool)
}

// memoryTickets keeps tickets in this process.
type memoryTickets struct {
	ttl time.Duration
	now func() time.Time

	mu sync.Mutex
	m  map[string]ticketEntry
}

type ticketEntry struct {
	user    string
	expires time.Time
}

var _ Tickets = (*memoryTickets)(nil)

func newMemoryTickets(ttl time.Duration) *memoryTickets {
	return &memoryTickets{ttl: ttl, now: time.Now, m: make(map[string]ticketEntry)}
}

func (t *memoryTickets) Issue(userID string) (string, time.Time, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", time.Time{}, err
	}
	ticket := base64.RawURLEncoding.EncodeToString(b)
	now := t.now()
	exp := now.Add(t.ttl)
	t.mu.Lock()
	defer t.mu.Unlock()
	// Sweep on issue: the map never holds more than a TTL's worth of tickets.
	for k, e := range t.m {
		if !now.Before(e.expires) {
			delete(t.m, k)
		}
	}
	t.m[ticket] = ticketEntry{user: userID, expires: exp}
	return ticket, exp, nil
}

func (t *memoryTickets) Redeem(ticket string) (string, bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	e, ok := t.m[ticket]
	if !ok {
		return "", false
	}
	delete(t.m, ticket)
	if !t.now().Before(e.expires) {
		return "", false
	}
	return e.user, true
}
