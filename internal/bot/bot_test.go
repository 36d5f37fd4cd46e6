package bot_test

import (
	"context"
	"strings"
	"testing"

	"pocketchat/internal/bot"
	"pocketchat/internal/chat"
)

func TestConsider(t *testing.T) {
	private := chat.Room{ID: "private00000000", Kind: chat.KindPrivate, Members: []string{alice.ID, botUser.ID}}
	secret := chat.Room{ID: "secret000000000", Kind: chat.KindPrivate, Members: []string{alice.ID, bob.ID}}
	dm := chat.Room{ID: "dm0000000000000", Kind: chat.KindDirect, Members: []string{alice.ID, botUser.ID}}
	dmOthers := chat.Room{ID: "dm0000000000001", Kind: chat.KindDirect, Members: []string{alice.ID, bob.ID}}
	otherBot := chat.User{ID: "otherbot0000000", Name: "Helper", Bot: true}

	tests := []struct {
		name      string
		room      chat.Room
		author    chat.User
		text      string
		kind      chat.MessageKind
		wantOK    bool
		wantQuery string
	}{
		{"mention", general, alice, "@bot roll 2d6", chat.KindUser, true, "roll 2d6"},
		{"alias", general, alice, "hey @helper, time?", chat.KindUser, true, "hey , time?"},
		{"empty kind is a user message", general, alice, "@bot help", "", true, "help"},
		{"slash command", general, alice, "/roll 2d6", chat.KindUser, true, "/roll 2d6"},
		{"slash command, any case", general, alice, "/TIME", chat.KindUser, true, "/TIME"},
		{"private room with the bot", private, alice, "@bot who", chat.KindUser, true, "who"},
		{"direct room, no mention", dm, alice, "what time is it?", chat.KindUser, true, "what time is it?"},
		{"direct room, command", dm, alice, " roll 2d6 ", chat.KindUser, true, "roll 2d6"},

		{"no mention", general, alice, "hello everyone", chat.KindUser, false, ""},
		{"robot", general, alice, "robot help", chat.KindUser, false, ""},
		{"command without slash", general, alice, "roll 2d6", chat.KindUser, false, ""},
		{"unknown slash command", general, alice, "/shrug", chat.KindUser, false, ""},
		{"slash not at the start", general, alice, "try /roll 2d6", chat.KindUser, false, ""},
		{"private room without the bot", secret, alice, "@bot help", chat.KindUser, false, ""},
		{"slash in a room without the bot", secret, alice, "/help", chat.KindUser, false, ""},
		{"direct room of others", dmOthers, alice, "@bot help", chat.KindUser, false, ""},
		{"bot message", general, alice, "@bot help", chat.KindBot, false, ""},
		{"system message", general, alice, "@bot help", chat.KindSystem, false, ""},
		{"by the bot", general, botUser, "@bot help", chat.KindUser, false, ""},
		{"by the bot in its direct room", dm, botUser, "hello", chat.KindUser, false, ""},
		{"by another bot", general, otherBot, "@bot help", chat.KindUser, false, ""},
		{"no author", general, chat.User{}, "@bot help", chat.KindUser, false, ""},
	}
	for _, tt := range tests {
		b := bot.New(bot.Config{Aliases: []string{"helper"}}, botUser, bot.Deps{})
		msg := chat.Message{ID: "m1", Room: tt.room.ID, Author: tt.author, Text: tt.text, Kind: tt.kind}
		task, ok := b.Consider(bot.Incoming{Room: tt.room, Message: msg})
		if ok != tt.wantOK {
			t.Errorf("%s: got ok %v, want %v", tt.name, ok, tt.wantOK)
			continue
		}
		if !ok {
			continue
		}
		if task.Query != tt.wantQuery || task.Notice != "" || task.Room.ID != tt.room.ID || task.Message.ID != "m1" {
			t.Errorf("%s: got %+v, want query %q in room %s", tt.name, task, tt.wantQuery, tt.room.ID)
		}
	}
}

// TestConsiderRateLimits: a flood gets the allowed answers and one notice.
func TestConsiderRateLimits(t *testing.T) {
	clk := newClock()
	b := bot.New(bot.Config{UserRate: 3, RoomRate: 4}, botUser, bot.Deps{Now: clk.Now})
	consider := func(u chat.User) (bot.Task, bool) {
		return b.Consider(bot.Incoming{Room: general, Message: chat.Message{ID: "m", Author: u, Text: "@bot roll", Kind: chat.KindUser}})
	}
	var answers, notices []string
	for range 10 {
		task, ok := consider(alice)
		switch {
		case !ok:
		case task.Notice != "":
			notices = append(notices, task.Notice)
		default:
			answers = append(answers, task.Query)
		}
	}
	if len(answers) != 3 || len(notices) != 1 {
		t.Fatalf("got %d answers and notices %q, want 3 answers and 1 notice", len(answers), notices)
	}
	if want := "Alice, please slow down: I answer at most 3 messages a minute per person."; notices[0] != want {
		t.Errorf("notice: got %q, want %q", notices[0], want)
	}
	if got := b.Reply(context.Background(), bot.Task{Notice: notices[0]}); got != notices[0] {
		t.Errorf("Reply of a notice: got %q, want it as is", got)
	}

	// The room's limit: Bob gets one answer, then the room notice.
	if task, ok := consider(bob); !ok || task.Notice != "" {
		t.Fatalf("bob's first: got %+v, %v; want an answer", task, ok)
	}
	task, ok := consider(bob)
	if !ok || !strings.HasPrefix(task.Notice, "This room is keeping me busy: I answer at most 4 messages a minute here.") {
		t.Fatalf("bob's second: got %+v, %v; want the room's notice", task, ok)
	}
	if _, ok := consider(bob); ok {
		t.Errorf("bob's third: got a task, want silence")
	}
}

func TestNew(t *testing.T) {
	b := bot.New(bot.Config{Name: " @小爱 ", Aliases: []string{"@xiaoai", "小爱", ""}}, chat.User{ID: "x", Name: "old"}, bot.Deps{})
	if got, want := b.User(), (chat.User{ID: "x", Name: "小爱", Bot: true}); got != want {
		t.Errorf("User: got %+v, want %+v", got, want)
	}
	if got, want := strings.Join(b.Names(), ","), "小爱,xiaoai"; got != want {
		t.Errorf("Names: got %q, want %q", got, want)
	}
	if got := bot.New(bot.Config{}, chat.User{}, bot.Deps{}).User().Name; got != bot.DefaultName {
		t.Errorf("default name: got %q, want %q", got, bot.DefaultName)
	}
}
