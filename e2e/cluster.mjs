// The cluster's other parts for the Node tests (e2e/browser, e2e/socketio):
// a real redis-server and `pocketchat edge` processes, each on a free
// 127.0.0.1 port. Node's standard library only, so both test packages use
// it as it is.
//
//   const redis = await Redis.start();
//   const primary = await Server.start({ env: clusterEnv(redis) }); // the package's own harness
//   const edge = await Edge.start(BIN, primary, redis);
//   const page = await openChat(browser, edge, alice); // an edge has url and port, as a server has

import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';

// Every process started here is killed if the tests exit early.
const children = new Set();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function adopt(child) {
  children.add(child);
  return new Promise((resolve) => child.on('exit', (code, signal) => {
    children.delete(child);
    resolve({ code, signal });
  }));
}

function freePort() {
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

const SECRET = 'browser-tests-cluster-secret';

/** clusterEnv is what every node of a cluster on redis is started with. */
export function clusterEnv(redis) {
  return { CHAT_REDIS_URL: redis.url, CHAT_CLUSTER_SECRET: SECRET, CHAT_NODE_TTL: '2s' };
}

/** Redis is a redis-server of the test's own, without persistence. */
export class Redis {
  static async start() {
    const r = new Redis();
    r.dir = await mkdtemp(path.join(os.tmpdir(), 'pocketchat-redis-'));
    r.port = await freePort();
    await r.#spawn();
    return r;
  }

  get url() {
    return `redis://127.0.0.1:${this.port}/0`;
  }

  async #spawn() {
    this.output = '';
    const child = spawn('redis-server', ['--port', String(this.port), '--bind', '127.0.0.1', '--dir', this.dir,
      '--save', '', '--appendonly', 'no'], { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    this.exited = adopt(child);
    child.stdout.on('data', (d) => (this.output += d));
    child.stderr.on('data', (d) => (this.output += d));
    child.on('error', (err) => (this.output += `\nspawn error: ${err.message} (make e2e-deps installs redis-server)`));
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline && child.exitCode === null) {
      if (await ping(this.port)) return;
      await new Promise((r) => setTimeout(r, 50)); // poll interval, bounded by the deadline
    }
    child.kill('SIGKILL');
    throw new Error(`redis-server did not answer on port ${this.port}:\n${this.output}`);
  }

  /** kill stops redis-server with SIGKILL, as a crash would: its data goes. */
  async kill() {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** resume starts it again on the same port, empty. */
  async resume() {
    await this.#spawn();
  }

  async close() {
    await this.kill();
    await rm(this.dir, { recursive: true, force: true });
  }
}

// ping reports whether a Redis answers PING on port.
function ping(port) {
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    let got = '';
    const done = (ok) => { sock.destroy(); resolve(ok); };
    sock.setTimeout(1000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => {
      got += d;
      if (got.includes('\r\n')) done(got.startsWith('+PONG'));
    });
  });
}

/**
 * Edge is a `pocketchat edge` (the binary bin) in front of a primary: it
 * serves the page and the chat sockets, and proxies REST to the primary.
 * It has a url and a port, as a server has. env: more variables.
 */
export class Edge {
  static async start(bin, primary, redis, env = {}) {
    const e = new Edge();
    e.port = await freePort();
    e.output = '';
    const child = spawn(bin, ['edge', '--primary', primary.url, '--http', `127.0.0.1:${e.port}`], {
      env: { ...process.env, ...clusterEnv(redis), ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    e.child = child;
    e.exited = adopt(child);
    child.stdout.on('data', (d) => (e.output += d));
    child.stderr.on('data', (d) => (e.output += d));
    const deadline = Date.now() + 30_000;
    while (Date.now() < deadline && child.exitCode === null) {
      try {
        // Answered by the primary, through the edge: both are up.
        const res = await fetch(`${e.url}/api/health`, { signal: AbortSignal.timeout(2000) });
        if (res.ok) return e;
      } catch { /* not listening yet */ }
      await new Promise((r) => setTimeout(r, 50)); // poll interval, bounded by the deadline
    }
    child.kill('SIGKILL');
    throw new Error(`the edge did not start on port ${e.port}:\n${e.output}`);
  }

  get url() {
    return `http://127.0.0.1:${this.port}`;
  }

  async close() {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      this.child.kill('SIGKILL');
      await this.exited;
    }
  }
}
