package edge

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/clusterapi"
	"pocketchat/internal/session"
)

// userTTL is how long an edge trusts a user's name and standing without
// asking again. A mute or ban is still enforced at once: the primary
// checks the author's standing when it saves every message, and a ban
// ends the user's connections through the broker.
const userTTL = 2 * time.Second

// maxBatch bounds the messages of one send request.
const maxBatch = 256

// store is session.Store through the primary: what can be cached safely
// is (rooms until a room changes, users for userTTL), sends are batched
// in order.
type store struct {
	p *primary

	mu      sync.Mutex
	gen     uint64                  // room changes seen: a fetch begun before one is not cached
	visible map[string][]*chat.Room // user → rooms, until a room changes
	rooms   map[string]*chat.Room   // shared by every session that sees them
	users   map[string]cachedUser

	sends chan pending
}

type cachedUser struct {
	reply clusterapi.UserReply
	at    time.Time
}

type pending struct {
	send clusterapi.Send
	done func(chat.Message, error)
}

var _ session.Store = (*store)(nil)

func newStore(p *primary) *store {
	s := &store{p: p, visible: map[string][]*chat.Room{}, rooms: map[string]*chat.Room{},
		users: map[string]cachedUser{}, sends: make(chan pending, 4096)}
	go s.sendLoop()
	return s
}

// roomChanged forgets every cached room: a room event came through the
// broker (its sessions update their own lists from the event).
func (s *store) roomChanged() {
	s.mu.Lock()
	s.gen++
	clear(s.visible)
	clear(s.rooms)
	s.mu.Unlock()
}

func (s *store) VisibleRooms(ctx context.Context, userID string) ([]*chat.Room, error) {
	s.mu.Lock()
	rooms, ok := s.visible[userID]
	gen := s.gen
	s.mu.Unlock()
	if ok {
		return rooms, nil
	}
	var got []chat.Room
	if err := s.p.call(ctx, http.MethodGet, "visible", url.Values{"user": {userID}}, nil, &got); err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	rooms = make([]*chat.Room, len(got))
	for i := range got {
		rooms[i] = &got[i]
	}
	if gen != s.gen {
		return rooms, nil // a room changed meanwhile: fresh, but not for keeping
	}
	// Rooms cached in this generation were fetched after the last
	// change, like these: sessions share one copy.
	for i, r := range rooms {
		if shared := s.rooms[r.ID]; shared != nil {
			rooms[i] = shared
		} else {
			s.rooms[r.ID] = r
		}
	}
	s.visible[userID] = rooms
	return rooms, nil
}

func (s *store) Room(ctx context.Context, id string) (chat.Room, error) {
	var r chat.Room
	err := s.p.call(ctx, http.MethodGet, "rooms/"+url.PathEscape(id), nil, nil, &r)
	return r, err
}

func (s *store) user(ctx context.Context, id string) (clusterapi.UserReply, error) {
	s.mu.Lock()
	c, ok := s.users[id]
	s.mu.Unlock()
	if ok && time.Since(c.at) < userTTL {
		return c.reply, nil
	}
	var r clusterapi.UserReply
	if err := s.p.call(ctx, http.MethodGet, "users/"+url.PathEscape(id), nil, nil, &r); err != nil {
		return r, err
	}
	s.mu.Lock()
	if len(s.users) > 100_000 {
		clear(s.users)
	}
	s.users[id] = cachedUser{reply: r, at: time.Now()}
	s.mu.Unlock()
	return r, nil
}

func (s *store) User(ctx context.Context, id string) (chat.User, error) {
	r, err := s.user(ctx, id)
	return r.User, err
}

func (s *store) Standing(ctx context.Context, id string) (chat.Standing, error) {
	r, err := s.user(ctx, id)
	return r.Standing, err
}

func (s *store) Messages(ctx context.Context, roomID string, q session.Page) ([]chat.Message, bool, error) {
	v := url.Values{"limit": {strconv.Itoa(q.Limit)}}
	if q.Before != "" {
		v.Set("before", q.Before)
	}
	if q.After != "" {
		v.Set("after", q.After)
	}
	var r clusterapi.Messages
	err := s.p.call(ctx, http.MethodGet, "rooms/"+url.PathEscape(roomID)+"/messages", v, nil, &r)
	return r.Messages, r.More, err
}

func (s *store) DirectRoom(ctx context.Context, a, b string) (chat.Room, error) {
	var r chat.Room
	err := s.p.call(ctx, http.MethodPost, "direct", nil, clusterapi.Direct{A: a, B: b}, &r)
	return r, err
}

func (s *store) Message(ctx context.Context, id string) (chat.Message, error) {
	var m chat.Message
	err := s.p.call(ctx, http.MethodGet, "messages/"+url.PathEscape(id), nil, nil, &m)
	return m, err
}

func (s *store) EditMessage(ctx context.Context, id, text string) (chat.Message, error) {
	var m chat.Message
	err := s.p.call(ctx, http.MethodPatch, "messages/"+url.PathEscape(id), nil, clusterapi.Edit{Text: text}, &m)
	return m, err
}

func (s *store) DeleteMessage(ctx context.Context, id string) error {
	return s.p.call(ctx, http.MethodDelete, "messages/"+url.PathEscape(id), nil, nil, nil)
}

// CreateMessage queues the message for the next send batch; done is
// called once the primary committed it, or with why not. The done calls
// come in the order of the CreateMessage calls, whoever made them.
func (s *store) CreateMessage(_ context.Context, author chat.User, roomID, text string, done func(chat.Message, error)) {
	s.sends <- pending{send: clusterapi.Send{Author: author.ID, Room: roomID, Text: text}, done: done}
}

// sendLoop sends the queued messages a batch at a time. A batch goes as
// soon as the previous one is in the primary's commit queue (its first
// reply line), so batches pipeline while their order, and each
// client's, is kept; results are reported in order too.
func (s *store) sendLoop() {
	prev := make(chan struct{})
	close(prev)
	for first := range s.sends {
		batch := []pending{first}
	fill:
		for len(batch) < maxBatch {
			select {
			case p := <-s.sends:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		next := make(chan struct{})
		s.sendBatch(batch, prev, next)
		prev = next
	}
}

// sendBatch posts the batch and returns once the primary has queued it
// (or failed); a goroutine reports the results after those of the
// previous batch (prev), then closes next.
func (s *store) sendBatch(batch []pending, prev <-chan struct{}, next chan struct{}) {
	fail := func(err error) {
		go func() {
			<-prev
			for _, p := range batch {
				p.done(chat.Message{}, err)
			}
			close(next)
		}()
	}
	sends := make([]clusterapi.Send, len(batch))
	for i, p := range batch {
		sends[i] = p.send
	}
	resp, err := s.p.request(context.Background(), http.MethodPost, "send", nil, sends)
	if err != nil {
		fail(fmt.Errorf("edge: sending to the primary: %w", err))
		return
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		fail(fmt.Errorf("edge: the primary answered a send batch with %d", resp.StatusCode))
		return
	}
	rd := bufio.NewReader(resp.Body)
	var queued clusterapi.SendQueued
	line, err := rd.ReadBytes('\n')
	if err == nil {
		err = json.Unmarshal(line, &queued)
	}
	if err != nil {
		resp.Body.Close()
		fail(fmt.Errorf("edge: the primary's send reply: %w", err))
		return
	}
	go func() {
		defer resp.Body.Close()
		results := make([]*clusterapi.SendResult, len(batch))
		for range batch {
			line, err := rd.ReadBytes('\n')
			var r clusterapi.SendResult
			if err != nil || json.Unmarshal(line, &r) != nil || r.I < 0 || r.I >= len(batch) {
				break
			}
			results[r.I] = &r
		}
		<-prev
		for i, p := range batch {
			switch r := results[i]; {
			case r == nil:
				// The reply broke off: the message may or may not be
				// stored, and is not acknowledged.
				p.done(chat.Message{}, fmt.Errorf("edge: no outcome from the primary for a message"))
			case r.Error != nil:
				p.done(chat.Message{}, r.Error.ChatError())
			case r.Message != nil:
				p.done(*r.Message, nil)
			}
		}
		close(next)
	}()
}
