package server

import (
	"context"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"

	"pocketchat/internal/chat"
	"pocketchat/internal/hub"
	"pocketchat/internal/limit"
)

// limits are the per-user allowances every way of writing shares: a
// user's native WebSockets, socket.io clients and REST requests draw on
// one bucket (session.Limits).
type limits struct {
	send, typing, ticket *limit.Buckets
}

func newLimits(cfg Config) *limits {
	return &limits{
		send:   limit.NewBuckets(cfg.SendRate, nil),
		typing: limit.NewBuckets(cfg.TypingRate, nil),
		ticket: limit.NewBuckets(cfg.TicketRate, nil),
	}
}

func (l *limits) Send(userID string) (time.Duration, bool)   { return l.send.Take(userID) }
func (l *limits) Typing(userID string) (time.Duration, bool) { return l.typing.Take(userID) }

// bindModeration enforces the moderators' fields and the send limits on
// the paths PocketBase serves itself (REST, auth); the chat's own paths
// check them in the session, and every message save checks the
// author's standing again (beforeMessageCreate).
func (s *Server) bindModeration() {
	app := s.app
	// Signing in covers passwords, OAuth2, OTP and token refreshes.
	app.OnRecordAuthRequest(colUsers).BindFunc(func(e *core.RecordAuthRequestEvent) error {
		if e.Record.GetBool("banned") {
			return apis.NewForbiddenError("This account is banned.", nil)
		}
		return e.Next()
	})
	app.OnRecordCreateRequest(colMessages).BindFunc(s.checkRESTSend)
	app.OnRecordUpdateRequest(colMessages).BindFunc(s.checkRESTEdit)
	app.OnRecordDeleteRequest(colMessages).BindFunc(s.checkRESTDelete)
}

// checkRESTEdit holds a user's REST edit to the chat's rules: the edit
// window (CHAT_EDIT_WINDOW) and the send allowance, which edits share
// since each reaches the whole room. The collection's update rule has
// already checked authorship and standing. Superusers are not limited.
func (s *Server) checkRESTEdit(e *core.RecordRequestEvent) error {
	if !byUser(e) {
		return e.Next()
	}
	msg := chat.Message{
		Author:  chat.User{ID: e.Record.Original().GetString("author")},
		Kind:    chat.MessageKind(e.Record.Original().GetString("kind")),
		Created: e.Record.GetDateTime("created").Time(),
	}
	if err := msg.CheckEdit(e.Auth.Id, time.Now(), s.cfg.EditWindow); err != nil {
		return restError(e.RequestEvent, http.StatusForbidden, chat.ErrorMessage(err), map[string]any{})
	}
	if wait, ok := s.limits.Send(e.Auth.Id); !ok {
		return tooMany(e.RequestEvent, wait, tooManyMessages)
	}
	return e.Next()
}

// checkRESTDelete draws a user's REST delete from the send allowance.
func (s *Server) checkRESTDelete(e *core.RecordRequestEvent) error {
	if !byUser(e) {
		return e.Next()
	}
	if wait, ok := s.limits.Send(e.Auth.Id); !ok {
		return tooMany(e.RequestEvent, wait, tooManyMessages)
	}
	return e.Next()
}

// byUser reports whether a user (not a superuser, not a guest) makes the
// request: only users are held to the chat's limits on REST.
func byUser(e *core.RecordRequestEvent) bool {
	return e.Auth != nil && e.Auth.Collection().Name == colUsers
}

// tooMany answers a request over one of the user's allowances: 429 with
// Retry-After (seconds) and data.retryAfter (ms).
func tooMany(e *core.RequestEvent, wait time.Duration, message string) error {
	e.Response.Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(wait.Seconds()))))
	return restError(e, http.StatusTooManyRequests, message,
		map[string]any{"retryAfter": int64((wait + time.Millisecond - 1) / time.Millisecond)})
}

const tooManyMessages = "Too many messages: wait before sending again."

// checkRESTSend gives a user's REST message create the answers a chat
// send gets: 403 with the end of a mute (the collection's rule refuses
// it too, with a bare 400), 429 with Retry-After over the send rate.
// Superusers (the dashboard) are not limited.
func (s *Server) checkRESTSend(e *core.RecordRequestEvent) error {
	if !byUser(e) {
		return e.Next()
	}
	st, err := s.store.Standing(e.Request.Context(), e.Auth.Id)
	if err != nil {
		return err
	}
	if err := st.CheckWrite(time.Now()); err != nil {
		data := map[string]any{}
		if !st.MutedUntil.IsZero() && !st.Banned {
			data["until"] = st.MutedUntil.UTC().Format(time.RFC3339)
		}
		return restError(e.RequestEvent, http.StatusForbidden, chat.ErrorMessage(err), data)
	}
	if wait, ok := s.limits.Send(e.Auth.Id); !ok {
		return tooMany(e.RequestEvent, wait, tooManyMessages)
	}
	return e.Next()
}

// restError answers in the shape of PocketBase's API errors, with data
// kept as given: an apis.ApiError keeps only validation errors in data.
func restError(e *core.RequestEvent, status int, message string, data map[string]any) error {
	return e.JSON(status, map[string]any{"status": status, "message": message, "data": data})
}

// checkStanding refuses a user message whose author may not write now,
// whatever path saves it: a ban or mute that lands while a send waits
// for its group commit still stops it.
func (s *Server) checkStanding(ctx context.Context, r *core.Record) error {
	if r.GetString("kind") != string(chat.KindUser) || r.GetString("author") == "" {
		return nil
	}
	st, err := s.store.Standing(ctx, r.GetString("author"))
	if err != nil {
		if chat.ErrorCode(err) == chat.CodeNotFound {
			return nil // the relation check reports a missing author
		}
		return err
	}
	return st.CheckWrite(time.Now())
}

// endBanned ends the open connections of a user who was just banned, on
// every node: the event goes through the hub to the user's connections,
// whose sessions send the reason and close.
func (s *Server) endBanned(app core.App, r *core.Record) {
	if !r.GetBool("banned") {
		return
	}
	ev := chat.MustEvent(chat.EventEnd, chat.EndPayload{Code: chat.CodeForbidden, Message: "this account is banned"})
	if err := s.hub.Publish(context.Background(), hub.Envelope{To: hub.ToUsers(r.Id), Event: ev}); err != nil {
		app.Logger().Error("chat: cannot end a banned user's connections", "user", r.Id, "error", err)
	}
}
