package server

import (
	"context"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pocketbase/dbx"
	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/pocketbase/pocketbase/tools/list"

	"pocketchat/internal/chat"
)

// defaultCommitBatch is the default CHAT_COMMIT_BATCH.
const defaultCommitBatch = 256

// defaultCommitWait is the default CHAT_COMMIT_WAIT. In Tier A (2,000
// messages/s from 1,000 connections) it made batches of ~17 instead of
// ~3, took 10% off the server's CPU and about 40% off the send→receive
// p99, and added ~4 ms to the median; light loads do not wait at all.
const defaultCommitWait = 2 * time.Millisecond

// committer is the group commit of the chat's messages. The sessions of
// every connection hand it their messages and go on reading; one
// goroutine takes whatever is queued (up to maxBatch) and saves it in one
// transaction, so while one batch commits the next one gathers. One
// commit per batch instead of one per message is what makes many senders
// cheap: SQLite writes through a single connection, and each transaction
// costs far more than an insert.
//
// Every message still goes through PocketBase's save, so every record
// hook runs: our OnRecordCreate (clean text, seq), operators' JS hooks,
// and after the commit OnRecordAfterCreateSuccess, which broadcasts.
// PocketBase defers the after-success hooks of a transaction until it
// commits, and on a rollback calls the after-error hooks of the records
// already saved instead; a save that fails calls its after-error hook at
// once. Either way each message's sequencer slot is freed.
//
// Each message of a batch is saved under a savepoint: one that fails (a
// hook refuses it, a check fails) is rolled back alone, with whatever its
// hooks wrote, and gets its own error; the others commit. (A message alone
// in its batch needs no savepoint: its failure rolls back the transaction.) If the transaction
// itself fails, every message of the batch gets an error. done is called
// for each message, in queue order, only after the transaction has ended,
// so an ack always stands for a committed message.
//
// Messages are saved without PocketBase's per-record validation
// (SaveNoValidate): it costs two COUNT queries per message for the room
// and author relations, a third or more of the group commit's throughput
// (see BenchmarkCommit). What validation would check is still checked: the
// relations once per batch inside the transaction (checkRelations), every
// other field per message after all create hooks ran (checkMessage).
// Access rules are the session's: it saves only into rooms the user may
// write, as the user, unbanned. REST and the dashboard do not come
// through here and validate as always.
type committer struct {
	app     core.App
	metrics *metrics
	// maxBatch bounds a transaction; wait lets a batch that is not full
	// wait for more while messages come faster than commits (0: commit
	// at once). lastBatch, the run goroutine's, is the size of the
	// previous batch: more than one means they do.
	maxBatch  int
	wait      time.Duration
	lastBatch int
	// validate saves with app.Save (full validation) instead: the
	// baseline of the benchmarks.
	validate bool
	// ckpt, if set, checkpoints the WAL after commits, and the batches'
	// connection does not (see checkpointer).
	ckpt *checkpointer
	// deletes counts record deletes (relCache); rels is the run
	// goroutine's.
	deletes atomic.Uint64
	rels    relCache
	// deadline, the run goroutine's, ends the current batch's statements
	// (commitTimeout after it began).
	deadline time.Time

	mu      sync.Mutex
	queue   []*pending
	closed  bool
	wake    chan struct{} // a message arrived in an empty queue, or it filled
	stopped chan struct{} // closed when the goroutine has exited
}

// pending is a message waiting for its commit.
type pending struct {
	ctx  context.Context
	rec  *core.Record
	done func(error)
	err  error // the message's own failure, if any
}

// errShuttingDown answers the messages that arrive after the committer
// stopped.
var errShuttingDown = chat.Errorf(chat.CodeInternal, "the server is shutting down; the message was not stored")

// errNotCommitted is what the messages of a failed transaction get: an
// internal error, nothing of the batch was stored.
var errNotCommitted = errors.New("chat: the batch's transaction failed")

// errMessageFailed rolls back the transaction of a batch of one whose
// message failed; the message keeps its own error.
var errMessageFailed = errors.New("chat: the message failed")

// commitTimeout bounds a batch's statements. SQLite waits 10 s for a
// write lock another process holds (PocketBase's busy_timeout) and
// PocketBase retries a locked write up to 12 times: without a deadline a
// send could wait minutes for its answer. With it, the batch is rolled
// back and its senders get "internal" while the lock lasts.
const commitTimeout = 15 * time.Second

func newCommitter(app core.App, m *metrics, maxBatch int, wait time.Duration) *committer {
	if maxBatch <= 0 {
		maxBatch = defaultCommitBatch
	}
	c := &committer{
		app: app, metrics: m, maxBatch: maxBatch, wait: max(wait, 0),
		wake:    make(chan struct{}, 1),
		stopped: make(chan struct{}),
	}
	c.rels.gen = &c.deletes
	go c.run()
	return c
}

// add queues rec; done is called once it is committed or failed. done may
// run before add returns (the committer has stopped).
func (c *committer) add(ctx context.Context, rec *core.Record, done func(error)) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		done(errShuttingDown)
		return
	}
	c.queue = append(c.queue, &pending{ctx: ctx, rec: rec, done: done})
	n := len(c.queue)
	c.mu.Unlock()
	if n == 1 || n >= c.maxBatch {
		select {
		case c.wake <- struct{}{}:
		default:
		}
	}
}

// close commits what is queued, stops the goroutine and waits for it.
// Later messages are refused.
func (c *committer) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	select {
	case c.wake <- struct{}{}:
	default:
	}
	<-c.stopped
}

func (c *committer) run() {
	defer close(c.stopped)
	for {
		batch := c.next()
		if batch == nil {
			return
		}
		c.commit(batch)
	}
}

// next waits for messages and takes up to maxBatch of them. It returns
// nil once closed and empty.
//
// Under load (the previous batch held more than one message: they came
// while it committed) a batch that is not full first waits up to c.wait
// for more: fewer, bigger transactions, each costing about as much as a
// small one, for that much latency. A message after a quiet spell is
// committed at once: its batch would wait for nothing.
func (c *committer) next() []*pending {
	c.mu.Lock()
	for len(c.queue) == 0 && !c.closed {
		c.mu.Unlock()
		<-c.wake
		c.mu.Lock()
	}
	if c.wait > 0 && c.lastBatch > 1 && len(c.queue) < c.maxBatch && !c.closed {
		c.mu.Unlock()
		c.gather()
		c.mu.Lock()
	}
	n := min(len(c.queue), c.maxBatch)
	if n == 0 {
		c.mu.Unlock()
		return nil
	}
	batch := c.queue[:n:n] // appends go past it
	c.lastBatch = n
	c.queue = c.queue[n:]
	if len(c.queue) == 0 {
		c.queue = nil // let a burst's backing array go with its batch
	}
	c.mu.Unlock()
	return batch
}

// gather waits up to c.wait for the queue to fill.
func (c *committer) gather() {
	t := time.NewTimer(c.wait)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			return
		case <-c.wake:
			c.mu.Lock()
			full := len(c.queue) >= c.maxBatch || c.closed
			c.mu.Unlock()
			if full {
				return
			}
		}
	}
}

// commit saves a batch in one transaction and reports each message.
func (c *committer) commit(batch []*pending) {
	saved := c.save(batch)
	if saved > 0 {
		c.metrics.committedBatch(saved)
	}
	for _, p := range batch {
		c.report(p)
	}
}

// save runs the batch's transaction and leaves each message's outcome in
// its err; it returns how many messages it stored.
func (c *committer) save(batch []*pending) (saved int) {
	live := make([]*pending, 0, len(batch))
	for _, p := range batch {
		if p.err = p.ctx.Err(); p.err == nil {
			live = append(live, p)
		}
	}
	if len(live) == 0 {
		return 0
	}
	committed := false
	// Whatever happens, every message leaves with an outcome: a session
	// whose send was never reported would wait for it forever.
	defer func() {
		v := recover()
		if v != nil {
			c.app.Logger().Error("chat: panic in a group commit", "committed", committed, "panic", v, "stack", string(debug.Stack()))
		}
		saved = 0
		for _, p := range live {
			switch {
			case p.err != nil:
			case committed:
				saved++
			case v != nil:
				p.err = fmt.Errorf("%w: panic: %v", errNotCommitted, v)
			}
		}
	}()
	c.deadline = time.Now().Add(commitTimeout)
	txErr := c.app.RunInTransaction(func(tx core.App) error {
		// Registered first, so it runs before the records' own
		// after-commit hooks and sees the transaction's outcome apart
		// from any error those hooks return.
		tx.TxInfo().OnComplete(func(err error) error {
			committed = err == nil
			return nil
		})
		if c.ckpt != nil {
			if err := noAutoCheckpoint(tx); err != nil {
				c.app.Logger().Warn("chat: could not turn SQLite's auto-checkpoint off", "error", err)
			}
		}
		return c.saveAll(tx, live)
	})
	if committed && c.ckpt != nil {
		c.ckpt.committed()
	}
	if txErr != nil && !errors.Is(txErr, errMessageFailed) {
		// The commit failed, or an after-commit hook did: then the
		// messages are stored, and acknowledged all the same.
		c.app.Logger().Error("chat: group commit", "messages", len(live), "committed", committed, "error", txErr)
	}
	if !committed {
		for _, p := range live {
			if p.err == nil {
				p.err = fmt.Errorf("%w: %w", errNotCommitted, txErr)
			}
		}
	}
	return 0 // counted by the deferred function
}

// report calls a message's done; a panic there is logged, and the
// batch's other messages are still reported.
func (c *committer) report(p *pending) {
	defer func() {
		if v := recover(); v != nil {
			c.app.Logger().Error("chat: panic reporting a commit", "panic", v, "stack", string(debug.Stack()))
		}
	}()
	p.done(p.err)
}

// savepoint names the savepoint around each message of a batch.
const savepoint = "chat_message"

// saveAll saves the batch's messages inside tx. An error it returns is the
// transaction's: the whole batch is rolled back.
func (c *committer) saveAll(tx core.App, batch []*pending) error {
	var checks *batchChecks
	if !c.validate {
		var err error
		if checks, err = checkRelations(tx, batch, &c.rels); err != nil {
			return err
		}
	}
	if len(batch) == 1 {
		// Alone in its batch (the usual case under light load), a
		// message needs no savepoint: if it fails, the transaction is
		// rolled back, which also tells PocketBase that whatever its
		// hooks saved failed.
		if err := c.saveOne(tx, checks, batch[0]); err != nil {
			return err
		}
		if batch[0].err != nil {
			return errMessageFailed
		}
		return nil
	}
	db := tx.NonconcurrentDB()
	for _, p := range batch {
		if _, err := db.NewQuery("SAVEPOINT " + savepoint).Execute(); err != nil {
			return err
		}
		if err := c.saveOne(tx, checks, p); err != nil {
			return err
		}
		if p.err != nil {
			// Fails if SQLite already rolled the whole transaction back
			// (an I/O error, a full disk): then the batch fails.
			if _, err := db.NewQuery("ROLLBACK TO " + savepoint).Execute(); err != nil {
				return err
			}
		}
		if _, err := db.NewQuery("RELEASE " + savepoint).Execute(); err != nil {
			return err
		}
	}
	return nil
}

// saveOne saves one message, its failure recorded in p.err. A panic in a
// hook fails the batch instead of the process: the transaction's state is
// unknown. (That message's sequencer slot, if it got one, is only freed by
// the sequencer's stuck timeout: its after-error hook never ran.)
func (c *committer) saveOne(tx core.App, checks *batchChecks, p *pending) (err error) {
	defer func() {
		if v := recover(); v != nil {
			p.err = fmt.Errorf("chat: panic while saving a message: %v", v)
			err = p.err
		}
	}()
	// Not the request's cancellation: cancelling a statement makes SQLite
	// roll back the whole transaction, the batch's other messages too.
	// The batch's deadline does that, on purpose: they all failed.
	ctx, cancel := context.WithDeadline(context.WithoutCancel(p.ctx), c.deadline)
	defer cancel()
	if c.validate {
		p.err = tx.SaveWithContext(ctx, p.rec)
	} else {
		p.err = tx.SaveNoValidateWithContext(context.WithValue(ctx, batchChecksKey{}, checks), p.rec)
	}
	return nil
}

// batchChecks is what the committer verified for a batch inside its
// transaction: the ids that exist, by relation field.
type batchChecks struct {
	exist map[string]map[string]bool
}

// batchChecksKey marks, in a save's context, a message saved by the
// committer without validation; checkMessage validates it.
type batchChecksKey struct{}

// relCache remembers which records the messages' relations pointed to
// and were found, so that a busy room's author and room are looked up
// once, not once per batch: the lookup is a tenth of a busy server's CPU.
// A record that existed still exists as long as no record was deleted
// since: gen counts deletes (of any collection), bumped inside the delete's
// transaction (OnRecordDeleteExecute). The app has one writer connection,
// so a batch's transaction starts only after any delete has committed or
// rolled back, and sees its bump. The cache is the committer goroutine's.
type relCache struct {
	gen   *atomic.Uint64
	seen  uint64                     // gen when ids was filled
	ids   map[string]map[string]bool // relation collection id → ids found
	count int
}

// relCacheMax bounds the ids remembered; past it the cache starts over.
const relCacheMax = 100_000

// valid returns the ids known for a collection, dropping everything if a
// delete happened since.
func (r *relCache) known(colID string) map[string]bool {
	if g := r.gen.Load(); g != r.seen || r.count > relCacheMax {
		r.ids, r.seen, r.count = nil, g, 0
	}
	return r.ids[colID]
}

func (r *relCache) add(colID, id string) {
	if r.ids == nil {
		r.ids = make(map[string]map[string]bool)
	}
	m := r.ids[colID]
	if m == nil {
		m = make(map[string]bool)
		r.ids[colID] = m
	}
	if !m[id] {
		m[id] = true
		r.count++
	}
}

// checkRelations finds which of the ids the batch's messages point to
// exist: from the cache, and with one query per relation field for the
// others.
func checkRelations(tx core.App, batch []*pending, cache *relCache) (*batchChecks, error) {
	checks := &batchChecks{exist: make(map[string]map[string]bool)}
	col := batch[0].rec.Collection()
	for _, f := range col.Fields {
		rf, ok := f.(*core.RelationField)
		if !ok {
			continue
		}
		known := cache.known(rf.CollectionId)
		exist := make(map[string]bool)
		var ids []any
		for _, p := range batch {
			if p.rec.Collection().Id != col.Id {
				continue // checkMessage runs the full validator for it
			}
			for _, id := range list.ToUniqueStringSlice(p.rec.GetRaw(rf.Name)) {
				switch _, asked := exist[id]; {
				case asked:
				case known[id]:
					exist[id] = true
				default:
					exist[id] = false
					ids = append(ids, id)
				}
			}
		}
		checks.exist[rf.Name] = exist
		if len(ids) == 0 {
			continue
		}
		rel, err := tx.FindCachedCollectionByNameOrId(rf.CollectionId)
		if err != nil {
			continue // the field's own validator reports it
		}
		var found []string
		if err := tx.DB().Select("id").From(rel.Name).Where(dbx.In("id", ids...)).Column(&found); err != nil {
			return nil, err
		}
		for _, id := range found {
			exist[id] = true
			cache.add(rf.CollectionId, id)
		}
	}
	return checks, nil
}

// checkMessage validates a message the committer saves without
// validation, right before its insert, after every create hook has had
// its say: each field as PocketBase's validation would, except that a
// relation to a single id the batch check found needs no query of its
// own. Other saves pass through.
func checkMessage(e *core.RecordEvent) error {
	checks, ok := e.Context.Value(batchChecksKey{}).(*batchChecks)
	if !ok {
		return e.Next()
	}
	errs := validation.Errors{}
	for _, f := range e.Record.Collection().Fields {
		if rf, ok := f.(*core.RelationField); ok && checks.known(rf, e.Record) {
			continue
		}
		if err := f.ValidateValue(e.Context, e.App, e.Record); err != nil {
			errs[f.GetName()] = err
		}
	}
	if len(errs) > 0 {
		return errs
	}
	return e.Next()
}

// known reports whether the record's value of rf is one id that the batch
// check found: such a value passes rf's validation (required, at most
// MaxSelect ids) unless rf asks for two or more.
func (b *batchChecks) known(rf *core.RelationField, rec *core.Record) bool {
	ids := list.ToUniqueStringSlice(rec.GetRaw(rf.Name))
	return len(ids) == 1 && rf.MinSelect <= 1 && b.exist[rf.Name][ids[0]]
}

// bindCommitter starts the store's committer with the configured batch
// and wait, binds the check of the messages it saves, and stops it when
// the app terminates: after Shutdown (priority 0) has let the
// connections finish, before PocketBase closes the database (the
// trigger's final handler), so what is queued is still committed.
func (s *Server) bindCommitter() {
	s.store.commits = newCommitter(s.app, s.metrics, s.cfg.CommitBatch, s.cfg.CommitWait)
	if s.cfg.CheckpointEvery > 0 {
		s.store.commits.ckpt = newCheckpointer(s.app, s.metrics, s.cfg.CheckpointEvery)
	}
	s.app.OnRecordCreateExecute(colMessages).BindFunc(checkMessage)
	// Any collection: an operator may add relations to the messages.
	s.app.OnRecordDeleteExecute().BindFunc(func(e *core.RecordEvent) error {
		s.store.commits.deletes.Add(1) // before the delete commits
		return e.Next()
	})
	s.app.OnTerminate().Bind(&hook.Handler[*core.TerminateEvent]{
		Func: func(e *core.TerminateEvent) error {
			s.store.commits.close()
			if k := s.store.commits.ckpt; k != nil {
				k.close()
			}
			return e.Next()
		},
		Priority: 1,
	})
}
