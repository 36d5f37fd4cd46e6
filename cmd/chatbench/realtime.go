package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// Timeouts of the pocketbase-realtime mode.
const (
	// connectWait bounds opening the SSE stream, reading PB_CONNECT and
	// posting the subscription.
	connectWait = 30 * time.Second
	// createWait bounds one record create request.
	createWait = 60 * time.Second
)

// realtime does what a plain PocketBase app does: subscribers on the SSE
// endpoint /api/realtime with a filter on their room, like the JS SDK's
// pb.collection('messages').subscribe('*', cb, {filter}), and senders
// creating records through REST.
type realtime struct {
	// clients has one HTTP client per source address. PocketBase refuses a
	// subscription posted from another IP than the stream's, so a
	// connection's stream and its requests go through the same one.
	clients []*http.Client
}

func newRealtime(b *bench) *realtime {
	r := &realtime{}
	for i := range b.cfg.Sources {
		src := sourceIP(i)
		if net.ParseIP(hostOf(b.base)).To4() == nil {
			src = net.IPv6loopback
		}
		r.clients = append(r.clients, &http.Client{Transport: &http.Transport{
			DialContext:         loopbackDialer(src, dialWait).DialContext,
			MaxIdleConnsPerHost: 4096,
			DisableCompression:  true,
			IdleConnTimeout:     90 * time.Second,
		}})
	}
	return r
}

// subscriptionTopic is the topic the JS SDK posts for
// collection('messages').subscribe('*', cb, {filter: `room="ID"`}): the
// collection and record ("*"), then the options as URL-encoded JSON.
func subscriptionTopic(room string) string {
	opts, _ := json.Marshal(map[string]any{"query": map[string]string{"filter": fmt.Sprintf("room=%q", room)}})
	return "messages/*?options=" + encodeURIComponent(string(opts))
}

// encodeURIComponent escapes s as JavaScript's encodeURIComponent does
// (the SDK's encoding): everything but letters, digits and -_.!~*'().
func encodeURIComponent(s string) string {
	const hex = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-_.!~*'()", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(hex[c>>4])
		b.WriteByte(hex[c&15])
	}
	return b.String()
}

func (r *realtime) open(ctx context.Context, b *bench, c *conn) error {
	client := r.clients[c.srcIdx]
	streamCtx, stop := context.WithCancel(b.ctx)
	c.stop = stop
	fail := func(err error) error {
		stop()
		c.readerFinished(nil)
		return err
	}
	// Bound the set-up; cancelled once the subscription is in place.
	setupTimer := time.AfterFunc(connectWait, stop)
	req, _ := http.NewRequestWithContext(streamCtx, "GET", b.base+"/api/realtime", nil)
	resp, err := client.Do(req)
	if err != nil {
		return fail(err)
	}
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		resp.Body.Close()
		return fail(fmt.Errorf("GET /api/realtime: %d %s", resp.StatusCode, bytes.TrimSpace(body)))
	}
	br := bufio.NewReaderSize(resp.Body, 16<<10)
	clientID, err := readConnect(br)
	if err == nil {
		err = r.subscribe(ctx, client, b.base, c.user.Token, clientID, subscriptionTopic(b.rooms[c.room]))
	}
	if err == nil && !setupTimer.Stop() {
		err = errors.New("timed out")
	}
	if err != nil {
		resp.Body.Close()
		return fail(err)
	}
	c.held = true
	go r.read(b, c, br, resp.Body)
	return nil
}

// readConnect reads the stream's first event, PB_CONNECT, and returns the
// client id.
func readConnect(br *bufio.Reader) (string, error) {
	var name string
	var data []byte
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return "", fmt.Errorf("reading PB_CONNECT: %w", err)
		}
		line = bytes.TrimRight(line, "\r\n")
		switch {
		case len(line) == 0 && name != "":
			if name != "PB_CONNECT" {
				return "", fmt.Errorf("first event %q, want PB_CONNECT", name)
			}
			var ev struct {
				ClientID string `json:"clientId"`
			}
			if err := json.Unmarshal(data, &ev); err != nil || ev.ClientID == "" {
				return "", fmt.Errorf("bad PB_CONNECT data %q", data)
			}
			return ev.ClientID, nil
		case bytes.HasPrefix(line, []byte("event:")):
			name = string(bytes.TrimSpace(line[len("event:"):]))
		case bytes.HasPrefix(line, []byte("data:")):
			data = append(data[:0], line[len("data:"):]...)
		}
	}
}

// subscribe posts the connection's subscriptions as its user.
func (r *realtime) subscribe(ctx context.Context, client *http.Client, base, token, clientID, topic string) error {
	body, _ := json.Marshal(map[string]any{"clientId": clientID, "subscriptions": []string{topic}})
	ctx, cancel := context.WithTimeout(ctx, connectWait)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, "POST", base+"/api/realtime", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", token)
	resp, err := client.Do(req)
	if err != nil {
		return fmt.Errorf("POST /api/realtime: %w", err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("POST /api/realtime: %d %s", resp.StatusCode, bytes.TrimSpace(data))
	}
	return nil
}

// read reads c's stream until it ends: each created message is a delivery.
func (r *realtime) read(b *bench, c *conn, br *bufio.Reader, body io.Closer) {
	defer c.readerFinished(nil)
	defer body.Close()
	var pending int64 // deliveries not yet added to b.received
	defer func() { b.received.Add(pending) }()
	for {
		if pending > 0 && br.Buffered() == 0 {
			b.received.Add(pending)
			pending = 0
		}
		line, err := br.ReadSlice('\n')
		for err == bufio.ErrBufferFull { // too long to be ours: skip it
			_, err = br.ReadSlice('\n')
			line = nil
		}
		if err != nil {
			if !c.closing.Load() {
				c.closedBy = "stream ended: " + err.Error()
			}
			return
		}
		data, ok := bytes.CutPrefix(line, []byte("data:"))
		if !ok {
			continue
		}
		now := b.now()
		if string(jsonString(jsonMember(data, "action"))) != "create" {
			continue
		}
		rawSeq, rawText := jsonMembers2(jsonMemberFrom(data, "record"), "seq", "text")
		seq, okSeq := jsonInt(rawSeq)
		sender, sseq, sent, ok := parseText(jsonString(rawText), b.run)
		if !ok || !okSeq {
			c.others++
			continue
		}
		c.got = append(c.got, Delivery{Sender: sender, SSeq: sseq, Seq: seq, Lat: now - sent})
		c.lastRecv = now
		pending++
	}
}

// send creates one message record as c's user; a 2xx answer is the ack.
func (r *realtime) send(ctx context.Context, b *bench, c *conn, sseq int, due int64) error {
	s := c.snd
	s.text = formatText(s.text[:0], b.run, c.idx, sseq, due)
	s.body = append(s.body[:0], `{"room":"`...)
	s.body = append(s.body, b.rooms[c.room]...)
	s.body = append(s.body, `","author":"`...)
	s.body = append(s.body, c.user.ID...)
	s.body = append(s.body, `","text":"`...)
	s.body = append(s.body, s.text...)
	s.body = append(s.body, `"}`...)
	rctx, cancel := context.WithTimeout(ctx, createWait)
	defer cancel()
	req, _ := http.NewRequestWithContext(rctx, "POST", b.base+"/api/collections/messages/records", bytes.NewReader(s.body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", c.user.Token)
	s.sent.Add(1)
	resp, err := r.clients[c.srcIdx].Do(req)
	now := b.now()
	if err != nil {
		s.errs["request failed"]++
		s.answered.Add(1)
		if ctx.Err() != nil {
			return ctx.Err() // the run is over
		}
		b.release(1)
		return nil // go on after a failed request
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	b.release(1)
	if resp.StatusCode/100 == 2 {
		s.ackOK[sseq-1] = true
		s.ackLat = append(s.ackLat, now-due)
		s.lastAck = now
		s.acked.Add(1)
	} else {
		s.errs[fmt.Sprintf("http %d", resp.StatusCode)]++
	}
	s.answered.Add(1)
	return nil
}

func (r *realtime) close(c *conn) {
	c.closing.Store(true)
	c.stop()
}
