package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// Timeouts of the native connections.
const (
	// dialWait bounds connecting and the WebSocket handshake.
	dialWait = 30 * time.Second
	// joinWait bounds the wait for joined.
	joinWait = 30 * time.Second
	// writeWait bounds one frame write.
	writeWait = 10 * time.Second
)

// joinID is the request id of a connection's join (sends use 1, 2, …).
const joinID = "-1"

// native drives pocketchat's WebSocket endpoint. Its connections are read
// by one poller (poller.go), started with the first connection.
type native struct {
	poller *poller
}

// nativeHandler is one connection's side of the poller: what it does
// with each frame.
type nativeHandler struct {
	b        *bench
	c        *conn
	joined   chan error // the join's outcome, once
	isJoined bool
}

func (n *native) open(ctx context.Context, b *bench, c *conn) error {
	h := &nativeHandler{b: b, c: c, joined: make(chan error, 1)}
	header := http.Header{"Authorization": {"Bearer " + c.user.Token}}
	ws, err := dialWS(ctx, b.wsURL(c), c.src, header, dialWait, h)
	if err != nil {
		c.readerFinished(b)
		return err
	}
	c.wsc = ws
	if err := n.poller.attach(ws); err != nil {
		ws.close()
		c.readerFinished(b)
		return err
	}
	frame := fmt.Appendf(nil, `{"type":"join","id":%s,"room":%q}`, joinID, b.rooms[c.room])
	err = ws.writeText(frame)
	if err == nil {
		t := time.NewTimer(joinWait)
		select {
		case err = <-h.joined:
		case <-t.C:
			err = errors.New("no joined reply")
		case <-ctx.Done():
			err = ctx.Err()
		}
		t.Stop()
	}
	if err != nil {
		n.close(c)
		return err
	}
	c.held = true
	return nil
}

// classify: messages, acks and errors are read whole, joined by its head
// (which can be big: the room's history and who is online); presence,
// typing, hello and the rest are dropped unread. A frame whose type does
// not come first (the server's encoder writes it first) is read whole to
// be safe.
func (h *nativeHandler) classify(head []byte) frameNeed {
	rest, ok := bytes.CutPrefix(head, []byte(`{"type":"`))
	if !ok {
		return needWhole
	}
	j := bytes.IndexByte(rest, '"')
	if j < 0 {
		return needWhole
	}
	switch string(rest[:j]) {
	case "message", "ack", "error":
		return needWhole
	case "joined":
		return needHead
	}
	return needNone
}

// frame handles a message event, an ack, an error or joined.
func (h *nativeHandler) frame(frame []byte, now int64) bool {
	c, b := h.c, h.b
	switch string(frameType(frame)) {
	case "message":
		return c.handleMessage(b, frame, now)
	case "ack":
		c.handleAck(b, frame, now)
	case "error":
		id := jsonMember(frame, "id")
		code := string(jsonString(jsonMember(frame, "code")))
		if string(id) == joinID {
			if !h.isJoined {
				h.isJoined = true
				h.joined <- fmt.Errorf("join refused: %s %s", code, jsonString(jsonMember(frame, "message")))
			}
			return false
		}
		if s := c.snd; s != nil {
			s.errs[code]++
			s.answered.Add(1)
			b.release(1)
		}
	case "joined":
		if !h.isJoined {
			h.isJoined = true
			h.joined <- nil
		}
	}
	return false
}

// ended: the server closed the connection, or it broke.
func (h *nativeHandler) ended(err error) {
	if !h.isJoined {
		h.isJoined = true
		h.joined <- err
	}
	if !h.c.closing.Load() {
		h.c.closedBy = describeWSError(err)
	}
	h.c.readerFinished(h.b)
}

// handleMessage records a message event as a delivery; false if it is
// not one of this run's.
func (c *conn) handleMessage(b *bench, frame []byte, now int64) bool {
	rawSeq, rawText := jsonMembers2(jsonMemberFrom(frame, "message"), "seq", "text")
	seq, okSeq := jsonInt(rawSeq)
	sender, sseq, sent, ok := parseText(jsonString(rawText), b.run)
	if !ok || !okSeq {
		c.others++
		return false
	}
	c.got = append(c.got, Delivery{Sender: sender, SSeq: sseq, Seq: seq, Lat: now - sent})
	c.lastRecv = now
	return true
}

// handleAck records the ack of one of c's messages.
func (c *conn) handleAck(b *bench, frame []byte, now int64) {
	s := c.snd
	if s == nil {
		return
	}
	_, sseq, sent, ok := parseText(jsonString(jsonMember(jsonMemberFrom(frame, "message"), "text")), b.run)
	if ok && sseq >= 1 && int(sseq) <= len(s.ackOK) && !s.ackOK[sseq-1] {
		s.ackOK[sseq-1] = true
		s.ackLat = append(s.ackLat, now-sent)
		s.lastAck = now
		s.acked.Add(1)
	}
	s.answered.Add(1)
	b.release(1)
}

func (n *native) send(_ context.Context, b *bench, c *conn, sseq int, due int64) error {
	s := c.snd
	s.text = formatText(s.text[:0], b.run, c.idx, sseq, due)
	s.body = append(s.body[:0], `{"type":"send","id":`...)
	s.body = strconv.AppendInt(s.body, int64(sseq), 10)
	s.body = append(s.body, `,"room":"`...)
	s.body = append(s.body, b.rooms[c.room]...)
	s.body = append(s.body, `","text":"`...)
	s.body = append(s.body, s.text...)
	s.body = append(s.body, `"}`...)
	// Counted before the write: the ack may be read before it returns.
	s.sent.Add(1)
	if err := c.wsc.writeText(s.body); err != nil {
		s.sent.Add(-1)
		return err
	}
	return nil
}

func (n *native) close(c *conn) {
	c.closing.Store(true)
	c.wsc.close()
	c.readerFinished(nil)
}

// describeWSError names why the server ended a connection.
func describeWSError(err error) string {
	var ce *wsCloseError
	if errors.As(err, &ce) {
		return ce.Error()
	}
	return err.Error()
}
