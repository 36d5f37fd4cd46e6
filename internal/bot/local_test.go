package bot_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"pocketchat/internal/bot"
	"pocketchat/internal/chat"
)

// botUser is the bot's account in these tests.
var botUser = chat.User{ID: "botbotbotbotbot", Name: "bot", Bot: true}

var (
	alice   = chat.User{ID: "alice0000000000", Name: "Alice"}
	bob     = chat.User{ID: "bob000000000000", Name: "Bob"}
	general = chat.Room{ID: "general00000000", Name: "General", Kind: chat.KindPublic}
)

// fixedNow is the clock of these tests: Saturday, 2026-11-21, 23:30 in
// New York, which is already Sunday in UTC.
func fixedNow() time.Time {
	ny := time.FixedZone("EST", -5*3600)
	return time.Date(2026, 11, 21, 23, 30, 15, 0, ny)
}

// dice returns an Intn that yields the given results (1-based die faces)
// in turn, checking each call's n.
func dice(t *testing.T, sides int, faces ...int) func(int) int {
	t.Helper()
	i := 0
	return func(n int) int {
		if n != sides {
			t.Errorf("Intn(%d), want Intn(%d)", n, sides)
		}
		if i >= len(faces) {
			t.Fatalf("more than %d dice rolled", len(faces))
		}
		f := faces[i]
		i++
		return f - 1
	}
}

// reply asks b the query as Alice in General.
func reply(b *bot.Bot, query string) string {
	return b.Reply(context.Background(), bot.Task{Room: general, Message: chat.Message{ID: "m1", Room: general.ID, Author: alice, Text: "@bot " + query, Kind: chat.KindUser}, Query: query})
}

func TestRoll(t *testing.T) {
	tests := []struct {
		query string
		sides int
		faces []int
		want  string
	}{
		{"roll 2d6", 6, []int{3, 5}, "🎲 2d6: 3 + 5 = 8"},
		{"/roll 2D6", 6, []int{6, 6}, "🎲 2d6: 6 + 6 = 12"},
		{"roll d20", 20, []int{17}, "🎲 1d20: 17"},
		{"roll", 6, []int{4}, "🎲 1d6: 4"},
		{"roll 1d1000", 1000, []int{1000}, "🎲 1d1000: 1000"},
		{"roll 3d2", 2, []int{1, 2, 1}, "🎲 3d2: 1 + 2 + 1 = 4"},
	}
	for _, tt := range tests {
		b := bot.New(bot.Config{}, botUser, bot.Deps{Intn: dice(t, tt.sides, tt.faces...)})
		if got := reply(b, tt.query); got != tt.want {
			t.Errorf("%q: got %q, want %q", tt.query, got, tt.want)
		}
	}
}

func TestRollBounds(t *testing.T) {
	b := bot.New(bot.Config{}, botUser, bot.Deps{Intn: func(n int) int { return n - 1 }})
	got := reply(b, "roll 100d1000")
	if want := " = 100000"; !strings.HasSuffix(got, want) || strings.Count(got, "1000 +") != 99 {
		t.Errorf("100d1000 at most: got %q, want 100 dice of 1000 and %q", got, want)
	}
	usage := "roll needs dice like 2d6 or d20: 1 to 100 dice of 2 to 1000 sides"
	for _, q := range []string{
		"roll 101d6", "roll 2d1001", "roll 0d6", "roll 2d0", "roll 2d1", "roll 2d", "roll d",
		"roll abc", "roll 2x6", "roll -1d6", "roll +2d6", "roll 2d6+1", "roll 99999999999999999999d6",
		"roll 2d6 3d4", "roll ２d6", "roll 2 d6", "roll 0x10d6",
	} {
		b := bot.New(bot.Config{}, botUser, bot.Deps{Intn: func(int) int { t.Fatalf("%q rolled", q); return 0 }})
		if got := reply(b, q); got != usage {
			t.Errorf("%q: got %q, want the usage", q, got)
		}
	}
}

func TestParseDice(t *testing.T) {
	tests := []struct {
		in      string
		want    bot.Dice
		wantErr bool
	}{
		{"2d6", bot.Dice{N: 2, Sides: 6}, false},
		{"D20", bot.Dice{N: 1, Sides: 20}, false},
		{"100d1000", bot.Dice{N: 100, Sides: 1000}, false},
		{"0100d0006", bot.Dice{N: 100, Sides: 6}, false},
		{"101d6", bot.Dice{}, true},
		{"1d1001", bot.Dice{}, true},
		{"", bot.Dice{}, true},
		{"dd", bot.Dice{}, true},
	}
	for _, tt := range tests {
		got, err := bot.ParseDice(tt.in)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("ParseDice(%q) = %+v, %v; want %+v, error %v", tt.in, got, err, tt.want, tt.wantErr)
		}
	}
}

func TestHelp(t *testing.T) {
	b := bot.New(bot.Config{Name: "小爱", Aliases: []string{"xiaoai"}}, botUser, bot.Deps{})
	got := reply(b, "help")
	for _, want := range []string{"@小爱", "@xiaoai", "help", "time", "roll NdM", "who", "stats", `"/roll 2d6"`} {
		if !strings.Contains(got, want) {
			t.Errorf("help lacks %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "anything else") {
		t.Errorf("local-only help offers free questions:\n%s", got)
	}
	withModel := bot.New(bot.Config{}, botUser, bot.Deps{Backend: completeFunc(func() (string, error) { return "", nil })})
	if got := reply(withModel, "help"); !strings.Contains(got, "anything else") {
		t.Errorf("help with a model does not offer free questions:\n%s", got)
	}
}

func TestTime(t *testing.T) {
	b := bot.New(bot.Config{}, botUser, bot.Deps{Now: fixedNow})
	if got, want := reply(b, "time"), "It is Sun, 22 Nov 2026 04:30:15 UTC."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
}

func TestFallback(t *testing.T) {
	b := bot.New(bot.Config{Name: "小爱"}, botUser, bot.Deps{})
	for _, q := range []string{"what is the meaning of life?", "robot", ""} {
		if got := reply(b, q); !strings.Contains(got, `"@小爱 help"`) {
			t.Errorf("%q: got %q, want a pointer to help", q, got)
		}
	}
}

type presence map[string][]chat.User

func (p presence) Online(room string) []chat.User { return p[room] }

func TestWho(t *testing.T) {
	many := make([]chat.User, 60)
	for i := range many {
		many[i] = chat.User{ID: fmt.Sprint(i), Name: fmt.Sprintf("u%02d", i)}
	}
	tests := []struct {
		name   string
		online []chat.User
		want   string
	}{
		{"nobody", nil, "Nobody is online in this room right now."},
		{"only the bot", []chat.User{botUser}, "Nobody is online in this room right now."},
		{"one", []chat.User{alice}, "Online here: Alice."},
		{"two", []chat.User{alice, botUser, bob}, "Online here (2): Alice, Bob."},
		{"many", many, ""},
	}
	for _, tt := range tests {
		b := bot.New(bot.Config{}, botUser, bot.Deps{Presence: presence{general.ID: tt.online}})
		got := reply(b, "who")
		if tt.name == "many" {
			if !strings.HasPrefix(got, "Online here (60): u00, u01,") || !strings.HasSuffix(got, "u49 and 10 more.") {
				t.Errorf("%s: got %q", tt.name, got)
			}
			continue
		}
		if got != tt.want {
			t.Errorf("%s: got %q, want %q", tt.name, got, tt.want)
		}
	}
	if got, want := reply(bot.New(bot.Config{}, botUser, bot.Deps{}), "who"), "I can't see who is online here."; got != want {
		t.Errorf("without presence: got %q, want %q", got, want)
	}
}

type counter struct {
	stats     bot.Stats
	err       error
	gotRoom   string
	gotSince  time.Time
	callCount int
}

func (c *counter) Stats(_ context.Context, room string, since time.Time) (bot.Stats, error) {
	c.callCount++
	c.gotRoom, c.gotSince = room, since
	return c.stats, c.err
}

func TestStats(t *testing.T) {
	c := &counter{stats: bot.Stats{Today: bot.Count{Messages: 1, People: 1}, Total: bot.Count{Messages: 240, People: 17}}}
	b := bot.New(bot.Config{}, botUser, bot.Deps{Counter: c, Now: fixedNow})
	if got, want := reply(b, "stats"), "Today (UTC): 1 message from 1 person. In total: 240 messages from 17 people."; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if want := time.Date(2026, 11, 22, 0, 0, 0, 0, time.UTC); !c.gotSince.Equal(want) || c.gotSince.Location() != time.UTC {
		t.Errorf("since: got %v, want %v (midnight UTC)", c.gotSince, want)
	}
	if c.gotRoom != general.ID {
		t.Errorf("room: got %q, want %q", c.gotRoom, general.ID)
	}

	c = &counter{}
	b = bot.New(bot.Config{}, botUser, bot.Deps{Counter: c})
	if got, want := reply(b, "stats"), "Today (UTC): 0 messages from 0 people. In total: 0 messages from 0 people."; got != want {
		t.Errorf("empty room: got %q, want %q", got, want)
	}

	c = &counter{err: errors.New("database is locked")}
	b = bot.New(bot.Config{}, botUser, bot.Deps{Counter: c})
	if got, want := reply(b, "stats"), "Sorry, I can't count messages right now."; got != want {
		t.Errorf("failing counter: got %q, want %q", got, want)
	}
}
