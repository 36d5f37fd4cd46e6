// A cluster: a page served by an edge chats with a page on the primary
// through Redis; when Redis restarts, the edge's page is told to resync and
// shows what it missed, once, without reconnecting.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { BIN, Server, launchBrowser, openChat, send, message, check, waitFor } from './harness.js';
import { Redis, Edge, clusterEnv } from '../cluster.mjs';

describe('a cluster', () => {
  let redis;
  let primary;
  let edge;
  let browser;

  before(async () => {
    redis = await Redis.start();
    [primary, browser] = await Promise.all([Server.start({ env: clusterEnv(redis) }), launchBrowser()]);
    edge = await Edge.start(BIN, primary, redis);
  });

  after(async () => {
    await browser?.close();
    await edge?.close();
    await primary?.close();
    await redis?.close();
  });

  test('a page on an edge catches up after Redis restarts', async () => {
    const [alice, bob] = await Promise.all([primary.createUser('Alice'), primary.createUser('Bob')]);
    const general = await primary.general();
    const sockets = [];
    const a = await openChat(browser, edge, alice);
    a.on('websocket', (ws) => sockets.push(ws.url()));
    const b = await openChat(browser, primary, bob);

    // Across nodes, both ways.
    await send(b, 'hello from the primary');
    await message(a, 'hello from the primary').waitFor();
    await send(a, 'hello from the edge');
    await message(b, 'hello from the edge').waitFor();
    // Alice's page lists Bob, who is connected to another node.
    await a.locator('#online-list', { hasText: 'Bob' }).waitFor();

    // Redis goes away: messages are still saved and acked, but their
    // events cannot reach the edge.
    await redis.kill();
    const missed = ['while away: alpha', 'while away: bravo', 'while away: charlie'];
    for (const text of missed) await primary.post(bob, general, text);
    // Gone for good once the primary gave up publishing them (the Redis
    // client retries for a moment first).
    const deadline = Date.now() + 10_000;
    while (!primary.output.includes('publishing through Redis failed')) {
      assert.ok(Date.now() < deadline, `the primary did not give up publishing:\n${primary.output}`);
      await new Promise((r) => setTimeout(r, 50)); // poll interval, bounded by the deadline
    }
    await redis.resume();

    // The edge reconnects, Alice's page gets `resync` and resumes.
    for (const text of missed) await message(a, text).waitFor();
    await send(b, 'after the restart');
    await message(a, 'after the restart').waitFor();
    for (const text of [...missed, 'hello from the primary', 'after the restart']) {
      assert.equal(await message(a, text).count(), 1, `"${text}" shown once`);
    }
    // On the socket it had: the catch-up is the resync's, not a reconnect's.
    assert.deepEqual(sockets, [], 'Alice opened no new socket');
    await waitFor(a, () => document.body.dataset.conn === 'online');
    check(a);
    check(b);
  });
});
