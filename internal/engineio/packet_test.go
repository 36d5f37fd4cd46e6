package engineio_test

import (
	"errors"
	"strings"
	"testing"

	"pocketchat/internal/engineio"
)

// Every packet type, as the real clients and this server put them on the
// wire (see testdata/captured.jsonl).
func TestDecodePacket(t *testing.T) {
	tests := []struct {
		name    string
		version int
		in      string
		want    engineio.Packet
	}{
		{"open", 4, `0{"sid":"Rou4DSAVXpEii2QV98FB","upgrades":[],"pingInterval":25000,"pingTimeout":35000,"maxPayload":65536}`,
			engineio.Packet{Type: engineio.Open, Data: `{"sid":"Rou4DSAVXpEii2QV98FB","upgrades":[],"pingInterval":25000,"pingTimeout":35000,"maxPayload":65536}`}},
		{"close", 4, "1", engineio.Packet{Type: engineio.Close}},
		{"ping v4 from the server", 4, "2", engineio.Packet{Type: engineio.Ping}},
		{"ping v3 from the client", 3, "2", engineio.Packet{Type: engineio.Ping}},
		{"probe", 4, "2probe", engineio.Packet{Type: engineio.Ping, Data: "probe"}},
		{"pong", 4, "3", engineio.Packet{Type: engineio.Pong}},
		{"probe answer", 3, "3probe", engineio.Packet{Type: engineio.Pong, Data: "probe"}},
		{"message", 4, `421["send",{"room":"5wlvyo6hix57dt5","text":"héllo wörld € 😀"}]`,
			engineio.Packet{Type: engineio.Message, Data: `21["send",{"room":"5wlvyo6hix57dt5","text":"héllo wörld € 😀"}]`}},
		{"empty message", 4, "4", engineio.Packet{Type: engineio.Message}},
		{"upgrade", 4, "5", engineio.Packet{Type: engineio.Upgrade}},
		{"noop", 3, "6", engineio.Packet{Type: engineio.Noop}},
		{"v4 base64 binary", 4, "bAQID", engineio.Packet{Type: engineio.Message, Data: "\x01\x02\x03", Binary: true}},
		{"v3 base64 binary", 3, "b4AQID", engineio.Packet{Type: engineio.Message, Data: "\x01\x02\x03", Binary: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := engineio.DecodePacket(tt.version, tt.in)
			if err != nil {
				t.Fatalf("DecodePacket(%q): %v", tt.in, err)
			}
			if got != tt.want {
				t.Errorf("DecodePacket(%q) = %+v, want %+v", tt.in, got, tt.want)
			}
			if tt.want.Binary {
				return
			}
			if enc := string(engineio.AppendPacket(nil, got.Type, got.Data)); enc != tt.in {
				t.Errorf("AppendPacket = %q, want %q", enc, tt.in)
			}
		})
	}
}

func TestDecodePacketErrors(t *testing.T) {
	tests := []struct {
		name    string
		version int
		in      string
	}{
		{"empty", 4, ""},
		{"type out of range", 4, "7"},
		{"letter", 4, "x"},
		{"v3 base64 without type", 3, "b"},
		{"v3 base64 bad type", 3, "b9AQID"},
		{"bad base64", 4, "b!!!"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := engineio.DecodePacket(tt.version, tt.in)
			if !errors.Is(err, engineio.ErrPacket) {
				t.Fatalf("DecodePacket(%q) error = %v, want ErrPacket", tt.in, err)
			}
		})
	}
}

func TestPayloads(t *testing.T) {
	tests := []struct {
		name    string
		version int
		in      string
		want    []engineio.Packet
	}{
		// socket.io-client 4: CONNECT reply and hello in one poll.
		{"v4 two packets", 4, "40{\"sid\":\"adx9t4xHwQehWXM1RlcO\"}\x1e42[\"hello\",{}]", []engineio.Packet{
			{Type: engineio.Message, Data: `0{"sid":"adx9t4xHwQehWXM1RlcO"}`},
			{Type: engineio.Message, Data: `2["hello",{}]`},
		}},
		{"v4 one packet", 4, "3", []engineio.Packet{{Type: engineio.Pong}}},
		// socket.io-client 4 posting a binary attachment.
		{"v4 with binary", 4, "451-2[\"send\",{\"text\":{\"_placeholder\":true,\"num\":0}}]\x1ebAQID", []engineio.Packet{
			{Type: engineio.Message, Data: `51-2["send",{"text":{"_placeholder":true,"num":0}}]`},
			{Type: engineio.Message, Data: "\x01\x02\x03", Binary: true},
		}},
		// socket.io-client 2: lengths in UTF-16 code units; "€" is one,
		// "😀" two, though they take 3 and 4 bytes.
		{"v3 utf-16 lengths", 3, `64:421["send",{"room":"5wlvyo6hix57dt5","text":"héllo wörld € 😀"}]`, []engineio.Packet{
			{Type: engineio.Message, Data: `21["send",{"room":"5wlvyo6hix57dt5","text":"héllo wörld € 😀"}]`},
		}},
		{"v3 handshake", 3, `94:0{"sid":"YKucZy6nmk17_1kSr_d1","upgrades":["websocket"],"pingInterval":500,"pingTimeout":1000}2:40`, []engineio.Packet{
			{Type: engineio.Open, Data: `{"sid":"YKucZy6nmk17_1kSr_d1","upgrades":["websocket"],"pingInterval":500,"pingTimeout":1000}`},
			{Type: engineio.Message, Data: "0"},
		}},
		{"v3 ping", 3, "1:2", []engineio.Packet{{Type: engineio.Ping}}},
		{"v3 noop", 3, "1:6", []engineio.Packet{{Type: engineio.Noop}}},
		{"v3 with base64 binary", 3, `3:4116:b4AQID`, []engineio.Packet{
			{Type: engineio.Message, Data: "11"},
			{Type: engineio.Message, Data: "\x01\x02\x03", Binary: true},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := engineio.DecodePayload(tt.version, tt.in)
			if err != nil {
				t.Fatalf("DecodePayload: %v", err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %d packets %+v, want %+v", len(got), got, tt.want)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Errorf("packet %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestAppendPayload(t *testing.T) {
	packets := [][]byte{[]byte("40"), []byte(`42["a","😀€"]`)}
	if got, want := string(engineio.AppendPayload(nil, 4, packets...)), "40\x1e42[\"a\",\"😀€\"]"; got != want {
		t.Errorf("v4 = %q, want %q", got, want)
	}
	if got, want := string(engineio.AppendPayload(nil, 3, packets...)), `2:4013:42["a","😀€"]`; got != want {
		t.Errorf("v3 = %q, want %q", got, want)
	}
}

func TestDecodePayloadErrors(t *testing.T) {
	tests := []struct {
		name    string
		version int
		in      string
	}{
		{"v4 empty", 4, ""},
		{"v4 empty packet", 4, "40\x1e"},
		{"v4 bad type", 4, "40\x1e9"},
		{"v4 too many packets", 4, strings.Repeat("3\x1e", 5000) + "3"},
		{"v3 empty", 3, ""},
		{"v3 no colon", 3, "12"},
		{"v3 no length", 3, ":4"},
		{"v3 bad length", 3, "a:4"},
		{"v3 signed length", 3, "+1:4"},
		{"v3 overrun", 3, "5:4ab"},
		{"v3 splits a surrogate pair", 3, "2:4😀"},
		{"v3 long length", 3, "12345678901:4"},
		{"v3 bad packet", 3, "2:9x"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got, err := engineio.DecodePayload(tt.version, tt.in); !errors.Is(err, engineio.ErrPacket) {
				t.Fatalf("DecodePayload(%q) = %+v, %v; want ErrPacket", tt.in, got, err)
			}
		})
	}
}

func TestDecodeBinaryPayload(t *testing.T) {
	// A text packet "4€" (4 bytes) and a binary message 01 02 03 04.
	body := []byte{0, 4, 255, '4', 0xe2, 0x82, 0xac, 1, 5, 255, 4, 1, 2, 3, 4}
	got, err := engineio.DecodeBinaryPayload(body)
	if err != nil {
		t.Fatal(err)
	}
	want := []engineio.Packet{
		{Type: engineio.Message, Data: "€"},
		{Type: engineio.Message, Data: "\x01\x02\x03\x04", Binary: true},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Fatalf("got %+v, want %+v", got, want)
	}
	for _, bad := range [][]byte{
		nil,
		{2, 1, 255, '4'},                       // unknown header
		{0, 255, '4'},                          // no length
		{0, 1},                                 // no separator
		{0, 5, 255, '4'},                       // overrun
		{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 1, 255}, // length too long
		{0, 11, 255, '4'},                      // digit out of range
		{1, 1, 255, 9},                         // bad binary type
	} {
		if _, err := engineio.DecodeBinaryPayload(bad); !errors.Is(err, engineio.ErrPacket) {
			t.Errorf("DecodeBinaryPayload(%v) error = %v, want ErrPacket", bad, err)
		}
	}
}

func TestUTF16Len(t *testing.T) {
	for s, want := range map[string]int{"": 0, "abc": 3, "é": 1, "€": 1, "😀": 2, "a😀b€": 5, "\xff": 1} {
		if got := engineio.UTF16Len(s); got != want {
			t.Errorf("UTF16Len(%q) = %d, want %d", s, got, want)
		}
	}
}
