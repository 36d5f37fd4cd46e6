package hub

import (
	"context"

	"pocketchat/internal/chat"
)

// Broker carries envelopes to the hubs of every node. A broker delivers
// the envelopes published for one room in the order they were published.
type Broker interface {
	// Publish sends env to every subscribed hub, this node's included.
	Publish(ctx context.Context, env Envelope) error
	// Subscribe registers fn to receive every envelope and returns a
	// function that unregisters it. fn must not block for long.
	Subscribe(fn func(Envelope)) (unsubscribe func())
}

// AudienceKind says which connections an envelope is for.
type AudienceKind uint8

// The kinds of audience.
const (
	// AudienceRoom addresses the connections that joined a room.
	AudienceRoom AudienceKind = iota + 1
	// AudienceUsers addresses every connection of some users, joined or not:
	// how direct messages reach a recipient who has not opened the chat.
	AudienceUsers
	// AudienceAll addresses every connection; each one filters what it may
	// see (room changes).
	AudienceAll
)

// Audience is the set of connections an envelope is for.
type Audience struct {
	Kind  AudienceKind
	Room  string
	Users []string
}

// ToRoom addresses the connections that joined the room.
func ToRoom(id string) Audience { return Audience{Kind: AudienceRoom, Room: id} }

// ToUsers addresses every connection of the users.
func ToUsers(ids ...string) Audience { return Audience{Kind: AudienceUsers, Users: ids} }

// ToAll addresses every connection.
func ToAll() Audience { return Audience{Kind: AudienceAll} }

// Envelope is an event with its audience.
type Envelope struct {
	To       Audience
	SkipUser string // connections of this user do not receive it (typing, presence)
	Event    *chat.Event
}
