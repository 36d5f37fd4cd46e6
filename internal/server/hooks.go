package server

import (
	"context"
	"database/sql"

	validation "github.com/pocketbase/ozzo-validation/v4"
	"github.com/pocketbase/pocketbase/core"

	"pocketchat/internal/chat"
	"pocketchat/internal/hub"
)

// bindHooks makes the record hooks the one place that broadcasts: a
// message or room saved by any path (WebSocket, REST, SDK, dashboard, Go
// code, JS hooks) reaches WebSocket clients from here, after its commit.
// Each handler calls e.Next() so PocketBase's own realtime (SSE) and the
// handlers bound after ours still run.
func (s *Server) bindHooks() {
	app := s.app
	app.OnRecordCreate(colMessages).BindFunc(s.beforeMessageCreate)
	app.OnRecordAfterCreateSuccess(colMessages).BindFunc(s.messageCreated)
	app.OnRecordAfterCreateError(colMessages).BindFunc(s.messageCreateFailed)
	app.OnRecordUpdate(colMessages).BindFunc(s.beforeMessageUpdate)
	app.OnRecordAfterUpdateSuccess(colMessages).BindFunc(s.messageUpdated)
	app.OnRecordAfterDeleteSuccess(colMessages).BindFunc(s.messageDeleted)

	app.OnRecordAfterCreateSuccess(colRooms).BindFunc(s.roomChanged(chat.ActionCreate))
	app.OnRecordAfterUpdateSuccess(colRooms).BindFunc(s.roomChanged(chat.ActionUpdate))
	app.OnRecordAfterDeleteSuccess(colRooms).BindFunc(s.roomChanged(chat.ActionDelete))

	app.OnRecordAfterUpdateSuccess(colUsers).BindFunc(s.userChanged)
	app.OnRecordAfterDeleteSuccess(colUsers).BindFunc(s.userChanged)

	// The group commit of the chat's messages, and its checks.
	s.bindCommitter()
	s.bindModeration()
}

// normalizeMessage applies the storage rules every message follows,
// whatever path it came by: plain text without control characters, a
// kind, and text or an image.
func normalizeMessage(r *core.Record) error {
	r.Set("text", chat.CleanText(r.GetString("text")))
	if r.GetString("kind") == "" {
		r.Set("kind", string(chat.KindUser))
	}
	if r.GetString("text") == "" && r.GetString("image") == "" && len(r.GetUnsavedFiles("image")) == 0 {
		return validation.Errors{"text": validation.NewError("validation_required", "A message needs text or an image.")}
	}
	return nil
}

func (s *Server) beforeMessageCreate(e *core.RecordEvent) error {
	if err := normalizeMessage(e.Record); err != nil {
		return err
	}
	if err := s.checkStanding(e.Context, e.Record); err != nil {
		return err
	}
	seq, err := s.seq.begin(e.Record, e.Record.GetString("room"))
	if err != nil {
		return err
	}
	e.Record.Set("seq", seq)
	// A failed save is reported to messageCreateFailed, which frees the
	// seq slot so later messages of the room are not held back.
	return e.Next()
}

func (s *Server) messageCreated(e *core.RecordEvent) error {
	// The callback may run later, on another save's goroutine, and
	// PocketBase writes e.App again after the handlers return: capture it.
	rec, app := e.Record, e.App
	s.metrics.messageIn()
	s.seq.done(rec, func() { s.publishMessage(app, chat.EventMessage, rec) })
	return e.Next()
}

func (s *Server) messageCreateFailed(e *core.RecordErrorEvent) error {
	s.seq.done(e.Record, nil)
	return e.Next()
}

func (s *Server) beforeMessageUpdate(e *core.RecordEvent) error {
	if err := normalizeMessage(e.Record); err != nil {
		return err
	}
	return e.Next()
}

func (s *Server) messageUpdated(e *core.RecordEvent) error {
	s.publishMessage(e.App, chat.EventEdited, e.Record)
	return e.Next()
}

func (s *Server) messageDeleted(e *core.RecordEvent) error {
	roomID := e.Record.GetString("room")
	ev := chat.MustEvent(chat.EventDeleted, chat.DeletedPayload{Room: roomID, ID: e.Record.Id})
	ev.Room = roomID
	s.publish(e.App, roomID, ev)
	return e.Next()
}

// publishMessage broadcasts a created or edited message to its room.
func (s *Server) publishMessage(app core.App, typ string, rec *core.Record) {
	msg, err := s.store.message(context.Background(), rec)
	if err != nil {
		app.Logger().Error("chat: cannot broadcast message", "id", rec.Id, "error", err)
		return
	}
	var ev *chat.Event
	if typ == chat.EventEdited {
		ev = chat.MustEvent(typ, chat.EditedPayload{Room: msg.Room, Message: msg})
	} else {
		ev = chat.MustEvent(typ, chat.MessagePayload{Room: msg.Room, Message: msg})
	}
	ev.Room = msg.Room
	s.publish(app, msg.Room, ev)
}

// publish sends a room's event to those who should get it: the
// connections that joined the room, or for a direct room every connection
// of its two members, so a private chat reaches its recipient unopened.
func (s *Server) publish(app core.App, roomID string, ev *chat.Event) {
	to := hub.ToRoom(roomID)
	if room, err := s.store.Room(context.Background(), roomID); err == nil && room.Kind == chat.KindDirect {
		to = hub.ToUsers(room.Members...)
	} else if err != nil && chat.ErrorCode(err) != chat.CodeNotFound {
		app.Logger().Error("chat: cannot look up room", "room", roomID, "error", err)
	}
	if err := s.hub.Publish(context.Background(), hub.Envelope{To: to, Event: ev}); err != nil {
		app.Logger().Error("chat: publish failed", "room", roomID, "type", ev.Type, "error", err)
	}
}

// roomChanged broadcasts room changes to every connection; each session
// works out what the change means for its user (a room appears,
// changes, or disappears along with its messages).
func (s *Server) roomChanged(action string) func(e *core.RecordEvent) error {
	return func(e *core.RecordEvent) error {
		room := roomFromRecord(e.Record)
		if action == chat.ActionDelete {
			s.store.forgetRoom(room.ID)
		} else {
			s.store.rememberRoom(room)
		}
		ev := chat.MustEvent(chat.EventRoom, chat.RoomPayload{Action: action, Room: room})
		ev.Room = room.ID
		if err := s.hub.Publish(context.Background(), hub.Envelope{To: hub.ToAll(), Event: ev}); err != nil {
			e.App.Logger().Error("chat: publish failed", "room", room.ID, "type", ev.Type, "error", err)
		}
		return e.Next()
	}
}

func (s *Server) userChanged(e *core.RecordEvent) error {
	s.store.forgetUser(e.Record.Id)
	s.endBanned(e.App, e.Record)
	return e.Next()
}

// maxSeq reads the highest stored seq, where the sequencer continues.
func maxSeq(app core.App) (int64, error) {
	var seq sql.NullInt64
	err := app.DB().NewQuery("SELECT MAX([[seq]]) FROM {{" + colMessages + "}}").Row(&seq)
	return seq.Int64, err
}
