package e2e

import (
	"slices"
	"testing"
	"time"
)

// countWait bounds the wait for a summary room's count update, which the
// server sends at most every 5 s: generous, for a loaded machine.
const countWait = 30 * time.Second

// num returns a number field (JSON numbers decode as float64), -1 if absent.
func (f Frame) num(key string) int {
	v, ok := f[key].(float64)
	if !ok {
		return -1
	}
	return int(v)
}

// userIDs lists the ids of a users array field.
func (f Frame) userIDs(key string) []string {
	var out []string
	for _, u := range f.List(key) {
		out = append(out, u.Str("id"))
	}
	return out
}

// TestPresenceLimit: with CHAT_PRESENCE_LIMIT=3, the first three users
// of a room are announced one by one; the fourth turns the room into a
// summary (one online event with the count), the fifth is not announced
// and the count follows later; when the room falls back to the resume
// mark (2) it gets the whole list and per-user presence again.
func TestPresenceLimit(t *testing.T) {
	srv := StartServer(t, WithEnv("CHAT_PRESENCE_LIMIT=3"))
	room := srv.CreateRoom("Big room", "public").ID()
	names := []string{"Ann", "Bob", "Cy", "Dan", "Eve"}
	users := make([]*User, len(names))
	clients := make([]*Client, len(names))
	for i, name := range names {
		users[i] = srv.NewUser(name)
		clients[i] = srv.Dial(users[i])
	}
	presence := func(u *User, status string) func(Frame) bool {
		return func(f Frame) bool {
			return f.Type() == "presence" && f.Str("room") == room && f.Obj("user").Str("id") == u.ID && f.Str("status") == status
		}
	}
	anyPresence := func(f Frame) bool { return f.Type() == "presence" && f.Str("room") == room }
	online := func(f Frame) bool { return f.Type() == "online" && f.Str("room") == room }
	ids := func(n int) []string {
		out := make([]string, n)
		for i := range n {
			out[i] = users[i].ID
		}
		return out
	}
	wantJoined := func(f Frame, count int, summary bool, listed []string) {
		t.Helper()
		if f.Type() != "joined" || f.num("online_count") != count || f["summary"] != summary || !slices.Equal(f.userIDs("online"), listed) {
			t.Fatalf("joined = online %v, online_count %v, summary %v; want %v, %d, %v",
				f.userIDs("online"), f["online_count"], f["summary"], listed, count, summary)
		}
	}

	// Up to the limit: as without one.
	for i := range 3 {
		wantJoined(clients[i].Join(room), i+1, false, ids(i+1))
		for _, c := range clients[:i] {
			c.WaitFor(names[i]+" online", presence(users[i], "online"))
		}
	}

	// Dan makes four: the others get the summary, Dan the first three.
	wantJoined(clients[3].Join(room), 4, true, ids(3))
	for i, c := range clients[:3] {
		f := c.WaitFor("online summary", online)
		if f.num("online_count") != 4 || f["summary"] != true || f["online"] != nil {
			t.Errorf("%s got %v, want online_count 4, summary, no list", names[i], f)
		}
	}

	// Eve is not announced; her join reaches the others as a count.
	wantJoined(clients[4].Join(room), 5, true, ids(3))
	for i, c := range clients[:4] {
		c.ExpectNone("presence in a summary room", anyPresence)
		f, ok := c.take(online, countWait)
		if !ok {
			t.Fatalf("%s got no count update; queued: %v", names[i], c.Pending())
		}
		if f.num("online_count") != 5 || f["summary"] != true {
			t.Errorf("%s got %v, want online_count 5, summary", names[i], f)
		}
	}

	// Eve and Dan leave: 3 online, the limit, but above the resume mark.
	for _, c := range clients[3:] {
		c.MustRequest("leave", map[string]any{"room": room})
	}
	clients[0].ExpectNone("presence in a summary room", anyPresence)
	// Cy leaves: 2, the resume mark. The list, then per-user presence.
	clients[2].Close()
	for i, c := range clients[:2] {
		f := c.WaitFor("the end of the summary", func(f Frame) bool { return online(f) && f["summary"] == false })
		if f.num("online_count") != 2 || !slices.Equal(f.userIDs("online"), ids(2)) {
			t.Errorf("%s got %v, want online_count 2 and the list of Ann and Bob", names[i], f)
		}
	}
	clients[1].MustRequest("leave", map[string]any{"room": room})
	clients[0].WaitFor("Bob offline", presence(users[1], "offline"))
	clients[3].Join(room)
	clients[0].WaitFor("Dan online", presence(users[3], "online"))

	// Nobody ever hears of their own presence.
	for i, c := range clients[:2] {
		for _, f := range c.Pending() {
			if anyPresence(f) && f.Obj("user").Str("id") == users[i].ID {
				t.Errorf("%s got presence about herself: %v", names[i], f)
			}
		}
	}
}
