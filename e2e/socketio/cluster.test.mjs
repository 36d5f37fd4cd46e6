// A cluster (a primary and two edges on a real Redis): the official
// socket.io clients on one edge chat with native clients on the other, in
// a room and privately, with tickets made by the primary.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { bin, startServer, sioConnect, nativeClient } from './harness.mjs';
import { Redis, Edge, clusterEnv } from '../cluster.mjs';

let redis;
let primary;
let edges = [];

before(async () => {
  redis = await Redis.start();
  primary = await startServer(clusterEnv(redis));
  edges = [await Edge.start(bin, primary, redis), await Edge.start(bin, primary, redis)];
});

after(async () => {
  for (const e of edges) await e.close();
  await primary?.close();
  await redis?.close();
});

test('socket.io clients on one edge and native clients on another talk', async () => {
  const [e1, e2] = edges;
  const [alice, bob, carol] = [await primary.newUser('Alice'), await primary.newUser('Bob'), await primary.newUser('Carol')];
  const general = await primary.general();
  // A v4 client with a token and a v2 client polling only with a
  // primary's ticket, both on the first edge; Bob natively on the second.
  const a = await sioConnect(e1, 4, { auth: { token: alice.token } });
  const c = await sioConnect(e1, 2, { query: { ticket: await primary.ticket(carol) }, transports: ['polling'] });
  const b = await nativeClient(e2, bob);
  try {
    await a.must('join', { room: general });
    await c.must('join', { room: general });
    const joined = await b.request('join', { room: general });
    assert.equal(joined.type, 'joined');
    // Presence is the cluster's: Bob's edge lists the socket.io users.
    const online = joined.online.map((u) => u.id).sort();
    assert.deepEqual(online, [alice.id, bob.id, carol.id].sort());

    const ack = await a.must('send', { room: general, text: 'from socket.io 4 on edge 1' });
    const got = await b.message(general, 'from socket.io 4 on edge 1');
    assert.equal(got.message.id, ack.message.id);
    await c.message(general, 'from socket.io 4 on edge 1');

    const reply = await b.request('send', { room: general, text: 'from native on edge 2' });
    assert.equal(reply.type, 'ack');
    await a.message(general, 'from native on edge 2');
    await c.message(general, 'from native on edge 2');

    // Privately, across edges, both ways.
    const dm = await a.must('dm', { to: bob.id, text: 'psst, from edge 1' });
    const priv = await b.message(dm.message.room, 'psst, from edge 1');
    assert.equal(priv.message.author.id, alice.id);
    await b.request('send', { room: dm.message.room, text: 'psst back, from edge 2' });
    await a.message(dm.message.room, 'psst back, from edge 2');
    await c.inbox.none((e) => e.name === 'message' && e.data.room === dm.message.room, 'the private message');
  } finally {
    a.close();
    c.close();
    b.close();
  }
});
