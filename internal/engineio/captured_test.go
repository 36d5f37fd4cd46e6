package engineio

import (
	"bufio"
	"encoding/base64"
	"encoding/json"
	"os"
	"strings"
	"testing"
)

// captured is one HTTP body or WebSocket frame recorded between the real
// socket.io clients (4.x, 3.x, 2.x) and pocketchat by
// e2e/socketio/capture.mjs.
type captured struct {
	Scenario    string `json:"scenario"`
	Dir         string `json:"dir"`  // c2s or s2c
	Kind        string `json:"kind"` // post, post-reply, poll, ws
	Query       string `json:"query"`
	Status      int    `json:"status"`
	ContentType string `json:"contentType"`
	Text        string `json:"text"`
	Base64      string `json:"base64"`
}

func (c captured) version() int {
	if strings.HasPrefix(c.Scenario, "sio2-") {
		return 3
	}
	return 4
}

func (c captured) binary(t *testing.T) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(c.Base64)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func loadCaptured(t *testing.T) []captured {
	t.Helper()
	f, err := os.Open("testdata/captured.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []captured
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var c captured
		if err := json.Unmarshal(sc.Bytes(), &c); err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestCaptured decodes every payload and frame the real clients sent and
// received, and checks that encoding the decoded packets gives back the
// same bytes: in particular that v3 lengths are counted as
// socket.io-client 2.x counts them.
func TestCaptured(t *testing.T) {
	seen := map[Type]bool{}
	for i, c := range loadCaptured(t) {
		v := c.version()
		var packets []Packet
		var err error
		switch {
		case c.Kind == "post-reply":
			if c.Text != "ok" {
				t.Errorf("line %d: post answered %q", i+1, c.Text)
			}
			continue
		case c.Kind == "ws" && c.Base64 != "":
			var p Packet
			p, err = decodeBinaryFrame(v, c.binary(t))
			packets = []Packet{p}
		case c.Kind == "ws":
			var p Packet
			p, err = DecodePacket(v, c.Text)
			packets = []Packet{p}
		case c.Base64 != "":
			packets, err = DecodeBinaryPayload(c.binary(t))
		default:
			packets, err = DecodePayload(v, c.Text)
		}
		if err != nil {
			t.Errorf("line %d (%s %s %s): %v", i+1, c.Scenario, c.Dir, c.Kind, err)
			continue
		}
		encoded := make([][]byte, 0, len(packets))
		for _, p := range packets {
			seen[p.Type] = true
			if p.Binary {
				encoded = nil
				break
			}
			encoded = append(encoded, AppendPacket(nil, p.Type, p.Data))
		}
		if encoded == nil || c.Kind == "ws" {
			continue
		}
		if got := string(AppendPayload(nil, v, encoded...)); got != c.Text {
			t.Errorf("line %d: re-encoded payload\n got %q\nwant %q", i+1, got, c.Text)
		}
	}
	for typ := Open; typ <= Noop; typ++ {
		if !seen[typ] {
			t.Errorf("no %s packet in the captured frames", typ)
		}
	}
}
