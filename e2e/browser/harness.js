// Test harness for the browser tests: runs the real pocketchat binary on a
// free 127.0.0.1 port with a temporary data directory, talks to its REST
// API, and opens Debian's Chromium through playwright-core.
//
//   const server = await Server.start();
//   const alice = await server.createUser('Alice');
//   const browser = await launchBrowser();
//   const page = await openChat(browser, server, alice);
//   ...
//   await browser.close(); await server.close();

import { spawn, execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { chromium } from 'playwright-core';

const here = path.dirname(fileURLToPath(import.meta.url));

/** repoRoot is the repository's top directory. */
export const repoRoot = path.resolve(here, '../..');
/** BIN is the server binary under test (`make build` writes it). */
export const BIN = path.resolve(process.env.POCKETCHAT_BIN || path.join(repoRoot, 'bin/pocketchat'));
/** CHROMIUM is Debian's Chromium (apt-get install chromium). */
export const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
/** WAIT bounds every wait for something the page or the server should do. */
export const WAIT = 10_000;

const SUPER_EMAIL = 'admin@example.com';
const SUPER_PASSWORD = 'admin-password-123';

// Flags for Chromium on this network-less machine: no sandbox (we are
// root), no GPU, and none of the background connections to Google's
// services, which would be refused and slow the start.
const CHROMIUM_ARGS = [
  '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
];

// Every child process is killed if the test process exits early.
const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

// adopt makes child one of the processes killed if the tests exit early,
// and returns a promise of its exit.
function adopt(child) {
  children.add(child);
  return new Promise((resolve) => child.on('exit', (code, signal) => {
    children.delete(child);
    resolve({ code, signal });
  }));
}

/** freePort asks the OS for a port that is free on 127.0.0.1. */
export function freePort() {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

/** Server is a running pocketchat process. */
export class Server {
  /** start runs pocketchat with a fresh data directory. env: extra variables. */
  static async start({ env = {} } = {}) {
    const s = new Server();
    s.env = env;
    s.dir = await mkdtemp(path.join(os.tmpdir(), 'pocketchat-browser-'));
    s.port = await freePort();
    await s.#spawn();
    await s.exemptLoopback();
    return s;
  }

  /**
   * exemptLoopback takes loopback out of PocketBase's HTTP rate limiter
   * (Settings → Rate limiting → excluded IPs), as an operator exempts their
   * own monitoring: the tests sign users up and in, through REST and the
   * page, far faster than people do, all from one address.
   */
  async exemptLoopback() {
    await this.must('PATCH', '/api/settings', {
      token: await this.superToken(),
      body: { rateLimits: { excludedIPs: ['127.0.0.0/8', '::1'] } },
    });
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async #spawn() {
    this.output = '';
    const child = spawn(BIN, ['serve', '--http', `127.0.0.1:${this.port}`, '--dir', this.dir, '--dev=false'], {
      // The tests seed history through REST faster than the per-user
      // send limit allows a person: no limit here.
      env: { ...process.env, CHAT_HOOKS_DIR: path.join(repoRoot, 'pb_hooks'), CHAT_SEND_RATE: '0', ...this.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    this.exited = adopt(child);
    child.stdout.on('data', (d) => (this.output += d));
    child.stderr.on('data', (d) => (this.output += d));
    child.on('error', (err) => (this.output += `\nspawn error: ${err.message}`));
    await this.#waitHealthy(30_000);
  }

  async #waitHealthy(ms) {
    const deadline = Date.now() + ms;
    let exited = false;
    this.exited.then(() => (exited = true));
    while (Date.now() < deadline && !exited) {
      try {
        const res = await fetch(`${this.url}/api/health`, { signal: AbortSignal.timeout(2000) });
        if (res.ok) return;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 50)); // poll interval, bounded by the deadline
    }
    this.child.kill('SIGKILL');
    throw new Error(`pocketchat did not become healthy on port ${this.port}:\n${this.output}`);
  }

  /** stop sends SIGTERM and waits (at most 20 s) for the process to exit. */
  async stop() {
    if (!this.child || this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timeout = new Promise((r) => setTimeout(() => r('timeout'), 20_000).unref());
    if ((await Promise.race([this.exited, timeout])) === 'timeout') {
      this.child.kill('SIGKILL');
      await this.exited;
      throw new Error(`pocketchat did not exit after SIGTERM:\n${this.output}`);
    }
  }

  /** restart stops the server and starts it again on the same port and data. */
  async restart() {
    await this.stop();
    await this.#spawn();
  }

  /** close kills the process and removes its data directory. */
  async close() {
    if (this.child && this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }

  // ---- REST ----

  /**
   * api sends a request; body is a plain object (JSON) or a FormData. It
   * returns {status, body} and never throws on an HTTP error status.
   */
  async api(method, urlPath, { token, body } = {}) {
    const headers = {};
    if (token) headers.Authorization = token;
    let payload;
    if (body instanceof FormData) payload = body;
    else if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    const res = await fetch(this.url + urlPath, { method, headers, body: payload, signal: AbortSignal.timeout(WAIT) });
    const text = await res.text();
    return { status: res.status, body: text ? JSON.parse(text) : null };
  }

  /** must is api that throws unless the status is 2xx. */
  async must(method, urlPath, opts) {
    const res = await this.api(method, urlPath, opts);
    if (res.status < 200 || res.status > 299) {
      throw new Error(`${method} ${urlPath}: ${res.status} ${JSON.stringify(res.body)}`);
    }
    return res.body;
  }

  /** superToken creates the superuser with the binary's CLI (once) and signs in. */
  async superToken() {
    if (this.superTokenValue) return this.superTokenValue;
    await promisify(execFile)(BIN, ['superuser', 'upsert', SUPER_EMAIL, SUPER_PASSWORD, '--dir', this.dir, '--dev=false'], { timeout: 30_000 });
    const res = await this.must('POST', '/api/collections/_superusers/auth-with-password', {
      body: { identity: SUPER_EMAIL, password: SUPER_PASSWORD },
    });
    this.superTokenValue = res.token;
    return res.token;
  }

  /** createUser signs a user up and in through REST: {id, name, email, password, token, record}. */
  async createUser(name) {
    this.users = (this.users || 0) + 1;
    const email = `${name.toLowerCase().replace(/\W+/g, '')}${this.users}@example.com`;
    const password = 'correct-horse-42';
    await this.must('POST', '/api/collections/users/records', {
      body: { name, email, password, passwordConfirm: password },
    });
    const auth = await this.must('POST', '/api/collections/users/auth-with-password', {
      body: { identity: email, password },
    });
    return { id: auth.record.id, name, email, password, token: auth.token, record: auth.record };
  }

  /** createRoom creates a room as the superuser (as in the dashboard). */
  async createRoom(fields) {
    return this.must('POST', '/api/collections/rooms/records', {
      token: await this.superToken(),
      body: { members: [], ...fields },
    });
  }

  /** post creates a text message through REST as user. */
  async post(user, room, text) {
    return this.must('POST', '/api/collections/messages/records', {
      token: user.token,
      body: { room, author: user.id, text },
    });
  }

  /** general is the id of the seeded public room. */
  async general() {
    const res = await this.must('GET', `/api/collections/rooms/records?filter=${encodeURIComponent("name='General'")}`);
    return res.items[0].id;
  }
}

// ---- the browser ----

/** launchBrowser starts headless Chromium (a fresh profile every time). */
export function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/**
 * openChat opens the client in a new browser context (its own cookies and
 * storage, like a separate person). With a user, the session is put into
 * localStorage as the client saves it, so the page signs in by itself; the
 * page is returned once the chat is connected. Without one, the sign-in
 * screen shows.
 */
export async function openChat(browser, server, user = null, { viewport = { width: 1280, height: 800 } } = {}) {
  const storageState = user
    ? {
      cookies: [],
      origins: [{ origin: server.url, localStorage: [{ name: 'pocketchat.auth', value: JSON.stringify({ token: user.token, record: user.record }) }] }],
    }
    : undefined;
  const context = await browser.newContext({ baseURL: server.url, viewport, storageState });
  context.setDefaultTimeout(WAIT);
  context.setDefaultNavigationTimeout(WAIT);
  const page = await context.newPage();
  watch(page);
  await page.goto('/');
  if (user) await connected(page);
  return page;
}

/**
 * watch records what must not happen on a page: uncaught errors, console
 * errors, dialogs (an XSS payload firing alert()). check() throws if any did.
 */
export function watch(page) {
  page.problems = [];
  page.dialogs = [];
  page.on('pageerror', (err) => page.problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    // Chromium logs every refused WebSocket (the server restarting) and
    // every HTTP error status (a wrong password is a 400) as a console
    // error; those are expected. Anything else the page logs as an error
    // is a bug.
    if (msg.type() === 'error' && !/WebSocket|ERR_CONNECTION_REFUSED|Failed to load resource/.test(msg.text())) {
      page.problems.push(`console error: ${msg.text()}`);
    }
  });
  page.on('dialog', (d) => {
    page.dialogs.push(d.message());
    d.dismiss().catch(() => {});
  });
}

/** check fails if the page logged errors or opened dialogs. */
export function check(page) {
  if (page.problems.length) throw new Error(page.problems.join('\n'));
  if (page.dialogs.length) throw new Error(`unexpected dialogs: ${page.dialogs.join(', ')}`);
}

/** connected waits until the page's chat socket is online. */
export function connected(page) {
  return page.locator('body[data-conn="online"]').waitFor({ state: 'attached' });
}

/** openRoom clicks a room in the sidebar and waits until it is shown. */
export async function openRoom(page, name) {
  await roomButton(page, name).click();
  await page.locator('#room-title', { hasText: name }).waitFor();
}

/** roomButton is a room's entry in the sidebar. */
export function roomButton(page, name) {
  return page.locator('#sidebar .room-item').filter({ has: page.locator('.room-name', { hasText: exact(name) }) });
}

/** send types a message into the composer and presses Enter. */
export async function send(page, text) {
  const input = page.getByRole('textbox', { name: /^Message/ });
  await input.fill(text);
  await input.press('Enter');
}

/** message is the list entry (stored, not pending) whose text is exactly text. */
export function message(page, text) {
  return page.locator('#message-list .msg:not(.pending)').filter({ has: page.locator('.msg-text', { hasText: exact(text) }) });
}

/** exact is a regexp matching exactly s. */
export function exact(s) {
  return new RegExp(`^${s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`);
}

/**
 * waitFor waits (bounded) for fn, run in the page with arg, to return a
 * truthy value, and returns it.
 */
export async function waitFor(page, fn, arg, timeout = WAIT) {
  const handle = await page.waitForFunction(fn, arg, { timeout, polling: 'raf' });
  return handle.jsonValue();
}

/** tinyPNG makes a w×h PNG (a gradient) with zlib, for upload tests. */
export async function tinyPNG(w = 64, h = 48) {
  const { deflateSync } = await import('node:zlib');
  const raw = Buffer.alloc((w * 3 + 1) * h);
  for (let y = 0; y < h; y++) {
    raw[y * (w * 3 + 1)] = 0; // filter: none
    for (let x = 0; x < w; x++) {
      const o = y * (w * 3 + 1) + 1 + x * 3;
      raw[o] = Math.round((255 * x) / w);
      raw[o + 1] = Math.round((255 * y) / h);
      raw[o + 2] = 200;
    }
  }
  const chunk = (type, data) => {
    const len = Buffer.alloc(4);
    len.writeUInt32BE(data.length);
    const td = Buffer.concat([Buffer.from(type, 'ascii'), data]);
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(td));
    return Buffer.concat([len, td, crc]);
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(w, 0);
  ihdr.writeUInt32BE(h, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // color type: RGB
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', Buffer.alloc(0)),
  ]);
}

// crc32 is the CRC PNG chunks carry (Node 20's zlib has no crc32 yet).
function crc32(buf) {
  let c = ~0;
  for (const b of buf) {
    c ^= b;
    for (let k = 0; k < 8; k++) c = (c >>> 1) ^ (0xedb88320 & -(c & 1));
  }
  return ~c >>> 0;
}
