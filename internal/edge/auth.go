package edge

import (
	"context"
	"net/http"

	"pocketchat/internal/chat"
	"pocketchat/internal/clusterapi"
	"pocketchat/internal/gateway"
)

// Tickets redeems the cluster's tickets (cluster.Tickets, in Redis).
type Tickets interface {
	Redeem(ticket string) (userID string, ok bool)
}

// auth resolves credentials on an edge: tickets in Redis, then the
// primary for who the user is now; tokens by the primary, which alone
// can verify them. The words of a refusal are the primary's.
type auth struct {
	p       *primary
	tickets Tickets
}

var _ gateway.Authenticator = auth{}

func (a auth) UserByTicket(ctx context.Context, ticket string) (*chat.User, error) {
	uid, ok := a.tickets.Redeem(ticket)
	if !ok {
		return nil, &gateway.Refusal{Status: http.StatusUnauthorized, Message: "The ticket is invalid, expired or already used."}
	}
	return a.ask(ctx, clusterapi.Auth{User: uid})
}

func (a auth) UserByToken(ctx context.Context, token string) (*chat.User, error) {
	return a.ask(ctx, clusterapi.Auth{Token: token})
}

func (a auth) ask(ctx context.Context, req clusterapi.Auth) (*chat.User, error) {
	var r clusterapi.AuthReply
	if err := a.p.call(ctx, http.MethodPost, "auth", nil, req, &r); err != nil {
		return nil, err
	}
	if r.Error != nil {
		return nil, &gateway.Refusal{Status: r.Error.Status, Message: r.Error.Message}
	}
	return r.User, nil
}
