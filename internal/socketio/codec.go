package socketio

import (
	"bytes"
	"encoding/json"
	"strings"

	"pocketchat/internal/chat"
	"pocketchat/internal/protocol"
)

// Slot is the chat.Event encoding cache slot of the socket.io codec.
const Slot = 1

// Codec encodes chat events as socket.io packets inside engine.io message
// packets, the same bytes for protocol versions 4 and 5 and for every
// transport. Its zero value is ready to use.
//
//   - An event that answers a request sent with an ack id becomes the ack:
//     43<id>[<payload>], and an error reply 43<id>[{"error":<payload>}].
//   - Any other event is emitted under its type: 42["<type>",<payload>].
type Codec struct{}

var _ chat.Encoder = Codec{}

// Slot returns Slot.
func (Codec) Slot() int { return Slot }

// Encode returns the engine.io packet of e. e.Payload is copied as it is;
// an empty payload is sent as {}.
func (Codec) Encode(e *chat.Event) []byte {
	payload := bytes.TrimSpace(e.Payload)
	if len(payload) == 0 {
		payload = []byte("{}")
	}
	if id := ackID(e.ReplyTo); id != nil {
		b := make([]byte, 0, len("43[]")+len(id)+len(`{"error":}`)+len(payload))
		b = append(b, '4', byte(Ack))
		b = append(b, id...)
		b = append(b, '[')
		if e.Type == chat.EventError {
			b = append(b, `{"error":`...)
			b = append(b, payload...)
			b = append(b, '}')
		} else {
			b = append(b, payload...)
		}
		return append(b, ']')
	}
	name, _ := json.Marshal(e.Type)
	b := make([]byte, 0, len(`42[,]`)+len(name)+len(payload))
	b = append(b, '4', byte(Event), '[')
	b = append(b, name...)
	b = append(b, ',')
	b = append(b, payload...)
	return append(b, ']')
}

// ackID returns the request id if it is a socket.io ack id (decimal
// digits), nil otherwise.
func ackID(id json.RawMessage) []byte {
	id = bytes.TrimSpace(id)
	if len(id) == 0 || len(id) > maxIDDigits || !isDigits(string(id)) {
		return nil
	}
	return id
}

// DecodeEvent turns the payload of an EVENT packet, ["<request type>",
// {fields}], into a chat request with the ack id (if any) as its id, and
// validates it. The fields are those of the native protocol's request
// without "type" and "id": the event name is the type and the ack id the
// id. The argument may be left out for requests that need no field.
//
// Like protocol.DecodeNative, it returns a non-nil request even with an
// error, its ID set, so the error can answer the ack; errors are
// *chat.Error values.
func DecodeEvent(data json.RawMessage, ackID string) (*chat.Request, error) {
	req := new(chat.Request)
	ackID = normalizeID(ackID)
	if ackID != "" {
		req.ID = json.RawMessage(ackID)
	}
	var args []json.RawMessage
	if err := json.Unmarshal(data, &args); err != nil || len(args) == 0 {
		return req, chat.Errorf(chat.CodeBadRequest, "an event is a JSON array: [name, {fields}]")
	}
	var name string
	if err := json.Unmarshal(args[0], &name); err != nil {
		return req, chat.Errorf(chat.CodeBadRequest, "the event name must be a string")
	}
	req.Type = name
	if len(args) > 2 {
		return req, chat.Errorf(chat.CodeBadRequest, "%q takes one argument, an object of the request's fields", truncate(name, 32))
	}
	body := []byte("{}")
	if len(args) == 2 && string(bytes.TrimSpace(args[1])) != "null" {
		body = bytes.TrimSpace(args[1])
	}
	if body[0] != '{' {
		return req, chat.Errorf(chat.CodeBadRequest, "the argument of %q must be an object of the request's fields", truncate(name, 32))
	}
	if key := reservedKey(body); key != "" {
		return req, chat.Errorf(chat.CodeBadRequest, "the fields must not include %q: the event name is the type and the ack id is the id", key)
	}
	frame := nativeFrame(name, ackID, body)
	decoded, err := protocol.DecodeNative(frame)
	if decoded != nil {
		decoded.ID = req.ID
		req = decoded
	}
	return req, err
}

// reservedKey returns "type" or "id" if the JSON object obj has such a
// member, "" otherwise.
func reservedKey(obj []byte) string {
	dec := json.NewDecoder(bytes.NewReader(obj))
	if _, err := dec.Token(); err != nil { // {
		return ""
	}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return ""
		}
		if k, _ := tok.(string); k == "type" || k == "id" {
			return k
		}
		var skip json.RawMessage
		if dec.Decode(&skip) != nil {
			return ""
		}
	}
	return ""
}

// nativeFrame builds the native request frame {"type":name,"id":id,...}
// from an object of fields, so both protocols share one decoder and its
// rules.
func nativeFrame(name, id string, obj []byte) []byte {
	quoted, _ := json.Marshal(name)
	inner := bytes.TrimSpace(obj[1 : len(obj)-1])
	b := make([]byte, 0, len(`{"type":,"id":,}`)+len(quoted)+len(id)+len(inner))
	b = append(b, `{"type":`...)
	b = append(b, quoted...)
	if id != "" {
		b = append(b, `,"id":`...)
		b = append(b, id...)
	}
	if len(inner) > 0 {
		b = append(b, ',')
		b = append(b, inner...)
	}
	return append(b, '}')
}

// normalizeID drops an ack id's leading zeros, which a JSON number may
// not have: "007" is the ack 7 for a JavaScript client too.
func normalizeID(id string) string {
	if id == "" {
		return ""
	}
	if t := strings.TrimLeft(id, "0"); t != "" {
		return t
	}
	return "0"
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
