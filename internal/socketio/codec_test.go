package socketio_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"pocketchat/internal/chat"
	"pocketchat/internal/socketio"
)

func TestEncode(t *testing.T) {
	msg := chat.MessagePayload{Room: "r1", Message: chat.Message{ID: "m1", Room: "r1", Seq: 3, Text: "hé 😀"}}
	msgEv := chat.MustEvent(chat.EventMessage, msg)
	reply := func(ev *chat.Event, id string) *chat.Event {
		ev.ReplyTo = json.RawMessage(id)
		return ev
	}
	tests := []struct {
		name string
		ev   *chat.Event
		want string
	}{
		{"broadcast", msgEv, `42["message",` + string(msgEv.Payload) + `]`},
		{"reply without ack id", chat.MustEvent(chat.EventLeft, chat.LeftPayload{Room: "r1"}), `42["left",{"room":"r1"}]`},
		{"reply with ack id", reply(chat.MustEvent(chat.EventLeft, chat.LeftPayload{Room: "r1"}), "7"), `437[{"room":"r1"}]`},
		{"empty payload with ack id", reply(chat.MustEvent(chat.EventPong, chat.PongPayload{}), "0"), `430[{}]`},
		{"no payload", &chat.Event{Type: chat.EventPong}, `42["pong",{}]`},
		{"error with ack id", chat.ErrorEvent(json.RawMessage("12"), chat.Errorf(chat.CodeForbidden, "you may not write in this room")),
			`4312[{"error":{"code":"forbidden","message":"you may not write in this room"}}]`},
		{"error without ack id", chat.ErrorEvent(nil, chat.Errorf(chat.CodeAuthRequired, "sign in to write")),
			`42["error",{"code":"auth_required","message":"sign in to write"}]`},
		{"rate limited with ack id", chat.ErrorEvent(json.RawMessage("3"), &chat.Error{Code: chat.CodeRateLimited, Message: "slow down", RetryAfter: 1500 * 1e6}),
			`433[{"error":{"code":"rate_limited","message":"slow down","retryAfter":1500}}]`},
		{"native string id is no ack id", reply(chat.MustEvent(chat.EventLeft, chat.LeftPayload{Room: "r1"}), `"r1"`), `42["left",{"room":"r1"}]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := string(tt.ev.Encoded(socketio.Codec{}))
			if got != tt.want {
				t.Errorf("got  %s\nwant %s", got, tt.want)
			}
			if !json.Valid([]byte(got[2:])) && !json.Valid([]byte(strings.TrimLeft(got[2:], "0123456789"))) {
				t.Errorf("not JSON after the packet type: %s", got)
			}
		})
	}
}

// The codec caches under its own slot: a broadcast is encoded once per
// protocol, and the native encoding is untouched.
func TestEncodeSlot(t *testing.T) {
	if (socketio.Codec{}).Slot() == 0 || (socketio.Codec{}).Slot() >= chat.MaxCodecs {
		t.Fatalf("slot %d", socketio.Codec{}.Slot())
	}
	ev := chat.MustEvent(chat.EventLeft, chat.LeftPayload{Room: "r1"})
	a, b := ev.Encoded(socketio.Codec{}), ev.Encoded(socketio.Codec{})
	if &a[0] != &b[0] {
		t.Error("encoded twice")
	}
}

func TestDecodeEvent(t *testing.T) {
	tests := []struct {
		name string
		data string
		id   string
		want chat.Request
	}{
		// Captured from socket.io-client 4.x and 2.x.
		{"join with ack", `["join",{"room":"5wlvyo6hix57dt5"}]`, "0",
			chat.Request{Type: "join", ID: json.RawMessage("0"), Room: "5wlvyo6hix57dt5"}},
		{"send with ack", `["send",{"room":"5wlvyo6hix57dt5","text":"héllo wörld € 😀"}]`, "1",
			chat.Request{Type: "send", ID: json.RawMessage("1"), Room: "5wlvyo6hix57dt5", Text: "héllo wörld € 😀"}},
		{"typing without ack", `["typing",{"room":"5wlvyo6hix57dt5"}]`, "",
			chat.Request{Type: "typing", Room: "5wlvyo6hix57dt5"}},
		{"history", `["history",{"room":"5wlvyo6hix57dt5","limit":1}]`, "3",
			chat.Request{Type: "history", ID: json.RawMessage("3"), Room: "5wlvyo6hix57dt5", Limit: 1}},
		// Written for the other requests.
		{"leave", `["leave",{"room":"r1"}]`, "4", chat.Request{Type: "leave", ID: json.RawMessage("4"), Room: "r1"}},
		{"dm", `["dm",{"to":"u2","text":"psst"}]`, "5", chat.Request{Type: "dm", ID: json.RawMessage("5"), To: "u2", Text: "psst"}},
		{"open", `["open",{"to":"u2"}]`, "6", chat.Request{Type: "open", ID: json.RawMessage("6"), To: "u2"}},
		{"resume", `["resume",{"room":"r1","after":"m1","limit":100}]`, "7",
			chat.Request{Type: "resume", ID: json.RawMessage("7"), Room: "r1", After: "m1", Limit: 100}},
		{"history defaults", `["history",{"room":"r1"}]`, "", chat.Request{Type: "history", Room: "r1", Limit: chat.DefaultPageSize}},
		{"ping without argument", `["ping"]`, "8", chat.Request{Type: "ping", ID: json.RawMessage("8")}},
		{"ping with null", `["ping",null]`, "", chat.Request{Type: "ping"}},
		{"leading zeros of an ack id", `["ping"]`, "007", chat.Request{Type: "ping", ID: json.RawMessage("7")}},
		{"ack id zero", `["ping"]`, "00", chat.Request{Type: "ping", ID: json.RawMessage("0")}},
		{"unknown fields are ignored", `["join",{"room":"r1","x":[1,{"y":2}]}]`, "", chat.Request{Type: "join", Room: "r1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := socketio.DecodeEvent(json.RawMessage(tt.data), tt.id)
			if err != nil {
				t.Fatalf("DecodeEvent(%s): %v", tt.data, err)
			}
			if !reflect.DeepEqual(*got, tt.want) {
				t.Errorf("got  %+v\nwant %+v", *got, tt.want)
			}
		})
	}
}

func TestDecodeEventErrors(t *testing.T) {
	tests := []struct {
		name, data, id string
		code           chat.Code
		message        string
	}{
		{"not an array", `{"type":"join"}`, "1", chat.CodeBadRequest, "JSON array"},
		{"empty array", `[]`, "1", chat.CodeBadRequest, "JSON array"},
		{"name not a string", `[1,{}]`, "1", chat.CodeBadRequest, "name must be a string"},
		{"two arguments", `["send",{"room":"r1"},"hi"]`, "1", chat.CodeBadRequest, "one argument"},
		{"argument not an object", `["join","r1"]`, "1", chat.CodeBadRequest, "must be an object"},
		{"type in the fields", `["join",{"type":"leave","room":"r1"}]`, "1", chat.CodeBadRequest, `"type"`},
		{"id in the fields", `["join",{"room":"r1","id":9}]`, "", chat.CodeBadRequest, `"id"`},
		{"unknown request", `["shout",{"text":"hi"}]`, "1", chat.CodeBadRequest, "unknown type"},
		{"missing room", `["join",{}]`, "1", chat.CodeBadRequest, "needs a \"room\""},
		{"wrong field type", `["join",{"room":5}]`, "1", chat.CodeBadRequest, "must be a string"},
		{"duplicate field", `["join",{"room":"a","room":"b"}]`, "1", chat.CodeBadRequest, "duplicate"},
		{"empty text", `["send",{"room":"r1","text":"  "}]`, "1", chat.CodeBadRequest, "non-empty"},
		{"text too long", `["send",{"room":"r1","text":"` + strings.Repeat("x", chat.MaxTextLen+1) + `"}]`, "1", chat.CodeTooLarge, "limit"},
		{"bad limit", `["history",{"room":"r1","limit":1000}]`, "1", chat.CodeBadRequest, "limit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := socketio.DecodeEvent(json.RawMessage(tt.data), tt.id)
			if err == nil {
				t.Fatalf("no error; request %+v", req)
			}
			if chat.ErrorCode(err) != tt.code || !strings.Contains(err.Error(), tt.message) {
				t.Errorf("error %v, want %s containing %q", err, tt.code, tt.message)
			}
			if string(req.ID) != tt.id {
				t.Errorf("request id %q, want %q: the error must answer the ack", req.ID, tt.id)
			}
		})
	}
}
