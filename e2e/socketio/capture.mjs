// Captures what the real socket.io clients put on the wire, for the Go
// table tests (internal/engineio and internal/socketio testdata).
//
//	node capture.mjs http://127.0.0.1:8090 > frames.jsonl
//
// It runs a logging proxy in front of a running pocketchat, signs a user up
// through REST, and drives socket.io-client 4.x, 3.x and 2.x through it
// (polling with the upgrade, and WebSocket only): connect, bad credentials,
// join and send with an ack, an event without ack, a binary emit, text
// whose UTF-16 length differs from its byte length, disconnect; then idle
// sessions for the heartbeats (run the server with a short CHAT_WS_PING,
// e.g. 500ms, and CHAT_WS_PONG_WAIT 1500ms, to see them). Each HTTP body
// and WebSocket frame is one JSON line: {scenario, dir, kind, ...}.
// It is a development tool, not a test: `make test` does not run it.

import http from 'node:http';
import { WebSocketServer, WebSocket } from 'ws';
import { io as io4 } from 'sio4';
import { io as io3 } from 'sio3';
import io2 from 'sio2';

const target = new URL(process.argv[2] ?? 'http://127.0.0.1:8090');
let scenario = '';
let secret = ''; // the user's token, masked in the output (same length, so v3 lengths hold)

function record(entry) {
  let line = JSON.stringify({ scenario, ...entry });
  if (secret) line = line.split(secret).join('T'.repeat(secret.length));
  process.stdout.write(line + '\n');
}

function body(buf, type) {
  if ((type ?? '').includes('octet-stream')) return { base64: buf.toString('base64') };
  return { text: buf.toString('utf8') };
}

function startProxy() {
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on('data', (c) => chunks.push(c));
    req.on('end', () => {
      const reqBody = Buffer.concat(chunks);
      const headers = { ...req.headers, host: target.host };
      const up = http.request({ host: target.hostname, port: target.port, path: req.url, method: req.method, headers }, (ures) => {
        const rchunks = [];
        ures.on('data', (c) => rchunks.push(c));
        ures.on('end', () => {
          const resBody = Buffer.concat(rchunks);
          const url = new URL(req.url, 'http://x');
          for (const k of ['t', 'sid', 'token', 'ticket']) url.searchParams.delete(k);
          if (req.method === 'POST') record({ dir: 'c2s', kind: 'post', query: url.search, contentType: req.headers['content-type'], ...body(reqBody, req.headers['content-type']) });
          record({ dir: 's2c', kind: req.method === 'POST' ? 'post-reply' : 'poll', query: url.search, status: ures.statusCode, contentType: ures.headers['content-type'], ...body(resBody, ures.headers['content-type']) });
          res.writeHead(ures.statusCode, ures.headers);
          res.end(resBody);
        });
      });
      up.on('error', (e) => { res.writeHead(502); res.end(String(e)); });
      up.end(reqBody);
    });
  });
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    wss.handleUpgrade(req, socket, head, (client) => {
      const headers = req.headers.authorization ? { authorization: req.headers.authorization } : {};
      const upstream = new WebSocket(`ws://${target.host}${req.url}`, { headers });
      const pending = [];
      const frame = (dir, data, isBinary) => record({ dir, kind: 'ws', ...(isBinary ? { base64: Buffer.from(data).toString('base64') } : { text: data.toString('utf8') }) });
      upstream.on('open', () => { for (const m of pending) upstream.send(m.data, { binary: m.isBinary }); pending.length = 0; });
      client.on('message', (data, isBinary) => {
        frame('c2s', data, isBinary);
        if (upstream.readyState === WebSocket.OPEN) upstream.send(data, { binary: isBinary });
        else pending.push({ data, isBinary });
      });
      upstream.on('message', (data, isBinary) => { frame('s2c', data, isBinary); client.send(data, { binary: isBinary }); });
      client.on('close', () => upstream.close());
      upstream.on('close', (code) => { if (client.readyState === WebSocket.OPEN) client.close(code === 1005 || code === 1006 ? 1000 : code); });
      upstream.on('error', () => client.terminate());
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

async function rest(path, payload) {
  const res = await fetch(new URL(path, target), { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(payload) });
  if (!res.ok) throw new Error(`${path}: ${res.status} ${await res.text()}`);
  return res.json();
}

async function signUp() {
  const email = `capture${Date.now()}@example.com`;
  const password = 'correct-horse-42';
  await rest('/api/collections/users/records', { name: 'Capture', email, password, passwordConfirm: password });
  return (await rest('/api/collections/users/auth-with-password', { identity: email, password })).token;
}

const wait = (ms) => new Promise((r) => setTimeout(r, ms));
const ack = (sock, ev, data) => new Promise((r) => sock.emit(ev, data, r));

async function chat(name, sock) {
  scenario = name;
  const hello = await new Promise((resolve, reject) => {
    sock.once('hello', resolve);
    sock.once('connect_error', reject);
    sock.once('error', reject);
  });
  const room = hello.rooms[0].id;
  await ack(sock, 'join', { room });
  await ack(sock, 'send', { room, text: 'héllo wörld € 😀' });
  sock.emit('typing', { room });
  await ack(sock, 'send', { room, text: Buffer.from([1, 2, 3]) });
  await ack(sock, 'history', { room, limit: 1 });
  await wait(300);
  sock.close();
  await wait(300);
}

async function idle(name, sock, ms) {
  scenario = name;
  await new Promise((resolve) => sock.once('hello', resolve));
  await wait(ms);
  sock.close();
  await wait(200);
}

async function refused(name, sock) {
  scenario = name;
  await new Promise((resolve) => {
    sock.once('connect_error', resolve);
    sock.once('error', resolve);
  });
  sock.close();
  await wait(200);
}

const proxy = await startProxy();
const url = `http://127.0.0.1:${proxy.address().port}`;
const token = await signUp();
secret = token;
const fresh = { forceNew: true, reconnection: false };

await chat('sio4-polling-upgrade', io4(url, { ...fresh, auth: { token } }));
await chat('sio4-websocket', io4(url, { ...fresh, transports: ['websocket'], auth: { token } }));
await chat('sio4-polling-only', io4(url, { ...fresh, transports: ['polling'], auth: { token } }));
await chat('sio3-polling-upgrade', io3(url, { ...fresh, auth: { token } }));
await chat('sio2-polling-upgrade', io2(url, { ...fresh, query: { token } }));
await chat('sio2-websocket', io2(url, { ...fresh, transports: ['websocket'], query: { token } }));
await chat('sio2-polling-only', io2(url, { ...fresh, transports: ['polling'], query: { token } }));
await refused('sio4-bad-token', io4(url, { ...fresh, auth: { token: 'nope' } }));
await refused('sio2-bad-ticket', io2(url, { ...fresh, query: { ticket: 'nope' } }));
const beat = Number(process.env.HEARTBEAT_MS ?? 1200);
await idle('sio4-heartbeat-polling', io4(url, { ...fresh, transports: ['polling'], auth: { token } }), beat);
await idle('sio4-heartbeat-websocket', io4(url, { ...fresh, transports: ['websocket'], auth: { token } }), beat);
await idle('sio2-heartbeat-polling', io2(url, { ...fresh, transports: ['polling'], query: { token } }), beat);
await idle('sio2-heartbeat-websocket', io2(url, { ...fresh, transports: ['websocket'], query: { token } }), beat);
proxy.close();
process.exit(0);
