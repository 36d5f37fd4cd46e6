package engineio

import (
	"context"
	"errors"
	"net/http"
	"time"

	"github.com/gorilla/websocket"
)

// upgrade serves a WebSocket opened for a polling session: the client
// probes it ("2probe", answered "3probe"), pauses polling (its waiting
// poll is ended with a noop) and sends the upgrade packet; from then on
// the WebSocket carries the session and its writer takes over the queue.
// A probe that fails or times out leaves the session on polling.
func (srv *Server) upgrade(w http.ResponseWriter, r *http.Request, s *Socket) {
	if !websocket.IsWebSocketUpgrade(r) {
		writeError(w, http.StatusBadRequest, errBadRequest, "Bad request: expected a WebSocket upgrade")
		return
	}
	s.mu.Lock()
	ok := !s.closing && s.transport == transportPolling && !s.upgrading
	if ok {
		s.upgrading = true
	}
	s.mu.Unlock()
	if !ok {
		writeError(w, http.StatusBadRequest, errBadRequest, "Bad request: the session cannot upgrade now")
		return
	}
	conn, err := srv.upgrader.Upgrade(w, r, nil)
	if err != nil {
		s.endProbe(nil)
		return // gorilla has answered
	}
	if !s.probeUpgrade(conn) {
		s.endProbe(conn)
		_ = conn.Close()
		return
	}
	s.runWebSocket(r.Context(), conn)
}

// endProbe forgets a failed probe: polling goes on as before.
func (s *Socket) endProbe(conn *websocket.Conn) {
	s.mu.Lock()
	if s.probe == conn {
		s.probe = nil
	}
	s.upgrading = false
	s.probed = false
	s.mu.Unlock()
}

// probeUpgrade runs the upgrade's exchange on conn and, if it completes,
// makes conn the session's transport.
func (s *Socket) probeUpgrade(conn *websocket.Conn) bool {
	s.mu.Lock()
	if s.closing {
		s.mu.Unlock()
		return false
	}
	s.probe = conn
	s.mu.Unlock()

	conn.SetReadLimit(int64(s.cfg.MaxPayload))
	_ = conn.SetReadDeadline(time.Now().Add(s.cfg.UpgradeTimeout))
	if p, ok := readText(conn, s.version); !ok || p.Type != Ping || p.Data != "probe" {
		return false
	}
	_ = conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteWait))
	if conn.WriteMessage(websocket.TextMessage, AppendPacket(nil, Pong, "probe")) != nil {
		return false
	}
	s.mu.Lock()
	s.probed = true
	s.mu.Unlock()
	s.wake() // a waiting poll ends with a noop

	if p, ok := readText(conn, s.version); !ok || p.Type != Upgrade {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing || s.probe != conn {
		return false
	}
	s.transport = transportWebSocket
	s.ws = conn
	s.probe = nil
	s.upgrading = false
	s.probed = false
	_ = conn.SetReadDeadline(time.Time{})
	return true
}

func readText(conn *websocket.Conn, version int) (Packet, bool) {
	typ, b, err := conn.ReadMessage()
	if err != nil || typ != websocket.TextMessage {
		return Packet{}, false
	}
	p, err := DecodePacket(version, string(b))
	return p, err == nil
}

// runWebSocket carries the session on conn until it ends: the caller's
// goroutine reads, another writes. A cancelled ctx (the server shutting
// down) closes the session with 1001 after the packet being handled and
// the queue.
func (s *Socket) runWebSocket(ctx context.Context, conn *websocket.Conn) {
	s.mu.Lock()
	s.ws = conn
	closed := s.closing
	s.mu.Unlock()
	if closed {
		_ = conn.SetReadDeadline(time.Now())
	}
	conn.SetReadLimit(int64(s.cfg.MaxPayload))
	writerDone := make(chan struct{})
	go func() {
		defer close(writerDone)
		s.writeLoop(conn)
	}()
	stop := context.AfterFunc(ctx, func() { s.Close(websocket.CloseGoingAway, "server shutting down") })
	defer stop()
	if err := s.readLoop(conn); err != nil {
		s.shut(closeFor(err))
	}
	<-writerDone
}

// errProtocol reports a frame that is no engine.io packet.
var errProtocol = errors.New("malformed packet")

func (s *Socket) readLoop(conn *websocket.Conn) error {
	for {
		typ, b, err := conn.ReadMessage()
		if err != nil {
			s.mu.Lock()
			closed := s.closing
			s.mu.Unlock()
			if closed {
				return nil
			}
			return err
		}
		var p Packet
		if typ == websocket.BinaryMessage {
			p, err = decodeBinaryFrame(s.version, b)
		} else {
			p, err = DecodePacket(s.version, string(b))
		}
		if err != nil {
			return errProtocol
		}
		s.receive(p)
	}
}

// closeFor picks how a session ends after its reader failed.
func closeFor(err error) closing {
	var ce *websocket.CloseError
	switch {
	case errors.Is(err, errProtocol):
		return closing{websocket.CloseProtocolError, "malformed packet", false}
	case errors.Is(err, websocket.ErrReadLimit):
		return closing{websocket.CloseMessageTooBig, "message too large", false}
	case errors.As(err, &ce):
		return closing{websocket.CloseNoStatusReceived, "client closed the socket", false}
	}
	return closing{closeSilently, "transport error", false}
}

// writeLoop is the only writer of conn once the session has moved to it.
func (s *Socket) writeLoop(conn *websocket.Conn) {
	defer func() {
		_ = conn.Close()
		s.finish()
	}()
	for {
		s.mu.Lock()
		if s.closing {
			why := s.why
			s.mu.Unlock()
			s.closeWebSocket(conn, why)
			return
		}
		batch := s.take()
		s.mu.Unlock()
		if len(batch) == 0 {
			<-s.wsWake
			continue
		}
		if !s.write(conn, batch) {
			s.shut(closing{closeSilently, "write failed", false})
		}
	}
}

// closeWebSocket ends a closing session's WebSocket: the queue first when
// draining, then the close frame unless the socket is already gone.
func (s *Socket) closeWebSocket(conn *websocket.Conn, why closing) {
	if why.drain {
		s.waitIdle()
		s.mu.Lock()
		batch := s.take()
		s.mu.Unlock()
		if !s.write(conn, batch) {
			return
		}
	}
	switch why.code {
	case closeSilently, websocket.CloseNoStatusReceived:
		return
	}
	closeConn(conn, why.code, why.reason, s.cfg.WriteWait)
}

func (s *Socket) write(conn *websocket.Conn, batch []Outgoing) bool {
	for _, m := range batch {
		_ = conn.SetWriteDeadline(time.Now().Add(s.cfg.WriteWait))
		if conn.WriteMessage(websocket.TextMessage, m.Encode()) != nil {
			return false
		}
	}
	return true
}

// closeConn writes a close frame; the caller closes the socket.
func closeConn(conn *websocket.Conn, code int, reason string, wait time.Duration) {
	msg := websocket.FormatCloseMessage(code, reason)
	_ = conn.WriteControl(websocket.CloseMessage, msg, time.Now().Add(wait))
}
