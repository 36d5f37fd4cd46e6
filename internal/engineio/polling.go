package engineio

import (
	"errors"
	"io"
	"mime"
	"net/http"
	"time"
)

// poll serves a GET of the polling transport: it waits until something is
// queued, then answers with all of it as one payload. It also ends at
// once with a noop while the session upgrades, and with the close packet
// when the session closes. A poll whose request is cancelled (the client
// left, or the server is shutting down) closes the session, after writing
// what was queued.
func (s *Socket) poll(w http.ResponseWriter, r *http.Request) {
	if !s.claim(w, &s.getActive, "polls") {
		return
	}

	batch, closed := s.waitBatch(r)
	payload := make([]byte, 0, 64)
	packets := make([][]byte, 0, len(batch)+1)
	for _, m := range batch {
		packets = append(packets, m.Encode())
	}
	if closed {
		packets = append(packets, []byte{byte(Close)})
	}
	payload = AppendPayload(payload, s.version, packets...)

	h := w.Header()
	h.Set("Content-Type", "text/plain; charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	_ = http.NewResponseController(w).SetWriteDeadline(time.Now().Add(s.cfg.WriteWait))
	_, _ = w.Write(payload)

	s.mu.Lock()
	s.getActive = false
	finish := s.closing
	s.mu.Unlock()
	if finish {
		s.finish()
	}
}

// waitBatch waits for packets to answer a poll with. It reports closed
// when the session is closing (the poll then carries the close packet).
func (s *Socket) waitBatch(r *http.Request) (batch []Outgoing, closed bool) {
	ctx := r.Context()
	for {
		s.mu.Lock()
		switch {
		case s.closing:
			drain := s.why.drain
			s.mu.Unlock()
			if drain {
				s.waitIdle() // the reply of the packet being handled goes out too
				s.mu.Lock()
				batch = s.take()
				s.mu.Unlock()
			}
			return batch, true
		case len(s.queue) > 0:
			batch = s.take()
			s.mu.Unlock()
			return batch, false
		case s.transport != transportPolling || s.probed:
			// The client pauses polling to upgrade: end this poll.
			s.mu.Unlock()
			return []Outgoing{rawPacket{byte(Noop)}}, false
		}
		s.mu.Unlock()
		select {
		case <-s.pollWake:
		case <-ctx.Done():
			s.Close(1001, "poll ended")
		}
	}
}

// post serves a POST of the polling transport: a payload of packets from
// the client, handled in order before the answer "ok".
func (s *Socket) post(w http.ResponseWriter, r *http.Request) {
	if !s.claim(w, &s.postActive, "posts") {
		return
	}
	defer func() {
		s.mu.Lock()
		s.postActive = false
		s.mu.Unlock()
	}()

	packets, status, err := s.readPayload(w, r)
	if err != nil {
		writeError(w, status, errBadRequest, "Bad request: "+err.Error())
		code := closeSilently
		if status == http.StatusRequestEntityTooLarge {
			code = 1009 // as the WebSocket transport's close code
		}
		s.shut(closing{code, err.Error(), false})
		return
	}
	for _, p := range packets {
		s.receive(p)
	}
	h := w.Header()
	h.Set("Content-Type", "text/html")
	h.Set("Cache-Control", "no-store")
	_, _ = io.WriteString(w, "ok")
}

// errTooLarge reports a payload or packet over the limits.
var errTooLarge = errors.New("payload too large")

// readPayload reads and decodes a POST body. v3 clients post binary data
// as an application/octet-stream binary payload; everything else is text.
func (s *Socket) readPayload(w http.ResponseWriter, r *http.Request) ([]Packet, int, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, int64(s.cfg.MaxPollBody)))
	if err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return nil, http.StatusRequestEntityTooLarge, errTooLarge
		}
		return nil, http.StatusBadRequest, err
	}
	var packets []Packet
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt == "application/octet-stream" && s.version == 3 {
		packets, err = DecodeBinaryPayload(body)
	} else {
		packets, err = DecodePayload(s.version, string(body))
	}
	if err != nil {
		return nil, http.StatusBadRequest, err
	}
	for _, p := range packets {
		if len(p.Data)+1 > s.cfg.MaxPayload { // the type digit counts, as in a frame
			return nil, http.StatusRequestEntityTooLarge, errTooLarge
		}
	}
	return packets, 0, nil
}

// claim marks a poll or a post (active points at its flag) as in
// progress, or answers the request with why it cannot be served: the
// session is gone, it has moved to its WebSocket, or the client sent two
// at once, which the protocol forbids and which ends the session.
func (s *Socket) claim(w http.ResponseWriter, active *bool, what string) bool {
	s.mu.Lock()
	switch {
	case s.closing:
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, errUnknownSID, "Session ID unknown")
		return false
	case s.transport != transportPolling:
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, errBadRequest, "Bad request: the session has moved to its WebSocket")
		return false
	case *active:
		s.mu.Unlock()
		writeError(w, http.StatusBadRequest, errBadRequest, "Bad request: overlapping "+what)
		s.shut(closing{closeSilently, "overlapping " + what, false})
		return false
	}
	*active = true
	s.mu.Unlock()
	return true
}
