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
	s := &spawned{}
	if dir == "" {
		tmp, err := os.MkdirTemp("", "chatbench-data-")
		if err != nil {
			return nil, err
		}
		dir, s.tmp = tmp, tmp
	}
	up := exec.CommandContext(ctx, bin, "superuser", "upsert", suEmail, suPassword, "--dir", dir, "--dev=false")
	if out, err := up.CombinedOutput(); err != nil {
		s.removeTmp()
		return nil, fmt.Errorf("%s superuser upsert: %v\n%s", bin, err, out)
	}
	for attempt := 0; ; attempt++ {
		addr, err := freeAddr()
		if err != nil {
			s.removeTmp()
			return nil, err
		}
		s.url = "http://" + addr
		s.out = &tailBuffer{max: 64 << 10}
		s.cmd = exec.Command(bin, "serve", "--http", addr, "--dir", dir, "--dev=false")
		s.cmd.Env = os.Environ()
		if hooks != "" {
			s.cmd.Env = append(s.cmd.Env, "CHAT_HOOKS_DIR="+hooks)
		}
		s.cmd.Env = append(s.cmd.Env, env...)
		s.cmd.Stdout, s.cmd.Stderr = s.out, s.out
		if err := s.cmd.Start(); err != nil {
			s.removeTmp()
			return nil, err
		}
		s.done = make(chan struct{})
		go func(cmd *exec.Cmd, done chan struct{}) { _ = cmd.Wait(); close(done) }(s.cmd, s.done)
		if s.waitReady(ctx) {
			extra := ""
			if len(env) > 0 {
				extra = ", with " + strings.Join(env, " ")
			}
			logf("started %s on %s (pid %d, data %s%s)", filepath.Base(bin), addr, s.pid(), dir, extra)
			return s, nil
		}
		s.kill()
		if attempt >= 2 || !strings.Contains(s.out.String(), "address already in use") {
			s.removeTmp()
			return nil, fmt.Errorf("%s did not start:\n%s", bin, s.out.String())
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

func (s *spawned) removeTmp() {
	if s.tmp != "" {
		_ = os.RemoveAll(s.tmp)
	}
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
