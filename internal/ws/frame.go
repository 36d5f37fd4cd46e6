package ws

import (
	"encoding/binary"
	"errors"
	"unicode/utf8"

	"github.com/gorilla/websocket"
)

// Reading client frames from bytes, for polled connections (see Poller):
// they are read from the socket only when it has data, into a buffer
// borrowed for that read, so the framing is done here rather than by
// gorilla, whose reader needs a goroutine parked on the socket.

// Opcodes (RFC 6455, section 5.2).
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// maxHeader is the longest frame header: 2 bytes, an 8-byte length and
// a 4-byte mask key.
const maxHeader = 14

// ProtocolError is a client frame that breaks RFC 6455: the connection
// ends with close code 1002.
type ProtocolError struct{ Reason string }

func (e *ProtocolError) Error() string { return "ws: protocol error: " + e.Reason }

func protocolErr(reason string) error { return &ProtocolError{Reason: reason} }

// header is one frame's header.
type header struct {
	fin    bool
	op     byte
	length int    // payload bytes
	mask   []byte // 4 bytes, within the buffer the header was parsed from
}

// parseHeader parses the header at the start of b. It returns the header
// and its size, or size 0 if b does not hold the whole header yet. Frames
// a server must refuse are errors: reserved bits set (no extension is
// negotiated), unknown opcodes, unmasked frames, fragmented or long
// control frames, lengths with the top bit set.
func parseHeader(b []byte) (h header, size int, err error) {
	if len(b) < 2 {
		return h, 0, nil
	}
	h.fin = b[0]&0x80 != 0
	h.op = b[0] & 0x0F
	if b[0]&0x70 != 0 {
		return h, 0, protocolErr("reserved bits set")
	}
	switch h.op {
	case opContinuation, opText, opBinary, opClose, opPing, opPong:
	default:
		return h, 0, protocolErr("unknown opcode")
	}
	if b[1]&0x80 == 0 {
		return h, 0, protocolErr("client frame not masked")
	}
	size = 2
	switch n := b[1] & 0x7F; n {
	case 126:
		if len(b) < 4 {
			return h, 0, nil
		}
		h.length = int(binary.BigEndian.Uint16(b[2:]))
		size = 4
	case 127:
		if len(b) < 10 {
			return h, 0, nil
		}
		n64 := binary.BigEndian.Uint64(b[2:])
		if n64 > 1<<62 {
			return h, 0, protocolErr("frame length out of range")
		}
		h.length = int(n64)
		size = 10
	default:
		h.length = int(n)
	}
	if h.op >= opClose && (!h.fin || h.length > 125) {
		return h, 0, protocolErr("control frame fragmented or longer than 125 bytes")
	}
	if len(b) < size+4 {
		return h, 0, nil
	}
	h.mask = b[size : size+4]
	return h, size + 4, nil
}

// unmask XORs payload with the 4-byte key, in place.
func unmask(key, payload []byte) {
	var k [8]byte
	for i := range k {
		k[i] = key[i%4]
	}
	k64 := binary.LittleEndian.Uint64(k[:])
	i := 0
	for ; i+8 <= len(payload); i += 8 {
		v := binary.LittleEndian.Uint64(payload[i:]) ^ k64
		binary.LittleEndian.PutUint64(payload[i:], v)
	}
	for ; i < len(payload); i++ {
		payload[i] ^= key[i%4]
	}
}

// frameSink receives what a frameReader reads.
type frameSink interface {
	// gotText gets a whole text message, in a slice of its own.
	gotText(msg []byte)
	// gotPing gets a ping's payload (valid only during the call).
	gotPing(payload []byte)
}

// frameReader turns the bytes a client sent into messages and control
// frames. It keeps only the fragments of an unfinished message between
// reads; the bytes themselves are the caller's.
type frameReader struct {
	max  int    // the largest message, in bytes
	frag []byte // fragments so far of a message not finished
	inFr bool   // a fragmented message is open
}

// consume handles the whole frames at the start of b, unmasking them in
// place, and returns how many bytes they took and, when b ends with part
// of a frame, how many bytes that frame needs in all (0 if unknown yet:
// its header is not complete). A message or control frame is handed to
// sink as soon as it is complete; stop is asked after each one, and when
// it says so consume returns at once. The error ends the connection: a
// *ProtocolError, websocket.ErrReadLimit, ErrBinary, ErrNotUTF8 or the client's close
// (*websocket.CloseError).
func (r *frameReader) consume(b []byte, sink frameSink, stop func() bool) (used, need int, err error) {
	for {
		h, hs, err := parseHeader(b[used:])
		if err != nil {
			return used, 0, err
		}
		if hs == 0 {
			return used, 0, nil
		}
		switch h.op {
		case opBinary:
			return used, 0, ErrBinary
		case opText:
			if r.inFr {
				return used, 0, protocolErr("new message inside a fragmented one")
			}
		case opContinuation:
			if !r.inFr {
				return used, 0, protocolErr("continuation without a message")
			}
		}
		if h.op < opClose && len(r.frag)+h.length > r.max {
			return used, 0, websocket.ErrReadLimit
		}
		if len(b)-used < hs+h.length {
			return used, hs + h.length, nil
		}
		payload := b[used+hs : used+hs+h.length]
		unmask(h.mask, payload)
		used += hs + h.length
		switch h.op {
		case opText:
			if h.fin {
				if !utf8.Valid(payload) {
					return used, 0, ErrNotUTF8
				}
				sink.gotText(append([]byte(nil), payload...))
			} else {
				r.frag, r.inFr = append(r.frag[:0], payload...), true
			}
		case opContinuation:
			r.frag = append(r.frag, payload...)
			if h.fin {
				msg := r.frag
				r.frag, r.inFr = nil, false
				if !utf8.Valid(msg) {
					return used, 0, ErrNotUTF8
				}
				sink.gotText(msg)
			}
		case opClose:
			return used, 0, closeError(payload)
		case opPing:
			sink.gotPing(payload)
		case opPong:
			// Arriving is all it has to do: the connection is alive.
		}
		if stop() {
			return used, 0, nil
		}
	}
}

// closeError is the client's close frame as gorilla reports one, so that
// both readers end a connection the same way; a malformed close is a
// protocol error.
func closeError(payload []byte) error {
	switch {
	case len(payload) == 0:
		return &websocket.CloseError{Code: websocket.CloseNoStatusReceived}
	case len(payload) == 1:
		return protocolErr("close frame with a 1-byte body")
	}
	code := int(binary.BigEndian.Uint16(payload))
	if !validCloseCode(code) {
		return protocolErr("invalid close code")
	}
	text := payload[2:]
	if !utf8.Valid(text) {
		return protocolErr("close reason not UTF-8")
	}
	return &websocket.CloseError{Code: code, Text: string(text)}
}

// validCloseCode reports whether a client may send code (RFC 6455 7.4 and
// the IANA registry; 1005, 1006 and 1015 are never sent on the wire).
func validCloseCode(code int) bool {
	switch {
	case code >= 1000 && code <= 1003, code >= 1007 && code <= 1014:
		return true
	case code >= 3000 && code <= 4999:
		return true
	}
	return false
}

// errNoPong ends a polled connection from which nothing arrived within
// the pong wait.
var errNoPong = errors.New("ws: nothing from the client within the pong wait")
