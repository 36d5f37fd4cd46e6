package cluster

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"time"

	"github.com/redis/go-redis/v9"
)

// Tickets keeps the chat's single-use WebSocket tickets in Redis, so a
// ticket issued by any node opens a connection on every node. Redis
// expires them; GETDEL redeems one atomically, so it is used once even
// when two nodes try it at the same moment.
type Tickets struct {
	rdb    *redis.Client
	prefix string
	ttl    time.Duration
}

// NewTickets stores tickets under prefix+"ticket:", valid for ttl.
func NewTickets(rdb *redis.Client, prefix string, ttl time.Duration) *Tickets {
	return &Tickets{rdb: rdb, prefix: prefix + "ticket:", ttl: ttl}
}

// Issue returns a new ticket for the user and when it expires.
func (t *Tickets) Issue(userID string) (string, time.Time, error) {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", time.Time{}, err
	}
	ticket := base64.RawURLEncoding.EncodeToString(b)
	exp := time.Now().Add(t.ttl)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := t.rdb.Set(ctx, t.prefix+ticket, userID, t.ttl).Err(); err != nil {
		return "", time.Time{}, err
	}
	return ticket, exp, nil
}

// Redeem consumes a ticket and returns its user; ok is false for an
// unknown, expired or already used ticket, and when Redis cannot answer.
func (t *Tickets) Redeem(ticket string) (string, bool) {
	if ticket == "" {
		return "", false
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	uid, err := t.rdb.GetDel(ctx, t.prefix+ticket).Result()
	if err != nil || uid == "" {
		return "", false
	}
	return uid, true
}
