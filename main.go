// Command pocketchat is a real-time chat server: PocketBase (auth, the
// admin dashboard, SQLite) with a WebSocket chat on top.
package main

import (
	"embed"
	"io/fs"
	"log"
	"os"

	"github.com/pocketbase/pocketbase"

	"pocketchat/internal/server"
	_ "pocketchat/pb_migrations"
)

//go:embed all:pb_public
var public embed.FS

func main() {
	app := pocketbase.New()
	cfg, err := server.ConfigFromEnv(os.Getenv)
	if err != nil {
		log.Fatal(err)
	}
	cfg.Public, _ = fs.Sub(public, "pb_public")
	if err := server.RegisterPlugins(app, app.RootCmd, cfg); err != nil {
		log.Fatal(err)
	}
	if _, err := server.Register(app, cfg); err != nil {
		log.Fatal(err)
	}
	if err := app.Start(); err != nil {
		log.Fatal(err)
	}
}
