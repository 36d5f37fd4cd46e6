package server

import (
	"sync"
	"time"
)

// sequencer gives each new message its place in the room's history and
// publishes messages in that order.
//
// Saves run concurrently and their after-commit hooks can run in any
// order, yet history and resume page by seq, so a client must receive a
// room's messages in seq order or a reconnect could skip one. begin hands
// out the seq before the insert; done publishes a message only when every
// message of its room with a lower seq is committed (published) or failed
// (skipped). A slot left pending for stuckAfter (a transaction that never
// ends) stops blocking its room; if it commits later it is published late
// rather than never.
type sequencer struct {
	stuckAfter time.Duration
	load       func() (int64, error) // the highest seq stored, read once

	mu      sync.Mutex
	loaded  bool
	last    int64
	rooms   map[string]*roomQueue
	pending map[any]*seqSlot
}

type roomQueue struct {
	room  string
	pubMu sync.Mutex // one publisher per room at a time keeps the order
	queue []*seqSlot // guarded by sequencer.mu
	timer bool       // a re-check is scheduled; guarded by sequencer.mu
}

type slotState uint8

const (
	slotPending slotState = iota
	slotDone
	slotFailed
	slotAbandoned // skipped as stuck; publish on completion
)

type seqSlot struct {
	room    string
	seq     int64
	state   slotState
	since   time.Time
	publish func()
}

func newSequencer(load func() (int64, error)) *sequencer {
	return &sequencer{
		stuckAfter: 10 * time.Second,
		load:       load,
		rooms:      make(map[string]*roomQueue),
		pending:    make(map[any]*seqSlot),
	}
}

// begin reserves the next seq for a message of room, identified by key
// until done is called with the same key.
func (q *sequencer) begin(key any, room string) (int64, error) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if !q.loaded {
		last, err := q.load()
		if err != nil {
			return 0, err
		}
		q.last, q.loaded = last, true
	}
	q.last++
	s := &seqSlot{room: room, seq: q.last, since: time.Now()}
	rq := q.rooms[room]
	if rq == nil {
		rq = &roomQueue{room: room}
		q.rooms[room] = rq
	}
	rq.queue = append(rq.queue, s)
	q.pending[key] = s
	return s.seq, nil
}

// done resolves the slot of key: publish (after the room's earlier
// messages) when it was committed, or nil when it failed. A key that
// begin never saw is published at once.
func (q *sequencer) done(key any, publish func()) {
	q.mu.Lock()
	s := q.pending[key]
	delete(q.pending, key)
	if s == nil || s.state == slotAbandoned {
		q.mu.Unlock()
		if publish != nil {
			publish()
		}
		return
	}
	s.publish = publish
	s.state = slotDone
	if publish == nil {
		s.state = slotFailed
	}
	rq := q.rooms[s.room]
	q.mu.Unlock()
	q.flush(rq)
}

// flush publishes the resolved head of the room's queue, in order.
func (q *sequencer) flush(rq *roomQueue) {
	rq.pubMu.Lock()
	defer rq.pubMu.Unlock()
	for {
		q.mu.Lock()
		if len(rq.queue) == 0 {
			if q.rooms[rq.room] == rq {
				delete(q.rooms, rq.room)
			}
			q.mu.Unlock()
			return
		}
		head := rq.queue[0]
		if head.state == slotPending {
			wait := q.stuckAfter - time.Since(head.since)
			if wait > 0 {
				if !rq.timer {
					rq.timer = true
					time.AfterFunc(wait, func() {
						q.mu.Lock()
						rq.timer = false
						q.mu.Unlock()
						q.flush(rq)
					})
				}
				q.mu.Unlock()
				return
			}
			head.state = slotAbandoned
		}
		rq.queue[0] = nil
		rq.queue = rq.queue[1:]
		q.mu.Unlock()
		if head.state == slotDone {
			head.publish()
		}
	}
}
