package engineio

import (
	"strconv"
	"strings"
	"unicode/utf8"
)

// separator ends each packet but the last in a v4 polling payload.
const separator = '\x1e'

// maxPayloadPackets bounds the packets of one polling payload, so a body of
// separators cannot make a long slice of empty work.
const maxPayloadPackets = 1 << 12

// DecodePayload decodes the text body of a polling request into packets.
//
// Version 4 separates packets with the record separator \x1e. Version 3
// prefixes each packet with its length and a colon, the length counted in
// UTF-16 code units as JavaScript's String.length counts them: "€" is one
// unit, "😀" two. A v3 length that ends inside a surrogate pair, overruns the
// body or is not a decimal number is an error, as is any malformed packet.
func DecodePayload(version int, body string) ([]Packet, error) {
	if version == 4 {
		return decodePayloadV4(body)
	}
	return decodePayloadV3(body)
}

func decodePayloadV4(body string) ([]Packet, error) {
	if body == "" {
		return nil, packetError("empty payload")
	}
	if n := strings.Count(body, string(separator)); n >= maxPayloadPackets {
		return nil, packetError("more than %d packets in a payload", maxPayloadPackets)
	}
	var out []Packet
	for part := range strings.SplitSeq(body, string(separator)) {
		p, err := DecodePacket(4, part)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}

func decodePayloadV3(body string) ([]Packet, error) {
	if body == "" {
		return nil, packetError("empty payload")
	}
	var out []Packet
	for len(body) > 0 {
		if len(out) >= maxPayloadPackets {
			return nil, packetError("more than %d packets in a payload", maxPayloadPackets)
		}
		colon := strings.IndexByte(body, ':')
		if colon <= 0 || colon > 9 {
			return nil, packetError("missing packet length")
		}
		n, err := strconv.Atoi(body[:colon])
		if err != nil || n < 0 || body[0] == '+' || body[0] == '-' {
			return nil, packetError("bad packet length %q", body[:colon])
		}
		body = body[colon+1:]
		size, ok := utf16Prefix(body, n)
		if !ok {
			return nil, packetError("packet length %d overruns the payload", n)
		}
		if n > 0 { // empty packets are skipped, as the reference parser does
			p, err := DecodePacket(3, body[:size])
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		body = body[size:]
	}
	if len(out) == 0 {
		return nil, packetError("payload without a packet")
	}
	return out, nil
}

// utf16Prefix returns the byte length of the prefix of s that is n UTF-16
// code units long. It reports false if s is shorter, or if the n-th unit
// is the first half of a surrogate pair. Each byte of invalid UTF-8 counts
// as one unit (a browser decodes it to one U+FFFD).
func utf16Prefix(s string, n int) (int, bool) {
	i := 0
	for n > 0 {
		if i >= len(s) {
			return 0, false
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		units := 1
		if r >= 0x10000 {
			units = 2
		}
		if units > n {
			return 0, false
		}
		n -= units
		i += size
	}
	return i, true
}

// UTF16Len is the length of s in UTF-16 code units: JavaScript's
// String.length of the same text.
func UTF16Len(s string) int {
	n := 0
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r >= 0x10000 {
			n += 2
		} else {
			n++
		}
		i += size
	}
	return n
}

// AppendPayload appends encoded text packets as one polling payload of the
// protocol version: joined by \x1e (v4) or each prefixed with its UTF-16
// length and a colon (v3).
func AppendPayload(dst []byte, version int, packets ...[]byte) []byte {
	for i, p := range packets {
		if version == 4 {
			if i > 0 {
				dst = append(dst, separator)
			}
		} else {
			dst = strconv.AppendInt(dst, int64(UTF16Len(string(p))), 10)
			dst = append(dst, ':')
		}
		dst = append(dst, p...)
	}
	return dst
}

// DecodeBinaryPayload decodes a v3 binary polling payload (a request body
// sent as application/octet-stream, which socket.io-client 2.x uses when
// it posts binary data): each packet is a 0 (text) or 1 (binary) byte, its
// byte length as decimal digits each in a byte of value 0–9, the byte 255,
// then the packet. Text packets are decoded with DecodePacket; binary ones
// carry their type in their first byte.
func DecodeBinaryPayload(body []byte) ([]Packet, error) {
	if len(body) == 0 {
		return nil, packetError("empty payload")
	}
	var out []Packet
	for len(body) > 0 {
		if len(out) >= maxPayloadPackets {
			return nil, packetError("more than %d packets in a payload", maxPayloadPackets)
		}
		kind := body[0]
		if kind > 1 {
			return nil, packetError("bad binary payload header %d", kind)
		}
		n, i := 0, 1
		for ; i < len(body) && body[i] != 255; i++ {
			if body[i] > 9 || i > 9 {
				return nil, packetError("bad binary payload length")
			}
			n = n*10 + int(body[i])
		}
		if i == 1 || i >= len(body) {
			return nil, packetError("bad binary payload length")
		}
		body = body[i+1:]
		if n > len(body) {
			return nil, packetError("packet length %d overruns the payload", n)
		}
		data := body[:n]
		body = body[n:]
		var p Packet
		var err error
		if kind == 0 {
			p, err = DecodePacket(3, string(data))
		} else {
			p, err = decodeBinaryFrame(3, data)
		}
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, nil
}
