package ws

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"testing"

	"github.com/gorilla/websocket"
)

var testKey = []byte{0x9d, 0x02, 0x5b, 0xe4}

// clientFrame is a masked client frame; b0 holds FIN, RSV and opcode.
func clientFrame(b0 byte, payload []byte) []byte {
	f := []byte{b0}
	switch n := len(payload); {
	case n < 126:
		f = append(f, 0x80|byte(n))
	case n <= 0xFFFF:
		f = binary.BigEndian.AppendUint16(append(f, 0x80|126), uint16(n))
	default:
		f = binary.BigEndian.AppendUint64(append(f, 0x80|127), uint64(n))
	}
	f = append(f, testKey...)
	for i, b := range payload {
		f = append(f, b^testKey[i%4])
	}
	return f
}

// header64 is a header with a 64-bit length, whatever the length.
func header64(b0 byte, n uint64) []byte {
	h := binary.BigEndian.AppendUint64([]byte{b0, 0x80 | 127}, n)
	return append(h, testKey...)
}

func TestParseHeaderIncomplete(t *testing.T) {
	for _, full := range [][]byte{
		clientFrame(0x81, make([]byte, 5))[:6],             // 7-bit length
		clientFrame(0x81, make([]byte, 300))[:8],           // 16-bit
		clientFrame(0x81, make([]byte, 70000))[:14],        // 64-bit
		clientFrame(0x89, make([]byte, 125))[:6],           // control frame
		header64(0x82, 1<<62),                              // the largest length
		append([]byte{0x81, 0x80 | 126, 0, 0}, 1, 2, 3, 4), // a 16-bit zero
	} {
		for n := range len(full) {
			h, size, err := parseHeader(full[:n])
			if size != 0 || err != nil {
				t.Errorf("parseHeader(% x) = %+v, %d, %v; want size 0: incomplete", full[:n], h, size, err)
			}
		}
		if _, size, err := parseHeader(full); size != len(full) || err != nil {
			t.Errorf("parseHeader(% x) = size %d, %v; want %d", full, size, err, len(full))
		}
	}
}

func TestParseHeaderLengths(t *testing.T) {
	if strconv.IntSize < 64 {
		t.Skip("lengths beyond 32 bits")
	}
	for _, tt := range []struct {
		b      []byte
		fin    bool
		op     byte
		length int
		size   int
	}{
		{clientFrame(0x81, nil), true, opText, 0, 6},
		{clientFrame(0x01, make([]byte, 125)), false, opText, 125, 6},
		{clientFrame(0x80, make([]byte, 126)), true, opContinuation, 126, 8},
		{clientFrame(0x82, make([]byte, 0xFFFF)), true, opBinary, 0xFFFF, 8},
		{clientFrame(0x81, make([]byte, 0x10000)), true, opText, 0x10000, 14},
		{append([]byte{0x81, 0x80 | 126, 0, 5}, testKey...), true, opText, 5, 8}, // non-minimal: accepted
		{header64(0x81, 1<<32+7), true, opText, 1<<32 + 7, 14},
		{header64(0x81, 1<<62), true, opText, 1 << 62, 14},
		{clientFrame(0x89, make([]byte, 125)), true, opPing, 125, 6},
		{clientFrame(0x8A, nil), true, opPong, 0, 6},
	} {
		h, size, err := parseHeader(tt.b)
		if err != nil || size != tt.size || h.fin != tt.fin || h.op != tt.op || h.length != tt.length {
			t.Errorf("parseHeader(% .14x) = fin %v op %d length %d size %d err %v; want fin %v op %d length %d size %d",
				tt.b, h.fin, h.op, h.length, size, err, tt.fin, tt.op, tt.length, tt.size)
			continue
		}
		if !bytes.Equal(h.mask, testKey) {
			t.Errorf("parseHeader(% .14x): mask % x, want % x", tt.b, h.mask, testKey)
		}
	}
}

func TestParseHeaderErrors(t *testing.T) {
	for _, b := range [][]byte{
		header64(0x81, 1<<62+1),
		header64(0x81, 1<<63),
		header64(0x81, 1<<64-1),
		{0x81, 0x05},                             // not masked
		{0xC1, 0x80},                             // RSV1
		{0xA1, 0x80},                             // RSV2
		{0x91, 0x80},                             // RSV3
		{0x83, 0x80},                             // opcode 3
		{0x8B, 0x80},                             // opcode 0xB
		{0x09, 0x80},                             // fragmented ping
		{0x08, 0x80},                             // fragmented close
		{0x8A, 0x80 | 126, 0, 200},               // long pong
		{0x89, 0x80 | 126, 0, 126},               // long ping
		clientFrame(0x88, make([]byte, 126))[:8], // long close
	} {
		_, size, err := parseHeader(b)
		var pe *ProtocolError
		if size != 0 || !errors.As(err, &pe) {
			t.Errorf("parseHeader(% x) = size %d, %v; want a protocol error", b, size, err)
		}
	}
}

func TestUnmask(t *testing.T) {
	key := []byte{0x01, 0x80, 0x7f, 0xfe}
	for n := range 41 {
		for offset := range 8 { // the payload's alignment in its buffer
			buf := make([]byte, offset+n+8)
			for i := range buf {
				buf[i] = byte(i*31 + 7)
			}
			want := bytes.Clone(buf)
			for i := range n {
				want[offset+i] ^= key[i%4]
			}
			unmask(key, buf[offset:offset+n])
			if !bytes.Equal(buf, want) {
				t.Fatalf("unmask of %d bytes at offset %d:\n got % x\nwant % x", n, offset, buf, want)
			}
		}
	}
}

// sink records what a frameReader hands over.
type sink struct{ got []string }

func (s *sink) gotText(msg []byte)     { s.got = append(s.got, "text "+string(msg)) }
func (s *sink) gotPing(payload []byte) { s.got = append(s.got, "ping "+string(payload)) }

func never() bool { return false }

func TestConsumeWholeFrames(t *testing.T) {
	b := concatBytes(
		clientFrame(0x81, []byte("one")),
		clientFrame(0x01, []byte("tw")),
		clientFrame(0x89, []byte("p")),
		clientFrame(0x8A, []byte("pong")),
		clientFrame(0x00, []byte("o")),
		clientFrame(0x80, nil),
		clientFrame(0x81, []byte("three")),
	)
	r := frameReader{max: 100}
	var s sink
	used, need, err := r.consume(b, &s, never)
	if used != len(b) || need != 0 || err != nil {
		t.Fatalf("consume = %d, %d, %v; want %d, 0, nil", used, need, err, len(b))
	}
	want := []string{"text one", "ping p", "text two", "text three"}
	if fmt.Sprint(s.got) != fmt.Sprint(want) {
		t.Errorf("handed over %q, want %q", s.got, want)
	}
}

func TestConsumeNeed(t *testing.T) {
	first := clientFrame(0x81, []byte("first"))
	big := clientFrame(0x81, bytes.Repeat([]byte("b"), 300)) // 8-byte header
	for _, tt := range []struct {
		name       string
		b          []byte
		used, need int
		got        int
	}{
		{"header only", big[:8], 0, 308, 0},
		{"part of the payload", big[:100], 0, 308, 0},
		{"all but one byte", big[:307], 0, 308, 0},
		{"after a whole frame", concatBytes(first, big[:50]), len(first), 308, 1},
		{"part of a header", concatBytes(first, big[:3]), len(first), 0, 1},
		{"nothing", nil, 0, 0, 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := frameReader{max: 1000}
			var s sink
			used, need, err := r.consume(bytes.Clone(tt.b), &s, never)
			if used != tt.used || need != tt.need || err != nil {
				t.Errorf("consume = %d, %d, %v; want %d, %d, nil", used, need, err, tt.used, tt.need)
			}
			if len(s.got) != tt.got {
				t.Errorf("handed over %q, want %d messages", s.got, tt.got)
			}
		})
	}
}

func TestConsumeStop(t *testing.T) {
	b := concatBytes(clientFrame(0x81, []byte("a")), clientFrame(0x89, []byte("p")), clientFrame(0x81, []byte("b")))
	r := frameReader{max: 100}
	var s sink
	stop := func() bool { return len(s.got) == 1 }
	used, need, err := r.consume(b, &s, stop)
	if used != 7 || need != 0 || err != nil || len(s.got) != 1 {
		t.Fatalf("consume with stop after one = %d, %d, %v, %q; want 7, 0, nil and one message", used, need, err, s.got)
	}
	// The rest is read by the next call.
	rest, _, err := r.consume(b[used:], &s, never)
	if rest != len(b)-used || err != nil {
		t.Fatalf("consume of the rest = %d, %v; want %d, nil", rest, err, len(b)-used)
	}
	if want := "[text a ping p text b]"; fmt.Sprint(s.got) != want {
		t.Errorf("handed over %q, want %s", s.got, want)
	}
}

func TestConsumeErrors(t *testing.T) {
	isProtocol := func(err error) bool { return errors.As(err, new(*ProtocolError)) }
	isClose := func(code int) func(error) bool {
		return func(err error) bool {
			var ce *websocket.CloseError
			return errors.As(err, &ce) && ce.Code == code
		}
	}
	for _, tt := range []struct {
		name string
		b    []byte
		ok   func(error) bool
	}{
		{"binary", clientFrame(0x82, []byte("x")), func(err error) bool { return errors.Is(err, ErrBinary) }},
		{"text not UTF-8", clientFrame(0x81, []byte("\xc3")), func(err error) bool { return errors.Is(err, ErrNotUTF8) }},
		{"fragments not UTF-8 together", concatBytes(clientFrame(0x01, []byte("\xc3")), clientFrame(0x80, []byte("("))), func(err error) bool { return errors.Is(err, ErrNotUTF8) }},
		{"too big", clientFrame(0x81, make([]byte, 11)), func(err error) bool { return errors.Is(err, websocket.ErrReadLimit) }},
		{"too big, header only", clientFrame(0x81, make([]byte, 11))[:6], func(err error) bool { return errors.Is(err, websocket.ErrReadLimit) }},
		{"fragments too big", concatBytes(clientFrame(0x01, make([]byte, 6)), clientFrame(0x80, make([]byte, 5))), func(err error) bool { return errors.Is(err, websocket.ErrReadLimit) }},
		{"continuation first", clientFrame(0x80, nil), isProtocol},
		{"text inside fragmented", concatBytes(clientFrame(0x01, nil), clientFrame(0x81, nil)), isProtocol},
		{"close, no body", clientFrame(0x88, nil), isClose(websocket.CloseNoStatusReceived)},
		{"close 1000", clientFrame(0x88, []byte{0x03, 0xe8}), isClose(1000)},
		{"close 4999", clientFrame(0x88, []byte{0x13, 0x87, 'o', 'k'}), isClose(4999)},
		{"close 1-byte", clientFrame(0x88, []byte{3}), isProtocol},
		{"close 1005", clientFrame(0x88, []byte{0x03, 0xed}), isProtocol},
		{"close 1006", clientFrame(0x88, []byte{0x03, 0xee}), isProtocol},
		{"close 1015", clientFrame(0x88, []byte{0x03, 0xf7}), isProtocol},
		{"close 5000", clientFrame(0x88, []byte{0x13, 0x88}), isProtocol},
		{"close not UTF-8", clientFrame(0x88, []byte{0x03, 0xe8, 0xc3}), isProtocol},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := frameReader{max: 10}
			var s sink
			if _, _, err := r.consume(tt.b, &s, never); !tt.ok(err) {
				t.Errorf("consume = %v", err)
			}
			if len(s.got) != 0 {
				t.Errorf("handed over %q", s.got)
			}
		})
	}
}

func concatBytes(bs ...[]byte) []byte { return bytes.Join(bs, nil) }
