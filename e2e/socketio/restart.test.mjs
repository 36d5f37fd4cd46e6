// The server restarts under connected socket.io clients: they reconnect
// by themselves, join again and resume, and see every message once.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sioClient, nativeClient, waitTime } from './harness.mjs';

let server;
let alice;
let bob;
let general;

before(async () => {
  server = await startServer({ CHAT_SHUTDOWN_WAIT: '3s' });
  alice = await server.newUser('Alice');
  bob = await server.newUser('Bob');
  general = await server.general();
});

after(async () => {
  await server?.close();
});

/**
 * A client as docs/protocol.md describes it: on every connection it joins
 * the room and resumes after the last message it has, dropping messages
 * it already has and keeping them in seq order (live messages may come
 * while it resumes). It counts how often each message came live.
 */
function follower(c, room) {
  const state = { messages: [], ids: new Set(), live: new Map(), connections: 0 };
  const keep = (m) => {
    if (state.ids.has(m.id)) return;
    state.ids.add(m.id);
    let i = state.messages.length;
    while (i > 0 && state.messages[i - 1].seq > m.seq) i--;
    state.messages.splice(i, 0, m);
  };
  c.socket.on('message', (ev) => {
    if (ev.room !== room) return;
    state.live.set(ev.message.id, (state.live.get(ev.message.id) ?? 0) + 1);
    keep(ev.message);
  });
  c.socket.on('hello', async () => {
    state.connections++;
    let last = state.messages.at(-1)?.id; // the last one before this connection
    const joined = await c.must('join', { room });
    if (!last) {
      joined.messages.forEach(keep);
      return;
    }
    for (let more = true; more;) {
      const page = await c.must('resume', { room, after: last, limit: 2 });
      page.messages.forEach(keep);
      more = page.more;
      if (page.messages.length) last = page.messages[page.messages.length - 1].id;
    }
  });
  state.until = async (pred, what) => {
    const deadline = Date.now() + 3 * waitTime;
    while (!pred()) {
      if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; have ${state.messages.map((m) => m.text)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  };
  return state;
}

for (const [version, transports] of [[4, undefined], [4, ['polling']], [2, undefined]]) {
  const label = `socket.io-client ${version}.x${transports ? ' (polling only)' : ''}`;
  test(`${label} reconnects after a restart and misses nothing`, async () => {
    const tag = `${version}${transports ? 'p' : ''}`;
    const auth = version === 2 ? { query: { token: alice.token } } : { auth: { token: alice.token } };
    const c = sioClient(server, version, { ...auth, transports, reconnectionDelay: 500, reconnectionDelayMax: 1000 });
    const state = follower(c, general);
    try {
      await state.until(() => state.connections === 1, 'the first connection');
      const writer = await nativeClient(server, bob);
      await writer.request('send', { room: general, text: `${tag} before` });
      await state.until(() => state.messages.some((m) => m.text === `${tag} before`), 'the first message');
      writer.close();

      await server.restart();
      // Written while the client is away (or reconnecting).
      for (let i = 0; i < 5; i++) await server.post(bob, general, `${tag} during ${i}`);
      await state.until(() => state.connections === 2, 'the reconnection');
      const after = await nativeClient(server, bob);
      await after.request('send', { room: general, text: `${tag} after` });
      after.close();
      const want = [`${tag} before`, ...[0, 1, 2, 3, 4].map((i) => `${tag} during ${i}`), `${tag} after`];
      await state.until(() => want.every((t) => state.messages.some((m) => m.text === t)), 'every message');

      const texts = state.messages.map((m) => m.text).filter((t) => t.startsWith(`${tag} `));
      assert.deepEqual(texts, want, 'in order, each once');
      for (const [id, n] of state.live) assert.equal(n, 1, `message ${id} came live ${n} times`);
      const seqs = state.messages.map((m) => m.seq);
      assert.deepEqual(seqs, [...seqs].sort((a, b) => a - b), 'in seq order');
    } finally {
      c.close();
    }
  });
}

test('an ack sent before a shutdown is for a stored message', async () => {
  const c = sioClient(server, 4, { auth: { token: alice.token }, reconnectionDelay: 300, reconnectionDelayMax: 600 });
  try {
    await c.nextHello();
    await c.must('join', { room: general });
    const acks = [];
    const sends = [];
    for (let i = 0; i < 30; i++) {
      sends.push(c.emit('send', { room: general, text: `burst ${i}` }, 2 * waitTime).then((res) => { if (res.message) acks.push(res.message.id); }, () => {}));
    }
    await sends[0]; // the server is busy with the burst
    await server.restart();
    await c.nextHello();
    const list = await server.must('GET', `/api/collections/messages/records?perPage=200&filter=${encodeURIComponent(`(room='${general}' && text~'burst')`)}`, { token: alice.token });
    const stored = new Set(list.items.map((m) => m.id));
    assert.ok(acks.length > 0);
    for (const id of acks) assert.ok(stored.has(id), `acked message ${id} is stored`);
  } finally {
    c.close();
  }
});
