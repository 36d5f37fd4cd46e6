package main

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// spawned is a pocketchat process the tool started for a run.
type spawned struct {
	url  string
	cmd  *exec.Cmd
	out  *tailBuffer
	done chan struct{}
	tmp  string // a temporary data directory to remove, if any
}

// spawn starts bin on a free 127.0.0.1 port with dir as its data
// directory (a temporary one if empty), without --dev, after creating the
// superuser in it; it returns once /api/health answers. The server
// inherits the tool's environment, then CHAT_HOOKS_DIR=hooks (if set),
// then env ("KEY=VALUE" entries; the last one for a key wins).
func spawn(ctx context.Context, bin, dir, hooks string, env []string, suEmail, suPassword string, logf func(string, ...any)) (*spawned, error) {
	tmp := ""
	if dir == "" {
		var err error
		if tmp, err = os.MkdirTemp("", "chatbench-data-"); err != nil {
			return nil, err
		}
		dir = tmp
	}
	up := exec.CommandContext(ctx, bin, "superuser", "upsert", suEmail, suPassword, "--dir", dir, "--dev=false")
	if out, err := up.CombinedOutput(); err != nil {
		_ = removeTmp(tmp)
		return nil, fmt.Errorf("%s superuser upsert: %v\n%s", bin, err, out)
	}
	if hooks != "" {
		env = append([]string{"CHAT_HOOKS_DIR=" + hooks}, env...)
	}
	s, err := launch(ctx, bin, func(addr string) []string { return []string{"serve", "--http", addr, "--dir", dir, "--dev=false"} }, env)
	if err != nil {
		_ = removeTmp(tmp)
		return nil, err
	}
	s.tmp = tmp
	logf("started %s on %s (pid %d, data %s%s)", filepath.Base(bin), s.url[len("http://"):], s.pid(), dir, envNote(env))
	return s, nil
}

// spawnEdge starts `bin edge` for the primary at primaryURL on a free
// 127.0.0.1 port, with env after the tool's environment.
func spawnEdge(ctx context.Context, bin, primaryURL string, env []string, logf func(string, ...any)) (*spawned, error) {
	s, err := launch(ctx, bin, func(addr string) []string { return []string{"edge", "--primary", primaryURL, "--http", addr} }, env)
	if err != nil {
		return nil, err
	}
	logf("started %s edge on %s (pid %d)", filepath.Base(bin), s.url[len("http://"):], s.pid())
	return s, nil
}

// envNote lists env for the log, secrets left out.
func envNote(env []string) string {
	var shown []string
	for _, kv := range env {
		if k, _, _ := strings.Cut(kv, "="); strings.Contains(k, "SECRET") {
			kv = k + "=…"
		}
		shown = append(shown, kv)
	}
	if len(shown) == 0 {
		return ""
	}
	return ", with " + strings.Join(shown, " ")
}

// launch runs bin with args(addr) on a free 127.0.0.1 port, with env
// after the tool's environment, and returns once /api/health answers on
// it. A port taken between choosing and listening is retried twice.
func launch(ctx context.Context, bin string, args func(addr string) []string, env []string) (*spawned, error) {
	for attempt := 0; ; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			return nil, err
		}
		s := &spawned{url: "http://" + addr, out: &tailBuffer{max: 64 << 10}, done: make(chan struct{})}
		s.cmd = exec.Command(bin, args(addr)...)
		s.cmd.Env = append(os.Environ(), env...)
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
		if err := s.cmd.Start(); err != nil {
			return nil, err
		}
		go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
		if s.waitReady(ctx) {
			return s, nil
		}
		s.kill()
		if attempt >= 2 || !strings.Contains(s.out.String(), "address already in use") {
			return nil, fmt.Errorf("%s %s did not start:\n%s", bin, args(addr)[0], s.out.String())
		}
	}
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func (s *spawned) waitReady(ctx context.Context) bool {
	deadline := time.Now().Add(60 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case <-s.done:
			return false
		default:
		}
		resp, err := http.Get(s.url + "/api/health")
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

func (s *spawned) pid() int { return s.cmd.Process.Pid }

// stop ends the server with SIGTERM (SIGKILL after 20 s) and removes a
// temporary data directory.
func (s *spawned) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.done:
	case <-time.After(20 * time.Second):
		s.kill()
	}
	s.removeTmp()
}

func (s *spawned) kill() {
	select {
	case <-s.done:
		return
	default:
	}
	_ = s.cmd.Process.Kill()
	<-s.done
}

func (s *spawned) removeTmp() { _ = removeTmp(s.tmp) }

// removeTmp removes a temporary directory, if there is one.
func removeTmp(dir string) error {
	if dir == "" {
		return nil
	}
	return os.RemoveAll(dir)
}

// problems returns the server's output lines that report errors, panics
// or data races, if any.
func (s *spawned) problems() string {
	var bad []string
	for _, line := range strings.Split(s.out.String(), "\n") {
		l := strings.ToLower(line)
		if strings.Contains(l, "error") || strings.Contains(l, "panic") || strings.Contains(l, "data race") {
			bad = append(bad, strings.TrimSpace(line))
		}
	}
	if len(bad) > 5 {
		bad = append(bad[:5], fmt.Sprintf("… and %d more", len(bad)-5))
	}
	return strings.Join(bad, " | ")
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	max int
	buf []byte
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if over := len(b.buf) - b.max; over > 0 {
		b.buf = append(b.buf[:0], b.buf[over:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
