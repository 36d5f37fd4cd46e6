// Test harness: runs the real pocketchat binary (POCKETCHAT_BIN, built by
// `make build`) on a free 127.0.0.1 port with a temporary data directory,
// and drives it with REST, native WebSocket clients (the ws package) and
// the official socket.io clients 4.x, 3.x and 2.x.

import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import WebSocket from 'ws';
import { io as io4 } from 'sio4';
import { io as io3 } from 'sio3';
import io2 from 'sio2';

const here = path.dirname(fileURLToPath(import.meta.url));
const repoRoot = path.resolve(here, '..', '..');
export const bin = path.resolve(process.env.POCKETCHAT_BIN ?? path.join(repoRoot, 'bin', 'pocketchat'));

/** How long a test waits for something the server should do. */
export const waitTime = 10_000;
/** How long a test watches for something that must not happen. */
export const quietTime = 400;

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** A running pocketchat process. */
export class Server {
  constructor(env = {}) {
    this.env = env;
    this.dir = mkdtempSync(path.join(os.tmpdir(), 'pocketchat-sio-'));
    this.output = '';
    this.users = 0;
  }

  /** Starts the server and waits for /api/health. */
  async start() {
    for (let attempt = 0; ; attempt++) {
      if (!this.port || attempt > 0) this.port = await freePort();
      this.url = `http://127.0.0.1:${this.port}`;
      this.proc = spawn(bin, ['serve', '--http', `127.0.0.1:${this.port}`, '--dir', this.dir, '--dev=false'], {
        env: { ...process.env, CHAT_HOOKS_DIR: path.join(repoRoot, 'pb_hooks'), ...this.env },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      this.exited = new Promise((resolve) => this.proc.once('exit', resolve));
      this.proc.stdout.on('data', (d) => { this.output += d; });
      this.proc.stderr.on('data', (d) => { this.output += d; });
      if (await this.ready()) {
        await this.exemptLoopback();
        return this;
      }
      this.kill();
      await this.exited;
      if (attempt >= 2 || !this.output.includes('address already in use')) {
        throw new Error(`pocketchat did not start:\n${this.output}`);
      }
    }
  }

  async ready() {
    const deadline = Date.now() + 30_000;
    let exited = false;
    this.exited.then(() => { exited = true; });
    while (Date.now() < deadline && !exited) {
      try {
        const res = await fetch(`${this.url}/api/health`);
        if (res.ok) return true;
      } catch {}
      await sleep(50);
    }
    return false;
  }

  /** SIGTERM, and wait for the exit. */
  async stop() {
    if (!this.proc || this.proc.exitCode !== null) return;
    this.proc.kill('SIGTERM');
    const timeout = setTimeout(() => this.kill(), 20_000);
    await this.exited;
    clearTimeout(timeout);
  }

  kill() {
    if (this.proc && this.proc.exitCode === null) this.proc.kill('SIGKILL');
  }

  /** Stops the server and starts it again on the same port and data. */
  async restart() {
    await this.stop();
    await this.start();
  }

  /** Stops the server and removes its data. */
  async close() {
    await this.stop();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Sends a JSON request; returns {status, body}. */
  async request(method, p, { token, body, headers } = {}) {
    const h = { ...headers };
    if (body !== undefined) h['content-type'] = 'application/json';
    if (token) h.authorization = token;
    const res = await fetch(this.url + p, { method, headers: h, body: body === undefined ? undefined : JSON.stringify(body) });
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch { json = text; }
    return { status: res.status, body: json, headers: res.headers };
  }

  async must(method, p, opts) {
    const res = await this.request(method, p, opts);
    if (res.status < 200 || res.status > 299) throw new Error(`${method} ${p}: ${res.status} ${JSON.stringify(res.body)}`);
    return res.body;
  }

  /**
   * Takes loopback out of PocketBase's HTTP rate limiter (Settings → Rate
   * limiting → excluded IPs), as an operator exempts their own monitoring:
   * the tests sign users up and in far faster than people do, all from one
   * address. The settings outlive a restart on the same directory.
   */
  async exemptLoopback() {
    await this.must('PATCH', '/api/settings', {
      token: await this.superToken(),
      body: { rateLimits: { excludedIPs: ['127.0.0.0/8', '::1'] } },
    });
  }

  /** Signs a user up through REST and signs them in. */
  async newUser(name) {
    const n = ++this.users;
    const email = `${name.toLowerCase().replace(/\W/g, '')}${n}-${Date.now() % 1e6}@example.com`;
    const password = 'correct-horse-42';
    const rec = await this.must('POST', '/api/collections/users/records', { body: { name, email, password, passwordConfirm: password } });
    const auth = await this.must('POST', '/api/collections/users/auth-with-password', { body: { identity: email, password } });
    return { id: rec.id, name, email, password, token: auth.token };
  }

  /** A superuser token, creating the superuser with the binary's CLI. */
  async superToken() {
    if (this.super) return this.super;
    const email = 'admin@example.com';
    const password = 'admin-password-123';
    execFileSync(bin, ['superuser', 'upsert', email, password, '--dir', this.dir, '--dev=false'], { stdio: 'pipe' });
    const auth = await this.must('POST', '/api/collections/_superusers/auth-with-password', { body: { identity: email, password } });
    this.super = auth.token;
    return this.super;
  }

  async createRoom(name, kind, members = []) {
    return this.must('POST', '/api/collections/rooms/records', { token: await this.superToken(), body: { name, kind, members } });
  }

  async general() {
    const list = await this.must('GET', `/api/collections/rooms/records?filter=${encodeURIComponent("(name='General')")}`);
    return list.items[0].id;
  }

  async ticket(user) {
    return (await this.must('POST', '/api/chat/ticket', { token: user.token })).ticket;
  }

  /** Creates a message through REST, as user. */
  async post(user, room, text) {
    return this.must('POST', '/api/collections/messages/records', { token: user.token, body: { room, author: user.id, text } });
  }
}

export async function startServer(env) {
  return new Server(env).start();
}

/** A queue of things received, which tests take from as they arrive. */
export class Inbox {
  constructor() {
    this.items = [];
    this.waiters = [];
  }

  push(item) {
    this.items.push(item);
    for (const w of [...this.waiters]) w();
  }

  /** Removes and returns the first item matching pred, waiting for it. */
  take(pred, what = 'item', ms = waitTime) {
    return new Promise((resolve, reject) => {
      const check = () => {
        const i = this.items.findIndex(pred);
        if (i < 0) return false;
        const [item] = this.items.splice(i, 1);
        done();
        resolve(item);
        return true;
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`no ${what} within ${ms} ms; received ${JSON.stringify(this.items).slice(0, 2000)}`));
      }, ms);
      const done = () => {
        clearTimeout(timer);
        this.waiters = this.waiters.filter((w) => w !== waiter);
      };
      const waiter = () => { check(); };
      this.waiters.push(waiter);
      check();
    });
  }

  /** Fails if an item matching pred arrives within ms. */
  async none(pred, what = 'item', ms = quietTime) {
    await sleep(ms);
    const found = this.items.find(pred);
    if (found) throw new Error(`unexpected ${what}: ${JSON.stringify(found)}`);
  }
}

/** Opens a native WebSocket chat client (Authorization header for user; guest if null). */
export async function nativeClient(server, user) {
  const ws = new WebSocket(`ws://127.0.0.1:${server.port}/api/chat/ws`, {
    headers: user ? { authorization: `Bearer ${user.token}` } : {},
  });
  const inbox = new Inbox();
  ws.on('message', (data) => inbox.push(JSON.parse(data.toString())));
  await new Promise((resolve, reject) => {
    ws.once('open', resolve);
    ws.once('error', reject);
  });
  let ids = 0;
  const client = {
    ws,
    inbox,
    hello: await inbox.take((f) => f.type === 'hello', 'hello'),
    async request(type, fields = {}) {
      const id = `r${++ids}`;
      ws.send(JSON.stringify({ type, id, ...fields }));
      return inbox.take((f) => f.id === id, `reply to ${type}`);
    },
    message(room, text) {
      return inbox.take((f) => f.type === 'message' && f.room === room && f.message.text === text, `message ${text}`);
    },
    close() { ws.close(); },
  };
  return client;
}

/** The events the server emits; the harness listens to all of them. */
export const serverEvents = ['hello', 'joined', 'opened', 'left', 'presence', 'online', 'message', 'ack', 'history', 'typing', 'pong', 'room', 'deleted', 'edited', 'error'];

/** The socket.io client factories by major version. */
export const clients = { 4: io4, 3: io3, 2: io2 };

/**
 * Opens a socket.io client of the major version (4, 3 or 2) with opts, and
 * records every server event as {name, data} in its inbox. The socket is
 * not waited for: see connected().
 */
export function sioClient(server, version, opts = {}) {
  const socket = clients[version](server.url, { forceNew: true, ...opts });
  const inbox = new Inbox();
  for (const name of serverEvents) socket.on(name, (data) => inbox.push({ name, data }));
  socket.on('connect_error', (err) => inbox.push({ name: 'connect_error', data: { message: err.message, data: err.data } }));
  socket.on('disconnect', (reason) => inbox.push({ name: 'disconnect', data: reason }));
  const c = {
    socket,
    inbox,
    version,
    /** Waits for the next hello (one after each connection). */
    nextHello() { return inbox.take((e) => e.name === 'hello', 'hello').then((e) => e.data); },
    /** Emits with an ack callback and resolves with its argument. */
    emit(name, payload, ms = waitTime) {
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no ack for ${name} ${JSON.stringify(payload)}`)), ms);
        timer.unref(); // an ack that never comes must not keep the test process alive
        socket.emit(name, payload, (res) => { clearTimeout(timer); resolve(res); });
      });
    },
    /** Like emit, failing on an error reply. */
    async must(name, payload) {
      const res = await c.emit(name, payload);
      if (res && res.error) throw new Error(`${name}: ${res.error.code}: ${res.error.message}`);
      return res;
    },
    event(name, pred = () => true, what = name) {
      return inbox.take((e) => e.name === name && pred(e.data), what).then((e) => e.data);
    },
    message(room, text) {
      return c.event('message', (d) => d.room === room && d.message.text === text, `message ${text}`);
    },
    close() { socket.close(); },
  };
  return c;
}

/** Opens a socket.io client and waits for its hello. */
export async function sioConnect(server, version, opts) {
  const c = sioClient(server, version, opts);
  c.hello = await c.nextHello();
  return c;
}

/** Waits until the client's engine.io transport is the WebSocket. */
export async function upgraded(c) {
  const engine = c.socket.io.engine;
  const deadline = Date.now() + waitTime;
  while (engine.transport.name !== 'websocket') {
    if (Date.now() > deadline) throw new Error(`still on ${engine.transport.name}`);
    await sleep(20);
  }
}
