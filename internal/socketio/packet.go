package socketio

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// PacketType is a socket.io packet type, sent as one ASCII digit.
type PacketType byte

// The packet types. Protocol v4 (socket.io 2.x) calls type 4 ERROR; v5
// (socket.io 3.x and 4.x) calls it CONNECT_ERROR.
const (
	Connect      PacketType = '0'
	Disconnect   PacketType = '1'
	Event        PacketType = '2'
	Ack          PacketType = '3'
	ConnectError PacketType = '4'
	BinaryEvent  PacketType = '5'
	BinaryAck    PacketType = '6'
)

func (t PacketType) String() string {
	switch t {
	case Connect:
		return "CONNECT"
	case Disconnect:
		return "DISCONNECT"
	case Event:
		return "EVENT"
	case Ack:
		return "ACK"
	case ConnectError:
		return "CONNECT_ERROR"
	case BinaryEvent:
		return "BINARY_EVENT"
	case BinaryAck:
		return "BINARY_ACK"
	}
	return fmt.Sprintf("PacketType(%q)", byte(t))
}

// RootNamespace is the default namespace, the only one pocketchat serves.
const RootNamespace = "/"

// maxIDDigits bounds an ack id: JavaScript numbers are exact up to 2^53,
// 16 digits.
const maxIDDigits = 16

// maxAttachments bounds the announced binary attachments.
const maxAttachments = 1000

// Packet is one decoded socket.io packet (the data of an engine.io message
// packet).
type Packet struct {
	Type PacketType
	// Namespace is "/" when the packet names none.
	Namespace string
	// Query is what followed "?" in the namespace: socket.io 2.x sends a
	// namespace's query this way in CONNECT.
	Query string
	// Attachments is the number of binary attachments announced by a
	// BINARY_EVENT or BINARY_ACK.
	Attachments int
	// ID is the ack id as sent (decimal digits), "" if none.
	ID string
	// Data is the JSON payload as sent, nil if none.
	Data json.RawMessage
}

// ErrPacket is wrapped by every decoding error.
var ErrPacket = errors.New("socketio: malformed packet")

func packetError(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrPacket, fmt.Sprintf(format, args...))
}

// DecodePacket decodes a packet in the default parser's text format:
//
//	<type>[<attachments>-][<namespace>,][<ack id>][<JSON payload>]
//
// The namespace starts with "/" and runs to a comma or to the end; the
// attachment count is only read for the binary types, where it is
// required. A payload, when present, must be valid JSON; what it must
// hold for each type is for the caller to check.
func DecodePacket(s string) (Packet, error) {
	if s == "" {
		return Packet{}, packetError("empty packet")
	}
	p := Packet{Type: PacketType(s[0]), Namespace: RootNamespace}
	if p.Type < Connect || p.Type > BinaryAck {
		return Packet{}, packetError("unknown packet type %q", s[0])
	}
	s = s[1:]
	if p.Type == BinaryEvent || p.Type == BinaryAck {
		dash := strings.IndexByte(s, '-')
		if dash <= 0 || dash > 4 {
			return Packet{}, packetError("missing attachment count")
		}
		n, err := strconv.Atoi(s[:dash])
		if err != nil || n < 0 || n > maxAttachments || !isDigits(s[:dash]) {
			return Packet{}, packetError("bad attachment count %q", s[:dash])
		}
		p.Attachments = n
		s = s[dash+1:]
	}
	if strings.HasPrefix(s, "/") {
		end := strings.IndexByte(s, ',')
		nsp := s
		if end >= 0 {
			nsp, s = s[:end], s[end+1:]
		} else {
			s = ""
		}
		if q := strings.IndexByte(nsp, '?'); q >= 0 {
			nsp, p.Query = nsp[:q], nsp[q+1:]
		}
		p.Namespace = nsp
	}
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	if i > maxIDDigits {
		return Packet{}, packetError("ack id longer than %d digits", maxIDDigits)
	}
	p.ID, s = s[:i], s[i:]
	if s != "" {
		if !json.Valid([]byte(s)) {
			return Packet{}, packetError("payload is not valid JSON")
		}
		p.Data = json.RawMessage(s)
	}
	return p, nil
}

func isDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}

// Append appends the text encoding of p, without the engine.io message
// type in front.
func (p Packet) Append(dst []byte) []byte {
	dst = append(dst, byte(p.Type))
	if p.Type == BinaryEvent || p.Type == BinaryAck {
		dst = strconv.AppendInt(dst, int64(p.Attachments), 10)
		dst = append(dst, '-')
	}
	nsp := p.Namespace
	if nsp == "" {
		nsp = RootNamespace
	}
	if nsp != RootNamespace || p.Query != "" {
		dst = append(dst, nsp...)
		if p.Query != "" {
			dst = append(dst, '?')
			dst = append(dst, p.Query...)
		}
		dst = append(dst, ',')
	}
	dst = append(dst, p.ID...)
	return append(dst, p.Data...)
}
