// socket.io clients chat with each other and with native WebSocket and
// REST users, under the same rules.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sioConnect, nativeClient } from './harness.mjs';

let server;
let alice;
let bob;
let general;

before(async () => {
  server = await startServer();
  alice = await server.newUser('Alice');
  bob = await server.newUser('Bob');
  general = await server.general();
});

after(async () => {
  await server?.close();
});

test('join, then send with an ack callback', async () => {
  const c = await sioConnect(server, 4, { auth: { token: alice.token } });
  try {
    const joined = await c.must('join', { room: general });
    assert.equal(joined.room, general);
    assert.ok(Array.isArray(joined.messages));
    assert.equal(typeof joined.more, 'boolean');
    const ack = await c.must('send', { room: general, text: 'hello from socket.io' });
    assert.equal(ack.message.text, 'hello from socket.io');
    assert.equal(ack.message.author.id, alice.id);
    assert.equal(ack.message.room, general);
    // The sender's own connection gets the message event too.
    const ev = await c.message(general, 'hello from socket.io');
    assert.equal(ev.message.id, ack.message.id);
  } finally {
    c.close();
  }
});

test('replies to requests without an ack id are emitted as events', async () => {
  const c = await sioConnect(server, 4, { auth: { token: alice.token } });
  try {
    c.socket.emit('join', { room: general });
    const joined = await c.event('joined');
    assert.equal(joined.room, general);
    c.socket.emit('send', { room: general, text: 'no callback' });
    const ack = await c.event('ack');
    assert.equal(ack.message.text, 'no callback');
    c.socket.emit('join', {});
    const err = await c.event('error');
    assert.equal(err.code, 'bad_request');
  } finally {
    c.close();
  }
});

test('errors go to the ack callback as {error: {code, message}}', async () => {
  const c = await sioConnect(server, 4, { auth: { token: alice.token } });
  try {
    assert.deepEqual((await c.emit('join', {})).error.code, 'bad_request');
    assert.equal((await c.emit('join', { room: 'nosuchroom00000' })).error.code, 'not_found');
    assert.equal((await c.emit('send', { room: general, text: 'x'.repeat(4001) })).error.code, 'too_large');
    assert.equal((await c.emit('shout', { text: 'hi' })).error.code, 'bad_request');
    assert.equal((await c.emit('join', general)).error.code, 'bad_request');
    const bin = await c.emit('send', { room: general, text: Buffer.from('bytes') });
    assert.equal(bin.error.code, 'bad_request');
    assert.match(bin.error.message, /binary/);
  } finally {
    c.close();
  }
});

test('a native WebSocket message reaches socket.io clients, and the other way round', async () => {
  const n = await nativeClient(server, alice);
  const s4 = await sioConnect(server, 4, { auth: { token: bob.token } });
  const s2 = await sioConnect(server, 2, { query: { token: bob.token } });
  try {
    await n.request('join', { room: general });
    await s4.must('join', { room: general });
    await s2.must('join', { room: general });

    const sent = await n.request('send', { room: general, text: 'from native' });
    assert.equal(sent.type, 'ack');
    for (const c of [s4, s2]) {
      const ev = await c.message(general, 'from native');
      assert.deepEqual(ev.message, sent.message);
    }

    const ack = await s4.must('send', { room: general, text: 'from socket.io 4' });
    const frame = await n.message(general, 'from socket.io 4');
    assert.deepEqual(frame.message, ack.message);
    await s2.message(general, 'from socket.io 4');

    const ack2 = await s2.must('send', { room: general, text: 'from socket.io 2' });
    assert.deepEqual((await n.message(general, 'from socket.io 2')).message, ack2.message);
    assert.deepEqual((await s4.message(general, 'from socket.io 2')).message, ack2.message);
  } finally {
    n.close();
    s4.close();
    s2.close();
  }
});

test('a v2 and a v4 client in the same room: messages, typing, presence', async () => {
  const carol = await server.newUser('Carol');
  const room = (await server.createRoom('Two versions', 'public')).id;
  const v4 = await sioConnect(server, 4, { auth: { token: alice.token } });
  const v2 = await sioConnect(server, 2, { query: { token: carol.token } });
  try {
    await v4.must('join', { room });
    await v2.must('join', { room });
    const online = await v4.event('presence', (p) => p.room === room && p.user.id === carol.id);
    assert.equal(online.status, 'online');

    await v2.must('send', { room, text: 'v2 says hi' });
    await v4.message(room, 'v2 says hi');
    await v4.must('send', { room, text: 'v4 says hi' });
    await v2.message(room, 'v4 says hi');

    v4.socket.emit('typing', { room });
    const typing = await v2.event('typing', (t) => t.room === room);
    assert.equal(typing.user.id, alice.id);

    await v2.must('leave', { room });
    const offline = await v4.event('presence', (p) => p.room === room && p.user.id === carol.id && p.status === 'offline');
    assert.equal(offline.user.name, 'Carol');
  } finally {
    v4.close();
    v2.close();
  }
});

test('a REST message reaches socket.io clients', async () => {
  const c = await sioConnect(server, 3, { auth: { token: bob.token } });
  try {
    await c.must('join', { room: general });
    const rec = await server.post(alice, general, 'via REST');
    const ev = await c.message(general, 'via REST');
    assert.equal(ev.message.id, rec.id);
  } finally {
    c.close();
  }
});

test('private rooms stay private', async () => {
  const secret = (await server.createRoom('Secret', 'private', [alice.id])).id;
  const a = await sioConnect(server, 4, { auth: { token: alice.token } });
  const b = await sioConnect(server, 2, { query: { token: bob.token } });
  try {
    assert.ok(a.hello.rooms.some((r) => r.id === secret));
    assert.ok(!b.hello.rooms.some((r) => r.id === secret));
    assert.equal((await b.emit('join', { room: secret })).error.code, 'forbidden');
    assert.equal((await b.emit('send', { room: secret, text: 'let me in' })).error.code, 'forbidden');
    assert.equal((await b.emit('history', { room: secret })).error.code, 'forbidden');
    await a.must('join', { room: secret });
    await a.must('send', { room: secret, text: 'just us' });
    await b.inbox.none((e) => e.name === 'message' && e.data.room === secret, 'message of the private room');
  } finally {
    a.close();
    b.close();
  }
});

test('private chat: open and dm', async () => {
  const a = await sioConnect(server, 4, { auth: { token: alice.token } });
  const b = await sioConnect(server, 2, { query: { token: bob.token } });
  try {
    const opened = await a.must('open', { to: bob.id });
    assert.equal(opened.room.kind, 'direct');
    const ack = await a.must('dm', { to: bob.id, text: 'psst' });
    assert.equal(ack.message.room, opened.room.id);
    const ev = await b.message(opened.room.id, 'psst');
    assert.equal(ev.message.author.id, alice.id);
  } finally {
    a.close();
    b.close();
  }
});

test('history and resume page as on the native socket', async () => {
  const room = (await server.createRoom('Paging', 'public')).id;
  const ids = [];
  for (let i = 0; i < 5; i++) ids.push((await server.post(alice, room, `page ${i}`)).id);
  const c = await sioConnect(server, 4, { auth: { token: bob.token } });
  try {
    const latest = await c.must('history', { room, limit: 2 });
    assert.deepEqual(latest.messages.map((m) => m.id), ids.slice(3));
    assert.equal(latest.more, true);
    const older = await c.must('history', { room, before: ids[3], limit: 10 });
    assert.deepEqual(older.messages.map((m) => m.id), ids.slice(0, 3));
    const after = await c.must('resume', { room, after: ids[1] });
    assert.deepEqual(after.messages.map((m) => m.id), ids.slice(2));
    assert.equal(after.more, false);
  } finally {
    c.close();
  }
});
