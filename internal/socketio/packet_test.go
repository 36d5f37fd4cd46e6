package socketio_test

import (
	"errors"
	"reflect"
	"testing"

	"pocketchat/internal/socketio"
)

// Every packet type, as socket.io-client 4.x and 2.x and this server put
// them on the wire (the engine.io "4" in front removed; see
// ../engineio/testdata/captured.jsonl).
func TestDecodePacket(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want socketio.Packet
	}{
		{"CONNECT from a v4 client, with auth", `0{"token":"TTTT"}`,
			socketio.Packet{Type: socketio.Connect, Namespace: "/", Data: []byte(`{"token":"TTTT"}`)}},
		{"CONNECT from a v4 client, no auth", `0`,
			socketio.Packet{Type: socketio.Connect, Namespace: "/"}},
		{"CONNECT reply, v5", `0{"sid":"X5Af0fdMOncdTn-DmDRD"}`,
			socketio.Packet{Type: socketio.Connect, Namespace: "/", Data: []byte(`{"sid":"X5Af0fdMOncdTn-DmDRD"}`)}},
		{"CONNECT to a namespace, v2 style with a query", `0/admin?token=abc,`,
			socketio.Packet{Type: socketio.Connect, Namespace: "/admin", Query: "token=abc"}},
		{"DISCONNECT", `1`, socketio.Packet{Type: socketio.Disconnect, Namespace: "/"}},
		{"DISCONNECT from a namespace", `1/admin,`, socketio.Packet{Type: socketio.Disconnect, Namespace: "/admin"}},
		{"EVENT with an ack id", `20["join",{"room":"5wlvyo6hix57dt5"}]`,
			socketio.Packet{Type: socketio.Event, Namespace: "/", ID: "0", Data: []byte(`["join",{"room":"5wlvyo6hix57dt5"}]`)}},
		{"EVENT without ack", `2["typing",{"room":"5wlvyo6hix57dt5"}]`,
			socketio.Packet{Type: socketio.Event, Namespace: "/", Data: []byte(`["typing",{"room":"5wlvyo6hix57dt5"}]`)}},
		{"EVENT from the server", `2["hello",{"user":null,"rooms":[]}]`,
			socketio.Packet{Type: socketio.Event, Namespace: "/", Data: []byte(`["hello",{"user":null,"rooms":[]}]`)}},
		{"EVENT in a namespace with an ack id", `2/admin,12["x"]`,
			socketio.Packet{Type: socketio.Event, Namespace: "/admin", ID: "12", Data: []byte(`["x"]`)}},
		{"ACK", `31[{"message":{"id":"xzxi0g0v798omo6"}}]`,
			socketio.Packet{Type: socketio.Ack, Namespace: "/", ID: "1", Data: []byte(`[{"message":{"id":"xzxi0g0v798omo6"}}]`)}},
		{"ACK with an error", `32[{"error":{"code":"bad_request","message":"no"}}]`,
			socketio.Packet{Type: socketio.Ack, Namespace: "/", ID: "2", Data: []byte(`[{"error":{"code":"bad_request","message":"no"}}]`)}},
		{"CONNECT_ERROR, v5", `4{"message":"The token is invalid or expired.","data":{"status":401}}`,
			socketio.Packet{Type: socketio.ConnectError, Namespace: "/", Data: []byte(`{"message":"The token is invalid or expired.","data":{"status":401}}`)}},
		{"ERROR, v4", `4"The ticket is invalid, expired or already used."`,
			socketio.Packet{Type: socketio.ConnectError, Namespace: "/", Data: []byte(`"The ticket is invalid, expired or already used."`)}},
		{"BINARY_EVENT", `51-2["send",{"room":"5wlvyo6hix57dt5","text":{"_placeholder":true,"num":0}}]`,
			socketio.Packet{Type: socketio.BinaryEvent, Namespace: "/", Attachments: 1, ID: "2", Data: []byte(`["send",{"room":"5wlvyo6hix57dt5","text":{"_placeholder":true,"num":0}}]`)}},
		{"BINARY_ACK in a namespace", `62-/files,7[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`,
			socketio.Packet{Type: socketio.BinaryAck, Namespace: "/files", Attachments: 2, ID: "7", Data: []byte(`[{"_placeholder":true,"num":0},{"_placeholder":true,"num":1}]`)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := socketio.DecodePacket(tt.in)
			if err != nil {
				t.Fatalf("DecodePacket(%q): %v", tt.in, err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("DecodePacket(%q)\n got %+v\nwant %+v", tt.in, got, tt.want)
			}
			again, err := socketio.DecodePacket(string(got.Append(nil)))
			if err != nil || !reflect.DeepEqual(again, got) {
				t.Errorf("round trip %q → %q: %+v, %v", tt.in, got.Append(nil), again, err)
			}
		})
	}
}

func TestDecodePacketErrors(t *testing.T) {
	for _, in := range []string{
		"",
		"7",
		"x",
		"2[\"unterminated\"",
		"2{bad json}",
		"5[\"no attachment count\"]",
		"5x-[\"bad count\"]",
		"51234-[]",
		"2" + "12345678901234567" + "[\"x\"]", // ack id of 17 digits
	} {
		if _, err := socketio.DecodePacket(in); !errors.Is(err, socketio.ErrPacket) {
			t.Errorf("DecodePacket(%q) error = %v, want ErrPacket", in, err)
		}
	}
}
