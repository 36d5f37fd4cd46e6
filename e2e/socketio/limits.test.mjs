// The chat's limits and moderation reach socket.io clients the way they
// reach native ones: the send allowance (shared with the native socket),
// edits and deletions, the connection limit per user, and a ban that
// ends a connected client.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sioClient, sioConnect, nativeClient } from './harness.mjs';

let server;
let general;

before(async () => {
  server = await startServer({ CHAT_SEND_RATE: '0.2', CHAT_SEND_BURST: '3', CHAT_CONNS_PER_USER: '2' });
  general = await server.general();
});

after(async () => {
  await server?.close();
});

test('the send allowance is shared with the native socket; beyond it, rate_limited with retryAfter', async () => {
  const alice = await server.newUser('Alice');
  const c = await sioConnect(server, 4, { auth: { token: alice.token } });
  const n = await nativeClient(server, alice);
  try {
    await c.must('send', { room: general, text: 'one' });
    await c.must('send', { room: general, text: 'two' });
    const viaNative = await n.request('send', { room: general, text: 'three' });
    assert.equal(viaNative.type, 'ack');
    const res = await c.emit('send', { room: general, text: 'four' });
    assert.equal(res.error?.code, 'rate_limited');
    assert.ok(res.error.retryAfter > 0, `retryAfter ${res.error.retryAfter}`);
  } finally {
    c.close();
    n.close();
  }
});

test('edit and delete with an ack; the room gets edited and deleted', async () => {
  const bob = await server.newUser('Bob');
  const carol = await server.newUser('Carol');
  const b = await sioConnect(server, 3, { auth: { token: bob.token } });
  const c = await sioConnect(server, 2, { query: { token: carol.token } });
  try {
    await c.must('join', { room: general });
    const sent = await b.must('send', { room: general, text: 'tpyo' });
    await c.message(general, 'tpyo');
    const edited = await b.must('edit', { message: sent.message.id, text: 'typo' });
    assert.equal(edited.message.text, 'typo');
    const ev = await c.event('edited', (d) => d.message.id === sent.message.id);
    assert.equal(ev.message.text, 'typo');
    const refused = await c.emit('delete', { message: sent.message.id });
    assert.equal(refused.error?.code, 'forbidden');
    await b.must('delete', { message: sent.message.id });
    const gone = await c.event('deleted', (d) => d.id === sent.message.id);
    assert.equal(gone.room, general);
  } finally {
    b.close();
    c.close();
  }
});

test('a user over the connection limit gets connect_error 429', async () => {
  const dave = await server.newUser('Dave');
  const first = await sioConnect(server, 4, { auth: { token: dave.token } });
  const second = await nativeClient(server, dave);
  const third = sioClient(server, 4, { auth: { token: dave.token }, reconnection: false });
  try {
    const err = await third.event('connect_error');
    assert.deepEqual(err.data, { status: 429 });
    assert.match(err.message, /Too many chat connections/);
  } finally {
    first.close();
    second.close();
    third.close();
  }
});

test('a ban from the dashboard ends a connected client with the reason', async () => {
  const eve = await server.newUser('Eve');
  const c = await sioConnect(server, 4, { auth: { token: eve.token }, reconnection: false });
  try {
    await server.must('PATCH', `/api/collections/users/records/${eve.id}`, { token: await server.superToken(), body: { banned: true } });
    const err = await c.event('error');
    assert.equal(err.code, 'forbidden');
    assert.equal(await c.event('disconnect'), 'io server disconnect');
  } finally {
    c.close();
  }
});
