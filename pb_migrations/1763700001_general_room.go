package pb_migrations

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/pocketbase/pocketbase/core"
	m "github.com/pocketbase/pocketbase/migrations"
)

// GeneralRoomName is the name of the public room every installation starts
// with, so a fresh server has somewhere to talk (and a known room for the
// bot and for tests).
const GeneralRoomName = "General"

const generalRoomDescription = "Everyone's room"

func init() {
	m.Register(generalRoomUp, generalRoomDown)
}

// generalRoomUp creates the General room unless a room with that name
// already exists (whatever its other fields: an operator may have edited
// the description, and the unique name index would refuse a second one
// anyway).
func generalRoomUp(app core.App) error {
	existing, err := findGeneralRoom(app)
	if err != nil || existing != nil {
		return err
	}

	rooms, err := app.FindCollectionByNameOrId(roomsCollection)
	if err != nil {
		return fmt.Errorf("find rooms collection: %w", err)
	}

	room := core.NewRecord(rooms)
	room.Set("name", GeneralRoomName)
	room.Set("description", generalRoomDescription)
	room.Set("kind", "public")
	if err := app.Save(room); err != nil {
		return fmt.Errorf("create %s room: %w", GeneralRoomName, err)
	}
	return nil
}

// generalRoomDown deletes the General room if it is there. Its messages go
// with it (messages.room cascades).
func generalRoomDown(app core.App) error {
	room, err := findGeneralRoom(app)
	if err != nil || room == nil {
		return err
	}
	if err := app.Delete(room); err != nil {
		return fmt.Errorf("delete %s room: %w", GeneralRoomName, err)
	}
	return nil
}

// findGeneralRoom returns the General room, or nil if there is none (or no
// rooms collection at all).
func findGeneralRoom(app core.App) (*core.Record, error) {
	rooms, err := findCollection(app, roomsCollection)
	if err != nil || rooms == nil {
		return nil, err
	}
	room, err := app.FindFirstRecordByData(rooms, "name", GeneralRoomName)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("find %s room: %w", GeneralRoomName, err)
	}
	return room, nil
}
