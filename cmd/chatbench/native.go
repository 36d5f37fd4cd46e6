package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/gorilla/websocket"
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

// native drives pocketchat's WebSocket endpoint.
type native struct{}

// nativeFrame is the part of a server frame the tool looks at. message
// is an object in message and ack frames and a string in error frames.
type nativeFrame struct {
	Type    string          `json:"type"`
	ID      json.RawMessage `json:"id"`
	Code    string          `json:"code"`
	Message json.RawMessage `json:"message"`
}

// nativeMessage is the part of a message the tool needs. The text is kept
// raw: bench texts need no unescaping.
type nativeMessage struct {
	Seq  int64           `json:"seq"`
	Text json.RawMessage `json:"text"`
}

func (n *native) open(ctx context.Context, b *bench, c *conn) error {
	dialer := websocket.Dialer{
		NetDialContext:   (&net.Dialer{LocalAddr: &net.TCPAddr{IP: c.src}, Timeout: dialWait}).DialContext,
		HandshakeTimeout: dialWait,
		ReadBufferSize:   4096,
		WriteBufferSize:  512,
	}
	header := http.Header{"Authorization": {"Bearer " + c.user.Token}}
	ws, resp, err := dialer.DialContext(ctx, b.wsURL(), header)
	if err != nil {
		close(c.readerDone)
		if resp != nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
			return fmt.Errorf("%v: %d %s", err, resp.StatusCode, bytes.TrimSpace(body))
		}
		return err
	}
	c.wsc = ws
	joined := make(chan error, 1)
	go n.read(b, c, joined)

	frame := fmt.Appendf(nil, `{"type":"join","id":%s,"room":%q}`, joinID, b.rooms[c.room])
	_ = ws.SetWriteDeadline(time.Now().Add(writeWait))
	err = ws.WriteMessage(websocket.TextMessage, frame)
	if err == nil {
		select {
		case err = <-joined:
		case <-time.After(joinWait):
			err = errors.New("no joined reply")
		case <-ctx.Done():
			err = ctx.Err()
		}
	}
	if err != nil {
		n.close(c)
		return err
	}
	c.held = true
	return nil
}

// read reads c's frames until the connection ends: message events become
// deliveries, acks and errors answer c's sends.
func (n *native) read(b *bench, c *conn, joined chan<- error) {
	defer close(c.readerDone)
	var buf bytes.Buffer
	buf.Grow(4096)
	isJoined := false
	for {
		_, r, err := c.wsc.NextReader()
		if err == nil {
			buf.Reset()
			_, err = buf.ReadFrom(r)
		}
		if err != nil {
			if !isJoined {
				joined <- err
			}
			if !c.closing.Load() {
				c.closedBy = describeWSError(err)
			}
			return
		}
		now := b.now()
		var f nativeFrame
		if json.Unmarshal(buf.Bytes(), &f) != nil {
			continue
		}
		switch f.Type {
		case "message":
			var m nativeMessage
			if json.Unmarshal(f.Message, &m) != nil {
				continue
			}
			sender, sseq, sent, ok := parseText(unquote(m.Text), b.run)
			if !ok {
				c.others++
				continue
			}
			c.got = append(c.got, Delivery{Sender: sender, SSeq: sseq, Seq: m.Seq, Lat: now - sent})
			c.lastRecv = now
			c.count.Add(1)
		case "ack":
			if s := c.snd; s != nil {
				var m nativeMessage
				_ = json.Unmarshal(f.Message, &m)
				_, sseq, sent, ok := parseText(unquote(m.Text), b.run)
				if ok && sseq >= 1 && int(sseq) <= len(s.ackOK) && !s.ackOK[sseq-1] {
					s.ackOK[sseq-1] = true
					s.ackLat = append(s.ackLat, now-sent)
					s.lastAck = now
					s.acked.Add(1)
				}
				s.answered.Add(1)
			}
		case "error":
			if string(f.ID) == joinID {
				if !isJoined {
					isJoined = true
					joined <- fmt.Errorf("join refused: %s %s", f.Code, unquote(f.Message))
				}
				continue
			}
			if s := c.snd; s != nil {
				s.errs[f.Code]++
				s.answered.Add(1)
			}
		case "joined":
			if !isJoined {
				isJoined = true
				joined <- nil
			}
		}
	}
}

func (n *native) send(_ context.Context, b *bench, c *conn, sseq int) error {
	s := c.snd
	sent := b.now()
	s.text = formatText(s.text[:0], b.run, c.idx, sseq, sent)
	s.body = append(s.body[:0], `{"type":"send","id":`...)
	s.body = strconv.AppendInt(s.body, int64(sseq), 10)
	s.body = append(s.body, `,"room":"`...)
	s.body = append(s.body, b.rooms[c.room]...)
	s.body = append(s.body, `","text":"`...)
	s.body = append(s.body, s.text...)
	s.body = append(s.body, `"}`...)
	_ = c.wsc.SetWriteDeadline(time.Now().Add(writeWait))
	if err := c.wsc.WriteMessage(websocket.TextMessage, s.body); err != nil {
		return err
	}
	s.sent.Add(1)
	return nil
}

func (n *native) close(c *conn) {
	c.closing.Store(true)
	_ = c.wsc.WriteControl(websocket.CloseMessage,
		websocket.FormatCloseMessage(websocket.CloseNormalClosure, ""), time.Now().Add(time.Second))
	_ = c.wsc.Close()
}

// describeWSError names why the server ended a connection.
func describeWSError(err error) string {
	var ce *websocket.CloseError
	if errors.As(err, &ce) {
		return fmt.Sprintf("close %d %s", ce.Code, ce.Text)
	}
	return err.Error()
}

// unquote strips the quotes of a JSON string without unescaping (bench
// texts have nothing to unescape).
func unquote(raw []byte) []byte {
	if len(raw) >= 2 && raw[0] == '"' && raw[len(raw)-1] == '"' {
		return raw[1 : len(raw)-1]
	}
	return raw
}
