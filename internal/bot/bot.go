// Package bot is pocketchat's chat bot: it decides which messages call for
// an answer and composes the answer. It knows nothing of PocketBase or of
// sockets: what it needs from the server (who is online, counts, recent
// messages, a language model) it declares as small interfaces, and the
// server glue posts what it returns as an ordinary message.
//
//	b := bot.New(bot.Config{Name: "bot", UserRate: 5, RoomRate: 20, Timeout: 20 * time.Second},
//		botUser, bot.Deps{Presence: hub, Counter: stats, History: history})
//	if task, ok := b.Consider(bot.Incoming{Room: room, Message: msg}); ok { // fast: in the record hook
//		queue <- task // a worker then posts b.Reply(ctx, task), which may take seconds
//	}
//
// The bot answers a message that mentions it ("@bot …", or an alias), a
// "/command" in a room it can see, and anything written to it in a direct
// room. It never answers bot or system messages, nor itself.
package bot

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"strings"
	"time"
	"unicode/utf8"

	"pocketchat/internal/chat"
)

// Short answers for when there is no real one. They are plain strings so
// that tests (and operators reading the room) recognize them.
const (
	// Apology replaces an answer the backend failed to give (timeout, HTTP
	// error, malformed or empty response). The details go to the log.
	Apology = "Sorry, I can't answer right now. Please try again later."
	// Refusal replaces an answer the model declined to give.
	Refusal = "Sorry, I can't help with that."
)

// Defaults for the Config fields left zero.
const (
	DefaultName    = "bot"
	DefaultTimeout = 20 * time.Second
)

// Config tunes a Bot.
type Config struct {
	// Name is the bot's display name and the first name it answers to
	// ("@" + Name). Empty is DefaultName.
	Name string
	// Aliases are more names it answers to.
	Aliases []string
	// Prompt is the system prompt given to the model; empty is
	// DefaultPrompt(Name).
	Prompt string
	// Context is how many of the room's recent messages the model sees
	// before the one it answers.
	Context int
	// Timeout bounds composing one answer, model call included.
	Timeout time.Duration
	// UserRate and RoomRate bound the answers per user and per room in
	// each Window; 0 means no limit.
	UserRate, RoomRate int
}

// Presence tells who is online in a room (the hub does).
type Presence interface {
	Online(room string) []chat.User
}

// Count is a number of messages and of distinct people who wrote them.
type Count struct {
	Messages, People int64
}

// Stats counts people's messages in a room (not the bot's or system ones).
type Stats struct {
	Today Count // since midnight UTC
	Total Count
}

// Counter computes a room's Stats, counting "today" from since.
type Counter interface {
	Stats(ctx context.Context, room string, since time.Time) (Stats, error)
}

// History returns up to n messages of a room older than the message
// before, oldest first.
type History interface {
	Recent(ctx context.Context, room, before string, n int) ([]chat.Message, error)
}

// Backend answers a conversation: a language model.
type Backend interface {
	Complete(ctx context.Context, turns []Turn) (string, error)
}

// Deps is what the bot reads the world through. Every field may be nil:
// the commands that need a missing one say they cannot answer.
type Deps struct {
	Presence Presence
	Counter  Counter
	History  History
	// Backend answers what is not a command; nil answers with a pointer
	// to help.
	Backend Backend
	Log     *slog.Logger
	// Now and Intn are the clock and the dice (Intn(n) in [0, n)); tests
	// fix them.
	Now  func() time.Time
	Intn func(n int) int
}

// Bot decides whether to answer and composes answers. It is safe for
// concurrent use.
type Bot struct {
	cfg   Config
	self  chat.User
	names []string // its name, then its aliases
	match []string // the same, longest first, for mentioned
	deps  Deps
	limit *Limiter
}

// New returns the bot that speaks as self (the bot's user account; its
// Name is replaced by cfg.Name).
func New(cfg Config, self chat.User, deps Deps) *Bot {
	cfg.Name = CleanName(cfg.Name)
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultTimeout
	}
	if cfg.Prompt == "" {
		cfg.Prompt = DefaultPrompt(cfg.Name)
	}
	if deps.Log == nil {
		deps.Log = slog.New(slog.DiscardHandler)
	}
	if deps.Now == nil {
		deps.Now = time.Now
	}
	if deps.Intn == nil {
		deps.Intn = rand.IntN
	}
	self.Name, self.Bot = cfg.Name, true
	names := cleanNames(append([]string{cfg.Name}, cfg.Aliases...))
	return &Bot{
		cfg:   cfg,
		self:  self,
		names: names,
		match: longestFirst(names),
		deps:  deps,
		limit: NewLimiter(cfg.UserRate, cfg.RoomRate, deps.Now),
	}
}

// DefaultPrompt is the system prompt used when none is configured.
func DefaultPrompt(name string) string {
	return fmt.Sprintf("You are %s, a friendly assistant in a group chat. "+
		"People's messages are given as \"Name: text\". Answer the last one briefly, "+
		"in plain text without Markdown, in the language it was written in.", name)
}

// User is the bot's account, with its configured name.
func (b *Bot) User() chat.User { return b.self }

// Names are the names the bot answers to, without "@".
func (b *Bot) Names() []string { return append([]string(nil), b.names...) }

// Incoming is a newly stored message and its room.
type Incoming struct {
	Room    chat.Room
	Message chat.Message
}

// Task is an answer to give, from Consider.
type Task struct {
	Room    chat.Room
	Message chat.Message // the message answered
	// Query is what was asked: the text without the mentions of the bot.
	Query string
	// Notice, when set, is the whole answer (a slow-down notice): post it
	// without thinking, or typing.
	Notice string
}

// Consider decides at once, without I/O, whether a message calls for an
// answer; it counts against the rate limits when it does. It is meant for
// the record hook: the slow part, Reply, belongs on another goroutine.
func (b *Bot) Consider(in Incoming) (Task, bool) {
	m := in.Message
	if m.Kind != chat.KindUser && m.Kind != "" {
		return Task{}, false // bot and system messages: no loops
	}
	if m.Author.ID == "" || m.Author.ID == b.self.ID || m.Author.Bot {
		return Task{}, false
	}
	if !in.Room.CanRead(b.self.ID) {
		return Task{}, false // a room the bot is not in, mention or not
	}
	query, isMention := mentioned(m.Text, b.match)
	switch {
	case isMention:
	case isSlashCommand(m.Text):
		query = strings.TrimSpace(m.Text)
	case in.Room.Kind == chat.KindDirect:
		query = strings.TrimSpace(m.Text) // a private chat with the bot
	default:
		return Task{}, false
	}
	t := Task{Room: in.Room, Message: m, Query: query}
	switch b.limit.Allow(m.Author.ID, in.Room.ID) {
	case Allow:
		return t, true
	case NoticeUser:
		t.Notice = fmt.Sprintf("%s, please slow down: I answer at most %d messages a minute per person.", m.Author.Name, b.cfg.UserRate)
		return t, true
	case NoticeRoom:
		t.Notice = fmt.Sprintf("This room is keeping me busy: I answer at most %d messages a minute here. Try again in a minute.", b.cfg.RoomRate)
		return t, true
	}
	return Task{}, false
}

// Reply composes the answer to a task, within Config.Timeout of ctx. It
// always returns a postable text, at most chat.MaxTextLen characters:
// failures become Apology (and a log line), never an error to handle.
func (b *Bot) Reply(ctx context.Context, t Task) string {
	if t.Notice != "" {
		return clip(t.Notice)
	}
	ctx, cancel := context.WithTimeout(ctx, b.cfg.Timeout)
	defer cancel()
	if cmd, ok := ParseCommand(t.Query); ok {
		return clip(b.run(ctx, t, cmd))
	}
	if b.deps.Backend == nil {
		return clip(b.fallback(t.Query))
	}
	return clip(b.ask(ctx, t))
}

// ask puts the question to the backend, with the room's recent messages
// as context.
func (b *Bot) ask(ctx context.Context, t Task) string {
	text, err := b.deps.Backend.Complete(ctx, b.conversation(ctx, t))
	switch {
	case errors.Is(err, ErrRefused):
		b.deps.Log.Warn("bot: the model refused", "room", t.Room.ID, "message", t.Message.ID, "error", err)
		return Refusal
	case err != nil:
		if ctx.Err() != nil {
			err = fmt.Errorf("%w (%v)", err, context.Cause(ctx))
		}
		b.deps.Log.Error("bot: no answer from the model", "room", t.Room.ID, "message", t.Message.ID, "error", err)
		return Apology
	}
	return text
}

// conversation is the system prompt, the room's recent messages (people
// as "user" turns "Name: text", the bot's own as "assistant") and the
// message to answer. System messages are left out: room content never
// speaks with the system prompt's voice.
func (b *Bot) conversation(ctx context.Context, t Task) []Turn {
	turns := []Turn{{Role: "system", Content: b.cfg.Prompt}}
	if b.deps.History != nil && b.cfg.Context > 0 {
		recent, err := b.deps.History.Recent(ctx, t.Room.ID, t.Message.ID, b.cfg.Context)
		if err != nil {
			b.deps.Log.Warn("bot: no context for the model", "room", t.Room.ID, "error", err)
		}
		for _, m := range recent {
			switch {
			case m.Kind == chat.KindSystem:
			case m.Author.ID == b.self.ID:
				turns = append(turns, Turn{Role: "assistant", Content: m.Text})
			default:
				turns = append(turns, Turn{Role: "user", Content: said(m)})
			}
		}
	}
	return append(turns, Turn{Role: "user", Content: said(t.Message)})
}

// said is a message as a model reads it: "Alice: hello".
func said(m chat.Message) string {
	text := m.Text
	if text == "" && m.Image != "" {
		text = "[an image]"
	}
	name := m.Author.Name
	if name == "" {
		name = "Someone"
	}
	return name + ": " + text
}

// clip bounds an answer to what a message may hold.
func clip(s string) string {
	if utf8.RuneCountInString(s) <= chat.MaxTextLen {
		return s
	}
	r := []rune(s)
	return string(r[:chat.MaxTextLen-1]) + "…"
}
