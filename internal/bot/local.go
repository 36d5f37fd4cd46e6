package bot

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// maxWho bounds the names "who" lists; a big room gets "and N more".
const maxWho = 50

// run answers a command locally.
func (b *Bot) run(ctx context.Context, t Task, cmd Command) string {
	switch cmd.Name {
	case CmdHelp:
		return b.help()
	case CmdTime:
		return "It is " + b.deps.Now().UTC().Format(time.RFC1123) + "."
	case CmdRoll:
		return roll(cmd.Args, b.deps.Intn)
	case CmdWho:
		return b.who(t.Room.ID)
	case CmdStats:
		return b.stats(ctx, t.Room.ID)
	}
	return b.fallback(t.Query)
}

func (b *Bot) help() string {
	var s strings.Builder
	fmt.Fprintf(&s, "I answer when you mention @%s", b.names[0])
	if len(b.names) > 1 {
		s.WriteString(" (or @" + strings.Join(b.names[1:], ", @") + ")")
	}
	s.WriteString(" or write to me directly. Commands:\n")
	s.WriteString("• help: this list\n")
	s.WriteString("• time: the server's time (UTC)\n")
	fmt.Fprintf(&s, "• roll NdM: roll N dice with M sides, e.g. roll 2d6 (up to %dd%d)\n", MaxDice, MaxSides)
	s.WriteString("• who: who is online in this room\n")
	s.WriteString("• stats: messages and people in this room, today and in total\n")
	fmt.Fprintf(&s, "Write them as \"@%s roll 2d6\" or \"/roll 2d6\".", b.names[0])
	if b.deps.Backend != nil {
		s.WriteString(" Ask me anything else and I'll do my best.")
	}
	return s.String()
}

// fallback answers what is neither a command nor for a backend.
func (b *Bot) fallback(query string) string {
	if query == "" {
		return fmt.Sprintf("Hi! Say \"@%s help\" to see what I can do.", b.names[0])
	}
	return fmt.Sprintf("I don't know how to answer that yet. Say \"@%s help\" to see what I can do.", b.names[0])
}

func (b *Bot) who(room string) string {
	if b.deps.Presence == nil {
		return "I can't see who is online here."
	}
	var names []string
	for _, u := range b.deps.Presence.Online(room) {
		if u.ID != b.self.ID {
			names = append(names, u.Name)
		}
	}
	switch len(names) {
	case 0:
		return "Nobody is online in this room right now."
	case 1:
		return "Online here: " + names[0] + "."
	}
	list := names
	if len(list) > maxWho {
		list = list[:maxWho]
	}
	s := fmt.Sprintf("Online here (%d): %s", len(names), strings.Join(list, ", "))
	if more := len(names) - len(list); more > 0 {
		s += fmt.Sprintf(" and %d more", more)
	}
	return s + "."
}

func (b *Bot) stats(ctx context.Context, room string) string {
	if b.deps.Counter == nil {
		return "I can't count messages here."
	}
	now := b.deps.Now().UTC()
	midnight := time.Date(now.Year(), now.Month(), now.Day(), 0, 0, 0, 0, time.UTC)
	st, err := b.deps.Counter.Stats(ctx, room, midnight)
	if err != nil {
		b.deps.Log.Error("bot: stats failed", "room", room, "error", err)
		return "Sorry, I can't count messages right now."
	}
	return fmt.Sprintf("Today (UTC): %s. In total: %s.", st.Today, st.Total)
}

// String is "3 messages from 2 people".
func (c Count) String() string {
	return plural(c.Messages, "message", "messages") + " from " + plural(c.People, "person", "people")
}

func plural(n int64, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
