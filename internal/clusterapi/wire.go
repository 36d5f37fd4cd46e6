// Package clusterapi is the HTTP API the primary offers its edge nodes:
// everything an edge's sessions need from the database (rooms, users,
// history, sends, edits), as JSON under /api/chat/cluster/, behind the
// cluster's shared secret. This package holds the wire forms both sides
// use; internal/server serves them, internal/edge calls them.
package clusterapi

import (
	"errors"
	"time"

	"pocketchat/internal/chat"
)

// Prefix starts every path of the API.
const Prefix = "/api/chat/cluster/"

// Error is a failure as it travels: a chat error's code and words, or a
// refused connection's HTTP status (Status set).
type Error struct {
	Code       chat.Code `json:"code,omitempty"`
	Message    string    `json:"message"`
	RetryAfter int64     `json:"retryAfter,omitempty"` // ms
	Until      time.Time `json:"until,omitzero"`
	Status     int       `json:"status,omitempty"`
}

// FromError is err's wire form.
func FromError(err error) *Error {
	e := &Error{Code: chat.ErrorCode(err), Message: chat.ErrorMessage(err)}
	var ce *chat.Error
	if errors.As(err, &ce) {
		e.RetryAfter = ce.RetryAfter.Milliseconds()
		e.Until = ce.Until
	}
	return e
}

// ChatError is the error again, as the session reports it.
func (e *Error) ChatError() error {
	return &chat.Error{Code: e.Code, Message: e.Message, RetryAfter: time.Duration(e.RetryAfter) * time.Millisecond, Until: e.Until}
}

// Auth asks who a token belongs to, or whether the ticket's user (who
// the edge found in Redis) may still connect.
type Auth struct {
	Token string `json:"token,omitempty"`
	User  string `json:"user,omitempty"`
}

// AuthReply is the user, or the refusal.
type AuthReply struct {
	User  *chat.User `json:"user,omitempty"`
	Error *Error     `json:"error,omitempty"`
}

// UserReply is a user and their standing.
type UserReply struct {
	User     chat.User     `json:"user"`
	Standing chat.Standing `json:"standing"`
}

// Messages is a page of history.
type Messages struct {
	Messages []chat.Message `json:"messages"`
	More     bool           `json:"more"`
}

// Send is one message to save, in an ordered batch.
type Send struct {
	Author string `json:"author"`
	Room   string `json:"room"`
	Text   string `json:"text"`
}

// SendQueued is the first line of a send reply: the batch is in the
// committer's queue, in order, so the edge may send its next batch.
type SendQueued struct {
	Queued int `json:"queued"`
}

// SendResult is one line per message of the batch, in any order: its
// index in the batch and the committed message, or why it was not.
type SendResult struct {
	I       int           `json:"i"`
	Message *chat.Message `json:"message,omitempty"`
	Error   *Error        `json:"error,omitempty"`
}

// Direct asks for the direct room of two users.
type Direct struct {
	A string `json:"a"`
	B string `json:"b"`
}

// Edit is a message's new text.
type Edit struct {
	Text string `json:"text"`
}
