package server_test

import (
	"net/http"
	"testing"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"pocketchat/internal/server"
)

// serveTestApp registers the chat on a fresh migrated test app with cfg
// and triggers OnServe as apis.Serve would, once per app (PocketBase's
// router can be built only once per app). It returns the app, the chat
// and the routes' handler, for a real listener when a test needs one.
func serveTestApp(t *testing.T, cfg server.Config) (*tests.TestApp, *server.Server, http.Handler) {
	t.Helper()
	app, err := tests.NewTestApp(t.TempDir())
	if err != nil {
		t.Fatalf("NewTestApp: %v", err)
	}
	t.Cleanup(app.Cleanup) // triggers OnTerminate: the chat and its bot stop first
	srv, err := server.Register(app, cfg)
	if err != nil {
		t.Fatalf("Register: %v", err)
	}
	router, err := apis.NewRouter(app)
	if err != nil {
		t.Fatal(err)
	}
	se := &core.ServeEvent{Router: router}
	se.App = app
	if err := app.OnServe().Trigger(se, func(*core.ServeEvent) error { return nil }); err != nil {
		t.Fatalf("OnServe: %v", err)
	}
	mux, err := router.BuildMux()
	if err != nil {
		t.Fatal(err)
	}
	return app, srv, mux
}
