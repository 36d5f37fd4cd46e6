package gateway

import (
	"fmt"
	"net/http"
	"sync"

	"pocketchat/internal/chat"
	"pocketchat/internal/limit"
)

// connLimits counts open chat connections by "u:<user id>" and
// "ip:<address>", up to perUser and perIP.
type connLimits struct {
	counts         limit.Counts
	perUser, perIP int
}

// connSlot is a connection's place among those of its user and address,
// taken before the connection starts and given back when it ends.
type connSlot struct {
	l  *connLimits
	ip string

	mu       sync.Mutex // forUser and release may run on different goroutines
	user     string
	released bool
}

// open takes a place for a connection from ip, or refuses with 429. The
// user's place is taken by slot.forUser once the user is known (at once
// on the native socket, at socket.io's CONNECT).
func (l *connLimits) open(ip string) (*connSlot, error) {
	if !l.counts.Acquire("ip:"+ip, l.perIP) {
		return nil, &Refusal{http.StatusTooManyRequests, fmt.Sprintf("Too many chat connections from this address (the limit is %d).", l.perIP)}
	}
	return &connSlot{l: l, ip: ip}, nil
}

// forUser takes the user's place (nil: a guest, counted by address only).
func (c *connSlot) forUser(u *chat.User) error {
	if u == nil {
		return nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released || c.user != "" {
		return nil
	}
	if !c.l.counts.Acquire("u:"+u.ID, c.l.perUser) {
		return &Refusal{http.StatusTooManyRequests, fmt.Sprintf("Too many chat connections for this account (the limit is %d).", c.l.perUser)}
	}
	c.user = u.ID
	return nil
}

// release gives the places back when the connection ends or is refused;
// later calls do nothing.
func (c *connSlot) release() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.released {
		return
	}
	c.released = true
	c.l.counts.Release("ip:" + c.ip)
	if c.user != "" {
		c.l.counts.Release("u:" + c.user)
	}
}
