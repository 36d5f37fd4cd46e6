package e2e

import (
	"net/http"
	"testing"
	"time"
)

// Authors edit and delete their own messages over the WebSocket; the
// room sees both live, and history shows the edit and not the deletion.
func TestEditDeleteOverWebSocket(t *testing.T) {
	srv := StartServer(t)
	general := srv.General()
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	a, b := srv.Dial(alice), srv.Dial(bob)
	a.Join(general)
	b.Join(general)
	sent := a.Send(general, "teh plan")
	b.ExpectMessage(general, "teh plan")
	id := sent.Str("id")

	ack := a.MustRequest("edit", map[string]any{"message": id, "text": "  the plan  "})
	if m := ack.Obj("message"); ack.Type() != "ack" || m.Str("id") != id || m.Str("text") != "the plan" {
		t.Fatalf("edit reply %v, want an ack of %s with the cleaned text", ack, id)
	}
	for name, c := range map[string]*Client{"alice": a, "bob": b} {
		f := c.WaitFor("edited", func(f Frame) bool { return f.Type() == "edited" })
		if m := f.Obj("message"); f.Str("room") != general || m.Str("id") != id || m.Str("text") != "the plan" {
			t.Fatalf("%s: got %v, want the edit", name, f)
		}
		noEmail(t, "edited", f, alice.Email)
	}
	h := b.MustRequest("history", map[string]any{"room": general})
	var inHistory Frame
	for _, m := range h.List("messages") {
		if m.Str("id") == id {
			inHistory = m
		}
	}
	created, _ := time.Parse(time.RFC3339Nano, inHistory.Str("created"))
	updated, _ := time.Parse(time.RFC3339Nano, inHistory.Str("updated"))
	if inHistory.Str("text") != "the plan" || !updated.After(created) {
		t.Fatalf("history has %v, want the edited text with updated after created", inHistory)
	}

	for _, tc := range []struct {
		typ    string
		fields map[string]any
		code   string
	}{
		{"edit", map[string]any{"message": id, "text": "hijacked"}, "forbidden"},
		{"delete", map[string]any{"message": id}, "forbidden"},
		{"delete", map[string]any{"message": "nosuchmessage00"}, "not_found"},
		{"edit", map[string]any{"message": id}, "bad_request"},
		{"edit", map[string]any{"message": id, "text": 12}, "bad_request"},
	} {
		if f := b.Request(tc.typ, tc.fields); f.Type() != "error" || f.Str("code") != tc.code {
			t.Errorf("bob %s %v: got %v, want error %s", tc.typ, tc.fields, f, tc.code)
		}
	}
	a.ExpectNone("a change by bob", func(f Frame) bool { return f.Type() == "edited" || f.Type() == "deleted" })

	if f := a.MustRequest("delete", map[string]any{"message": id}); f.Type() != "ack" || f.Obj("message").Str("id") != id {
		t.Fatalf("delete reply %v, want an ack of %s", f, id)
	}
	for name, c := range map[string]*Client{"alice": a, "bob": b} {
		if f := c.Expect("deleted"); f.Str("room") != general || f.Str("id") != id {
			t.Fatalf("%s: got %v, want deleted %s", name, f, id)
		}
	}
	for _, m := range b.MustRequest("history", map[string]any{"room": general}).List("messages") {
		if m.Str("id") == id {
			t.Fatalf("history still has the deleted message: %v", m)
		}
	}
	if code := srv.Do("GET", "/api/collections/messages/records/"+id, alice.Token, nil, nil); code != http.StatusNotFound {
		t.Errorf("REST view of the deleted message: %d, want 404", code)
	}
}

// A message in a private room is "not found" to those outside it, on
// edit and delete as on reads.
func TestEditPrivateRoomHidden(t *testing.T) {
	srv := StartServer(t)
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	room := srv.CreateRoom("secret", "private", alice.ID).ID()
	a, b := srv.Dial(alice), srv.Dial(bob)
	id := a.Send(room, "for members").Str("id")
	for _, typ := range []string{"edit", "delete"} {
		f := b.Request(typ, map[string]any{"message": id, "text": "x"})
		if f.Type() != "error" || f.Str("code") != "not_found" {
			t.Errorf("%s by an outsider: got %v, want not_found", typ, f)
		}
	}
}

// Past CHAT_EDIT_WINDOW the author can no longer edit, over the WebSocket
// or REST, but can still delete; superusers edit and delete anything.
func TestEditWindow(t *testing.T) {
	srv := StartServer(t, WithEnv("CHAT_EDIT_WINDOW=1s"))
	general := srv.General()
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	a, b := srv.Dial(alice), srv.Dial(bob)
	b.Join(general)
	first := a.Send(general, "one").Str("id")
	second := a.Send(general, "two").Str("id")
	bobs := b.Send(general, "bob's").Str("id")
	time.Sleep(1500 * time.Millisecond)

	if f := a.Request("edit", map[string]any{"message": first, "text": "late"}); f.Type() != "error" || f.Str("code") != "forbidden" {
		t.Errorf("late edit over the socket: got %v, want forbidden", f)
	}
	resp, body := restRaw(srv, "PATCH", "/api/collections/messages/records/"+first, alice.Token, map[string]any{"text": "late"})
	if resp.StatusCode != http.StatusForbidden {
		t.Errorf("late REST edit: %d %v, want 403", resp.StatusCode, body)
	}
	b.ExpectNone("a late edit", func(f Frame) bool { return f.Type() == "edited" })

	if f := a.MustRequest("delete", map[string]any{"message": first}); f.Type() != "ack" {
		t.Errorf("late delete: got %v, want an ack", f)
	}
	b.Expect("deleted")

	super := srv.SuperToken()
	var rec Record
	srv.MustDo("PATCH", "/api/collections/messages/records/"+second, super, map[string]any{"text": "[removed by a moderator]"}, &rec)
	if f := b.Expect("edited"); f.Obj("message").Str("text") != "[removed by a moderator]" {
		t.Errorf("superuser edit reached bob as %v", f)
	}
	if code := srv.Do("DELETE", "/api/collections/messages/records/"+bobs, super, nil, nil); code != http.StatusNoContent {
		t.Fatalf("superuser delete: %d, want 204", code)
	}
	if f := b.Expect("deleted"); f.Str("id") != bobs {
		t.Errorf("superuser delete reached bob as %v", f)
	}
}
