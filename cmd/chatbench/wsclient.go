package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"sync"
	"syscall"
	"time"
)

// wsConn is the client side of one WebSocket connection, as small as the
// tool needs: no extensions, text frames out, frames in read by a poller
// (poller.go) straight from the socket into one buffer and handed to the
// connection's handler in place.
//
// A general client (gorilla/websocket was used before) costs a goroutine
// per connection, an allocation and a copy per message, plus a JSON
// decode by the caller. With 10,000 connections each getting a frame now
// and then, most of the tool's CPU went into waking those goroutines (two
// read calls and a trip through the scheduler per frame); with 100,000
// frames a second on the same 2 cores as the server, the tool must stay
// far cheaper than what it measures.
//
// After the handshake (done through net.Conn, for its deadlines) the
// socket is taken out of Go's network poller: its descriptor is
// duplicated and the net.Conn closed, so only the tool's poller watches
// it and Go's scheduler is not woken for its frames.
type wsConn struct {
	h frameHandler

	wmu     sync.Mutex // the sender and the poller (pongs) both write
	wbuf    []byte     // frame being written, under wmu
	wclosed bool       // under wmu

	// Read side: the poller's worker holds mu while it reads fd and
	// handles frames; close takes it to remove fd from the poller before
	// closing it, so a descriptor is never read after close (and never
	// read again under another connection once the number is reused).
	mu     sync.Mutex
	fd     int
	ep     *epoller // the poller worker fd is registered with; nil before attach
	closed bool
	buf    []byte // bytes read and not yet handled: buf[r:w]
	r, w   int
	skip   int    // bytes of an unwanted frame still to drop
	frag   []byte // a fragmented message being put together (rare)
}

// frameHandler receives a connection's messages. Both methods are called
// on the poller's worker with the connection's read lock held: they must
// not block.
type frameHandler interface {
	// classify says, from a message's first bytes (up to 64), what the
	// handler needs of it.
	classify(head []byte) frameNeed
	// frame handles a message (its head only for needHead), valid until
	// frame returns; it reports whether the message was a delivery.
	frame(p []byte, now int64) bool
	// ended is called once when the connection ends other than by close:
	// the server closed it (err is a *wsCloseError) or it broke.
	ended(err error)
}

// frameNeed is what a handler needs of a message.
type frameNeed int

const (
	needNone  frameNeed = iota // drop it unread
	needHead                   // its first bytes suffice (the type)
	needWhole                  // all of it
)

// headLen is how much of a message classify sees.
const headLen = 64

// wsReadBuffer is each connection's read buffer to start with: a frame up
// to this size is handled where the kernel put it. A connection whose
// reads fill it (the server writes it many frames at once) gets a bigger
// one, up to wsBusyBuffer, so it reads more frames per system call;
// connections that get a frame now and then (most of 20,000) stay small.
const (
	wsReadBuffer = 8 << 10
	wsBusyBuffer = 64 << 10
)

// wsMaxMessage bounds a message the tool reads whole.
const wsMaxMessage = 16 << 20

// wsGUID is RFC 6455's key suffix for Sec-WebSocket-Accept.
const wsGUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

// wsCloseError is a close frame from the server.
type wsCloseError struct {
	Code int
	Text string
}

func (e *wsCloseError) Error() string { return fmt.Sprintf("close %d %s", e.Code, e.Text) }

// wsHandshakeError is a refused upgrade.
type wsHandshakeError struct {
	Status int
	Body   string
}

func (e *wsHandshakeError) Error() string {
	return fmt.Sprintf("websocket upgrade refused: %d %s", e.Status, e.Body)
}

// loopbackDialer dials from the source address src. The port is picked by
// connect(), not bind() (IP_BIND_ADDRESS_NO_PORT), so a source address
// serves as many connections as there are ports per destination, and
// ports still in TIME_WAIT from an earlier run do not block a bind.
func loopbackDialer(src net.IP, timeout time.Duration) *net.Dialer {
	return &net.Dialer{
		LocalAddr: &net.TCPAddr{IP: src},
		Timeout:   timeout,
		Control: func(network, address string, rc syscall.RawConn) error {
			if network != "tcp4" {
				return nil
			}
			// An older kernel without the option still works, with
			// fewer ports per source address.
			return rc.Control(func(fd uintptr) {
				_ = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
			})
		},
	}
}

// ipBindAddressNoPort is Linux's IP_BIND_ADDRESS_NO_PORT (since 4.2); the
// syscall package does not name it.
const ipBindAddressNoPort = 24

// dialWS connects to the ws:// URL from src and upgrades with header added
// to the request; h gets the connection's messages once it is attached
// to a poller. The handshake is bounded by timeout and ctx.
func dialWS(ctx context.Context, rawURL string, src net.IP, header http.Header, timeout time.Duration, h frameHandler) (*wsConn, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nc, err := loopbackDialer(src, timeout).DialContext(ctx, "tcp", u.Host)
	if err != nil {
		return nil, err
	}
	defer nc.Close() // the socket lives on in the duplicate below
	deadline, _ := ctx.Deadline()
	_ = nc.SetDeadline(deadline)
	stop := context.AfterFunc(ctx, func() { _ = nc.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	var keyRaw [16]byte
	_, _ = rand.Read(keyRaw[:])
	key := base64.StdEncoding.EncodeToString(keyRaw[:])
	var req bytes.Buffer
	fmt.Fprintf(&req, "GET %s HTTP/1.1\r\nHost: %s\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"+
		"Sec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n", u.RequestURI(), u.Host, key)
	for k, vs := range header {
		for _, v := range vs {
			fmt.Fprintf(&req, "%s: %s\r\n", k, v)
		}
	}
	req.WriteString("\r\n")
	if _, err := nc.Write(req.Bytes()); err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(nc, wsReadBuffer)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return nil, fmt.Errorf("websocket handshake: %w", err)
	}
	if resp.StatusCode != http.StatusSwitchingProtocols {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return nil, &wsHandshakeError{resp.StatusCode, string(bytes.TrimSpace(body))}
	}
	if got, want := resp.Header.Get("Sec-WebSocket-Accept"), wsAccept(key); got != want {
		return nil, fmt.Errorf("websocket handshake: Sec-WebSocket-Accept %q, want %q", got, want)
	}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); ext != "" {
		return nil, fmt.Errorf("websocket handshake: unrequested extension %q", ext)
	}

	c := &wsConn{h: h, fd: -1, buf: make([]byte, wsReadBuffer)}
	// Frames the server sent right after its answer (hello) may already
	// sit in the handshake's buffer.
	if n := br.Buffered(); n > 0 {
		p, _ := br.Peek(n)
		if n > len(c.buf) {
			c.buf = make([]byte, n)
		}
		c.w = copy(c.buf, p)
	}
	rc, err := nc.(*net.TCPConn).SyscallConn()
	if err != nil {
		return nil, err
	}
	var derr error
	if err := rc.Control(func(fd uintptr) { c.fd, derr = syscall.Dup(int(fd)) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("dup: %w", derr)
	}
	syscall.CloseOnExec(c.fd)
	if err := syscall.SetNonblock(c.fd, true); err != nil {
		syscall.Close(c.fd)
		return nil, err
	}
	return c, nil
}

func wsAccept(key string) string {
	h := sha1.Sum([]byte(key + wsGUID))
	return base64.StdEncoding.EncodeToString(h[:])
}

// WebSocket opcodes.
const (
	opContinuation = 0x0
	opText         = 0x1
	opBinary       = 0x2
	opClose        = 0x8
	opPing         = 0x9
	opPong         = 0xA
)

// readable is called by the poller when fd has data (or an error): it
// reads once and handles every complete frame. It returns the deliveries
// among them, and whether the read filled the buffer (more may be
// waiting in the socket).
func (c *wsConn) readable(now func() int64) (delivered int, full bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return 0, false
	}
	if c.w == len(c.buf) {
		c.makeRoom(len(c.buf) + 1)
	}
	n, err := syscall.Read(c.fd, c.buf[c.w:])
	if err == syscall.EAGAIN || err == syscall.EINTR {
		return 0, false
	}
	if n == 0 && err == nil {
		err = io.EOF
	}
	if err != nil {
		c.endLocked(err)
		return 0, false
	}
	full = c.w+n == len(c.buf)
	if full && len(c.buf) < wsBusyBuffer {
		defer c.grow() // after consume, which may leave less to copy
	}
	c.w += n
	delivered, err = c.consume(now())
	if err != nil {
		c.endLocked(err)
		return delivered, false
	}
	return delivered, full
}

// endLocked ends the connection after a read error or a close frame from
// the server, with c.mu held.
func (c *wsConn) endLocked(err error) {
	c.unregisterLocked()
	c.h.ended(err)
}

// unregisterLocked removes fd from the poller and closes it, with c.mu
// held; writes fail from then on.
func (c *wsConn) unregisterLocked() {
	if c.closed {
		return
	}
	c.closed = true
	if c.ep != nil {
		c.ep.remove(c.fd)
	}
	c.wmu.Lock()
	c.wclosed = true
	syscall.Close(c.fd)
	c.wmu.Unlock()
}

// consume handles the complete frames in buf[r:w] and returns the
// deliveries among them.
func (c *wsConn) consume(now int64) (delivered int, err error) {
	defer c.compact()
	for {
		if c.skip > 0 {
			k := min(c.skip, c.w-c.r)
			c.r += k
			c.skip -= k
			if c.skip > 0 {
				return delivered, nil
			}
		}
		avail := c.buf[c.r:c.w]
		fin, op, hlen, plen, err := parseFrameHeader(avail)
		if err != nil {
			return delivered, err
		}
		if hlen == 0 {
			return delivered, nil // the header is not all there yet
		}
		switch op {
		case opPing, opPong, opClose:
			if plen > 125 || !fin {
				return delivered, errors.New("websocket: bad control frame")
			}
			if len(avail) < hlen+plen {
				return delivered, nil
			}
			body := avail[hlen : hlen+plen]
			c.r += hlen + plen
			switch op {
			case opPing:
				c.tryWriteControl(opPong, body)
			case opClose:
				ce := &wsCloseError{Code: 1005}
				if len(body) >= 2 {
					ce.Code, ce.Text = int(binary.BigEndian.Uint16(body)), string(body[2:])
				}
				c.tryWriteControl(opClose, body[:min(len(body), 2)])
				return delivered, ce
			}
			continue
		case opText, opBinary, opContinuation:
		default:
			return delivered, fmt.Errorf("websocket: unknown opcode %d", op)
		}
		if plen > wsMaxMessage || len(c.frag)+plen > wsMaxMessage {
			return delivered, fmt.Errorf("websocket: message over %d bytes", wsMaxMessage)
		}
		if (op == opContinuation) != (c.frag != nil) {
			return delivered, errors.New("websocket: bad fragmentation")
		}
		if !fin || c.frag != nil { // a fragment: gather the message (rare)
			if len(avail) < hlen+plen {
				c.makeRoom(hlen + plen)
				return delivered, nil
			}
			if c.frag == nil {
				c.frag = []byte{}
			}
			c.frag = append(c.frag, avail[hlen:hlen+plen]...)
			c.r += hlen + plen
			if fin {
				msg := c.frag
				c.frag = nil
				if need := c.h.classify(msg[:min(len(msg), headLen)]); need != needNone && c.h.frame(msg, now) {
					delivered++
				}
			}
			continue
		}
		// A whole message in one frame, the usual case.
		head := min(plen, headLen)
		if len(avail) < hlen+head {
			return delivered, nil
		}
		switch c.h.classify(avail[hlen : hlen+head]) {
		case needNone:
			c.r += hlen
			c.skip = plen
			continue
		case needHead:
			if c.h.frame(avail[hlen:hlen+head], now) {
				delivered++
			}
			c.r += hlen
			c.skip = plen
			continue
		}
		if len(avail) < hlen+plen {
			c.makeRoom(hlen + plen)
			return delivered, nil
		}
		if c.h.frame(avail[hlen:hlen+plen], now) {
			delivered++
		}
		c.r += hlen + plen
	}
}

// parseFrameHeader reads a frame header from the server (never masked);
// hlen is 0 if b does not hold all of it yet.
func parseFrameHeader(b []byte) (fin bool, op byte, hlen, plen int, err error) {
	if len(b) < 2 {
		return false, 0, 0, 0, nil
	}
	fin, op = b[0]&0x80 != 0, b[0]&0x0f
	if b[0]&0x70 != 0 {
		return false, 0, 0, 0, errors.New("websocket: reserved bits set")
	}
	if b[1]&0x80 != 0 {
		return false, 0, 0, 0, errors.New("websocket: masked frame from the server")
	}
	switch l := b[1] & 0x7f; l {
	case 126:
		if len(b) < 4 {
			return false, 0, 0, 0, nil
		}
		return fin, op, 4, int(binary.BigEndian.Uint16(b[2:])), nil
	case 127:
		if len(b) < 10 {
			return false, 0, 0, 0, nil
		}
		u := binary.BigEndian.Uint64(b[2:])
		if u > wsMaxMessage {
			return false, 0, 0, 0, fmt.Errorf("websocket: frame of %d bytes", u)
		}
		return fin, op, 10, int(u), nil
	default:
		return fin, op, 2, int(l), nil
	}
}

// makeRoom makes buf hold at least n unread bytes (the bytes of a frame
// that is not all there yet), moving them to the front or growing buf.
func (c *wsConn) makeRoom(n int) {
	if c.r > 0 {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
	if n > len(c.buf) {
		nb := make([]byte, max(n, 2*len(c.buf)))
		copy(nb, c.buf[:c.w])
		c.buf = nb
	}
}

// grow doubles the read buffer of a busy connection, up to wsBusyBuffer.
func (c *wsConn) grow() {
	if !c.closed && len(c.buf) < wsBusyBuffer {
		nb := make([]byte, min(2*len(c.buf), wsBusyBuffer))
		c.w = copy(nb, c.buf[c.r:c.w])
		c.r = 0
		c.buf = nb
	}
}

// compact moves unread bytes to the front, and gives a buffer grown past
// wsBusyBuffer for a big message back once it is handled (a room's
// connections all get the same big frames: thousands of such buffers
// would add up).
func (c *wsConn) compact() {
	if c.r == c.w {
		c.r, c.w = 0, 0
		if len(c.buf) > wsBusyBuffer {
			c.buf = make([]byte, wsReadBuffer)
		}
		return
	}
	if c.r > len(c.buf)/2 {
		c.w = copy(c.buf, c.buf[c.r:c.w])
		c.r = 0
	}
}

// tryWriteControl answers a ping or a close from the poller's worker,
// which must not wait: if the sender is writing (or the socket buffer is
// full) the answer is dropped. A missed pong is harmless: the server only
// needs some frame within its pong wait, and it pings again.
func (c *wsConn) tryWriteControl(op byte, body []byte) {
	if !c.wmu.TryLock() {
		return
	}
	defer c.wmu.Unlock()
	if !c.wclosed {
		_ = c.writeLocked(op, body, time.Time{})
	}
}

// writeText writes one text frame.
func (c *wsConn) writeText(p []byte) error {
	return c.writeFrame(opText, p, time.Now().Add(writeWait))
}

// writeFrame writes one masked frame (clients must mask) with a fresh
// masking key.
func (c *wsConn) writeFrame(op byte, p []byte, deadline time.Time) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.wclosed {
		return net.ErrClosed
	}
	return c.writeLocked(op, p, deadline)
}

// writeLocked writes a frame with wmu held; a zero deadline means one
// attempt only.
func (c *wsConn) writeLocked(op byte, p []byte, deadline time.Time) error {
	b := append(c.wbuf[:0], 0x80|op)
	switch n := len(p); {
	case n < 126:
		b = append(b, 0x80|byte(n))
	case n <= 0xffff:
		b = append(b, 0x80|126, byte(n>>8), byte(n))
	default:
		b = append(b, 0x80|127)
		b = binary.BigEndian.AppendUint64(b, uint64(n))
	}
	key := mrand.Uint32()
	b = binary.BigEndian.AppendUint32(b, key)
	start := len(b)
	b = append(b, p...)
	maskBytes(b[start:], key)
	c.wbuf = b
	return writeAll(c.fd, b, deadline)
}

// writeAll writes b to the non-blocking socket fd. A full send buffer
// (the server is not reading) is waited out in short sleeps until the
// deadline: it does not happen with a server that keeps up, and the
// sleeps keep the common path free of a poller round trip.
func writeAll(fd int, b []byte, deadline time.Time) error {
	for len(b) > 0 {
		n, err := syscall.Write(fd, b)
		switch {
		case err == syscall.EAGAIN:
			if deadline.IsZero() || time.Now().After(deadline) {
				return errors.New("write: timed out (the server does not read)")
			}
			time.Sleep(time.Millisecond)
			continue
		case err == syscall.EINTR:
			continue
		case err != nil:
			return err
		}
		b = b[n:]
	}
	return nil
}

// maskBytes XORs p with the big-endian masking key, repeated.
func maskBytes(p []byte, key uint32) {
	var kb [8]byte
	binary.BigEndian.PutUint32(kb[:], key)
	binary.BigEndian.PutUint32(kb[4:], key)
	k := binary.LittleEndian.Uint64(kb[:])
	i := 0
	for ; i+8 <= len(p); i += 8 {
		binary.LittleEndian.PutUint64(p[i:], binary.LittleEndian.Uint64(p[i:])^k)
	}
	for ; i < len(p); i++ {
		p[i] ^= kb[i%8]
	}
}

// close sends a normal close frame and closes the socket; the handler's
// ended is not called.
func (c *wsConn) close() {
	_ = c.writeFrame(opClose, []byte{0x03, 0xe8}, time.Now().Add(time.Second))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.unregisterLocked()
}
