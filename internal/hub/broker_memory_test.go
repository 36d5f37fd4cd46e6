package hub_test

import (
	"context"
	"slices"
	"sync"
	"sync/atomic"
	"testing"

	"pocketchat/internal/chat"
	"pocketchat/internal/hub"
)

// recorder collects the envelopes a broker subscription receives.
type recorder struct {
	mu   sync.Mutex
	envs []hub.Envelope
}

func (r *recorder) fn(env hub.Envelope) {
	r.mu.Lock()
	r.envs = append(r.envs, env)
	r.mu.Unlock()
}

func (r *recorder) take() []hub.Envelope {
	r.mu.Lock()
	defer r.mu.Unlock()
	envs := r.envs
	r.envs = nil
	return envs
}

func envelope(text string) hub.Envelope {
	return hub.Envelope{To: hub.ToRoom("room"), SkipUser: "u", Event: msg("room", text)}
}

func wantEnvs(t *testing.T, name string, got []hub.Envelope, want ...hub.Envelope) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s got %d envelopes, want %d", name, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Event != w.Event || g.SkipUser != w.SkipUser || g.To.Kind != w.To.Kind || g.To.Room != w.To.Room || !slices.Equal(g.To.Users, w.To.Users) {
			t.Errorf("%s envelope %d = %+v, want %+v", name, i, g, w)
		}
	}
}

func TestMemoryBrokerPublishReachesEverySubscriber(t *testing.T) {
	b := hub.NewMemoryBroker()
	ctx := context.Background()
	if err := b.Publish(ctx, envelope("nobody listens")); err != nil {
		t.Fatalf("Publish without subscribers: %v", err)
	}

	var r1, r2, r3 recorder
	un1 := b.Subscribe(r1.fn)
	un2 := b.Subscribe(r2.fn)
	un3 := b.Subscribe(r3.fn)
	defer un3()

	e1 := envelope("one")
	e2 := hub.Envelope{To: hub.ToUsers("a", "b"), Event: msg("dm", "two")}
	e3 := hub.Envelope{To: hub.ToAll(), Event: msg("", "three")}
	for _, e := range []hub.Envelope{e1, e2, e3} {
		if err := b.Publish(ctx, e); err != nil {
			t.Fatalf("Publish: %v", err)
		}
	}
	// Delivery is synchronous: everything is there once Publish returns,
	// in publish order.
	wantEnvs(t, "r1", r1.take(), e1, e2, e3)
	wantEnvs(t, "r2", r2.take(), e1, e2, e3)
	wantEnvs(t, "r3", r3.take(), e1, e2, e3)

	un2()
	e4 := envelope("four")
	if err := b.Publish(ctx, e4); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	wantEnvs(t, "r1", r1.take(), e4)
	wantEnvs(t, "r2 (unsubscribed)", r2.take())
	wantEnvs(t, "r3", r3.take(), e4)

	un2() // unsubscribing twice is harmless
	un1()
	e5 := envelope("five")
	if err := b.Publish(ctx, e5); err != nil {
		t.Fatalf("Publish: %v", err)
	}
	wantEnvs(t, "r1 (unsubscribed)", r1.take())
	wantEnvs(t, "r2 (unsubscribed)", r2.take())
	wantEnvs(t, "r3", r3.take(), e5)
}

// The same function subscribed twice is two subscriptions, each with its
// own unsubscribe.
func TestMemoryBrokerSameFuncTwice(t *testing.T) {
	b := hub.NewMemoryBroker()
	var r recorder
	un1 := b.Subscribe(r.fn)
	un2 := b.Subscribe(r.fn)
	e := envelope("x")
	_ = b.Publish(context.Background(), e)
	wantEnvs(t, "both", r.take(), e, e)
	un1()
	_ = b.Publish(context.Background(), e)
	wantEnvs(t, "one left", r.take(), e)
	un2()
	_ = b.Publish(context.Background(), e)
	wantEnvs(t, "none left", r.take())
}

// A subscriber may subscribe and unsubscribe from inside its callback; the
// publication in progress goes to the subscribers there were when it began.
func TestMemoryBrokerSubscribeFromCallback(t *testing.T) {
	b := hub.NewMemoryBroker()
	var late recorder
	var unLate func()
	var unSelf func()
	calls := 0
	unSelf = b.Subscribe(func(hub.Envelope) {
		calls++
		unSelf()
		unLate = b.Subscribe(late.fn)
	})
	within(t, "Publish", func() { _ = b.Publish(context.Background(), envelope("first")) })
	if calls != 1 {
		t.Fatalf("callback ran %d times, want 1", calls)
	}
	wantEnvs(t, "late subscriber, first publication", late.take())

	e := envelope("second")
	_ = b.Publish(context.Background(), e)
	if calls != 1 {
		t.Errorf("unsubscribed callback ran again: %d calls", calls)
	}
	wantEnvs(t, "late subscriber, second publication", late.take(), e)
	unLate()
}

// A subscriber may publish from inside its callback (a hub's Deliver
// leaving a room announces presence): the nested publication is delivered
// before the outer Publish returns.
func TestMemoryBrokerPublishFromCallback(t *testing.T) {
	b := hub.NewMemoryBroker()
	var r recorder
	outer, inner := envelope("outer"), envelope("inner")
	b.Subscribe(func(env hub.Envelope) {
		r.fn(env)
		if env.Event == outer.Event {
			_ = b.Publish(context.Background(), inner)
		}
	})
	within(t, "Publish", func() { _ = b.Publish(context.Background(), outer) })
	wantEnvs(t, "subscriber", r.take(), outer, inner)
}

// Publish, Subscribe and unsubscribe from many goroutines at once (run with
// -race): a subscription that stays receives every envelope, one that is
// gone receives nothing published after it went.
func TestMemoryBrokerConcurrent(t *testing.T) {
	const publishers, perPub, churners = 4, 200, 4
	b := hub.NewMemoryBroker()
	var steady atomic.Int64
	unSteady := b.Subscribe(func(hub.Envelope) { steady.Add(1) })
	defer unSteady()

	ev := msg("room", "x")
	var wg sync.WaitGroup
	for range publishers {
		wg.Go(func() {
			for range perPub {
				if err := b.Publish(context.Background(), hub.Envelope{To: hub.ToRoom("room"), Event: ev}); err != nil {
					t.Errorf("Publish: %v", err)
					return
				}
			}
		})
	}
	var gone [churners]atomic.Int64
	for i := range churners {
		wg.Go(func() {
			for range 100 {
				un := b.Subscribe(func(hub.Envelope) {})
				un()
			}
			un := b.Subscribe(func(hub.Envelope) { gone[i].Add(1) })
			un()
		})
	}
	wg.Wait()

	if got, want := steady.Load(), int64(publishers*perPub); got != want {
		t.Errorf("steady subscriber got %d envelopes, want %d", got, want)
	}
	before := make([]int64, churners)
	for i := range gone {
		before[i] = gone[i].Load()
	}
	_ = b.Publish(context.Background(), hub.Envelope{To: hub.ToAll(), Event: chat.MustEvent(chat.EventPong, chat.PongPayload{})})
	for i := range gone {
		if got := gone[i].Load(); got != before[i] {
			t.Errorf("subscriber %d got an envelope after unsubscribing", i)
		}
	}
}
