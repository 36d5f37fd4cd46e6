package main

import (
	"encoding/binary"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// The tool's receive path in isolation: connections on loopback, a
// writer that plays the server (one message frame per connection in
// turn, paced, so most frames arrive alone, as with a server that
// commits one message at a time), and the reader under test. Reported:
// the whole process's CPU time per frame (the writer's share is the same
// for every reader). go test -run='^$' -bench=Receive ./cmd/chatbench/

const (
	recvConns = 2000
	recvRate  = 20_000 // frames per second, over all connections
)

// countingHandler counts message frames the way the native handler
// parses them.
type countingHandler struct {
	b *bench
	c *conn
}

func (h *countingHandler) classify(head []byte) frameNeed { return needWhole }
func (h *countingHandler) frame(p []byte, now int64) bool {
	ok := h.c.handleMessage(h.b, p, now)
	if len(h.c.got) > 1000 {
		h.c.got = h.c.got[:0]
	}
	return ok
}
func (h *countingHandler) ended(error) {}

// loopbackPairs returns n connected TCP pairs: the server ends and the
// raw client descriptors.
func loopbackPairs(b *testing.B, n int) ([]net.Conn, []net.Conn) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	servers := make([]net.Conn, 0, n)
	clients := make([]net.Conn, 0, n)
	for range n {
		c, err := loopbackDialer(net.IPv4(127, 0, 0, 1), time.Second).Dial("tcp", l.Addr().String())
		if err != nil {
			b.Fatal(err)
		}
		s, err := l.Accept()
		if err != nil {
			b.Fatal(err)
		}
		clients, servers = append(clients, c), append(servers, s)
	}
	b.Cleanup(func() {
		for i := range servers {
			servers[i].Close()
			clients[i].Close()
		}
	})
	return servers, clients
}

// serverFrame is a message frame as the server sends it: unmasked.
func serverFrame() []byte {
	p := []byte(testMessageFrame)
	f := []byte{0x81, 126, 0, 0}
	binary.BigEndian.PutUint16(f[2:], uint16(len(p)))
	return append(f, p...)
}

// writePaced writes frames frames, one per server connection in turn, at
// recvRate.
func writePaced(servers []net.Conn, frames int) {
	f := serverFrame()
	start := time.Now()
	for i := range frames {
		if i%100 == 0 {
			if d := time.Until(start.Add(time.Duration(i) * time.Second / recvRate)); d > 0 {
				time.Sleep(d)
			}
		}
		_, _ = servers[i%len(servers)].Write(f)
	}
}

func waitCount(b *testing.B, n *atomic.Int64, want int64) {
	deadline := time.Now().Add(30 * time.Second)
	for n.Load() < want {
		if time.Now().After(deadline) {
			b.Fatalf("received %d of %d", n.Load(), want)
		}
		time.Sleep(time.Millisecond)
	}
}

func BenchmarkReceive(b *testing.B) {
	bn := &bench{run: "1a2b3c4d"}
	frames := 4 * recvRate // 4 s per iteration

	b.Run("poller", func(b *testing.B) {
		servers, clients := loopbackPairs(b, recvConns)
		var count atomic.Int64
		p, err := newPoller(&count, time.Now())
		if err != nil {
			b.Fatal(err)
		}
		defer p.close()
		for _, nc := range clients {
			rc, _ := nc.(*net.TCPConn).SyscallConn()
			c := &wsConn{fd: -1, buf: make([]byte, wsReadBuffer)}
			_ = rc.Control(func(fd uintptr) { c.fd, _ = syscall.Dup(int(fd)) })
			_ = syscall.SetNonblock(c.fd, true)
			c.h = &countingHandler{b: bn, c: &conn{got: make([]Delivery, 0, 1024)}}
			if err := p.attach(c); err != nil {
				b.Fatal(err)
			}
			defer c.close()
		}
		var cpu time.Duration
		for i := 0; b.Loop(); i++ {
			t := processCPU()
			writePaced(servers, frames)
			waitCount(b, &count, int64((i+1)*frames))
			cpu += processCPU() - t
		}
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*frames)/1000, "cpu-µs/frame")
	})

	// A goroutine per connection reading through Go's network poller, as
	// the tool did before (with the same frame handling).
	b.Run("goroutines", func(b *testing.B) {
		servers, clients := loopbackPairs(b, recvConns)
		var count atomic.Int64
		var wg sync.WaitGroup
		for _, nc := range clients {
			h := &countingHandler{b: bn, c: &conn{got: make([]Delivery, 0, 1024)}}
			c := &wsConn{h: h, buf: make([]byte, wsReadBuffer)}
			wg.Go(func() {
				for {
					n, err := nc.Read(c.buf[c.w:])
					if err != nil {
						return
					}
					c.w += n
					d, _ := c.consume(0)
					count.Add(int64(d))
				}
			})
		}
		var cpu time.Duration
		for i := 0; b.Loop(); i++ {
			t := processCPU()
			writePaced(servers, frames)
			waitCount(b, &count, int64((i+1)*frames))
			cpu += processCPU() - t
		}
		b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N*frames)/1000, "cpu-µs/frame")
		for _, nc := range clients {
			nc.Close()
		}
		wg.Wait()
	})
}
