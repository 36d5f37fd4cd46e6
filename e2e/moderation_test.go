package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// ---- moderation and send limits ----

// setUser changes a user's record as a superuser (the dashboard's way).
func setUser(srv *Server, u *User, fields map[string]any) {
	srv.t.Helper()
	srv.MustDo("PATCH", "/api/collections/users/records/"+u.ID, srv.SuperToken(), fields, nil)
}

// signIn signs a user in with their password and returns the status.
func signIn(srv *Server, u *User) int {
	srv.t.Helper()
	return srv.Do("POST", "/api/collections/users/auth-with-password", "", map[string]any{
		"identity": u.Email, "password": u.Password,
	}, nil)
}

// restRaw posts a JSON body and returns the response with its body read.
func restRaw(srv *Server, method, path, token string, body any) (*http.Response, map[string]any) {
	srv.t.Helper()
	b, _ := json.Marshal(body)
	req, _ := http.NewRequest(method, srv.URL+path, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		srv.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	var out map[string]any
	_ = json.Unmarshal(data, &out)
	return resp, out
}

// uploadAvatar replaces a user's avatar with a tiny PNG, as their profile
// form does; it returns the status.
func uploadAvatar(srv *Server, u *User) int {
	srv.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	part, _ := w.CreateFormFile("avatar", "me.png")
	_, _ = part.Write(tinyPNG)
	_ = w.Close()
	req, _ := http.NewRequest("PATCH", srv.URL+"/api/collections/users/records/"+u.ID, &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	req.Header.Set("Authorization", u.Token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		srv.t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// tinyPNG is a valid 1×1 PNG.
var tinyPNG = []byte("\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x01\x00\x00\x00\x01\x08\x06\x00\x00\x00\x1f\x15\xc4\x89" +
	"\x00\x00\x00\rIDATx\x9cc\xf8\xff\xff?\x00\x05\xfe\x02\xfe\xa7\x35\x81\x84\x00\x00\x00\x00IEND\xaeB`\x82")

// wantEnded waits for the connection to get an error with code and to be
// closed with 1008, and returns how long that took from since.
func wantEnded(t *testing.T, c *Client, code string, since time.Time) time.Duration {
	t.Helper()
	f := c.WaitFor("error "+code, func(f Frame) bool { return f.Type() == "error" })
	if f.Str("code") != code || f.Str("id") != "" {
		t.Errorf("ending error: %v, want code %s and no id", f, code)
	}
	err := c.WaitClosed()
	took := time.Since(since)
	if got := closeCode(err); got != websocket.ClosePolicyViolation {
		t.Errorf("closed with %v (code %d), want 1008", err, got)
	}
	return took
}

func TestBanEndsEverything(t *testing.T) {
	srv := StartServer(t)
	general := srv.General()
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	a1, a2 := srv.Dial(alice), srv.Dial(alice)
	a1.Join(general) // one in the room, one not: both end
	b := srv.Dial(bob)
	b.Join(general)
	a1.Send(general, "before the ban")
	b.ExpectMessage(general, "before the ban")

	start := time.Now()
	setUser(srv, alice, map[string]any{"banned": true})
	for i, c := range []*Client{a1, a2} {
		took := wantEnded(t, c, "forbidden", start)
		t.Logf("connection %d of the banned user closed %v after the ban was saved", i+1, took)
	}

	// Everyone else carries on.
	b.Send(general, "after the ban")
	b.ExpectMessage(general, "after the ban")

	// No way back in: connecting, tickets, signing in, refreshing the
	// token, posting, uploading.
	if _, resp, err := srv.DialRaw(http.Header{"Authorization": {alice.Token}}, ""); err == nil || resp == nil || resp.StatusCode != http.StatusForbidden {
		t.Errorf("banned user's WebSocket: %v, %s; want 403", err, respStatus(resp))
	}
	wantHTTPStatus(t, "ticket for a banned user", srv.Do("POST", "/api/chat/ticket", alice.Token, nil, nil), http.StatusForbidden)
	wantHTTPStatus(t, "sign-in of a banned user", signIn(srv, alice), http.StatusForbidden)
	wantHTTPStatus(t, "token refresh of a banned user", srv.Do("POST", "/api/collections/users/auth-refresh", alice.Token, nil, nil), http.StatusForbidden)
	code, rec := restCreate(srv, alice.Token, map[string]any{"room": general, "author": alice.ID, "text": "from REST"})
	if code/100 == 2 || rec.ID() != "" {
		t.Errorf("banned user's REST create: HTTP %d, %v", code, rec)
	}
	if code := uploadAvatar(srv, alice); code/100 == 2 {
		t.Errorf("banned user's avatar upload: HTTP %d, want a refusal", code)
	}
	noneQueued(t, b, "message of the banned user", func(f Frame) bool { return f.Obj("message").Str("text") == "from REST" })

	// Unbanned, all works again.
	setUser(srv, alice, map[string]any{"banned": false})
	wantHTTPStatus(t, "sign-in after the ban is lifted", signIn(srv, alice), http.StatusOK)
	a := srv.Dial(alice)
	a.Send(general, "back")
	b.ExpectMessage(general, "back")
	if code := uploadAvatar(srv, alice); code != http.StatusOK {
		t.Errorf("avatar upload after the ban is lifted: HTTP %d", code)
	}
}

func TestMuteReadsButNoWrites(t *testing.T) {
	srv := StartServer(t)
	general := srv.General()
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	a, b := srv.Dial(alice), srv.Dial(bob)
	a.Join(general)
	b.Join(general)

	until := time.Now().Add(time.Hour).UTC().Truncate(time.Millisecond)
	setUser(srv, alice, map[string]any{"muted_until": until.Format("2006-01-02 15:04:05.000Z")})

	f := a.Request("send", map[string]any{"room": general, "text": "muted words"})
	if f.Type() != "error" || f.Str("code") != "forbidden" {
		t.Fatalf("send while muted: %v, want a forbidden error", f)
	}
	if got, err := time.Parse(time.RFC3339, f.Str("until")); err != nil || !got.Equal(until.Truncate(time.Second)) && !got.Equal(until) {
		t.Errorf("until = %q, want %s", f.Str("until"), until.Format(time.RFC3339))
	}
	f = a.Request("dm", map[string]any{"to": bob.ID, "text": "muted dm"})
	if f.Str("code") != "forbidden" {
		t.Errorf("dm while muted: %v, want forbidden", f)
	}

	resp, body := restRaw(srv, "POST", "/api/collections/messages/records", alice.Token,
		map[string]any{"room": general, "author": alice.ID, "text": "muted REST"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("REST create while muted: HTTP %d %v, want 403", resp.StatusCode, body)
	} else if data, _ := body["data"].(map[string]any); data["until"] != until.Truncate(time.Second).Format(time.RFC3339) {
		t.Errorf("REST refusal %v: data.until, want %s", body, until.Truncate(time.Second).Format(time.RFC3339))
	}
	// The user cannot lift their own mute.
	wantHTTPStatus(t, "lifting one's own mute", srv.Do("PATCH", "/api/collections/users/records/"+alice.ID, alice.Token,
		map[string]any{"muted_until": ""}, nil), http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound)

	// Still reading: live messages and history.
	b.Send(general, "to the muted")
	a.ExpectMessage(general, "to the muted")
	a.MustRequest("history", map[string]any{"room": general})
	noneQueued(t, b, "muted message", func(f Frame) bool {
		return f.Type() == "message" && f.Obj("message").Obj("author").Str("id") == alice.ID
	})

	// A mute in the past is no mute.
	setUser(srv, alice, map[string]any{"muted_until": time.Now().Add(-time.Minute).UTC().Format("2006-01-02 15:04:05.000Z")})
	a.Send(general, "unmuted")
	b.ExpectMessage(general, "unmuted")
	code, _ := restCreate(srv, alice.Token, map[string]any{"room": general, "author": alice.ID, "text": "unmuted REST"})
	wantHTTPStatus(t, "REST create after the mute", code, http.StatusOK)
}

func TestSendRateSharedAcrossPaths(t *testing.T) {
	srv := StartServer(t, WithEnv("CHAT_SEND_RATE=2", "CHAT_SEND_BURST=3", "CHAT_ABUSE_REFUSALS=5"))
	general := srv.General()
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	a1, a2, b := srv.Dial(alice), srv.Dial(alice), srv.Dial(bob)
	b.Join(general)

	// The burst of 3, spent over two connections and REST.
	a1.Send(general, "one")
	a2.Send(general, "two")
	code, _ := restCreate(srv, alice.Token, map[string]any{"room": general, "author": alice.ID, "text": "three"})
	wantHTTPStatus(t, "REST create within the burst", code, http.StatusOK)

	f := a2.Request("send", map[string]any{"room": general, "text": "four"})
	if f.Str("code") != "rate_limited" {
		t.Fatalf("fourth send: %v, want rate_limited", f)
	}
	wait, _ := f["retryAfter"].(float64)
	if wait <= 0 || wait > 500 {
		t.Errorf("retryAfter = %v ms, want (0, 500] at 2 messages/s", f["retryAfter"])
	}
	resp, body := restRaw(srv, "POST", "/api/collections/messages/records", alice.Token,
		map[string]any{"room": general, "author": alice.ID, "text": "REST over the limit"})
	if resp.StatusCode != http.StatusTooManyRequests || resp.Header.Get("Retry-After") == "" {
		t.Errorf("REST over the limit: HTTP %d, Retry-After %q, %v; want 429 with Retry-After",
			resp.StatusCode, resp.Header.Get("Retry-After"), body)
	} else if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err != nil || s < 1 {
		t.Errorf("Retry-After %q, want whole seconds ≥ 1", resp.Header.Get("Retry-After"))
	} else if data, _ := body["data"].(map[string]any); data["retryAfter"] == nil || data["retryAfter"].(float64) <= 0 {
		t.Errorf("REST refusal %v: want data.retryAfter in ms", body)
	}
	// Others are not limited by Alice's use.
	b.Send(general, "bob is fine")

	// Waiting as told gets through.
	time.Sleep(time.Duration(wait) * time.Millisecond)
	a2.Send(general, "after waiting")
	b.ExpectMessage(general, "after waiting")

	// Ignoring the refusals: after 5 within a minute, the sixth closes
	// the connection that keeps going; Alice's other connection stays.
	for i := range 6 {
		f := a1.Request("send", map[string]any{"room": general, "text": fmt.Sprint("flood ", i)})
		if f.Str("code") != "rate_limited" {
			// The bucket refills at 2/s: an occasional send passes.
			continue
		}
	}
	start := time.Now()
	for closeCode(a1.CloseErr()) != websocket.ClosePolicyViolation && time.Since(start) < waitTime {
		a1.Conn.WriteMessage(websocket.TextMessage, []byte(`{"type":"send","room":"`+general+`","text":"more"}`))
		time.Sleep(20 * time.Millisecond)
	}
	if got := closeCode(a1.CloseErr()); got != websocket.ClosePolicyViolation {
		t.Fatalf("flooding connection: closed with %v, want 1008", a1.CloseErr())
	}
	a2.MustRequest("ping", nil)
	b.MustRequest("ping", nil)
	// Nothing refused was stored.
	for _, m := range listMessages(srv, bob.Token, general) {
		if m["text"] == "four" || m["text"] == "REST over the limit" {
			t.Errorf("a refused message was stored: %v", m)
		}
	}
}
