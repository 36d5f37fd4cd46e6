package session

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"pocketchat/internal/chat"
)

// roomSet must behave as the map it replaces, through any sequence of
// puts and removes.
func TestRoomSetAgainstMap(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var set roomSet
	want := map[string]*chat.Room{}
	for step := range 5000 {
		id := fmt.Sprintf("r%03d", rng.IntN(200))
		switch rng.IntN(4) {
		case 0, 1:
			r := &chat.Room{ID: id, Name: fmt.Sprint(step)}
			set.put(r)
			want[id] = r
		case 2:
			set.remove(id)
			delete(want, id)
		case 3: // a batch, in no order, with repeats: what is there stays
			var batch []*chat.Room
			for range rng.IntN(6) {
				r := &chat.Room{ID: fmt.Sprintf("r%03d", rng.IntN(200)), Name: fmt.Sprint(step)}
				batch = append(batch, r)
				if want[r.ID] == nil {
					want[r.ID] = r
				}
			}
			set.putAll(batch)
		}
		if len(set) != len(want) {
			t.Fatalf("step %d: %d rooms, want %d", step, len(set), len(want))
		}
		probe := fmt.Sprintf("r%03d", rng.IntN(200))
		if got := set.get(probe); got != want[probe] {
			t.Fatalf("step %d: get(%s) = %v, want %v", step, probe, got, want[probe])
		}
	}
	for i := 1; i < len(set); i++ {
		if set[i-1].ID >= set[i].ID {
			t.Fatalf("not sorted at %d: %s, %s", i, set[i-1].ID, set[i].ID)
		}
	}
	for id, r := range want {
		if set.get(id) != r {
			t.Errorf("get(%s) lost the last put", id)
		}
	}
}
