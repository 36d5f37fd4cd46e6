package chat

import (
	"encoding/json"
	"strings"
)

// Request types sent by clients. They are part of the protocol.
const (
	RequestJoin    = "join"
	RequestLeave   = "leave"
	RequestSend    = "send"
	RequestDM      = "dm"
	RequestOpen    = "open"
	RequestHistory = "history"
	RequestResume  = "resume"
	RequestTyping  = "typing"
	RequestPing    = "ping"
	RequestEdit    = "edit"
	RequestDelete  = "delete"
)

// Paging limits for history and resume.
const (
	DefaultPageSize = 50
	MaxPageSize     = 100
)

// Request is one client command, whatever protocol carried it. Fields a
// type does not use are ignored.
type Request struct {
	Type   string          `json:"type"`
	ID     json.RawMessage `json:"id,omitempty"` // echoed in the reply; a string or a number
	Room   string          `json:"room,omitempty"`
	Text   string          `json:"text,omitempty"`
	To     string          `json:"to,omitempty"`
	Before string          `json:"before,omitempty"`
	After  string          `json:"after,omitempty"`
	Limit  int             `json:"limit,omitempty"`
	// Message is the id of the message an edit or delete is about.
	Message string `json:"message,omitempty"`
}

// MaxIDLen bounds the request id a client may ask to have echoed.
const MaxIDLen = 64

// ValidID reports whether raw is an acceptable request id: absent, a JSON
// string or a JSON number, no longer than MaxIDLen bytes.
func ValidID(raw json.RawMessage) bool {
	if len(raw) == 0 {
		return true
	}
	if len(raw) > MaxIDLen {
		return false
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return false
	}
	switch v.(type) {
	case string, float64:
		return true
	}
	return false
}

// Validate checks that the request has the fields its type needs, and
// normalizes its text. It returns a CodeBadRequest or CodeTooLarge *Error.
func (r *Request) Validate() error {
	switch r.Type {
	case RequestJoin, RequestLeave, RequestTyping:
		return needRoom(r)
	case RequestSend:
		if err := needRoom(r); err != nil {
			return err
		}
		return r.cleanText()
	case RequestDM:
		if err := needTo(r); err != nil {
			return err
		}
		return r.cleanText()
	case RequestOpen:
		return needTo(r)
	case RequestHistory:
		if err := needRoom(r); err != nil {
			return err
		}
		return r.checkLimit()
	case RequestResume:
		if err := needRoom(r); err != nil {
			return err
		}
		if r.After == "" {
			return Errorf(CodeBadRequest, "resume needs \"after\": the id of the last message received")
		}
		return r.checkLimit()
	case RequestEdit:
		if err := needMessage(r); err != nil {
			return err
		}
		return r.cleanText()
	case RequestDelete:
		return needMessage(r)
	case RequestPing:
		return nil
	case "":
		return Errorf(CodeBadRequest, "missing \"type\"")
	}
	return Errorf(CodeBadRequest, "unknown type %q", truncate(r.Type, 32))
}

func needRoom(r *Request) error {
	if strings.TrimSpace(r.Room) == "" {
		return Errorf(CodeBadRequest, "%s needs a \"room\"", r.Type)
	}
	return nil
}

func needTo(r *Request) error {
	if strings.TrimSpace(r.To) == "" {
		return Errorf(CodeBadRequest, "%s needs a \"to\" user id", r.Type)
	}
	return nil
}

func needMessage(r *Request) error {
	if strings.TrimSpace(r.Message) == "" {
		return Errorf(CodeBadRequest, "%s needs a \"message\": the id of the message", r.Type)
	}
	return nil
}

func (r *Request) cleanText() error {
	r.Text = CleanText(r.Text)
	if r.Text == "" {
		return Errorf(CodeBadRequest, "%s needs a non-empty \"text\"", r.Type)
	}
	if n := len([]rune(r.Text)); n > MaxTextLen {
		return Errorf(CodeTooLarge, "text has %d characters, the limit is %d", n, MaxTextLen)
	}
	return nil
}

func (r *Request) checkLimit() error {
	switch {
	case r.Limit < 0 || r.Limit > MaxPageSize:
		return Errorf(CodeBadRequest, "limit must be between 1 and %d", MaxPageSize)
	case r.Limit == 0:
		r.Limit = DefaultPageSize
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
