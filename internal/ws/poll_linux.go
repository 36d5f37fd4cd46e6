package ws

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
)

// Poller waits for client frames on many connections at once, with one
// epoll instance, so a connection whose client is quiet holds no
// goroutine and no read buffer: only its state. A goroutine is started
// when a socket has data; it reads what is there with non-blocking
// reads, handles the frames and exits. At thousands of idle connections
// that is most of their memory (a parked reader is a goroutine stack of
// 4–8 KiB and gorilla's read buffer).
//
// Each socket is registered one-shot: after it reports data it stays
// quiet until the goroutine that reads it has drained it and re-arms it,
// so a connection's frames are handled one at a time and in order, as
// with a reader goroutine. The epoll instance is itself watched by Go's
// network poller; no thread sits blocked in epoll_wait.
//
// Only plain TCP connections are polled (the descriptor must be read
// directly); others, such as TLS, get a reader goroutine.
type Poller struct {
	fd   int
	file *os.File        // fd, known to Go's network poller
	rc   syscall.RawConn // waits for fd to report events
	done chan struct{}

	mu    sync.Mutex
	conns map[uint64]*Conn // by registration
	next  uint64
}

// NewPoller starts a poller; Close stops it.
func NewPoller() (*Poller, error) {
	fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, err
	}
	// Non-blocking, so that os.NewFile hands it to Go's network poller.
	if err := syscall.SetNonblock(fd, true); err != nil {
		syscall.Close(fd)
		return nil, err
	}
	p := &Poller{fd: fd, file: os.NewFile(uintptr(fd), "epoll"), conns: map[uint64]*Conn{}, done: make(chan struct{})}
	if p.rc, err = p.file.SyscallConn(); err != nil {
		p.file.Close()
		return nil, err
	}
	go p.loop()
	return p, nil
}

// Close stops the poller. Connections still registered are not closed,
// but no longer read: close them first.
func (p *Poller) Close() error {
	err := p.file.Close() // wakes the loop, whose Read fails
	<-p.done
	return err
}

// polled is a connection's registration with a poller.
type polled struct {
	p   *Poller
	rc  syscall.RawConn // the socket
	fd  int
	key uint64
}

// prepare makes c's registration, not yet armed (ctl(epollAdd) arms
// it). It fails for connections that are not plain TCP sockets.
func (p *Poller) prepare(c *Conn) (*polled, error) {
	sc, ok := c.nc.(*net.TCPConn)
	if !ok {
		return nil, errors.New("ws: only TCP connections are polled")
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	reg := &polled{p: p, rc: rc, fd: -1}
	if err := rc.Control(func(fd uintptr) { reg.fd = int(fd) }); err != nil {
		return nil, err
	}
	p.mu.Lock()
	p.next++
	reg.key = p.next
	p.conns[reg.key] = c
	p.mu.Unlock()
	return reg, nil
}

const (
	epollAdd = syscall.EPOLL_CTL_ADD
	epollMod = syscall.EPOLL_CTL_MOD
)

// ctl adds or re-arms the socket: one report of data (or of the peer
// hanging up), then nothing until the next arm. It runs while the socket
// is held open, so the descriptor number cannot belong to another
// connection by then (a closed socket fails instead).
func (r *polled) ctl(op int) error {
	ev := syscall.EpollEvent{
		Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | syscall.EPOLLONESHOT,
		Fd:     int32(uint32(r.key)),
		Pad:    int32(uint32(r.key >> 32)),
	}
	var errno error
	if err := r.rc.Control(func(fd uintptr) { errno = syscall.EpollCtl(r.p.fd, op, int(fd), &ev) }); err != nil {
		return err
	}
	return errno
}

// remove takes the socket out of the poller; call it before the socket
// is closed, so its descriptor number cannot be reused while registered.
func (r *polled) remove() {
	_ = syscall.EpollCtl(r.p.fd, syscall.EPOLL_CTL_DEL, r.fd, nil)
	r.p.mu.Lock()
	delete(r.p.conns, r.key)
	r.p.mu.Unlock()
}

// errAgain: the socket has nothing more to read now.
var errAgain = errors.New("ws: would block")

// read reads what the socket has, without waiting: errAgain if nothing,
// io.EOF when the client has closed its side.
func (r *polled) read(b []byte) (int, error) {
	var n int
	var errno error
	err := r.rc.Read(func(fd uintptr) bool {
		for {
			n, errno = syscall.Read(int(fd), b)
			if errno != syscall.EINTR {
				return true
			}
		}
	})
	switch {
	case err != nil:
		return 0, err // the socket is closed
	case errno == syscall.EAGAIN:
		return 0, errAgain
	case errno != nil:
		return 0, errno
	case n <= 0:
		return 0, io.EOF
	}
	return n, nil
}

func (p *Poller) loop() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 128)
	ready := make([]*Conn, 0, len(events))
	// round takes the reported sockets and starts a reader for each. It
	// reports whether more may be waiting (a full batch of events).
	round := func(fd int) bool {
		n, err := syscall.EpollWait(fd, events, 0)
		if err != nil || n <= 0 {
			return false
		}
		ready = ready[:0]
		p.mu.Lock()
		for _, ev := range events[:n] {
			key := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			if c := p.conns[key]; c != nil {
				ready = append(ready, c)
			}
		}
		p.mu.Unlock()
		for i, c := range ready {
			go c.drain()
			ready[i] = nil
		}
		return n == len(events)
	}
	for {
		// Read calls round, and while it returns false parks until the
		// epoll instance has events, then calls it again.
		if err := p.rc.Read(func(fd uintptr) bool { return round(int(fd)) }); err != nil {
			return // closed
		}
	}
}
