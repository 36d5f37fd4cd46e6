package e2e

import (
	"archive/zip"
	"database/sql"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"testing"
)

// PocketBase's backup API, as docs/deploy.md tells operators to use it,
// takes a consistent copy of a chatting server: the archive's database
// has every message acked before the backup.
func TestBackupWhileChatting(t *testing.T) {
	srv := StartServer(t, WithEnv("CHAT_SEND_RATE=0")) // 21 sends in a row
	general := srv.General()
	alice := srv.NewUser("Alice")
	a := srv.Dial(alice)
	for i := range 20 {
		a.Send(general, fmt.Sprintf("before the backup %d", i))
	}
	super := srv.SuperToken()
	srv.MustDo("POST", "/api/backups", super, map[string]any{"name": "chat_backup.zip"}, nil)
	a.Send(general, "after the backup")

	var list []struct {
		Key  string
		Size int64
	}
	srv.MustDo("GET", "/api/backups", super, nil, &list)
	if len(list) != 1 || list[0].Key != "chat_backup.zip" || list[0].Size == 0 {
		t.Fatalf("backups %+v, want chat_backup.zip", list)
	}

	zr, err := zip.OpenReader(filepath.Join(srv.Dir, "backups", "chat_backup.zip"))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	restored := t.TempDir()
	for _, f := range zr.File {
		if f.Name != "data.db" {
			continue
		}
		rc, err := f.Open()
		must(t, err)
		out, err := os.Create(filepath.Join(restored, "data.db"))
		must(t, err)
		_, err = io.Copy(out, rc)
		must(t, err)
		rc.Close()
		must(t, out.Close())
	}
	db, err := sql.Open("sqlite", filepath.Join(restored, "data.db"))
	must(t, err)
	defer db.Close()
	var before, after int
	must(t, db.QueryRow(`SELECT count(*) FROM messages WHERE text LIKE 'before the backup %'`).Scan(&before))
	must(t, db.QueryRow(`SELECT count(*) FROM messages WHERE text = 'after the backup'`).Scan(&after))
	if before != 20 || after != 0 {
		t.Errorf("the backup holds %d messages from before it (want 20) and %d from after (want 0)", before, after)
	}
}
