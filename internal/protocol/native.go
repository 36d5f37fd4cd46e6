package protocol

import (
	"bytes"
	"encoding/json"
	"strconv"
	"unicode/utf8"

	"pocketchat/internal/chat"
)

// SlotNative is the chat.Event encoding cache slot of the native codec.
const SlotNative = 0

// Native is the native wire codec: one JSON object per WebSocket text frame.
// Its zero value is ready to use.
type Native struct{}

var _ chat.Encoder = Native{}

// Slot returns SlotNative.
func (Native) Slot() int { return SlotNative }

// Encode returns the native frame of e: a JSON object holding "type", then
// "id" if e.ReplyTo is set, then the fields of e.Payload, whose bytes are
// copied as they are, not decoded again. A payload that is empty, null or
// not a JSON object adds no fields. e.ReplyTo must be a JSON value (it is the
// id DecodeNative accepted). Encode allocates one slice, of the exact size.
func (Native) Encode(e *chat.Event) []byte {
	id := bytes.TrimSpace(e.ReplyTo)
	body := payloadBody(e.Payload)

	n := len(`{"type":`) + quotedLen(e.Type) + len(`}`)
	if len(id) > 0 {
		n += len(`,"id":`) + len(id)
	}
	if len(body) > 0 {
		n += len(`,`) + len(body)
	}

	b := make([]byte, 0, n)
	b = append(b, `{"type":`...)
	b = appendQuoted(b, e.Type)
	if len(id) > 0 {
		b = append(b, `,"id":`...)
		b = append(b, id...)
	}
	if len(body) > 0 {
		b = append(b, ',')
		b = append(b, body...)
	}
	return append(b, '}')
}

// payloadBody returns the members of the JSON object p without its braces,
// or nil if p is empty, holds no member or is not an object.
func payloadBody(p []byte) []byte {
	p = bytes.TrimSpace(p)
	if len(p) < 2 || p[0] != '{' || p[len(p)-1] != '}' {
		return nil
	}
	body := bytes.TrimSpace(p[1 : len(p)-1])
	if len(body) == 0 {
		return nil
	}
	return body
}

// quotedLen is the length of appendQuoted(nil, s).
func quotedLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"', c == '\\', c == '\n', c == '\r', c == '\t':
				n += 2
			case c < 0x20:
				n += len(`\u0000`)
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if (r == utf8.RuneError && size == 1) || r == '\u2028' || r == '\u2029' {
			n += len(`\ufffd`)
		} else {
			n += size
		}
		i += size
	}
	return n
}

// appendQuoted appends s as a JSON string. Invalid UTF-8 becomes U+FFFD, as
// with encoding/json; U+2028 and U+2029 are escaped so the output is also
// valid JavaScript.
func appendQuoted(b []byte, s string) []byte {
	const hex = "0123456789abcdef"
	b = append(b, '"')
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"', c == '\\':
				b = append(b, '\\', c)
			case c == '\n':
				b = append(b, '\\', 'n')
			case c == '\r':
				b = append(b, '\\', 'r')
			case c == '\t':
				b = append(b, '\\', 't')
			case c < 0x20:
				b = append(b, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			default:
				b = append(b, c)
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			b = append(b, `\ufffd`...)
		case r == '\u2028':
			b = append(b, `\u2028`...)
		case r == '\u2029':
			b = append(b, `\u2029`...)
		default:
			b = append(b, s[i:i+size]...)
		}
		i += size
	}
	return append(b, '"')
}

// The request fields the native protocol knows, indexes into a frame's
// member table.
const (
	fieldType = iota
	fieldID
	fieldRoom
	fieldText
	fieldTo
	fieldBefore
	fieldAfter
	fieldLimit
	fieldMessage
	numFields
)

var fieldNames = [numFields]string{"type", "id", "room", "text", "to", "before", "after", "limit", "message"}

// fieldIndex returns the index of the member named by the JSON string key
// (quotes included), or -1 if the protocol does not know it. Names match
// exactly: unlike encoding/json, "Room" is not "room".
func fieldIndex(key []byte) int {
	name := key[1 : len(key)-1]
	if bytes.IndexByte(name, '\\') >= 0 {
		var s string
		if json.Unmarshal(key, &s) != nil {
			return -1
		}
		name = []byte(s)
	}
	switch string(name) {
	case "type":
		return fieldType
	case "id":
		return fieldID
	case "room":
		return fieldRoom
	case "text":
		return fieldText
	case "to":
		return fieldTo
	case "before":
		return fieldBefore
	case "after":
		return fieldAfter
	case "limit":
		return fieldLimit
	case "message":
		return fieldMessage
	}
	return -1
}

// DecodeNative decodes one native frame into a request and validates it with
// chat.Request.Validate.
//
// It always returns a non-nil request, even with an error, so the caller can
// answer with chat.ErrorEvent(req.ID, err): whenever the frame is a JSON
// object whose "id" is valid, req.ID is set, however wrong the other members
// are. Errors are *chat.Error values with code bad_request (or too_large for
// an overlong text, from Validate).
//
// The rules:
//   - The frame must be one JSON object; anything else is rejected.
//   - Member names match exactly (case-sensitive). Unknown members are
//     ignored.
//   - A known member may appear once: a duplicate is rejected rather than
//     letting the first or the last win, so every reader of a frame sees the
//     same request. A duplicated "id" is not recovered.
//   - A member whose value is null counts as absent.
//   - "id" is a string or a number, at most chat.MaxIDLen bytes as sent
//     (chat.ValidID), in valid UTF-8; it is kept as sent, to be echoed.
//   - "type", "room", "text", "to", "before", "after" and "message" are
//     strings; any other type is rejected. Invalid UTF-8 inside a string
//     becomes U+FFFD, as with encoding/json.
//   - "limit" is an integer written without fraction or exponent (10, not
//     10.0 or 1e1); its range is checked by Validate.
func DecodeNative(data []byte) (*chat.Request, error) {
	req := new(chat.Request)
	if !json.Valid(data) {
		return req, chat.Errorf(chat.CodeBadRequest, "frame is not valid JSON")
	}
	var members [numFields][]byte
	var count [numFields]int
	if !scanObject(data, func(key, value []byte) {
		if f := fieldIndex(key); f >= 0 {
			members[f] = value
			count[f]++
		}
	}) {
		return req, chat.Errorf(chat.CodeBadRequest, "frame must be a JSON object")
	}

	// The id first, so that it answers every later error.
	switch id := members[fieldID]; {
	case count[fieldID] > 1:
		return req, duplicate(fieldID)
	case isNull(id):
	case !validID(id):
		return req, chat.Errorf(chat.CodeBadRequest,
			"\"id\" must be a string or a number of at most %d bytes", chat.MaxIDLen)
	default:
		req.ID = bytes.Clone(id)
	}

	for f := range numFields {
		if count[f] > 1 {
			return req, duplicate(f)
		}
	}
	strs := [...]struct {
		field int
		dst   *string
	}{
		{fieldType, &req.Type},
		{fieldRoom, &req.Room},
		{fieldText, &req.Text},
		{fieldTo, &req.To},
		{fieldBefore, &req.Before},
		{fieldAfter, &req.After},
		{fieldMessage, &req.Message},
	}
	for _, s := range strs {
		v := members[s.field]
		if isNull(v) {
			continue
		}
		if v[0] != '"' {
			return req, chat.Errorf(chat.CodeBadRequest, "%q must be a string", fieldNames[s.field])
		}
		*s.dst = decodeString(v)
	}
	if v := members[fieldLimit]; !isNull(v) {
		n, ok := parseInt(v)
		if !ok {
			return req, chat.Errorf(chat.CodeBadRequest, "\"limit\" must be an integer between 1 and %d", chat.MaxPageSize)
		}
		req.Limit = n
	}
	return req, req.Validate()
}

// validID is chat.ValidID for a token checked by json.Valid, plus valid
// UTF-8 so that the id can be echoed in a WebSocket text frame. It avoids
// the decoding into an interface chat.ValidID does: any string token is
// fine, and a number token is fine if it fits a float64.
func validID(id []byte) bool {
	if len(id) > chat.MaxIDLen || !utf8.Valid(id) {
		return false
	}
	switch c := id[0]; {
	case c == '"':
		return true
	case c == '-', c >= '0' && c <= '9':
		_, err := strconv.ParseFloat(string(id), 64)
		return err == nil
	}
	return false
}

func duplicate(field int) error {
	return chat.Errorf(chat.CodeBadRequest, "duplicate member %q", fieldNames[field])
}

// isNull reports whether a member value is absent or JSON null.
func isNull(v []byte) bool {
	return len(v) == 0 || v[0] == 'n'
}

// decodeString returns the value of the JSON string token v.
func decodeString(v []byte) string {
	inner := v[1 : len(v)-1]
	if bytes.IndexByte(inner, '\\') < 0 && utf8.Valid(inner) {
		return string(inner)
	}
	var s string
	if err := json.Unmarshal(v, &s); err != nil {
		// Unreachable: v was checked by json.Valid.
		return ""
	}
	return s
}

// parseInt parses a JSON number written as an integer. Values far outside
// any page size (more than 9 digits) are rejected rather than risk overflow.
func parseInt(v []byte) (int, bool) {
	neg := v[0] == '-'
	if neg {
		v = v[1:]
	}
	if len(v) == 0 || len(v) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// scanObject calls member for each member of the JSON object data, in order,
// with the key as a JSON string token (quotes included) and the value as a
// JSON value token. It reports false if data is not an object. data must be
// valid JSON (json.Valid), which lets the scan skip values without
// checking them.
func scanObject(data []byte, member func(key, value []byte)) bool {
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if data[i] == '}' {
		return true
	}
	for {
		end := stringEnd(data, i)
		key := data[i:end]
		i = skipSpace(data, end) // at ':'
		i = skipSpace(data, i+1) // at the value
		end = valueEnd(data, i)
		member(key, data[i:end])
		i = skipSpace(data, end) // at ',' or '}'
		if data[i] != ',' {
			return true
		}
		i = skipSpace(data, i+1)
	}
}

func skipSpace(d []byte, i int) int {
	for i < len(d) && (d[i] == ' ' || d[i] == '\t' || d[i] == '\n' || d[i] == '\r') {
		i++
	}
	return i
}

// stringEnd returns the index just past the string token starting at d[i].
func stringEnd(d []byte, i int) int {
	for i++; i < len(d); i++ {
		switch d[i] {
		case '\\':
			i++
		case '"':
			return i + 1
		}
	}
	return len(d)
}

// valueEnd returns the index just past the value token starting at d[i].
func valueEnd(d []byte, i int) int {
	switch d[i] {
	case '"':
		return stringEnd(d, i)
	case '{', '[':
		depth := 0
		for i < len(d) {
			switch d[i] {
			case '"':
				i = stringEnd(d, i)
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return len(d)
	}
	// A number, true, false or null.
	for i < len(d) {
		switch d[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}
