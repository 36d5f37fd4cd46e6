package session

import (
	"slices"
	"strings"

	"pocketchat/internal/chat"
)

// roomSet is the rooms a session can see, sorted by id. A sorted slice
// rather than a map: a session lives as long as its connection, most see
// a handful of rooms, and a map costs a few hundred bytes even for two
// entries where the slice costs eight bytes a room. Lookups are a binary
// search; changes (room events) are rare.
type roomSet []*chat.Room

func (s roomSet) find(id string) (int, bool) {
	return slices.BinarySearchFunc(s, id, func(r *chat.Room, id string) int { return strings.Compare(r.ID, id) })
}

// get returns the room with id, or nil.
func (s roomSet) get(id string) *chat.Room {
	if i, ok := s.find(id); ok {
		return s[i]
	}
	return nil
}

// put adds r or replaces the room with its id.
func (s *roomSet) put(r *chat.Room) {
	i, ok := s.find(r.ID)
	if ok {
		(*s)[i] = r
		return
	}
	*s = slices.Insert(*s, i, r)
}

// putAll adds the rooms it does not have yet, with one sort at the end
// (a user may see many public rooms).
func (s *roomSet) putAll(rooms []*chat.Room) {
	n := len(*s)
	for _, r := range rooms {
		if _, ok := (*s)[:n].find(r.ID); !ok {
			*s = append(*s, r)
		}
	}
	slices.SortStableFunc(*s, func(a, b *chat.Room) int { return strings.Compare(a.ID, b.ID) })
	*s = slices.CompactFunc(*s, func(a, b *chat.Room) bool { return a.ID == b.ID })
}

// remove drops the room with id, if present.
func (s *roomSet) remove(id string) {
	if i, ok := s.find(id); ok {
		*s = slices.Delete(*s, i, i+1)
	}
}
