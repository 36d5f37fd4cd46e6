package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the SQLite PocketBase itself uses
)

// While another process holds SQLite's write lock for longer than a
// commit may take (15 s), sends fail with "internal" and are neither
// acked nor stored, readers go on, and once the lock is gone the server
// writes again without a restart.
func TestDatabaseLockedThenRecovers(t *testing.T) {
	srv := StartServer(t)
	general := srv.General()
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	a, b := srv.Dial(alice), srv.Dial(bob)
	b.Join(general)
	a.Send(general, "before the lock")
	b.ExpectMessage(general, "before the lock")

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

	var list struct{ Items []Record }
	srv.MustDo("GET", fmt.Sprintf("/api/collections/messages/records?filter=(room='%s')&sort=seq&perPage=100", general), alice.Token, nil, &list)
	var texts []string
	for _, r := range list.Items {
		texts = append(texts, r["text"].(string))
	}
	want := []string{"before the lock", "after the lock", "rest after the lock"}
	if fmt.Sprint(texts) != fmt.Sprint(want) {
		t.Errorf("stored %q, want %q", texts, want)
	}
}
