package e2e

import (
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// storm is a send storm from several clients into one room: each sends
// pipelined-free (one send, its reply, the next) until its connection
// fails, and notes every message it acks and every message event of the
// room it receives, in order.
type storm struct {
	clients []*Client
	users   []*User
	acked   [][]string // per client, the ids acked to it
	seen    [][]string // per client, the ids of message events, in order
	errs    [][]string // per client, error codes replied
	total   atomic.Int64
	wg      sync.WaitGroup
}

func startStorm(t *testing.T, srv *Server, room string, n int) *storm {
	t.Helper()
	st := &storm{acked: make([][]string, n), seen: make([][]string, n), errs: make([][]string, n)}
	for i := range n {
		u := srv.NewUser(fmt.Sprintf("Stormer %d", i))
		c := srv.Dial(u)
		c.Join(room)
		st.users, st.clients = append(st.users, u), append(st.clients, c)
	}
	var started sync.WaitGroup
	for i, c := range st.clients {
		started.Add(1)
		st.wg.Add(1)
		go func() {
			defer st.wg.Done()
			once := sync.OnceFunc(started.Done)
			defer once()
			for j := 0; ; j++ {
				f, err := tryRequest(c, "send", map[string]any{"room": room, "text": fmt.Sprintf("storm %d-%d", i, j)})
				if err != nil {
					return // the server went away
				}
				if f.Type() != "ack" {
					st.errs[i] = append(st.errs[i], f.Str("code"))
					continue
				}
				st.acked[i] = append(st.acked[i], f.Obj("message").Str("id"))
				st.total.Add(1)
				once()
			}
		}()
	}
	started.Wait()
	return st
}

// finish waits for every sender to stop, then collects the message
// events each client received before its connection ended.
func (st *storm) finish(room string) {
	st.wg.Wait()
	for i, c := range st.clients {
		for _, f := range c.Pending() {
			if f.Type() == "message" && f.Str("room") == room {
				st.seen[i] = append(st.seen[i], f.Obj("message").Str("id"))
			}
		}
	}
}

// storedIDs lists the room's stored message ids in seq order, and checks
// that seqs strictly increase.
func storedIDs(t *testing.T, srv *Server, room string) []string {
	t.Helper()
	var ids []string
	var last float64
	const perPage = 500
	for page := 1; ; page++ {
		var list struct{ Items []Record }
		srv.MustDo("GET", fmt.Sprintf("/api/collections/messages/records?filter=(room='%s')&sort=seq&perPage=%d&page=%d&skipTotal=1", room, perPage, page), srv.SuperToken(), nil, &list)
		for _, r := range list.Items {
			seq, _ := r["seq"].(float64)
			if seq <= last {
				t.Errorf("stored seq %v after %v", seq, last)
			}
			last = seq
			ids = append(ids, r.ID())
		}
		if len(list.Items) < perPage {
			return ids
		}
	}
}

// checkAfterRestart: every acked message is stored exactly once, and each
// client that reconnects and resumes from the last message it saw ends
// with the stored history, in order, without gaps or repeats.
func checkAfterRestart(t *testing.T, srv *Server, st *storm, room string) {
	t.Helper()
	stored := storedIDs(t, srv, room)
	count := make(map[string]int, len(stored))
	for _, id := range stored {
		count[id]++
	}
	var acked int
	for i := range st.clients {
		for _, id := range st.acked[i] {
			acked++
			if count[id] != 1 {
				t.Errorf("client %d: acked message %s is stored %d times", i, id, count[id])
			}
		}
		if len(st.errs[i]) > 0 {
			t.Errorf("client %d: error replies during the storm: %v", i, st.errs[i])
		}
	}
	if acked == 0 {
		t.Fatal("nothing was acked before the server went down")
	}
	t.Logf("acked %d, stored %d (committed but not acked: %d)", acked, len(stored), len(stored)-acked)

	for i, u := range st.users {
		c := srv.Dial(u)
		c.Join(room)
		got := slices.Clone(st.seen[i])
		if len(got) == 0 {
			t.Fatalf("client %d received no message before the server went down", i)
		}
		for after := got[len(got)-1]; ; {
			h := c.MustRequest("resume", map[string]any{"room": room, "after": after, "limit": 100})
			msgs := h.List("messages")
			for _, m := range msgs {
				got = append(got, m.Str("id"))
			}
			if len(msgs) == 0 || h["more"] != true {
				break
			}
			after = msgs[len(msgs)-1].Str("id")
		}
		if d := firstDiff(got, stored); d != "" {
			t.Errorf("client %d: its history after resume differs from the stored one: %s", i, d)
		}
		c.Close()
	}
}

// SIGKILL in the middle of a send storm: after a restart every acked
// message is stored once, and clients that resume see the same history.
func TestCrashLosesNothingAcked(t *testing.T) {
	srv := StartServer(t, WithEnv("CHAT_SEND_RATE=0")) // sends faster than the per-user limit on purpose
	room := srv.CreateRoom("storm", "public").ID()
	st := startStorm(t, srv, room, 4)
	time.Sleep(300 * time.Millisecond) // the length of the storm, not a wait for something
	t.Logf("SIGKILL with %d acks", st.total.Load())
	srv.Kill()
	st.finish(room)

	srv2 := StartServer(t, WithDir(srv.Dir), WithEnv("CHAT_SEND_RATE=0"))
	checkAfterRestart(t, srv2, st, room)
}

// SIGTERM in the middle of a send storm: the same, after a graceful stop.
func TestGracefulRestartLosesNothingAcked(t *testing.T) {
	srv := StartServer(t, WithEnv("CHAT_SEND_RATE=0"))
	room := srv.CreateRoom("storm", "public").ID()
	st := startStorm(t, srv, room, 4)
	time.Sleep(300 * time.Millisecond)
	srv.Restart()
	st.finish(room)
	checkAfterRestart(t, srv, st, room)
}
