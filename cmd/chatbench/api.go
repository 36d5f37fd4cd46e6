package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// benchPassword is every bench user's password: fixed, so repeated runs
// sign the same accounts in instead of creating new ones.
const benchPassword = "chatbench-user-pass-1"

// loopbackBase checks that raw is an http URL on 127.0.0.1 or ::1 and
// returns it without a trailing slash. "localhost" is taken as 127.0.0.1.
func loopbackBase(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return "", fmt.Errorf("-url: %v", err)
	}
	if u.Scheme != "http" {
		return "", fmt.Errorf("-url: only http:// (the tool drives a local server), got %q", raw)
	}
	if u.Path != "" && u.Path != "/" || u.RawQuery != "" || u.User != nil {
		return "", fmt.Errorf("-url: give the base URL only, like http://127.0.0.1:8090")
	}
	host, port := u.Hostname(), u.Port()
	if host == "localhost" {
		host = "127.0.0.1"
	}
	ip := net.ParseIP(host)
	if ip == nil || !(ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback)) {
		return "", fmt.Errorf("-url: the tool only targets 127.0.0.1 or ::1, not %q", u.Hostname())
	}
	if port == "" {
		return "", fmt.Errorf("-url: a port is needed")
	}
	return "http://" + net.JoinHostPort(ip.String(), port), nil
}

// api makes the set-up and counting calls (users, rooms, totals) through
// PocketBase's REST API. The measured traffic does not go through it.
type api struct {
	base   string
	client *http.Client
	super  string // superuser token
}

func newAPI(base string) *api {
	return &api{base: base, client: &http.Client{
		Timeout:   60 * time.Second,
		Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true},
	}}
}

// httpError is a non-2xx answer.
type httpError struct {
	Status int
	Body   string
}

func (e *httpError) Error() string { return fmt.Sprintf("status %d: %s", e.Status, e.Body) }

// do sends a JSON request and decodes a 2xx JSON answer into out.
func (a *api) do(ctx context.Context, method, path, token string, body, out any) error {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, a.base+path, rd)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := a.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 8<<20))
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		return &httpError{resp.StatusCode, strings.TrimSpace(string(data))}
	}
	if out != nil && len(data) > 0 {
		return json.Unmarshal(data, out)
	}
	return nil
}

type authAnswer struct {
	Token  string `json:"token"`
	Record struct {
		ID string `json:"id"`
	} `json:"record"`
}

// superLogin signs the superuser in.
func (a *api) superLogin(ctx context.Context, email, password string) error {
	var out authAnswer
	err := a.do(ctx, "POST", "/api/collections/_superusers/auth-with-password", "",
		map[string]string{"identity": email, "password": password}, &out)
	if err != nil {
		return fmt.Errorf("superuser sign-in as %s: %w (give -su-email and -su-password of a superuser)", email, err)
	}
	a.super = out.Token
	return nil
}

// benchUser is a signed-in bench account.
type benchUser struct {
	ID    string
	Token string
}

func benchEmail(i int) string { return fmt.Sprintf("bench-%05d@bench.invalid", i) }

// userCache keeps signed-in users between runs against the same data
// directory (the suite restarts the server for each run), so only the
// first run pays for the password hashing. Runs from the command line
// have none and sign in every time.
type userCache struct {
	mu    sync.Mutex
	users map[int]benchUser
}

func newUserCache() *userCache { return &userCache{users: map[int]benchUser{}} }

func (c *userCache) get(i int) (benchUser, bool) {
	if c == nil {
		return benchUser{}, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	u, ok := c.users[i]
	return u, ok
}

func (c *userCache) put(i int, u benchUser) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.users[i] = u
}

// ensureUsers signs users 0…n-1 in, signing up those that do not exist
// yet, with at most workers at a time (each costs a password hash).
func (a *api) ensureUsers(ctx context.Context, n, workers int, cache *userCache, logf func(string, ...any)) ([]benchUser, int, error) {
	users := make([]benchUser, n)
	var created, done atomic.Int64
	err := parallel(ctx, n, workers, func(ctx context.Context, i int) error {
		if u, ok := cache.get(i); ok {
			users[i] = u
			return nil
		}
		u, isNew, err := a.ensureUser(ctx, i)
		if err != nil {
			return err
		}
		cache.put(i, u)
		users[i] = u
		if isNew {
			created.Add(1)
		}
		if d := done.Add(1); d%200 == 0 {
			logf("users: %d/%d signed in", d, n)
		}
		return nil
	})
	return users, int(created.Load()), err
}

func (a *api) ensureUser(ctx context.Context, i int) (benchUser, bool, error) {
	email := benchEmail(i)
	signIn := func() (benchUser, error) {
		var out authAnswer
		err := a.do(ctx, "POST", "/api/collections/users/auth-with-password", "",
			map[string]string{"identity": email, "password": benchPassword}, &out)
		return benchUser{ID: out.Record.ID, Token: out.Token}, err
	}
	u, err := signIn()
	var he *httpError
	if err == nil || !errors.As(err, &he) || he.Status != http.StatusBadRequest {
		if err != nil {
			err = fmt.Errorf("sign-in %s: %w", email, err)
		}
		return u, false, err
	}
	err = a.do(ctx, "POST", "/api/collections/users/records", "", map[string]string{
		"email": email, "password": benchPassword, "passwordConfirm": benchPassword,
		"name": fmt.Sprintf("bench %05d", i),
	}, nil)
	if err != nil {
		return u, false, fmt.Errorf("sign-up %s (sign-in failed first): %w", email, err)
	}
	u, err = signIn()
	if err != nil {
		err = fmt.Errorf("sign-in %s after sign-up: %w", email, err)
	}
	return u, true, err
}

// createRooms creates the run's private rooms as the superuser.
func (a *api) createRooms(ctx context.Context, run string, members [][]string) ([]string, error) {
	ids := make([]string, len(members))
	err := parallel(ctx, len(members), 4, func(ctx context.Context, i int) error {
		var out struct {
			ID string `json:"id"`
		}
		err := a.do(ctx, "POST", "/api/collections/rooms/records", a.super, map[string]any{
			"name": fmt.Sprintf("bench-%s-%d", run, i), "kind": "private", "members": members[i],
		}, &out)
		if err != nil {
			return fmt.Errorf("create room %d: %w", i, err)
		}
		ids[i] = out.ID
		return nil
	})
	return ids, err
}

// countMessages returns the number of messages stored in each room.
func (a *api) countMessages(ctx context.Context, rooms []string) ([]int64, error) {
	counts := make([]int64, len(rooms))
	err := parallel(ctx, len(rooms), 8, func(ctx context.Context, i int) error {
		var out struct {
			TotalItems int64 `json:"totalItems"`
		}
		q := url.Values{"filter": {fmt.Sprintf("(room='%s')", rooms[i])}, "perPage": {"1"}, "fields": {"id"}}
		if err := a.do(ctx, "GET", "/api/collections/messages/records?"+q.Encode(), a.super, nil, &out); err != nil {
			return fmt.Errorf("count messages of room %s: %w", rooms[i], err)
		}
		counts[i] = out.TotalItems
		return nil
	})
	return counts, err
}

// deleteRooms deletes the rooms (and so their messages).
func (a *api) deleteRooms(ctx context.Context, rooms []string) error {
	return parallel(ctx, len(rooms), 4, func(ctx context.Context, i int) error {
		if rooms[i] == "" {
			return nil
		}
		return a.do(ctx, "DELETE", "/api/collections/rooms/records/"+rooms[i], a.super, nil, nil)
	})
}

// parallel runs f(0…n-1) on at most workers goroutines and returns the
// first error (after which the remaining calls are skipped).
func parallel(ctx context.Context, n, workers int, f func(context.Context, int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range min(workers, n) {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if i >= n {
					return
				}
				if err := f(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	if first == nil && ctx.Err() != nil {
		return context.Cause(ctx)
	}
	return first
}
