package server

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"
	"golang.org/x/crypto/bcrypt"

	"pocketchat/internal/chat"
	"pocketchat/internal/session"
	_ "pocketchat/pb_migrations"
)

// storeFixture is a PocketBase test app with the chat registered on it,
// so the record hooks (seq numbering, cache upkeep, broadcasts) are bound.
type storeFixture struct {
	app *tests.TestApp
	srv *Server
	st  *store
}

func newStoreFixture(t testing.TB, opts ...func(*Config)) *storeFixture {
	t.Helper()
	app, err := tests.NewTestApp(t.TempDir())
	if err != nil {
		t.Fatalf("NewTestApp: %v", err)
	}
	t.Cleanup(app.Cleanup)
	cfg := DefaultConfig()
	cfg.Banner = false
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := Register(app, cfg)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	return &storeFixture{app: app, srv: srv, st: srv.store}
}

// testPasswordHash is a bcrypt hash (cost 4) of "correct horse battery staple".
var testPasswordHash = func() string {
	h, err := bcrypt.GenerateFromPassword([]byte("correct horse battery staple"), bcrypt.MinCost)
	if err != nil {
		panic(err)
	}
	return string(h)
}()

func (f *storeFixture) newUser(t testing.TB, name string) (chat.User, *core.Record) {
	t.Helper()
	col, err := f.app.FindCollectionByNameOrId(colUsers)
	if err != nil {
		t.Fatal(err)
	}
	rec := core.NewRecord(col)
	rec.SetEmail(strings.ToLower(name) + "@example.com")
	// A cheap hash: the default bcrypt cost takes about a second per user
	// under the race detector.
	rec.SetRaw(core.FieldNamePassword, &core.PasswordFieldValue{Hash: testPasswordHash})
	rec.Set("name", name)
	if err := f.app.Save(rec); err != nil {
		t.Fatalf("create user %s: %v", name, err)
	}
	return userFromRecord(rec), rec
}

func (f *storeFixture) newRoom(t testing.TB, name string, kind chat.RoomKind, members ...string) (chat.Room, *core.Record) {
	t.Helper()
	col, err := f.app.FindCollectionByNameOrId(colRooms)
	if err != nil {
		t.Fatal(err)
	}
	rec := core.NewRecord(col)
	rec.Set("name", name)
	rec.Set("kind", string(kind))
	rec.Set("members", members)
	if err := f.app.Save(rec); err != nil {
		t.Fatalf("create room %s: %v", name, err)
	}
	return roomFromRecord(rec), rec
}

// createMessage saves a message through the group commit and waits for
// its outcome, as a session's ack does.
func (f *storeFixture) createMessage(ctx context.Context, author chat.User, roomID, text string) (chat.Message, error) {
	type result struct {
		msg chat.Message
		err error
	}
	ch := make(chan result, 1)
	f.st.CreateMessage(ctx, author, roomID, text, func(m chat.Message, err error) { ch <- result{m, err} })
	r := <-ch
	return r.msg, r.err
}

func (f *storeFixture) general(t testing.TB) chat.Room {
	t.Helper()
	rec, err := f.app.FindFirstRecordByData(colRooms, "name", "General")
	if err != nil {
		t.Fatalf("General room: %v", err)
	}
	return roomFromRecord(rec)
}

func roomNames(rooms []*chat.Room) []string {
	names := make([]string, len(rooms))
	for i, r := range rooms {
		names[i] = r.Name
	}
	return names
}

func TestStoreVisibleRooms(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	ctx := context.Background()
	alice, _ := f.newUser(t, "Alice")
	bob, _ := f.newUser(t, "Bob")
	carol, _ := f.newUser(t, "Carol")
	f.newRoom(t, "Lobby", chat.KindPublic)
	f.newRoom(t, "Secret", chat.KindPrivate, alice.ID, bob.ID)
	f.newRoom(t, "Team", chat.KindPrivate, carol.ID)
	f.newRoom(t, "Empty", chat.KindPrivate) // no members: nobody's, not the guest's
	dm, err := f.st.DirectRoom(ctx, alice.ID, bob.ID)
	if err != nil {
		t.Fatalf("DirectRoom: %v", err)
	}

	tests := []struct {
		who, id string
		want    []string
	}{
		{"guest", "", []string{"General", "Lobby"}},
		{"alice", alice.ID, []string{"General", "Lobby", "Secret", dm.Name}},
		{"bob", bob.ID, []string{"General", "Lobby", "Secret", dm.Name}},
		{"carol", carol.ID, []string{"General", "Lobby", "Team"}},
		{"unknown user", "nosuchuser0000", []string{"General", "Lobby"}},
	}
	for _, tt := range tests {
		t.Run(tt.who, func(t *testing.T) {
			rooms, err := f.st.VisibleRooms(ctx, tt.id)
			if err != nil {
				t.Fatalf("VisibleRooms: %v", err)
			}
			got := roomNames(rooms)
			if !slices.IsSorted(got) {
				t.Errorf("rooms %q are not ordered by name", got)
			}
			slices.Sort(got)
			want := slices.Sorted(slices.Values(tt.want))
			if !slices.Equal(got, want) {
				t.Errorf("VisibleRooms(%s) = %q, want %q", tt.who, got, want)
			}
			for _, r := range rooms {
				if !r.CanRead(tt.id) {
					t.Errorf("room %q listed but CanRead(%q) = false", r.Name, tt.id)
				}
				if r.Members == nil {
					t.Errorf("room %q has nil Members, want a (possibly empty) list", r.Name)
				}
			}
		})
	}
}

// Sessions hold the rooms VisibleRooms lists for as long as they live:
// every session that sees a room must share the store's copy, and a
// changed room must be a new copy, never the shared one edited in place.
func TestStoreVisibleRoomsShared(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	ctx := context.Background()
	alice, _ := f.newUser(t, "Alice")
	bob, _ := f.newUser(t, "Bob")
	_, rec := f.newRoom(t, "Pair", chat.KindPrivate, alice.ID, bob.ID)

	find := func(userID string) *chat.Room {
		t.Helper()
		rooms, err := f.st.VisibleRooms(ctx, userID)
		if err != nil {
			t.Fatalf("VisibleRooms: %v", err)
		}
		for _, r := range rooms {
			if r.ID == rec.Id {
				return r
			}
		}
		t.Fatalf("room Pair not visible to %s", userID)
		return nil
	}
	a, b := find(alice.ID), find(bob.ID)
	if a != b {
		t.Errorf("Alice and Bob got different copies of the room")
	}
	if again := find(alice.ID); again != a {
		t.Errorf("a second listing gave a new copy of an unchanged room")
	}

	rec.Set("name", "Pair renamed")
	if err := f.app.Save(rec); err != nil {
		t.Fatal(err)
	}
	if a.Name != "Pair" {
		t.Errorf("the copy a session holds changed in place to %q", a.Name)
	}
	if r := find(bob.ID); r.Name != "Pair renamed" || r == a {
		t.Errorf("after the rename Bob got %q (same copy: %v), want the new name in a new copy", r.Name, r == a)
	}
}

func TestStoreRoom(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	ctx := context.Background()
	alice, _ := f.newUser(t, "Alice")
	want, rec := f.newRoom(t, "Secret", chat.KindPrivate, alice.ID)

	got, err := f.st.Room(ctx, want.ID)
	if err != nil {
		t.Fatalf("Room: %v", err)
	}
	if got.ID != want.ID || got.Name != "Secret" || got.Kind != chat.KindPrivate || !slices.Equal(got.Members, []string{alice.ID}) {
		t.Errorf("Room = %+v, want %+v", got, want)
	}

	// An update reaches the cache through the record hook.
	rec.Set("description", "now with a description")
	if err := f.app.Save(rec); err != nil {
		t.Fatal(err)
	}
	if got, _ := f.st.Room(ctx, want.ID); got.Description != "now with a description" {
		t.Errorf("after update, Description = %q, want the new one", got.Description)
	}

	// So does a delete.
	if err := f.app.Delete(rec); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{want.ID, "nosuchroom0000", ""} {
		if _, err := f.st.Room(ctx, id); chat.ErrorCode(err) != chat.CodeNotFound {
			t.Errorf("Room(%q) error = %v, want code %s", id, err, chat.CodeNotFound)
		}
	}
}

// recorder is a hub subscriber that keeps what it is delivered.
type recorder struct {
	mu  sync.Mutex
	evs []*chat.Event
}

func (r *recorder) ConnID() uint64 { return 1 << 60 }
func (r *recorder) UserID() string { return "" }
func (r *recorder) Deliver(ev *chat.Event) {
	r.mu.Lock()
	r.evs = append(r.evs, ev)
	r.mu.Unlock()
}

// messages returns the messages of the message events delivered so far.
func (r *recorder) messages() []chat.Message {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []chat.Message
	for _, ev := range r.evs {
		if p, ok := ev.Data.(chat.MessagePayload); ok && ev.Type == chat.EventMessage {
			out = append(out, p.Message)
		}
	}
	return out
}

func TestStoreCreateMessage(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	ctx := context.Background()
	alice, _ := f.newUser(t, "Alice")
	general := f.general(t)

	rec := &recorder{}
	f.srv.hub.Register(rec)
	defer f.srv.hub.Unregister(rec)
	f.srv.hub.Join(general.ID, rec, chat.User{})

	before := time.Now().Add(-time.Second)
	m1, err := f.createMessage(ctx, alice, general.ID, "  hello\r\nworld\x00  ")
	if err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	if m1.ID == "" || m1.Seq <= 0 {
		t.Errorf("message = %+v, want an id and seq > 0", m1)
	}
	if m1.Author != alice {
		t.Errorf("Author = %+v, want %+v", m1.Author, alice)
	}
	if m1.Room != general.ID || m1.Text != "hello\nworld" || m1.Kind != chat.KindUser {
		t.Errorf("message = {Room %q Text %q Kind %q}, want {%q %q %q}", m1.Room, m1.Text, m1.Kind, general.ID, "hello\nworld", chat.KindUser)
	}
	if m1.Created.Before(before) {
		t.Errorf("Created = %v, want about now", m1.Created)
	}
	stored, err := f.app.FindRecordById(colMessages, m1.ID)
	if err != nil {
		t.Fatalf("stored message: %v", err)
	}
	if got := int64(stored.GetInt("seq")); got != m1.Seq {
		t.Errorf("stored seq = %d, returned %d", got, m1.Seq)
	}

	// Over the schema's limit: a bad request, and the failed save frees its
	// seq slot, so the room's next message is published at once rather
	// than after the sequencer's stuck timeout.
	_, err = f.createMessage(ctx, alice, general.ID, strings.Repeat("x", chat.MaxTextLen+1))
	if chat.ErrorCode(err) != chat.CodeBadRequest {
		t.Errorf("CreateMessage(too long) error = %v, want code %s", err, chat.CodeBadRequest)
	}
	if _, err := f.createMessage(ctx, alice, "nosuchroom0000", "hi"); chat.ErrorCode(err) != chat.CodeBadRequest {
		t.Errorf("CreateMessage(unknown room) error = %v, want code %s", err, chat.CodeBadRequest)
	}

	m2, err := f.createMessage(ctx, alice, general.ID, "second")
	if err != nil {
		t.Fatalf("CreateMessage: %v", err)
	}
	if m2.Seq <= m1.Seq {
		t.Errorf("second seq %d, want more than %d", m2.Seq, m1.Seq)
	}
	if got, err := maxSeq(f.app); err != nil || got != m2.Seq {
		t.Errorf("maxSeq = %d, %v; want %d", got, err, m2.Seq)
	}

	deadline := time.Now().Add(2 * time.Second)
	for len(rec.messages()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	got := rec.messages()
	if len(got) != 2 || got[0].ID != m1.ID || got[1].ID != m2.ID {
		t.Fatalf("broadcast %d messages %+v, want m1 then m2", len(got), got)
	}
	if got[0].Seq != m1.Seq || got[0].Author.Name != "Alice" || got[0].Text != m1.Text {
		t.Errorf("broadcast %+v, want %+v", got[0], m1)
	}
}

func TestStoreMessagesPaging(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	ctx := context.Background()
	alice, _ := f.newUser(t, "Alice")
	bob, _ := f.newUser(t, "Bob")
	room, _ := f.newRoom(t, "History", chat.KindPublic)
	other, _ := f.newRoom(t, "Other", chat.KindPublic)
	empty, _ := f.newRoom(t, "Quiet", chat.KindPublic)

	const total = 120
	all := make([]chat.Message, total)
	for i := range all {
		author := alice
		if i%3 == 0 {
			author = bob
		}
		m, err := f.createMessage(ctx, author, room.ID, fmt.Sprint("message ", i))
		if err != nil {
			t.Fatalf("CreateMessage %d: %v", i, err)
		}
		all[i] = m
	}
	elsewhere, err := f.createMessage(ctx, alice, other.ID, "elsewhere")
	if err != nil {
		t.Fatal(err)
	}

	ids := func(ms []chat.Message) []string {
		out := make([]string, len(ms))
		for i, m := range ms {
			out[i] = m.ID
		}
		return out
	}
	span := func(from, to int) []string { return ids(all[from:to]) }

	tests := []struct {
		name     string
		page     session.Page
		want     []string
		wantMore bool
	}{
		{"latest, default limit", session.Page{}, span(70, 120), true},
		{"latest 10", session.Page{Limit: 10}, span(110, 120), true},
		{"latest 100", session.Page{Limit: 100}, span(20, 120), true},
		{"latest over the max", session.Page{Limit: chat.MaxPageSize + 1}, span(70, 120), true},
		{"before the 70th", session.Page{Before: all[70].ID, Limit: 50}, span(20, 70), true},
		{"before the 50th: exactly a page", session.Page{Before: all[50].ID, Limit: 50}, span(0, 50), false},
		{"before the 30th", session.Page{Before: all[30].ID, Limit: 50}, span(0, 30), false},
		{"before the first", session.Page{Before: all[0].ID, Limit: 50}, span(0, 0), false},
		{"after the 10th", session.Page{After: all[10].ID, Limit: 50}, span(11, 61), true},
		{"after the 69th: exactly a page", session.Page{After: all[69].ID, Limit: 50}, span(70, 120), false},
		{"after the 100th", session.Page{After: all[100].ID, Limit: 50}, span(101, 120), false},
		{"after the last", session.Page{After: all[119].ID, Limit: 50}, span(0, 0), false},
		{"after, default limit", session.Page{After: all[0].ID}, span(1, 51), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			msgs, more, err := f.st.Messages(ctx, room.ID, tt.page)
			if err != nil {
				t.Fatalf("Messages: %v", err)
			}
			if got := ids(msgs); !slices.Equal(got, tt.want) {
				t.Errorf("got %d messages %v..., want %d", len(got), head(got), len(tt.want))
			}
			if more != tt.wantMore {
				t.Errorf("more = %v, want %v", more, tt.wantMore)
			}
			for i, m := range msgs {
				if i > 0 && m.Seq <= msgs[i-1].Seq {
					t.Errorf("seq %d after %d: want oldest first", m.Seq, msgs[i-1].Seq)
				}
				if m.Author.ID == "" || m.Author.Name == "" {
					t.Errorf("message %s has author %+v, want the user", m.ID, m.Author)
				}
			}
		})
	}

	t.Run("walk back through everything", func(t *testing.T) {
		var got []string
		page := session.Page{Limit: 17}
		for range total {
			msgs, more, err := f.st.Messages(ctx, room.ID, page)
			if err != nil {
				t.Fatal(err)
			}
			got = append(ids(msgs), got...)
			if !more {
				break
			}
			page.Before = msgs[0].ID
		}
		if want := ids(all); !slices.Equal(got, want) {
			t.Errorf("walk collected %d messages, want all %d in order", len(got), len(want))
		}
	})

	t.Run("cursors", func(t *testing.T) {
		for _, p := range []session.Page{
			{Before: "nosuchmessage00"},
			{After: "nosuchmessage00"},
			{Before: elsewhere.ID}, // a message of another room
			{After: elsewhere.ID},
		} {
			if _, _, err := f.st.Messages(ctx, room.ID, p); chat.ErrorCode(err) != chat.CodeNotFound {
				t.Errorf("Messages(%+v) error = %v, want code %s", p, err, chat.CodeNotFound)
			}
		}
	})

	t.Run("empty room", func(t *testing.T) {
		msgs, more, err := f.st.Messages(ctx, empty.ID, session.Page{})
		if err != nil || len(msgs) != 0 || more {
			t.Errorf("Messages(empty room) = %d messages, more %v, err %v; want none", len(msgs), more, err)
		}
	})
}

func head(s []string) []string {
	if len(s) > 3 {
		return s[:3]
	}
	return s
}

func TestStoreDirectRoom(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	ctx := context.Background()
	alice, _ := f.newUser(t, "Alice")
	bob, _ := f.newUser(t, "Bob")
	carol, _ := f.newUser(t, "Carol")

	ab, err := f.st.DirectRoom(ctx, alice.ID, bob.ID)
	if err != nil {
		t.Fatalf("DirectRoom(a, b): %v", err)
	}
	ba, err := f.st.DirectRoom(ctx, bob.ID, alice.ID)
	if err != nil {
		t.Fatalf("DirectRoom(b, a): %v", err)
	}
	if ab.ID == "" || ab.ID != ba.ID {
		t.Errorf("DirectRoom(a, b) = %q, DirectRoom(b, a) = %q, want the same room", ab.ID, ba.ID)
	}
	if ab.Kind != chat.KindDirect || ab.Name != chat.DirectRoomName(alice.ID, bob.ID) {
		t.Errorf("room = {Kind %q Name %q}, want {direct %q}", ab.Kind, ab.Name, chat.DirectRoomName(alice.ID, bob.ID))
	}
	if !slices.Contains(ab.Members, alice.ID) || !slices.Contains(ab.Members, bob.ID) || len(ab.Members) != 2 {
		t.Errorf("Members = %q, want alice and bob", ab.Members)
	}
	if ab.CanRead(carol.ID) {
		t.Error("a third user can read the direct room")
	}

	// Concurrent first messages of both users yield one room.
	const n = 8
	var wg sync.WaitGroup
	got := make([]chat.Room, n)
	errs := make([]error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			a, b := alice.ID, carol.ID
			if i%2 == 1 {
				a, b = b, a
			}
			got[i], errs[i] = f.st.DirectRoom(ctx, a, b)
		}()
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Errorf("goroutine %d: %v", i, errs[i])
		} else if got[i].ID != got[0].ID {
			t.Errorf("goroutine %d got room %q, goroutine 0 got %q", i, got[i].ID, got[0].ID)
		}
	}
	recs, err := f.app.FindAllRecords(colRooms)
	if err != nil {
		t.Fatal(err)
	}
	count := 0
	for _, r := range recs {
		if r.GetString("name") == chat.DirectRoomName(alice.ID, carol.ID) {
			count++
		}
	}
	if count != 1 {
		t.Errorf("%d rooms for alice and carol, want 1", count)
	}
}

func TestStoreUserCache(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	ctx := context.Background()
	alice, rec := f.newUser(t, "Alice")
	general := f.general(t)
	if _, err := f.createMessage(ctx, alice, general.ID, "hi"); err != nil {
		t.Fatal(err)
	}

	u, err := f.st.User(ctx, alice.ID)
	if err != nil || u.Name != "Alice" {
		t.Fatalf("User = %+v, %v; want Alice", u, err)
	}
	if st, err := f.st.Standing(ctx, alice.ID); err != nil || st != (chat.Standing{}) {
		t.Fatalf("Standing = %+v, %v; want neither banned nor muted", st, err)
	}
	if msgs, _, _ := f.st.Messages(ctx, general.ID, session.Page{}); len(msgs) != 1 || msgs[0].Author.Name != "Alice" {
		t.Fatalf("Messages = %+v, want one by Alice", msgs)
	}

	rec.Set("name", "Alicia")
	rec.Set("banned", true)
	muted := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	rec.Set("muted_until", muted)
	if err := f.app.Save(rec); err != nil {
		t.Fatal(err)
	}
	if u, err := f.st.User(ctx, alice.ID); err != nil || u.Name != "Alicia" {
		t.Errorf("after rename, User = %+v, %v; want Alicia", u, err)
	}
	if st, err := f.st.Standing(ctx, alice.ID); err != nil || !st.Banned || !st.MutedUntil.Equal(muted) {
		t.Errorf("after ban and mute, Standing = %+v, %v; want banned, muted until %s", st, err, muted)
	}
	if msgs, _, _ := f.st.Messages(ctx, general.ID, session.Page{}); len(msgs) != 1 || msgs[0].Author.Name != "Alicia" {
		t.Errorf("after rename, message author = %+v, want Alicia", msgs)
	}

	dave, drec := f.newUser(t, "Dave")
	if _, err := f.st.User(ctx, dave.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.app.Delete(drec); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.User(ctx, dave.ID); chat.ErrorCode(err) != chat.CodeNotFound {
		t.Errorf("deleted user: User error = %v, want code %s", err, chat.CodeNotFound)
	}
	if _, err := f.st.User(ctx, "nosuchuser0000"); chat.ErrorCode(err) != chat.CodeNotFound {
		t.Errorf("unknown user: User error = %v, want code %s", err, chat.CodeNotFound)
	}
}
