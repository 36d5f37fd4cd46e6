// Command pocketchat is a real-time chat server: PocketBase (auth, the
// admin dashboard, SQLite) with a WebSocket chat on top.
package main

import (
	"embed"
	"io/fs"
	"log"
	"os"

	"github.com/pocketbase/pocketbase"

	"pocketchat/internal/edge"
	"pocketchat/internal/server"
	_ "pocketchat/pb_migrations"
)

//go:embed all:pb_public
var public embed.FS

func main() {
	files, _ := fs.Sub(public, "pb_public")
	if len(os.Args) > 1 && os.Args[1] == "edge" {
		// An edge node: chat connections only, the rest at the primary.
		if err := edge.Main(os.Args[2:], os.Getenv, files, os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}
	app := pocketbase.New()
	cfg, err := server.ConfigFromEnv(os.Getenv)
	if err != nil {
		log.Fatal(err)
	}
	cfg.Public = files
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
