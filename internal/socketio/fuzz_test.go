package socketio_test

import (
	"encoding/json"
	"errors"
	"reflect"
	"testing"

	"pocketchat/internal/chat"
	"pocketchat/internal/socketio"
)

// FuzzDecodePacket checks that any text decodes to a packet or to
// ErrPacket, and that a decoded packet encodes to text that decodes to
// the same packet.
func FuzzDecodePacket(f *testing.F) {
	for _, s := range []string{
		`0{"token":"t"}`, `0`, `0/admin?x=1,`, `1`, `20["join",{"room":"r1"}]`, `2["typing",{"room":"r1"}]`,
		`31[{"message":{}}]`, `4{"message":"no"}`, `4"no"`, `51-2["send",{"_placeholder":true,"num":0}]`,
		`62-/a,7[{"_placeholder":true,"num":0}]`, ``, `9`, `2/,1`,
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := socketio.DecodePacket(s)
		if err != nil {
			if !errors.Is(err, socketio.ErrPacket) {
				t.Fatalf("error %v is not ErrPacket", err)
			}
			return
		}
		if p.Data != nil && !json.Valid(p.Data) {
			t.Fatalf("invalid JSON payload %q", p.Data)
		}
		again, err := socketio.DecodePacket(string(p.Append(nil)))
		if err != nil {
			t.Fatalf("re-encoded %q does not decode: %v", p.Append(nil), err)
		}
		if !reflect.DeepEqual(again, p) {
			t.Fatalf("round trip %q → %q:\n%+v\n%+v", s, p.Append(nil), p, again)
		}
	})
}

// FuzzDecodeEvent checks that any payload gives a request or a chat
// error, that the request keeps the ack id, and that a valid request
// passes chat's validation.
func FuzzDecodeEvent(f *testing.F) {
	f.Add(`["join",{"room":"r1"}]`, "0")
	f.Add(`["send",{"room":"r1","text":"héllo 😀"}]`, "12")
	f.Add(`["history",{"room":"r1","limit":5}]`, "")
	f.Add(`["ping"]`, "007")
	f.Add(`["join",{"type":"x"}]`, "1")
	f.Add(`{}`, "1")
	f.Fuzz(func(t *testing.T, data, id string) {
		if !json.Valid([]byte(data)) {
			return // DecodePacket only passes valid JSON
		}
		if _, err := socketio.DecodePacket("2" + id + "[]"); err != nil || !isDigits(id) {
			id = ""
		}
		req, err := socketio.DecodeEvent(json.RawMessage(data), id)
		if req == nil {
			t.Fatal("nil request")
		}
		if id != "" && len(req.ID) == 0 {
			t.Fatalf("ack id %q lost", id)
		}
		if err != nil {
			var ce *chat.Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is no chat.Error", err)
			}
			return
		}
		if err := req.Validate(); err != nil {
			t.Fatalf("decoded request does not validate: %v", err)
		}
	})
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
