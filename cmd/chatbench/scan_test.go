package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"testing"
)

// A message frame as the server's native encoder writes it.
const testMessageFrame = `{"type":"message","room":"r0000000000001","message":{"id":"m0000000000001",` +
	`"room":"r0000000000001","seq":42,"author":{"id":"u0000000000001","name":"bench \"00001\" {x}",` +
	`"avatar":""},"text":"cb 1a2b3c4d 7 3 123456789","kind":"text","created":"2026-11-22T04:00:00Z",` +
	`"updated":"2026-11-22T04:00:00Z"}}`

func TestJSONMember(t *testing.T) {
	tests := []struct {
		obj, key, want string
	}{
		{`{"a":1,"b":"x"}`, "b", `"x"`},
		{`{"a":1,"b":"x"}`, "a", `1`},
		{` { "a" : [1,{"b":2}] , "b" : {"c":"}"} } `, "b", `{"c":"}"}`},
		{`{"a":"q\"uote","b":true}`, "b", `true`},
		{`{"a":"back\\","b":null}`, "b", `null`},
		{`{"a":1}`, "b", ``},
		{`{"a":{"b":1}}`, "b", ``}, // nested members are not the object's
		{`[1,2]`, "a", ``},
		{`{"a":`, "a", ``},
		{`{"a":"unterminated`, "a", ``},
		{`{"a":1 "b":2}`, "b", ``},
		{``, "a", ``},
		{testMessageFrame, "type", `"message"`},
		{testMessageFrame, "room", `"r0000000000001"`},
	}
	for _, tt := range tests {
		if got := string(jsonMember([]byte(tt.obj), tt.key)); got != tt.want {
			t.Errorf("jsonMember(%s, %q) = %s, want %s", tt.obj, tt.key, got, tt.want)
		}
	}
}

func TestJSONMembers2(t *testing.T) {
	m := jsonMemberFrom([]byte(testMessageFrame), "message")
	seq, text := jsonMembers2(m, "seq", "text")
	if string(seq) != "42" || string(text) != `"cb 1a2b3c4d 7 3 123456789"` {
		t.Errorf("seq, text = %s, %s", seq, text)
	}
	a, b := jsonMembers2([]byte(`{"x":1}`), "seq", "text")
	if a != nil || b != nil {
		t.Errorf("missing members: %q %q", a, b)
	}
}

func TestFrameType(t *testing.T) {
	tests := map[string]string{
		testMessageFrame:               `message`,
		`{"type":"ack","id":3}`:        `ack`,
		`{"id":3,"type":"error"}`:      `error`,
		` {"type" : "joined"}`:         `joined`,
		`{"type":"pr\"esence"}`:        `pr\"esence`,
		`{"id":3}`:                     ``,
		`not json`:                     ``,
		`{"type":"message","room":"x"`: `message`,
		`{"type":"unterminated`:        ``,
		`{"type":1}`:                   ``,
	}
	for frame, want := range tests {
		if got := string(frameType([]byte(frame))); got != want {
			t.Errorf("frameType(%s) = %q, want %q", frame, got, want)
		}
	}
}

func TestClassify(t *testing.T) {
	h := &nativeHandler{}
	for frame, want := range map[string]frameNeed{
		`{"type":"message","room":"r"`:  needWhole,
		`{"type":"ack","id":1`:          needWhole,
		`{"type":"error","id":1`:        needWhole,
		`{"type":"joined","id":-1`:      needHead,
		`{"type":"presence","room":"r"`: needNone,
		`{"type":"typing","room":"r"`:   needNone,
		`{"type":"hello","user"`:        needNone,
		`{"type":"mess`:                 needWhole, // cut short: read it whole
		`{"id":1,"type":"ack"}`:         needWhole, // type not first: read it whole
		``:                              needWhole,
	} {
		if got := h.classify([]byte(frame)); got != want {
			t.Errorf("classify(%s) = %v, want %v", frame, got, want)
		}
	}
}

func TestJSONInt(t *testing.T) {
	for raw, want := range map[string]int64{"0": 0, "42": 42, "-7": -7, "123456789012345678": 123456789012345678} {
		if got, ok := jsonInt([]byte(raw)); !ok || got != want {
			t.Errorf("jsonInt(%s) = %d, %v", raw, got, ok)
		}
	}
	for _, raw := range []string{"", "-", "1.5", "1e3", `"1"`, "1234567890123456789", "null"} {
		if _, ok := jsonInt([]byte(raw)); ok {
			t.Errorf("jsonInt(%s) accepted", raw)
		}
	}
}

// TestJSONMemberMatchesDecoder compares the scan with encoding/json on
// random objects whose values hold quotes, escapes and brackets.
func TestJSONMemberMatchesDecoder(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	pieces := []string{`"`, `\`, `{`, `}`, `[`, `]`, `,`, `:`, `a`, ` `, "é"}
	randString := func() string {
		var s string
		for range r.IntN(8) {
			s += pieces[r.IntN(len(pieces))]
		}
		return s
	}
	var randValue func(depth int) any
	randValue = func(depth int) any {
		switch k := r.IntN(6); {
		case k == 0 && depth < 3:
			m := map[string]any{}
			for range r.IntN(4) {
				m[randString()] = randValue(depth + 1)
			}
			return m
		case k == 1 && depth < 3:
			var a []any
			for range r.IntN(4) {
				a = append(a, randValue(depth+1))
			}
			return a
		case k == 2:
			return r.IntN(1000) - 500
		case k == 3:
			return nil
		default:
			return randString()
		}
	}
	for i := range 2000 {
		obj := map[string]any{}
		for j := range r.IntN(5) {
			obj[fmt.Sprintf("k%d", j)] = randValue(0)
		}
		data, _ := json.Marshal(obj)
		for j := range 6 {
			key := fmt.Sprintf("k%d", j)
			got := jsonMember(data, key)
			want, ok := obj[key]
			if !ok {
				if got != nil {
					t.Fatalf("case %d: %s: found %s for a missing member", i, data, got)
				}
				continue
			}
			wantJSON, _ := json.Marshal(want)
			var gotV any
			if err := json.Unmarshal(got, &gotV); err != nil {
				t.Fatalf("case %d: %s: member %s = %s: %v", i, data, key, got, err)
			}
			gotJSON, _ := json.Marshal(gotV)
			if string(gotJSON) != string(wantJSON) {
				t.Fatalf("case %d: %s: member %s = %s, want %s", i, data, key, gotJSON, wantJSON)
			}
		}
	}
}

// BenchmarkHandleMessage is the tool's per-delivery work on a frame
// already read: what a connection does for each message event.
func BenchmarkHandleMessage(b *testing.B) {
	bn := &bench{run: "1a2b3c4d"}
	c := &conn{got: make([]Delivery, 0, 1024)}
	frame := []byte(testMessageFrame)
	b.ReportAllocs()
	for b.Loop() {
		if !c.handleMessage(bn, frame, 200000000) {
			b.Fatal("not a delivery")
		}
		if len(c.got) == cap(c.got) {
			c.got = c.got[:0]
		}
	}
}

// BenchmarkHandleMessageDecode is the same work done the way the tool
// did it before, with encoding/json, for comparison.
func BenchmarkHandleMessageDecode(b *testing.B) {
	type frameT struct {
		Type    string          `json:"type"`
		ID      json.RawMessage `json:"id"`
		Code    string          `json:"code"`
		Message json.RawMessage `json:"message"`
	}
	type messageT struct {
		Seq  int64           `json:"seq"`
		Text json.RawMessage `json:"text"`
	}
	frame := []byte(testMessageFrame)
	got := make([]Delivery, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var f frameT
		if json.Unmarshal(frame, &f) != nil || f.Type != "message" {
			b.Fatal("bad frame")
		}
		var m messageT
		if json.Unmarshal(f.Message, &m) != nil {
			b.Fatal("bad message")
		}
		sender, sseq, sent, ok := parseText(jsonString(m.Text), "1a2b3c4d")
		if !ok {
			b.Fatal("not a delivery")
		}
		got = append(got, Delivery{Sender: sender, SSeq: sseq, Seq: m.Seq, Lat: 200000000 - sent})
		if len(got) == cap(got) {
			got = got[:0]
		}
	}
}
