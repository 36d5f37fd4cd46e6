package hub

import (
	"context"
	"slices"
	"sync"
)

// MemoryBroker is the single-node broker: Publish delivers synchronously
// to the subscribers in this process, so publish order is delivery order.
type MemoryBroker struct {
	mu   sync.RWMutex
	subs []*func(Envelope)
}

var _ Broker = (*MemoryBroker)(nil)

// NewMemoryBroker returns a broker for one process.
func NewMemoryBroker() *MemoryBroker { return &MemoryBroker{} }

// Publish delivers env to every subscriber before returning.
func (b *MemoryBroker) Publish(_ context.Context, env Envelope) error {
	b.mu.RLock()
	subs := b.subs
	b.mu.RUnlock()
	for _, fn := range subs {
		(*fn)(env)
	}
	return nil
}

// Subscribe registers fn.
func (b *MemoryBroker) Subscribe(fn func(Envelope)) func() {
	p := &fn
	b.mu.Lock()
	b.subs = append(slices.Clone(b.subs), p)
	b.mu.Unlock()
	return func() {
		b.mu.Lock()
		b.subs = slices.DeleteFunc(slices.Clone(b.subs), func(q *func(Envelope)) bool { return q == p })
		b.mu.Unlock()
	}
}
