package server

import (
	"bufio"
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"sync"

	"github.com/pocketbase/pocketbase/apis"
	"github.com/pocketbase/pocketbase/core"
	"github.com/pocketbase/pocketbase/tools/hook"
	"github.com/pocketbase/pocketbase/tools/router"

	"pocketchat/internal/chat"
	"pocketchat/internal/clusterapi"
	"pocketchat/internal/gateway"
	"pocketchat/internal/session"
)

// clusterRoutes serve the edges (clusterapi): the store and the auth of
// this primary, over HTTP, for nodes that never open the database. They
// exist only with CHAT_CLUSTER_SECRET set, and only for requests that
// carry it.
func (s *Server) clusterRoutes(r *router.Router[*core.RequestEvent]) {
	if s.cfg.ClusterSecret == "" {
		return
	}
	g := r.Group(strings.TrimSuffix(clusterapi.Prefix, "/"))
	g.Bind(s.requireClusterSecret(), apis.SkipSuccessActivityLog())
	g.POST("/auth", s.clusterAuth)
	g.GET("/users/{id}", s.clusterUser)
	g.GET("/visible", s.clusterVisible)
	g.GET("/rooms/{id}", s.clusterRoom)
	g.GET("/rooms/{id}/messages", s.clusterMessages)
	g.POST("/direct", s.clusterDirect)
	g.POST("/send", s.clusterSend)
	g.GET("/messages/{id}", s.clusterMessage)
	g.PATCH("/messages/{id}", s.clusterEdit)
	g.DELETE("/messages/{id}", s.clusterDelete)
}

// requireClusterSecret admits requests with "Authorization: Bearer
// <CHAT_CLUSTER_SECRET>", compared in constant time.
func (s *Server) requireClusterSecret() *hook.Handler[*core.RequestEvent] {
	want := []byte(s.cfg.ClusterSecret)
	return &hook.Handler[*core.RequestEvent]{
		Func: func(e *core.RequestEvent) error {
			got, ok := strings.CutPrefix(e.Request.Header.Get("Authorization"), "Bearer ")
			if !ok || subtle.ConstantTimeCompare([]byte(got), want) != 1 {
				return apis.NewUnauthorizedError("The cluster secret is missing or wrong.", nil)
			}
			return e.Next()
		},
	}
}

// clusterFail answers a store error with its chat code, for the edge to
// report as the session would.
func clusterFail(e *core.RequestEvent, err error) error {
	status := http.StatusUnprocessableEntity
	switch chat.ErrorCode(err) {
	case chat.CodeNotFound:
		status = http.StatusNotFound
	case chat.CodeInternal:
		status = http.StatusInternalServerError
		e.App.Logger().Error("chat: cluster request failed", "error", err)
	}
	return e.JSON(status, map[string]any{"error": clusterapi.FromError(err)})
}

func (s *Server) clusterAuth(e *core.RequestEvent) error {
	var req clusterapi.Auth
	if err := json.NewDecoder(e.Request.Body).Decode(&req); err != nil {
		return apis.NewBadRequestError("Bad auth request.", err)
	}
	var user *chat.User
	var err error
	if req.Token != "" {
		user, err = s.auth.UserByToken(e.Request.Context(), req.Token)
	} else {
		user, err = s.auth.userByID(req.User)
	}
	if ref := (*gateway.Refusal)(nil); errors.As(err, &ref) {
		return e.JSON(http.StatusOK, clusterapi.AuthReply{Error: &clusterapi.Error{Status: ref.Status, Message: ref.Message}})
	}
	if err != nil {
		return err
	}
	return e.JSON(http.StatusOK, clusterapi.AuthReply{User: user})
}

func (s *Server) clusterUser(e *core.RequestEvent) error {
	cu, err := s.store.cachedUser(e.Request.Context(), e.Request.PathValue("id"))
	if err != nil {
		return clusterFail(e, err)
	}
	return e.JSON(http.StatusOK, clusterapi.UserReply{User: cu.user, Standing: cu.standing})
}

func (s *Server) clusterVisible(e *core.RequestEvent) error {
	rooms, err := s.store.VisibleRooms(e.Request.Context(), e.Request.URL.Query().Get("user"))
	if err != nil {
		return clusterFail(e, err)
	}
	return e.JSON(http.StatusOK, rooms)
}

func (s *Server) clusterRoom(e *core.RequestEvent) error {
	room, err := s.store.Room(e.Request.Context(), e.Request.PathValue("id"))
	if err != nil {
		return clusterFail(e, err)
	}
	return e.JSON(http.StatusOK, room)
}

func (s *Server) clusterMessages(e *core.RequestEvent) error {
	q := e.Request.URL.Query()
	limit, _ := strconv.Atoi(q.Get("limit"))
	msgs, more, err := s.store.Messages(e.Request.Context(), e.Request.PathValue("id"),
		session.Page{Before: q.Get("before"), After: q.Get("after"), Limit: limit})
	if err != nil {
		return clusterFail(e, err)
	}
	return e.JSON(http.StatusOK, clusterapi.Messages{Messages: msgs, More: more})
}

func (s *Server) clusterDirect(e *core.RequestEvent) error {
	var req clusterapi.Direct
	if err := json.NewDecoder(e.Request.Body).Decode(&req); err != nil {
		return apis.NewBadRequestError("Bad direct request.", err)
	}
	room, err := s.store.DirectRoom(e.Request.Context(), req.A, req.B)
	if err != nil {
		return clusterFail(e, err)
	}
	return e.JSON(http.StatusOK, room)
}

func (s *Server) clusterMessage(e *core.RequestEvent) error {
	msg, err := s.store.Message(e.Request.Context(), e.Request.PathValue("id"))
	if err != nil {
		return clusterFail(e, err)
	}
	return e.JSON(http.StatusOK, msg)
}

func (s *Server) clusterEdit(e *core.RequestEvent) error {
	var req clusterapi.Edit
	if err := json.NewDecoder(e.Request.Body).Decode(&req); err != nil {
		return apis.NewBadRequestError("Bad edit request.", err)
	}
	msg, err := s.store.EditMessage(e.Request.Context(), e.Request.PathValue("id"), req.Text)
	if err != nil {
		return clusterFail(e, err)
	}
	return e.JSON(http.StatusOK, msg)
}

func (s *Server) clusterDelete(e *core.RequestEvent) error {
	if err := s.store.DeleteMessage(e.Request.Context(), e.Request.PathValue("id")); err != nil {
		return clusterFail(e, err)
	}
	return e.NoContent(http.StatusNoContent)
}

// clusterSend saves an edge's batch of messages through the group
// commit, in the batch's order, and streams the outcome: first a line
// saying the batch is queued (the edge sends its next batch then, so a
// client's messages keep their order across batches), then a line per
// message as its commit completes. The author's send allowance is taken
// here, as for every other way of writing.
func (s *Server) clusterSend(e *core.RequestEvent) error {
	var batch []clusterapi.Send
	if err := json.NewDecoder(e.Request.Body).Decode(&batch); err != nil {
		return apis.NewBadRequestError("Bad send batch.", err)
	}
	ctx := e.Request.Context()
	results := make(chan clusterapi.SendResult, len(batch))
	for i, m := range batch {
		if wait, ok := s.limits.Send(m.Author); !ok {
			results <- clusterapi.SendResult{I: i, Error: clusterapi.FromError(&chat.Error{Code: chat.CodeRateLimited, Message: "too many messages", RetryAfter: wait})}
			continue
		}
		author, err := s.store.User(ctx, m.Author)
		if err != nil {
			results <- clusterapi.SendResult{I: i, Error: clusterapi.FromError(err)}
			continue
		}
		s.store.CreateMessage(context.Background(), author, m.Room, m.Text, func(msg chat.Message, err error) {
			if err != nil {
				results <- clusterapi.SendResult{I: i, Error: clusterapi.FromError(err)}
				return
			}
			results <- clusterapi.SendResult{I: i, Message: &msg}
		})
	}
	w := e.Response
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	bw := bufio.NewWriter(w)
	enc := json.NewEncoder(bw)
	var mu sync.Mutex
	write := func(v any) error {
		mu.Lock()
		defer mu.Unlock()
		if err := enc.Encode(v); err != nil {
			return err
		}
		if err := bw.Flush(); err != nil {
			return err
		}
		return http.NewResponseController(w).Flush()
	}
	if err := write(clusterapi.SendQueued{Queued: len(batch)}); err != nil {
		return nil
	}
	for range batch {
		if err := write(<-results); err != nil {
			return nil
		}
	}
	return nil
}
