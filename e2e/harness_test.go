package e2e

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// binPath is the pocketchat binary built once for all tests.
var binPath string

// repoRoot is the repository's top directory.
var repoRoot string

func TestMain(m *testing.M) {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Dir(filepath.Dir(file))
	dir, err := os.MkdirTemp("", "pocketchat-e2e-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "pocketchat")
	args := []string{"build", "-o", binPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	build := exec.Command("go", append(args, ".")...)
	build.Dir = repoRoot
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building pocketchat:", err)
		os.Exit(1)
	}
	// A migrated data directory with the superuser, which every new
	// server's directory starts as a copy of: the CLI run, a second or two
	// under -race, is paid once.
	templateDir = filepath.Join(dir, "template")
	upsert := exec.Command(binPath, "superuser", "upsert", superEmail, superPassword, "--dir", templateDir, "--dev=false")
	if out, err := upsert.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "preparing the template data directory: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// templateDir is the data directory new servers start from (TestMain).
var templateDir string

const (
	// waitTime bounds every wait for something the server should do.
	waitTime = 10 * time.Second
	// quietTime is how long a test watches for something that must not happen.
	quietTime = 400 * time.Millisecond
)

// Server is a running pocketchat process.
type Server struct {
	t    testing.TB
	Addr string
	URL  string
	Dir  string
	env  []string

	cmd  *exec.Cmd
	out  *syncBuffer
	done chan struct{}

	superToken string
	userSeq    atomic.Int64
	// client and tls reach the server through a proxy (Via); nil: direct.
	client *http.Client
	tls    *tls.Config
	// rateLimited keeps loopback under PocketBase's HTTP rate limiter;
	// settings are written into a new data directory before the start.
	rateLimited bool
	settings    map[string]any
	prepared    bool // by prepare: the superuser exists
}

// Option adjusts a server before it starts.
type Option func(*Server)

// WithEnv adds KEY=VALUE settings to the server's environment.
func WithEnv(kv ...string) Option { return func(s *Server) { s.env = append(s.env, kv...) } }

// WithHTTPRateLimits leaves the test's requests under PocketBase's HTTP
// rate limiter, which the harness otherwise exempts loopback from.
func WithHTTPRateLimits() Option { return func(s *Server) { s.rateLimited = true } }

// WithSetting sets one of PocketBase's settings (a JSON path into them,
// "$.trustedProxy.headers") before the server starts, as an operator does
// in the dashboard. Saving settings while the server runs would make the
// race detector report PocketBase reloading them under its own logger.
func WithSetting(path string, value any) Option {
	return func(s *Server) {
		if s.settings == nil {
			s.settings = map[string]any{}
		}
		s.settings[path] = value
	}
}

// WithDir reuses a data directory (to restart on the same database).
func WithDir(dir string) Option { return func(s *Server) { s.Dir = dir } }

// StartServer runs pocketchat until the test ends.
func StartServer(t testing.TB, opts ...Option) *Server {
	t.Helper()
	s := &Server{t: t}
	for _, o := range opts {
		o(s)
	}
	if s.Dir == "" {
		s.Dir = t.TempDir()
		s.prepare()
	}
	s.start()
	t.Cleanup(func() {
		s.Kill()
		// The server under test is built with -race when the tests are;
		// a race it reports fails the test that ran it.
		if out := s.Output(); strings.Contains(out, "WARNING: DATA RACE") {
			t.Errorf("the server reported a data race:\n%s", out)
		}
	})
	return s
}

func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// prepare creates the data directory before the first start, a copy of
// the template: the migrations ran, the superuser exists (SuperToken only
// signs in). Then the settings are written into the database, loopback
// exempted from the HTTP rate limiter (Settings → Rate limiting → excluded
// IPs) as an operator exempts their own monitoring: tests sign users up
// and in far faster than people do, all from one address.
func (s *Server) prepare() {
	s.t.Helper()
	if err := os.CopyFS(s.Dir, os.DirFS(templateDir)); err != nil {
		s.t.Fatalf("copying the template data directory: %v", err)
	}
	s.prepared = true
	settings := map[string]any{}
	if !s.rateLimited {
		settings["$.rateLimits.excludedIPs"] = []string{"127.0.0.0/8", "::1"}
	}
	maps.Copy(settings, s.settings)
	if len(settings) == 0 {
		return
	}
	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.Dir, "data.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		s.t.Fatal(err)
	}
	defer db.Close()
	for path, v := range settings {
		b, _ := json.Marshal(v)
		res, err := db.Exec(`UPDATE _params SET value = json_set(value, ?, json(?)) WHERE id = 'settings'`, path, string(b))
		if err != nil {
			s.t.Fatalf("setting %s: %v", path, err)
		}
		if n, _ := res.RowsAffected(); n != 1 {
			s.t.Fatalf("setting %s: no settings row in the new data directory", path)
		}
	}
}

func (s *Server) start() {
	s.t.Helper()
	for attempt := 0; ; attempt++ {
		if s.Addr == "" || attempt > 0 {
			s.Addr = freeAddr(s.t)
		}
		s.URL = "http://" + s.Addr
		s.out = &syncBuffer{}
		s.cmd = exec.Command(binPath, "serve", "--http", s.Addr, "--dir", s.Dir, "--dev=false")
		s.cmd.Env = append(os.Environ(), "CHAT_HOOKS_DIR="+filepath.Join(repoRoot, "pb_hooks"))
		s.cmd.Env = append(s.cmd.Env, s.env...)
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
		if err := s.cmd.Start(); err != nil {
			s.t.Fatal(err)
		}
		s.done = make(chan struct{})
		go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
		if s.waitReady() {
			return
		}
		s.Kill()
		if attempt >= 2 || !strings.Contains(s.out.String(), "address already in use") {
			s.t.Fatalf("pocketchat did not start:\n%s", s.out.String())
		}
	}
}

func (s *Server) waitReady() bool {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case <-s.done:
			return false
		default:
		}
		resp, err := http.Get(s.URL + "/api/health")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	return false
}

// Output is what the process printed so far.
func (s *Server) Output() string { return s.out.String() }

// Stop sends SIGTERM and waits for the process to exit.
func (s *Server) Stop() time.Duration {
	s.t.Helper()
	start := time.Now()
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.Kill()
		s.t.Fatalf("pocketchat did not exit after SIGTERM:\n%s", s.Output())
	}
	return time.Since(start)
}

// Kill stops the process with SIGKILL (no-op if it already exited).
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

// Restart stops the server with SIGTERM and starts it again on the same
// address and data directory.
func (s *Server) Restart() {
	s.t.Helper()
	s.Stop()
	s.start()
}

// Via is the server as seen through a proxy at base (http:// or
// https://, whose certificate tlsCfg trusts): requests, sockets and SSE of
// the returned Server go through it. It shares the superuser.
func (s *Server) Via(base string, tlsCfg *tls.Config) *Server {
	s.t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		s.t.Fatal(err)
	}
	return &Server{
		t: s.t, Addr: u.Host, URL: base, Dir: s.Dir,
		superToken: s.SuperToken(),
		client:     &http.Client{Transport: &http.Transport{TLSClientConfig: tlsCfg}},
		tls:        tlsCfg,
	}
}

func (s *Server) httpClient() *http.Client {
	if s.client != nil {
		return s.client
	}
	return http.DefaultClient
}

// ---- REST ----

// Do sends a JSON request and decodes the JSON answer into out (if not
// nil). It returns the status code.
func (s *Server) Do(method, path, token string, body, out any) int {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			s.t.Fatal(err)
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", token)
	}
	resp, err := s.httpClient().Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(resp.Body)
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			s.t.Fatalf("%s %s: decoding %q: %v", method, path, data, err)
		}
	}
	return resp.StatusCode
}

// MustDo is Do that fails the test unless the status is 2xx.
func (s *Server) MustDo(method, path, token string, body, out any) {
	s.t.Helper()
	var raw json.RawMessage
	code := s.Do(method, path, token, body, &raw)
	if code/100 != 2 {
		s.t.Fatalf("%s %s: status %d: %s", method, path, code, raw)
	}
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			s.t.Fatal(err)
		}
	}
}

// User is a signed-up account.
type User struct {
	ID, Name, Email, Password, Token string
}

// NewUser signs a user up through the REST API and signs them in.
func (s *Server) NewUser(name string) *User {
	s.t.Helper()
	n := s.userSeq.Add(1)
	u := &User{Name: name, Email: fmt.Sprintf("%s%d-%d@example.com", strings.ToLower(strings.ReplaceAll(name, " ", "")), n, time.Now().UnixNano()%1e6), Password: "correct-horse-42"}
	var rec struct{ ID string }
	s.MustDo("POST", "/api/collections/users/records", "", map[string]any{
		"name": name, "email": u.Email, "password": u.Password, "passwordConfirm": u.Password,
	}, &rec)
	u.ID = rec.ID
	var auth struct{ Token string }
	s.MustDo("POST", "/api/collections/users/auth-with-password", "", map[string]any{
		"identity": u.Email, "password": u.Password,
	}, &auth)
	u.Token = auth.Token
	return u
}

// The superuser every test server has.
const superEmail, superPassword = "admin@example.com", "admin-password-123"

// SuperToken returns a superuser token, creating the superuser with the
// binary's CLI on first use.
func (s *Server) SuperToken() string {
	s.t.Helper()
	if s.superToken != "" {
		return s.superToken
	}
	if !s.prepared { // a data directory of an earlier server
		cmd := exec.Command(binPath, "superuser", "upsert", superEmail, superPassword, "--dir", s.Dir, "--dev=false")
		if out, err := cmd.CombinedOutput(); err != nil {
			s.t.Fatalf("superuser upsert: %v\n%s", err, out)
		}
	}
	var auth struct{ Token string }
	s.MustDo("POST", "/api/collections/_superusers/auth-with-password", "", map[string]any{
		"identity": superEmail, "password": superPassword,
	}, &auth)
	s.superToken = auth.Token
	return s.superToken
}

// Record is a PocketBase record as JSON.
type Record map[string]any

// ID is the record's id.
func (r Record) ID() string { s, _ := r["id"].(string); return s }

// CreateRoom creates a room as the superuser.
func (s *Server) CreateRoom(name, kind string, members ...string) Record {
	s.t.Helper()
	if members == nil {
		members = []string{}
	}
	var rec Record
	s.MustDo("POST", "/api/collections/rooms/records", s.SuperToken(), map[string]any{
		"name": name, "kind": kind, "members": members,
	}, &rec)
	return rec
}

// General returns the id of the seeded public room.
func (s *Server) General() string {
	s.t.Helper()
	var list struct{ Items []Record }
	s.MustDo("GET", `/api/collections/rooms/records?filter=(name='General')`, "", nil, &list)
	if len(list.Items) != 1 {
		s.t.Fatalf("General: got %d rooms", len(list.Items))
	}
	return list.Items[0].ID()
}

// Ticket asks for a WebSocket ticket.
func (s *Server) Ticket(u *User) string {
	s.t.Helper()
	var out struct{ Ticket string }
	s.MustDo("POST", "/api/chat/ticket", u.Token, nil, &out)
	if out.Ticket == "" {
		s.t.Fatal("empty ticket")
	}
	return out.Ticket
}

// ---- WebSocket ----

// WSURL is the chat endpoint, with an optional query.
func (s *Server) WSURL(query string) string {
	scheme := "ws://"
	if s.tls != nil {
		scheme = "wss://"
	}
	u := scheme + s.Addr + "/api/chat/ws"
	if query != "" {
		u += "?" + query
	}
	return u
}

// DialRaw opens the chat socket with the given headers and query.
func (s *Server) DialRaw(header http.Header, query string) (*websocket.Conn, *http.Response, error) {
	d := websocket.Dialer{HandshakeTimeout: waitTime, TLSClientConfig: s.tls}
	return d.Dial(s.WSURL(query), header)
}

// Dial connects as u with the Authorization header; nil u is a guest.
// It waits for hello.
func (s *Server) Dial(u *User) *Client {
	s.t.Helper()
	h := http.Header{}
	if u != nil {
		h.Set("Authorization", "Bearer "+u.Token)
	}
	conn, resp, err := s.DialRaw(h, "")
	if err != nil {
		s.t.Fatalf("dial: %v (%s)", err, respStatus(resp))
	}
	return newClient(s.t, conn)
}

// DialTicket connects as u with a fresh ticket.
func (s *Server) DialTicket(u *User) *Client {
	s.t.Helper()
	conn, resp, err := s.DialRaw(nil, "ticket="+s.Ticket(u))
	if err != nil {
		s.t.Fatalf("dial: %v (%s)", err, respStatus(resp))
	}
	return newClient(s.t, conn)
}

func respStatus(resp *http.Response) string {
	if resp == nil {
		return "no response"
	}
	b, _ := io.ReadAll(resp.Body)
	return fmt.Sprintf("%d %s", resp.StatusCode, b)
}

// Frame is one decoded server frame.
type Frame map[string]any

// Type is the frame's type.
func (f Frame) Type() string { s, _ := f["type"].(string); return s }

// Str returns a string field.
func (f Frame) Str(key string) string { s, _ := f[key].(string); return s }

// Obj returns an object field.
func (f Frame) Obj(key string) Frame { m, _ := f[key].(map[string]any); return m }

// List returns an array-of-objects field.
func (f Frame) List(key string) []Frame {
	raw, _ := f[key].([]any)
	out := make([]Frame, 0, len(raw))
	for _, v := range raw {
		m, _ := v.(map[string]any)
		out = append(out, m)
	}
	return out
}

// Client is a WebSocket chat client that reads in the background, so the
// server never waits on it; frames queue until a test takes them.
type Client struct {
	t     testing.TB
	Conn  *websocket.Conn
	Hello Frame

	mu       sync.Mutex
	cond     *sync.Cond
	frames   []Frame
	closeErr error // why reading stopped
	ids      atomic.Int64
}

func newClient(t testing.TB, conn *websocket.Conn) *Client {
	t.Helper()
	c := &Client{t: t, Conn: conn}
	c.cond = sync.NewCond(&c.mu)
	go c.read()
	t.Cleanup(func() { conn.Close() })
	c.Hello = c.Expect("hello")
	return c
}

func (c *Client) read() {
	for {
		_, data, err := c.Conn.ReadMessage()
		c.mu.Lock()
		if err != nil {
			c.closeErr = err
			c.cond.Broadcast()
			c.mu.Unlock()
			return
		}
		var f Frame
		if json.Unmarshal(data, &f) != nil {
			f = Frame{"type": "!invalid-json", "raw": string(data)}
		}
		c.frames = append(c.frames, f)
		c.cond.Broadcast()
		c.mu.Unlock()
	}
}

// take removes and returns the first queued frame matching pred, waiting
// up to d for one.
func (c *Client) take(pred func(Frame) bool, d time.Duration) (Frame, bool) {
	deadline := time.Now().Add(d)
	timer := time.AfterFunc(d, func() {
		c.mu.Lock()
		c.cond.Broadcast()
		c.mu.Unlock()
	})
	defer timer.Stop()
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		for i, f := range c.frames {
			if pred(f) {
				c.frames = append(c.frames[:i:i], c.frames[i+1:]...)
				return f, true
			}
		}
		if c.closeErr != nil || !time.Now().Before(deadline) {
			return nil, false
		}
		c.cond.Wait()
	}
}

// WaitFor returns the first frame matching pred, failing after waitTime.
func (c *Client) WaitFor(what string, pred func(Frame) bool) Frame {
	c.t.Helper()
	f, ok := c.take(pred, waitTime)
	if !ok {
		c.t.Fatalf("no %s frame (closed: %v); queued: %v", what, c.CloseErr(), c.Pending())
	}
	return f
}

// Expect returns the first frame of the type.
func (c *Client) Expect(typ string) Frame {
	c.t.Helper()
	return c.WaitFor(typ, func(f Frame) bool { return f.Type() == typ })
}

// ExpectNone fails if a frame matching pred arrives within quietTime.
func (c *Client) ExpectNone(what string, pred func(Frame) bool) {
	c.t.Helper()
	if f, ok := c.take(pred, quietTime); ok {
		c.t.Fatalf("unexpected %s frame: %v", what, f)
	}
}

// Pending lists the queued frames without taking them.
func (c *Client) Pending() []Frame {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]Frame(nil), c.frames...)
}

// CloseErr is why reading stopped, nil while open.
func (c *Client) CloseErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeErr
}

// WaitClosed waits for the server to close the connection and returns
// the close error.
func (c *Client) WaitClosed() error {
	c.t.Helper()
	deadline := time.Now().Add(waitTime)
	for time.Now().Before(deadline) {
		if err := c.CloseErr(); err != nil {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.t.Fatal("connection not closed")
	return nil
}

// SendRaw writes one text frame.
func (c *Client) SendRaw(data string) {
	c.t.Helper()
	if err := c.Conn.WriteMessage(websocket.TextMessage, []byte(data)); err != nil {
		c.t.Fatal(err)
	}
}

// Request sends a request with a fresh id and returns the reply with that
// id (which may be an error frame).
func (c *Client) Request(typ string, fields map[string]any) Frame {
	c.t.Helper()
	id := fmt.Sprintf("r%d", c.ids.Add(1))
	msg := map[string]any{"type": typ, "id": id}
	for k, v := range fields {
		msg[k] = v
	}
	b, _ := json.Marshal(msg)
	c.SendRaw(string(b))
	return c.WaitFor("reply to "+typ, func(f Frame) bool { return f.Str("id") == id })
}

// MustRequest is Request that fails on an error reply.
func (c *Client) MustRequest(typ string, fields map[string]any) Frame {
	c.t.Helper()
	f := c.Request(typ, fields)
	if f.Type() == "error" {
		c.t.Fatalf("%s %v: error %s: %s", typ, fields, f.Str("code"), f.Str("message"))
	}
	return f
}

// Join joins a room and returns the joined frame.
func (c *Client) Join(room string) Frame {
	c.t.Helper()
	return c.MustRequest("join", map[string]any{"room": room})
}

// Send posts text and returns the acked message.
func (c *Client) Send(room, text string) Frame {
	c.t.Helper()
	return c.MustRequest("send", map[string]any{"room": room, "text": text}).Obj("message")
}

// ExpectMessage waits for a message event with the text.
func (c *Client) ExpectMessage(room, text string) Frame {
	c.t.Helper()
	return c.WaitFor("message "+text, func(f Frame) bool {
		return f.Type() == "message" && f.Str("room") == room && f.Obj("message").Str("text") == text
	}).Obj("message")
}

// Close closes the connection politely.
func (c *Client) Close() {
	_ = c.Conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	_ = c.Conn.Close()
}

// ---- SSE (PocketBase realtime) ----

// SSE is a subscriber on PocketBase's /api/realtime.
type SSE struct {
	t      testing.TB
	events chan SSEEvent
	cancel context.CancelFunc
}

// SSEEvent is one server-sent event.
type SSEEvent struct {
	Name string
	Data map[string]any
}

// Subscribe opens /api/realtime as token's owner ("" for a guest) and
// subscribes to the topics, like the JS SDK's subscribe().
func (s *Server) Subscribe(token string, topics ...string) *SSE {
	s.t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, "GET", s.URL+"/api/realtime", nil)
	resp, err := s.httpClient().Do(req)
	if err != nil {
		cancel()
		s.t.Fatal(err)
	}
	sse := &SSE{t: s.t, events: make(chan SSEEvent, 1000), cancel: cancel}
	s.t.Cleanup(func() { cancel(); resp.Body.Close() })
	go sse.read(resp.Body)
	connect := sse.Next()
	if connect.Name != "PB_CONNECT" {
		s.t.Fatalf("first SSE event %q", connect.Name)
	}
	clientID, _ := connect.Data["clientId"].(string)
	s.MustDo("POST", "/api/realtime", token, map[string]any{"clientId": clientID, "subscriptions": topics}, nil)
	return sse
}

func (e *SSE) read(body io.Reader) {
	sc := bufio.NewScanner(body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	var ev SSEEvent
	var data strings.Builder
	for sc.Scan() {
		line := sc.Text()
		switch {
		case line == "":
			if ev.Name != "" || data.Len() > 0 {
				_ = json.Unmarshal([]byte(data.String()), &ev.Data)
				e.events <- ev
			}
			ev, data = SSEEvent{}, strings.Builder{}
		case strings.HasPrefix(line, "event:"):
			ev.Name = strings.TrimSpace(strings.TrimPrefix(line, "event:"))
		case strings.HasPrefix(line, "data:"):
			data.WriteString(strings.TrimPrefix(line, "data:"))
		}
	}
	close(e.events)
}

// Next returns the next event, failing after waitTime.
func (e *SSE) Next() SSEEvent {
	e.t.Helper()
	select {
	case ev, ok := <-e.events:
		if !ok {
			e.t.Fatal("SSE stream ended")
		}
		return ev
	case <-time.After(waitTime):
		e.t.Fatal("no SSE event")
	}
	return SSEEvent{}
}

// ExpectNone fails if an event arrives within quietTime.
func (e *SSE) ExpectNone() {
	e.t.Helper()
	select {
	case ev, ok := <-e.events:
		if ok {
			e.t.Fatalf("unexpected SSE event %s %v", ev.Name, ev.Data)
		}
	case <-time.After(quietTime):
	}
}

// syncBuffer collects process output from two pipes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
