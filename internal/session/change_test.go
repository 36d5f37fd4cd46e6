package session_test

import (
	"context"
	"encoding/json"
	"sync"
	"testing"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/session"
)

// changeStore holds messages to edit and delete, in a public room
// "lobby" and a private room "secret" whose only member is "bob".
type changeStore struct {
	*commitStore
	mu       sync.Mutex
	msgs     map[string]chat.Message
	edits    []string // "id:text" in call order
	deletes  []string
	failNext error
}

func newChangeStore(msgs ...chat.Message) *changeStore {
	s := &changeStore{commitStore: &commitStore{}, msgs: map[string]chat.Message{}}
	for _, m := range msgs {
		s.msgs[m.ID] = m
	}
	return s
}

func (s *changeStore) Room(_ context.Context, id string) (chat.Room, error) {
	if id == "secret" {
		return chat.Room{ID: id, Kind: chat.KindPrivate, Members: []string{"bob"}}, nil
	}
	return chat.Room{ID: id, Kind: chat.KindPublic}, nil
}

func (s *changeStore) Message(_ context.Context, id string) (chat.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	m, ok := s.msgs[id]
	if !ok {
		return chat.Message{}, chat.Errorf(chat.CodeNotFound, "message not found")
	}
	return m, nil
}

func (s *changeStore) EditMessage(_ context.Context, id, text string) (chat.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.failNext; err != nil {
		s.failNext = nil
		return chat.Message{}, err
	}
	m := s.msgs[id]
	m.Text = text
	s.msgs[id] = m
	s.edits = append(s.edits, id+":"+text)
	return m, nil
}

func (s *changeStore) DeleteMessage(_ context.Context, id string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.msgs, id)
	s.deletes = append(s.deletes, id)
	return nil
}

func (s *changeStore) changes() (edits, deletes []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.edits...), append([]string(nil), s.deletes...)
}

// lastReply returns the single event in out, failing unless there is
// exactly one.
func lastReply(t *testing.T, out *slowOutbox) *chat.Event {
	t.Helper()
	evs := out.events()
	if len(evs) != 1 {
		t.Fatalf("got %d events, want 1 reply", len(evs))
	}
	return evs[0]
}

func TestEditAndDelete(t *testing.T) {
	now := time.Now()
	alice, bob := chat.User{ID: "alice", Name: "Alice"}, chat.User{ID: "bob", Name: "Bob"}
	msgs := []chat.Message{
		{ID: "fresh", Room: "lobby", Author: alice, Text: "helo", Kind: chat.KindUser, Created: now.Add(-time.Minute)},
		{ID: "old", Room: "lobby", Author: alice, Text: "old", Kind: chat.KindUser, Created: now.Add(-2 * time.Hour)},
		{ID: "bobs", Room: "lobby", Author: bob, Text: "mine", Kind: chat.KindUser, Created: now},
		{ID: "hidden", Room: "secret", Author: bob, Text: "psst", Kind: chat.KindUser, Created: now},
		{ID: "botsays", Room: "lobby", Author: alice, Text: "beep", Kind: chat.KindBot, Created: now},
	}
	tests := []struct {
		name     string
		user     *chat.User
		window   time.Duration
		standing chat.Standing
		req      chat.Request
		code     chat.Code // "" for an ack
		edits    []string
		deletes  []string
	}{
		{name: "edit own", user: &alice, window: time.Hour,
			req: chat.Request{Type: chat.RequestEdit, Message: "fresh", Text: "hello"}, edits: []string{"fresh:hello"}},
		{name: "edit after the window", user: &alice, window: time.Hour,
			req: chat.Request{Type: chat.RequestEdit, Message: "old", Text: "new"}, code: chat.CodeForbidden},
		{name: "no window", user: &alice,
			req: chat.Request{Type: chat.RequestEdit, Message: "old", Text: "new"}, edits: []string{"old:new"}},
		{name: "edit another's", user: &alice,
			req: chat.Request{Type: chat.RequestEdit, Message: "bobs", Text: "ha"}, code: chat.CodeForbidden},
		{name: "edit a bot message", user: &alice,
			req: chat.Request{Type: chat.RequestEdit, Message: "botsays", Text: "ha"}, code: chat.CodeForbidden},
		{name: "edit while muted", user: &alice, standing: chat.Standing{MutedUntil: now.Add(time.Hour)},
			req: chat.Request{Type: chat.RequestEdit, Message: "fresh", Text: "x"}, code: chat.CodeForbidden},
		{name: "delete while muted", user: &alice, standing: chat.Standing{MutedUntil: now.Add(time.Hour)},
			req: chat.Request{Type: chat.RequestDelete, Message: "fresh"}, deletes: []string{"fresh"}},
		{name: "delete own, however old", user: &alice, window: time.Minute,
			req: chat.Request{Type: chat.RequestDelete, Message: "old"}, deletes: []string{"old"}},
		{name: "delete another's", user: &alice,
			req: chat.Request{Type: chat.RequestDelete, Message: "bobs"}, code: chat.CodeForbidden},
		{name: "unknown message", user: &alice,
			req: chat.Request{Type: chat.RequestDelete, Message: "nope"}, code: chat.CodeNotFound},
		{name: "message in a room one cannot read", user: &alice,
			req: chat.Request{Type: chat.RequestDelete, Message: "hidden"}, code: chat.CodeNotFound},
		{name: "member of that room", user: &bob,
			req: chat.Request{Type: chat.RequestEdit, Message: "hidden", Text: "shh"}, edits: []string{"hidden:shh"}},
		{name: "guest", user: nil,
			req: chat.Request{Type: chat.RequestDelete, Message: "fresh"}, code: chat.CodeAuthRequired},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := newChangeStore(msgs...)
			st.standing = tc.standing
			out := &slowOutbox{}
			s := session.New(session.Config{EditWindow: tc.window}, st, nil, out, tc.user, 1)
			req := tc.req
			req.ID = json.RawMessage(`7`)
			if err := req.Validate(); err != nil {
				t.Fatal(err)
			}
			s.Handle(context.Background(), &req)
			ev := lastReply(t, out)
			if string(ev.ReplyTo) != "7" {
				t.Errorf("reply id %s, want 7", ev.ReplyTo)
			}
			if tc.code != "" {
				if got := errorOf(t, ev).Code; got != tc.code {
					t.Errorf("code %q, want %q", got, tc.code)
				}
			} else {
				if ev.Type != chat.EventAck {
					t.Fatalf("got %q (%s), want ack", ev.Type, ev.Payload)
				}
				ack, _ := ev.Data.(chat.AckPayload)
				if ack.Message.ID != req.Message {
					t.Errorf("ack of message %q, want %q", ack.Message.ID, req.Message)
				}
				if req.Type == chat.RequestEdit && ack.Message.Text != req.Text {
					t.Errorf("ack text %q, want %q", ack.Message.Text, req.Text)
				}
			}
			edits, deletes := st.changes()
			if !equal(edits, tc.edits) || !equal(deletes, tc.deletes) {
				t.Errorf("store got edits %q deletes %q, want %q %q", edits, deletes, tc.edits, tc.deletes)
			}
		})
	}
}

func TestEditMutedCarriesUntil(t *testing.T) {
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	alice := chat.User{ID: "alice"}
	st := newChangeStore(chat.Message{ID: "m", Room: "lobby", Author: alice, Kind: chat.KindUser, Created: time.Now()})
	st.standing = chat.Standing{MutedUntil: until}
	out := &slowOutbox{}
	s := session.New(session.Config{}, st, nil, out, &alice, 1)
	s.Handle(context.Background(), &chat.Request{Type: chat.RequestEdit, Message: "m", Text: "x"})
	if p := errorOf(t, lastReply(t, out)); !p.Until.Equal(until) {
		t.Errorf("until %v, want %v", p.Until, until)
	}
}

func TestEditsShareTheSendLimit(t *testing.T) {
	alice := chat.User{ID: "alice"}
	st := newChangeStore(chat.Message{ID: "m", Room: "lobby", Author: alice, Kind: chat.KindUser, Created: time.Now()})
	lim := &fixedLimits{wait: time.Second}
	lim.n.Store(1)
	out := &slowOutbox{}
	s := session.New(session.Config{Limits: lim}, st, nil, out, &alice, 1)
	s.Handle(context.Background(), &chat.Request{Type: chat.RequestEdit, Message: "m", Text: "one"})
	s.Handle(context.Background(), &chat.Request{Type: chat.RequestDelete, Message: "m"})
	evs := out.events()
	if len(evs) != 2 || evs[0].Type != chat.EventAck || errorOf(t, evs[1]).Code != chat.CodeRateLimited {
		t.Fatalf("got %d events, want an ack then rate_limited", len(evs))
	}
	if edits, deletes := st.changes(); len(edits) != 1 || len(deletes) != 0 {
		t.Errorf("store got edits %q deletes %q", edits, deletes)
	}
}

func TestEditStoreErrorIsReported(t *testing.T) {
	alice := chat.User{ID: "alice"}
	st := newChangeStore(chat.Message{ID: "m", Room: "lobby", Author: alice, Kind: chat.KindUser, Created: time.Now()})
	st.failNext = chat.Errorf(chat.CodeBadRequest, "invalid: text")
	out := &slowOutbox{}
	s := session.New(session.Config{}, st, nil, out, &alice, 1)
	s.Handle(context.Background(), &chat.Request{Type: chat.RequestEdit, ID: json.RawMessage(`"e"`), Message: "m", Text: "x"})
	if p := errorOf(t, lastReply(t, out)); p.Code != chat.CodeBadRequest {
		t.Errorf("code %q, want bad_request", p.Code)
	}
}

func equal(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
