package e2e

import (
	"bufio"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// serverStats are the figures of the server's metrics that show leaks.
type serverStats struct {
	goroutines, conns, heap, gcs float64
}

func scrapeStats(t *testing.T, srv *Server) serverStats {
	t.Helper()
	req, _ := http.NewRequest("GET", srv.URL+"/api/chat/metrics", nil)
	req.Header.Set("Authorization", "Bearer abuse-test")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var st serverStats
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, value, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		v, _ := strconv.ParseFloat(value, 64)
		switch name {
		case "go_goroutines":
			st.goroutines = v
		case "go_memstats_heap_inuse_bytes":
			st.heap = v
		case "go_gc_duration_seconds_count":
			st.gcs = v
		case `pocketchat_connections_open{transport="native"}`, `pocketchat_connections_open{transport="socketio"}`:
			st.conns += v
		}
	}
	return st
}

// settledStats waits until the server holds want connections, then has
// the bystanders chat until the garbage collector has run twice, and
// returns the fewest goroutines and the smallest heap seen after that.
func settledStats(t *testing.T, srv *Server, want float64, chat func(string)) serverStats {
	t.Helper()
	waitUntil(t, fmt.Sprintf("%v connections open", want), func() bool { return scrapeStats(t, srv).conns == want })
	start := scrapeStats(t, srv)
	best := serverStats{goroutines: 1e9, heap: 1e18}
	deadline := time.Now().Add(time.Minute)
	for i := 0; ; i++ {
		chat(fmt.Sprintf("%s %d", strings.Repeat("allocate ", 400), i))
		st := scrapeStats(t, srv)
		if st.gcs >= start.gcs+2 {
			best.goroutines = min(best.goroutines, st.goroutines)
			best.heap = min(best.heap, st.heap)
			if st.gcs >= start.gcs+4 {
				return best
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("the garbage collector did not run in a minute (%v cycles)", st.gcs-start.gcs)
		}
	}
}

// rawFrame is a masked client frame (mask key 0), as a broken client
// might write it straight to the socket.
func rawFrame(first byte, payload []byte) []byte {
	b := []byte{first}
	switch n := len(payload); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	default:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	}
	b = append(b, 0, 0, 0, 0)
	return append(b, payload...)
}

// The live server under abuse: bad requests are answered with errors on
// the connection that sent them; broken, flooding, silent and unreading
// clients are closed; the bystanders chat on throughout; and when the
// abusers are gone the server's goroutines and heap are back where they
// were.
func TestAbuseLeavesNoTrace(t *testing.T) {
	srv := StartServer(t, WithEnv(
		"CHAT_METRICS_TOKEN=abuse-test", "CHAT_SEND_RATE=0",
		"CHAT_WS_PING=500ms", "CHAT_WS_PONG_WAIT=1500ms", "CHAT_WS_QUEUE=16", "CHAT_WS_WRITE_WAIT=1s",
	))
	general := srv.General()
	alice, bob, mallory := srv.NewUser("Alice"), srv.NewUser("Bob"), srv.NewUser("Mallory")
	secret := srv.CreateRoom("secret", "private", alice.ID).ID()
	secretMsg := srv.Dial(alice).Send(secret, "members only").Str("id")
	a, b := srv.Dial(alice), srv.Dial(bob)
	a.Join(general)
	b.Join(general)
	chat := func(text string) {
		t.Helper()
		sent := a.Send(general, text)
		if got := b.ExpectMessage(general, text); got.Str("id") != sent.Str("id") {
			t.Fatalf("bob got message %s, want %s", got.Str("id"), sent.Str("id"))
		}
	}
	open := scrapeStats(t, srv).conns
	base := settledStats(t, srv, open, chat)
	t.Logf("baseline: %v goroutines, heap %.1f MiB, %v connections", base.goroutines, base.heap/(1<<20), open)

	deep := `{"type":"ping","id":"deep","x":` + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + `}`
	// Requests that must get an error reply, and leave the connection open.
	replies := []struct {
		name, frame, code string
	}{
		{"huge number id", `{"type":"ping","id":1e400}`, "bad_request"},
		{"huge limit", `{"type":"history","id":"h2","room":"` + general + `","limit":99999999999999999999999}`, "bad_request"},
		{"deep nesting", deep, "bad_request"},
		{"nulls everywhere", `{"type":null,"id":null,"room":null,"text":null,"to":null,"before":null,"after":null,"limit":null,"message":null}`, "bad_request"},
		{"send with null fields", `{"type":"send","id":"n2","room":null,"text":null}`, "bad_request"},
		{"edit with null fields", `{"type":"edit","id":"n3","message":null,"text":null}`, "bad_request"},
		{"unknown room", `{"type":"join","id":"r1","room":"nosuchroom00000"}`, "not_found"},
		{"unknown user", `{"type":"dm","id":"r2","to":"nosuchuser00000","text":"hi"}`, "not_found"},
		{"another's private room: join", `{"type":"join","id":"p1","room":"` + secret + `"}`, "forbidden"},
		{"another's private room: history", `{"type":"history","id":"p2","room":"` + secret + `"}`, "forbidden"},
		{"another's private room: send", `{"type":"send","id":"p3","room":"` + secret + `","text":"let me in"}`, "forbidden"},
		{"another's private room: resume", `{"type":"resume","id":"p4","room":"` + secret + `","after":"` + secretMsg + `"}`, "forbidden"},
		{"another's private message: edit", `{"type":"edit","id":"p5","message":"` + secretMsg + `","text":"mine now"}`, "not_found"},
		{"another's private message: delete", `{"type":"delete","id":"p6","message":"` + secretMsg + `"}`, "not_found"},
	}
	// Connections that misbehave at the frame level; each is closed by the
	// server (or left alone, if harmless), and must not disturb anyone.
	conns := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"binary frame", func(t *testing.T) {
			c := srv.Dial(mallory)
			_ = c.Conn.WriteMessage(websocket.BinaryMessage, []byte(`{"type":"ping"}`))
			if code := closeCode(c.WaitClosed()); code != websocket.CloseUnsupportedData {
				t.Errorf("close code %d, want %d", code, websocket.CloseUnsupportedData)
			}
		}},
		{"invalid UTF-8", func(t *testing.T) {
			c := srv.Dial(mallory)
			c.SendRaw("{\"type\":\"send\",\"room\":\"" + general + "\",\"text\":\"\xff\xfe\xfd\"}")
			if code := closeCode(c.WaitClosed()); code != websocket.CloseInvalidFramePayloadData {
				t.Errorf("close code %d, want %d", code, websocket.CloseInvalidFramePayloadData)
			}
		}},
		{"fragmented frames", func(t *testing.T) {
			c := srv.Dial(mallory)
			frame := []byte(`{"type":"ping","id":"frag"}`)
			var raw []byte
			for i, ch := range frame {
				op := byte(0x0) // continuation
				if i == 0 {
					op = 0x1 // text
				}
				if i == len(frame)-1 {
					op |= 0x80 // FIN
				}
				raw = append(raw, rawFrame(op, []byte{ch})...)
			}
			if _, err := c.Conn.NetConn().Write(raw); err != nil {
				t.Fatal(err)
			}
			if f := c.WaitFor("pong", func(f Frame) bool { return f.Str("id") == "frag" }); f.Type() != "pong" {
				t.Errorf("got %v, want the pong of a message sent one byte per frame", f)
			}
			c.Close()
		}},
		{"frames after close", func(t *testing.T) {
			c := srv.Dial(mallory)
			raw := rawFrame(0x88, []byte{0x03, 0xe8}) // close 1000
			for range 50 {
				raw = append(raw, rawFrame(0x81, []byte(`{"type":"send","room":"`+general+`","text":"zombie"}`))...)
			}
			if _, err := c.Conn.NetConn().Write(raw); err != nil {
				t.Fatal(err)
			}
			c.WaitClosed()
			b.ExpectNone("a message sent after close", func(f Frame) bool { return f.Obj("message").Str("text") == "zombie" })
		}},
		{"ping flood", func(t *testing.T) {
			c := srv.Dial(mallory)
			for i := range 5000 {
				if err := c.Conn.WriteControl(websocket.PingMessage, []byte(strconv.Itoa(i)), time.Now().Add(time.Second)); err != nil {
					break // closed by the server: fine
				}
			}
			c.Close()
		}},
		{"half-open: never answers pings", func(t *testing.T) {
			conn, resp, err := srv.DialRaw(http.Header{"Authorization": {"Bearer " + mallory.Token}}, "")
			if err != nil {
				t.Fatalf("dial: %v (%s)", err, respStatus(resp))
			}
			// Read nothing: gorilla answers pings only while reading, so
			// the server's pings go unanswered, as with a vanished peer.
			waitUntil(t, "the silent client is counted", func() bool { return scrapeStats(t, srv).conns == open+1 })
			deadline := time.Now().Add(waitTime)
			for scrapeStats(t, srv).conns > open && time.Now().Before(deadline) {
				time.Sleep(100 * time.Millisecond)
			}
			if n := scrapeStats(t, srv).conns; n > open {
				t.Errorf("%v connections open %v after dialing a silent client, want %v", n, waitTime, open)
			}
			conn.Close()
		}},
		{"never reads while the room is busy", func(t *testing.T) {
			conn, resp, err := srv.DialRaw(http.Header{"Authorization": {"Bearer " + mallory.Token}}, "")
			if err != nil {
				t.Fatalf("dial: %v (%s)", err, respStatus(resp))
			}
			_ = conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"join","room":"`+general+`"}`))
			waitUntil(t, "the unread client is counted", func() bool { return scrapeStats(t, srv).conns == open+1 })
			big := strings.Repeat("flood ", 600)
			deadline := time.Now().Add(waitTime)
			for i := 0; scrapeStats(t, srv).conns > open && time.Now().Before(deadline); i++ {
				chat(fmt.Sprintf("%s%d", big, i))
			}
			if n := scrapeStats(t, srv).conns; n > open {
				t.Errorf("the unread connection is still open (%v connections, want %v)", n, open)
			}
			conn.Close()
		}},
		{"garbage instead of a handshake", func(t *testing.T) {
			resp, err := http.Post(srv.URL+"/api/chat/ws", "application/json", strings.NewReader(`{"type":"ping"}`))
			if err != nil {
				t.Fatal(err)
			}
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode < 400 || resp.StatusCode >= 500 {
				t.Errorf("POST to the socket endpoint: %d, want a 4xx", resp.StatusCode)
			}
		}},
	}

	for round := range 3 {
		subtest(t, srv, fmt.Sprintf("round %d", round), func(t *testing.T) {
			a.t, b.t = t, t
			m := srv.Dial(mallory)
			for i, tc := range replies {
				m.SendRaw(tc.frame)
				ping := fmt.Sprintf("after-%d-%d", round, i)
				m.SendRaw(`{"type":"ping","id":"` + ping + `"}`)
				if f := next(m); f.Type() != "error" || f.Str("code") != tc.code {
					t.Errorf("%s: got %v, want error %s", tc.name, f, tc.code)
				}
				if p := next(m); p.Str("id") != ping {
					t.Fatalf("%s: then got %v, want pong %s", tc.name, p, ping)
				}
			}
			m.Close()
			for _, tc := range conns {
				t.Run(tc.name, func(t *testing.T) {
					tc.run(t)
					chat(fmt.Sprintf("after %s, round %d", tc.name, round))
				})
			}
		})
	}
	a.t, b.t = t, t

	after := settledStats(t, srv, open, chat)
	t.Logf("after 3 rounds of abuse: %v goroutines, heap %.1f MiB", after.goroutines, after.heap/(1<<20))
	if after.goroutines > base.goroutines+3 {
		t.Errorf("goroutines: %v after the abuse, %v before", after.goroutines, base.goroutines)
	}
	if after.heap > base.heap+8<<20 {
		t.Errorf("heap in use: %.1f MiB after the abuse, %.1f MiB before", after.heap/(1<<20), base.heap/(1<<20))
	}
}
