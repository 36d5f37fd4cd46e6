package main

import (
	"errors"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// poller reads the native connections' sockets with epoll, from one
// worker goroutine per CPU instead of one goroutine per connection.
//
// With a goroutine per connection, each frame that arrives costs a
// wake-up through Go's network poller and scheduler and two read calls
// (the second one finds nothing and parks the goroutine again): at 10,000
// connections getting a frame each now and then, that was most of the
// tool's CPU. Here each worker has an epoll instance of its own with many
// sockets in it (level-triggered), takes every ready one at once and
// reads each once; what is left in a socket is reported again by the
// next round. The epoll instance is itself pollable: an idle worker parks
// in Go's network poller on it (epoll_wait is only ever called with a
// zero timeout), so no thread sits blocked in a system call, which the
// runtime would have to work around with extra threads and wake-ups.
type poller struct {
	workers []*epoller
	next    atomic.Uint32
	count   *atomic.Int64 // deliveries, added per batch of events
	epoch   time.Time
	wg      sync.WaitGroup
}

// epoller is one worker: an epoll instance and the connections in it.
type epoller struct {
	fd    int
	file  *os.File        // fd, known to Go's network poller
	rc    syscall.RawConn // waits for fd to have events
	mu    sync.Mutex
	conns map[int32]*wsConn // by descriptor
}

// newPoller starts the workers. Deliveries are added to count; arrival
// times are nanoseconds since epoch.
func newPoller(count *atomic.Int64, epoch time.Time) (*poller, error) {
	p := &poller{count: count, epoch: epoch}
	for range max(1, runtime.GOMAXPROCS(0)) {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			p.close()
			return nil, err
		}
		// Non-blocking, so os.NewFile hands it to Go's network poller.
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(fd)
			p.close()
			return nil, err
		}
		ep := &epoller{fd: fd, file: os.NewFile(uintptr(fd), "epoll"), conns: map[int32]*wsConn{}}
		if ep.rc, err = ep.file.SyscallConn(); err != nil {
			ep.file.Close()
			p.close()
			return nil, err
		}
		p.workers = append(p.workers, ep)
		p.wg.Go(func() { p.work(ep) })
	}
	return p, nil
}

// attach hands c to a worker (round-robin). Frames already read during
// the handshake are handled first, then whatever the socket brings.
func (p *poller) attach(c *wsConn) error {
	ep := p.workers[int(p.next.Add(1))%len(p.workers)]
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("attach: connection closed")
	}
	if c.w > 0 {
		n, err := c.consume(int64(time.Since(p.epoch)))
		p.count.Add(int64(n))
		if err != nil {
			c.endLocked(err)
			return err
		}
	}
	ep.mu.Lock()
	ep.conns[int32(c.fd)] = c
	ep.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(c.fd)}
	if err := syscall.EpollCtl(ep.fd, syscall.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		ep.mu.Lock()
		delete(ep.conns, int32(c.fd))
		ep.mu.Unlock()
		return err
	}
	c.ep = ep
	return nil
}

// remove takes fd out of the worker, before it is closed.
func (ep *epoller) remove(fd int) {
	_ = syscall.EpollCtl(ep.fd, syscall.EPOLL_CTL_DEL, fd, nil)
	ep.mu.Lock()
	delete(ep.conns, int32(fd))
	ep.mu.Unlock()
}

func (p *poller) work(ep *epoller) {
	events := make([]syscall.EpollEvent, 256)
	ready := make([]*wsConn, 0, len(events))
	now := func() int64 { return int64(time.Since(p.epoch)) }
	// round takes the ready sockets and reads each once. It reports
	// whether more may be waiting right away: a full batch of events, or
	// a read that filled its buffer (level-triggered, that socket is
	// still ready, but no new event would wake the worker for it).
	round := func(fd int) (more bool) {
		n, err := syscall.EpollWait(fd, events, 0)
		if err != nil || n <= 0 {
			return false
		}
		ready = ready[:0]
		ep.mu.Lock()
		for _, ev := range events[:n] {
			if c := ep.conns[ev.Fd]; c != nil {
				ready = append(ready, c)
			}
		}
		ep.mu.Unlock()
		var delivered int
		for _, c := range ready {
			d, full := c.readable(now)
			delivered += d
			more = more || full
		}
		if delivered > 0 {
			p.count.Add(int64(delivered))
		}
		return more || n == len(events)
	}
	for {
		// Read calls the function, and while it returns false parks
		// until the epoll instance is readable (a new event is ready),
		// then calls it again. Each call handles what is ready, so a
		// quiet worker makes one epoll_wait per wake-up.
		if err := ep.rc.Read(func(fd uintptr) bool { return round(int(fd)) }); err != nil {
			return // the poller was closed
		}
	}
}

// close stops the workers and closes the epoll instances. Connections
// still attached are not closed.
func (p *poller) close() {
	for _, ep := range p.workers {
		ep.file.Close() // wakes its worker, whose Read fails
	}
	p.wg.Wait()
}
