package server

import (
	"net/http"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"

	"pocketchat/internal/chat"
)

// authFailure refuses a chat connection. status is the HTTP status the
// native socket answers with before its upgrade; socket.io passes it to
// the client as data.status of its connect error.
type authFailure struct {
	status  int
	message string
}

func (f *authFailure) Error() string { return f.message }

// apiError is the refusal as PocketBase's JSON error.
func (f *authFailure) apiError() error { return apis.NewApiError(f.status, f.message, nil) }

// Both endpoints resolve credentials here, so they accept and refuse the
// same ones with the same words. Bad credentials are refused, never
// downgraded to a guest.

// userByTicket redeems a single-use ticket.
func (s *Server) userByTicket(ticket string) (*chat.User, error) {
	uid, ok := s.tickets.Redeem(ticket)
	if !ok {
		return nil, &authFailure{http.StatusUnauthorized, "The ticket is invalid, expired or already used."}
	}
	rec, err := s.app.FindRecordById(colUsers, uid)
	if err != nil {
		return nil, &authFailure{http.StatusUnauthorized, "The ticket's user no longer exists."}
	}
	return connectable(rec)
}

// userByToken verifies a users auth token ("Bearer " prefix optional).
func (s *Server) userByToken(token string) (*chat.User, error) {
	rec, err := s.app.FindAuthRecordByToken(trimBearer(token), core.TokenTypeAuth)
	if err != nil {
		return nil, &authFailure{http.StatusUnauthorized, "The token is invalid or expired."}
	}
	if rec.Collection().Name != colUsers {
		return nil, &authFailure{http.StatusForbidden, "The chat takes tokens of the users collection."}
	}
	return connectable(rec)
}

// guest is a client without credentials: nil user, if guests may read.
func (s *Server) guest() (*chat.User, error) {
	if !s.cfg.Guests {
		return nil, &authFailure{http.StatusUnauthorized, "Sign in to chat."}
	}
	return nil, nil
}

// connectable refuses banned accounts.
func connectable(rec *core.Record) (*chat.User, error) {
	if rec.GetBool("banned") {
		return nil, &authFailure{http.StatusForbidden, "This account is banned."}
	}
	u := userFromRecord(rec)
	return &u, nil
}

func trimBearer(s string) string {
	const prefix = "Bearer "
	if len(s) > len(prefix) && (s[:len(prefix)] == prefix || s[:len(prefix)] == "bearer ") {
		return s[len(prefix):]
	}
	return s
}
