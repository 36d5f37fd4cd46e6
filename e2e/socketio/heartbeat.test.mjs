// Heartbeats with short timings: the clients answer (v4) or send (v2)
// pings and stay connected; a session nobody polls is closed.

import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sioConnect, sleep } from './harness.mjs';

let server;
let alice;

before(async () => {
  // Pings every 400 ms; a session silent for 1.6 s is dropped.
  server = await startServer({ CHAT_WS_PING: '400ms', CHAT_WS_PONG_WAIT: '1600ms' });
  alice = await server.newUser('Alice');
});

after(async () => {
  await server?.close();
});

describe('clients answer the heartbeat', { concurrency: true }, () => {
  for (const [version, transports] of [[4, ['polling']], [4, ['websocket']], [4, undefined], [2, ['polling']], [2, ['websocket']]]) {
    test(`socket.io-client ${version}.x on ${transports ?? 'polling, then WebSocket'} stays connected`, async () => {
      const auth = version === 2 ? { query: { token: alice.token } } : { auth: { token: alice.token } };
      const c = await sioConnect(server, version, { ...auth, transports });
      try {
        const engine = c.socket.io.engine; // engine.io-client 6 keeps these private
        assert.equal(engine.pingInterval ?? engine._pingInterval, 400);
        assert.equal(engine.pingTimeout ?? engine._pingTimeout, 1200);
        await sleep(3000); // several heartbeats
        assert.equal(c.socket.connected, true);
        await c.inbox.none((e) => e.name === 'disconnect', 'disconnect', 10);
        const room = await server.general();
        await c.must('join', { room });
      } finally {
        c.close();
      }
    });
  }
});

test('a session that stops polling is closed', async () => {
  for (const eio of [4, 3]) {
    const res = await server.request('GET', `/socket.io/?EIO=${eio}&transport=polling`);
    assert.equal(res.status, 200);
    const sid = /"sid":"([^"]+)"/.exec(typeof res.body === 'string' ? res.body : JSON.stringify(res.body))[1];
    await sleep(2500); // more than pingInterval + pingTimeout
    const poll = await server.request('GET', `/socket.io/?EIO=${eio}&transport=polling&sid=${sid}`);
    assert.equal(poll.status, 400);
    assert.deepEqual(poll.body, { code: 1, message: 'Session ID unknown' });
  }
});
