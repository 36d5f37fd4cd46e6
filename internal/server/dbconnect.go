package server

import (
	"fmt"

	"github.com/pocketbase/dbx"
)

// DBConnect opens PocketBase's SQLite databases with PocketBase's own
// settings (core.DefaultDBConnect) except for the page cache, which is
// cacheKiB per connection instead of 32 MB. Pass it as
// pocketbase.Config.DBConnect.
//
// Why smaller: PocketBase keeps up to 15 idle connections to data.db, and
// each one fills its own page cache with whatever it has read. Opening
// thousands of chat connections reads every user and room once, so each
// pooled connection ends up holding a copy of much of the database
// outside the Go heap: about 4 KiB of resident memory per chat connection
// in the idle benchmark (docs/benchmarks.md, Levers). The big cache buys
// little in return. In WAL mode a connection drops its whole page cache
// whenever another connection has committed since its last read, and the
// chat commits many times a second under load. The pages stay in the
// kernel's page cache either way, so a read after a drop costs a system
// call, not a disk access.
func DBConnect(cacheKiB int) func(dbPath string) (*dbx.DB, error) {
	// busy_timeout stays first: a connection must wait on a lock before
	// it sets WAL mode (see core.DefaultDBConnect).
	pragmas := fmt.Sprintf("?_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)"+
		"&_pragma=journal_size_limit(200000000)&_pragma=synchronous(NORMAL)&_pragma=foreign_keys(ON)"+
		"&_pragma=temp_store(MEMORY)&_pragma=cache_size(-%d)&_defensive=1", cacheKiB)
	return func(dbPath string) (*dbx.DB, error) {
		// The "sqlite" driver is modernc.org/sqlite, registered by
		// PocketBase's core package as for its own connect.
		return dbx.Open("sqlite", dbPath+pragmas)
	}
}
