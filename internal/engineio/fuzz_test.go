package engineio_test

import (
	"errors"
	"testing"

	"pocketchat/internal/engineio"
)

// FuzzDecodePacket checks that any text decodes to a packet or to
// ErrPacket, and that a text packet encodes back to its input.
func FuzzDecodePacket(f *testing.F) {
	for _, s := range []string{"0{\"sid\":\"x\"}", "1", "2", "2probe", "3probe", "4hello", "5", "6", "bAQID", "b4AQID", "", "7", "b"} {
		f.Add(4, s)
		f.Add(3, s)
	}
	f.Fuzz(func(t *testing.T, version int, s string) {
		version = 3 + version&1
		p, err := engineio.DecodePacket(version, s)
		if err != nil {
			if !errors.Is(err, engineio.ErrPacket) {
				t.Fatalf("error %v is not ErrPacket", err)
			}
			return
		}
		if p.Type < engineio.Open || p.Type > engineio.Noop {
			t.Fatalf("type %q out of range", p.Type)
		}
		if !p.Binary {
			if got := string(engineio.AppendPacket(nil, p.Type, p.Data)); got != s {
				t.Fatalf("round trip: %q → %q", s, got)
			}
		}
	})
}

// FuzzDecodePayload checks that any body decodes to packets or to
// ErrPacket, and that the text packets of a payload encode to a payload
// that decodes to the same packets.
func FuzzDecodePayload(f *testing.F) {
	f.Add(4, "40{\"sid\":\"a\"}\x1e42[\"hello\",{}]")
	f.Add(4, "451-[\"send\",{\"_placeholder\":true,\"num\":0}]\x1ebAQID")
	f.Add(4, "3")
	f.Add(3, `64:421["send",{"room":"5wlvyo6hix57dt5","text":"héllo wörld € 😀"}]`)
	f.Add(3, "1:22:40")
	f.Add(3, "3:4116:b4AQID")
	f.Add(3, "2:4😀")
	f.Add(3, "0:")
	f.Fuzz(func(t *testing.T, version int, body string) {
		version = 3 + version&1
		packets, err := engineio.DecodePayload(version, body)
		if err != nil {
			if !errors.Is(err, engineio.ErrPacket) {
				t.Fatalf("error %v is not ErrPacket", err)
			}
			return
		}
		var enc [][]byte
		for _, p := range packets {
			if p.Binary {
				return
			}
			if version == 4 && containsSeparator(p.Data) {
				t.Fatalf("packet %q holds the separator", p.Data)
			}
			enc = append(enc, engineio.AppendPacket(nil, p.Type, p.Data))
		}
		again, err := engineio.DecodePayload(version, string(engineio.AppendPayload(nil, version, enc...)))
		if err != nil {
			t.Fatalf("re-encoded payload does not decode: %v", err)
		}
		if len(again) != len(packets) {
			t.Fatalf("round trip: %d packets, then %d", len(packets), len(again))
		}
		for i := range again {
			if again[i] != packets[i] {
				t.Fatalf("round trip: packet %d %+v, then %+v", i, packets[i], again[i])
			}
		}
	})
}

func containsSeparator(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] == 0x1e {
			return true
		}
	}
	return false
}

// FuzzDecodeBinaryPayload checks that any body decodes to packets or to
// ErrPacket.
func FuzzDecodeBinaryPayload(f *testing.F) {
	f.Add([]byte{0, 4, 255, '4', 0xe2, 0x82, 0xac, 1, 5, 255, 4, 1, 2, 3, 4})
	f.Add([]byte{0, 1, 255, '2'})
	f.Add([]byte{1, 1, 255})
	f.Fuzz(func(t *testing.T, body []byte) {
		packets, err := engineio.DecodeBinaryPayload(body)
		if err != nil {
			if !errors.Is(err, engineio.ErrPacket) {
				t.Fatalf("error %v is not ErrPacket", err)
			}
			return
		}
		if len(packets) == 0 {
			t.Fatal("no packet and no error")
		}
	})
}
