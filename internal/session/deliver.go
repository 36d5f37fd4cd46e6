package session

import (
	"encoding/json"

	"pocketchat/internal/chat"
)

// Deliver receives an event from the hub. Room changes update the rooms
// the user can see; everything else goes to the client, except events of
// a room whose join is still loading, which wait for the joined reply.
func (s *Session) Deliver(ev *chat.Event) {
	switch ev.Type {
	case chat.EventRoom:
		s.roomChanged(ev)
		return
	case chat.EventEnd:
		s.end(ev)
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if held, ok := s.joining[ev.Room]; ok && ev.Room != "" {
		s.joining[ev.Room] = append(held, ev)
		return // counted when the join releases it
	}
	s.out.Send(ev)
	s.cfg.Metrics.Delivered()
}

// roomChanged keeps the visible rooms current and tells the client what
// changed from its point of view: a room it now sees is created for it, a
// room it no longer sees is deleted for it, and it leaves that room.
func (s *Session) roomChanged(ev *chat.Event) {
	p, ok := ev.Data.(chat.RoomPayload)
	if !ok && json.Unmarshal(ev.Payload, &p) != nil {
		return
	}
	uid := s.UserID()
	visible := p.Action != chat.ActionDelete && p.Room.CanRead(uid)

	s.mu.Lock()
	had := s.rooms.get(p.Room.ID) != nil
	var out *chat.Event
	switch {
	case visible:
		room := p.Room
		s.rooms.put(&room)
		out = ev
		if !had && p.Action != chat.ActionCreate {
			out = chat.MustEvent(chat.EventRoom, chat.RoomPayload{Action: chat.ActionCreate, Room: p.Room})
		}
	case had:
		s.rooms.remove(p.Room.ID)
		s.joinDoneLocked(p.Room.ID)
		out = ev
		if p.Action != chat.ActionDelete {
			out = chat.MustEvent(chat.EventRoom, chat.RoomPayload{Action: chat.ActionDelete, Room: p.Room})
		}
	}
	if out != nil {
		s.out.Send(out)
		s.cfg.Metrics.Delivered()
	}
	s.mu.Unlock()

	if had && !visible {
		s.hub.Leave(p.Room.ID, s)
	}
}

// end tells the client why its connection ends (chat.EventEnd) and ends it.
func (s *Session) end(ev *chat.Event) {
	p, ok := ev.Data.(chat.EndPayload)
	if !ok && json.Unmarshal(ev.Payload, &p) != nil {
		p = chat.EndPayload{Code: chat.CodeForbidden, Message: "the connection was ended"}
	}
	s.out.Send(chat.ErrorEvent(nil, &chat.Error{Code: p.Code, Message: p.Message}))
	s.out.End(p.Message)
}
