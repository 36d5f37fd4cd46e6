package session_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/hub"
	"pocketchat/internal/session"
)

// anyRoomStore serves every room id as a public room without messages.
type anyRoomStore struct{ joinStore }

func (anyRoomStore) Room(_ context.Context, id string) (chat.Room, error) {
	return chat.Room{ID: id, Name: id, Kind: chat.KindPublic}, nil
}

// A connection joins at most MaxJoins rooms at once: joining one more is
// refused until it leaves one; joining a room again is not counted.
func TestMaxJoins(t *testing.T) {
	h := hub.New(hub.NewMemoryBroker(), hub.Config{})
	defer h.Close()
	out := &outbox{}
	alice := &chat.User{ID: "alice", Name: "Alice"}
	s := session.New(session.Config{MaxJoins: 2}, anyRoomStore{}, h, out, alice, 1)
	if err := s.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	out.take(chat.EventHello)
	do := func(typ, room string) string {
		s.Handle(context.Background(), &chat.Request{Type: typ, Room: room})
		out.mu.Lock()
		defer out.mu.Unlock()
		if len(out.evs) != 1 {
			t.Fatalf("%s %s: got %d events, want 1 reply", typ, room, len(out.evs))
		}
		ev := out.evs[0]
		out.evs = nil
		if ev.Type == chat.EventError {
			return string(ev.Data.(chat.ErrorPayload).Code)
		}
		return ev.Type
	}
	steps := []struct{ typ, room, want string }{
		{chat.RequestJoin, "a", chat.EventJoined},
		{chat.RequestJoin, "b", chat.EventJoined},
		{chat.RequestJoin, "b", chat.EventJoined}, // again: still two rooms
		{chat.RequestJoin, "c", string(chat.CodeForbidden)},
		{chat.RequestLeave, "a", chat.EventLeft},
		{chat.RequestJoin, "c", chat.EventJoined},
	}
	for _, st := range steps {
		if got := do(st.typ, st.room); got != st.want {
			t.Errorf("%s %s: got %s, want %s", st.typ, st.room, got, st.want)
		}
	}
	if n := h.JoinedCount(s); n != 2 {
		t.Errorf("hub counts %d rooms joined, want 2", n)
	}
}

// typingLimits allows n typing notices and refuses the rest.
type typingLimits struct {
	mu sync.Mutex
	n  int
}

func (l *typingLimits) Send(string) (time.Duration, bool) { return 0, true }
func (l *typingLimits) Typing(string) (time.Duration, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.n == 0 {
		return 250 * time.Millisecond, false
	}
	l.n--
	return 0, true
}

// Typing notices over the user's allowance are refused with the wait and
// never reach the room.
func TestTypingLimit(t *testing.T) {
	h := hub.New(hub.NewMemoryBroker(), hub.Config{})
	defer h.Close()
	st := joinStore{room: chat.Room{ID: "r1", Name: "General", Kind: chat.KindPublic}}
	bob, bobOut := start(t, h, st, &chat.User{ID: "bob", Name: "Bob"}, 2)
	join(t, bob, bobOut, "r1")

	out := &outbox{}
	alice := session.New(session.Config{Limits: &typingLimits{n: 2}}, st, h, out, &chat.User{ID: "alice", Name: "Alice"}, 1)
	if err := alice.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer alice.Close()
	join(t, alice, out, "r1")
	out.take("")
	bobOut.take("")
	for range 4 {
		alice.Handle(context.Background(), &chat.Request{Type: chat.RequestTyping, Room: "r1"})
	}
	errs := out.take(chat.EventError)
	if len(errs) != 2 {
		t.Fatalf("alice got %d errors, want 2", len(errs))
	}
	for _, ev := range errs {
		if p := ev.Data.(chat.ErrorPayload); p.Code != chat.CodeRateLimited || p.RetryAfter != 250 {
			t.Errorf("error %+v, want rate_limited after 250 ms", p)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		bobOut.mu.Lock()
		n := len(bobOut.evs)
		bobOut.mu.Unlock()
		if n >= 2 || time.Now().After(deadline) {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // a third notice would have come by now
	if got := len(bobOut.take(chat.EventTyping)); got != 2 {
		t.Errorf("bob got %d typing notices, want 2", got)
	}
}
