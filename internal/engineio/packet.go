package engineio

import (
	"encoding/base64"
	"errors"
	"fmt"
)

// Type is an engine.io packet type, sent as one ASCII digit.
type Type byte

// The packet types of both protocol versions.
const (
	Open    Type = '0' // server → client: the handshake
	Close   Type = '1' // either side: close the session
	Ping    Type = '2' // v4: server → client; v3: client → server; "probe" on upgrade
	Pong    Type = '3' // the answer to a ping, with the same data
	Message Type = '4' // the data of the layer above (socket.io)
	Upgrade Type = '5' // client → server: switch to the probed WebSocket
	Noop    Type = '6' // server → client: ends a poll during an upgrade
)

func (t Type) String() string {
	switch t {
	case Open:
		return "open"
	case Close:
		return "close"
	case Ping:
		return "ping"
	case Pong:
		return "pong"
	case Message:
		return "message"
	case Upgrade:
		return "upgrade"
	case Noop:
		return "noop"
	}
	return fmt.Sprintf("type(%q)", byte(t))
}

// Packet is one decoded engine.io packet. Binary message packets (WebSocket
// binary frames, "b"-prefixed base64 packets in polling payloads, binary
// parts of a v3 binary payload) have Binary set and their bytes in Data.
type Packet struct {
	Type   Type
	Data   string
	Binary bool
}

// ErrPacket is wrapped by every packet and payload decoding error.
var ErrPacket = errors.New("engineio: malformed packet")

func packetError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrPacket, fmt.Sprintf(format, args...))
}

// DecodePacket decodes one text packet: a type digit and its data. In the
// polling payloads of protocol v4 (and text payloads of v3), a packet
// starting with "b" is a binary message in base64; v3 adds the packet type
// after the "b" ("b4AQID"), v4 does not ("bAQID"), and the version says
// which to expect.
func DecodePacket(version int, s string) (Packet, error) {
	if s == "" {
		return Packet{}, packetError("empty packet")
	}
	if s[0] == 'b' {
		return decodeBase64(version, s[1:])
	}
	t := Type(s[0])
	if t < Open || t > Noop {
		return Packet{}, packetError("unknown packet type %q", s[0])
	}
	return Packet{Type: t, Data: s[1:]}, nil
}

func decodeBase64(version int, s string) (Packet, error) {
	t := Message
	if version == 3 {
		if s == "" {
			return Packet{}, packetError("base64 packet without a type")
		}
		t = Type(s[0])
		if t < Open || t > Noop {
			return Packet{}, packetError("unknown packet type %q", s[0])
		}
		s = s[1:]
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return Packet{}, packetError("bad base64 data")
	}
	return Packet{Type: t, Data: string(b), Binary: true}, nil
}

// decodeBinaryFrame decodes a WebSocket binary frame: in v3 its first byte
// is the packet type, in v4 the whole frame is a message's data.
func decodeBinaryFrame(version int, b []byte) (Packet, error) {
	if version == 4 {
		return Packet{Type: Message, Data: string(b), Binary: true}, nil
	}
	if len(b) == 0 {
		return Packet{}, packetError("empty binary frame")
	}
	t := Type(b[0])
	if b[0] <= 6 { // engine.io-parser v2 writes the type as a number here
		t = Open + Type(b[0])
	}
	if t < Open || t > Noop {
		return Packet{}, packetError("unknown packet type %d", b[0])
	}
	return Packet{Type: t, Data: string(b[1:]), Binary: true}, nil
}

// AppendPacket appends the text encoding of a packet: its type and data.
func AppendPacket(dst []byte, t Type, data string) []byte {
	dst = append(dst, byte(t))
	return append(dst, data...)
}
