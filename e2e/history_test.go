package e2e

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
)

// sendMany posts n messages to room over c, pipelined, and returns the
// acked messages in the order sent (the order of their seq: one
// connection's requests run one at a time).
func sendMany(t testing.TB, c *Client, room, prefix string, n int) []Frame {
	t.Helper()
	reqIDs := make([]string, n)
	for i := range n {
		reqIDs[i] = fmt.Sprintf("%s-%d", prefix, i)
		b, _ := json.Marshal(map[string]any{"type": "send", "id": reqIDs[i], "room": room, "text": fmt.Sprintf("%s %d", prefix, i)})
		c.SendRaw(string(b))
	}
	acks := make([]Frame, n)
	for i, id := range reqIDs {
		f := c.WaitFor("ack "+id, func(f Frame) bool { return f.Str("id") == id })
		if f.Type() != "ack" {
			t.Fatalf("send %s: got %v, want ack", id, f)
		}
		acks[i] = f.Obj("message")
	}
	checkSeqIncreasing(t, prefix+" acks", acks)
	return acks
}

// checkUnique fails if an id appears twice.
func checkUnique(t testing.TB, what string, list []string) {
	t.Helper()
	seen := make(map[string]bool, len(list))
	for i, id := range list {
		if seen[id] {
			t.Fatalf("%s: id %s appears twice (again at #%d)", what, id, i)
		}
		seen[id] = true
	}
}

func TestHistory(t *testing.T) {
	srv := StartServer(t, WithEnv("CHAT_SEND_RATE=0")) // sends faster than the per-user limit on purpose
	general := srv.General()
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")

	var pagingRoom string
	var pagingFirst string // a message of pagingRoom

	subtest(t, srv, "Paging", func(t *testing.T) {
		const total = 230
		pagingRoom = srv.CreateRoom("Paging", "public").ID()
		acks := ids(sendMany(t, srv.Dial(alice), pagingRoom, "page", total))
		pagingFirst = acks[0]

		b := srv.Dial(bob)
		joined := b.Join(pagingRoom)
		latest := joined.List("messages")
		if got, want := ids(latest), acks[total-50:]; firstDiff(got, want) != "" || !more(joined) {
			t.Fatalf("joined: %s, more=%v; want the latest 50 oldest first, more=true", firstDiff(got, want), more(joined))
		}

		all := latest
		var sizes []int
		for f := joined; more(f); {
			f = b.MustRequest("history", map[string]any{"room": pagingRoom, "before": all[0].Str("id"), "limit": 100})
			page := f.List("messages")
			if len(page) == 0 {
				t.Fatalf("empty history page with more=%v", more(f))
			}
			checkSeqIncreasing(t, "history page", page)
			sizes = append(sizes, len(page))
			all = append(page, all...)
			if len(sizes) > 10 {
				t.Fatal("history does not end")
			}
		}
		got := ids(all)
		checkUnique(t, "history", got)
		checkSeqIncreasing(t, "history", all)
		if d := firstDiff(got, acks); d != "" {
			t.Fatalf("history pages differ from the acks: %s", d)
		}
		if want := []int{100, 80}; fmt.Sprint(sizes) != fmt.Sprint(want) {
			t.Errorf("page sizes = %v, want %v", sizes, want)
		}

		// The default page is 50, the latest first; a page of 1 works.
		f := b.MustRequest("history", map[string]any{"room": pagingRoom})
		if d := firstDiff(ids(f.List("messages")), acks[total-50:]); d != "" || !more(f) {
			t.Errorf("history without before or limit: %s, more=%v", d, more(f))
		}
		f = b.MustRequest("history", map[string]any{"room": pagingRoom, "before": acks[1], "limit": 1})
		if d := firstDiff(ids(f.List("messages")), acks[:1]); d != "" || more(f) {
			t.Errorf("history before the second message: %s, more=%v; want the first, more=false", d, more(f))
		}
		f = b.MustRequest("history", map[string]any{"room": pagingRoom, "before": acks[0]})
		if n := len(f.List("messages")); n != 0 || more(f) {
			t.Errorf("history before the first message: %d messages, more=%v; want none", n, more(f))
		}
	})

	subtest(t, srv, "Resume", func(t *testing.T) {
		const seen, missed = 30, 120
		room := srv.CreateRoom("Resume", "public").ID()
		a := srv.Dial(alice)
		a.Join(room)
		sender := srv.Dial(bob)
		first := ids(sendMany(t, sender, room, "before", seen))
		if d := firstDiff(ids(takeMessages(a, room, seen)), first); d != "" {
			t.Fatalf("live messages: %s", d)
		}
		last := first[len(first)-1]
		a.Close()
		a.WaitClosed()

		want := ids(sendMany(t, sender, room, "missed", missed))

		a = srv.Dial(alice)
		a.Join(room)
		var got []string
		var sizes []int
		after := last
		for {
			f := a.MustRequest("resume", map[string]any{"room": room, "after": after, "limit": 50})
			if f.Type() != "history" || f.Str("room") != room {
				t.Fatalf("resume: got %v, want history of %s", f, room)
			}
			page := f.List("messages")
			checkSeqIncreasing(t, "resume page", page)
			sizes = append(sizes, len(page))
			got = append(got, ids(page)...)
			if !more(f) {
				break
			}
			if len(page) == 0 || len(sizes) > 10 {
				t.Fatalf("resume does not end: pages %v", sizes)
			}
			after = page[len(page)-1].Str("id")
		}
		checkUnique(t, "resume", got)
		if d := firstDiff(got, want); d != "" {
			t.Fatalf("resumed messages differ from the missed ones: %s", d)
		}
		if fmt.Sprint(sizes) != "[50 50 20]" {
			t.Errorf("page sizes = %v, want [50 50 20]", sizes)
		}

		f := a.MustRequest("resume", map[string]any{"room": room, "after": want[len(want)-1], "limit": 50})
		if n := len(f.List("messages")); n != 0 || more(f) {
			t.Errorf("resume from the newest: %d messages, more=%v; want none, more=false", n, more(f))
		}
		// Exactly a page left: more is false.
		f = a.MustRequest("resume", map[string]any{"room": room, "after": want[len(want)-51], "limit": 50})
		if d := firstDiff(ids(f.List("messages")), want[len(want)-50:]); d != "" || more(f) {
			t.Errorf("resume of the last 50: %s, more=%v; want more=false", d, more(f))
		}
		a.ExpectNone("a live message", func(f Frame) bool { return f.Type() == "message" })
	})

	subtest(t, srv, "Errors", func(t *testing.T) {
		carol := srv.NewUser("Carol")
		private := srv.CreateRoom("Private", "private", bob.ID).ID()
		member := srv.Dial(bob)
		secret := member.Send(private, "secret").Str("id")

		check := func(c *Client, who, typ string, fields map[string]any, wantCodes ...string) {
			t.Helper()
			f := c.Request(typ, fields)
			if f.Type() != "error" || !slices.Contains(wantCodes, f.Str("code")) {
				t.Errorf("%s %s %v: got %v, want error %v", who, typ, fields, f, wantCodes)
			}
			if msgs := f.List("messages"); len(msgs) > 0 {
				t.Errorf("%s %s: leaked %d messages", who, typ, len(msgs))
			}
		}
		outsider, guest := srv.Dial(carol), srv.Dial(nil)
		for who, c := range map[string]*Client{"non-member": outsider, "guest": guest} {
			check(c, who, "history", map[string]any{"room": private}, "forbidden", "not_found")
			check(c, who, "resume", map[string]any{"room": private, "after": secret}, "forbidden", "not_found")
			check(c, who, "join", map[string]any{"room": private}, "forbidden", "not_found")
		}
		// The member reads it.
		if f := member.MustRequest("history", map[string]any{"room": private}); len(f.List("messages")) != 1 {
			t.Errorf("member's history = %v, want the one message", f["messages"])
		}

		// A cursor from another room is not found, not followed.
		if pagingFirst == "" {
			t.Fatal("the Paging subtest left no message to use as a foreign cursor")
		}
		check(outsider, "user", "history", map[string]any{"room": general, "before": pagingFirst}, "not_found")
		check(outsider, "user", "resume", map[string]any{"room": general, "after": pagingFirst}, "not_found")
		check(member, "member", "history", map[string]any{"room": general, "before": secret}, "not_found")
		check(member, "member", "resume", map[string]any{"room": pagingRoom, "after": secret}, "not_found")
	})
}
