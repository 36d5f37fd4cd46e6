package chat

import (
	"encoding/json"
	"errors"
	"sync"
	"time"
)

// Event types pushed by the server. They are part of the protocol.
const (
	EventHello    = "hello"
	EventJoined   = "joined"
	EventOpened   = "opened"
	EventLeft     = "left"
	EventPresence = "presence"
	EventOnline   = "online"
	EventMessage  = "message"
	EventAck      = "ack"
	EventHistory  = "history"
	EventTyping   = "typing"
	EventPong     = "pong"
	EventRoom     = "room"
	EventDeleted  = "deleted"
	EventEdited   = "edited"
	EventError    = "error"
	EventResync   = "resync"
)

// EventEnd is never sent as such: it ends the connections it reaches (a
// user's, when they are banned). The session sends the client an error
// with the payload's code and message, then closes the connection with
// the policy-violation code. It travels through the hub like any event,
// so it reaches the user's connections wherever they are.
const EventEnd = "end"

// EventGap is never sent as such either: a node's link to the other nodes
// (the Redis broker) was broken, so events may be missing. Each session
// that gets it sends its client an EventResync for every room it joined,
// and the client resumes from the last message it has.
const EventGap = "gap"

// Room actions carried by EventRoom.
const (
	ActionCreate = "create"
	ActionUpdate = "update"
	ActionDelete = "delete"
)

// Presence statuses carried by EventPresence.
const (
	StatusOnline  = "online"
	StatusOffline = "offline"
)

// Payloads of the events, without their type and request id. Socket.IO
// emits these objects as the event argument; the native codec merges them
// into the frame next to "type" and "id".
type (
	HelloPayload struct {
		User  *User  `json:"user"` // nil for guests
		Rooms []Room `json:"rooms"`
	}
	JoinedPayload struct {
		Room string `json:"room"`
		// Online lists the first users online by name, at most the
		// server's presence limit (CHAT_PRESENCE_LIMIT).
		Online []User `json:"online"`
		// OnlineCount counts every user online in the room.
		OnlineCount int `json:"online_count"`
		// Summary is true while the room announces counts (EventOnline)
		// instead of each user's presence: it has too many users online.
		Summary  bool      `json:"summary"`
		Messages []Message `json:"messages"`
		More     bool      `json:"more"` // older messages exist
	}
	// ResyncPayload tells a client that events of a room may have been
	// lost (a server's link to the others broke and came back): it
	// resumes the room from its last message, and replaces who is online
	// with this list.
	ResyncPayload struct {
		Room        string `json:"room"`
		Online      []User `json:"online"`
		OnlineCount int    `json:"online_count"`
		Summary     bool   `json:"summary"`
	}
	OpenedPayload struct {
		Room Room `json:"room"`
	}
	LeftPayload struct {
		Room string `json:"room"`
	}
	PresencePayload struct {
		Room   string `json:"room"`
		User   User   `json:"user"`
		Status string `json:"status"`
	}
	// OnlinePayload is a room's presence summary. With Summary true the
	// room stopped announcing users (or its count changed since); with
	// Summary false it announces them again from now on, and Online is
	// everyone online, replacing what the client had.
	OnlinePayload struct {
		Room        string `json:"room"`
		OnlineCount int    `json:"online_count"`
		Summary     bool   `json:"summary"`
		Online      []User `json:"online,omitzero"` // nil (left out) when Summary
	}
	MessagePayload struct {
		Room    string  `json:"room"`
		Message Message `json:"message"`
	}
	AckPayload struct {
		Message Message `json:"message"`
	}
	HistoryPayload struct {
		Room     string    `json:"room"`
		Messages []Message `json:"messages"`
		More     bool      `json:"more"`
	}
	TypingPayload struct {
		Room string `json:"room"`
		User User   `json:"user"`
	}
	RoomPayload struct {
		Action string `json:"action"`
		Room   Room   `json:"room"`
	}
	DeletedPayload struct {
		Room string `json:"room"`
		ID   string `json:"id"`
	}
	EditedPayload struct {
		Room    string  `json:"room"`
		Message Message `json:"message"`
	}
	ErrorPayload struct {
		Code       Code      `json:"code"`
		Message    string    `json:"message"`
		RetryAfter int64     `json:"retryAfter,omitempty"` // milliseconds, for rate_limited
		Until      time.Time `json:"until,omitzero"`       // when a mute ends, for forbidden
	}
	// EndPayload is the payload of EventEnd.
	EndPayload struct {
		Code    Code   `json:"code"`
		Message string `json:"message"`
	}
	PongPayload struct{}
)

// MaxCodecs bounds the number of wire encodings an Event caches.
const MaxCodecs = 4

// Encoder turns an event into the bytes of one wire protocol. Slot is a
// distinct index below MaxCodecs under which the event caches the result.
type Encoder interface {
	Slot() int
	Encode(e *Event) []byte
}

// Event is one thing pushed to clients. A broadcast event is built once and
// the same value, with the same encoded bytes, goes to every receiver.
type Event struct {
	Type    string
	ReplyTo json.RawMessage // the id of the request this answers; nil for broadcasts
	Payload json.RawMessage // the payload object, encoded once

	// Routing, never sent to clients.
	Room  string // the room the event is about, "" if none
	Actor string // the user who caused it: typing and presence skip that user's connections
	Data  any    // the payload value, for in-process receivers (room changes)

	enc [MaxCodecs]struct {
		once sync.Once
		b    []byte
	}
}

// NewEvent builds an event with its payload encoded as JSON.
func NewEvent(typ string, payload any) (*Event, error) {
	b, err := json.Marshal(payload)
	if err != nil {
		return nil, err
	}
	return &Event{Type: typ, Payload: b, Data: payload}, nil
}

// MustEvent is NewEvent for payloads that cannot fail to encode: the
// payload types above hold only strings, numbers, bools and times.
func MustEvent(typ string, payload any) *Event {
	e, err := NewEvent(typ, payload)
	if err != nil {
		panic("chat: encoding " + typ + " payload: " + err.Error())
	}
	return e
}

// ErrorEvent builds the error reply to a request.
func ErrorEvent(replyTo json.RawMessage, err error) *Event {
	p := ErrorPayload{Code: ErrorCode(err), Message: ErrorMessage(err)}
	// errors.As, like ErrorCode: a wrapped rate_limited error keeps its wait.
	if e := (*Error)(nil); errors.As(err, &e) {
		// Rounded up: a client that waits exactly as long gets through.
		p.RetryAfter = int64((e.RetryAfter + time.Millisecond - 1) / time.Millisecond)
		p.Until = e.Until
	}
	ev := MustEvent(EventError, p)
	ev.ReplyTo = replyTo
	return ev
}

// Encoded returns the event in enc's wire format, encoding it on first use
// only; it is safe for concurrent use.
func (e *Event) Encoded(enc Encoder) []byte {
	s := &e.enc[enc.Slot()]
	s.once.Do(func() { s.b = enc.Encode(e) })
	return s.b
}
