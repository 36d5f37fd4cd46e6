package server

import (
	"context"
	"errors"
	"net/http"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"

	"pocketchat/internal/chat"
	"pocketchat/internal/gateway"
)

// pbAuth resolves the chat's credentials with PocketBase (the
// gateway.Authenticator of the primary, and of the edges through the
// cluster API), so every way in accepts and refuses the same ones with
// the same words. Bad credentials are refused, never downgraded to a
// guest.
type pbAuth struct {
	app     core.App
	tickets Tickets
}

var _ gateway.Authenticator = pbAuth{}

// UserByTicket redeems a single-use ticket.
func (a pbAuth) UserByTicket(_ context.Context, ticket string) (*chat.User, error) {
	uid, ok := a.tickets.Redeem(ticket)
	if !ok {
		return nil, &gateway.Refusal{Status: http.StatusUnauthorized, Message: "The ticket is invalid, expired or already used."}
	}
	return a.userByID(uid)
}

// userByID is a ticket's user, if they may still connect.
func (a pbAuth) userByID(uid string) (*chat.User, error) {
	rec, err := a.app.FindRecordById(colUsers, uid)
	if err != nil {
		return nil, &gateway.Refusal{Status: http.StatusUnauthorized, Message: "The ticket's user no longer exists."}
	}
	return connectable(rec)
}

// UserByToken verifies a users auth token ("Bearer " prefix optional).
func (a pbAuth) UserByToken(_ context.Context, token string) (*chat.User, error) {
	rec, err := a.app.FindAuthRecordByToken(trimBearer(token), core.TokenTypeAuth)
	if err != nil {
		return nil, &gateway.Refusal{Status: http.StatusUnauthorized, Message: "The token is invalid or expired."}
	}
	if rec.Collection().Name != colUsers {
		return nil, &gateway.Refusal{Status: http.StatusForbidden, Message: "The chat takes tokens of the users collection."}
	}
	return connectable(rec)
}

// apiError turns a gateway refusal into PocketBase's JSON error.
func apiError(err error) error {
	var ref *gateway.Refusal
	if errors.As(err, &ref) {
		return apis.NewApiError(ref.Status, ref.Message, nil)
	}
	return err
}

// connectable refuses banned accounts.
func connectable(rec *core.Record) (*chat.User, error) {
	if rec.GetBool("banned") {
		return nil, &gateway.Refusal{Status: http.StatusForbidden, Message: "This account is banned."}
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
