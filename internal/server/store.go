package server

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"sync"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"

	"pocketchat/internal/chat"
	"pocketchat/internal/session"
)

// store reads and writes the chat through PocketBase. Every write is a
// save of a record, so PocketBase's hooks and realtime see it like any
// other; the chat's messages are saved in group commits by the committer
// (committer.go). Users and rooms are cached and kept current by the
// record hooks, so delivering a message needs no query.
type store struct {
	app     core.App
	metrics *metrics   // nil counts nothing
	commits *committer // set by Server.bindCommitter

	mu    sync.RWMutex
	users map[string]cachedUser
	// rooms are shared with the sessions (VisibleRooms): never modified
	// in place, only replaced.
	rooms map[string]*chat.Room
	// gen counts changes reported by the hooks. A lookup caches what it
	// read only if gen did not move meanwhile, so a change that lands
	// while the query runs (a ban, a deleted room) is never overwritten
	// by the older row.
	gen uint64
}

type cachedUser struct {
	user     chat.User
	standing chat.Standing
}

func cachedUserOf(rec *core.Record) cachedUser {
	return cachedUser{user: userFromRecord(rec), standing: chat.Standing{
		Banned:     rec.GetBool("banned"),
		MutedUntil: rec.GetDateTime("muted_until").Time(),
	}}
}

var _ session.Store = (*store)(nil)

func newStore(app core.App, m *metrics) *store {
	return &store{app: app, metrics: m, users: make(map[string]cachedUser), rooms: make(map[string]*chat.Room)}
}

func notFound(what string) error { return chat.Errorf(chat.CodeNotFound, "%s not found", what) }

// forgetUser and rememberRoom/forgetRoom are called by the record hooks.
func (s *store) forgetUser(id string) {
	s.mu.Lock()
	delete(s.users, id)
	s.gen++
	s.mu.Unlock()
}

func (s *store) rememberRoom(r chat.Room) {
	s.mu.Lock()
	s.rooms[r.ID] = &r
	s.gen++
	s.mu.Unlock()
}

func (s *store) forgetRoom(id string) {
	s.mu.Lock()
	delete(s.rooms, id)
	s.gen++
	s.mu.Unlock()
}

// generation returns the change counter, read before a lookup query.
func (s *store) generation() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gen
}

func (s *store) cachedUser(ctx context.Context, id string) (cachedUser, error) {
	s.mu.RLock()
	u, ok := s.users[id]
	gen := s.gen
	s.mu.RUnlock()
	if ok {
		return u, nil
	}
	rec, err := s.app.FindRecordById(colUsers, id, withCtx(ctx))
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return cachedUser{}, notFound("user")
		}
		return cachedUser{}, err
	}
	u = cachedUserOf(rec)
	s.mu.Lock()
	if s.gen == gen {
		s.users[id] = u
	}
	s.mu.Unlock()
	return u, nil
}

func withCtx(ctx context.Context) func(*dbx.SelectQuery) error {
	return func(q *dbx.SelectQuery) error {
		q.WithContext(ctx)
		return nil
	}
}

// users returns the users with the given ids, from the cache where it can.
func (s *store) usersByID(ctx context.Context, ids []string) (map[string]chat.User, error) {
	out := make(map[string]chat.User, len(ids))
	var missing []string
	s.mu.RLock()
	gen := s.gen
	for _, id := range ids {
		if u, ok := s.users[id]; ok {
			out[id] = u.user
		} else if id != "" && !slices.Contains(missing, id) {
			missing = append(missing, id)
		}
	}
	s.mu.RUnlock()
	if len(missing) == 0 {
		return out, nil
	}
	recs, err := s.app.FindRecordsByIds(colUsers, missing, withCtx(ctx))
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	for _, rec := range recs {
		u := cachedUserOf(rec)
		if s.gen == gen {
			s.users[rec.Id] = u
		}
		out[rec.Id] = u.user
	}
	s.mu.Unlock()
	return out, nil
}

func (s *store) User(ctx context.Context, id string) (chat.User, error) {
	u, err := s.cachedUser(ctx, id)
	return u.user, err
}

func (s *store) Standing(ctx context.Context, id string) (chat.Standing, error) {
	u, err := s.cachedUser(ctx, id)
	return u.standing, err
}

func (s *store) Room(ctx context.Context, id string) (chat.Room, error) {
	s.mu.RLock()
	r, ok := s.rooms[id]
	gen := s.gen
	s.mu.RUnlock()
	if ok {
		return *r, nil
	}
	rec, err := s.app.FindRecordById(colRooms, id, withCtx(ctx))
	if err != nil {
		if errors.Is(err, sql.ErrNoRows) {
			return chat.Room{}, notFound("room")
		}
		return chat.Room{}, err
	}
	room := roomFromRecord(rec)
	s.mu.Lock()
	if s.gen == gen {
		s.rooms[id] = &room
	}
	s.mu.Unlock()
	return room, nil
}

// VisibleRooms hands out the cached rooms themselves (see sharedLocked):
// the callers only read them.
func (s *store) VisibleRooms(ctx context.Context, userID string) ([]*chat.Room, error) {
	gen := s.generation()
	q := s.app.RecordQuery(colRooms).WithContext(ctx).OrderBy("name ASC")
	if userID == "" {
		q = q.AndWhere(dbx.HashExp{"kind": string(chat.KindPublic)})
	} else {
		q = q.AndWhere(dbx.Or(
			dbx.HashExp{"kind": string(chat.KindPublic)},
			dbx.NewExp("EXISTS (SELECT 1 FROM json_each([[rooms.members]]) WHERE json_each.value = {:uid})", dbx.Params{"uid": userID}),
		))
	}
	var recs []*core.Record
	if err := q.All(&recs); err != nil {
		return nil, err
	}
	rooms := make([]*chat.Room, len(recs))
	s.mu.Lock()
	for i, rec := range recs {
		rooms[i] = s.sharedLocked(roomFromRecord(rec), gen)
	}
	s.mu.Unlock()
	return rooms, nil
}

// sharedLocked returns the cached room when it is r in the same state, so
// that every session that sees the room holds one pointer to it instead
// of a copy of its fields and members: with thousands of connections
// that is a good part of their memory. Otherwise
// r is cached, unless a change was reported since gen (r may be older
// than the cache then). A room the hooks cached differs from the one read
// back in its times' precision alone (the database keeps milliseconds),
// so the first load replaces it. s.mu is held.
func (s *store) sharedLocked(r chat.Room, gen uint64) *chat.Room {
	c, ok := s.rooms[r.ID]
	if ok && c.Updated.Equal(r.Updated) && c.Created.Equal(r.Created) && c.Name == r.Name &&
		c.Description == r.Description && c.Kind == r.Kind && c.Owner == r.Owner && slices.Equal(c.Members, r.Members) {
		return c
	}
	if s.gen == gen {
		s.rooms[r.ID] = &r
	}
	return &r
}

func (s *store) Messages(ctx context.Context, roomID string, p session.Page) ([]chat.Message, bool, error) {
	limit := p.Limit
	if limit <= 0 || limit > chat.MaxPageSize {
		limit = chat.DefaultPageSize
	}
	q := s.app.RecordQuery(colMessages).WithContext(ctx).
		AndWhere(dbx.HashExp{"room": roomID}).
		AndWhere(dbx.NewExp("[[seq]] > 0")).
		Limit(int64(limit + 1))
	newestFirst := true
	switch {
	case p.After != "":
		seq, err := s.cursor(ctx, roomID, p.After)
		if err != nil {
			return nil, false, err
		}
		q = q.AndWhere(dbx.NewExp("[[seq]] > {:seq}", dbx.Params{"seq": seq})).OrderBy("seq ASC")
		newestFirst = false
	case p.Before != "":
		seq, err := s.cursor(ctx, roomID, p.Before)
		if err != nil {
			return nil, false, err
		}
		q = q.AndWhere(dbx.NewExp("[[seq]] < {:seq}", dbx.Params{"seq": seq})).OrderBy("seq DESC")
	default:
		q = q.OrderBy("seq DESC")
	}
	var recs []*core.Record
	if err := q.All(&recs); err != nil {
		return nil, false, err
	}
	more := len(recs) > limit
	if more {
		recs = recs[:limit]
	}
	if newestFirst {
		slices.Reverse(recs)
	}
	msgs, err := s.messages(ctx, recs)
	return msgs, more, err
}

// cursor returns the seq of a message of the room, the position a page
// starts from.
func (s *store) cursor(ctx context.Context, roomID, msgID string) (int64, error) {
	var seq int64
	err := s.app.RecordQuery(colMessages).WithContext(ctx).Select("seq").
		AndWhere(dbx.HashExp{"id": msgID, "room": roomID}).
		Row(&seq)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, notFound("message")
	}
	return seq, err
}

// messages converts records, looking their authors up in one go.
func (s *store) messages(ctx context.Context, recs []*core.Record) ([]chat.Message, error) {
	ids := make([]string, 0, len(recs))
	for _, r := range recs {
		ids = append(ids, r.GetString("author"))
	}
	authors, err := s.usersByID(ctx, ids)
	if err != nil {
		return nil, err
	}
	msgs := make([]chat.Message, len(recs))
	for i, r := range recs {
		msgs[i] = messageFromRecord(r, authors[r.GetString("author")])
	}
	return msgs, nil
}

// message converts one record.
func (s *store) message(ctx context.Context, rec *core.Record) (chat.Message, error) {
	msgs, err := s.messages(ctx, []*core.Record{rec})
	if err != nil {
		return chat.Message{}, err
	}
	return msgs[0], nil
}

// messageRecord finds a message's record, or a CodeNotFound error.
func (s *store) messageRecord(ctx context.Context, id string) (*core.Record, error) {
	rec, err := s.app.FindRecordById(colMessages, id, withCtx(ctx))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, notFound("message")
	}
	return rec, err
}

// Message returns a message by id, or a CodeNotFound error.
func (s *store) Message(ctx context.Context, id string) (chat.Message, error) {
	rec, err := s.messageRecord(ctx, id)
	if err != nil {
		return chat.Message{}, err
	}
	return s.message(ctx, rec)
}

// EditMessage saves a message's new text through PocketBase, so the
// update hook normalizes it and broadcasts "edited" like any other edit.
func (s *store) EditMessage(ctx context.Context, id, text string) (chat.Message, error) {
	rec, err := s.messageRecord(ctx, id)
	if err != nil {
		return chat.Message{}, err
	}
	rec.Set("text", text)
	if err := s.app.SaveWithContext(ctx, rec); err != nil {
		return chat.Message{}, saveError(err)
	}
	return s.message(ctx, rec)
}

// DeleteMessage deletes a message through PocketBase, so the delete hook
// broadcasts "deleted" like any other deletion.
func (s *store) DeleteMessage(ctx context.Context, id string) error {
	rec, err := s.messageRecord(ctx, id)
	if err != nil {
		return err
	}
	return s.app.DeleteWithContext(ctx, rec)
}

// CreateMessage queues the message for the next group commit and calls
// done once it is committed, or with why it was not: a save refused on its
// own (a bad request with PocketBase's message, or a hook's error) or a
// failed transaction (internal). done runs on the committer's goroutine,
// in the order of the CreateMessage calls, and must not block.
func (s *store) CreateMessage(ctx context.Context, author chat.User, roomID, text string, done func(chat.Message, error)) {
	col, err := s.app.FindCachedCollectionByNameOrId(colMessages)
	if err != nil {
		done(chat.Message{}, err)
		return
	}
	if s.commits == nil {
		done(chat.Message{}, errShuttingDown)
		return
	}
	rec := core.NewRecord(col)
	rec.Set("room", roomID)
	rec.Set("author", author.ID)
	rec.Set("text", text)
	rec.Set("kind", string(chat.KindUser))
	s.commits.add(ctx, rec, func(err error) {
		if err != nil {
			if !errors.Is(err, errNotCommitted) { // that one stays internal
				err = saveError(err)
			}
			done(chat.Message{}, err)
			return
		}
		// The author as stored now, not as the session saw them at
		// connect: the ack must match the broadcast after a rename.
		if cur, err := s.cachedUser(context.Background(), author.ID); err == nil {
			author = cur.user
		}
		done(messageFromRecord(rec, author), nil)
	})
}

func (s *store) DirectRoom(ctx context.Context, a, b string) (chat.Room, error) {
	name := chat.DirectRoomName(a, b)
	find := func() (chat.Room, error) {
		rec, err := s.app.FindFirstRecordByData(colRooms, "name", name)
		if err != nil {
			return chat.Room{}, err
		}
		return roomFromRecord(rec), nil
	}
	if r, err := find(); err == nil {
		return r, nil
	} else if !errors.Is(err, sql.ErrNoRows) {
		return chat.Room{}, err
	}
	col, err := s.app.FindCachedCollectionByNameOrId(colRooms)
	if err != nil {
		return chat.Room{}, err
	}
	rec := core.NewRecord(col)
	rec.Set("name", name)
	rec.Set("kind", string(chat.KindDirect))
	rec.Set("members", []string{a, b})
	if err := s.app.SaveWithContext(ctx, rec); err != nil {
		// Lost a race with the other user's first message: the unique
		// name index kept one room; use it.
		if r, ferr := find(); ferr == nil {
			return r, nil
		}
		return chat.Room{}, saveError(err)
	}
	return roomFromRecord(rec), nil
}

// saveError turns a failed save into an error clients can be shown:
// validation failures are bad requests with PocketBase's message; the
// rest stays internal and is not detailed to clients.
func saveError(err error) error {
	var verrs validation.Errors
	if errors.As(err, &verrs) {
		return chat.Errorf(chat.CodeBadRequest, "invalid: %s", verrs.Error())
	}
	return err
}
