// Package session is the chat logic of one client connection, whatever
// protocol carries it: it checks each request against the user's rights,
// reads and writes through a Store, joins rooms on the hub and answers
// through an Outbox.
//
//	s := session.New(session.Config{PageSize: 50}, store, h, out, user, connID)
//	if err := s.Start(ctx); err != nil { ... }   // registers, sends hello
//	defer s.Close()
//	for each decoded request: s.Handle(ctx, req)
//	when reading has stopped: s.Wait()             // replies to sends in flight are queued
//
// A session keeps the rooms its user can see in memory and updates them
// from room events, so delivering a message costs no database query.
package session

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/hub"
)

// Store is what a session reads and writes. Errors that clients may see
// are *chat.Error values; anything else is reported as "internal".
type Store interface {
	// VisibleRooms lists the rooms the user ("" for a guest) can read.
	// The rooms may be shared with other sessions: they are only read.
	VisibleRooms(ctx context.Context, userID string) ([]*chat.Room, error)
	// Room returns a room by id, or a CodeNotFound error.
	Room(ctx context.Context, id string) (chat.Room, error)
	// User returns a user by id, or a CodeNotFound error.
	User(ctx context.Context, id string) (chat.User, error)
	// Messages returns up to limit messages of a room, oldest first, and
	// whether more exist beyond them: the latest ones when before and
	// after are both "", those older than the message before, or those
	// newer than the message after. An unknown cursor is CodeNotFound.
	Messages(ctx context.Context, roomID string, q Page) ([]chat.Message, bool, error)
	// CreateMessage queues a message for saving and returns at once; done
	// is called exactly once, from another goroutine or before
	// CreateMessage returns, with the message once it is committed or with
	// the reason it was not stored. The done calls of one caller come in
	// the order of its CreateMessage calls.
	CreateMessage(ctx context.Context, author chat.User, roomID, text string, done func(chat.Message, error))
	// DirectRoom returns the direct room of two users, creating it if needed.
	DirectRoom(ctx context.Context, a, b string) (chat.Room, error)
	// Standing is what moderators decided about the user, as of now.
	Standing(ctx context.Context, userID string) (chat.Standing, error)
	// Message returns a message by id, or a CodeNotFound error.
	Message(ctx context.Context, id string) (chat.Message, error)
	// EditMessage saves a message's new text and returns the message as
	// saved; the room hears of it from the store's broadcast.
	EditMessage(ctx context.Context, id, text string) (chat.Message, error)
	// DeleteMessage deletes a message; the room hears of it from the
	// store's broadcast.
	DeleteMessage(ctx context.Context, id string) error
}

// Page selects a slice of a room's history.
type Page struct {
	Before string // message id: return older messages
	After  string // message id: return newer messages
	Limit  int
}

// Outbox queues events for the client. Send must not block.
type Outbox interface {
	Send(ev *chat.Event)
	// End closes the connection for breaking a rule (a ban, abuse) after
	// the events queued: a WebSocket with 1008, a socket.io client with a
	// disconnect. It must not block.
	End(reason string)
}

// Limits are the user's allowances, shared by all the ways they write
// (their other connections, REST): the server's limiters.
type Limits interface {
	// Send takes one message from the user's allowance. When none is
	// left it takes nothing and returns how long until there is one.
	Send(userID string) (wait time.Duration, ok bool)
	// Typing takes one typing notice from the user's allowance, like Send.
	Typing(userID string) (wait time.Duration, ok bool)
}

// DefaultAbuseRefusals is the default for Config.AbuseRefusals.
const DefaultAbuseRefusals = 30

// Config tunes a session.
type Config struct {
	// PageSize is the number of latest messages sent on join.
	PageSize int
	// MaxText is the longest accepted message text, in characters
	// (at most chat.MaxTextLen, which the schema enforces).
	MaxText int
	// Metrics counts deliveries and times sends; nil counts nothing.
	Metrics Metrics
	// InFlight bounds the sends (send and dm requests) waiting for their
	// commit; at the bound the reader waits for one to finish before it
	// reads on. 0 means DefaultInFlight.
	InFlight int
	// Limits rate-limits sends; nil limits nothing.
	Limits Limits
	// AbuseRefusals is how many rate_limited refusals a connection may
	// get within a minute: one more and it is closed (Outbox.End), since
	// a client that ignores retryAfter that often is flooding on
	// purpose. Negative: never closed.
	AbuseRefusals int
	// MaxJoins bounds the rooms the connection has joined at once (each
	// costs memory and a share of every message); 0: no limit.
	MaxJoins int
	// EditWindow is how long after posting authors may edit a message;
	// 0: at any time. Deleting one's own message has no time limit.
	EditWindow time.Duration
}

// DefaultInFlight is the default bound on a session's sends waiting for
// their commit: enough to fill several group commits from one busy
// client, few enough that a flood is slowed by TCP rather than queued.
const DefaultInFlight = 64

// Metrics is what a session reports for monitoring. Its methods are
// called on hot paths and from any goroutine: they must be cheap (an
// atomic add), never block and never allocate.
type Metrics interface {
	// Delivered counts one hub event handed to the connection's queue.
	Delivered()
	// Committed observes the time from receiving a send or dm request
	// to the store reporting its message committed.
	Committed(d time.Duration)
}

// noMetrics is the Metrics of a session configured without any.
type noMetrics struct{}

func (noMetrics) Delivered()              {}
func (noMetrics) Committed(time.Duration) {}

// Session is one connection's chat state. Handle is called from one
// goroutine (the connection's reader); Deliver from any.
type Session struct {
	cfg    Config
	store  Store
	hub    *hub.Hub
	out    Outbox
	user   *chat.User // nil for guests
	connID uint64

	mu sync.Mutex
	// rooms the user can see, shared with the store's cache (read only).
	rooms roomSet
	// joining holds room events back while a join loads history; nil
	// between joins, as most connections are most of the time.
	joining map[string][]*chat.Event

	// sends counts the send and dm requests handed to the store and not
	// yet answered; sendDone signals each answer (to a reader at the
	// InFlight bound, or to Wait).
	// refused counts the rate_limited refusals since refusedSince (a
	// minute at most); the reader's, like Handle.
	refused      int
	refusedSince time.Time

	sendMu   sync.Mutex
	sendDone sync.Cond // L is &sendMu; a value, one allocation less per connection
	sends    int
}

var _ hub.Subscriber = (*Session)(nil)

// New returns a session for user (nil for a guest).
func New(cfg Config, store Store, h *hub.Hub, out Outbox, user *chat.User, connID uint64) *Session {
	if cfg.PageSize <= 0 || cfg.PageSize > chat.MaxPageSize {
		cfg.PageSize = chat.DefaultPageSize
	}
	if cfg.MaxText <= 0 || cfg.MaxText > chat.MaxTextLen {
		cfg.MaxText = chat.MaxTextLen
	}
	if cfg.Metrics == nil {
		cfg.Metrics = noMetrics{}
	}
	if cfg.InFlight <= 0 {
		cfg.InFlight = DefaultInFlight
	}
	if cfg.AbuseRefusals == 0 {
		cfg.AbuseRefusals = DefaultAbuseRefusals
	}
	s := &Session{
		cfg: cfg, store: store, hub: h, out: out, user: user, connID: connID,
	}
	s.sendDone.L = &s.sendMu
	return s
}

// ConnID identifies the connection on this node.
func (s *Session) ConnID() uint64 { return s.connID }

// UserID is the user's id, "" for a guest.
func (s *Session) UserID() string {
	if s.user == nil {
		return ""
	}
	return s.user.ID
}

// User is the signed-in user, nil for a guest.
func (s *Session) User() *chat.User { return s.user }

// Start loads the rooms the user can see, registers with the hub and sends
// hello. Registering before loading means no room change is missed.
func (s *Session) Start(ctx context.Context) error {
	s.hub.Register(s)
	rooms, err := s.store.VisibleRooms(ctx, s.UserID())
	if err != nil {
		s.hub.Unregister(s)
		return err
	}
	s.mu.Lock()
	s.rooms.putAll(rooms) // a room event may have brought some first: they stay
	list := make([]chat.Room, 0, len(s.rooms))
	for _, r := range rooms {
		if cur := s.rooms.get(r.ID); cur != nil {
			list = append(list, *cur)
		}
	}
	s.out.Send(chat.MustEvent(chat.EventHello, chat.HelloPayload{User: s.user, Rooms: list}))
	s.mu.Unlock()
	return nil
}

// Close leaves every room and unregisters from the hub.
func (s *Session) Close() { s.hub.Unregister(s) }

// Handle runs one request and queues its reply. A send or dm returns as
// soon as its message is handed to the store; its reply follows the
// commit (see Wait).
func (s *Session) Handle(ctx context.Context, req *chat.Request) {
	if err := s.handle(ctx, req); err != nil && err != errReplied {
		s.out.Send(chat.ErrorEvent(req.ID, err))
	}
}

func (s *Session) handle(ctx context.Context, req *chat.Request) error {
	switch req.Type {
	case chat.RequestPing:
		return s.reply(req, chat.EventPong, chat.PongPayload{})
	case chat.RequestJoin:
		return s.join(ctx, req)
	case chat.RequestLeave:
		s.hub.Leave(req.Room, s)
		return s.reply(req, chat.EventLeft, chat.LeftPayload{Room: req.Room})
	case chat.RequestSend:
		return s.send(ctx, req)
	case chat.RequestDM:
		return s.dm(ctx, req)
	case chat.RequestOpen:
		room, err := s.direct(ctx, req)
		if err != nil {
			return err
		}
		return s.reply(req, chat.EventOpened, chat.OpenedPayload{Room: room})
	case chat.RequestHistory:
		return s.history(ctx, req, Page{Before: req.Before, Limit: req.Limit})
	case chat.RequestResume:
		return s.history(ctx, req, Page{After: req.After, Limit: req.Limit})
	case chat.RequestTyping:
		return s.typing(ctx, req)
	case chat.RequestEdit, chat.RequestDelete:
		return s.change(ctx, req)
	}
	return chat.Errorf(chat.CodeBadRequest, "unknown type %q", req.Type)
}

func (s *Session) reply(req *chat.Request, typ string, payload any) error {
	ev := chat.MustEvent(typ, payload)
	ev.ReplyTo = req.ID
	s.out.Send(ev)
	return nil
}

// readable returns the room if the user can read it. The cache answers
// for rooms the user can see; a miss asks the store, so a room created a
// moment ago on another path is found too.
func (s *Session) readable(ctx context.Context, id string) (chat.Room, error) {
	s.mu.Lock()
	cached := s.rooms.get(id)
	s.mu.Unlock()
	if cached != nil {
		return *cached, nil
	}
	r, err := s.store.Room(ctx, id)
	if err != nil {
		return chat.Room{}, err
	}
	if !r.CanRead(s.UserID()) {
		return chat.Room{}, chat.Errorf(chat.CodeForbidden, "you may not read this room")
	}
	s.mu.Lock()
	s.rooms.put(&r)
	s.mu.Unlock()
	return r, nil
}

func (s *Session) writable(ctx context.Context, id string) (chat.Room, error) {
	if s.user == nil {
		return chat.Room{}, chat.Errorf(chat.CodeAuthRequired, "sign in to write")
	}
	r, err := s.readable(ctx, id)
	if err != nil {
		return r, err
	}
	if !r.CanWrite(s.user.ID) {
		return r, chat.Errorf(chat.CodeForbidden, "you may not write in this room")
	}
	return r, nil
}

func (s *Session) join(ctx context.Context, req *chat.Request) error {
	if _, err := s.readable(ctx, req.Room); err != nil {
		return err
	}
	if s.cfg.MaxJoins > 0 && !s.hub.Joined(req.Room, s) && s.hub.JoinedCount(s) >= s.cfg.MaxJoins {
		return chat.Errorf(chat.CodeForbidden, "a connection may join at most %d rooms: leave one first", s.cfg.MaxJoins)
	}
	// Hold the room's events back until the joined reply is queued, so a
	// message committed while the history loads arrives once, after it.
	s.hold(req.Room)
	var user chat.User
	if s.user != nil {
		user = *s.user
	}
	online := s.hub.Join(req.Room, s, user)
	msgs, more, err := s.store.Messages(ctx, req.Room, Page{Limit: s.cfg.PageSize})
	if err != nil {
		s.hub.Leave(req.Room, s)
		s.release(req.Room, nil, 0, false)
		return err
	}
	ev := chat.MustEvent(chat.EventJoined, chat.JoinedPayload{
		Room: req.Room, Online: online.Users, OnlineCount: online.Count, Summary: online.Summary,
		Messages: msgs, More: more,
	})
	ev.ReplyTo = req.ID
	s.release(req.Room, ev, lastSeq(msgs), false)
	return nil
}

// hold starts holding back the room's events (Deliver queues them) until
// release. It reports false if they are held already.
func (s *Session) hold(room string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, busy := s.joining[room]; busy {
		return false
	}
	if s.joining == nil {
		s.joining = make(map[string][]*chat.Event, 1)
	}
	s.joining[room] = []*chat.Event{}
	return true
}

// release queues reply (if any), then the room's held events, and stops
// holding them. Messages up to seq last are in the reply and are not sent
// again; with skipLater, no held message is, since the client asks for
// those next (a resume page with more after it).
func (s *Session) release(room string, reply *chat.Event, last int64, skipLater bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if reply != nil {
		s.out.Send(reply)
	}
	for _, held := range s.joining[room] {
		if seq, ok := messageSeq(held); ok && (skipLater || seq <= last) {
			continue
		}
		s.out.Send(held)
		s.cfg.Metrics.Delivered()
	}
	s.joinDoneLocked(room)
}

// joinDoneLocked stops holding back the room's events; the map goes when
// no join is loading. s.mu is held.
func (s *Session) joinDoneLocked(room string) {
	delete(s.joining, room)
	if len(s.joining) == 0 {
		s.joining = nil
	}
}

func lastSeq(msgs []chat.Message) int64 {
	if len(msgs) == 0 {
		return 0
	}
	return msgs[len(msgs)-1].Seq
}

func messageSeq(ev *chat.Event) (int64, bool) {
	if ev.Type != chat.EventMessage {
		return 0, false
	}
	if p, ok := ev.Data.(chat.MessagePayload); ok {
		return p.Message.Seq, true
	}
	var p chat.MessagePayload
	if json.Unmarshal(ev.Payload, &p) != nil {
		return 0, false
	}
	return p.Message.Seq, true
}

func (s *Session) send(ctx context.Context, req *chat.Request) error {
	start := time.Now()
	if _, err := s.writable(ctx, req.Room); err != nil {
		return err
	}
	return s.post(ctx, req, req.Room, start)
}

// post hands the message of a send or dm request received at start to
// the store and returns without waiting for its commit, so the reader goes
// on with the next request while the message waits for a group commit.
// The ack (or the error) is queued when the store reports back; the store
// reports a session's messages in order, so its acks come in the order of
// its sends, though other replies may overtake them. At most
// Config.InFlight sends wait at a time: beyond, post blocks the reader,
// which slows the client down through TCP instead of queueing without
// bound.
func (s *Session) post(ctx context.Context, req *chat.Request, roomID string, start time.Time) error {
	if err := s.mayWrite(ctx, req.Text, time.Now()); err != nil {
		return err
	}
	if err := s.allowSend(req); err != nil {
		return err
	}
	id := req.ID
	s.beginSend()
	s.store.CreateMessage(ctx, *s.user, roomID, req.Text, func(msg chat.Message, err error) {
		defer s.endSend() // after the reply is queued: Wait covers it
		if err != nil {
			s.out.Send(chat.ErrorEvent(id, err))
			return
		}
		s.cfg.Metrics.Committed(time.Since(start))
		ev := chat.MustEvent(chat.EventAck, chat.AckPayload{Message: msg})
		ev.ReplyTo = id
		s.out.Send(ev)
	})
	return nil
}

// mayWrite checks text against Config.MaxText and the user's standing at
// now (not banned, not muted): what a send and an edit both need.
func (s *Session) mayWrite(ctx context.Context, text string, now time.Time) error {
	if n := len([]rune(text)); n > s.cfg.MaxText {
		return chat.Errorf(chat.CodeTooLarge, "text has %d characters, the limit is %d", n, s.cfg.MaxText)
	}
	st, err := s.store.Standing(ctx, s.user.ID)
	if err != nil {
		return err
	}
	return st.CheckWrite(now)
}

// allowSend takes a send from the user's allowance (Config.Limits), or
// returns the rate_limited error with the wait. A connection refused more
// than Config.AbuseRefusals times within a minute is ended.
func (s *Session) allowSend(req *chat.Request) error {
	if s.cfg.Limits == nil {
		return nil
	}
	wait, ok := s.cfg.Limits.Send(s.user.ID)
	if ok {
		return nil
	}
	now := time.Now()
	if now.Sub(s.refusedSince) > time.Minute {
		s.refused, s.refusedSince = 0, now
	}
	s.refused++
	err := &chat.Error{Code: chat.CodeRateLimited, Message: "too many messages: wait before sending again", RetryAfter: wait}
	if s.cfg.AbuseRefusals >= 0 && s.refused > s.cfg.AbuseRefusals {
		// The refusal first: a socket.io outbox takes nothing once ended.
		s.out.Send(chat.ErrorEvent(req.ID, err))
		s.out.End("rate limit exceeded again and again")
		return errReplied
	}
	return err
}

// change runs an edit or delete request. A message in a room the user
// cannot read is "not found", as if it did not exist. Both draw on the
// send allowance: each reaches everyone in the room. The reply is an ack
// with the message as saved (edit) or as it was (delete).
func (s *Session) change(ctx context.Context, req *chat.Request) error {
	if s.user == nil {
		return chat.Errorf(chat.CodeAuthRequired, "sign in to write")
	}
	msg, err := s.store.Message(ctx, req.Message)
	if err != nil {
		return err
	}
	if _, err := s.readable(ctx, msg.Room); err != nil {
		if code := chat.ErrorCode(err); code == chat.CodeForbidden || code == chat.CodeNotFound {
			return chat.Errorf(chat.CodeNotFound, "message not found")
		}
		return err
	}
	if req.Type == chat.RequestEdit {
		now := time.Now()
		if err := s.mayWrite(ctx, req.Text, now); err != nil {
			return err
		}
		if err := msg.CheckEdit(s.user.ID, now, s.cfg.EditWindow); err != nil {
			return err
		}
	} else if err := msg.CheckDelete(s.user.ID); err != nil {
		return err
	}
	if err := s.allowSend(req); err != nil {
		return err
	}
	if req.Type == chat.RequestEdit {
		if msg, err = s.store.EditMessage(ctx, msg.ID, req.Text); err != nil {
			return err
		}
	} else if err := s.store.DeleteMessage(ctx, msg.ID); err != nil {
		return err
	}
	return s.reply(req, chat.EventAck, chat.AckPayload{Message: msg})
}

// errReplied is returned by a request handler that queued its reply
// itself (an error followed by the end of the connection).
var errReplied = errors.New("session: replied")

// beginSend takes a place among the sends in flight, waiting for one to
// finish when all are taken.
func (s *Session) beginSend() {
	s.sendMu.Lock()
	for s.sends >= s.cfg.InFlight {
		s.sendDone.Wait()
	}
	s.sends++
	s.sendMu.Unlock()
}

func (s *Session) endSend() {
	s.sendMu.Lock()
	s.sends--
	s.sendMu.Unlock()
	s.sendDone.Broadcast()
}

// Wait blocks until every send handed to the store so far has its reply
// (ack or error) queued on the Outbox. A transport calls it when it has
// stopped reading, before it writes what is queued and its close frame,
// so the acks of committed messages reach the client.
func (s *Session) Wait() {
	s.sendMu.Lock()
	for s.sends > 0 {
		s.sendDone.Wait()
	}
	s.sendMu.Unlock()
}

func (s *Session) dm(ctx context.Context, req *chat.Request) error {
	start := time.Now()
	room, err := s.direct(ctx, req)
	if err != nil {
		return err
	}
	return s.post(ctx, req, room.ID, start)
}

// direct finds or creates the direct room of the user and req.To. Both
// users' connections learn a new room from the room hook's broadcast.
func (s *Session) direct(ctx context.Context, req *chat.Request) (chat.Room, error) {
	if s.user == nil {
		return chat.Room{}, chat.Errorf(chat.CodeAuthRequired, "sign in to write")
	}
	if req.To == s.user.ID {
		return chat.Room{}, chat.Errorf(chat.CodeBadRequest, "you cannot have a private chat with yourself")
	}
	if _, err := s.store.User(ctx, req.To); err != nil {
		return chat.Room{}, err
	}
	room, err := s.store.DirectRoom(ctx, s.user.ID, req.To)
	if err != nil {
		return chat.Room{}, err
	}
	s.mu.Lock()
	s.rooms.put(&room)
	s.mu.Unlock()
	return room, nil
}

func (s *Session) history(ctx context.Context, req *chat.Request, q Page) error {
	if _, err := s.readable(ctx, req.Room); err != nil {
		return err
	}
	// A resume of a joined room holds the room's live messages back
	// until its page is queued: one that is in the page is not sent
	// again, and none is sent while more pages follow (the client asks
	// for them, and they hold it). So catching up never shows a message
	// twice.
	held := q.After != "" && s.hub.Joined(req.Room, s) && s.hold(req.Room)
	msgs, more, err := s.store.Messages(ctx, req.Room, q)
	if err != nil {
		if held {
			s.release(req.Room, nil, 0, false)
		}
		return err
	}
	ev := chat.MustEvent(chat.EventHistory, chat.HistoryPayload{Room: req.Room, Messages: msgs, More: more})
	ev.ReplyTo = req.ID
	if !held {
		s.out.Send(ev)
		return nil
	}
	s.release(req.Room, ev, lastSeq(msgs), more)
	return nil
}

func (s *Session) typing(ctx context.Context, req *chat.Request) error {
	if _, err := s.writable(ctx, req.Room); err != nil {
		return err
	}
	if !s.hub.Joined(req.Room, s) {
		return chat.Errorf(chat.CodeBadRequest, "join the room before typing in it")
	}
	if s.cfg.Limits != nil {
		if wait, ok := s.cfg.Limits.Typing(s.user.ID); !ok {
			return &chat.Error{Code: chat.CodeRateLimited, Message: "too many typing notices", RetryAfter: wait}
		}
	}
	ev := chat.MustEvent(chat.EventTyping, chat.TypingPayload{Room: req.Room, User: *s.user})
	ev.Room = req.Room
	ev.Actor = s.user.ID
	return s.hub.Publish(ctx, hub.Envelope{To: hub.ToRoom(req.Room), SkipUser: s.user.ID, Event: ev})
}
