package server

import (
	"time"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
)

// checkpointer copies SQLite's write-ahead log into the database file in
// the background, so that no commit of the chat waits for it.
//
// SQLite checkpoints on its own after a commit that leaves the log longer
// than 1000 pages, on the connection that committed, before the commit
// returns: the log and the database are each synced to disk (fsync), and
// pages are copied. Here one sync takes about 10 ms, and under load the
// group commit's transactions fill 1000 pages several times a second, so
// every few batches one batch, and every message waiting behind it, took
// 20 ms or more longer: the slowest sends of the benchmarks. With the
// group commit's connection set not to checkpoint (wal_autocheckpoint=0,
// renewed in every batch's transaction, since PocketBase may reopen that
// connection), this goroutine checkpoints on a connection of the read
// pool instead, a while after commits, in PASSIVE mode: it never blocks
// the writer or readers, and it copies what no reader still needs.
//
// Durability is unchanged: PocketBase runs SQLite with synchronous=NORMAL,
// so a commit was never synced to disk on its own; it survives the
// process crashing, not the machine losing power before a checkpoint.
type checkpointer struct {
	db      func() dbx.Builder // where the checkpoint runs (the read pool)
	log     func(msg string, args ...any)
	metrics *metrics
	every   time.Duration

	wrote chan struct{} // a commit happened (buffered 1)
	stop  chan struct{}
	done  chan struct{}
}

// checkpointEvery is how long the checkpointer lets commits gather after
// the first one before it checkpoints: long enough that a checkpoint
// copies many commits' pages at once, short enough that the log stays a
// few thousand pages at most under load.
const checkpointEvery = 250 * time.Millisecond

func newCheckpointer(app core.App, m *metrics, every time.Duration) *checkpointer {
	k := &checkpointer{
		db:      app.ConcurrentDB,
		log:     app.Logger().Warn,
		metrics: m,
		every:   every,
		wrote:   make(chan struct{}, 1),
		stop:    make(chan struct{}),
		done:    make(chan struct{}),
	}
	go k.run()
	return k
}

// committed tells the checkpointer that a transaction committed. It never
// blocks.
func (k *checkpointer) committed() {
	select {
	case k.wrote <- struct{}{}:
	default:
	}
}

func (k *checkpointer) run() {
	defer close(k.done)
	t := time.NewTimer(k.every)
	t.Stop()
	for {
		select {
		case <-k.stop:
			return
		case <-k.wrote:
		}
		t.Reset(k.every)
		select {
		case <-k.stop:
			t.Stop()
			k.checkpoint() // what the last batches wrote
			return
		case <-t.C:
		}
		k.checkpoint()
	}
}

func (k *checkpointer) checkpoint() {
	start := time.Now()
	var busy, logPages, copied int
	err := k.db().NewQuery("PRAGMA wal_checkpoint(PASSIVE)").Row(&busy, &logPages, &copied)
	if err != nil {
		k.log("chat: WAL checkpoint failed", "error", err)
		return
	}
	k.metrics.checkpointed(time.Since(start))
}

// close stops the goroutine after a last checkpoint if commits are
// pending one; call it before the database closes.
func (k *checkpointer) close() {
	close(k.stop)
	<-k.done
}

// noAutoCheckpoint turns SQLite's own checkpoint after commits off for
// the transaction's connection (the app's single writer).
func noAutoCheckpoint(tx core.App) error {
	_, err := tx.NonconcurrentDB().NewQuery("PRAGMA wal_autocheckpoint=0").Execute()
	return err
}
