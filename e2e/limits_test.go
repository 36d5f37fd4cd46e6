package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// dialStatus tries to open the chat socket as u (nil: a guest) and
// returns the HTTP status of the refusal, or 101 with the open client.
func dialStatus(t *testing.T, srv *Server, u *User) (int, *Client) {
	t.Helper()
	h := http.Header{}
	if u != nil {
		h.Set("Authorization", "Bearer "+u.Token)
	}
	conn, resp, err := srv.DialRaw(h, "")
	if err != nil {
		if resp == nil {
			t.Fatalf("dial: %v", err)
		}
		body, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusTooManyRequests && !strings.Contains(string(body), "Too many chat connections") {
			t.Errorf("429 body %s, want the reason", body)
		}
		return resp.StatusCode, nil
	}
	return http.StatusSwitchingProtocols, newClient(t, conn)
}

// Connections are limited per user and per address, on the native socket
// and socket.io together; a closed connection frees its place.
func TestConnectionLimits(t *testing.T) {
	srv := StartServer(t, WithEnv("CHAT_CONNS_PER_USER=2", "CHAT_CONNS_PER_IP=4"))
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")

	a1, a2 := srv.Dial(alice), srv.Dial(alice)
	if code, _ := dialStatus(t, srv, alice); code != http.StatusTooManyRequests {
		t.Fatalf("alice's third connection: %d, want 429", code)
	}
	a1.Close()
	waitUntil(t, "alice's place is free", func() bool {
		code, _ := dialStatus(t, srv, alice) // the new connection stays open
		return code == http.StatusSwitchingProtocols
	})

	// Two of alice's and one of bob's: the address has one place left,
	// which a guest takes; then nobody from it gets in, not even through
	// socket.io's handshake.
	srv.Dial(bob)
	srv.Dial(nil)
	if code, _ := dialStatus(t, srv, bob); code != http.StatusTooManyRequests {
		t.Fatalf("fifth connection from the address: %d, want 429", code)
	}
	resp, err := http.Get(srv.URL + "/socket.io/?EIO=4&transport=polling")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("socket.io handshake over the limit: %d %s, want 429", resp.StatusCode, body)
	}
	a2.Close()
	waitUntil(t, "the address has a place again", func() bool {
		code, c := dialStatus(t, srv, bob)
		if c != nil {
			c.Close()
		}
		return code == http.StatusSwitchingProtocols
	})
}

// Tickets are limited per user, with Retry-After.
func TestTicketLimit(t *testing.T) {
	srv := StartServer(t, WithEnv("CHAT_TICKET_RATE=0.2", "CHAT_TICKET_BURST=2"))
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	srv.Ticket(alice)
	srv.Ticket(alice)
	resp, body := restRaw(srv, "POST", "/api/chat/ticket", alice.Token, nil)
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("third ticket: %d (Retry-After %q) %v, want 429 with Retry-After", resp.StatusCode, resp.Header.Get("Retry-After"), body)
	}
	if data, _ := body["data"].(map[string]any); jsonInt(data["retryAfter"]) <= 0 {
		t.Errorf("429 body %v, want data.retryAfter", body)
	}
	srv.Ticket(bob) // another user's allowance is their own
}

// A connection joins at most CHAT_JOINS_PER_CONN rooms; typing notices
// beyond the user's allowance are refused with retryAfter.
func TestJoinAndTypingLimits(t *testing.T) {
	srv := StartServer(t, WithEnv("CHAT_JOINS_PER_CONN=2", "CHAT_TYPING_RATE=0.5", "CHAT_TYPING_BURST=2"))
	general := srv.General()
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	r2 := srv.CreateRoom("second", "public").ID()
	r3 := srv.CreateRoom("third", "public").ID()
	a, b := srv.Dial(alice), srv.Dial(bob)
	a.Join(general)
	a.Join(r2)
	if f := a.Request("join", map[string]any{"room": r3}); f.Type() != "error" || f.Str("code") != "forbidden" {
		t.Fatalf("third join: %v, want forbidden", f)
	}
	a.MustRequest("leave", map[string]any{"room": r2})
	a.Join(r3)

	b.Join(general)
	for range 2 {
		a.SendRaw(`{"type":"typing","room":"` + general + `"}`)
		b.Expect("typing")
	}
	f := a.Request("typing", map[string]any{"room": general})
	if f.Type() != "error" || f.Str("code") != "rate_limited" || jsonInt(f["retryAfter"]) <= 0 {
		t.Fatalf("third typing notice: %v, want rate_limited with retryAfter", f)
	}
	b.ExpectNone("a typing notice over the limit", func(f Frame) bool { return f.Type() == "typing" })
}

// waitUntil polls cond until it holds or the wait runs out.
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(waitTime)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting until %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
