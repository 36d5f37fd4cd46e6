package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sort"
	"strings"
	"sync"
	"testing"

	"github.com/gorilla/websocket"
)

// restCreate posts a message through the REST API and returns the status
// and the answer.
func restCreate(srv *Server, token string, fields map[string]any) (int, Record) {
	srv.t.Helper()
	var rec Record
	code := srv.Do("POST", "/api/collections/messages/records", token, fields, &rec)
	return code, rec
}

// listMessages lists the messages of a room through REST as token's owner.
func listMessages(srv *Server, token, room string) []Record {
	srv.t.Helper()
	var list struct{ Items []Record }
	srv.MustDo("GET", "/api/collections/messages/records?perPage=200&filter="+queryEscape(fmt.Sprintf("room='%s'", room)), token, nil, &list)
	return list.Items
}

// nextSSE returns the next event, which must be a record event of the
// collection.
func nextSSE(t *testing.T, sse *SSE, topic string) (action string, rec Record) {
	t.Helper()
	ev := sse.Next()
	if ev.Name != topic {
		t.Fatalf("SSE event: got %q %v, want %q", ev.Name, ev.Data, topic)
	}
	action, _ = ev.Data["action"].(string)
	m, _ := ev.Data["record"].(map[string]any)
	return action, Record(m)
}

func wantHTTPStatus(t *testing.T, what string, got int, want ...int) {
	t.Helper()
	for _, w := range want {
		if got == w {
			return
		}
	}
	t.Fatalf("%s: got HTTP %d, want %v", what, got, want)
}

func jsonInt(v any) int64 { f, _ := v.(float64); return int64(f) }

func TestRESTMessagesReachWebSocket(t *testing.T) {
	srv := StartServer(t)
	general := srv.General()
	alice, bob, mallory := srv.NewUser("Alice"), srv.NewUser("Bob"), srv.NewUser("Mallory")
	b := srv.Dial(bob)
	b.Join(general)

	t.Run("create", func(t *testing.T) {
		code, rec := restCreate(srv, alice.Token, map[string]any{"room": general, "author": alice.ID, "text": "  from REST \x01 "})
		wantHTTPStatus(t, "REST create", code, http.StatusOK)
		if got := rec["text"]; got != "from REST" {
			t.Errorf("stored text: got %q, want %q (cleaned)", got, "from REST")
		}
		seq := jsonInt(rec["seq"])
		if seq <= 0 {
			t.Fatalf("REST create: seq %v, want > 0", rec["seq"])
		}
		m := b.ExpectMessage(general, "from REST")
		if m.Str("id") != rec.ID() {
			t.Errorf("message id: got %q, want %q", m.Str("id"), rec.ID())
		}
		if got := m.Obj("author").Str("name"); got != "Alice" {
			t.Errorf("author name: got %q, want Alice", got)
		}
		if got := m.Obj("author").Str("id"); got != alice.ID {
			t.Errorf("author id: got %q, want %q", got, alice.ID)
		}
		if got := jsonInt(m["seq"]); got != seq {
			t.Errorf("seq: got %d, want %d (the stored seq)", got, seq)
		}
		noEmail(t, "message", m, alice.Email)
	})
	t.Run("author must be self", func(t *testing.T) {
		code, rec := restCreate(srv, bob.Token, map[string]any{"room": general, "author": alice.ID, "text": "impersonated"})
		wantHTTPStatus(t, "REST create as someone else", code, http.StatusBadRequest, http.StatusForbidden)
		if rec.ID() != "" {
			t.Fatalf("REST create as someone else stored %v", rec)
		}
	})
	t.Run("banned", func(t *testing.T) {
		banUser(srv, mallory)
		code, rec := restCreate(srv, mallory.Token, map[string]any{"room": general, "author": mallory.ID, "text": "spam"})
		wantHTTPStatus(t, "REST create by a banned user", code, http.StatusBadRequest, http.StatusForbidden)
		if rec.ID() != "" {
			t.Fatalf("banned user's REST create stored %v", rec)
		}
	})
	t.Run("refusals leave no trace", func(t *testing.T) {
		// The refused creates reached no one, and did not hold the room's
		// later messages back: the next one arrives right after.
		code, _ := restCreate(srv, alice.Token, map[string]any{"room": general, "author": alice.ID, "text": "after refusals"})
		wantHTTPStatus(t, "REST create", code, http.StatusOK)
		b.ExpectMessage(general, "after refusals")
		noneQueued(t, b, "refused message", func(f Frame) bool {
			txt := f.Obj("message").Str("text")
			return txt == "impersonated" || txt == "spam"
		})
		for _, m := range listMessages(srv, bob.Token, general) {
			if txt := m["text"]; txt == "impersonated" || txt == "spam" {
				t.Fatalf("refused message stored: %v", m)
			}
		}
	})
	t.Run("websocket message via REST and SSE", func(t *testing.T) {
		sse := srv.Subscribe(bob.Token, "messages")
		a := srv.Dial(alice)
		sent := a.Send(general, "from WebSocket")
		action, rec := nextSSE(t, sse, "messages")
		if action != "create" || rec["text"] != "from WebSocket" || rec.ID() != sent.Str("id") {
			t.Fatalf("SSE: got %s %v, want create of %s with text %q", action, rec, sent.Str("id"), "from WebSocket")
		}
		if got := jsonInt(rec["seq"]); got != jsonInt(sent["seq"]) {
			t.Errorf("SSE seq: got %d, want %d", got, jsonInt(sent["seq"]))
		}
		var found Record
		for _, m := range listMessages(srv, bob.Token, general) {
			if m.ID() == sent.Str("id") {
				found = m
			}
		}
		if found == nil || found["text"] != "from WebSocket" || found["author"] != alice.ID {
			t.Fatalf("REST list: got %v, want the message by %s", found, alice.ID)
		}
		// Guests read public rooms over REST too.
		var view Record
		srv.MustDo("GET", "/api/collections/messages/records/"+sent.Str("id"), "", nil, &view)
		if view["text"] != "from WebSocket" {
			t.Fatalf("guest REST view: got %v", view)
		}
	})
}

func TestRESTEditDelete(t *testing.T) {
	srv := StartServer(t)
	general := srv.General()
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	a, b := srv.Dial(alice), srv.Dial(bob)
	a.Join(general)
	b.Join(general)
	sent := a.Send(general, "first draft")
	b.ExpectMessage(general, "first draft")
	id := sent.Str("id")
	recURL := "/api/collections/messages/records/" + id

	t.Run("edit", func(t *testing.T) {
		var rec Record
		srv.MustDo("PATCH", recURL, alice.Token, map[string]any{"text": "final text"}, &rec)
		for name, c := range map[string]*Client{"alice": a, "bob": b} {
			f := c.WaitFor("edited", func(f Frame) bool { return f.Type() == "edited" })
			m := f.Obj("message")
			if f.Str("room") != general || m.Str("id") != id || m.Str("text") != "final text" {
				t.Fatalf("%s: got %v, want edited %s in %s with text %q", name, f, id, general, "final text")
			}
			if m.Obj("author").Str("name") != "Alice" || jsonInt(m["seq"]) != jsonInt(sent["seq"]) {
				t.Errorf("%s: edited message %v, want author Alice and seq %d", name, m, jsonInt(sent["seq"]))
			}
			noEmail(t, "edited", f, alice.Email)
		}
	})
	t.Run("others may not edit or delete", func(t *testing.T) {
		wantHTTPStatus(t, "PATCH by another user", srv.Do("PATCH", recURL, bob.Token, map[string]any{"text": "hacked"}, nil), http.StatusNotFound, http.StatusForbidden)
		wantHTTPStatus(t, "DELETE by another user", srv.Do("DELETE", recURL, bob.Token, nil, nil), http.StatusNotFound, http.StatusForbidden)
		b.ExpectNone("edited or deleted", func(f Frame) bool { return f.Type() == "edited" || f.Type() == "deleted" })
	})
	t.Run("delete", func(t *testing.T) {
		wantHTTPStatus(t, "DELETE by the author", srv.Do("DELETE", recURL, alice.Token, nil, nil), http.StatusNoContent)
		for name, c := range map[string]*Client{"alice": a, "bob": b} {
			f := c.Expect("deleted")
			if f.Str("room") != general || f.Str("id") != id {
				t.Fatalf("%s: got %v, want deleted {room %s, id %s}", name, f, general, id)
			}
		}
		h := b.MustRequest("history", map[string]any{"room": general})
		for _, m := range h.List("messages") {
			if m.Str("id") == id {
				t.Fatalf("history still has the deleted message: %v", m)
			}
		}
	})
}

func TestPrivateRoomAccess(t *testing.T) {
	srv := StartServer(t)
	general := srv.General()
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	secret := srv.CreateRoom("Secret", "private", alice.ID).ID()

	aliceSSE := srv.Subscribe(alice.Token, "messages")
	bobSSE := srv.Subscribe(bob.Token, "messages")
	guestSSE := srv.Subscribe("", "messages")

	a, b, g := srv.Dial(alice), srv.Dial(bob), srv.Dial(nil)
	if !listsRoom(a.Hello, secret) {
		t.Fatalf("alice's hello does not list her private room: %v", a.Hello.List("rooms"))
	}
	for name, c := range map[string]*Client{"bob": b, "guest": g} {
		if listsRoom(c.Hello, secret) {
			t.Fatalf("%s's hello lists the private room: %v", name, c.Hello.List("rooms"))
		}
	}
	a.Join(general)
	b.Join(general)
	g.Join(general)

	t.Run("bob may not join or read", func(t *testing.T) {
		wantErrorCode(t, "bob join", b.Request("join", map[string]any{"room": secret}), "forbidden", "not_found")
		wantErrorCode(t, "bob history", b.Request("history", map[string]any{"room": secret}), "forbidden", "not_found")
		wantErrorCode(t, "bob resume", b.Request("resume", map[string]any{"room": secret, "after": "xxxxxxxxxxxxxxx"}), "forbidden", "not_found")
		wantErrorCode(t, "bob send", b.Request("send", map[string]any{"room": secret, "text": "let me in"}), "forbidden", "not_found")
		wantErrorCode(t, "bob typing", b.Request("typing", map[string]any{"room": secret}), "forbidden", "not_found")
	})

	var secretMsg string
	t.Run("messages reach members only", func(t *testing.T) {
		a.Join(secret)
		secretMsg = a.Send(secret, "for alice only").Str("id")
		a.ExpectMessage(secret, "for alice only")
		a.Send(general, "sentinel")
		for name, c := range map[string]*Client{"bob": b, "guest": g} {
			c.ExpectMessage(general, "sentinel")
			noneQueued(t, c, name+" private room", forRoom(secret))
		}
		// SSE: alice gets both, in order; bob and the guest only the
		// sentinel.
		if action, rec := nextSSE(t, aliceSSE, "messages"); action != "create" || rec["text"] != "for alice only" {
			t.Fatalf("alice SSE: got %s %v, want create of the private message", action, rec)
		}
		for name, sse := range map[string]*SSE{"alice": aliceSSE, "bob": bobSSE, "guest": guestSSE} {
			if action, rec := nextSSE(t, sse, "messages"); action != "create" || rec["text"] != "sentinel" {
				t.Fatalf("%s SSE: got %s %v, want create of the sentinel", name, action, rec)
			}
		}
		bobSSE.ExpectNone()
		guestSSE.ExpectNone()
	})
	t.Run("REST hides the room and its messages", func(t *testing.T) {
		for name, token := range map[string]string{"bob": bob.Token, "guest": ""} {
			var rooms struct{ Items []Record }
			srv.MustDo("GET", "/api/collections/rooms/records?perPage=200", token, nil, &rooms)
			for _, r := range rooms.Items {
				if r.ID() == secret {
					t.Errorf("%s: REST room list has the private room", name)
				}
			}
			wantHTTPStatus(t, name+" REST view room", srv.Do("GET", "/api/collections/rooms/records/"+secret, token, nil, nil), http.StatusNotFound)
			if got := listMessages(srv, token, secret); len(got) != 0 {
				t.Errorf("%s: REST message list of the private room: got %v, want none", name, got)
			}
			wantHTTPStatus(t, name+" REST view message", srv.Do("GET", "/api/collections/messages/records/"+secretMsg, token, nil, nil), http.StatusNotFound)
			// Filters, sorting and expands, which evaluate other
			// records' fields, find nothing of it either.
			for _, q := range []string{
				"/api/collections/messages/records?perPage=200&filter=" + queryEscape("room.kind='private'"),
				"/api/collections/messages/records?perPage=200&filter=" + queryEscape("id='"+secretMsg+"'") + "&expand=room",
				"/api/collections/messages/records?perPage=200&filter=" + queryEscape("room.members.id?='"+alice.ID+"'"),
				"/api/collections/messages/records?perPage=200&filter=" + queryEscape("text~'members'") + "&sort=-room.name",
				"/api/collections/rooms/records?perPage=200&filter=" + queryEscape("members.id?='"+alice.ID+"'"),
				"/api/collections/rooms/records?perPage=200&expand=messages_via_room",
				"/api/collections/users/records?perPage=200&expand=messages_via_author,rooms_via_members",
			} {
				var list struct{ Items []map[string]any }
				code := srv.Do("GET", q, token, nil, &list)
				if code == http.StatusOK {
					if b, _ := json.Marshal(list); strings.Contains(string(b), secretMsg) || strings.Contains(string(b), secret) {
						t.Errorf("%s: %s shows the private room or its message: %s", name, q, b)
					}
				} else if code != http.StatusBadRequest && code != http.StatusForbidden {
					t.Errorf("%s: %s: HTTP %d", name, q, code)
				}
			}
			code, rec := restCreate(srv, token, map[string]any{"room": secret, "author": bob.ID, "text": "let me in"})
			wantHTTPStatus(t, name+" REST create in the private room", code, http.StatusBadRequest, http.StatusForbidden, http.StatusNotFound)
			if rec.ID() != "" {
				t.Fatalf("%s: stored %v", name, rec)
			}
		}
		if got := listMessages(srv, alice.Token, secret); len(got) != 1 || got[0].ID() != secretMsg {
			t.Errorf("alice: REST message list of her private room: got %v, want %s", got, secretMsg)
		}
	})
}

func listsRoom(hello Frame, id string) bool {
	for _, r := range hello.List("rooms") {
		if r.Str("id") == id {
			return true
		}
	}
	return false
}

// roomEvent waits for a room frame about the room.
func roomEvent(c *Client, id string) Frame {
	c.t.Helper()
	return c.WaitFor("room "+id, func(f Frame) bool { return f.Type() == "room" && f.Obj("room").Str("id") == id })
}

func wantRoomEvent(t *testing.T, who string, c *Client, id, action string) Frame {
	t.Helper()
	f := roomEvent(c, id)
	if got := f.Str("action"); got != action {
		t.Fatalf("%s: room %s: got action %q (%v), want %q", who, id, got, f, action)
	}
	return f
}

func TestMembershipChangesLive(t *testing.T) {
	srv := StartServer(t)
	general := srv.General()
	super := srv.SuperToken()
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	secret := srv.CreateRoom("Secret", "private", alice.ID).ID()
	roomURL := "/api/collections/rooms/records/" + secret

	a, b, g := srv.Dial(alice), srv.Dial(bob), srv.Dial(nil)
	a.Join(general)
	b.Join(general)
	g.Join(general)
	a.Join(secret)
	setMembers := func(ids ...string) {
		srv.MustDo("PATCH", roomURL, super, map[string]any{"members": ids}, nil)
	}

	t.Run("added", func(t *testing.T) {
		setMembers(alice.ID, bob.ID)
		f := wantRoomEvent(t, "bob", b, secret, "create")
		if got := f.Obj("room").Str("name"); got != "Secret" {
			t.Errorf("bob: created room name %q, want Secret", got)
		}
		wantRoomEvent(t, "alice", a, secret, "update")
		b.Join(secret)
		a.Send(secret, "welcome bob")
		b.ExpectMessage(secret, "welcome bob")
	})
	t.Run("removed", func(t *testing.T) {
		setMembers(alice.ID)
		wantRoomEvent(t, "bob", b, secret, "delete")
		wantRoomEvent(t, "alice", a, secret, "update")
		a.Send(secret, "bob is gone")
		a.Send(general, "sentinel")
		b.ExpectMessage(general, "sentinel")
		noneQueued(t, b, "message of a room bob left", forRoom(secret))
		b.ExpectNone("message of a room bob left", forRoom(secret))
		wantErrorCode(t, "bob join after removal", b.Request("join", map[string]any{"room": secret}), "forbidden", "not_found")
		wantErrorCode(t, "bob history after removal", b.Request("history", map[string]any{"room": secret}), "forbidden", "not_found")
		wantErrorCode(t, "bob send after removal", b.Request("send", map[string]any{"room": secret, "text": "hello?"}), "forbidden", "not_found")
	})

	clients := map[string]*Client{"alice": a, "bob": b, "guest": g}
	t.Run("public room renamed", func(t *testing.T) {
		srv.MustDo("PATCH", "/api/collections/rooms/records/"+general, super, map[string]any{"name": "Town Square"}, nil)
		for name, c := range clients {
			f := wantRoomEvent(t, name, c, general, "update")
			if got := f.Obj("room").Str("name"); got != "Town Square" {
				t.Errorf("%s: renamed room name %q, want Town Square", name, got)
			}
		}
		// Every room change was sent before this one: the guest never
		// heard of the private room.
		noneQueued(t, g, "private room", forRoom(secret))
	})
	var lounge string
	t.Run("public room created", func(t *testing.T) {
		lounge = srv.CreateRoom("Lounge", "public").ID()
		for name, c := range clients {
			f := wantRoomEvent(t, name, c, lounge, "create")
			if f.Obj("room").Str("name") != "Lounge" || f.Obj("room").Str("kind") != "public" {
				t.Errorf("%s: created room %v, want public Lounge", name, f.Obj("room"))
			}
		}
		g.Join(lounge)
		b.Join(lounge)
	})
	t.Run("public room deleted", func(t *testing.T) {
		wantHTTPStatus(t, "DELETE room", srv.Do("DELETE", "/api/collections/rooms/records/"+lounge, super, nil, nil), http.StatusNoContent)
		for name, c := range clients {
			wantRoomEvent(t, name, c, lounge, "delete")
		}
		wantErrorCode(t, "join deleted room", g.Request("join", map[string]any{"room": lounge}), "not_found", "forbidden")
	})
	t.Run("private room deleted", func(t *testing.T) {
		wantHTTPStatus(t, "DELETE room", srv.Do("DELETE", roomURL, super, nil, nil), http.StatusNoContent)
		wantRoomEvent(t, "alice", a, secret, "delete")
		a.Send(general, "sentinel 2")
		for name, c := range map[string]*Client{"bob": b, "guest": g} {
			c.WaitFor("sentinel 2", func(f Frame) bool { return f.Obj("message").Str("text") == "sentinel 2" })
			noneQueued(t, c, name+" private room", forRoom(secret))
		}
	})
}

func dmRoomName(a, b string) string {
	if b < a {
		a, b = b, a
	}
	return "dm:" + a + ":" + b
}

// dmRooms lists, as the superuser, the rooms with the name.
func dmRooms(srv *Server, name string) []Record {
	srv.t.Helper()
	var list struct{ Items []Record }
	srv.MustDo("GET", "/api/collections/rooms/records?filter="+queryEscape(fmt.Sprintf("name='%s'", name)), srv.SuperToken(), nil, &list)
	return list.Items
}

func TestDirectMessages(t *testing.T) {
	srv := StartServer(t)
	general := srv.General()
	alice, bob, carol := srv.NewUser("Alice"), srv.NewUser("Bob"), srv.NewUser("Carol")
	a, b, c, g := srv.Dial(alice), srv.Dial(bob), srv.Dial(carol), srv.Dial(nil)
	a.Join(general)
	c.Join(general)
	g.Join(general)
	name := dmRoomName(alice.ID, bob.ID)

	var room string
	t.Run("first dm", func(t *testing.T) {
		ack := a.MustRequest("dm", map[string]any{"to": bob.ID, "text": "psst bob"})
		if ack.Type() != "ack" {
			t.Fatalf("dm reply: got %v, want ack", ack)
		}
		m := ack.Obj("message")
		room = m.Str("room")
		if room == "" || m.Str("text") != "psst bob" || m.Obj("author").Str("id") != alice.ID {
			t.Fatalf("dm ack message: got %v", m)
		}
		// Bob never joined anything: the room appears, then the message.
		first := b.WaitFor("room or message", func(f Frame) bool { return f.Type() == "room" || f.Type() == "message" })
		if first.Type() != "room" || first.Str("action") != "create" || first.Obj("room").Str("id") != room {
			t.Fatalf("bob: got %v first, want room create of %s", first, room)
		}
		r := first.Obj("room")
		if r.Str("kind") != "direct" || r.Str("name") != name {
			t.Errorf("bob: direct room %v, want kind direct and name %s", r, name)
		}
		got := b.ExpectMessage(room, "psst bob")
		if got.Str("id") != m.Str("id") || got.Obj("author").Str("name") != "Alice" {
			t.Fatalf("bob: got %v, want %s by Alice", got, m.Str("id"))
		}
		noEmail(t, "dm", got, alice.Email, bob.Email)
		a.ExpectMessage(room, "psst bob") // the sender's other tabs see it too
		wantRoomEvent(t, "alice", a, room, "create")
	})
	t.Run("others get nothing", func(t *testing.T) {
		a.Send(general, "sentinel")
		for who, cl := range map[string]*Client{"carol": c, "guest": g} {
			cl.ExpectMessage(general, "sentinel")
			noneQueued(t, cl, who+" direct room", forRoom(room))
			noneQueued(t, cl, who+" room event", func(f Frame) bool { return f.Type() == "room" })
			wantErrorCode(t, who+" join", cl.Request("join", map[string]any{"room": room}), "forbidden", "not_found")
			wantErrorCode(t, who+" history", cl.Request("history", map[string]any{"room": room}), "forbidden", "not_found")
		}
		wantErrorCode(t, "carol send", c.Request("send", map[string]any{"room": room, "text": "hi"}), "forbidden", "not_found")
		for who, token := range map[string]string{"carol": carol.Token, "guest": ""} {
			wantHTTPStatus(t, who+" REST view room", srv.Do("GET", "/api/collections/rooms/records/"+room, token, nil, nil), http.StatusNotFound)
			if got := listMessages(srv, token, room); len(got) != 0 {
				t.Errorf("%s: REST messages of the direct room: got %v, want none", who, got)
			}
		}
		// The members do see it over REST.
		if got := listMessages(srv, bob.Token, room); len(got) != 1 {
			t.Errorf("bob: REST messages of the direct room: got %d, want 1", len(got))
		}
	})
	t.Run("reply reuses the room", func(t *testing.T) {
		ack := b.MustRequest("dm", map[string]any{"to": alice.ID, "text": "hi alice"})
		if got := ack.Obj("message").Str("room"); got != room {
			t.Fatalf("bob's dm room: got %q, want %q", got, room)
		}
		a.ExpectMessage(room, "hi alice")
		b.ExpectMessage(room, "hi alice")
		if rooms := dmRooms(srv, name); len(rooms) != 1 || rooms[0].ID() != room {
			t.Fatalf("rooms named %s: got %v, want exactly %s", name, rooms, room)
		}
		// No second room event for a room that exists already.
		noneQueued(t, b, "second room event", forRoomEvent(room))
		noneQueued(t, a, "room event", forRoomEvent(room))
	})
	t.Run("bad dms", func(t *testing.T) {
		wantErrorCode(t, "dm to self", a.Request("dm", map[string]any{"to": alice.ID, "text": "me"}), "bad_request")
		wantErrorCode(t, "dm to missing user", a.Request("dm", map[string]any{"to": "zzzzzzzzzzzzzzz", "text": "anyone?"}), "not_found")
		wantErrorCode(t, "guest dm", g.Request("dm", map[string]any{"to": alice.ID, "text": "hi"}), "auth_required")
		wantErrorCode(t, "dm without text", a.Request("dm", map[string]any{"to": bob.ID, "text": "  "}), "bad_request")
		if rooms := dmRooms(srv, dmRoomName(alice.ID, alice.ID)); len(rooms) != 0 {
			t.Fatalf("dm to self created %v", rooms)
		}
	})
	t.Run("concurrent first dms", func(t *testing.T) {
		const pairs = 4
		type side struct {
			u *User
			c *Client
		}
		var sides [pairs][2]side
		for i := range sides {
			for j := range sides[i] {
				u := srv.NewUser(fmt.Sprintf("P%d%c", i, 'a'+j))
				sides[i][j] = side{u, srv.Dial(u)}
			}
		}
		// Every socket writes its dm at the same moment; the server runs
		// each connection's requests on its own goroutine.
		var wg sync.WaitGroup
		start := make(chan struct{})
		errs := make(chan error, 2*pairs)
		for i := range sides {
			for j := range sides[i] {
				me, other := sides[i][j], sides[i][1-j]
				wg.Add(1)
				go func() {
					defer wg.Done()
					<-start
					frame := fmt.Sprintf(`{"type":"dm","id":"race","to":%q,"text":"hi from %s"}`, other.u.ID, me.u.Name)
					if err := me.c.Conn.WriteMessage(websocket.TextMessage, []byte(frame)); err != nil {
						errs <- err
					}
				}()
			}
		}
		close(start)
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		for i := range sides {
			var rooms []string
			for j := range sides[i] {
				f := sides[i][j].c.WaitFor("dm reply", func(f Frame) bool { return f.Str("id") == "race" })
				if f.Type() != "ack" {
					t.Fatalf("pair %d side %d: got %v, want ack", i, j, f)
				}
				rooms = append(rooms, f.Obj("message").Str("room"))
			}
			if rooms[0] != rooms[1] {
				t.Fatalf("pair %d: the two dms went to rooms %v, want one", i, rooms)
			}
			name := dmRoomName(sides[i][0].u.ID, sides[i][1].u.ID)
			if got := dmRooms(srv, name); len(got) != 1 {
				t.Fatalf("pair %d: %d rooms named %s, want 1", i, len(got), name)
			}
			// Each side gets both messages, whoever created the room.
			for j := range sides[i] {
				for k := range sides[i] {
					sides[i][j].c.ExpectMessage(rooms[0], "hi from "+sides[i][k].u.Name)
				}
			}
		}
	})
}

func forRoomEvent(id string) func(Frame) bool {
	return func(f Frame) bool { return f.Type() == "room" && f.Obj("room").Str("id") == id }
}

func TestEmailsNeverExposed(t *testing.T) {
	srv := StartServer(t)
	general := srv.General()
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	emails := []string{alice.Email, bob.Email}

	t.Run("REST", func(t *testing.T) {
		var list struct{ Items []Record }
		srv.MustDo("GET", "/api/collections/users/records?perPage=200", bob.Token, nil, &list)
		var ids []string
		for _, u := range list.Items {
			ids = append(ids, u.ID())
			if u.ID() == bob.ID {
				continue // his own record may show his address
			}
			noEmail(t, "user list item "+u.ID(), u, alice.Email)
		}
		sort.Strings(ids)
		if i := sort.SearchStrings(ids, alice.ID); i == len(ids) || ids[i] != alice.ID {
			t.Fatalf("user list as bob: got %v, want alice %s among them", ids, alice.ID)
		}
		var view Record
		srv.MustDo("GET", "/api/collections/users/records/"+alice.ID, bob.Token, nil, &view)
		noEmail(t, "user view", view, alice.Email)
		if view["name"] != "Alice" {
			t.Fatalf("user view: got %v, want Alice", view)
		}
		// Expanding a message's author does not reveal it either.
		code, rec := restCreate(srv, alice.Token, map[string]any{"room": general, "author": alice.ID, "text": "expand me"})
		wantHTTPStatus(t, "REST create", code, http.StatusOK)
		var expanded Record
		srv.MustDo("GET", "/api/collections/messages/records/"+rec.ID()+"?expand=author", bob.Token, nil, &expanded)
		noEmail(t, "expanded message", expanded, alice.Email)
	})
	t.Run("WebSocket", func(t *testing.T) {
		a, b := srv.Dial(alice), srv.Dial(bob)
		noEmail(t, "hello", a.Hello, emails...)
		noEmail(t, "hello", b.Hello, emails...)
		a.Join(general)
		j := b.Join(general)
		if len(j.List("online")) != 2 {
			t.Errorf("joined online: got %v, want alice and bob", j["online"])
		}
		noEmail(t, "joined", j, emails...)
		p := a.Expect("presence")
		noEmail(t, "presence", p, emails...)
		b.Send(general, "no addresses here")
		noEmail(t, "message", a.ExpectMessage(general, "no addresses here"), emails...)
		a.SendRaw(`{"type":"typing","room":"` + general + `"}`) // no reply on success
		noEmail(t, "typing", b.Expect("typing"), emails...)
		noEmail(t, "history", b.MustRequest("history", map[string]any{"room": general}), emails...)
		ack := a.MustRequest("dm", map[string]any{"to": bob.ID, "text": "dm"})
		noEmail(t, "ack", ack, emails...)
		noEmail(t, "room", b.Expect("room"), emails...)
		for _, f := range append(a.Pending(), b.Pending()...) {
			noEmail(t, f.Type(), f, emails...)
		}
	})
	t.Run("SSE", func(t *testing.T) {
		sse := srv.Subscribe(bob.Token, "users")
		srv.MustDo("PATCH", "/api/collections/users/records/"+alice.ID, alice.Token, map[string]any{"name": "Alicia"}, nil)
		action, rec := nextSSE(t, sse, "users")
		if action != "update" || rec.ID() != alice.ID || rec["name"] != "Alicia" {
			t.Fatalf("bob's SSE: got %s %v, want alice's update", action, rec)
		}
		noEmail(t, "SSE users event", rec, alice.Email)
	})
}
