package hub_test

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"

	"pocketchat/internal/chat"
	"pocketchat/internal/hub"
)

// counterSub counts deliveries with an atomic increment.
type counterSub struct {
	id  uint64
	uid string
	n   *atomic.Int64
}

func (s *counterSub) ConnID() uint64         { return s.id }
func (s *counterSub) UserID() string         { return s.uid }
func (s *counterSub) Deliver(ev *chat.Event) { s.n.Add(1) }

// chanSub queues deliveries on a buffered channel without blocking,
// dropping when it is full, as a connection's send queue does.
type chanSub struct {
	id  uint64
	uid string
	ch  chan *chat.Event
}

func (s *chanSub) ConnID() uint64 { return s.id }
func (s *chanSub) UserID() string { return s.uid }
func (s *chanSub) Deliver(ev *chat.Event) {
	select {
	case s.ch <- ev:
	default:
	}
}

// drain empties the queue, as the connection's writer would.
func (s *chanSub) drain() {
	for {
		select {
		case <-s.ch:
		default:
			return
		}
	}
}

func reportDeliveries(b *testing.B, deliveries int64) {
	if s := b.Elapsed().Seconds(); s > 0 {
		b.ReportMetric(float64(deliveries)/s, "deliveries/s")
	}
}

// BenchmarkFanoutRoom publishes one event per op to a room of n
// subscribers. The event is built once: what is measured is the hub (and
// the memory broker), which should allocate nothing per delivery.
func BenchmarkFanoutRoom(b *testing.B) {
	for _, n := range []int{10, 1000, 5000} {
		b.Run(fmt.Sprintf("subs=%d/counter", n), func(b *testing.B) {
			h := hub.New(hub.NewMemoryBroker(), hub.Config{})
			defer h.Close()
			var count atomic.Int64
			for i := range n {
				s := &counterSub{id: uint64(i + 1), uid: fmt.Sprintf("u%d", i), n: &count}
				h.Register(s)
				h.Join("room", s, chat.User{ID: s.uid, Name: s.uid})
			}
			env := hub.Envelope{To: hub.ToRoom("room"), SkipUser: "nobody", Event: msg("room", "hello")}
			ctx := context.Background()
			count.Store(0)
			b.ReportAllocs()
			b.ResetTimer()
			for b.Loop() {
				_ = h.Publish(ctx, env)
			}
			b.StopTimer()
			if got, want := count.Load(), int64(n)*int64(b.N); got != want {
				b.Fatalf("%d deliveries, want %d", got, want)
			}
			reportDeliveries(b, count.Load())
		})
		b.Run(fmt.Sprintf("subs=%d/chan", n), func(b *testing.B) {
			h := hub.New(hub.NewMemoryBroker(), hub.Config{})
			defer h.Close()
			subs := make([]*chanSub, n)
			for i := range subs {
				s := &chanSub{id: uint64(i + 1), uid: fmt.Sprintf("u%d", i), ch: make(chan *chat.Event, 64)}
				subs[i] = s
				h.Register(s)
				h.Join("room", s, chat.User{ID: s.uid, Name: s.uid})
			}
			for _, s := range subs {
				s.drain()
			}
			env := hub.Envelope{To: hub.ToRoom("room"), Event: msg("room", "hello")}
			ctx := context.Background()
			b.ReportAllocs()
			b.ResetTimer()
			ops := 0
			for b.Loop() {
				_ = h.Publish(ctx, env)
				// Keep the queues from filling up, so sends succeed
				// rather than take the cheaper drop path; draining is
				// counted in the time, so this is a bound from above.
				if ops++; ops%32 == 0 {
					for _, s := range subs {
						s.drain()
					}
				}
			}
			b.StopTimer()
			reportDeliveries(b, int64(n)*int64(b.N))
		})
	}
}

// BenchmarkJoinLeave joins and leaves a room of n other signed-in
// subscribers, with the default presence limit. For a signed-in user in
// the room of 100 each op announces online then offline: two presence
// events built and delivered to the 100; the room of 5000 is a summary,
// where joins are not announced. A guest is not announced. Join also
// returns the room's first online users.
func BenchmarkJoinLeave(b *testing.B) {
	for _, n := range []int{100, 5000} {
		for _, kind := range []string{"user", "guest"} {
			b.Run(fmt.Sprintf("room=%d/%s", n, kind), func(b *testing.B) {
				h := hub.New(hub.NewMemoryBroker(), hub.Config{})
				defer h.Close()
				var count atomic.Int64
				for i := range n {
					s := &counterSub{id: uint64(i + 1), uid: fmt.Sprintf("u%d", i), n: &count}
					h.Register(s)
					h.Join("room", s, chat.User{ID: s.uid, Name: s.uid})
				}
				me := &counterSub{id: uint64(n + 1), n: &count}
				u := chat.User{}
				if kind == "user" {
					me.uid = "me"
					u = chat.User{ID: "me", Name: "Me"}
				}
				h.Register(me)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					h.Join("room", me, u)
					h.Leave("room", me)
				}
			})
		}
	}
}

// BenchmarkPublishParallel publishes from GOMAXPROCS goroutines to 1000
// rooms of 10 subscribers each, every goroutine cycling through the rooms.
func BenchmarkPublishParallel(b *testing.B) {
	const rooms, per = 1000, 10
	h := hub.New(hub.NewMemoryBroker(), hub.Config{})
	defer h.Close()
	var count atomic.Int64
	envs := make([]hub.Envelope, rooms)
	id := uint64(0)
	for r := range rooms {
		room := fmt.Sprintf("room%d", r)
		for i := range per {
			id++
			s := &counterSub{id: id, uid: fmt.Sprintf("u%d", (r*per+i)%3000), n: &count}
			h.Register(s)
			h.Join(room, s, chat.User{ID: s.uid, Name: s.uid})
		}
		envs[r] = hub.Envelope{To: hub.ToRoom(room), Event: msg(room, "hello")}
	}
	ctx := context.Background()
	var start atomic.Int64
	count.Store(0)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(start.Add(7919)) // spread the goroutines' starting rooms
		for pb.Next() {
			_ = h.Publish(ctx, envs[i%rooms])
			i++
		}
	})
	b.StopTimer()
	if got, want := count.Load(), int64(per)*int64(b.N); got != want {
		b.Fatalf("%d deliveries, want %d", got, want)
	}
	reportDeliveries(b, count.Load())
}

// BenchmarkJoinBigRoom joins and leaves a room of 5000 other signed-in
// users, with the default presence limit (a summary room: no presence
// events, a roster of 500) and with a limit above the room's size
// (presence per user, as without a limit: two events to the 5000 per op,
// and a roster of all 5000). The user named first by name changes the
// roster, which is copied again on every join: the worst case; the user
// named last, like most users of a big room, does not.
func BenchmarkJoinBigRoom(b *testing.B) {
	const n = 5000
	for _, limit := range []int{hub.DefaultPresenceLimit, n + 1} {
		for _, kind := range []string{"user-first", "user-last", "guest"} {
			b.Run(fmt.Sprintf("room=%d/limit=%d/%s", n, limit, kind), func(b *testing.B) {
				h := hub.New(hub.NewMemoryBroker(), hub.Config{PresenceLimit: limit})
				defer h.Close()
				var count atomic.Int64
				for i := range n {
					s := &counterSub{id: uint64(i + 1), uid: fmt.Sprintf("u%04d", i), n: &count}
					h.Register(s)
					h.Join("room", s, chat.User{ID: s.uid, Name: s.uid})
				}
				me := &counterSub{id: n + 1, n: &count}
				u := chat.User{}
				switch kind {
				case "user-first":
					me.uid, u = "me", chat.User{ID: "me", Name: "Me"}
				case "user-last":
					me.uid, u = "me", chat.User{ID: "me", Name: "zz"}
				}
				h.Register(me)
				count.Store(0)
				b.ReportAllocs()
				b.ResetTimer()
				for b.Loop() {
					h.Join("room", me, u)
					h.Leave("room", me)
				}
				b.StopTimer()
				b.ReportMetric(float64(count.Load())/float64(b.N), "deliveries/op")
			})
		}
	}
}

// BenchmarkFillRoom has 5000 users join an empty room, in no order of
// names; one op is the whole fill. Without a limit this is O(N²): every
// join announced to everyone there, every roster the whole room.
func BenchmarkFillRoom(b *testing.B) {
	const n = 5000
	subs := make([]*counterSub, n)
	users := make([]chat.User, n)
	var count atomic.Int64
	for i := range subs {
		uid := fmt.Sprintf("u%04d", (i*7919)%n)
		subs[i] = &counterSub{id: uint64(i + 1), uid: uid, n: &count}
		users[i] = chat.User{ID: uid, Name: "name-" + uid}
	}
	for _, limit := range []int{hub.DefaultPresenceLimit, n + 1} {
		b.Run(fmt.Sprintf("users=%d/limit=%d", n, limit), func(b *testing.B) {
			count.Store(0)
			b.ReportAllocs()
			for b.Loop() {
				h := hub.New(hub.NewMemoryBroker(), hub.Config{PresenceLimit: limit})
				for i, s := range subs {
					h.Register(s)
					h.Join("room", s, users[i])
				}
				h.Close()
			}
			b.ReportMetric(float64(count.Load())/float64(b.N), "deliveries/op")
		})
	}
}
