package e2e

import "testing"

// TestOpenDirectRoom: a user opens a private chat from the online list
// before writing anything; the room appears for both and is the one a
// later dm uses.
func TestOpenDirectRoom(t *testing.T) {
	srv := StartServer(t)
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	a, b := srv.Dial(alice), srv.Dial(bob)

	opened := a.MustRequest("open", map[string]any{"to": bob.ID})
	room := opened.Obj("room")
	if room.Str("kind") != "direct" || room.Str("id") == "" {
		t.Fatalf("opened room = %v, want a direct room", room)
	}
	for name, c := range map[string]*Client{"alice": a, "bob": b} {
		ev := c.WaitFor("room create", func(f Frame) bool {
			return f.Type() == "room" && f.Obj("room").Str("id") == room.Str("id")
		})
		if got := ev.Str("action"); got != "create" {
			t.Errorf("%s: room action = %q, want create", name, got)
		}
	}

	again := b.MustRequest("open", map[string]any{"to": alice.ID}).Obj("room")
	if again.Str("id") != room.Str("id") {
		t.Fatalf("second open gave room %s, want the same %s", again.Str("id"), room.Str("id"))
	}
	ack := a.MustRequest("dm", map[string]any{"to": bob.ID, "text": "hi"})
	if got := ack.Obj("message").Str("room"); got != room.Str("id") {
		t.Fatalf("dm went to room %s, want the opened %s", got, room.Str("id"))
	}
	b.ExpectMessage(room.Str("id"), "hi")

	for _, tc := range []struct {
		name   string
		c      *Client
		fields map[string]any
		code   string
	}{
		{"self", a, map[string]any{"to": alice.ID}, "bad_request"},
		{"missing user", a, map[string]any{"to": "nosuchuser0000"}, "not_found"},
		{"no to", a, map[string]any{}, "bad_request"},
		{"guest", srv.Dial(nil), map[string]any{"to": bob.ID}, "auth_required"},
	} {
		f := tc.c.Request("open", tc.fields)
		if f.Type() != "error" || f.Str("code") != tc.code {
			t.Errorf("%s: got %v, want error %s", tc.name, f, tc.code)
		}
	}
}
