package session_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/session"
)

// commitStore is a Store whose messages wait until the test commits or
// fails them, as the group commit would report them later.
type commitStore struct {
	mu       sync.Mutex
	standing chat.Standing
	waiting  []func(chat.Message, error)
	texts    []string
}

func (s *commitStore) VisibleRooms(context.Context, string) ([]*chat.Room, error) { return nil, nil }
func (s *commitStore) Room(_ context.Context, id string) (chat.Room, error) {
	return chat.Room{ID: id, Name: id, Kind: chat.KindPublic}, nil
}
func (s *commitStore) User(_ context.Context, id string) (chat.User, error) {
	return chat.User{ID: id, Name: id}, nil
}
func (s *commitStore) Messages(context.Context, string, session.Page) ([]chat.Message, bool, error) {
	return nil, false, nil
}
func (s *commitStore) DirectRoom(_ context.Context, a, b string) (chat.Room, error) {
	return chat.Room{ID: "dm", Kind: chat.KindDirect, Members: []string{a, b}}, nil
}
func (s *commitStore) Standing(context.Context, string) (chat.Standing, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.standing, nil
}

// commitStore holds no message to edit or delete (changeStore does).
func (s *commitStore) Message(context.Context, string) (chat.Message, error) {
	return chat.Message{}, chat.Errorf(chat.CodeNotFound, "message not found")
}
func (s *commitStore) EditMessage(context.Context, string, string) (chat.Message, error) {
	return chat.Message{}, errors.New("commitStore: no message to edit")
}
func (s *commitStore) DeleteMessage(context.Context, string) error {
	return errors.New("commitStore: no message to delete")
}

func (s *commitStore) CreateMessage(_ context.Context, author chat.User, roomID, text string, done func(chat.Message, error)) {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := len(s.waiting)
	s.texts = append(s.texts, text)
	s.waiting = append(s.waiting, func(m chat.Message, err error) {
		if err == nil {
			m = chat.Message{ID: fmt.Sprint("m", n), Room: roomID, Author: author, Text: text, Seq: int64(n + 1)}
		}
		done(m, err)
	})
}

func (s *commitStore) created() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.waiting)
}

// report commits (err nil) or fails the i-th message.
func (s *commitStore) report(i int, err error) {
	s.mu.Lock()
	done := s.waiting[i]
	s.mu.Unlock()
	done(chat.Message{}, err)
}

// slowOutbox records events; each Send takes a moment, so a reply
// counted as done before it is queued would show.
type slowOutbox struct {
	mu  sync.Mutex
	evs []*chat.Event
	// endedAfter is len(evs) when End was first called.
	endedAfter int
	ends       int
}

func (o *slowOutbox) End(string) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.ends == 0 {
		o.endedAfter = len(o.evs)
	}
	o.ends++
}

func (o *slowOutbox) Send(ev *chat.Event) {
	time.Sleep(5 * time.Millisecond)
	o.mu.Lock()
	o.evs = append(o.evs, ev)
	o.mu.Unlock()
}

func (o *slowOutbox) events() []*chat.Event {
	o.mu.Lock()
	defer o.mu.Unlock()
	return append([]*chat.Event(nil), o.evs...)
}

type countMetrics struct{ committed atomic.Int32 }

func (*countMetrics) Delivered()                  {}
func (m *countMetrics) Committed(d time.Duration) { m.committed.Add(1) }

// newSendSession is a session of a signed-in user that has not started:
// sending touches neither the hub nor the rooms it would load.
func newSendSession(cfg session.Config) (*session.Session, *commitStore, *slowOutbox) {
	st, out := &commitStore{}, &slowOutbox{}
	alice := &chat.User{ID: "alice", Name: "Alice"}
	return session.New(cfg, st, nil, out, alice, 1), st, out
}

func sendReq(id int, text string) *chat.Request {
	return &chat.Request{Type: chat.RequestSend, ID: json.RawMessage(fmt.Sprint(id)), Room: "lobby", Text: text}
}

// returns reports whether fn returns within a moment. A false "true" on a
// loaded machine is impossible; a false "false" only weakens the check.
func returns(fn func()) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		fn()
		close(done)
	}()
	return done
}

func waitFor(t *testing.T, what string, ch <-chan struct{}) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(30 * time.Second):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// Handle returns as soon as a send is handed to the store; the ack or
// error follows the store's report, with the request's id.
func TestSendIsPipelined(t *testing.T) {
	m := &countMetrics{}
	s, st, out := newSendSession(session.Config{Metrics: m})
	for i := 1; i <= 3; i++ {
		s.Handle(context.Background(), sendReq(i, fmt.Sprint("hello ", i)))
	}
	if n := st.created(); n != 3 {
		t.Fatalf("%d messages handed to the store, want 3 without waiting for commits", n)
	}
	if evs := out.events(); len(evs) != 0 {
		t.Fatalf("replies before any commit: %v", evs)
	}
	st.report(0, nil)
	st.report(1, chat.Errorf(chat.CodeBadRequest, "invalid"))
	st.report(2, errors.New("disk on fire"))

	evs := out.events()
	if len(evs) != 3 {
		t.Fatalf("%d replies, want 3", len(evs))
	}
	if evs[0].Type != chat.EventAck || string(evs[0].ReplyTo) != "1" {
		t.Errorf("first reply %s to %s, want an ack to 1", evs[0].Type, evs[0].ReplyTo)
	} else if p := evs[0].Data.(chat.AckPayload); p.Message.ID != "m0" || p.Message.Text != "hello 1" {
		t.Errorf("ack carries %+v, want the committed message", p.Message)
	}
	for i, want := range []chat.Code{chat.CodeBadRequest, chat.CodeInternal} {
		ev := evs[i+1]
		p, _ := ev.Data.(chat.ErrorPayload)
		if ev.Type != chat.EventError || string(ev.ReplyTo) != fmt.Sprint(i+2) || p.Code != want {
			t.Errorf("reply %d: %s to %s with code %q, want an error to %d with code %q", i+2, ev.Type, ev.ReplyTo, p.Code, i+2, want)
		}
	}
	if got := m.committed.Load(); got != 1 {
		t.Errorf("Committed observed %d times, want once (for the ack)", got)
	}
}

// The checks before the store still answer at once, and nothing reaches
// the store.
func TestSendRefusedBeforeTheStore(t *testing.T) {
	s, st, out := newSendSession(session.Config{MaxText: 5})
	s.Handle(context.Background(), sendReq(1, "too long"))
	evs := out.events()
	if len(evs) != 1 || evs[0].Type != chat.EventError || evs[0].Data.(chat.ErrorPayload).Code != chat.CodeTooLarge {
		t.Fatalf("replies %v, want one too_large error", evs)
	}
	if st.created() != 0 {
		t.Error("a refused message reached the store")
	}
	s.Wait() // nothing in flight: returns at once
}

// At InFlight sends waiting for their commit, the next send blocks the
// reader until one is reported.
func TestSendBackpressure(t *testing.T) {
	s, st, out := newSendSession(session.Config{InFlight: 2})
	s.Handle(context.Background(), sendReq(1, "one"))
	s.Handle(context.Background(), sendReq(2, "two"))
	third := returns(func() { s.Handle(context.Background(), sendReq(3, "three")) })
	select {
	case <-third:
		t.Fatal("a third send went through with two in flight and InFlight 2")
	case <-time.After(50 * time.Millisecond):
	}
	st.report(0, nil)
	waitFor(t, "the third send after a commit", third)
	if n := st.created(); n != 3 {
		t.Errorf("%d messages handed to the store, want 3", n)
	}
	st.report(1, nil)
	st.report(2, nil)
	s.Wait()
	var ids []string
	for _, ev := range out.events() {
		ids = append(ids, string(ev.ReplyTo))
	}
	if got := strings.Join(ids, ","); got != "1,2,3" {
		t.Errorf("replies to %s, want 1,2,3", got)
	}
}

// Wait returns only once the reply of every send in flight is queued.
func TestWaitForSendsInFlight(t *testing.T) {
	s, st, out := newSendSession(session.Config{})
	const n = 4
	for i := 1; i <= n; i++ {
		s.Handle(context.Background(), sendReq(i, "hi"))
	}
	waited := returns(s.Wait)
	select {
	case <-waited:
		t.Fatal("Wait returned with every send in flight")
	case <-time.After(50 * time.Millisecond):
	}
	go func() {
		for i := range n {
			st.report(i, nil)
		}
	}()
	waitFor(t, "Wait", waited)
	if evs := out.events(); len(evs) != n {
		t.Errorf("Wait returned with %d replies queued, want %d", len(evs), n)
	}
}

// fixedLimits allows the first n sends, then refuses with wait.
type fixedLimits struct {
	n    atomic.Int32
	wait time.Duration
	keys sync.Map // user ids asked about
}

// Typing never refuses: typing_test covers its limit.
func (l *fixedLimits) Typing(string) (time.Duration, bool) { return 0, true }

func (l *fixedLimits) Send(userID string) (time.Duration, bool) {
	l.keys.Store(userID, true)
	if l.n.Add(-1) >= 0 {
		return 0, true
	}
	return l.wait, false
}

func errorOf(t *testing.T, ev *chat.Event) chat.ErrorPayload {
	t.Helper()
	p, ok := ev.Data.(chat.ErrorPayload)
	if ev.Type != chat.EventError || !ok {
		t.Fatalf("event %s %s, want an error", ev.Type, ev.Payload)
	}
	return p
}

// Over the user's allowance a send is refused at once with the wait, and
// never reaches the store; a connection that keeps going after
// AbuseRefusals refusals in a minute gets its last refusal, then End.
func TestSendRateLimited(t *testing.T) {
	lim := &fixedLimits{wait: 1500 * time.Microsecond}
	lim.n.Store(2)
	s, st, out := newSendSession(session.Config{Limits: lim, AbuseRefusals: 3})
	for i := 1; i <= 6; i++ {
		s.Handle(context.Background(), sendReq(i, "hi"))
	}
	if n := st.created(); n != 2 {
		t.Fatalf("%d messages reached the store, want the 2 allowed", n)
	}
	if _, ok := lim.keys.Load("alice"); !ok {
		t.Errorf("the limits were not asked about the user's id")
	}
	evs := out.events()
	if len(evs) != 4 {
		t.Fatalf("%d replies, want 4 refusals", len(evs))
	}
	for i, ev := range evs {
		p := errorOf(t, ev)
		if p.Code != chat.CodeRateLimited || p.RetryAfter != 2 || string(ev.ReplyTo) != fmt.Sprint(i+3) {
			t.Errorf("refusal %d: %+v to %s, want rate_limited with retryAfter 2 (ms, rounded up) to %d", i, p, ev.ReplyTo, i+3)
		}
	}
	out.mu.Lock()
	ends, after := out.ends, out.endedAfter
	out.mu.Unlock()
	if ends != 1 || after != 4 {
		t.Errorf("End called %d times, after %d replies; want once, after the 4th refusal", ends, after)
	}
}

// A negative AbuseRefusals never ends the connection, and without Limits
// nothing is limited.
func TestSendRateLimitedNoEnd(t *testing.T) {
	lim := &fixedLimits{wait: time.Second}
	s, _, out := newSendSession(session.Config{Limits: lim, AbuseRefusals: -1})
	for i := range 100 {
		s.Handle(context.Background(), sendReq(i, "hi"))
	}
	if out.ends != 0 || len(out.events()) != 100 {
		t.Errorf("%d ends, %d replies; want none and 100 refusals", out.ends, len(out.events()))
	}
	s, st, _ := newSendSession(session.Config{}) // InFlight: 64 wait for commits
	for i := range 60 {
		s.Handle(context.Background(), sendReq(i, "hi"))
	}
	if st.created() != 60 {
		t.Errorf("%d of 60 sends reached the store with no limits", st.created())
	}
}

func TestSendStanding(t *testing.T) {
	until := time.Now().Add(time.Hour).UTC().Truncate(time.Second)
	for _, tt := range []struct {
		name      string
		standing  chat.Standing
		wantUntil time.Time
		stored    bool
	}{
		{"banned", chat.Standing{Banned: true}, time.Time{}, false},
		{"muted", chat.Standing{MutedUntil: until}, until, false},
		{"mute over", chat.Standing{MutedUntil: time.Now().Add(-time.Second)}, time.Time{}, true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s, st, out := newSendSession(session.Config{})
			st.standing = tt.standing
			s.Handle(context.Background(), sendReq(1, "hi"))
			s.Handle(context.Background(), &chat.Request{Type: chat.RequestDM, ID: json.RawMessage("2"), To: "bob", Text: "hi"})
			if tt.stored {
				if st.created() != 2 || len(out.events()) != 0 {
					t.Fatalf("%d stored, replies %v; want both stored", st.created(), out.events())
				}
				return
			}
			if st.created() != 0 {
				t.Fatalf("%d messages reached the store", st.created())
			}
			for _, ev := range out.events() {
				p := errorOf(t, ev)
				if p.Code != chat.CodeForbidden || !p.Until.Equal(tt.wantUntil) {
					t.Errorf("reply %+v, want forbidden until %v", p, tt.wantUntil)
				}
			}
		})
	}
}
