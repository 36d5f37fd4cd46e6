package server

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pocketbase/pocketbase/core"

	"pocketchat/internal/chat"
)

// outcome is what CreateMessage reported for one message.
type outcome struct {
	msg chat.Message
	err error
}

// gateText is the text of the message a commitGate holds the committer on.
const gateText = "hold the committer"

// commitGate holds the committer inside its transaction, on the save of
// the message gateText, until it is opened: the messages created
// meanwhile queue up, and the next batches are exactly what queued.
type commitGate struct {
	entered chan struct{}
	release chan struct{}
	result  chan outcome
}

func (f *storeFixture) bindGate() *commitGate {
	g := &commitGate{entered: make(chan struct{}), release: make(chan struct{}), result: make(chan outcome, 1)}
	var once sync.Once
	f.app.OnRecordCreate(colMessages).BindFunc(func(e *core.RecordEvent) error {
		if e.Record.GetString("text") == gateText {
			once.Do(func() { close(g.entered) })
			<-g.release
		}
		return e.Next()
	})
	return g
}

// hold sends the gate's message and returns once the committer is stuck
// on it, alone in its batch.
func (g *commitGate) hold(t *testing.T, f *storeFixture, author chat.User, roomID string) {
	t.Helper()
	f.st.CreateMessage(context.Background(), author, roomID, gateText, func(m chat.Message, err error) {
		g.result <- outcome{m, err}
	})
	select {
	case <-g.entered:
	case <-time.After(30 * time.Second):
		t.Fatal("the committer never saved the gate's message")
	}
}

// open lets the committer go on and checks that the gate's message was
// committed.
func (g *commitGate) open(t *testing.T) {
	t.Helper()
	close(g.release)
	if r := wait(t, g.result); r.err != nil {
		t.Errorf("gate message: %v", r.err)
	}
}

// wait receives from ch, failing the test if nothing comes for long.
func wait[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(30 * time.Second):
		t.Fatal("timed out")
		panic("unreachable")
	}
}

// waitUntil polls cond, failing the test if it stays false for long. The
// deadline is generous: with the sequencer's stuck timeout set to an
// hour, a slot that is never freed holds its room for good, so only a
// real bug runs into it.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// batches reads the commit_batch_size histogram: how many batches were
// committed, and how many messages they held in all.
func (f *storeFixture) batches(t *testing.T) (count uint64, sum float64) {
	t.Helper()
	mfs, err := f.srv.metrics.node.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "pocketchat_commit_batch_size" {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	t.Fatal("no commit_batch_size histogram")
	return 0, 0
}

// storedIDs lists the ids of the messages stored in a room.
func (f *storeFixture) storedIDs(t *testing.T, roomID string) []string {
	t.Helper()
	recs, err := f.app.FindAllRecords(colMessages)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, r := range recs {
		if r.GetString("room") == roomID {
			ids = append(ids, r.Id)
		}
	}
	return ids
}

// listen subscribes a recorder to the rooms' broadcasts.
func (f *storeFixture) listen(t *testing.T, rooms ...string) *recorder {
	rec := &recorder{}
	f.srv.hub.Register(rec)
	t.Cleanup(func() { f.srv.hub.Unregister(rec) })
	for _, r := range rooms {
		f.srv.hub.Join(r, rec, chat.User{})
	}
	return rec
}

// Messages created concurrently while a batch commits are saved together,
// at most CommitBatch per transaction; each is stored once, numbered in
// its room in commit order and published in that order.
func TestCommitterGroupsConcurrentMessages(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t, func(c *Config) { c.CommitBatch = 100 })
	f.srv.seq.stuckAfter = time.Hour
	var users []chat.User
	var rooms []string
	for i := range 4 {
		u, _ := f.newUser(t, fmt.Sprint("User", i))
		r, _ := f.newRoom(t, fmt.Sprint("Room", i), chat.KindPublic)
		users, rooms = append(users, u), append(rooms, r.ID)
	}
	rec := f.listen(t, rooms...)
	g := f.bindGate()
	g.hold(t, f, users[0], rooms[0])

	const n = 400
	results := make([]outcome, n)
	var queued, acked sync.WaitGroup
	for i := range n {
		queued.Add(1)
		acked.Add(1)
		go func() {
			defer queued.Done()
			f.st.CreateMessage(context.Background(), users[i%4], rooms[i%4], fmt.Sprint("message ", i), func(m chat.Message, err error) {
				results[i] = outcome{m, err}
				acked.Done()
			})
		}()
	}
	queued.Wait() // all n wait behind the gate's batch
	g.open(t)
	done := make(chan struct{})
	go func() { acked.Wait(); close(done) }()
	wait(t, done)

	if count, sum := f.batches(t); count != 1+n/100 || sum != 1+n {
		t.Errorf("%d batches holding %v messages, want %d holding %d (the gate's, then %d of 100)", count, sum, 1+n/100, 1+n, n/100)
	}
	byRoom := make(map[string][]chat.Message)
	for i, r := range results {
		if r.err != nil {
			t.Fatalf("message %d: %v", i, r.err)
		}
		if r.msg.ID == "" || r.msg.Seq <= 0 || r.msg.Text != fmt.Sprint("message ", i) || r.msg.Author.ID != users[i%4].ID {
			t.Fatalf("message %d acked as %+v", i, r.msg)
		}
		byRoom[r.msg.Room] = append(byRoom[r.msg.Room], r.msg)
	}
	waitUntil(t, "every message published", func() bool { return len(rec.messages()) == n+1 })
	published := make(map[string][]chat.Message)
	for _, m := range rec.messages() {
		published[m.Room] = append(published[m.Room], m)
	}
	for _, room := range rooms {
		acks := byRoom[room]
		slices.SortFunc(acks, func(a, b chat.Message) int { return int(a.Seq - b.Seq) })
		pub := published[room]
		if room == rooms[0] {
			pub = pub[1:] // the gate's message came first
		}
		if len(pub) != len(acks) {
			t.Fatalf("room %s: %d published, %d acked", room, len(pub), len(acks))
		}
		for i := range acks {
			if i > 0 && acks[i].Seq == acks[i-1].Seq {
				t.Errorf("room %s: seq %d acked twice", room, acks[i].Seq)
			}
			if pub[i].ID != acks[i].ID || pub[i].Seq != acks[i].Seq {
				t.Errorf("room %s: published #%d is %s (seq %d), want %s (seq %d): publish order must be seq order",
					room, i, pub[i].ID, pub[i].Seq, acks[i].ID, acks[i].Seq)
				break
			}
		}
		stored := f.storedIDs(t, room)
		want := make([]string, 0, len(pub))
		for _, m := range published[room] {
			want = append(want, m.ID)
		}
		slices.Sort(stored)
		slices.Sort(want)
		if !slices.Equal(stored, want) {
			t.Errorf("room %s: %d messages stored, %d published: want the same, each once", room, len(stored), len(want))
		}
	}
}

// Without any gate, concurrent senders still share transactions: while
// one batch commits, the next gathers.
func TestCommitterBatchesNaturally(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	alice, _ := f.newUser(t, "Alice")
	general := f.general(t)

	const n = 400
	var wg sync.WaitGroup
	var failed atomic.Int32
	for i := range n {
		wg.Add(1)
		go func() {
			f.st.CreateMessage(context.Background(), alice, general.ID, fmt.Sprint("hi ", i), func(_ chat.Message, err error) {
				if err != nil {
					failed.Add(1)
				}
				wg.Done()
			})
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	wait(t, done)
	if failed.Load() != 0 {
		t.Fatalf("%d messages failed", failed.Load())
	}
	count, sum := f.batches(t)
	t.Logf("%d messages in %d transactions", int(sum), count)
	if sum != n || count >= n {
		t.Errorf("%d transactions for %v messages, want fewer transactions than %d messages", count, sum, n)
	}
	if got := len(f.storedIDs(t, general.ID)); got != n {
		t.Errorf("%d messages stored, want %d", got, n)
	}
}

// One caller's messages are reported in the order it created them, with
// increasing seq: a session's acks come in the order of its sends.
func TestCommitterReportsInOrder(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t, func(c *Config) { c.CommitBatch = 7 })
	alice, _ := f.newUser(t, "Alice")
	general := f.general(t)

	const n = 50
	var mu sync.Mutex
	var order []int
	var seqs []int64
	all := make(chan struct{})
	for i := range n {
		f.st.CreateMessage(context.Background(), alice, general.ID, fmt.Sprint("in order ", i), func(m chat.Message, err error) {
			if err != nil {
				t.Errorf("message %d: %v", i, err)
			}
			mu.Lock()
			order = append(order, i)
			seqs = append(seqs, m.Seq)
			if len(order) == n {
				close(all)
			}
			mu.Unlock()
		})
	}
	wait(t, all)
	if !slices.IsSorted(order) {
		t.Errorf("reported in order %v, want 0…%d", order, n-1)
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] <= seqs[i-1] {
			t.Errorf("seq %d after %d, want increasing", seqs[i], seqs[i-1])
		}
	}
}

// A message refused on its own (by a hook, by a check that validation
// would have made) fails alone: the rest of its batch commits, nothing of
// the refused one is stored, and its seq slot is freed so the room's
// later messages are published at once.
func TestCommitterMessageFailsAlone(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	f.srv.seq.stuckAfter = time.Hour
	alice, _ := f.newUser(t, "Alice")
	general := f.general(t)
	rec := f.listen(t, general.ID)

	f.app.OnRecordCreate(colMessages).BindFunc(func(e *core.RecordEvent) error {
		switch e.Record.GetString("text") {
		case "reject me":
			return errors.New("refused by a hook")
		case "grow me":
			e.Record.Set("text", strings.Repeat("x", chat.MaxTextLen+1))
		case "bad kind":
			e.Record.Set("kind", "evil")
		case "move me":
			e.Record.Set("room", "nosuchroom0000")
		}
		return e.Next()
	})
	f.app.OnRecordCreateExecute(colMessages).BindFunc(func(e *core.RecordEvent) error {
		err := e.Next() // the insert
		if err == nil && e.Record.GetString("text") == "fail after the insert" {
			return errors.New("failed after its insert")
		}
		return err
	})
	g := f.bindGate()
	g.hold(t, f, alice, general.ID)

	ghost := alice
	ghost.ID = "nosuchuser0000"
	tests := []struct {
		name   string
		author chat.User
		room   string
		text   string
		want   chat.Code // "" for success
	}{
		{"first good", alice, general.ID, "good 1", ""},
		{"hook error", alice, general.ID, "reject me", chat.CodeInternal},
		{"unknown room", alice, "nosuchroom0000", "hi", chat.CodeBadRequest},
		{"too long after a hook", alice, general.ID, "grow me", chat.CodeBadRequest},
		{"second good", alice, general.ID, "good 2", ""},
		{"bad kind from a hook", alice, general.ID, "bad kind", chat.CodeBadRequest},
		{"moved to an unknown room by a hook", alice, general.ID, "move me", chat.CodeBadRequest},
		{"empty once cleaned", alice, general.ID, "\x00\x01 \r\n ", chat.CodeBadRequest},
		{"unknown author", ghost, general.ID, "who am I", chat.CodeBadRequest},
		{"hook error after the insert", alice, general.ID, "fail after the insert", chat.CodeInternal},
		{"third good", alice, general.ID, "good 3", ""},
	}
	results := make([]chan outcome, len(tests))
	for i, tt := range tests {
		results[i] = make(chan outcome, 1)
		f.st.CreateMessage(context.Background(), tt.author, tt.room, tt.text, func(m chat.Message, err error) {
			results[i] <- outcome{m, err}
		})
	}
	g.open(t)

	var good []string
	for i, tt := range tests {
		r := wait(t, results[i])
		switch {
		case tt.want == "" && r.err != nil:
			t.Errorf("%s: %v, want it committed", tt.name, r.err)
		case tt.want == "":
			good = append(good, r.msg.ID)
		case chat.ErrorCode(r.err) != tt.want:
			t.Errorf("%s: error %v, want code %s", tt.name, r.err, tt.want)
		}
	}
	if count, sum := f.batches(t); count != 2 || sum != 4 {
		t.Errorf("%d batches holding %v messages, want the gate's and one of the 3 good ones", count, sum)
	}
	waitUntil(t, "the good messages published", func() bool { return len(rec.messages()) == 1+len(good) })
	var published []string
	for _, m := range rec.messages()[1:] {
		published = append(published, m.ID)
	}
	if !slices.Equal(published, good) {
		t.Errorf("published %v, want the good ones %v in order", published, good)
	}
	if stored := f.storedIDs(t, general.ID); len(stored) != 1+len(good) {
		t.Errorf("%d messages stored, want the gate's and the %d good ones", len(stored), len(good))
	}
}

// A message alone in its batch is saved without a savepoint: its failure
// rolls the transaction back, so nothing of it is stored either, and its
// slot is freed.
func TestCommitterLoneMessageFails(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	f.srv.seq.stuckAfter = time.Hour
	alice, _ := f.newUser(t, "Alice")
	general := f.general(t)
	rec := f.listen(t, general.ID)
	f.app.OnRecordCreateExecute(colMessages).BindFunc(func(e *core.RecordEvent) error {
		err := e.Next() // the insert
		if err == nil && e.Record.GetString("text") == "fail after the insert" {
			return errors.New("failed after its insert")
		}
		return err
	})
	for _, tt := range []struct {
		text string
		want chat.Code
	}{
		{"fail after the insert", chat.CodeInternal},
		{strings.Repeat("x", chat.MaxTextLen+1), chat.CodeBadRequest},
	} {
		if _, err := f.createMessage(context.Background(), alice, general.ID, tt.text); chat.ErrorCode(err) != tt.want {
			t.Errorf("%.20q…: error %v, want code %s", tt.text, err, tt.want)
		}
	}
	next, err := f.createMessage(context.Background(), alice, general.ID, "next")
	if err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the next message published", func() bool { return len(rec.messages()) == 1 })
	if stored := f.storedIDs(t, general.ID); !slices.Equal(stored, []string{next.ID}) {
		t.Errorf("stored %v, want only the next message %s", stored, next.ID)
	}
	if count, sum := f.batches(t); count != 1 || sum != 1 {
		t.Errorf("%d batches holding %v messages, want the next message's only", count, sum)
	}
}

// A transaction that fails at its commit fails every message of the
// batch: none is stored, none is acknowledged, and the room's next
// messages are published at once (the sequencer is not stuck on them).
func TestCommitterFailedCommit(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	f.srv.seq.stuckAfter = time.Hour
	alice, _ := f.newUser(t, "Alice")
	general := f.general(t)
	rec := f.listen(t, general.ID)
	// A deferred foreign key is checked at COMMIT: a message with the
	// marker text makes the whole transaction fail there, after every
	// insert of the batch succeeded.
	for _, q := range []string{
		"CREATE TABLE commit_guard (room TEXT REFERENCES rooms(id) DEFERRABLE INITIALLY DEFERRED)",
		"CREATE TRIGGER commit_guard_fail AFTER INSERT ON messages WHEN NEW.text = 'fail the commit' " +
			"BEGIN INSERT INTO commit_guard (room) VALUES ('nosuchroom0000'); END",
	} {
		if _, err := f.app.DB().NewQuery(q).Execute(); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	g := f.bindGate()
	g.hold(t, f, alice, general.ID)

	texts := []string{"before", "fail the commit", "after"}
	results := make([]chan outcome, len(texts))
	for i, text := range texts {
		results[i] = make(chan outcome, 1)
		f.st.CreateMessage(context.Background(), alice, general.ID, text, func(m chat.Message, err error) {
			results[i] <- outcome{m, err}
		})
	}
	g.open(t)
	for i, text := range texts {
		r := wait(t, results[i])
		if r.err == nil || chat.ErrorCode(r.err) != chat.CodeInternal {
			t.Errorf("%q: error %v, want code %s", text, r.err, chat.CodeInternal)
		}
	}
	if count, _ := f.batches(t); count != 1 {
		t.Errorf("%d batches committed, want only the gate's", count)
	}

	next, err := f.createMessage(context.Background(), alice, general.ID, "next")
	if err != nil {
		t.Fatalf("next message: %v", err)
	}
	waitUntil(t, "the next message published", func() bool { return len(rec.messages()) == 2 })
	if got := rec.messages(); got[1].ID != next.ID {
		t.Errorf("published %q second, want the next message %q", got[1].Text, next.Text)
	}
	if stored := f.storedIDs(t, general.ID); len(stored) != 2 {
		t.Errorf("%d messages stored, want the gate's and the next one", len(stored))
	}
}

// Closing commits what is queued first, then refuses new messages at
// once.
func TestCommitterClose(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	alice, _ := f.newUser(t, "Alice")
	general := f.general(t)
	g := f.bindGate()
	g.hold(t, f, alice, general.ID)

	queued := make(chan outcome, 1)
	f.st.CreateMessage(context.Background(), alice, general.ID, "queued", func(m chat.Message, err error) { queued <- outcome{m, err} })
	closed := make(chan struct{})
	go func() {
		f.st.commits.close()
		close(closed)
	}()
	g.open(t)
	if r := wait(t, queued); r.err != nil {
		t.Errorf("queued before close: %v, want it committed", r.err)
	}
	wait(t, closed)
	if _, err := f.createMessage(context.Background(), alice, general.ID, "too late"); chat.ErrorCode(err) != chat.CodeInternal {
		t.Errorf("after close: error %v, want code %s", err, chat.CodeInternal)
	}
}

// BenchmarkCommit compares one transaction per message (the store before
// group commit: every connection's reader saved its own message) with
// the group commit, validating each record as app.Save does or with the
// batch checks. Each of the senders waits for its ack before its next
// send: with one sender every group holds one message (the latency
// case), with 64 they hold up to 64.
func BenchmarkCommit(b *testing.B) {
	for _, senders := range []int{1, 64} {
		b.Run(fmt.Sprintf("senders=%d/per-message", senders), func(b *testing.B) {
			benchmarkCommit(b, senders, func(f *storeFixture) sender {
				return func(author chat.User, room, text string, done func(error)) {
					done(f.app.SaveWithContext(context.Background(), newMessageRecord(b, f, author, room, text)))
				}
			})
		})
		for _, validate := range []bool{true, false} {
			name := "group-batch-checks"
			if validate {
				name = "group-app.Save"
			}
			b.Run(fmt.Sprintf("senders=%d/%s", senders, name), func(b *testing.B) {
				benchmarkCommit(b, senders, func(f *storeFixture) sender {
					f.st.commits.validate = validate
					return func(author chat.User, room, text string, done func(error)) {
						f.st.commits.add(context.Background(), newMessageRecord(b, f, author, room, text), done)
					}
				})
			})
		}
	}
}

// sender saves one message and reports its outcome.
type sender func(author chat.User, room, text string, done func(error))

func newMessageRecord(b *testing.B, f *storeFixture, author chat.User, room, text string) *core.Record {
	col, err := f.app.FindCachedCollectionByNameOrId(colMessages)
	if err != nil {
		b.Fatal(err)
	}
	rec := core.NewRecord(col)
	rec.Set("room", room)
	rec.Set("author", author.ID)
	rec.Set("text", text)
	rec.Set("kind", string(chat.KindUser))
	return rec
}

func benchmarkCommit(b *testing.B, senders int, setup func(*storeFixture) sender) {
	f := newStoreFixture(b, func(c *Config) { c.Bot.Enabled = false })
	var users []chat.User
	for i := range 8 {
		u, _ := f.newUser(b, fmt.Sprint("Bench", i))
		users = append(users, u)
	}
	room := f.general(b).ID
	send := setup(f)
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	var next atomic.Int64
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			result := make(chan error, 1)
			for i := next.Add(1); i <= int64(b.N); i = next.Add(1) {
				send(users[s%len(users)], room, fmt.Sprint("bench message ", i), func(err error) { result <- err })
				if err := <-result; err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "msgs/s")
}

// The committer remembers the rooms and authors it found, but a record
// deleted since is looked up again: a message to a deleted room, or by a
// deleted user, fails and is not stored, also when the room and the user
// were found for an earlier batch.
func TestCommitterRelationsAfterDeletes(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t)
	alice, _ := f.newUser(t, "Alice")
	bob, bobRec := f.newUser(t, "Bob")
	room, roomRec := f.newRoom(t, "doomed", chat.KindPrivate, alice.ID, bob.ID)
	other, _ := f.newRoom(t, "other", chat.KindPrivate, alice.ID, bob.ID)

	for _, author := range []chat.User{alice, bob} {
		if _, err := f.createMessage(context.Background(), author, room.ID, "hello"); err != nil {
			t.Fatalf("message before the deletes: %v", err)
		}
	}
	if err := f.app.Delete(roomRec); err != nil {
		t.Fatal(err)
	}
	if _, err := f.createMessage(context.Background(), alice, room.ID, "into the void"); chat.ErrorCode(err) != chat.CodeBadRequest {
		t.Errorf("message to the deleted room: %v, want code %s", err, chat.CodeBadRequest)
	}
	if _, err := f.createMessage(context.Background(), bob, other.ID, "still here"); err != nil {
		t.Errorf("message to another room after the delete: %v", err)
	}
	if err := f.app.Delete(bobRec); err != nil {
		t.Fatal(err)
	}
	if _, err := f.createMessage(context.Background(), bob, other.ID, "ghost"); chat.ErrorCode(err) != chat.CodeBadRequest {
		t.Errorf("message by the deleted user: %v, want code %s", err, chat.CodeBadRequest)
	}
	if _, err := f.createMessage(context.Background(), alice, other.ID, "alice again"); err != nil {
		t.Errorf("message by a user not deleted: %v", err)
	}
	if n := len(f.storedIDs(t, room.ID)); n != 0 {
		t.Errorf("%d messages left in the deleted room, want 0 (cascade, and nothing after)", n)
	}
	if got := len(f.storedIDs(t, other.ID)); got != 2 {
		t.Errorf("%d messages in the other room, want 2", got)
	}
}

// CommitWait holds a batch back only under load: a message after a quiet
// spell commits at once, while a batch that follows one of several waits
// for more (here until it is full, the wait being an hour).
func TestCommitterWaitsOnlyUnderLoad(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t, func(c *Config) { c.CommitWait = time.Hour; c.CommitBatch = 3 })
	alice, _ := f.newUser(t, "Alice")
	general := f.general(t)
	send := func(text string) <-chan outcome {
		ch := make(chan outcome, 1)
		f.st.CreateMessage(context.Background(), alice, general.ID, text, func(m chat.Message, err error) { ch <- outcome{m, err} })
		return ch
	}
	check := func(what string, ch <-chan outcome) {
		t.Helper()
		if r := wait(t, ch); r.err != nil {
			t.Fatalf("%s: %v", what, r.err)
		}
	}

	check("a lone message", send("alone")) // waiting, it would take an hour
	g := f.bindGate()
	g.hold(t, f, alice, general.ID)
	a, b := send("a"), send("b")
	g.open(t)
	check("a", a)
	check("b", b) // a and b: one batch of two, so the next one waits
	count, sum := f.batches(t)
	if count != 3 || sum != 4 {
		t.Fatalf("%d batches of %v messages, want 3 of 4 (alone, the gate's, a+b)", count, sum)
	}
	c := send("c")
	time.Sleep(50 * time.Millisecond) // c's batch is waiting for more
	if n, _ := f.batches(t); n != count {
		t.Fatalf("c was committed alone right after a batch of two")
	}
	d, e := send("d"), send("e")
	for _, ch := range []<-chan outcome{c, d, e} {
		check("c, d or e", ch)
	}
	if count, sum = f.batches(t); count != 4 || sum != 7 {
		t.Errorf("%d batches of %v messages, want c, d and e in a fourth one", count, sum)
	}
}
