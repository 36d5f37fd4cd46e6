// Package protocol holds pocketchat's wire codecs: the code that turns the
// frames clients send into chat.Request values and chat.Event values into the
// frames clients receive.
//
// Today there is one codec, the native protocol: every WebSocket text frame
// is one JSON object. Requests look like
//
//	{"type":"send","id":7,"room":"r1","text":"hello"}
//
// and events carry their type, the id of the request they answer (if any) and
// the fields of their payload side by side:
//
//	{"type":"ack","id":7,"message":{...}}
//
// A socket.io / engine.io codec, for clients built on those libraries, is to
// come in a subpackage. Each codec implements chat.Encoder under its own slot,
// so an event broadcast to clients of both protocols is encoded once per
// protocol, not once per receiver.
package protocol
