package pb_migrations

import (
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// Images in messages become protected files. PocketBase then checks the
// messages' view rule before it serves one, so an image URL from a
// private room or a private chat is no use to anyone outside it: its
// members add a short-lived file token (POST /api/files/token) as
// ?token=…. Images of public rooms stay viewable by anyone, guests too,
// since the view rule lets everyone see their messages.
func init() {
	m.Register(func(app core.App) error {
		return setImageProtected(app, true)
	}, func(app core.App) error {
		return setImageProtected(app, false)
	})
}

func setImageProtected(app core.App, protected bool) error {
	messages, err := app.FindCollectionByNameOrId("messages")
	if err != nil {
		// Down after the schema's down: nothing left to change.
		if !protected {
			return nil
		}
		return fmt.Errorf("find messages collection: %w", err)
	}
	image, ok := messages.Fields.GetByName("image").(*core.FileField)
	if !ok {
		return fmt.Errorf("messages.image is not a file field")
	}
	if image.Protected == protected {
		return nil
	}
	image.Protected = protected
	return app.Save(messages)
}
