package socketio_test

import (
	"bufio"
	"encoding/json"
	"os"
	"strings"
	"testing"

	"pocketchat/internal/engineio"
	"pocketchat/internal/socketio"
)

// capturedPackets returns the socket.io packets of the frames recorded
// between the real clients and pocketchat (by e2e/socketio/capture.mjs),
// with the direction each went.
func capturedPackets(t *testing.T) (packets []string, dirs []string, scenarios []string) {
	t.Helper()
	f, err := os.Open("../engineio/testdata/captured.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c struct {
			Scenario, Dir, Kind, Text, Base64 string
		}
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		if c.Text == "" || c.Kind == "post-reply" {
			continue
		}
		version := 4
		if strings.HasPrefix(c.Scenario, "sio2-") {
			version = 3
		}
		var eio []engineio.Packet
		if c.Kind == "ws" {
			p, err := engineio.DecodePacket(version, c.Text)
			if err != nil {
				t.Fatal(err)
			}
			eio = []engineio.Packet{p}
		} else if eio, err = engineio.DecodePayload(version, c.Text); err != nil {
			t.Fatal(err)
		}
		for _, p := range eio {
			if p.Type == engineio.Message && !p.Binary {
				packets = append(packets, p.Data)
				dirs = append(dirs, c.Dir)
				scenarios = append(scenarios, c.Scenario)
			}
		}
	}
	return packets, dirs, scenarios
}

// TestCaptured decodes every socket.io packet of the recorded sessions:
// each event a client emitted is a valid request, except the binary ones;
// each event the server emitted names a chat event.
func TestCaptured(t *testing.T) {
	packets, dirs, scenarios := capturedPackets(t)
	seen := map[socketio.PacketType]bool{}
	events := map[string]bool{"hello": true, "joined": true, "message": true, "typing": true, "error": true, "presence": true}
	for i, s := range packets {
		p, err := socketio.DecodePacket(s)
		if err != nil {
			t.Errorf("%s %s %q: %v", scenarios[i], dirs[i], s, err)
			continue
		}
		seen[p.Type] = true
		if p.Namespace != "/" {
			t.Errorf("%q: namespace %q", s, p.Namespace)
		}
		switch {
		case dirs[i] == "c2s" && p.Type == socketio.Event:
			if _, err := socketio.DecodeEvent(p.Data, p.ID); err != nil {
				t.Errorf("%s: event %q: %v", scenarios[i], s, err)
			}
		case dirs[i] == "s2c" && p.Type == socketio.Event:
			var args []json.RawMessage
			var name string
			if json.Unmarshal(p.Data, &args) != nil || len(args) != 2 || json.Unmarshal(args[0], &name) != nil || !events[name] {
				t.Errorf("server event %q", s)
			}
		case dirs[i] == "s2c" && p.Type == socketio.Ack:
			var args []json.RawMessage
			if json.Unmarshal(p.Data, &args) != nil || len(args) != 1 || args[0][0] != '{' {
				t.Errorf("ack %q: want one object", s)
			}
		}
	}
	for _, typ := range []socketio.PacketType{socketio.Connect, socketio.Disconnect, socketio.Event, socketio.Ack, socketio.ConnectError, socketio.BinaryEvent} {
		if !seen[typ] {
			t.Errorf("no %s in the captured frames", typ)
		}
	}
}
