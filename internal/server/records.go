package server

import (
	"net/url"

	"github.com/pocketbase/pocketbase/core"

	"pocketchat/internal/chat"
)

// Collection names of the chat schema (pb_migrations).
const (
	colUsers    = "users"
	colRooms    = "rooms"
	colMessages = "messages"
)

// thumbSize is the messages.image thumbnail declared in the schema.
const thumbSize = "200x200"

func fileURL(collection, recordID, name string) string {
	if name == "" {
		return ""
	}
	return "/api/files/" + collection + "/" + recordID + "/" + url.PathEscape(name)
}

func userFromRecord(r *core.Record) chat.User {
	return chat.User{
		ID:     r.Id,
		Name:   r.GetString("name"),
		Avatar: fileURL(colUsers, r.Id, r.GetString("avatar")),
		Bot:    r.GetBool("bot"),
	}
}

func roomFromRecord(r *core.Record) chat.Room {
	members := r.GetStringSlice("members")
	if members == nil {
		members = []string{}
	}
	return chat.Room{
		ID:          r.Id,
		Name:        r.GetString("name"),
		Description: r.GetString("description"),
		Kind:        chat.RoomKind(r.GetString("kind")),
		Members:     members,
		Owner:       r.GetString("owner"),
		Created:     r.GetDateTime("created").Time(),
		Updated:     r.GetDateTime("updated").Time(),
	}
}

// messageFromRecord converts a message; author is looked up by the caller
// (from the user cache) since the record holds only the author's id.
func messageFromRecord(r *core.Record, author chat.User) chat.Message {
	m := chat.Message{
		ID:      r.Id,
		Room:    r.GetString("room"),
		Seq:     int64(r.GetInt("seq")),
		Author:  author,
		Text:    r.GetString("text"),
		Kind:    chat.MessageKind(r.GetString("kind")),
		Created: r.GetDateTime("created").Time(),
		Updated: r.GetDateTime("updated").Time(),
	}
	if img := r.GetString("image"); img != "" {
		m.Image = fileURL(colMessages, r.Id, img)
		m.Thumb = m.Image + "?thumb=" + thumbSize
	}
	if m.Kind == "" {
		m.Kind = chat.KindUser
	}
	return m
}
