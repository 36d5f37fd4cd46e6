// The chat WebSocket: connects with a fresh ticket, matches replies to
// requests by id, keeps the connection alive, and reconnects with backoff
// when it drops. What to do after a (re)connect — rejoin rooms, resume from
// the last message — is the chat controller's job (chat.js), which listens
// for 'hello'.

import { sleep } from './util.js';

/** RequestError is an `error` frame answering one of our requests. */
export class RequestError extends Error {
  constructor(frame) {
    super(frame.message || frame.code);
    this.name = 'RequestError';
    this.code = frame.code;
    this.retryAfter = frame.retryAfter || 0;
  }
}

/** DisconnectedError: the connection closed before the reply came. */
export class DisconnectedError extends Error {
  constructor() {
    super('Not connected to the chat server.');
    this.name = 'DisconnectedError';
  }
}

// Reconnect delays, in ms: quick at first (a restarting server is back in a
// second or two), then backing off so a server that is down for long is not
// hammered by every open tab. Each delay gets up to 30% random jitter so
// tabs do not come back in lockstep.
const BACKOFF = [250, 500, 1000, 2000, 4000, 8000, 15000];
// How long a request may wait for its reply.
const REQUEST_TIMEOUT = 15000;
// Application-level ping: the server pings too, but a browser cannot see
// those, and a dead network path can leave a socket "open" for minutes.
const KEEPALIVE_EVERY = 30000;
const KEEPALIVE_TIMEOUT = 10000;

/**
 * ChatSocket is one logical chat connection that survives reconnects.
 *
 *   const s = new ChatSocket({ url, getTicket });
 *   s.on('hello', (hello) => ...); s.on('message', (ev) => ...);
 *   s.on('status', ({ status }) => ...); s.on('unauthorized', () => ...);
 *   s.start();
 *   const joined = await s.request('join', { room });
 *
 * getTicket() returns a ticket, or '' to connect as a guest; it throws an
 * error with `auth` true when the credentials are no longer valid (then the
 * socket stops and emits 'unauthorized'), anything else is retried.
 */
export class ChatSocket {
  constructor({ url, getTicket }) {
    this.url = url;
    this.getTicket = getTicket;
    this.status = 'idle'; // idle | connecting | online | reconnecting | stopped
    this.attempt = 0;
    this.retryAt = 0; // when the next attempt starts (ms since epoch), for the UI
    this.handlers = new Map();
    this.pending = new Map(); // request id → {resolve, reject, timer}
    this.nextId = 1;
    this.ws = null;
    this.wake = null; // resolves the backoff wait early (network came back)
    this.keepalive = 0;
    this.onOnline = () => this.wake?.();
  }

  /** on registers a handler for an event type; it returns the unsubscriber. */
  on(type, fn) {
    if (!this.handlers.has(type)) this.handlers.set(type, new Set());
    this.handlers.get(type).add(fn);
    return () => this.handlers.get(type).delete(fn);
  }

  emit(type, payload) {
    for (const fn of this.handlers.get(type) || []) {
      try {
        fn(payload);
      } catch (err) {
        console.error(`chat: ${type} handler failed`, err);
      }
    }
  }

  start() {
    if (this.status !== 'idle') return;
    window.addEventListener('online', this.onOnline);
    this.#loop();
  }

  /** stop closes the connection for good (signing out). */
  stop() {
    this.#setStatus('stopped');
    window.removeEventListener('online', this.onOnline);
    this.wake?.();
    if (this.ws) this.#drop(this.ws, 1000);
  }

  get online() {
    return this.status === 'online';
  }

  /**
   * request sends {type, id, ...fields} and resolves with the frame that
   * carries the same id; an `error` frame rejects with RequestError.
   */
  request(type, fields = {}, { timeout = REQUEST_TIMEOUT } = {}) {
    if (!this.online) return Promise.reject(new DisconnectedError());
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new Error(`No answer to ${type} in ${timeout / 1000} s.`));
      }, timeout);
      this.pending.set(id, { resolve, reject, timer });
      this.ws.send(JSON.stringify({ ...fields, type, id }));
    });
  }

  /** notify sends a frame that expects no reply (typing); dropped offline. */
  notify(type, fields = {}) {
    if (this.online) this.ws.send(JSON.stringify({ ...fields, type }));
  }

  #setStatus(status) {
    if (this.status === 'stopped' || this.status === status) return;
    this.status = status;
    this.emit('status', { status, attempt: this.attempt, retryAt: this.retryAt });
  }

  // #loop connects, waits for the connection to end, backs off, repeats.
  async #loop() {
    while (this.status !== 'stopped') {
      this.#setStatus(this.attempt === 0 && this.status === 'idle' ? 'connecting' : 'reconnecting');
      const outcome = await this.#connectOnce();
      if (outcome?.unauthorized) {
        this.stop();
        this.emit('unauthorized', outcome.error);
        return;
      }
      if (this.status === 'stopped') return;
      if (outcome === 'was-online') this.attempt = 0;
      this.#setStatus('reconnecting');
      const delay = BACKOFF[Math.min(this.attempt, BACKOFF.length - 1)] * (1 + Math.random() * 0.3);
      this.attempt++;
      this.retryAt = Date.now() + delay;
      this.emit('status', { status: this.status, attempt: this.attempt, retryAt: this.retryAt });
      await Promise.race([sleep(delay), new Promise((r) => (this.wake = r))]);
      this.wake = null;
    }
  }

  // #connectOnce resolves when the connection attempt or the connection
  // ends: 'failed' (never got hello), 'was-online', or {unauthorized, error}
  // when the server refused our credentials.
  async #connectOnce() {
    let ticket;
    try {
      ticket = await this.getTicket();
    } catch (err) {
      return err?.auth ? { unauthorized: true, error: err } : 'failed';
    }
    if (this.status === 'stopped') return 'failed';
    const url = ticket ? `${this.url}?ticket=${encodeURIComponent(ticket)}` : this.url;
    return new Promise((resolve) => {
      let ws;
      try {
        ws = new WebSocket(url);
      } catch {
        resolve('failed');
        return;
      }
      this.ws = ws;
      let gotHello = false;
      ws.onmessage = (e) => {
        let frame;
        try {
          frame = JSON.parse(e.data);
        } catch {
          return;
        }
        if (frame.type === 'hello' && !gotHello) {
          gotHello = true;
          this.attempt = 0;
          this.#setStatus('online');
          this.#startKeepalive(ws);
        }
        this.#dispatch(frame);
      };
      // onclose also follows a failed handshake (error first, then close).
      ws.onclose = (e) => {
        if (ws.dropped) return; // already handled by #drop
        this.#cleanup(ws);
        this.emit('closed', { code: e.code, reason: e.reason });
        resolve(gotHello ? 'was-online' : 'failed');
      };
      ws.resolveOutcome = () => resolve(gotHello ? 'was-online' : 'failed');
    });
  }

  #dispatch(frame) {
    const id = frame.id;
    if (id !== undefined && this.pending.has(id)) {
      const p = this.pending.get(id);
      this.pending.delete(id);
      clearTimeout(p.timer);
      if (frame.type === 'error') p.reject(new RequestError(frame));
      else p.resolve(frame);
      return;
    }
    this.emit(frame.type, frame);
  }

  #startKeepalive(ws) {
    clearInterval(this.keepalive);
    this.keepalive = setInterval(() => {
      if (ws !== this.ws || !this.online) return;
      this.request('ping', {}, { timeout: KEEPALIVE_TIMEOUT }).catch(() => {
        // No pong: the path is dead even if the socket looks open.
        if (ws === this.ws) this.#drop(ws, 4001);
      });
    }, KEEPALIVE_EVERY);
  }

  // #drop abandons a socket at once instead of waiting for a close
  // handshake that may never come on a dead connection.
  #drop(ws, code) {
    ws.dropped = true;
    try {
      ws.close(code === 1000 ? 1000 : 4001);
    } catch { /* already closing */ }
    this.#cleanup(ws);
    this.emit('closed', { code, reason: 'dropped by client' });
    ws.resolveOutcome?.();
  }

  #cleanup(ws) {
    clearInterval(this.keepalive);
    if (ws === this.ws) this.ws = null;
    for (const p of this.pending.values()) {
      clearTimeout(p.timer);
      p.reject(new DisconnectedError());
    }
    this.pending.clear();
    if (this.status === 'online') this.#setStatus('reconnecting');
  }
}
