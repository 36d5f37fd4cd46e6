package protocol_test

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"

	"pocketchat/internal/chat"
	"pocketchat/internal/protocol"
)

var knownTypes = map[string]bool{
	chat.RequestJoin: true, chat.RequestLeave: true, chat.RequestSend: true, chat.RequestDM: true, chat.RequestOpen: true,
	chat.RequestHistory: true, chat.RequestResume: true, chat.RequestTyping: true, chat.RequestPing: true,
}

// FuzzDecodeNative checks that DecodeNative never panics, that what it
// accepts survives a round trip through encoding/json, and that the id it
// recovers can always be echoed. More seeds are in testdata/fuzz.
func FuzzDecodeNative(f *testing.F) {
	for _, s := range []string{
		`{"type":"ping"}`,
		`{"type":"join","id":1,"room":"r1"}`,
		`{"type":"send","id":"a","room":"r1","text":" hi\u0000 there\r\n"}`,
		`{"type":"dm","to":"u2","text":"psst","id":-1.5e3}`,
		`{"type":"history","room":"r1","before":"m1","limit":10}`,
		`{"type":"resume","room":"r1","after":"m1","limit":0}`,
		`{"type":"typing","room":"r\u00e9","x":[{"y":"}"}]}`,
		`{"type":"join","room":5,"id":"x"}`,
		`{"type":"join","room":"a","room":"b"}`,
		`{"type":"ping","id":1e400}`,
		"{\"type\":\"send\",\"room\":\"r\",\"text\":\"\xff\xfe\"}",
		`[1,2]`,
		`{"type":`,
		`42`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := protocol.DecodeNative(data)
		if req == nil {
			t.Fatalf("nil request (err %v)", err)
		}
		if len(req.ID) > 0 && (!chat.ValidID(req.ID) || !utf8.Valid(req.ID)) {
			t.Fatalf("recovered id %q is not valid", req.ID)
		}
		if err != nil {
			if _, ok := err.(*chat.Error); !ok {
				t.Fatalf("err is a %T: %v", err, err)
			}
			if code := chat.ErrorCode(err); code != chat.CodeBadRequest && code != chat.CodeTooLarge {
				t.Fatalf("code %s: %v", code, err)
			}
			// The error reply must be a valid frame, id included.
			reply := protocol.Native{}.Encode(chat.ErrorEvent(req.ID, err))
			if !json.Valid(reply) || !utf8.Valid(reply) {
				t.Fatalf("error reply %q is not valid UTF-8 JSON", reply)
			}
			checkIDRule(t, data)
			return
		}
		if !knownTypes[req.Type] {
			t.Fatalf("accepted unknown type %q", req.Type)
		}

		// Round trip, ids kept byte for byte.
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(false)
		if err := enc.Encode(req); err != nil {
			t.Fatalf("encoding %+v: %v", *req, err)
		}
		again, err := protocol.DecodeNative(buf.Bytes())
		if err != nil {
			t.Fatalf("%s: decoded as %+v, re-encoded as %s: %v", data, *req, buf.Bytes(), err)
		}
		if !reflect.DeepEqual(again, req) {
			t.Fatalf("%s: decoded as %+v, re-encoded as %s, decoded again as %+v", data, *req, buf.Bytes(), *again)
		}

		// Round trip through json.Marshal, which escapes HTML characters.
		// Without the id: escaping can push it over its length limit.
		noID := *req
		noID.ID = nil
		b, err := json.Marshal(&noID)
		if err != nil {
			t.Fatal(err)
		}
		again, err = protocol.DecodeNative(b)
		if err != nil {
			t.Fatalf("%s: re-encoded as %s: %v", data, b, err)
		}
		if !reflect.DeepEqual(again, &noID) {
			t.Fatalf("%s: decoded as %+v, re-encoded as %s, decoded again as %+v", data, noID, b, *again)
		}
		checkIDRule(t, data)
	})
}

// checkIDRule checks that, used as the id of a frame, a string or number
// token is accepted exactly when chat.ValidID accepts it.
func checkIDRule(t *testing.T, tok []byte) {
	if len(tok) == 0 || !json.Valid(tok) {
		return
	}
	switch c := tok[0]; {
	case c == '"', c == '-', c >= '0' && c <= '9':
	default:
		return
	}
	switch tok[len(tok)-1] {
	case ' ', '\t', '\r', '\n':
		return
	}
	frame := append(append([]byte(`{"type":"ping","id":`), tok...), '}')
	req, err := protocol.DecodeNative(frame)
	want := chat.ValidID(tok) && utf8.Valid(tok)
	if got := err == nil; got != want {
		t.Fatalf("id %s: accepted %v, want %v (err %v)", tok, got, want, err)
	}
	if err == nil && !bytes.Equal(req.ID, tok) {
		t.Fatalf("id %s recovered as %s", tok, req.ID)
	}
}

// FuzzNativeEncode checks that Encode sizes its output exactly and, for
// an object payload, produces the object of the type, the id and the
// payload members.
func FuzzNativeEncode(f *testing.F) {
	f.Add("message", uint8(1), []byte(`{"room":"r1","message":{"id":"m1","text":"}{"}}`))
	f.Add("pong", uint8(0), []byte(`{}`))
	f.Add("pong", uint8(2), []byte(" { } "))
	f.Add("a\"\\\n\x00\u2028\xff", uint8(0), []byte(`null`))
	f.Add("left", uint8(3), []byte(`{"room":"r","room":"s"}`))
	f.Add("x", uint8(4), []byte(`[1]`))
	f.Fuzz(func(t *testing.T, typ string, idKind uint8, payload []byte) {
		ids := []string{``, `7`, `"req-1"`, ` -1.5e3 `, `""`}
		id := ids[int(idKind)%len(ids)]
		e := &chat.Event{Type: typ, ReplyTo: json.RawMessage(id), Payload: payload}
		got := protocol.Native{}.Encode(e)
		if len(got) != cap(got) {
			t.Fatalf("len %d, cap %d", len(got), cap(got))
		}
		p := bytes.TrimSpace(payload)
		if !json.Valid(p) || len(p) == 0 || p[0] != '{' {
			// Unless it looks like an object, the payload is left out.
			if len(p) < 2 || p[0] != '{' || p[len(p)-1] != '}' {
				if !json.Valid(got) || !utf8.Valid(got) {
					t.Fatalf("Encode(%q, %s, %q) = %q: not valid UTF-8 JSON", typ, id, payload, got)
				}
			}
			return
		}
		if !json.Valid(got) {
			t.Fatalf("Encode(%q, %s, %s) = %s: not valid JSON", typ, id, payload, got)
		}
		// Each invalid byte of the type reads as U+FFFD. Unmarshalling
		// into a map lets later members win: the payload's come last, as
		// in the frame.
		want := map[string]any{"type": string([]rune(typ))}
		if id := bytes.TrimSpace([]byte(id)); len(id) > 0 {
			var v any
			mustUnmarshal(t, id, &v)
			want["id"] = v
		}
		mustUnmarshal(t, p, &want)
		var gotMap map[string]any
		mustUnmarshal(t, got, &gotMap)
		if !reflect.DeepEqual(gotMap, want) {
			t.Fatalf("Encode(%q, %s, %s) = %s\ndecodes to %v\nwant %v", typ, id, payload, got, gotMap, want)
		}
	})
}
