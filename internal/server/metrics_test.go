package server_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"pocketchat/internal/chat"
	"pocketchat/internal/hub"
	"pocketchat/internal/server"
)

const metricsToken = "scrape-me-0123456789"

// scrape reads /api/chat/metrics with the Authorization header auth and
// returns the status and, for a 200, the samples by name and labels as
// written (`name{label="value"}`).
func scrape(t *testing.T, a *sioApp, auth string) (int, map[string]float64) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, a.http.URL+"/api/chat/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		return resp.StatusCode, nil
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
		t.Errorf("Content-Type %q, want Prometheus' text format", ct)
	}
	samples := make(map[string]float64)
	for line := range strings.SplitSeq(string(body), "\n") {
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			t.Fatalf("sample %q: %v", line, err)
		}
		samples[line[:i]] = v
	}
	return resp.StatusCode, samples
}

// scrapeUntil scrapes with the token until ok accepts the samples, and
// fails the test after 15 s (generous, for loaded machines): a client
// may read an event a moment before the server has counted it.
func scrapeUntil(t *testing.T, a *sioApp, what string, ok func(map[string]float64) bool) map[string]float64 {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		code, m := scrape(t, a, "Bearer "+metricsToken)
		if code != http.StatusOK {
			t.Fatalf("scrape with the token: %d", code)
		}
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed %s:\n%v", what, m)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// dialNative opens /api/chat/ws with a users token and returns the
// socket and its hello.
func dialNative(t *testing.T, a *sioApp, token string) (*websocket.Conn, map[string]any) {
	t.Helper()
	u := "ws" + strings.TrimPrefix(a.http.URL, "http") + "/api/chat/ws"
	conn, resp, err := websocket.DefaultDialer.Dial(u, http.Header{"Authorization": {token}})
	if err != nil {
		t.Fatalf("dial: %v (%v)", err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	return conn, nextOfType(t, conn, "hello")
}

// nextOfType reads native frames up to the first of type typ.
func nextOfType(t *testing.T, conn *websocket.Conn, typ string) map[string]any {
	t.Helper()
	for {
		var f map[string]any
		if err := json.Unmarshal([]byte(read(t, conn)), &f); err != nil {
			t.Fatal(err)
		}
		if f["type"] == typ {
			return f
		}
	}
}

func sendNative(t *testing.T, conn *websocket.Conn, frame string) {
	t.Helper()
	if err := conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
		t.Fatal(err)
	}
}

// Two native clients chat; the scrape shows them, their messages, the
// deliveries and the commit histograms.
func TestMetrics(t *testing.T) {
	a := newSIOApp(t, func(c *server.Config) { c.MetricsToken = metricsToken })
	_, alice := a.user(t, "users", "Alice", false)
	_, bob := a.user(t, "users", "Bob", false)

	ca, h := dialNative(t, a, alice)
	cb, _ := dialNative(t, a, bob)
	rooms, _ := h["rooms"].([]any)
	if len(rooms) == 0 {
		t.Fatalf("hello without rooms: %v", h)
	}
	room, _ := rooms[0].(map[string]any)["id"].(string)
	for _, c := range []*websocket.Conn{ca, cb} {
		sendNative(t, c, `{"type":"join","id":1,"room":"`+room+`"}`)
		nextOfType(t, c, "joined")
	}

	const n = 3
	for i := range n {
		sendNative(t, ca, fmt.Sprintf(`{"type":"send","id":%d,"room":%q,"text":"hello %d"}`, i+2, room, i))
		for seen := map[any]bool{}; !seen["ack"] || !seen["message"]; { // in either order
			var f map[string]any
			if err := json.Unmarshal([]byte(read(t, ca)), &f); err != nil {
				t.Fatal(err)
			}
			seen[f["type"]] = true
		}
		nextOfType(t, cb, "message")
	}

	m := scrapeUntil(t, a, "every delivery", func(m map[string]float64) bool {
		return m["pocketchat_deliveries_total"] >= 2*n
	})
	for name, want := range map[string]float64{
		`pocketchat_connections_open{transport="native"}`:          2,
		`pocketchat_connections_open{transport="socketio"}`:        0,
		`pocketchat_rooms_active`:                                  1,
		`pocketchat_messages_in_total`:                             n,
		`pocketchat_commit_batch_size_count`:                       n,
		`pocketchat_commit_batch_size_sum`:                         n,
		`pocketchat_commit_batch_size_bucket{le="1"}`:              n,
		`pocketchat_send_commit_seconds_count`:                     n,
		`pocketchat_slow_client_drops_total{transport="native"}`:   0,
		`pocketchat_slow_client_drops_total{transport="socketio"}`: 0,
	} {
		if got, ok := m[name]; !ok || got != want {
			t.Errorf("%s = %v (present: %v), want %v", name, got, ok, want)
		}
	}
	if m["pocketchat_send_commit_seconds_sum"] <= 0 {
		t.Errorf("send_commit_seconds_sum = %v, want > 0", m["pocketchat_send_commit_seconds_sum"])
	}
	if _, ok := m["go_goroutines"]; !ok {
		t.Error("no go_goroutines: the Go collector is missing")
	}

	ca.Close()
	cb.Close()
	scrapeUntil(t, a, "the connections closed", func(m map[string]float64) bool {
		return m[`pocketchat_connections_open{transport="native"}`] == 0 && m["pocketchat_rooms_active"] == 0
	})
}

// The token or a superuser may scrape; nobody else.
func TestMetricsAccess(t *testing.T) {
	a := newSIOApp(t, func(c *server.Config) { c.MetricsToken = metricsToken })
	_, user := a.user(t, "users", "Alice", false)
	_, superuser := a.user(t, "_superusers", "Root", false)
	for _, tc := range []struct {
		name, auth string
		want       int
	}{
		{"no credentials", "", http.StatusUnauthorized},
		{"wrong token", "Bearer " + metricsToken + "x", http.StatusUnauthorized},
		{"token without Bearer", metricsToken, http.StatusUnauthorized},
		{"users token", user, http.StatusForbidden},
		{"users token as Bearer", "Bearer " + user, http.StatusForbidden},
		{"superuser", superuser, http.StatusOK},
		{"metrics token", "Bearer " + metricsToken, http.StatusOK},
	} {
		if got, _ := scrape(t, a, tc.auth); got != tc.want {
			t.Errorf("%s: status %d, want %d", tc.name, got, tc.want)
		}
	}

	// Without a configured token, only superusers.
	b := newSIOApp(t, nil)
	_, superuser = b.user(t, "_superusers", "Root", false)
	for _, auth := range []string{"", "Bearer ", "Bearer " + metricsToken} {
		if got, _ := scrape(t, b, auth); got != http.StatusUnauthorized {
			t.Errorf("no token configured, Authorization %q: status %d, want 401", auth, got)
		}
	}
	if got, _ := scrape(t, b, superuser); got != http.StatusOK {
		t.Errorf("no token configured, superuser: status %d, want 200", got)
	}
}

// A socket.io client that stops polling is dropped once its queue fills
// up, and counted.
func TestMetricsSlowClient(t *testing.T) {
	const queue = 8
	a := newSIOApp(t, func(c *server.Config) {
		c.MetricsToken = metricsToken
		c.WS.Queue = queue
	})
	resp, err := http.Get(a.http.URL + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var hs struct{ SID string }
	if err := json.Unmarshal(b[1:], &hs); err != nil {
		t.Fatalf("handshake %q: %v", b, err)
	}
	resp, err = http.Post(a.http.URL+"/socket.io/?EIO=4&transport=polling&sid="+hs.SID, "text/plain", strings.NewReader("40"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	scrapeUntil(t, a, "the socket.io client", func(m map[string]float64) bool {
		return m[`pocketchat_connections_open{transport="socketio"}`] == 1
	})

	// The client never polls: broadcasts fill its queue.
	for range 2 * queue {
		ev := chat.MustEvent(chat.EventTyping, chat.TypingPayload{Room: "r0000000nowhere"})
		if err := a.srv.Hub().Publish(context.Background(), hub.Envelope{To: hub.ToAll(), Event: ev}); err != nil {
			t.Fatal(err)
		}
	}
	// The CONNECT reply and hello take two places in the queue: the
	// events that fill the rest and the one that overflows it are
	// counted. Whether later ones still reach the session before it
	// unregisters depends on timing.
	scrapeUntil(t, a, "the slow client dropped", func(m map[string]float64) bool {
		return m[`pocketchat_slow_client_drops_total{transport="socketio"}`] == 1 &&
			m[`pocketchat_connections_open{transport="socketio"}`] == 0 &&
			m[`pocketchat_slow_client_drops_total{transport="native"}`] == 0 &&
			m["pocketchat_deliveries_total"] >= queue-1
	})
}
