package session_test

import (
	"context"
	"encoding/json"
	"slices"
	"sync"
	"testing"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/hub"
	"pocketchat/internal/session"
)

// joinStore serves one public room without messages. It embeds the Store
// interface for the methods a join never calls: they panic if called.
type joinStore struct {
	session.Store
	room chat.Room
}

func (s joinStore) VisibleRooms(context.Context, string) ([]*chat.Room, error) {
	r := s.room
	return []*chat.Room{&r}, nil
}

func (s joinStore) Room(_ context.Context, id string) (chat.Room, error) {
	if id != s.room.ID {
		return chat.Room{}, chat.Errorf(chat.CodeNotFound, "no room %q", id)
	}
	return s.room, nil
}

func (s joinStore) Messages(context.Context, string, session.Page) ([]chat.Message, bool, error) {
	return []chat.Message{}, false, nil
}

// outbox records what a session sends.
type outbox struct {
	mu    sync.Mutex
	evs   []*chat.Event
	ended []string // End's reasons
}

func (o *outbox) End(reason string) {
	o.mu.Lock()
	o.ended = append(o.ended, reason)
	o.mu.Unlock()
}

func (o *outbox) endings() []string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return slices.Clone(o.ended)
}

func (o *outbox) Send(ev *chat.Event) {
	o.mu.Lock()
	o.evs = append(o.evs, ev)
	o.mu.Unlock()
}

// take returns the events of the type and forgets every event.
func (o *outbox) take(typ string) []*chat.Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	evs := slices.DeleteFunc(o.evs, func(ev *chat.Event) bool { return ev.Type != typ })
	o.evs = nil
	return evs
}

// start connects u (nil for a guest) and returns its outbox.
func start(t *testing.T, h *hub.Hub, st joinStore, u *chat.User, connID uint64) (*session.Session, *outbox) {
	t.Helper()
	out := &outbox{}
	s := session.New(session.Config{}, st, h, out, u, connID)
	if err := s.Start(context.Background()); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(s.Close)
	out.take(chat.EventHello)
	return s, out
}

// join joins the room and decodes the joined reply, raw and typed.
func join(t *testing.T, s *session.Session, out *outbox, room string) (map[string]json.RawMessage, chat.JoinedPayload) {
	t.Helper()
	s.Handle(context.Background(), &chat.Request{Type: chat.RequestJoin, ID: json.RawMessage(`7`), Room: room})
	evs := out.take(chat.EventJoined)
	if len(evs) != 1 {
		t.Fatalf("got %d joined replies, want 1", len(evs))
	}
	if string(evs[0].ReplyTo) != "7" {
		t.Errorf("joined ReplyTo = %s, want 7", evs[0].ReplyTo)
	}
	var raw map[string]json.RawMessage
	var p chat.JoinedPayload
	if err := json.Unmarshal(evs[0].Payload, &raw); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(evs[0].Payload, &p); err != nil {
		t.Fatal(err)
	}
	return raw, p
}

// The joined reply carries the count of users online, always, and at
// most the hub's presence limit of them, the first by name.
func TestJoinedCarriesOnlineCount(t *testing.T) {
	h := hub.New(hub.NewMemoryBroker(), hub.Config{PresenceLimit: 2})
	defer h.Close()
	st := joinStore{room: chat.Room{ID: "r1", Name: "General", Kind: chat.KindPublic}}
	users := []chat.User{{ID: "u3", Name: "Cy"}, {ID: "u1", Name: "Ann"}, {ID: "u2", Name: "Bob"}}

	tests := []struct {
		count   int
		summary bool
		online  []string
	}{
		{1, false, []string{"u3"}},
		{2, false, []string{"u1", "u3"}},
		{3, true, []string{"u1", "u2"}},
	}
	for i, u := range users {
		s, out := start(t, h, st, &u, uint64(i+1))
		raw, p := join(t, s, out, "r1")
		tt := tests[i]
		if string(raw["online_count"]) != jsonInt(tt.count) {
			t.Errorf("%s's joined has online_count %s, want %d", u.Name, raw["online_count"], tt.count)
		}
		if p.OnlineCount != tt.count || p.Summary != tt.summary || !slices.Equal(userIDs(p.Online), tt.online) {
			t.Errorf("%s's joined = {online %v, online_count %d, summary %v}, want {%v, %d, %v}",
				u.Name, userIDs(p.Online), p.OnlineCount, p.Summary, tt.online, tt.count, tt.summary)
		}
	}

	// A guest is not counted, and learns the same.
	g, out := start(t, h, st, nil, 99)
	raw, p := join(t, g, out, "r1")
	if string(raw["online_count"]) != "3" || string(raw["summary"]) != "true" || len(p.Online) != 2 {
		t.Errorf("guest's joined = %s, want 2 users listed, online_count 3, summary true", mustJSON(raw))
	}
}

// In an empty room the count is there too, as 0.
func TestJoinedEmptyRoom(t *testing.T) {
	h := hub.New(hub.NewMemoryBroker(), hub.Config{})
	defer h.Close()
	st := joinStore{room: chat.Room{ID: "r1", Name: "General", Kind: chat.KindPublic}}
	g, out := start(t, h, st, nil, 1)
	raw, _ := join(t, g, out, "r1")
	if string(raw["online_count"]) != "0" || string(raw["online"]) != "[]" || string(raw["summary"]) != "false" {
		t.Errorf("guest's joined of an empty room = %s, want online [], online_count 0, summary false", mustJSON(raw))
	}
}

func userIDs(users []chat.User) []string {
	out := make([]string, len(users))
	for i, u := range users {
		out[i] = u.ID
	}
	return out
}

func jsonInt(n int) string {
	b, _ := json.Marshal(n)
	return string(b)
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// An end event for a user (a ban) reaches each of their connections,
// which tell the client why and end; other users' connections stay.
func TestEndEventEndsTheUsersConnections(t *testing.T) {
	h := hub.New(hub.NewMemoryBroker(), hub.Config{})
	defer h.Close()
	st := joinStore{room: chat.Room{ID: "r1", Name: "General", Kind: chat.KindPublic}}
	alice, bob := &chat.User{ID: "alice", Name: "Alice"}, &chat.User{ID: "bob", Name: "Bob"}
	s1, a1 := start(t, h, st, alice, 1)
	join(t, s1, a1, "r1")
	_, a2 := start(t, h, st, alice, 2) // in no room
	_, b := start(t, h, st, bob, 3)

	ev := chat.MustEvent(chat.EventEnd, chat.EndPayload{Code: chat.CodeForbidden, Message: "this account is banned"})
	if err := h.Publish(context.Background(), hub.Envelope{To: hub.ToUsers("alice"), Event: ev}); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for (len(a1.endings()) == 0 || len(a2.endings()) == 0) && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	for i, out := range []*outbox{a1, a2} {
		if got := out.endings(); !slices.Equal(got, []string{"this account is banned"}) {
			t.Errorf("alice's connection %d: End(%q), want once with the message", i+1, got)
		}
		errs := out.take(chat.EventError)
		if len(errs) != 1 || errs[0].ReplyTo != nil {
			t.Fatalf("alice's connection %d: errors %v, want one without a request id", i+1, errs)
		}
		if p := errs[0].Data.(chat.ErrorPayload); p.Code != chat.CodeForbidden || p.Message != "this account is banned" {
			t.Errorf("alice's connection %d: error %+v", i+1, p)
		}
	}
	if got := b.endings(); len(got) != 0 {
		t.Errorf("bob's connection ended too: %q", got)
	}
	if evs := b.take(chat.EventError); len(evs) != 0 {
		t.Errorf("bob got %d errors", len(evs))
	}
}
