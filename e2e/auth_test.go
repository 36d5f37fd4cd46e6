package e2e

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// ---- helpers shared by auth_test.go and access_test.go ----

// bearer is an Authorization header with the token.
func bearerHeader(token string) http.Header {
	return http.Header{"Authorization": {"Bearer " + token}}
}

// refused dials and wants the server to refuse before the upgrade with the
// status and a PocketBase JSON error body.
func dialRefused(t *testing.T, srv *Server, h http.Header, query string, want int) {
	t.Helper()
	conn, resp, err := srv.DialRaw(h, query)
	if err == nil {
		conn.Close()
		t.Fatalf("dial succeeded (HTTP %d), want refusal with HTTP %d", resp.StatusCode, want)
	}
	if resp == nil {
		t.Fatalf("dial: %v with no HTTP response, want HTTP %d", err, want)
	}
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("dial: got HTTP %d (%s), want %d", resp.StatusCode, body, want)
	}
	var apiErr struct {
		Status  int    `json:"status"`
		Message string `json:"message"`
	}
	if err := json.Unmarshal(body, &apiErr); err != nil || apiErr.Status != want || apiErr.Message == "" {
		t.Fatalf("dial: got body %q, want a JSON error with status %d and a message", body, want)
	}
}

// dialWith connects with the headers and query and waits for hello.
func dialWith(t *testing.T, srv *Server, h http.Header, query string) *Client {
	t.Helper()
	conn, resp, err := srv.DialRaw(h, query)
	if err != nil {
		t.Fatalf("dial: %v (%s)", err, respStatus(resp))
	}
	return newClient(t, conn)
}

// wantError checks that f is an error reply with one of the codes.
func wantErrorCode(t *testing.T, what string, f Frame, codes ...string) {
	t.Helper()
	if f.Type() != "error" || !slices.Contains(codes, f.Str("code")) {
		t.Fatalf("%s: got %v, want error with code %s", what, f, strings.Join(codes, " or "))
	}
}

// hasKey reports whether a decoded JSON value holds an object key named
// key at any depth.
func hasKey(v any, key string) bool {
	switch x := v.(type) {
	case Frame:
		return hasKey(map[string]any(x), key)
	case Record:
		return hasKey(map[string]any(x), key)
	case map[string]any:
		for k, e := range x {
			if k == key || hasKey(e, key) {
				return true
			}
		}
	case []any:
		for _, e := range x {
			if hasKey(e, key) {
				return true
			}
		}
	case []Frame:
		for _, e := range x {
			if hasKey(e, key) {
				return true
			}
		}
	}
	return false
}

// noEmail fails if v (a decoded frame, record or event) has an "email" key
// or mentions one of the addresses.
func noEmail(t *testing.T, what string, v any, emails ...string) {
	t.Helper()
	raw, _ := json.Marshal(v)
	if hasKey(v, "email") {
		t.Fatalf("%s: has an \"email\" key: %s", what, raw)
	}
	for _, e := range emails {
		if strings.Contains(strings.ToLower(string(raw)), strings.ToLower(e)) {
			t.Fatalf("%s: contains the address %s: %s", what, e, raw)
		}
	}
}

// noneQueued fails if a frame matching pred is queued now. Tests call it
// after receiving a later frame (a sentinel) that the server sends after
// anything that pred would match.
func noneQueued(t *testing.T, c *Client, what string, pred func(Frame) bool) {
	t.Helper()
	if f, ok := c.take(pred, 0); ok {
		t.Fatalf("unexpected %s frame: %v", what, f)
	}
}

// forRoom matches frames about a room: messages, events and room changes.
func forRoom(id string) func(Frame) bool {
	return func(f Frame) bool { return f.Str("room") == id || f.Obj("room").Str("id") == id }
}

// esc escapes a query value.
func queryEscape(s string) string { return url.QueryEscape(s) }

// jwtExpiry reads the exp claim of a token (without checking it).
func jwtExpiry(t *testing.T, token string) time.Time {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a JWT", token)
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct{ Exp int64 }
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == 0 {
		t.Fatalf("token claims %s: no exp (%v)", payload, err)
	}
	return time.Unix(claims.Exp, 0)
}

// forged re-signs a token's header and claims with a key the server does
// not know.
func forged(token string) string {
	parts := strings.Split(token, ".")
	mac := hmac.New(sha256.New, []byte("not-the-server-key"))
	mac.Write([]byte(parts[0] + "." + parts[1]))
	return parts[0] + "." + parts[1] + "." + base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// ban sets banned=true on the user as the superuser.
func banUser(srv *Server, u *User) {
	srv.t.Helper()
	setUser(srv, u, map[string]any{"banned": true})
}

// ---- tests ----

func TestAuthHeader(t *testing.T) {
	srv := StartServer(t)
	alice := srv.NewUser("Alice")

	check := func(t *testing.T, c *Client) {
		t.Helper()
		u := c.Hello.Obj("user")
		if u == nil {
			t.Fatalf("hello user: got %v, want Alice", c.Hello["user"])
		}
		if got := u.Str("id"); got != alice.ID {
			t.Errorf("hello user id: got %q, want %q", got, alice.ID)
		}
		if got := u.Str("name"); got != "Alice" {
			t.Errorf("hello user name: got %q, want %q", got, "Alice")
		}
		if avatar, ok := u["avatar"]; !ok || avatar != "" {
			t.Errorf("hello user avatar: got %v (present %v), want \"\"", avatar, ok)
		}
		noEmail(t, "hello", c.Hello, alice.Email)
	}
	t.Run("bearer", func(t *testing.T) {
		check(t, dialWith(t, srv, bearerHeader(alice.Token), ""))
	})
	t.Run("raw token", func(t *testing.T) {
		check(t, dialWith(t, srv, http.Header{"Authorization": {alice.Token}}, ""))
	})
}

func TestAuthTicket(t *testing.T) {
	srv := StartServer(t)
	alice := srv.NewUser("Alice")

	t.Run("single use", func(t *testing.T) {
		ticket := srv.Ticket(alice)
		c := dialWith(t, srv, nil, "ticket="+queryEscape(ticket))
		if got := c.Hello.Obj("user").Str("id"); got != alice.ID {
			t.Fatalf("hello user id: got %q, want %q", got, alice.ID)
		}
		noEmail(t, "hello", c.Hello, alice.Email)
		// Still refused while the first connection is open, and after.
		dialRefused(t, srv, nil, "ticket="+queryEscape(ticket), http.StatusUnauthorized)
		c.Close()
		dialRefused(t, srv, nil, "ticket="+queryEscape(ticket), http.StatusUnauthorized)
	})
	t.Run("made up", func(t *testing.T) {
		dialRefused(t, srv, nil, "ticket=made-up-ticket-0123456789abcdef", http.StatusUnauthorized)
	})
	t.Run("ticket wins over header", func(t *testing.T) {
		// A bad ticket is refused even with a good header: credentials are
		// never downgraded or swapped.
		dialRefused(t, srv, bearerHeader(alice.Token), "ticket=bogus", http.StatusUnauthorized)
	})
	t.Run("request without auth", func(t *testing.T) {
		var body map[string]any
		if got := srv.Do("POST", "/api/chat/ticket", "", nil, &body); got != http.StatusUnauthorized {
			t.Fatalf("POST /api/chat/ticket without auth: got %d %v, want 401", got, body)
		}
		if _, ok := body["ticket"]; ok {
			t.Fatalf("refused ticket request returned a ticket: %v", body)
		}
	})
	t.Run("request with bad token", func(t *testing.T) {
		if got := srv.Do("POST", "/api/chat/ticket", "garbage", nil, nil); got != http.StatusUnauthorized {
			t.Fatalf("POST /api/chat/ticket with a garbage token: got %d, want 401", got)
		}
	})
	t.Run("superuser may not get one", func(t *testing.T) {
		got := srv.Do("POST", "/api/chat/ticket", srv.SuperToken(), nil, nil)
		if got/100 == 2 {
			t.Fatalf("POST /api/chat/ticket as superuser: got %d, want a refusal", got)
		}
	})
}

func TestAuthBadCredentials(t *testing.T) {
	srv := StartServer(t)
	alice := srv.NewUser("Alice")

	t.Run("garbage", func(t *testing.T) {
		dialRefused(t, srv, bearerHeader("garbage"), "", http.StatusUnauthorized)
		dialRefused(t, srv, http.Header{"Authorization": {"not.a.jwt"}}, "", http.StatusUnauthorized)
	})
	t.Run("forged signature", func(t *testing.T) {
		dialRefused(t, srv, bearerHeader(forged(alice.Token)), "", http.StatusUnauthorized)
	})
	t.Run("revoked by password change", func(t *testing.T) {
		u := srv.NewUser("Pat")
		old := u.Token
		srv.MustDo("PATCH", "/api/collections/users/records/"+u.ID, u.Token, map[string]any{
			"oldPassword": u.Password, "password": "another-horse-43", "passwordConfirm": "another-horse-43",
		}, nil)
		dialRefused(t, srv, bearerHeader(old), "", http.StatusUnauthorized)
	})
	t.Run("expired", func(t *testing.T) {
		var auth struct{ Token string }
		srv.MustDo("POST", "/api/collections/users/impersonate/"+alice.ID, srv.SuperToken(), map[string]any{"duration": 1}, &auth)
		exp := jwtExpiry(t, auth.Token)
		if d := time.Until(exp); d > 5*time.Second {
			t.Fatalf("impersonation token expires in %s, want about 1s", d)
		}
		time.Sleep(time.Until(exp.Add(200 * time.Millisecond))) // past exp on the server's clock (the same clock)
		dialRefused(t, srv, bearerHeader(auth.Token), "", http.StatusUnauthorized)
	})
	t.Run("superuser token", func(t *testing.T) {
		dialRefused(t, srv, bearerHeader(srv.SuperToken()), "", http.StatusForbidden)
	})
	t.Run("good token still works", func(t *testing.T) {
		c := srv.Dial(alice)
		if got := c.Hello.Obj("user").Str("id"); got != alice.ID {
			t.Fatalf("hello user id: got %q, want %q", got, alice.ID)
		}
	})
}

func TestAuthBanned(t *testing.T) {
	srv := StartServer(t)
	general := srv.General()
	alice, mallory := srv.NewUser("Alice"), srv.NewUser("Mallory")

	// Before the ban: mallory has an open connection and a fresh ticket.
	open := srv.Dial(mallory)
	open.Join(general)
	early := srv.Ticket(mallory)

	banUser(srv, mallory)

	t.Run("header", func(t *testing.T) {
		dialRefused(t, srv, bearerHeader(mallory.Token), "", http.StatusForbidden)
	})
	t.Run("ticket request", func(t *testing.T) {
		var body map[string]any
		if got := srv.Do("POST", "/api/chat/ticket", mallory.Token, nil, &body); got != http.StatusForbidden {
			t.Fatalf("POST /api/chat/ticket as banned user: got %d %v, want 403", got, body)
		}
	})
	t.Run("ticket issued before the ban", func(t *testing.T) {
		dialRefused(t, srv, nil, "ticket="+queryEscape(early), http.StatusForbidden)
	})
	t.Run("open connection is ended", func(t *testing.T) {
		f := open.WaitFor("the ban's error", func(f Frame) bool { return f.Type() == "error" })
		wantErrorCode(t, "ban", f, "forbidden")
		if got := closeCode(open.WaitClosed()); got != websocket.ClosePolicyViolation {
			t.Fatalf("the banned user's open connection closed with %d, want 1008", got)
		}
	})
	t.Run("others unaffected", func(t *testing.T) {
		a := srv.Dial(alice)
		a.Join(general)
		a.Send(general, "still here")
	})
}

func TestOriginCheck(t *testing.T) {
	origin := func(o string) http.Header { return http.Header{"Origin": {o}} }

	t.Run("default", func(t *testing.T) {
		srv := StartServer(t)
		alice := srv.NewUser("Alice")
		dialRefused(t, srv, origin("http://evil.example"), "", http.StatusForbidden)
		// Refused before credentials are looked at, valid or not.
		h := bearerHeader(alice.Token)
		h.Set("Origin", "http://evil.example")
		dialRefused(t, srv, h, "", http.StatusForbidden)
		dialRefused(t, srv, origin("http://evil.example"), "ticket="+queryEscape(srv.Ticket(alice)), http.StatusForbidden)
		// Same host, other port: another origin.
		host, _, _ := strings.Cut(srv.Addr, ":")
		dialRefused(t, srv, origin("http://"+host+":1"), "", http.StatusForbidden)

		dialWith(t, srv, origin(srv.URL), "")
		c := dialWith(t, srv, origin(srv.URL), "ticket="+queryEscape(srv.Ticket(alice)))
		if got := c.Hello.Obj("user").Str("id"); got != alice.ID {
			t.Fatalf("hello user id: got %q, want %q", got, alice.ID)
		}
		dialWith(t, srv, nil, "") // programs send no Origin
	})
	t.Run("allow-list", func(t *testing.T) {
		srv := StartServer(t, WithEnv("CHAT_ALLOWED_ORIGINS=http://app.example"))
		dialWith(t, srv, origin("http://app.example"), "")
		dialWith(t, srv, origin(srv.URL), "")
		dialRefused(t, srv, origin("http://evil.example"), "", http.StatusForbidden)
		dialRefused(t, srv, origin("https://app.example"), "", http.StatusForbidden)
		dialRefused(t, srv, origin("http://app.example.evil.example"), "", http.StatusForbidden)
	})
	t.Run("any", func(t *testing.T) {
		srv := StartServer(t, WithEnv("CHAT_ALLOWED_ORIGINS=*"))
		dialWith(t, srv, origin("http://evil.example"), "")
		dialWith(t, srv, origin("http://app.example"), "")
	})
}

func TestTicketNotLogged(t *testing.T) {
	srv := StartServer(t)
	alice := srv.NewUser("Alice")
	super := srv.SuperToken()

	used := srv.Ticket(alice)
	c := dialWith(t, srv, nil, "ticket="+queryEscape(used))
	c.Close()
	dialRefused(t, srv, nil, "ticket="+queryEscape(used), http.StatusUnauthorized)
	bogus := "bogus-ticket-" + used[:8] + "zz"
	dialRefused(t, srv, nil, "ticket="+queryEscape(bogus), http.StatusUnauthorized)
	// A page of a foreign origin is refused before its ticket is looked
	// at; the ticket, still valid, must not be logged either.
	foreign := srv.Ticket(alice)
	dialRefused(t, srv, http.Header{"Origin": {"http://evil.example"}}, "ticket="+queryEscape(foreign), http.StatusForbidden)
	secrets := []string{used, bogus, foreign}
	const requests = 4

	// PocketBase writes request logs in batches (every few seconds); the
	// connection's entry is written once its handler returns, after the
	// socket closes. Wait for every request to be logged.
	path := "/api/logs?perPage=100&filter=" + queryEscape(`data.url~'/api/chat/ws'`)
	var logs struct {
		Items []map[string]any
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		var raw json.RawMessage
		srv.MustDo("GET", path, super, nil, &raw)
		if err := json.Unmarshal(raw, &logs); err != nil {
			t.Fatal(err)
		}
		for _, s := range secrets {
			if strings.Contains(string(raw), s) {
				t.Fatalf("the request log holds the ticket %q: %s", s, raw)
			}
		}
		if len(logs.Items) >= requests {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("request log: got %d entries for /api/chat/ws, want %d: %s", len(logs.Items), requests, raw)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, it := range logs.Items {
		data, _ := it["data"].(map[string]any)
		if u, _ := data["url"].(string); u != "/api/chat/ws" {
			t.Errorf("logged url: got %q, want %q", u, "/api/chat/ws")
		}
	}
	out := srv.Output()
	for _, s := range secrets {
		if strings.Contains(out, s) {
			t.Fatalf("server output holds the ticket %q:\n%s", s, out)
		}
	}
}

func TestGuest(t *testing.T) {
	srv := StartServer(t)
	general := srv.General()
	alice := srv.NewUser("Alice")
	secret := srv.CreateRoom("Secret", "private", alice.ID)
	// A private room without members: the PocketBase rule trap
	// (members.id ?= "" is true for guests) must not apply to the chat.
	void := srv.CreateRoom("Void", "private")

	g := srv.Dial(nil)
	if u, ok := g.Hello["user"]; !ok || u != nil {
		t.Fatalf("guest hello user: got %v (present %v), want null", u, ok)
	}
	var names []string
	for _, r := range g.Hello.List("rooms") {
		names = append(names, r.Str("name"))
		if r.Str("kind") != "public" {
			t.Errorf("guest hello lists a %s room: %v", r.Str("kind"), r)
		}
		if id := r.Str("id"); id == secret.ID() || id == void.ID() {
			t.Errorf("guest hello lists private room %v", r)
		}
	}
	if !slices.Contains(names, "General") {
		t.Errorf("guest hello rooms: got %v, want General among them", names)
	}

	t.Run("reads public rooms", func(t *testing.T) {
		j := g.Join(general)
		if j.Type() != "joined" || j.Str("room") != general {
			t.Fatalf("join: got %v, want joined %s", j, general)
		}
		a := srv.Dial(alice)
		a.Join(general)
		sent := a.Send(general, "hello guests")
		got := g.ExpectMessage(general, "hello guests")
		if got.Str("id") != sent.Str("id") || got.Obj("author").Str("name") != "Alice" {
			t.Fatalf("guest got %v, want %s by Alice", got, sent.Str("id"))
		}
		noEmail(t, "message to guest", got, alice.Email)
	})
	t.Run("no private rooms", func(t *testing.T) {
		for _, id := range []string{secret.ID(), void.ID()} {
			wantErrorCode(t, "guest join private", g.Request("join", map[string]any{"room": id}), "forbidden", "not_found")
			wantErrorCode(t, "guest history private", g.Request("history", map[string]any{"room": id}), "forbidden", "not_found")
		}
	})
	t.Run("writes need auth", func(t *testing.T) {
		for _, req := range []struct {
			typ    string
			fields map[string]any
		}{
			{"send", map[string]any{"room": general, "text": "hi"}},
			{"dm", map[string]any{"to": alice.ID, "text": "hi"}},
			{"typing", map[string]any{"room": general}},
		} {
			before := g.ids.Load()
			f := g.Request(req.typ, req.fields)
			wantErrorCode(t, "guest "+req.typ, f, "auth_required")
			if want := fmt.Sprintf("r%d", before+1); f.Str("id") != want {
				t.Errorf("guest %s: error id %q, want %q", req.typ, f.Str("id"), want)
			}
		}
		if f := g.Request("ping", nil); f.Type() != "pong" {
			t.Fatalf("ping after refusals: got %v, want pong", f)
		}
		if err := g.CloseErr(); err != nil {
			t.Fatalf("guest connection closed: %v", err)
		}
	})
}

func TestGuestsDisabled(t *testing.T) {
	srv := StartServer(t, WithEnv("CHAT_GUESTS=false"))
	dialRefused(t, srv, nil, "", http.StatusUnauthorized)
	alice := srv.NewUser("Alice")
	srv.Dial(alice)
	srv.DialTicket(alice)
}
