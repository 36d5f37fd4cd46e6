package e2e

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

func TestShutdownClosesEveryConnection(t *testing.T) {
	srv := StartServer(t)
	general := srv.General()
	alice, bob := srv.NewUser("Alice"), srv.NewUser("Bob")
	clients := map[string]*Client{
		"alice (joined)": srv.Dial(alice),
		"guest (joined)": srv.Dial(nil),
		"bob (idle)":     srv.DialTicket(bob),
	}
	clients["alice (joined)"].Join(general)
	clients["guest (joined)"].Join(general)

	took := srv.Stop()
	t.Logf("pocketchat exited %v after SIGTERM", took.Round(time.Millisecond))
	for name, c := range clients {
		err := c.WaitClosed()
		if got := closeCode(err); got != websocket.CloseGoingAway {
			t.Errorf("%s: closed with %v, want close code %d", name, err, websocket.CloseGoingAway)
		}
	}
	// Connections closing promptly means shutdown never waits out
	// CHAT_SHUTDOWN_WAIT (5s).
	if took > 4*time.Second {
		t.Errorf("exit took %v after SIGTERM, want under 4s", took)
	}
	if out := srv.Output(); strings.Contains(out, "shutdown timed out") {
		t.Errorf("shutdown timed out:\n%s", out)
	}
}

func TestShutdownLosesNothingAcked(t *testing.T) {
	srv := StartServer(t, WithEnv("CHAT_SEND_RATE=0")) // sends faster than the per-user limit on purpose
	dir := srv.Dir
	general := srv.General()

	const senders = 4
	conns := make([]*Client, senders)
	for i := range conns {
		conns[i] = srv.Dial(srv.NewUser(fmt.Sprintf("Sender %d", i)))
	}

	var (
		total     atomic.Int64
		perSender [senders]atomic.Int64 // acks per sender
		wg        sync.WaitGroup
		acked     = make([][]string, senders)
		stopped   = make([]error, senders) // why each sender stopped
		errs      = make([][]string, senders)
	)
	start := time.Now()
	for i, c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; ; j++ {
				f, err := tryRequest(c, "send", map[string]any{"room": general, "text": fmt.Sprintf("storm %d-%d", i, j)})
				if err != nil {
					stopped[i] = err
					return
				}
				if f.Type() != "ack" {
					// An error reply means not stored; note it and go on
					// until the connection closes.
					errs[i] = append(errs[i], f.Str("code"))
					continue
				}
				acked[i] = append(acked[i], f.Obj("message").Str("id"))
				perSender[i].Add(1)
				total.Add(1)
			}
		}()
	}

	// Once every sender has had an ack the storm is on; ~300ms into it,
	// stop the server.
	deadline := time.Now().Add(waitTime)
	allStarted := func() bool {
		for i := range perSender {
			if perSender[i].Load() == 0 {
				return false
			}
		}
		return true
	}
	for !allStarted() && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	storm := time.Now()
	time.Sleep(300 * time.Millisecond) // the length of the storm, not a wait for something
	atStop := total.Load()
	took := srv.Stop()
	wg.Wait()
	t.Logf("first acks after %v; SIGTERM %v later with %d acks; exited in %v",
		storm.Sub(start).Round(time.Millisecond), 300*time.Millisecond, atStop, took.Round(time.Millisecond))

	ackedIDs := make(map[string]bool)
	for i, c := range conns {
		if got := closeCode(c.CloseErr()); got != websocket.CloseGoingAway {
			t.Errorf("sender %d: connection ended with %v (stopped on %v), want close code %d", i, c.CloseErr(), stopped[i], websocket.CloseGoingAway)
		}
		if len(errs[i]) > 0 {
			t.Errorf("sender %d: error replies during the storm: %v", i, errs[i])
		}
		for _, id := range acked[i] {
			ackedIDs[id] = true
		}
		t.Logf("sender %d: %d acked", i, len(acked[i]))
	}
	if len(ackedIDs) == 0 {
		t.Fatal("nothing was acked before SIGTERM")
	}

	// Same data directory, new process.
	srv2 := StartServer(t, WithDir(dir))
	stored := make(map[string]int)
	var maxSeq int64
	const perPage = 500
	for page := 1; ; page++ {
		var list struct{ Items []Record }
		srv2.MustDo("GET", fmt.Sprintf("/api/collections/messages/records?filter=(room='%s')&sort=seq&perPage=%d&page=%d&skipTotal=1", general, perPage, page), srv2.SuperToken(), nil, &list)
		for _, r := range list.Items {
			stored[r.ID()]++
			if s, _ := r["seq"].(float64); int64(s) > maxSeq {
				maxSeq = int64(s)
			}
		}
		if len(list.Items) < perPage {
			break
		}
	}
	var missing, twice int
	for id := range ackedIDs {
		switch stored[id] {
		case 0:
			missing++
			t.Errorf("acked message %s is not stored", id)
		case 1:
		default:
			twice++
			t.Errorf("acked message %s is stored %d times", id, stored[id])
		}
	}
	t.Logf("acked %d, stored %d (%d committed but not acked), missing %d, duplicated %d",
		len(ackedIDs), len(stored), len(stored)-len(ackedIDs), missing, twice)

	// The restarted server numbers new messages after the stored ones.
	c := srv2.Dial(srv2.NewUser("After"))
	if seq := seqOf(c.Send(general, "after restart")); seq <= maxSeq {
		t.Errorf("seq after restart = %d, want above the stored maximum %d", seq, maxSeq)
	}
}
