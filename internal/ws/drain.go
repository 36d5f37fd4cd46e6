package ws

import (
	"sync"
	"time"
)

// readBuf is the size of the buffers drains read into: several small
// frames per read, returned to the pool when the socket is drained.
const readBuf = 8 << 10

var readPool = sync.Pool{New: func() any { b := make([]byte, 0, readBuf); return &b }}

// drain reads a polled connection whose socket reported data: it reads
// until the socket has nothing more, handles each complete frame in
// order, keeps the start of an incomplete one for next time and re-arms
// the socket. When reading ends (the client closed, broke the protocol,
// or the connection is ending) it finishes the connection instead.
func (c *Conn) drain() {
	c.mu.Lock()
	if c.readStopped || c.reading {
		c.mu.Unlock()
		return
	}
	c.reading = true
	c.mu.Unlock()

	bp := readPool.Get().(*[]byte)
	buf := append((*bp)[:0], c.partial...)
	c.partial = nil
	err := c.readAll(&buf)
	if len(buf) > 0 {
		c.partial = append([]byte(nil), buf...) // the start of a frame: rare, small
	}
	if cap(buf) <= 2*readBuf {
		*bp = buf[:0]
		readPool.Put(bp)
	}

	c.mu.Lock()
	if c.ending {
		// Reading stops because the connection ends, whatever the last
		// read said (the socket may have been closed on the way).
		err = c.endReadErr
	}
	if err == nil {
		c.reading = false
		c.mu.Unlock()
		if err = c.poll.ctl(epollMod); err == nil {
			return
		}
		c.mu.Lock()
		if c.readStopped || c.reading {
			c.mu.Unlock() // the end came meanwhile and is being handled
			return
		}
	}
	c.reading = false
	c.readStopped = true
	c.mu.Unlock()
	c.afterRead(c.h, err)
}

// readAll reads and handles frames until the socket has nothing more
// (nil) or reading must end (the error). What is left in *buf is the
// start of a frame.
func (c *Conn) readAll(buf *[]byte) error {
	b := *buf
	defer func() { *buf = b }()
	need := 0 // bytes the frame at the start of b needs in all, if known
	for {
		if need > cap(b) { // a big frame: room for all of it
			b = append(b[:cap(b)], make([]byte, need-cap(b))...)[:len(b)]
		}
		n, err := c.poll.read(b[len(b):cap(b)])
		if n > 0 {
			c.lastRead.Store(time.Now().UnixNano())
			b = b[:len(b)+n]
			used, more, ferr := c.frames.consume(b, c, c.endingNow)
			b = b[:copy(b, b[used:])]
			need = more
			if ferr != nil {
				return ferr
			}
			if c.endingNow() {
				return errEnded
			}
			continue
		}
		if err == errAgain {
			return nil
		}
		return err
	}
}

// endingNow reports whether the connection is ending, so a drain stops
// after the frame it handled.
func (c *Conn) endingNow() bool { return c.ended.Load() }

// gotText and gotPing make Conn the frameSink of its own drains.
func (c *Conn) gotText(msg []byte) { c.h.Frame(msg) }

func (c *Conn) gotPing(payload []byte) {
	c.mu.Lock()
	c.pong, c.hasPong = append([]byte(nil), payload...), true // the writer may still hold the last one
	c.kickLocked()
	c.mu.Unlock()
}
