package server

import (
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/plugins/jsvm"
	"github.com/pocketbase/pocketbase/plugins/migratecmd"
	"github.com/spf13/cobra"
)

// RegisterPlugins turns on PocketBase's JS hooks (pb_hooks/*.pb.js, so
// operators extend the chat without recompiling) and the migrate command.
// The chat core stays in Go; hooks see the same record events.
func RegisterPlugins(app core.App, root *cobra.Command, cfg Config) error {
	if err := jsvm.Register(app, jsvm.Config{
		HooksDir:      cfg.HooksDir,
		HooksPoolSize: cfg.HooksPool,
	}); err != nil {
		return err
	}
	// Go migrations live in pb_migrations and are compiled in; the
	// dashboard does not write new ones (Automigrate off) so a running
	// binary never depends on files it cannot compile.
	return migratecmd.Register(app, root, migratecmd.Config{
		Dir:          "pb_migrations",
		TemplateLang: migratecmd.TemplateLangGo,
	})
}
