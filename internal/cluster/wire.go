package cluster

import (
	"encoding/json"
	"errors"

	"pocketchat/internal/chat"
	"pocketchat/internal/hub"
)

// wireEnvelope is a hub.Envelope as it travels through Redis: the event's
// payload is already JSON, so it is copied as it is, never re-encoded.
type wireEnvelope struct {
	Kind    hub.AudienceKind `json:"k"`
	Room    string           `json:"r,omitempty"`
	Users   []string         `json:"u,omitempty"`
	Skip    string           `json:"s,omitempty"`
	Type    string           `json:"t"`
	EvRoom  string           `json:"er,omitempty"`
	Actor   string           `json:"a,omitempty"`
	Payload json.RawMessage  `json:"p"`
}

// encodeEnvelope is the bytes published for env.
func encodeEnvelope(env hub.Envelope) ([]byte, error) {
	if env.Event == nil {
		return nil, errors.New("cluster: envelope without event")
	}
	w := wireEnvelope{
		Kind: env.To.Kind, Room: env.To.Room, Users: env.To.Users, Skip: env.SkipUser,
		Type: env.Event.Type, EvRoom: env.Event.Room, Actor: env.Event.Actor, Payload: env.Event.Payload,
	}
	if len(w.Payload) == 0 {
		w.Payload = json.RawMessage("{}")
	}
	return json.Marshal(w)
}

// decodeEnvelope is the envelope of published bytes. Its event has no
// Data: receivers decode the payload when they need its value.
func decodeEnvelope(b []byte) (hub.Envelope, error) {
	var w wireEnvelope
	if err := json.Unmarshal(b, &w); err != nil {
		return hub.Envelope{}, err
	}
	switch w.Kind {
	case hub.AudienceRoom, hub.AudienceUsers, hub.AudienceAll:
	default:
		return hub.Envelope{}, errors.New("cluster: unknown audience")
	}
	if w.Type == "" {
		return hub.Envelope{}, errors.New("cluster: event without type")
	}
	ev := &chat.Event{Type: w.Type, Payload: w.Payload, Room: w.EvRoom, Actor: w.Actor}
	return hub.Envelope{To: hub.Audience{Kind: w.Kind, Room: w.Room, Users: w.Users}, SkipUser: w.Skip, Event: ev}, nil
}
