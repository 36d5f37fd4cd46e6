// Package redistest runs a real redis-server for tests (and for the load
// tool's cluster runs): on a free loopback port, in a temporary
// directory, stopped when the test ends.
//
//	srv := redistest.Start(t)
//	client := redis.NewClient(&redis.Options{Addr: srv.Addr})
//	srv.Restart(t) // a crash and a restart on the same port, data gone
package redistest

import (
	"bufio"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Server is one redis-server process.
type Server struct {
	Addr string // 127.0.0.1:port
	URL  string // redis://127.0.0.1:port/0

	bin, dir string
	cmd      *exec.Cmd
}

// Start runs redis-server without persistence on a free port. It fails
// the test if Debian's redis-server is not installed (`make test`
// installs it).
func Start(tb testing.TB) *Server {
	tb.Helper()
	s, err := Launch(tb.TempDir())
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.Kill)
	return s
}

// Launch runs redis-server without persistence on a free port, with its
// configuration and log in dir, for a caller without a test (the load
// tool); the caller stops it with Kill.
func Launch(dir string) (*Server, error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return nil, errors.New("redis-server is not installed: `make test` installs it (apt-get install redis-server)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{Addr: addr, URL: "redis://" + addr + "/0", bin: bin, dir: dir}
	if err := s.start(); err != nil {
		return nil, err
	}
	return s, nil
}

// Pid is the running server's process id (0 after Kill).
func (s *Server) Pid() int {
	if s.cmd == nil || s.cmd.Process == nil {
		return 0
	}
	return s.cmd.Process.Pid
}

func (s *Server) start() error {
	_, port, _ := net.SplitHostPort(s.Addr)
	conf := strings.Join([]string{
		"bind 127.0.0.1",
		"port " + port,
		"dir " + s.dir,
		"save \"\"",
		"appendonly no",
		"daemonize no",
		"logfile " + filepath.Join(s.dir, "redis.log"),
	}, "\n") + "\n"
	path := filepath.Join(s.dir, "redis.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		return err
	}
	s.cmd = exec.Command(s.bin, path)
	if err := s.cmd.Start(); err != nil {
		return err
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		if ping(s.Addr) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(s.dir, "redis.log"))
			s.Kill()
			return fmt.Errorf("redis-server did not start on %s:\n%s", s.Addr, log)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// ping sends PING and expects PONG: the server accepts commands.
func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(time.Second))
	if _, err := c.Write([]byte("PING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("redis answered %q", line)
	}
	return nil
}

// Kill stops the server at once (SIGKILL): clients see their connections
// drop, as when Redis crashes.
func (s *Server) Kill() {
	if s.cmd == nil || s.cmd.Process == nil {
		return
	}
	_ = s.cmd.Process.Kill()
	_ = s.cmd.Wait()
	s.cmd = nil
}

// Restart kills the server and starts a new one on the same port, after
// down (its data is gone: nothing is persisted).
func (s *Server) Restart(tb testing.TB, down time.Duration) {
	tb.Helper()
	s.Kill()
	time.Sleep(down)
	if err := s.start(); err != nil {
		tb.Fatal(err)
	}
}

// Resume starts the server again after Kill, on the same port.
func (s *Server) Resume(tb testing.TB) {
	tb.Helper()
	if err := s.start(); err != nil {
		tb.Fatal(err)
	}
}
