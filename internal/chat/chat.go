// Package chat holds pocketchat's domain: users, rooms and messages, the
// requests clients send, the events the server pushes back and the error
// codes both speak. It depends on the standard library only, so the hub,
// the codecs and the session logic can be tested without PocketBase.
package chat

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// RoomKind says who can read a room.
type RoomKind string

// The kinds of room.
const (
	// KindPublic rooms are readable by everyone, guests included, and
	// writable by every signed-in user.
	KindPublic RoomKind = "public"
	// KindPrivate rooms are readable and writable by their members only.
	KindPrivate RoomKind = "private"
	// KindDirect rooms hold the private chat of exactly two users.
	KindDirect RoomKind = "direct"
)

// Valid reports whether k is one of the known kinds.
func (k RoomKind) Valid() bool {
	return k == KindPublic || k == KindPrivate || k == KindDirect
}

// MessageKind says who wrote a message.
type MessageKind string

// The kinds of message.
const (
	KindUser   MessageKind = "user"
	KindBot    MessageKind = "bot"
	KindSystem MessageKind = "system"
)

// User is the public face of an account: never its email.
type User struct {
	ID     string `json:"id"`
	Name   string `json:"name"`
	Avatar string `json:"avatar"` // URL path of the avatar image, "" if none
	Bot    bool   `json:"bot,omitempty"`
}

// Standing is what moderators decided about a user: banned (no
// connections, no sign-in, no writes), or muted until a time (reads, no
// writes). Set from the dashboard on the user's record.
type Standing struct {
	Banned     bool
	MutedUntil time.Time // zero: not muted
}

// Muted reports whether the user may not write at now for a mute.
func (s Standing) Muted(now time.Time) bool { return now.Before(s.MutedUntil) }

// CheckWrite returns the error a write gets from a user in this
// standing at now, nil if they may write.
func (s Standing) CheckWrite(now time.Time) error {
	switch {
	case s.Banned:
		return Errorf(CodeForbidden, "you are banned")
	case s.Muted(now):
		e := Errorf(CodeForbidden, "you are muted until %s", s.MutedUntil.UTC().Format(time.RFC3339))
		e.Until = s.MutedUntil.UTC()
		return e
	}
	return nil
}

// Room is a place where messages are exchanged.
type Room struct {
	ID          string    `json:"id"`
	Name        string    `json:"name"`
	Description string    `json:"description"`
	Kind        RoomKind  `json:"kind"`
	Members     []string  `json:"members"` // user ids; only meaningful for private and direct rooms
	Owner       string    `json:"owner"`
	Created     time.Time `json:"created"`
	Updated     time.Time `json:"updated"`
}

// CanRead reports whether the user with the given id ("" for a guest) may
// see the room and its messages. It is the same rule the PocketBase
// collections enforce for REST and SSE.
func (r *Room) CanRead(userID string) bool {
	if r.Kind == KindPublic {
		return true
	}
	return userID != "" && slices.Contains(r.Members, userID)
}

// CanWrite reports whether the user may post in the room. Guests never may.
func (r *Room) CanWrite(userID string) bool {
	return userID != "" && r.CanRead(userID)
}

// DirectRoomName is the unique name of the direct room of two users. It is
// the same whichever of the two asks, so the unique index on room names
// guarantees a single direct room per pair even under concurrent requests.
func DirectRoomName(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return "dm:" + a + ":" + b
}

// Message is one chat message as clients see it.
type Message struct {
	ID      string      `json:"id"`
	Room    string      `json:"room"`
	Seq     int64       `json:"seq"` // position in the room's history; increases with commit order
	Author  User        `json:"author"`
	Text    string      `json:"text"`
	Image   string      `json:"image,omitempty"` // URL path of the full image
	Thumb   string      `json:"thumb,omitempty"` // URL path of its thumbnail
	Kind    MessageKind `json:"kind"`
	Created time.Time   `json:"created"`
	Updated time.Time   `json:"updated"`
}

// CheckEdit returns the error an edit of the message by the user ("" for
// a guest) gets at now, nil if they may edit it: authors edit their own
// messages within window of posting (0: at any time), so a conversation
// cannot be rewritten long after others answered it. Superusers are not
// users and are not asked.
func (m *Message) CheckEdit(userID string, now time.Time, window time.Duration) error {
	if err := m.CheckDelete(userID); err != nil {
		return err
	}
	if window > 0 && now.Sub(m.Created) > window {
		return Errorf(CodeForbidden, "messages can be edited for %s after they are posted", humanDuration(window))
	}
	return nil
}

// humanDuration spells a window the way people read it: "15 minutes",
// "2 hours", "90 seconds".
func humanDuration(d time.Duration) string {
	n, unit := int64(d/time.Second), "second"
	switch {
	case d >= time.Hour && d%time.Hour == 0:
		n, unit = int64(d/time.Hour), "hour"
	case d >= time.Minute && d%time.Minute == 0:
		n, unit = int64(d/time.Minute), "minute"
	case d%time.Second != 0:
		return d.String()
	}
	if n != 1 {
		unit += "s"
	}
	return fmt.Sprintf("%d %s", n, unit)
}

// CheckDelete returns the error a deletion of the message by the user
// gets, nil if they may delete it: authors delete their own messages at
// any time.
func (m *Message) CheckDelete(userID string) error {
	switch {
	case userID == "":
		return Errorf(CodeAuthRequired, "sign in to write")
	case m.Author.ID != userID || m.Kind != KindUser:
		return Errorf(CodeForbidden, "only its author may change a message")
	}
	return nil
}

// MaxTextLen is the longest message text, in characters.
const MaxTextLen = 4000

// CleanText normalizes message text the way it is stored: line endings become
// "\n", every other control character is dropped, and surrounding white space
// is trimmed. Text is stored as plain text; clients escape it on display.
func CleanText(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	clean := strings.Map(func(r rune) rune {
		switch {
		case r == '\n':
			return r
		case r < 0x20, r == 0x7f, r >= 0x80 && r < 0xa0:
			return -1
		case r == '\u2028', r == '\u2029', r == '\ufeff':
			return -1
		}
		return r
	}, s)
	return strings.TrimSpace(clean)
}
