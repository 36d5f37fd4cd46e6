// Package pb_migrations holds the chat server's PocketBase schema migrations.
//
// The package registers its migrations with core.AppMigrations from init
// functions, so a binary (or test) only has to blank-import it; PocketBase
// applies them on `serve` (and tests.NewTestApp applies them itself). Each
// migration is written to be idempotent: its up converges an existing
// database to the wanted state instead of assuming a blank one, because an
// operator may already have created some of these things in the dashboard or
// restored a backup made half-way through.
package pb_migrations

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
	"github.com/pocketbase/pocketbase/tools/types"
)

// Collection names and the system id of the users collection. The users
// collection is looked up by id so the migration still finds it if an
// operator renamed it; the rules below nevertheless compare
// @request.auth.collectionName with "users", so renaming it would lock users
// out of posting (superusers are unaffected).
const (
	usersCollectionId  = "_pb_users_auth_"
	roomsCollection    = "rooms"
	messagesCollection = "messages"
)

// maxUploadSize is the per-file limit for avatars and message images.
const maxUploadSize = 5 << 20 // 5 MiB = 5242880 bytes

// imageMimeTypes are the raster formats browsers render inline. SVG (which
// the default users.avatar allows) is left out on purpose: an SVG served
// from our origin can carry script.
var imageMimeTypes = []string{"image/png", "image/jpeg", "image/gif", "image/webp"}

// Rules for the users collection.
//
// Any signed-in user may list and view other users (a chat shows who wrote a
// message), but emailVisibility is forced to stay false, so PocketBase keeps
// the email out of every response except the owner's own. A client can never
// make itself a bot, lift its own ban or publish its email: bot and banned
// are only changed by superusers or server code (app.Save skips rules).
//
// On sign-up the body may omit the flags or send them as false. On update a
// client may omit them or echo the stored value, but not change it: a rule
// that merely accepted `banned = false` would let a banned user send
// {"banned": false} and unban themselves (and a bot account drop its bot
// flag). Echoing is allowed because SDK forms often send the whole record.
const (
	usersCreateGuard = `(@request.body.bot:isset = false || @request.body.bot = false)` +
		` && (@request.body.banned:isset = false || @request.body.banned = false)` +
		` && (@request.body.emailVisibility:isset = false || @request.body.emailVisibility = false)`
	usersUpdateGuard = `(@request.body.bot:isset = false || @request.body.bot = bot)` +
		` && (@request.body.banned:isset = false || @request.body.banned = banned)` +
		` && (@request.body.emailVisibility:isset = false || @request.body.emailVisibility = false)`

	usersListRule   = `@request.auth.id != ""`
	usersViewRule   = `@request.auth.id != ""`
	usersCreateRule = usersCreateGuard
	usersUpdateRule = `id = @request.auth.id && ` + usersUpdateGuard
	usersDeleteRule = `id = @request.auth.id`
)

// Rules for the rooms collection.
//
// Public rooms are readable by everyone, guests included; private and
// direct rooms only by their members. The explicit `@request.auth.id != ""`
// guard matters: for a guest @request.auth.id resolves to "" and PocketBase
// compares through COALESCE(x, <empty string>), so `members.id ?= ""` is true for a room
// with no members at all. Users create public or private rooms that they
// own; direct rooms are made by server code only, and nobody can turn a room
// into a direct one, move its ownership away or edit/delete a direct room
// through the REST API.
const (
	roomsListRule   = `kind = "public" || (@request.auth.id != "" && members.id ?= @request.auth.id)`
	roomsViewRule   = roomsListRule
	roomsCreateRule = `@request.auth.collectionName = "users" && @request.auth.banned = false` +
		` && owner = @request.auth.id && (kind = "public" || kind = "private")`
	roomsUpdateRule = `@request.auth.collectionName = "users" && owner = @request.auth.id && kind != "direct"` +
		` && (@request.body.owner:isset = false || @request.body.owner = @request.auth.id)` +
		` && (@request.body.kind:isset = false || @request.body.kind != "direct")`
	roomsDeleteRule = `@request.auth.collectionName = "users" && owner = @request.auth.id && kind != "direct"`
)

// Rules for the messages collection.
//
// A message is readable wherever its room is. Users post as themselves, into
// public rooms or rooms they are members of, and only "user" messages: bot
// and system messages and the seq number are written by server code. An edit
// may change the content (text, image) but never move the message, change
// its author, kind or seq. Banned users can neither post nor edit but can
// still delete their own messages.
const (
	messagesListRule   = `room.kind = "public" || (@request.auth.id != "" && room.members.id ?= @request.auth.id)`
	messagesViewRule   = messagesListRule
	messagesCreateRule = `@request.auth.collectionName = "users" && @request.auth.banned = false` +
		` && author = @request.auth.id` +
		` && (room.kind = "public" || room.members.id ?= @request.auth.id)` +
		` && (@request.body.kind:isset = false || @request.body.kind = "user")` +
		` && @request.body.seq:isset = false`
	messagesUpdateRule = `@request.auth.collectionName = "users" && @request.auth.banned = false` +
		` && author = @request.auth.id` +
		` && @request.body.room:isset = false && @request.body.author:isset = false` +
		` && @request.body.kind:isset = false && @request.body.seq:isset = false`
	messagesDeleteRule = `@request.auth.collectionName = "users" && author = @request.auth.id`
)

// Index names. The seq index is partial: seq is a NOT NULL number column
// whose default is 0, so rows that server code has not numbered (yet) would
// otherwise collide with each other.
const (
	idxRoomsName          = "idx_rooms_name"
	idxMessagesRoomCreate = "idx_messages_room_created"
	idxMessagesRoomSeq    = "idx_messages_room_seq"
)

func init() {
	m.Register(chatSchemaUp, chatSchemaDown)
}

// chatSchemaUp extends users and creates (or converges) rooms and messages.
func chatSchemaUp(app core.App) error {
	users, err := app.FindCollectionByNameOrId(usersCollectionId)
	if err != nil {
		return fmt.Errorf("find users collection: %w", err)
	}
	if err := extendUsers(app, users); err != nil {
		return err
	}

	rooms, err := upsertRooms(app, users)
	if err != nil {
		return err
	}

	return upsertMessages(app, users, rooms)
}

// chatSchemaDown drops messages, then rooms (messages.room points at rooms,
// and PocketBase refuses to delete a collection that is still referenced),
// then puts the users collection back the way PocketBase created it.
func chatSchemaDown(app core.App) error {
	for _, name := range []string{messagesCollection, roomsCollection} {
		c, err := findCollection(app, name)
		if err != nil {
			return err
		}
		if c == nil {
			continue
		}
		if err := app.Delete(c); err != nil {
			return fmt.Errorf("delete %s collection: %w", name, err)
		}
	}

	users, err := findCollection(app, usersCollectionId)
	if err != nil || users == nil {
		return err // nothing to restore if users is gone
	}
	return restoreUsers(app, users)
}

// extendUsers tightens the name and avatar fields, adds the bot and banned
// flags and replaces the owner-only default rules. Fields are modified in
// place (keeping their ids), so existing user data is kept.
func extendUsers(app core.App, users *core.Collection) error {
	name, _ := users.Fields.GetByName("name").(*core.TextField)
	if name == nil {
		name = &core.TextField{Name: "name"}
		users.Fields.Add(name)
	}
	// Display names are shown next to every message: keep them present and
	// short. Existing longer or empty names stay in the database but must be
	// fixed on the user's next update.
	name.Required = true
	name.Max = 50

	avatar, _ := users.Fields.GetByName("avatar").(*core.FileField)
	if avatar == nil {
		avatar = &core.FileField{Name: "avatar"}
		users.Fields.Add(avatar)
	}
	avatar.MaxSelect = 1
	avatar.MaxSize = maxUploadSize
	avatar.MimeTypes = append([]string(nil), imageMimeTypes...)
	avatar.Thumbs = []string{"100x100"} // the size the member list and message list render

	// bot marks accounts driven by server code; banned blocks posting. Both
	// are plain booleans (false by default), so adding them needs no backfill.
	for _, flag := range []string{"bot", "banned"} {
		if _, ok := users.Fields.GetByName(flag).(*core.BoolField); !ok {
			users.Fields.Add(&core.BoolField{Name: flag})
		}
	}

	users.ListRule = types.Pointer(usersListRule)
	users.ViewRule = types.Pointer(usersViewRule)
	users.CreateRule = types.Pointer(usersCreateRule)
	users.UpdateRule = types.Pointer(usersUpdateRule)
	users.DeleteRule = types.Pointer(usersDeleteRule)

	if err := app.Save(users); err != nil {
		return fmt.Errorf("save users collection: %w", err)
	}
	return nil
}

// Defaults of the users collection as created by PocketBase v0.40.4's
// system migration (migrations/1640988000_init.go), which restoreUsers puts
// back.
const (
	defaultUsersOwnerRule = "id = @request.auth.id"
	defaultUsersNameMax   = 255
)

var defaultAvatarMimeTypes = []string{"image/jpeg", "image/png", "image/svg+xml", "image/gif", "image/webp"}

// restoreUsers reverses extendUsers.
func restoreUsers(app core.App, users *core.Collection) error {
	users.Fields.RemoveByName("bot")
	users.Fields.RemoveByName("banned")

	if name, ok := users.Fields.GetByName("name").(*core.TextField); ok {
		name.Required = false
		name.Max = defaultUsersNameMax
	}
	if avatar, ok := users.Fields.GetByName("avatar").(*core.FileField); ok {
		avatar.MaxSelect = 1
		avatar.MaxSize = 0 // 0 = PocketBase's default limit
		avatar.MimeTypes = append([]string(nil), defaultAvatarMimeTypes...)
		avatar.Thumbs = nil
	}

	users.ListRule = types.Pointer(defaultUsersOwnerRule)
	users.ViewRule = types.Pointer(defaultUsersOwnerRule)
	users.CreateRule = types.Pointer("")
	users.UpdateRule = types.Pointer(defaultUsersOwnerRule)
	users.DeleteRule = types.Pointer(defaultUsersOwnerRule)

	if err := app.Save(users); err != nil {
		return fmt.Errorf("restore users collection: %w", err)
	}
	return nil
}

// upsertRooms creates the rooms collection, or brings an existing one to
// the wanted fields, rules and indexes. FieldsList.Add replaces a field of
// the same name in place and keeps its id, so a re-run keeps the data.
func upsertRooms(app core.App, users *core.Collection) (*core.Collection, error) {
	rooms, err := findCollection(app, roomsCollection)
	if err != nil {
		return nil, err
	}
	if rooms == nil {
		rooms = core.NewBaseCollection(roomsCollection)
	}

	rooms.Fields.Add(
		&core.TextField{Name: "name", Required: true, Max: 100, Presentable: true},
		&core.TextField{Name: "description", Max: 500},
		&core.SelectField{
			Name:      "kind",
			Values:    []string{"public", "private", "direct"},
			MaxSelect: 1,
			Required:  true,
		},
		// Membership matters for private and direct rooms only; a public
		// room is open to all, so members may be empty. The upper bound is
		// a sanity limit on the JSON array, not a product decision.
		&core.RelationField{Name: "members", CollectionId: users.Id, MaxSelect: 10000},
		// Not required: seeded rooms (General) and direct rooms have no owner.
		&core.RelationField{Name: "owner", CollectionId: users.Id, MaxSelect: 1},
		&core.AutodateField{Name: "created", OnCreate: true},
		&core.AutodateField{Name: "updated", OnCreate: true, OnUpdate: true},
	)

	rooms.AddIndex(idxRoomsName, true, "`name`", "")

	rooms.ListRule = types.Pointer(roomsListRule)
	rooms.ViewRule = types.Pointer(roomsViewRule)
	rooms.CreateRule = types.Pointer(roomsCreateRule)
	rooms.UpdateRule = types.Pointer(roomsUpdateRule)
	rooms.DeleteRule = types.Pointer(roomsDeleteRule)

	if err := app.Save(rooms); err != nil {
		return nil, fmt.Errorf("save rooms collection: %w", err)
	}
	return rooms, nil
}

// upsertMessages creates or converges the messages collection.
func upsertMessages(app core.App, users, rooms *core.Collection) error {
	messages, err := findCollection(app, messagesCollection)
	if err != nil {
		return err
	}
	if messages == nil {
		messages = core.NewBaseCollection(messagesCollection)
	}

	messages.Fields.Add(
		// Deleting a room deletes its messages.
		&core.RelationField{
			Name:          "room",
			CollectionId:  rooms.Id,
			MaxSelect:     1,
			Required:      true,
			CascadeDelete: true,
		},
		// Not required and no cascade: system messages have no author, and
		// a deleted account leaves its messages behind with an empty author.
		&core.RelationField{Name: "author", CollectionId: users.Id, MaxSelect: 1},
		&core.TextField{Name: "text", Max: 4000},
		&core.FileField{
			Name:      "image",
			MaxSelect: 1,
			MaxSize:   maxUploadSize,
			MimeTypes: append([]string(nil), imageMimeTypes...),
			Thumbs:    []string{"200x200"},
		},
		// Not required: server code fills "user" when a client leaves it out.
		&core.SelectField{Name: "kind", Values: []string{"user", "bot", "system"}, MaxSelect: 1},
		// The message's position in its room in commit order, assigned by
		// server code; 0 means "not numbered".
		&core.NumberField{Name: "seq", OnlyInt: true},
		&core.AutodateField{Name: "created", OnCreate: true},
		&core.AutodateField{Name: "updated", OnCreate: true, OnUpdate: true},
	)

	// History pages are "messages of room X by time"; seq must be unique
	// within a room once assigned.
	messages.AddIndex(idxMessagesRoomCreate, false, "`room`, `created`", "")
	messages.AddIndex(idxMessagesRoomSeq, true, "`room`, `seq`", "`seq` > 0")

	messages.ListRule = types.Pointer(messagesListRule)
	messages.ViewRule = types.Pointer(messagesViewRule)
	messages.CreateRule = types.Pointer(messagesCreateRule)
	messages.UpdateRule = types.Pointer(messagesUpdateRule)
	messages.DeleteRule = types.Pointer(messagesDeleteRule)

	if err := app.Save(messages); err != nil {
		return fmt.Errorf("save messages collection: %w", err)
	}
	return nil
}

// findCollection returns the named collection, or nil if there is none.
func findCollection(app core.App, nameOrId string) (*core.Collection, error) {
	c, err := app.FindCollectionByNameOrId(nameOrId)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find %s collection: %w", nameOrId, err)
	}
	return c, nil
}
