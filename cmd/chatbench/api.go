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
	"strconv"
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

// exemptLoopback takes loopback out of PocketBase's HTTP rate limiter
// (Settings → Rate limiting → excluded IPs), as the superuser.
func (a *api) exemptLoopback(ctx context.Context) error {
	body := map[string]any{"rateLimits": map[string]any{"excludedIPs": []string{"127.0.0.0/8", "::1"}}}
	if err := a.do(ctx, "PATCH", "/api/settings", a.super, body, nil); err != nil {
		return fmt.Errorf("exempting loopback from the HTTP rate limiter: %w", err)
	}
	return nil
}

// benchUser is a signed-in bench account.
type benchUser struct {
	ID    string
	Token string
}

func benchEmail(i int) string { return fmt.Sprintf("bench-%05d@bench.invalid", i) }

// benchIndex is the inverse of benchEmail; ok is false for other emails.
func benchIndex(email string) (int, bool) {
	digits, found := strings.CutPrefix(email, "bench-")
	if !found {
		return 0, false
	}
	digits, found = strings.CutSuffix(digits, "@bench.invalid")
	if !found || len(digits) != 5 {
		return 0, false
	}
	n, err := atoiPositive([]byte(digits))
	if err != nil {
		return 0, false
	}
	return int(n), true
}

// userCache keeps signed-in users between runs against the same data
// directory (the suite restarts the server for each run), so only the
// first run asks for their tokens. Runs from the command line have none.
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

// userOptions tune ensureUsers.
type userOptions struct {
	workers    int // concurrent requests
	signupCost int // bcrypt cost while creating missing users; 0 leaves the server's
	cache      *userCache
	logf       func(string, ...any)
}

// impersonatedTokenLife is how long the tokens the tool gets stay valid:
// longer than any run or suite.
const impersonatedTokenLife = 24 * time.Hour

// ensureUsers returns users 0…n-1 with an auth token each, creating the
// ones that do not exist yet; it also says how many it created.
//
// No password is checked: each costs a bcrypt hash (tens of
// milliseconds), and signing 5,000 users in took about ten minutes. The
// superuser lists the bench accounts that exist (one query per 1,000) and
// impersonates each (a token without a password); only missing users are
// created, which costs one hash each, unless signupCost lowers it.
func (a *api) ensureUsers(ctx context.Context, n int, o userOptions) ([]benchUser, int, error) {
	users := make([]benchUser, n)
	todo := make([]int, 0, n)
	for i := range n {
		if u, ok := o.cache.get(i); ok {
			users[i] = u
		} else {
			todo = append(todo, i)
		}
	}
	if len(todo) == 0 {
		return users, 0, nil
	}
	existing, err := a.listBenchUsers(ctx, todo[0], todo[len(todo)-1])
	if err != nil {
		return nil, 0, err
	}
	var missing int
	for _, i := range todo {
		if _, ok := existing[i]; !ok {
			missing++
		}
	}
	o.logf("users: %d to sign in, %d of them to create", len(todo), missing)
	if missing > 0 && o.signupCost > 0 {
		restore, err := a.lowerPasswordCost(ctx, o.signupCost)
		if err != nil {
			return nil, 0, err
		}
		defer func() {
			rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
			defer cancel()
			if err := restore(rctx); err != nil {
				o.logf("restoring the users' password cost: %v", err)
			}
		}()
	}
	var created, done atomic.Int64
	err = parallel(ctx, len(todo), o.workers, func(ctx context.Context, k int) error {
		i := todo[k]
		id, ok := existing[i]
		if !ok {
			var err error
			if id, err = a.createUser(ctx, i); err != nil {
				return err
			}
			created.Add(1)
		}
		token, err := a.impersonate(ctx, id)
		if err != nil {
			return fmt.Errorf("impersonating %s: %w", benchEmail(i), err)
		}
		u := benchUser{ID: id, Token: token}
		o.cache.put(i, u)
		users[i] = u
		if d := done.Add(1); d%2000 == 0 {
			o.logf("users: %d/%d", d, len(todo))
		}
		return nil
	})
	return users, int(created.Load()), err
}

// listBenchUsers returns the ids of the bench users from..to (inclusive)
// that exist, by index. The zero-padded emails sort like their indexes,
// so a range filter selects them.
func (a *api) listBenchUsers(ctx context.Context, from, to int) (map[int]string, error) {
	const perPage = 1000 // PocketBase's most per page
	ids := map[int]string{}
	filter := fmt.Sprintf("email >= '%s' && email <= '%s'", benchEmail(from), benchEmail(to))
	for page := 1; ; page++ {
		var out struct {
			Items []struct {
				ID    string `json:"id"`
				Email string `json:"email"`
			} `json:"items"`
		}
		q := url.Values{"filter": {filter}, "sort": {"email"}, "perPage": {fmt.Sprint(perPage)},
			"page": {fmt.Sprint(page)}, "skipTotal": {"1"}, "fields": {"id,email"}}
		if err := a.do(ctx, "GET", "/api/collections/users/records?"+q.Encode(), a.super, nil, &out); err != nil {
			return nil, fmt.Errorf("listing the bench users: %w", err)
		}
		for _, it := range out.Items {
			if i, ok := benchIndex(it.Email); ok {
				ids[i] = it.ID
			}
		}
		if len(out.Items) < perPage || page > maxUsers/perPage {
			return ids, nil
		}
	}
}

// createUser signs bench user i up as the superuser and returns its id.
func (a *api) createUser(ctx context.Context, i int) (string, error) {
	var out struct {
		ID string `json:"id"`
	}
	err := a.do(ctx, "POST", "/api/collections/users/records", a.super, map[string]string{
		"email": benchEmail(i), "password": benchPassword, "passwordConfirm": benchPassword,
		"name": fmt.Sprintf("bench %05d", i),
	}, &out)
	if err != nil {
		return "", fmt.Errorf("sign-up %s: %w", benchEmail(i), err)
	}
	return out.ID, nil
}

// impersonate returns an auth token for the user, as the superuser.
func (a *api) impersonate(ctx context.Context, id string) (string, error) {
	var out authAnswer
	err := a.do(ctx, "POST", "/api/collections/users/impersonate/"+url.PathEscape(id), a.super,
		map[string]int64{"duration": int64(impersonatedTokenLife / time.Second)}, &out)
	if err == nil && out.Token == "" {
		err = errors.New("no token in the answer")
	}
	return out.Token, err
}

// lowerPasswordCost sets the bcrypt cost of the users collection's
// password field to cost and returns what puts the old one back. Only for
// a server the tool started: creating 10,000 users at PocketBase's
// default cost takes minutes on 2 cores, none of it measured, and the
// measured traffic never checks a password (tokens only).
func (a *api) lowerPasswordCost(ctx context.Context, cost int) (restore func(context.Context) error, err error) {
	var coll struct {
		Fields []map[string]any `json:"fields"`
	}
	if err := a.do(ctx, "GET", "/api/collections/users", a.super, nil, &coll); err != nil {
		return nil, fmt.Errorf("reading the users collection: %w", err)
	}
	var field map[string]any
	for _, f := range coll.Fields {
		if f["type"] == "password" && f["name"] == "password" {
			field = f
		}
	}
	if field == nil {
		return nil, errors.New("the users collection has no password field")
	}
	old := field["cost"]
	set := func(ctx context.Context, v any) error {
		field["cost"] = v
		return a.do(ctx, "PATCH", "/api/collections/users", a.super, map[string]any{"fields": coll.Fields}, nil)
	}
	if err := set(ctx, cost); err != nil {
		return nil, fmt.Errorf("lowering the password cost: %w", err)
	}
	return func(ctx context.Context) error { return set(ctx, old) }, nil
}

// serverMetrics are counters of the server's /api/chat/metrics that
// explain a run: whether slow readers were dropped, how many messages
// each commit carried.
type serverMetrics struct {
	SlowClientDrops float64 `json:"slowClientDrops"`
	Commits         float64 `json:"commits"`
	CommittedMsgs   float64 `json:"committedMessages"`
}

// since is the difference m − before.
func (m serverMetrics) since(before serverMetrics) *serverMetrics {
	return &serverMetrics{
		SlowClientDrops: m.SlowClientDrops - before.SlowClientDrops,
		Commits:         m.Commits - before.Commits,
		CommittedMsgs:   m.CommittedMsgs - before.CommittedMsgs,
	}
}

// metricsOf picks the counters the report shows from parsed metrics.
func metricsOf(v map[string]float64) serverMetrics {
	return serverMetrics{
		SlowClientDrops: v["pocketchat_slow_client_drops_total"],
		Commits:         v["pocketchat_commit_batch_size_count"],
		CommittedMsgs:   v["pocketchat_commit_batch_size_sum"],
	}
}

// heapInUse is the server's Go heap and goroutine stacks in use, in
// bytes: memory per connection without the garbage collector's slack
// that the RSS includes.
func (a *api) heapInUse(ctx context.Context) (int64, bool) {
	v, ok := a.metrics(ctx)
	if !ok || v["go_memstats_heap_inuse_bytes"] == 0 {
		return 0, false
	}
	return int64(v["go_memstats_heap_inuse_bytes"] + v["go_memstats_stack_inuse_bytes"]), true
}

// metrics reads /api/chat/metrics (Prometheus text) as the superuser and
// sums each metric's samples over their labels.
func (a *api) metrics(ctx context.Context) (map[string]float64, bool) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", a.base+"/api/chat/metrics", nil)
	if err != nil {
		return nil, false
	}
	req.Header.Set("Authorization", a.super)
	resp, err := a.client.Do(req)
	if err != nil {
		return nil, false
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, false
	}
	return parseMetrics(data), true
}

// parseMetrics sums the samples of each metric of a Prometheus text
// exposition by name (labels dropped).
func parseMetrics(data []byte) map[string]float64 {
	out := map[string]float64{}
	for _, line := range strings.Split(string(data), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, rest, ok := strings.Cut(line, " ")
		if i := strings.IndexByte(line, '{'); i >= 0 {
			j := strings.LastIndexByte(line, '}')
			if j < i {
				continue
			}
			name, rest, ok = line[:i], strings.TrimSpace(line[j+1:]), true
		}
		if !ok {
			continue
		}
		value, _, _ := strings.Cut(strings.TrimSpace(rest), " ") // a timestamp may follow
		if v, err := strconv.ParseFloat(value, 64); err == nil {
			out[name] += v
		}
	}
	return out
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
