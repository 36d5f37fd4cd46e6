package server_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tests"

	"pocketchat/internal/server"
)

// sioApp is a migrated test app with the chat's routes on a real listener.
type sioApp struct {
	app  *tests.TestApp
	srv  *server.Server
	http *httptest.Server
}

func newSIOApp(t *testing.T, edit func(*server.Config)) *sioApp {
	t.Helper()
	cfg := server.DefaultConfig()
	cfg.Banner = false
	cfg.Bot.Enabled = false
	if edit != nil {
		edit(&cfg)
	}
	app, srv, mux := serveTestApp(t, cfg)
	ts := httptest.NewServer(mux)
	t.Cleanup(ts.Close)
	return &sioApp{app: app, srv: srv, http: ts}
}

// user creates a user and returns its id and an auth token.
func (a *sioApp) user(t *testing.T, collection, name string, banned bool) (string, string) {
	t.Helper()
	col, err := a.app.FindCollectionByNameOrId(collection)
	if err != nil {
		t.Fatal(err)
	}
	rec := core.NewRecord(col)
	rec.SetEmail(strings.ToLower(name) + "@example.com")
	rec.SetPassword("correct-horse-42")
	if collection == "users" {
		rec.Set("name", name)
		rec.Set("banned", banned)
	}
	if err := a.app.Save(rec); err != nil {
		t.Fatalf("create %s: %v", name, err)
	}
	token, err := rec.NewAuthToken()
	if err != nil {
		t.Fatal(err)
	}
	return rec.Id, token
}

func (a *sioApp) dial(t *testing.T, query string, header http.Header) *websocket.Conn {
	t.Helper()
	u := "ws" + strings.TrimPrefix(a.http.URL, "http") + "/socket.io/?" + query
	conn, resp, err := websocket.DefaultDialer.Dial(u, header)
	if err != nil {
		t.Fatalf("dial %s: %v (%v)", query, err, resp)
	}
	t.Cleanup(func() { conn.Close() })
	return conn
}

func read(t *testing.T, conn *websocket.Conn) string {
	t.Helper()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, b, err := conn.ReadMessage()
	if err != nil {
		t.Fatalf("read: %v", err)
	}
	return string(b)
}

// hello reads frames up to the hello event and returns its payload.
func hello(t *testing.T, conn *websocket.Conn) map[string]any {
	t.Helper()
	for {
		f := read(t, conn)
		if rest, ok := strings.CutPrefix(f, `42["hello",`); ok {
			var h map[string]any
			if err := json.Unmarshal([]byte(strings.TrimSuffix(rest, "]")), &h); err != nil {
				t.Fatalf("hello %q: %v", f, err)
			}
			return h
		}
	}
}

func userID(h map[string]any) string {
	u, _ := h["user"].(map[string]any)
	id, _ := u["id"].(string)
	return id
}

// connect5 opens a WebSocket-only socket.io v4 client and sends CONNECT
// with auth; it returns the socket and the answer to CONNECT.
func (a *sioApp) connect5(t *testing.T, auth string, header http.Header) (*websocket.Conn, string) {
	t.Helper()
	conn := a.dial(t, "EIO=4&transport=websocket", header)
	if f := read(t, conn); !strings.HasPrefix(f, `0{"sid":`) {
		t.Fatalf("open %q", f)
	}
	if err := conn.WriteMessage(websocket.TextMessage, []byte("40"+auth)); err != nil {
		t.Fatal(err)
	}
	return conn, read(t, conn)
}

func TestSocketIOAuth(t *testing.T) {
	a := newSIOApp(t, nil)
	aliceID, aliceToken := a.user(t, "users", "Alice", false)
	_, evilToken := a.user(t, "users", "Eve", true)
	_, superToken := a.user(t, core.CollectionNameSuperusers, "Root", false)
	ticket := func() string {
		t.Helper()
		req, _ := http.NewRequest("POST", a.http.URL+"/api/chat/ticket", nil)
		req.Header.Set("Authorization", aliceToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var out struct{ Ticket string }
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil || out.Ticket == "" {
			t.Fatalf("ticket: %v", err)
		}
		return out.Ticket
	}

	t.Run("v4 auth token", func(t *testing.T) {
		conn, reply := a.connect5(t, `{"token":"`+aliceToken+`"}`, nil)
		if !strings.HasPrefix(reply, `40{"sid":"`) {
			t.Fatalf("CONNECT answered %q", reply)
		}
		if id := userID(hello(t, conn)); id != aliceID {
			t.Fatalf("hello user %q", id)
		}
	})
	t.Run("v4 auth ticket, then the same ticket again", func(t *testing.T) {
		tk := ticket()
		conn, _ := a.connect5(t, `{"ticket":"`+tk+`"}`, nil)
		if id := userID(hello(t, conn)); id != aliceID {
			t.Fatalf("hello user %q", id)
		}
		_, reply := a.connect5(t, `{"ticket":"`+tk+`"}`, nil)
		if reply != `44{"message":"The ticket is invalid, expired or already used.","data":{"status":401}}` {
			t.Fatalf("reused ticket answered %q", reply)
		}
	})
	t.Run("Authorization header", func(t *testing.T) {
		conn, _ := a.connect5(t, "", http.Header{"Authorization": {"Bearer " + aliceToken}})
		if id := userID(hello(t, conn)); id != aliceID {
			t.Fatalf("hello user %q", id)
		}
	})
	t.Run("auth wins over the header", func(t *testing.T) {
		_, reply := a.connect5(t, `{"token":"bad"}`, http.Header{"Authorization": {aliceToken}})
		if !strings.HasPrefix(reply, `44{"message":"The token is invalid or expired."`) {
			t.Fatalf("answered %q", reply)
		}
	})
	t.Run("refusals", func(t *testing.T) {
		for _, tt := range []struct{ auth, want string }{
			{`{"token":"bad"}`, `44{"message":"The token is invalid or expired.","data":{"status":401}}`},
			{`{"token":"` + evilToken + `"}`, `44{"message":"This account is banned.","data":{"status":403}}`},
			{`{"token":"` + superToken + `"}`, `44{"message":"The chat takes tokens of the users collection.","data":{"status":403}}`},
			{`{"token":5}`, `44{"message":"auth must be {token: \"…\"} or {ticket: \"…\"} with string values.","data":{"status":400}}`},
		} {
			if _, reply := a.connect5(t, tt.auth, nil); reply != tt.want {
				t.Errorf("auth %s answered\n %q\nwant %q", tt.auth, reply, tt.want)
			}
		}
	})
	t.Run("guest", func(t *testing.T) {
		conn, reply := a.connect5(t, "", nil)
		if !strings.HasPrefix(reply, `40{"sid":"`) {
			t.Fatalf("CONNECT answered %q", reply)
		}
		if h := hello(t, conn); h["user"] != nil {
			t.Fatalf("guest hello %v", h)
		}
	})
	t.Run("v3 query ticket", func(t *testing.T) {
		conn := a.dial(t, "EIO=3&transport=websocket&ticket="+ticket(), nil)
		if f := read(t, conn); !strings.HasPrefix(f, `0{"sid":`) {
			t.Fatalf("open %q", f)
		}
		if f := read(t, conn); f != "40" {
			t.Fatalf("CONNECT %q", f)
		}
		if id := userID(hello(t, conn)); id != aliceID {
			t.Fatalf("hello user %q", id)
		}
	})
	t.Run("v3 query token, polling", func(t *testing.T) {
		resp, err := http.Get(a.http.URL + "/socket.io/?EIO=3&transport=polling&token=" + aliceToken)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if !strings.Contains(string(b), `2:40`) || !strings.Contains(string(b), `"id":"`+aliceID+`"`) {
			t.Fatalf("handshake answer %q", b)
		}
	})
	t.Run("v3 bad ticket", func(t *testing.T) {
		conn := a.dial(t, "EIO=3&transport=websocket&ticket=nope", nil)
		read(t, conn)
		if f := read(t, conn); f != `44"The ticket is invalid, expired or already used."` {
			t.Fatalf("ERROR %q", f)
		}
	})
}

func TestSocketIOGuestsOff(t *testing.T) {
	a := newSIOApp(t, func(c *server.Config) { c.Guests = false })
	if _, reply := a.connect5(t, "", nil); reply != `44{"message":"Sign in to chat.","data":{"status":401}}` {
		t.Fatalf("answered %q", reply)
	}
}

func TestSocketIOOrigin(t *testing.T) {
	a := newSIOApp(t, func(c *server.Config) { c.AllowedOrigins = []string{"http://app.example"} })
	for origin, want := range map[string]int{"": 200, "http://evil.example": 403, "http://app.example": 200, a.http.URL: 200} {
		req, _ := http.NewRequest("GET", a.http.URL+"/socket.io/?EIO=4&transport=polling", nil)
		if origin != "" {
			req.Header.Set("Origin", origin)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("origin %q: %d, want %d", origin, resp.StatusCode, want)
		}
		credentials := resp.Header.Get("Access-Control-Allow-Credentials") == "true"
		if credentials != (origin == "http://app.example") {
			t.Errorf("origin %q: Access-Control-Allow-Credentials %q", origin, resp.Header.Get("Access-Control-Allow-Credentials"))
		}
	}
}

// Shutdown closes socket.io sessions like WebSockets: the WebSocket gets
// 1001, a waiting poll the close packet, and Shutdown does not wait for
// the time limit.
func TestSocketIOShutdown(t *testing.T) {
	a := newSIOApp(t, func(c *server.Config) { c.ShutdownWait = 5 * time.Second })
	_, token := a.user(t, "users", "Alice", false)
	ws, _ := a.connect5(t, `{"token":"`+token+`"}`, nil)
	hello(t, ws)

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
	poll := make(chan string, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("%s/socket.io/?EIO=4&transport=polling&sid=%s", a.http.URL, hs.SID))
		if err != nil {
			poll <- err.Error()
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		poll <- string(b)
	}()
	time.Sleep(100 * time.Millisecond)

	start := time.Now()
	a.srv.Shutdown()
	if d := time.Since(start); d > 3*time.Second {
		t.Errorf("Shutdown took %v", d)
	}
	var werr error
	for werr == nil {
		_, _, werr = ws.ReadMessage()
	}
	if !websocket.IsCloseError(werr, websocket.CloseGoingAway) {
		t.Errorf("WebSocket closed with %v, want 1001", werr)
	}
	if got := <-poll; got != "1" {
		t.Errorf("poll answered %q, want the close packet", got)
	}
}
