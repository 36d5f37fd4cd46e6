//go:build unix

package cluster_test

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"pocketchat/internal/chat"
	"pocketchat/internal/cluster"
	"pocketchat/internal/hub"
	"pocketchat/internal/redistest"
)

// countSub counts deliveries, as cheaply as a subscriber can.
type countSub struct {
	id  uint64
	uid string
	n   *atomic.Int64
}

func (s *countSub) ConnID() uint64      { return s.id }
func (s *countSub) UserID() string      { return s.uid }
func (s *countSub) Deliver(*chat.Event) { s.n.Add(1) }

// BenchmarkBrokerHear is what a node spends on one room event that comes
// in from Redis: reading it off the subscription, decoding it and handing
// it to its hub, which delivers it to the room's subscribers on this node.
//
// members=0 is a room nobody on this node has joined (the node holds ten
// connections in another room). All events share one channel, so every
// edge pays this for every message of the cluster, whichever rooms its
// clients are in: the docs' scaling estimate reads it from here.
// members=10 adds handing the event to ten local subscribers (a counter
// each: writing to sockets is measured by the load runs).
//
// The events are published over a plain connection from pre-encoded
// bytes, so that the process's CPU time (cpu-ns/op) is the subscriber's,
// plus a few hundred nanoseconds of writing the commands and discarding
// Redis' replies. ns/op is wall time with redis-server on another core.
func BenchmarkBrokerHear(b *testing.B) {
	srv := redistest.Start(b)
	for _, members := range []int{0, 10} {
		b.Run(fmt.Sprintf("members=%d", members), func(b *testing.B) {
			prefix := fmt.Sprintf("hear%d:", members)
			n := startNode(b, srv.URL, prefix, cluster.Config{})
			var delivered atomic.Int64
			join := func(room string, count int) {
				for i := range count {
					u := chat.User{ID: fmt.Sprintf("%s-u%d", room, i), Name: "member"}
					sub := &countSub{id: connIDs.Add(1), uid: u.ID, n: &delivered}
					n.hub.Register(sub)
					n.hub.Join(room, sub, u)
				}
			}
			join("other", 10)
			join("busy", members)
			var heard atomic.Int64
			defer n.Broker.Subscribe(func(env hub.Envelope) {
				if env.Event.Type == chat.EventMessage {
					heard.Add(1)
				}
			})()

			payload, err := cluster.EncodeEnvelope(benchMessage("busy"))
			if err != nil {
				b.Fatal(err)
			}
			pub := dialPublisher(b, srv.Addr)
			cmd := respCommand("PUBLISH", prefix+"events", string(payload))

			// At most window events between Redis and the node, well
			// under Redis' output limit for a subscriber (32 MB).
			const batch, window = 256, 20_000
			buf := []byte(strings.Repeat(cmd, batch))
			wait := func(until int64) {
				deadline := time.Now().Add(30 * time.Second)
				for heard.Load() < until {
					if time.Now().After(deadline) {
						b.Fatalf("heard %d of %d events within 30 s", heard.Load(), until)
					}
					time.Sleep(50 * time.Microsecond)
				}
			}
			delivered.Store(0)
			b.ResetTimer()
			cpu0 := processCPU(b)
			for sent := 0; sent < b.N; {
				k := min(batch, b.N-sent)
				if _, err := pub.Write(buf[:k*len(cmd)]); err != nil {
					b.Fatal(err)
				}
				sent += k
				wait(int64(sent - window))
			}
			wait(int64(b.N))
			cpu := processCPU(b) - cpu0
			b.StopTimer()
			if want := int64(b.N * members); delivered.Load() != want {
				b.Fatalf("delivered %d, want %d", delivered.Load(), want)
			}
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/op")
		})
	}
}

// benchMessage is a room's message event as the primary publishes it.
func benchMessage(room string) hub.Envelope {
	now := time.Now().UTC()
	m := chat.Message{
		ID: "k3x9q2w7e5r1t8y", Room: room, Seq: 123456,
		Author: chat.User{ID: "a8s7d6f5g4h3j2k", Name: "Ann Example", Avatar: "/api/files/users/a8s7d6f5g4h3j2k/avatar_9f8e7d.png"},
		Text:   "Are we still meeting at ten tomorrow, or should we move it to the afternoon?",
		Kind:   chat.KindUser, Created: now, Updated: now,
	}
	ev := chat.MustEvent(chat.EventMessage, chat.MessagePayload{Room: room, Message: m})
	ev.Room, ev.Actor = room, m.Author.ID
	return hub.Envelope{To: hub.ToRoom(room), Event: ev}
}

// dialPublisher is a plain connection to Redis whose replies are read
// and thrown away by a goroutine.
func dialPublisher(tb testing.TB, addr string) net.Conn {
	c, err := net.Dial("tcp", addr)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { c.Close() })
	go io.Copy(io.Discard, bufio.NewReader(c))
	return c
}

// respCommand is one command in Redis' wire protocol.
func respCommand(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}

// processCPU is the user and system CPU time of this process so far.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
