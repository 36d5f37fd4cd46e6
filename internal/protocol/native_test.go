package protocol_test

import (
	"encoding/json"
	"maps"
	"reflect"
	"strings"
	"testing"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/protocol"
)

func TestNativeSlot(t *testing.T) {
	if got := (protocol.Native{}).Slot(); got != protocol.SlotNative || got < 0 || got >= chat.MaxCodecs {
		t.Errorf("Slot() = %d, want %d (below %d)", got, protocol.SlotNative, chat.MaxCodecs)
	}
}

// sampleMessage is a message as it is broadcast, with a text of ~100
// characters.
func sampleMessage() chat.MessagePayload {
	created := mustTime("2024-05-01T12:34:56.789Z")
	return chat.MessagePayload{
		Room: "r1a2b3c4d5e6f7g",
		Message: chat.Message{
			ID:      "m1a2b3c4d5e6f7g",
			Room:    "r1a2b3c4d5e6f7g",
			Seq:     1234,
			Author:  chat.User{ID: "u1a2b3c4d5e6f7g", Name: "Ada Lovelace", Avatar: "/api/files/users/u1/ada.png"},
			Text:    strings.Repeat("Hello <world> & \"friends\" — ", 4)[:100],
			Kind:    chat.KindUser,
			Created: created,
			Updated: created,
		},
	}
}

func TestNativeEncode(t *testing.T) {
	tests := []struct {
		name    string
		typ     string
		replyTo string
		payload string // raw; "" means nil
		want    string // exact output; "" to compare only as JSON with the reference
	}{
		{name: "no id, empty object", typ: "pong", payload: `{}`, want: `{"type":"pong"}`},
		{name: "id, empty object", typ: "pong", replyTo: `7`, payload: `{}`, want: `{"type":"pong","id":7}`},
		{name: "nil payload", typ: "pong", want: `{"type":"pong"}`},
		{name: "nil payload with id", typ: "pong", replyTo: `"a"`, want: `{"type":"pong","id":"a"}`},
		{name: "null payload", typ: "pong", payload: `null`, want: `{"type":"pong"}`},
		{name: "not an object", typ: "pong", payload: `[1,2]`, want: `{"type":"pong"}`},
		{name: "white space object", typ: "pong", payload: " { \n\t} ", want: `{"type":"pong"}`},
		{name: "white space around members", typ: "left", payload: " {  \"room\" : \"r1\"\n } \n", want: `{"type":"left","room" : "r1"}`},
		{name: "one member", typ: "left", payload: `{"room":"r1"}`, want: `{"type":"left","room":"r1"}`},
		{name: "string id", typ: "left", replyTo: `"req-1"`, payload: `{"room":"r1"}`, want: `{"type":"left","id":"req-1","room":"r1"}`},
		{name: "id with white space", typ: "left", replyTo: " 12 ", payload: `{"room":"r1"}`, want: `{"type":"left","id":12,"room":"r1"}`},
		{name: "white space id", typ: "left", replyTo: "  ", payload: `{"room":"r1"}`, want: `{"type":"left","room":"r1"}`},
		{name: "nested", typ: "message", replyTo: `3`, payload: string(mustJSON(sampleMessage()))},
		{name: "nested, no id", typ: "message", payload: string(mustJSON(sampleMessage()))},
		{name: "error", typ: "error", replyTo: `"x"`, payload: string(mustJSON(chat.ErrorPayload{Code: chat.CodeRateLimited, Message: "slow down", RetryAfter: 1500}))},
		{name: "arrays", typ: "joined", payload: `{"room":"r","online":[{"id":"u","name":"}{"}],"messages":[],"more":true}`},
		{name: "type needing escapes", typ: "a\"b\\c\n\r\t\x01\x1f\x7f\u2028\u2029é", payload: `{"k":1}`, want: `{"type":"a\"b\\c\n\r\t\u0001\u001f` + "\x7f" + `\u2028\u2029é","k":1}`},
		{name: "type with invalid UTF-8", typ: "a\xffb", want: `{"type":"a\ufffdb"}`},
		{name: "empty type", typ: "", want: `{"type":""}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := &chat.Event{Type: tt.typ}
			if tt.replyTo != "" {
				e.ReplyTo = json.RawMessage(tt.replyTo)
			}
			if tt.payload != "" {
				e.Payload = json.RawMessage(tt.payload)
			}
			got := protocol.Native{}.Encode(e)
			if len(got) != cap(got) {
				t.Errorf("len %d != cap %d: the output was not sized up front", len(got), cap(got))
			}
			if !json.Valid(got) {
				t.Fatalf("Encode = %s, not valid JSON", got)
			}
			if tt.want != "" && string(got) != tt.want {
				t.Errorf("Encode = %s\nwant     %s", got, tt.want)
			}

			// Whatever the exact bytes, the frame must read as the type,
			// the id and the payload members side by side.
			want := map[string]any{"type": strings.ToValidUTF8(tt.typ, "\ufffd")}
			if id := strings.TrimSpace(tt.replyTo); id != "" {
				var v any
				mustUnmarshal(t, []byte(id), &v)
				want["id"] = v
			}
			var p any
			if tt.payload != "" {
				mustUnmarshal(t, []byte(tt.payload), &p)
			}
			if obj, ok := p.(map[string]any); ok {
				maps.Copy(want, obj)
			}
			var gotMap map[string]any
			mustUnmarshal(t, got, &gotMap)
			if !reflect.DeepEqual(gotMap, want) {
				t.Errorf("Encode = %s\ndecodes to %v\nwant       %v", got, gotMap, want)
			}
		})
	}
}

func TestNativeEncodedCache(t *testing.T) {
	e := chat.MustEvent(chat.EventLeft, chat.LeftPayload{Room: "r1"})
	a := e.Encoded(protocol.Native{})
	b := e.Encoded(protocol.Native{})
	if string(a) != `{"type":"left","room":"r1"}` {
		t.Errorf("Encoded = %s", a)
	}
	if &a[0] != &b[0] {
		t.Error("Encoded encoded the event twice")
	}
}

// TestErrorEventRoundTrip checks the way the server answers a bad frame:
// the id DecodeNative recovers is echoed by the error event.
func TestErrorEventRoundTrip(t *testing.T) {
	req, err := protocol.DecodeNative([]byte(`{"type":"send","id":"q1","room":5}`))
	if err == nil {
		t.Fatal("no error")
	}
	got := string(protocol.Native{}.Encode(chat.ErrorEvent(req.ID, err)))
	want := `{"type":"error","id":"q1","code":"bad_request","message":"\"room\" must be a string"}`
	if got != want {
		t.Errorf("error frame = %s\nwant          %s", got, want)
	}
}

func TestDecodeNative(t *testing.T) {
	long := strings.Repeat("é", chat.MaxTextLen)
	tests := []struct {
		name   string
		frame  string
		code   chat.Code // "" for success
		id     string    // the recovered id, "" for none
		want   *chat.Request
		errHas string // a substring of the error message, if any
	}{
		// Frames that are not objects.
		{name: "empty", frame: ``, code: chat.CodeBadRequest},
		{name: "white space", frame: " \n", code: chat.CodeBadRequest},
		{name: "malformed", frame: `{"type":"ping"`, code: chat.CodeBadRequest},
		{name: "malformed 2", frame: `{"type":"ping",}`, code: chat.CodeBadRequest},
		{name: "trailing garbage", frame: `{"type":"ping"} x`, code: chat.CodeBadRequest},
		{name: "two objects", frame: `{"type":"ping"}{"type":"ping"}`, code: chat.CodeBadRequest},
		{name: "single quotes", frame: `{'type':'ping'}`, code: chat.CodeBadRequest},
		{name: "array", frame: `[{"type":"ping"}]`, code: chat.CodeBadRequest, errHas: "JSON object"},
		{name: "string", frame: `"ping"`, code: chat.CodeBadRequest, errHas: "JSON object"},
		{name: "number", frame: `42`, code: chat.CodeBadRequest, errHas: "JSON object"},
		{name: "null", frame: `null`, code: chat.CodeBadRequest, errHas: "JSON object"},
		{name: "true", frame: `true`, code: chat.CodeBadRequest, errHas: "JSON object"},

		// Type.
		{name: "empty object", frame: `{}`, code: chat.CodeBadRequest, errHas: "missing \"type\""},
		{name: "missing type", frame: `{"id":1,"room":"r1"}`, code: chat.CodeBadRequest, id: `1`, errHas: "type"},
		{name: "null type", frame: `{"id":1,"type":null}`, code: chat.CodeBadRequest, id: `1`, errHas: "missing \"type\""},
		{name: "unknown type", frame: `{"id":"x","type":"shout","room":"r1"}`, code: chat.CodeBadRequest, id: `"x"`, errHas: "unknown type"},
		{name: "type as number", frame: `{"id":"x","type":1}`, code: chat.CodeBadRequest, id: `"x"`, errHas: `"type" must be a string`},
		{name: "type case matters", frame: `{"type":"PING"}`, code: chat.CodeBadRequest, errHas: "unknown type"},
		{name: "member names are case sensitive", frame: `{"Type":"ping"}`, code: chat.CodeBadRequest, errHas: "missing \"type\""},
		{name: "escaped member name", frame: `{"\u0074ype":"ping"}`, want: &chat.Request{Type: "ping"}},
		{name: "escaped value", frame: `{"type":"p\u0069ng"}`, want: &chat.Request{Type: "ping"}},

		// ping
		{name: "ping", frame: `{"type":"ping"}`, want: &chat.Request{Type: "ping"}},
		{name: "ping with white space", frame: " \t\r\n{ \"type\" :\n\"ping\" , \"id\" : 3 }\n", id: `3`, want: &chat.Request{Type: "ping", ID: json.RawMessage(`3`)}},
		{name: "unknown members ignored", frame: `{"type":"ping","x":{"type":"send","a":[1,{"b":"}"}]},"y":null,"z":[]}`, want: &chat.Request{Type: "ping"}},

		// join, leave, typing
		{name: "join", frame: `{"type":"join","id":1,"room":"r1"}`, id: `1`, want: &chat.Request{Type: "join", ID: json.RawMessage(`1`), Room: "r1"}},
		{name: "join missing room", frame: `{"type":"join","id":1}`, code: chat.CodeBadRequest, id: `1`, errHas: "room"},
		{name: "join blank room", frame: `{"type":"join","id":1,"room":"  "}`, code: chat.CodeBadRequest, id: `1`, errHas: "room"},
		{name: "join null room", frame: `{"type":"join","id":1,"room":null}`, code: chat.CodeBadRequest, id: `1`, errHas: "needs a \"room\""},
		{name: "join room as number", frame: `{"type":"join","room":5,"id":"j"}`, code: chat.CodeBadRequest, id: `"j"`, errHas: `"room" must be a string`},
		{name: "join room as object", frame: `{"type":"join","room":{"id":"r1"}}`, code: chat.CodeBadRequest, errHas: `"room" must be a string`},
		{name: "join room as bool", frame: `{"type":"join","room":true}`, code: chat.CodeBadRequest, errHas: `"room" must be a string`},
		{name: "leave", frame: `{"type":"leave","room":"r1"}`, want: &chat.Request{Type: "leave", Room: "r1"}},
		{name: "leave missing room", frame: `{"type":"leave"}`, code: chat.CodeBadRequest, errHas: "room"},
		{name: "leave room as array", frame: `{"type":"leave","room":["r1"]}`, code: chat.CodeBadRequest, errHas: `"room" must be a string`},
		{name: "typing", frame: `{"type":"typing","room":"r1"}`, want: &chat.Request{Type: "typing", Room: "r1"}},
		{name: "typing missing room", frame: `{"type":"typing","id":2}`, code: chat.CodeBadRequest, id: `2`, errHas: "room"},

		// send
		{name: "send", frame: `{"type":"send","id":"s1","room":"r1","text":"hello"}`, id: `"s1"`, want: &chat.Request{Type: "send", ID: json.RawMessage(`"s1"`), Room: "r1", Text: "hello"}},
		{name: "send unicode", frame: `{"type":"send","room":"r1","text":"h\u00e9llo 👋 \"q\" \\ /"}`, want: &chat.Request{Type: "send", Room: "r1", Text: "héllo 👋 \"q\" \\ /"}},
		{name: "send trims and strips control characters", frame: `{"type":"send","room":"r1","text":"  a\u0000b\u0007c\r\nd\u200e\u2028\u0085e\t "}`, want: &chat.Request{Type: "send", Room: "r1", Text: chat.CleanText("a\x00b\x07c\r\nd\u200e\u2028\u0085e")}},
		{name: "send cleaned exactly", frame: `{"type":"send","room":"r1","text":" x\u0001y\r\nz "}`, want: &chat.Request{Type: "send", Room: "r1", Text: "xy\nz"}},
		{name: "send invalid UTF-8 replaced", frame: "{\"type\":\"send\",\"room\":\"r1\",\"text\":\"a\xffb\"}", want: &chat.Request{Type: "send", Room: "r1", Text: "a\ufffdb"}},
		{name: "send missing room", frame: `{"type":"send","id":9,"text":"hi"}`, code: chat.CodeBadRequest, id: `9`, errHas: "room"},
		{name: "send missing text", frame: `{"type":"send","id":9,"room":"r1"}`, code: chat.CodeBadRequest, id: `9`, errHas: "text"},
		{name: "send null text", frame: `{"type":"send","id":9,"room":"r1","text":null}`, code: chat.CodeBadRequest, id: `9`, errHas: "non-empty \"text\""},
		{name: "send empty text", frame: `{"type":"send","room":"r1","text":""}`, code: chat.CodeBadRequest, errHas: "text"},
		{name: "send blank text", frame: `{"type":"send","room":"r1","text":" \n\t "}`, code: chat.CodeBadRequest, errHas: "text"},
		{name: "send control-only text", frame: `{"type":"send","room":"r1","text":"\u0001\u0002"}`, code: chat.CodeBadRequest, errHas: "text"},
		{name: "send text as number", frame: `{"type":"send","id":"n","room":"r1","text":5}`, code: chat.CodeBadRequest, id: `"n"`, errHas: `"text" must be a string`},
		{name: "send text at the limit", frame: `{"type":"send","room":"r1","text":"` + long + `"}`, want: &chat.Request{Type: "send", Room: "r1", Text: long}},
		{name: "send text over the limit", frame: `{"type":"send","id":4,"room":"r1","text":"` + long + `é"}`, code: chat.CodeTooLarge, id: `4`, errHas: "4001"},
		{name: "send text over the limit before cleaning", frame: `{"type":"send","room":"r1","text":"  ` + long + `\u0001  "}`, want: &chat.Request{Type: "send", Room: "r1", Text: long}},

		// dm
		{name: "dm", frame: `{"type":"dm","to":"u2","text":"psst"}`, want: &chat.Request{Type: "dm", To: "u2", Text: "psst"}},
		{name: "dm missing to", frame: `{"type":"dm","id":1,"text":"psst"}`, code: chat.CodeBadRequest, id: `1`, errHas: "to"},
		{name: "dm blank to", frame: `{"type":"dm","to":" ","text":"psst"}`, code: chat.CodeBadRequest, errHas: "to"},
		{name: "dm to as number", frame: `{"type":"dm","to":2,"text":"psst"}`, code: chat.CodeBadRequest, errHas: `"to" must be a string`},
		{name: "dm missing text", frame: `{"type":"dm","to":"u2"}`, code: chat.CodeBadRequest, errHas: "text"},
		{name: "dm text over the limit", frame: `{"type":"dm","to":"u2","text":"` + long + `x"}`, code: chat.CodeTooLarge},

		// history
		{name: "history default limit", frame: `{"type":"history","room":"r1","before":"m9"}`, want: &chat.Request{Type: "history", Room: "r1", Before: "m9", Limit: chat.DefaultPageSize}},
		{name: "history limit 0", frame: `{"type":"history","room":"r1","limit":0}`, want: &chat.Request{Type: "history", Room: "r1", Limit: chat.DefaultPageSize}},
		{name: "history limit -0", frame: `{"type":"history","room":"r1","limit":-0}`, want: &chat.Request{Type: "history", Room: "r1", Limit: chat.DefaultPageSize}},
		{name: "history null limit", frame: `{"type":"history","room":"r1","limit":null}`, want: &chat.Request{Type: "history", Room: "r1", Limit: chat.DefaultPageSize}},
		{name: "history limit 1", frame: `{"type":"history","room":"r1","limit":1}`, want: &chat.Request{Type: "history", Room: "r1", Limit: 1}},
		{name: "history limit 100", frame: `{"type":"history","room":"r1","limit":100}`, want: &chat.Request{Type: "history", Room: "r1", Limit: 100}},
		{name: "history limit 101", frame: `{"type":"history","id":1,"room":"r1","limit":101}`, code: chat.CodeBadRequest, id: `1`, errHas: "limit"},
		{name: "history limit -1", frame: `{"type":"history","id":1,"room":"r1","limit":-1}`, code: chat.CodeBadRequest, id: `1`, errHas: "limit"},
		{name: "history limit 1.5", frame: `{"type":"history","id":1,"room":"r1","limit":1.5}`, code: chat.CodeBadRequest, id: `1`, errHas: "integer"},
		{name: "history limit 10.0", frame: `{"type":"history","room":"r1","limit":10.0}`, code: chat.CodeBadRequest, errHas: "integer"},
		{name: "history limit 1e1", frame: `{"type":"history","room":"r1","limit":1e1}`, code: chat.CodeBadRequest, errHas: "integer"},
		{name: "history limit 1e400", frame: `{"type":"history","room":"r1","limit":1e400}`, code: chat.CodeBadRequest, errHas: "integer"},
		{name: "history huge limit", frame: `{"type":"history","room":"r1","limit":18446744073709551626}`, code: chat.CodeBadRequest, errHas: "integer"},
		{name: "history huge negative limit", frame: `{"type":"history","room":"r1","limit":-9223372036854775809}`, code: chat.CodeBadRequest, errHas: "integer"},
		{name: "history limit as string", frame: `{"type":"history","id":"h","room":"r1","limit":"10"}`, code: chat.CodeBadRequest, id: `"h"`, errHas: "integer"},
		{name: "history limit as bool", frame: `{"type":"history","room":"r1","limit":true}`, code: chat.CodeBadRequest, errHas: "integer"},
		{name: "history missing room", frame: `{"type":"history","limit":10}`, code: chat.CodeBadRequest, errHas: "room"},
		{name: "history before as number", frame: `{"type":"history","room":"r1","before":3}`, code: chat.CodeBadRequest, errHas: `"before" must be a string`},

		// edit and delete
		{name: "edit", frame: `{"type":"edit","id":"e1","message":"m5","text":" fixed "}`, id: `"e1"`, want: &chat.Request{Type: "edit", ID: json.RawMessage(`"e1"`), Message: "m5", Text: "fixed"}},
		{name: "edit without text", frame: `{"type":"edit","message":"m5"}`, code: chat.CodeBadRequest, errHas: "text"},
		{name: "edit without message", frame: `{"type":"edit","id":2,"text":"x"}`, code: chat.CodeBadRequest, id: `2`, errHas: `"message"`},
		{name: "delete", frame: `{"type":"delete","message":"m5"}`, want: &chat.Request{Type: "delete", Message: "m5"}},
		{name: "delete message as number", frame: `{"type":"delete","message":5}`, code: chat.CodeBadRequest, errHas: `"message" must be a string`},
		{name: "delete duplicate message", frame: `{"type":"delete","message":"a","message":"b"}`, code: chat.CodeBadRequest, errHas: "duplicate"},
		// resume
		{name: "resume", frame: `{"type":"resume","room":"r1","after":"m5","limit":20}`, want: &chat.Request{Type: "resume", Room: "r1", After: "m5", Limit: 20}},
		{name: "resume default limit", frame: `{"type":"resume","room":"r1","after":"m5"}`, want: &chat.Request{Type: "resume", Room: "r1", After: "m5", Limit: chat.DefaultPageSize}},
		{name: "resume missing after", frame: `{"type":"resume","id":1,"room":"r1"}`, code: chat.CodeBadRequest, id: `1`, errHas: "after"},
		{name: "resume after as number", frame: `{"type":"resume","room":"r1","after":5}`, code: chat.CodeBadRequest, errHas: `"after" must be a string`},
		{name: "resume missing room", frame: `{"type":"resume","after":"m5"}`, code: chat.CodeBadRequest, errHas: "room"},
		{name: "resume limit 101", frame: `{"type":"resume","room":"r1","after":"m5","limit":101}`, code: chat.CodeBadRequest, errHas: "limit"},

		// Ids.
		{name: "id string", frame: `{"type":"ping","id":"abc"}`, id: `"abc"`, want: &chat.Request{Type: "ping", ID: json.RawMessage(`"abc"`)}},
		{name: "id escaped string kept as sent", frame: `{"type":"ping","id":"a\u00e9\"<"}`, id: `"a\u00e9\"<"`, want: &chat.Request{Type: "ping", ID: json.RawMessage(`"a\u00e9\"<"`)}},
		{name: "id empty string", frame: `{"type":"ping","id":""}`, id: `""`, want: &chat.Request{Type: "ping", ID: json.RawMessage(`""`)}},
		{name: "id number", frame: `{"type":"ping","id":42}`, id: `42`, want: &chat.Request{Type: "ping", ID: json.RawMessage(`42`)}},
		{name: "id negative float", frame: `{"type":"ping","id":-1.5e3}`, id: `-1.5e3`, want: &chat.Request{Type: "ping", ID: json.RawMessage(`-1.5e3`)}},
		{name: "id null is absent", frame: `{"type":"ping","id":null}`, want: &chat.Request{Type: "ping"}},
		{name: "id 64 bytes", frame: `{"type":"ping","id":"` + strings.Repeat("x", 62) + `"}`, id: `"` + strings.Repeat("x", 62) + `"`, want: &chat.Request{Type: "ping", ID: json.RawMessage(`"` + strings.Repeat("x", 62) + `"`)}},
		{name: "id too long", frame: `{"type":"ping","id":"` + strings.Repeat("x", 63) + `"}`, code: chat.CodeBadRequest, errHas: "id"},
		{name: "id number too long", frame: `{"type":"ping","id":` + strings.Repeat("1", 65) + `}`, code: chat.CodeBadRequest, errHas: "id"},
		{name: "id number overflows", frame: `{"type":"ping","id":1e400}`, code: chat.CodeBadRequest, errHas: "id"},
		{name: "id object", frame: `{"type":"ping","id":{"a":1}}`, code: chat.CodeBadRequest, errHas: "id"},
		{name: "id array", frame: `{"type":"ping","id":[1]}`, code: chat.CodeBadRequest, errHas: "id"},
		{name: "id bool", frame: `{"type":"ping","id":true}`, code: chat.CodeBadRequest, errHas: "id"},
		{name: "id invalid UTF-8", frame: "{\"type\":\"ping\",\"id\":\"a\xffb\"}", code: chat.CodeBadRequest, errHas: "id"},
		{name: "bad id beats bad room", frame: `{"type":"join","room":5,"id":[1]}`, code: chat.CodeBadRequest, errHas: "id"},
		{name: "id recovered after the error member", frame: `{"type":"join","room":5,"id":"late"}`, code: chat.CodeBadRequest, id: `"late"`, errHas: "room"},
		{name: "id recovered with unknown type", frame: `{"type":"nope","id":0}`, code: chat.CodeBadRequest, id: `0`, errHas: "unknown type"},

		// Duplicates.
		{name: "duplicate type", frame: `{"type":"ping","id":1,"type":"join"}`, code: chat.CodeBadRequest, id: `1`, errHas: "duplicate"},
		{name: "duplicate room", frame: `{"type":"join","room":"a","room":"b"}`, code: chat.CodeBadRequest, errHas: `duplicate member "room"`},
		{name: "duplicate via escape", frame: `{"type":"join","room":"a","r\u006fom":"b"}`, code: chat.CodeBadRequest, errHas: `duplicate member "room"`},
		{name: "duplicate null room", frame: `{"type":"join","room":"a","room":null}`, code: chat.CodeBadRequest, errHas: "duplicate"},
		{name: "duplicate id", frame: `{"type":"ping","id":1,"id":2}`, code: chat.CodeBadRequest, errHas: `duplicate member "id"`},
		{name: "duplicate unknown member", frame: `{"type":"ping","x":1,"x":2}`, want: &chat.Request{Type: "ping"}},
		{name: "differently cased names are not duplicates", frame: `{"type":"ping","TYPE":"join"}`, want: &chat.Request{Type: "ping"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := protocol.DecodeNative([]byte(tt.frame))
			if got == nil {
				t.Fatalf("DecodeNative returned a nil request (err %v)", err)
			}
			if string(got.ID) != tt.id {
				t.Errorf("ID = %s, want %s", got.ID, tt.id)
			}
			if tt.code == "" {
				if err != nil {
					t.Fatalf("err = %v, want nil", err)
				}
				if !reflect.DeepEqual(got, tt.want) {
					t.Errorf("DecodeNative = %+v\nwant           %+v", *got, *tt.want)
				}
				return
			}
			if err == nil {
				t.Fatalf("err = nil, want %s (request %+v)", tt.code, *got)
			}
			if _, ok := err.(*chat.Error); !ok {
				t.Errorf("err is a %T, want *chat.Error", err)
			}
			if code := chat.ErrorCode(err); code != tt.code {
				t.Errorf("code = %s, want %s (%v)", code, tt.code, err)
			}
			if !strings.Contains(err.Error(), tt.errHas) {
				t.Errorf("err = %q, want it to mention %q", err, tt.errHas)
			}
		})
	}
}

// TestDecodeNativeIDRule checks DecodeNative accepts exactly the ids
// chat.ValidID accepts (in valid UTF-8).
func TestDecodeNativeIDRule(t *testing.T) {
	ids := []string{
		`0`, `-0`, `1`, `-1`, `0.5`, `-0.0e-0`, `1E5`, `1e+5`, `123456789012345678901234567890`,
		`1e308`, `1.7976931348623157e308`, `1.7976931348623159e308`, `2e308`, `-2e308`, `1e-400`, `4.9e-324`,
		`""`, `"a"`, `"\u0000"`, `"\ud800"`, `"é"`, `"` + strings.Repeat("9", 62) + `"`,
		strings.Repeat("9", 64), strings.Repeat("9", 65), `"` + strings.Repeat("9", 63) + `"`,
		`0.` + strings.Repeat("1", 62), `true`, `false`, `[]`, `{}`, `[1]`,
	}
	for _, id := range ids {
		req, err := protocol.DecodeNative([]byte(`{"type":"ping","id":` + id + `}`))
		if got, want := err == nil, chat.ValidID(json.RawMessage(id)); got != want {
			t.Errorf("id %s: accepted %v, chat.ValidID %v (err %v)", id, got, want, err)
		}
		if err == nil && string(req.ID) != id {
			t.Errorf("id %s: ID = %s", id, req.ID)
		}
	}
}

// TestDecodeNativeCopiesID checks the request does not alias the frame,
// which the connection may reuse for the next read.
func TestDecodeNativeCopiesID(t *testing.T) {
	frame := []byte(`{"type":"ping","id":"abc"}`)
	req, err := protocol.DecodeNative(frame)
	if err != nil {
		t.Fatal(err)
	}
	copy(frame, strings.Repeat("x", len(frame)))
	if string(req.ID) != `"abc"` {
		t.Errorf("ID = %s after the frame was overwritten", req.ID)
	}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func mustUnmarshal(t *testing.T, data []byte, v any) {
	t.Helper()
	if err := json.Unmarshal(data, v); err != nil {
		t.Fatalf("unmarshal %s: %v", data, err)
	}
}

func mustTime(s string) time.Time {
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		panic(err)
	}
	return t
}

func BenchmarkNativeEncode(b *testing.B) {
	e := chat.MustEvent(chat.EventMessage, sampleMessage())
	b.ReportAllocs()
	b.SetBytes(int64(len(protocol.Native{}.Encode(e))))
	for b.Loop() {
		protocol.Native{}.Encode(e)
	}
}

func BenchmarkDecodeNative(b *testing.B) {
	frame := []byte(`{"type":"send","id":17,"room":"r1a2b3c4d5e6f7g","text":"` +
		strings.Repeat("Hello world, how are you? ", 4)[:100] + `"}`)
	if _, err := protocol.DecodeNative(frame); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		protocol.DecodeNative(frame)
	}
}
