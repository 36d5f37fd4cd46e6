package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	_ "modernc.org/sqlite" // the SQLite PocketBase itself uses
)

// While another process holds SQLite's write lock for longer than a
// commit may take (15 s), sends fail with "internal" and are neither
// acked nor stored, readers go on, and once the lock is gone the server
// writes again without a restart.
func TestDatabaseLockedThenRecovers(t *testing.T) {
	srv, general, alice, a, b := chatBefore(t, "before the lock")

	db, err := sql.Open("sqlite", "file:"+filepath.Join(srv.Dir, "data.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ctx := context.Background()
	lock, err := db.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lock.ExecContext(ctx, "BEGIN EXCLUSIVE"); err != nil {
		t.Fatalf("taking the write lock: %v", err)
	}
	locked := true
	defer func() {
		if locked {
			_, _ = lock.ExecContext(ctx, "ROLLBACK")
		}
		lock.Close()
	}()

	a.SendRaw(fmt.Sprintf(`{"type":"send","id":"locked","room":%q,"text":"while locked"}`, general))
	// Reads do not wait for the writer.
	start := time.Now()
	if h := b.MustRequest("history", map[string]any{"room": general}); len(h.List("messages")) == 0 {
		t.Error("history is empty while the database is locked")
	}
	t.Logf("history while locked took %v", time.Since(start).Round(time.Millisecond))

	reply, ok := a.take(func(f Frame) bool { return f.Str("id") == "locked" }, 30*time.Second)
	if !ok {
		t.Fatalf("no reply to the send while the database was locked; server output:\n%s", srv.Output())
	}
	if reply.Type() != "error" || reply.Str("code") != "internal" {
		t.Fatalf("send while locked: %v, want error internal", reply)
	}
	t.Logf("the send failed after %v", time.Since(start).Round(time.Millisecond))
	b.ExpectNone("a message stored while locked", func(f Frame) bool { return f.Type() == "message" })

	if _, err := lock.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	locked = false

	a.Send(general, "after the lock")
	b.ExpectMessage(general, "after the lock")
	code, _ := restCreate(srv, alice.Token, map[string]any{"room": general, "author": alice.ID, "text": "rest after the lock"})
	if code != http.StatusOK {
		t.Fatalf("REST create after the lock: %d", code)
	}
	b.ExpectMessage(general, "rest after the lock")

	wantStored(t, srv, general, "before the lock", "after the lock", "rest after the lock")
}

// When the disk refuses writes, sends fail with "internal" and nothing is
// acked that was not stored; once writes are possible again the server
// stores and acks without a restart. The refusal is the kernel's: the
// server's file-size limit (RLIMIT_FSIZE) is lowered to one byte, so
// every write to SQLite's files fails (EFBIG, which Go's runtime turns
// into an error rather than a signal), as it would on a full disk.
func TestDiskRefusesWritesThenRecovers(t *testing.T) {
	srv, general, _, a, b := chatBefore(t, "before the disk fills")

	pid := srv.cmd.Process.Pid
	var old unix.Rlimit
	full := unix.Rlimit{Cur: 1, Max: unix.RLIM_INFINITY}
	if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &full, &old); err != nil {
		t.Fatalf("lowering the server's file-size limit: %v", err)
	}
	restored := false
	restore := func() {
		if !restored {
			restored = true
			if err := unix.Prlimit(pid, unix.RLIMIT_FSIZE, &old, nil); err != nil {
				t.Errorf("restoring the file-size limit: %v", err)
			}
		}
	}
	defer restore()

	for i := range 3 {
		f := a.Request("send", map[string]any{"room": general, "text": fmt.Sprintf("while full %d", i)})
		if f.Type() != "error" || f.Str("code") != "internal" {
			t.Fatalf("send while the disk refuses writes: %v, want error internal", f)
		}
	}
	// Reading still works.
	if h := b.MustRequest("history", map[string]any{"room": general}); len(h.List("messages")) != 1 {
		t.Errorf("history while full: %v", h)
	}
	b.ExpectNone("a message while the disk is full", func(f Frame) bool { return f.Type() == "message" })

	restore()
	a.Send(general, "after the disk has room")
	b.ExpectMessage(general, "after the disk has room")

	wantStored(t, srv, general, "before the disk fills", "after the disk has room")
}

// chatBefore starts a server where alice (connected as a) has sent text
// to General, which Bob (b), who joined it, received.
func chatBefore(t *testing.T, text string) (srv *Server, general string, alice *User, a, b *Client) {
	t.Helper()
	srv = StartServer(t)
	general = srv.General()
	alice = srv.NewUser("Alice")
	a, b = srv.Dial(alice), srv.Dial(srv.NewUser("Bob"))
	b.Join(general)
	a.Send(general, text)
	b.ExpectMessage(general, text)
	return srv, general, alice, a, b
}

// wantStored checks the texts of the room's stored messages, in order.
func wantStored(t *testing.T, srv *Server, room string, want ...string) {
	t.Helper()
	var list struct{ Items []Record }
	srv.MustDo("GET", fmt.Sprintf("/api/collections/messages/records?filter=(room='%s')&sort=seq&perPage=100", room), srv.SuperToken(), nil, &list)
	var texts []string
	for _, r := range list.Items {
		texts = append(texts, r["text"].(string))
	}
	if fmt.Sprint(texts) != fmt.Sprint(want) {
		t.Errorf("stored %q, want %q", texts, want)
	}
}
