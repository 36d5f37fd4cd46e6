package ws

import (
	"bytes"
	"fmt"
	"slices"
	"testing"
)

// FuzzFrameReader feeds arbitrary bytes to a frameReader, whole and split
// in two at a fuzzed position the way drain carries a frame's start over
// to the next read: it must not panic, never hand over a message larger
// than its max, and read the same either way.
func FuzzFrameReader(f *testing.F) {
	f.Add(clientFrame(0x81, []byte("hello")), 3)
	f.Add(concatBytes(clientFrame(0x01, []byte("frag")), clientFrame(0x89, []byte("p")), clientFrame(0x80, []byte("ment"))), 9)
	f.Add(concatBytes(clientFrame(0x81, bytes.Repeat([]byte("x"), 300)), clientFrame(0x88, []byte{0x03, 0xe8})), 200)
	f.Fuzz(func(t *testing.T, data []byte, split int) {
		const max = 4096
		whole := readChunks(t, max, data)
		if split < 0 {
			split = -(split + 1)
		}
		split %= len(data) + 1
		parts := readChunks(t, max, data[:split], data[split:])
		if !slices.Equal(whole.got, parts.got) || whole.err != parts.err {
			t.Fatalf("read whole: %q, %s\nsplit at %d: %q, %s", whole.got, whole.err, split, parts.got, parts.err)
		}
		if whole.err == "" && whole.left != parts.left {
			t.Fatalf("read whole leaves %d bytes, split at %d leaves %d", whole.left, split, parts.left)
		}
	})
}

// fuzzResult is what a frameReader made of a stream.
type fuzzResult struct {
	got  []string // what it handed over
	err  string   // the error that ended reading
	left int      // bytes not consumed
}

// readChunks reads chunks as successive reads of a stream, checking what
// consume returns.
func readChunks(t *testing.T, max int, chunks ...[]byte) fuzzResult {
	r := frameReader{max: max}
	s := &checkedSink{t: t, max: max}
	var carry []byte // the start of a frame, kept for the next read
	for _, chunk := range chunks {
		b := append(carry, chunk...) // a copy: consume unmasks in place
		used, need, err := r.consume(b, s, never)
		if used < 0 || used > len(b) {
			t.Fatalf("consume of %d bytes used %d", len(b), used)
		}
		carry = append([]byte(nil), b[used:]...)
		if err != nil {
			return fuzzResult{got: s.got, err: err.Error()}
		}
		if need != 0 && (need <= len(carry) || need > maxHeader+max) {
			t.Fatalf("consume left %d bytes and needs %d for the frame (max %d)", len(carry), need, max)
		}
	}
	return fuzzResult{got: s.got, left: len(carry)}
}

// checkedSink records what it gets and checks the sizes.
type checkedSink struct {
	t   *testing.T
	max int
	got []string
}

func (s *checkedSink) gotText(msg []byte) {
	if len(msg) > s.max {
		s.t.Fatalf("message of %d bytes handed over, max %d", len(msg), s.max)
	}
	s.got = append(s.got, "text "+string(msg))
}

func (s *checkedSink) gotPing(payload []byte) {
	if len(payload) > 125 {
		s.t.Fatalf("ping of %d bytes handed over", len(payload))
	}
	s.got = append(s.got, fmt.Sprintf("ping %q", payload))
}
