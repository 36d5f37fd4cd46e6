package server

import (
	"context"
	"testing"
	"time"
)

// checkpoints reads how many background checkpoints ran.
func (f *storeFixture) checkpoints(t *testing.T) uint64 {
	t.Helper()
	mfs, err := f.srv.metrics.node.Reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "pocketchat_wal_checkpoint_seconds" {
			return mf.GetMetric()[0].GetHistogram().GetSampleCount()
		}
	}
	t.Fatal("no wal_checkpoint_seconds histogram")
	return 0
}

// autoCheckpoint is the writer connection's wal_autocheckpoint.
func (f *storeFixture) autoCheckpoint(t *testing.T) int {
	t.Helper()
	var n int
	if err := f.app.NonconcurrentDB().NewQuery("PRAGMA wal_autocheckpoint").Row(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// The group commit's connection leaves checkpoints to the checkpointer,
// which runs one after commits and none while nothing is written; the
// messages are all readable.
func TestCheckpointerAfterCommits(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t, func(c *Config) { c.CheckpointEvery = 20 * time.Millisecond })
	alice, _ := f.newUser(t, "Alice")
	general := f.general(t)
	if got := f.checkpoints(t); got != 0 {
		t.Fatalf("%d checkpoints before any message, want 0", got)
	}
	for i := range 50 {
		if _, err := f.createMessage(context.Background(), alice, general.ID, "hello"); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
	if n := f.autoCheckpoint(t); n != 0 {
		t.Errorf("writer's wal_autocheckpoint = %d after a group commit, want 0", n)
	}
	waitUntil(t, "a checkpoint after the commits", func() bool { return f.checkpoints(t) > 0 })
	// The last commits may have asked for one more.
	settled := f.checkpoints(t)
	waitUntil(t, "the checkpoints to settle", func() bool {
		time.Sleep(60 * time.Millisecond) // three periods
		n := f.checkpoints(t)
		defer func() { settled = n }()
		return n == settled
	})
	time.Sleep(100 * time.Millisecond) // five periods without a commit
	if got := f.checkpoints(t); got != settled {
		t.Errorf("%d checkpoints while idle, want none", got-settled)
	}
	var busy, logPages, copied int
	if err := f.app.ConcurrentDB().NewQuery("PRAGMA wal_checkpoint(PASSIVE)").Row(&busy, &logPages, &copied); err != nil {
		t.Fatal(err)
	}
	if logPages != copied {
		t.Errorf("WAL has %d pages, %d of them copied: the checkpointer left work behind", logPages, copied)
	}
	if n := len(f.storedIDs(t, general.ID)); n != 50 {
		t.Errorf("%d messages stored, want 50", n)
	}
}

// With CheckpointEvery 0, SQLite checkpoints after commits itself, as
// without the chat.
func TestCheckpointerOff(t *testing.T) {
	t.Parallel()
	f := newStoreFixture(t, func(c *Config) { c.CheckpointEvery = 0 })
	alice, _ := f.newUser(t, "Alice")
	if _, err := f.createMessage(context.Background(), alice, f.general(t).ID, "hello"); err != nil {
		t.Fatal(err)
	}
	if n := f.autoCheckpoint(t); n != 1000 {
		t.Errorf("writer's wal_autocheckpoint = %d, want SQLite's 1000", n)
	}
	if got := f.checkpoints(t); got != 0 {
		t.Errorf("%d background checkpoints, want none", got)
	}
}
