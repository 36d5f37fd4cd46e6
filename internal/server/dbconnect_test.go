package server_test

import (
	"testing"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"

	"pocketchat/internal/server"
)

// PocketBase opens both of its databases through DBConnect: they must
// carry the smaller page cache and keep PocketBase's other settings.
func TestDBConnectSettings(t *testing.T) {
	app := core.NewBaseApp(core.BaseAppConfig{DataDir: t.TempDir(), DBConnect: server.DBConnect(512)})
	if err := app.Bootstrap(); err != nil {
		t.Fatalf("Bootstrap: %v", err)
	}
	t.Cleanup(func() { _ = app.ResetBootstrapState() })

	dbs := []struct {
		name string
		db   dbx.Builder
	}{
		{"data (concurrent)", app.ConcurrentDB()},
		{"data (nonconcurrent)", app.NonconcurrentDB()},
		{"auxiliary (concurrent)", app.AuxConcurrentDB()},
		{"auxiliary (nonconcurrent)", app.AuxNonconcurrentDB()},
	}
	want := map[string]string{
		"cache_size":   "-512",
		"journal_mode": "wal",
		"foreign_keys": "1",
		"busy_timeout": "10000",
		"synchronous":  "1", // NORMAL
		"temp_store":   "2", // MEMORY
	}
	for _, d := range dbs {
		for pragma, v := range want {
			var got string
			if err := d.db.NewQuery("PRAGMA " + pragma).Row(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", d.name, pragma, err)
			}
			if got != v {
				t.Errorf("%s: PRAGMA %s = %s, want %s", d.name, pragma, got, v)
			}
		}
	}
}
