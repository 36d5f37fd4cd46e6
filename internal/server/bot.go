package server

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/maphash"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/pocketbase/dbx"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/types"

	"pocketchat/internal/bot"
	"pocketchat/internal/chat"
	"pocketchat/internal/hub"
	"pocketchat/internal/session"
	"pocketchat/pb_migrations"
)

// The bot's backends (CHAT_BOT_BACKEND).
const (
	BotLocal  = "local"  // the built-in commands only, offline
	BotOpenAI = "openai" // an OpenAI-compatible chat-completions API
)

// Tuning of the bot's workers.
const (
	// botWorkers is how many answers are composed at once; a slow model
	// holds one worker per question. Each room is served by one worker,
	// so a room's questions are answered in the order they were asked.
	botWorkers = 4
	// botQueue is how many answers may wait for each worker; when it is
	// full new ones are dropped (and logged) rather than held in memory.
	botQueue = 16
	// botTypingEvery re-sends the bot's typing event while it thinks, so
	// clients that expire "is typing" after a few seconds keep showing it.
	botTypingEvery = 3 * time.Second
	// botStopWait bounds how long shutdown waits for answers in progress
	// (their contexts are cancelled first, so they end quickly).
	botStopWait = 2 * time.Second
)

// BotConfig configures the chat bot (package bot): who it is, what it
// answers with and how often.
type BotConfig struct {
	// Enabled turns the bot on; off, nothing is ever answered.
	Enabled bool
	// Name is the bot user's display name, set at start, and the name it
	// answers to ("@" + Name).
	Name string
	// Aliases are more names it answers to.
	Aliases []string
	// Backend answers what is not a command: BotLocal or BotOpenAI.
	Backend string
	// APIURL is the OpenAI-compatible API's base URL, up to and including
	// "/v1"; "/chat/completions" is appended.
	APIURL string
	// APIKey is sent as a bearer token; empty sends none.
	APIKey string
	// Model is the model name sent to the API; required with BotOpenAI.
	Model string
	// Prompt is the model's system prompt; empty is bot.DefaultPrompt.
	Prompt string
	// Timeout bounds composing one answer, model call included.
	Timeout time.Duration
	// Context is how many recent messages of the room the model sees.
	Context int
	// UserRate and RoomRate bound the answers per user and per room each
	// minute; 0 means no limit.
	UserRate, RoomRate int
}

func defaultBotConfig() BotConfig {
	return BotConfig{
		Enabled:  true,
		Name:     bot.DefaultName,
		Backend:  BotLocal,
		APIURL:   "https://api.openai.com/v1",
		Timeout:  bot.DefaultTimeout,
		Context:  20,
		UserRate: 5,
		RoomRate: 20,
	}
}

// botConfig reads the CHAT_BOT_* variables over c.
func (r *envReader) botConfig(c BotConfig) BotConfig {
	c.Enabled = r.bool("CHAT_BOT", c.Enabled)
	if v := r.get("CHAT_BOT_NAME"); v != "" {
		c.Name = v
	}
	if v := r.get("CHAT_BOT_ALIASES"); v != "" {
		c.Aliases = nil
		for _, a := range strings.Split(v, ",") {
			if a = bot.CleanName(a); a != "" {
				c.Aliases = append(c.Aliases, a)
			}
		}
	}
	if v := r.get("CHAT_BOT_BACKEND"); v != "" {
		c.Backend = strings.ToLower(strings.TrimSpace(v))
	}
	if v := r.get("CHAT_BOT_API_URL"); v != "" {
		c.APIURL = strings.TrimSpace(v)
	}
	c.APIKey = strings.TrimSpace(r.get("CHAT_BOT_API_KEY"))
	if v := r.get("CHAT_BOT_MODEL"); v != "" {
		c.Model = strings.TrimSpace(v)
	}
	if v := r.get("CHAT_BOT_PROMPT"); v != "" {
		c.Prompt = v
	}
	c.Timeout = r.duration("CHAT_BOT_TIMEOUT", c.Timeout)
	c.Context = r.int("CHAT_BOT_CONTEXT", c.Context, 0, chat.MaxPageSize)
	c.UserRate = r.int("CHAT_BOT_USER_RATE", c.UserRate, 0, 10000)
	c.RoomRate = r.int("CHAT_BOT_ROOM_RATE", c.RoomRate, 0, 10000)
	if c.Enabled {
		if err := c.check(); err != nil {
			r.errs = append(r.errs, err.Error())
		}
	}
	return c
}

// check reports settings the bot cannot run with.
func (c BotConfig) check() error {
	name := bot.CleanName(c.Name)
	if name == "" || utf8.RuneCountInString(name) > 50 { // users.name holds 50
		return fmt.Errorf("CHAT_BOT_NAME=%q: want a name of 1 to 50 characters", c.Name)
	}
	switch c.Backend {
	case BotLocal:
	case BotOpenAI:
		u, err := url.Parse(c.APIURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("CHAT_BOT_API_URL=%q: want an http(s) base URL such as https://api.openai.com/v1", c.APIURL)
		}
		if c.Model == "" {
			return errors.New("CHAT_BOT_MODEL is required with CHAT_BOT_BACKEND=openai")
		}
	default:
		return fmt.Errorf("CHAT_BOT_BACKEND=%q: want %s or %s", c.Backend, BotLocal, BotOpenAI)
	}
	return nil
}

// registerBot binds the bot when it is enabled: at serve it finds the bot
// user (created by the migration) and gives it the configured name; after
// each message commit it considers the message; on terminate it stops.
func (s *Server) registerBot() error {
	if !s.cfg.Bot.Enabled {
		return nil
	}
	if err := s.cfg.Bot.check(); err != nil {
		return fmt.Errorf("bot: %w", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &botGlue{srv: s, cfg: s.cfg.Bot, seed: maphash.MakeSeed(), ctx: ctx, cancel: cancel}
	for i := range g.jobs {
		g.jobs[i] = make(chan bot.Task, botQueue)
	}
	s.app.OnServe().BindFunc(g.start)
	s.app.OnRecordAfterCreateSuccess(colMessages).BindFunc(g.messageCreated)
	s.app.OnTerminate().BindFunc(g.stop)
	return nil
}

// botGlue runs the bot inside PocketBase: the record hook decides (fast,
// on the saver's goroutine) and workers answer (slow, on their own), so
// neither the sender's ack nor anyone's delivery waits for the bot.
type botGlue struct {
	srv  *Server
	cfg  BotConfig
	bot  atomic.Pointer[bot.Bot]   // nil until start found the bot user
	jobs [botWorkers]chan bot.Task // a room's questions go to jobs[hash(room)]
	seed maphash.Seed

	ctx    context.Context // cancelled on terminate
	cancel context.CancelFunc
	wg     sync.WaitGroup // the workers
}

func (g *botGlue) start(e *core.ServeEvent) error {
	if g.bot.Load() == nil {
		if err := g.startBot(); err != nil {
			// The chat works without its bot: say why it is silent.
			e.App.Logger().Error("chat: the bot is off", "error", err)
		}
	}
	return e.Next()
}

// startBot finds the bot user, syncs its name and starts the workers.
func (g *botGlue) startBot() error {
	app := g.srv.app
	rec, err := app.FindAuthRecordByEmail(colUsers, pb_migrations.BotEmail)
	if err != nil {
		return fmt.Errorf("no bot user %s (created by migration 1763700002_bot_user): %w", pb_migrations.BotEmail, err)
	}
	name := bot.CleanName(g.cfg.Name)
	if rec.GetString("name") != name || !rec.GetBool("bot") {
		rec.Set("name", name)
		rec.Set("bot", true)
		if err := app.Save(rec); err != nil {
			return fmt.Errorf("renaming the bot user to %q: %w", name, err)
		}
	}
	b := bot.New(bot.Config{
		Name:     name,
		Aliases:  g.cfg.Aliases,
		Prompt:   g.cfg.Prompt,
		Context:  g.cfg.Context,
		Timeout:  g.cfg.Timeout,
		UserRate: g.cfg.UserRate,
		RoomRate: g.cfg.RoomRate,
	}, userFromRecord(rec), bot.Deps{
		Presence: g.srv.hub,
		Counter:  botStats{app: app},
		History:  botHistory{store: g.srv.store},
		Backend:  g.backend(),
		Log:      app.Logger().With("bot", rec.Id),
	})
	for _, jobs := range g.jobs {
		g.wg.Add(1)
		go g.work(b, jobs)
	}
	g.bot.Store(b)
	return nil
}

func (g *botGlue) backend() bot.Backend {
	if g.cfg.Backend != BotOpenAI {
		return nil
	}
	return &bot.OpenAI{BaseURL: g.cfg.APIURL, Key: g.cfg.APIKey, Model: g.cfg.Model}
}

// stop cancels the answers in progress and waits for the workers
// (briefly) before PocketBase closes the database.
func (g *botGlue) stop(e *core.TerminateEvent) error {
	g.cancel()
	done := make(chan struct{})
	go func() {
		g.wg.Wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(botStopWait):
		e.App.Logger().Warn("chat: the bot did not stop in time")
	}
	return e.Next()
}

// messageCreated considers each committed message, whatever path it came
// by, and queues an answer if it calls for one. It never blocks.
func (g *botGlue) messageCreated(e *core.RecordEvent) error {
	err := e.Next()
	if b := g.bot.Load(); b != nil && g.ctx.Err() == nil {
		g.consider(e.App, b, e.Record)
	}
	return err
}

func (g *botGlue) consider(app core.App, b *bot.Bot, rec *core.Record) {
	// Cheap checks first: most messages are neither for the bot nor by it.
	kind := chat.MessageKind(rec.GetString("kind"))
	author := rec.GetString("author")
	self := b.User().ID
	if (kind != chat.KindUser && kind != "") || author == "" || author == self {
		return
	}
	ctx := context.Background()
	room, err := g.srv.store.Room(ctx, rec.GetString("room"))
	if err != nil {
		app.Logger().Error("chat: bot: cannot look up room", "room", rec.GetString("room"), "error", err)
		return
	}
	user, err := g.srv.store.User(ctx, author)
	if err != nil {
		app.Logger().Error("chat: bot: cannot look up author", "user", author, "error", err)
		return
	}
	// Banning the bot user silences it, as it would anyone.
	if st, err := g.srv.store.Standing(ctx, self); err != nil || st.CheckWrite(time.Now()) != nil {
		return
	}
	task, ok := b.Consider(bot.Incoming{Room: room, Message: messageFromRecord(rec, user)})
	if !ok {
		return
	}
	select {
	case g.jobs[maphash.String(g.seed, room.ID)%botWorkers] <- task:
	default:
		app.Logger().Warn("chat: bot queue full, question dropped", "room", room.ID, "message", rec.Id)
	}
}

func (g *botGlue) work(b *bot.Bot, jobs <-chan bot.Task) {
	defer g.wg.Done()
	for {
		select {
		case <-g.ctx.Done():
			return
		case t := <-jobs:
			g.answer(b, t)
		}
	}
}

// answer composes and posts one answer; the room sees the bot typing
// while it thinks.
func (g *botGlue) answer(b *bot.Bot, t bot.Task) {
	var text string
	if t.Notice != "" {
		text = t.Notice
	} else {
		stopTyping := g.typing(b.User(), t.Room)
		text = b.Reply(g.ctx, t)
		stopTyping()
	}
	if g.ctx.Err() != nil {
		return // shutting down: no half-made answers
	}
	g.post(b.User(), t.Room.ID, text)
}

// typing publishes the bot's typing event now and every botTypingEvery
// until the returned stop is called; stop returns once no more will be
// published, so the answer never comes before a stale "typing".
func (g *botGlue) typing(self chat.User, room chat.Room) (stop func()) {
	ev := chat.MustEvent(chat.EventTyping, chat.TypingPayload{Room: room.ID, User: self})
	ev.Room = room.ID
	ev.Actor = self.ID
	to := hub.ToRoom(room.ID)
	if room.Kind == chat.KindDirect {
		to = hub.ToUsers(room.Members...) // like its messages: reach members who did not join
	}
	env := hub.Envelope{To: to, SkipUser: self.ID, Event: ev}
	publish := func() {
		if err := g.srv.hub.Publish(g.ctx, env); err != nil && g.ctx.Err() == nil {
			g.srv.app.Logger().Warn("chat: bot typing not published", "room", room.ID, "error", err)
		}
	}
	publish()
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(botTypingEvery)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				publish()
			}
		}
	})
	return func() {
		close(done)
		wg.Wait()
	}
}

// post saves the answer as a bot message through PocketBase, so the
// record hooks number it, store it and broadcast it like any message.
func (g *botGlue) post(self chat.User, roomID, text string) {
	app := g.srv.app
	col, err := app.FindCachedCollectionByNameOrId(colMessages)
	if err != nil {
		app.Logger().Error("chat: bot cannot post", "room", roomID, "error", err)
		return
	}
	rec := core.NewRecord(col)
	rec.Set("room", roomID)
	rec.Set("author", self.ID)
	rec.Set("text", text)
	rec.Set("kind", string(chat.KindBot))
	if err := app.Save(rec); err != nil {
		app.Logger().Error("chat: bot cannot post", "room", roomID, "error", err)
	}
}

// botStats counts a room's messages for the stats command.
type botStats struct{ app core.App }

var _ bot.Counter = botStats{}

func (c botStats) Stats(ctx context.Context, room string, since time.Time) (bot.Stats, error) {
	var st bot.Stats
	var err error
	if st.Total, err = c.count(ctx, room, time.Time{}); err != nil {
		return st, err
	}
	st.Today, err = c.count(ctx, room, since)
	return st, err
}

// count counts people's messages (kind "user") in the room since a time
// (zero: ever) and their distinct authors. PocketBase stores dates as
// "2006-01-02 15:04:05.000Z" text, which sorts like the time.
func (c botStats) count(ctx context.Context, room string, since time.Time) (bot.Count, error) {
	q := "SELECT COUNT(*), COUNT(DISTINCT NULLIF([[author]], '')) FROM {{" + colMessages + "}}" +
		" WHERE [[room]] = {:room} AND [[kind]] = {:kind}"
	params := dbx.Params{"room": room, "kind": string(chat.KindUser)}
	if !since.IsZero() {
		dt, err := types.ParseDateTime(since.UTC())
		if err != nil {
			return bot.Count{}, err
		}
		q += " AND [[created]] >= {:since}"
		params["since"] = dt.String()
	}
	var n bot.Count
	var messages, people sql.NullInt64
	err := c.app.DB().NewQuery(q).Bind(params).WithContext(ctx).Row(&messages, &people)
	n.Messages, n.People = messages.Int64, people.Int64
	return n, err
}

// botHistory gives the model the room's recent messages.
type botHistory struct{ store *store }

var _ bot.History = botHistory{}

func (h botHistory) Recent(ctx context.Context, room, before string, n int) ([]chat.Message, error) {
	msgs, _, err := h.store.Messages(ctx, room, session.Page{Before: before, Limit: n})
	return msgs, err
}
