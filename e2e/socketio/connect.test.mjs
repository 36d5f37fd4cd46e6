// socket.io clients connect with their default options or WebSocket only,
// with good and bad credentials, from allowed and foreign origins.

import { test, before, after, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, sioClient, sioConnect, upgraded, sleep } from './harness.mjs';

let server;
let alice;

before(async () => {
  server = await startServer({ CHAT_ALLOWED_ORIGINS: 'http://app.example' });
  alice = await server.newUser('Alice');
});

after(async () => {
  await server?.close();
});

for (const version of [4, 3, 2]) {
  describe(`socket.io-client ${version}.x`, () => {
    const auth = version === 2 ? (cred) => ({ query: cred }) : (cred) => ({ auth: cred });

    test('default options: polling, then the upgrade to WebSocket', async () => {
      const c = await sioConnect(server, version, auth({ token: alice.token }));
      try {
        assert.equal(c.hello.user.id, alice.id);
        assert.equal(c.hello.user.name, 'Alice');
        assert.ok(c.hello.rooms.some((r) => r.name === 'General'));
        await upgraded(c);
        const room = await server.general();
        const joined = await c.must('join', { room });
        assert.equal(joined.room, room);
        assert.ok(joined.online.some((u) => u.id === alice.id));
      } finally {
        c.close();
      }
    });

    test("transports: ['websocket']", async () => {
      const c = await sioConnect(server, version, { ...auth({ token: alice.token }), transports: ['websocket'] });
      try {
        assert.equal(c.socket.io.engine.transport.name, 'websocket');
        assert.equal(c.hello.user.id, alice.id);
        const room = await server.general();
        const res = await c.must('history', { room, limit: 1 });
        assert.equal(res.room, room);
      } finally {
        c.close();
      }
    });

    test("transports: ['polling'] only", async () => {
      const c = await sioConnect(server, version, { ...auth({ token: alice.token }), transports: ['polling'] });
      try {
        assert.equal(c.socket.io.engine.transport.name, 'polling');
        const room = await server.general();
        await c.must('join', { room });
        const { message } = await c.must('send', { room, text: `polling ${version}` });
        assert.equal(message.text, `polling ${version}`);
        await c.message(room, `polling ${version}`);
      } finally {
        c.close();
      }
    });

    test('a ticket', async () => {
      const c = await sioConnect(server, version, auth({ ticket: await server.ticket(alice) }));
      c.close();
      assert.equal(c.hello.user.id, alice.id);
    });

    test('the Authorization header (extraHeaders)', async () => {
      const c = await sioConnect(server, version, { extraHeaders: { Authorization: `Bearer ${alice.token}` } });
      c.close();
      assert.equal(c.hello.user.id, alice.id);
    });

    test('a bad token is refused', async () => {
      const c = sioClient(server, version, { ...auth({ token: 'not-a-token' }), reconnection: false });
      try {
        if (version === 2) {
          const msg = await c.event('error');
          assert.equal(msg, 'The token is invalid or expired.');
        } else {
          const err = await c.event('connect_error');
          assert.equal(err.message, 'The token is invalid or expired.');
          assert.deepEqual(err.data, { status: 401 });
        }
        await c.inbox.none((e) => e.name === 'hello', 'hello');
        assert.equal(c.socket.connected, false);
      } finally {
        c.close();
      }
    });

    test('a used ticket is refused', async () => {
      const ticket = await server.ticket(alice);
      (await sioConnect(server, version, auth({ ticket }))).close();
      const c = sioClient(server, version, { ...auth({ ticket }), reconnection: false });
      try {
        const ev = await c.event(version === 2 ? 'error' : 'connect_error');
        assert.match(version === 2 ? ev : ev.message, /ticket is invalid, expired or already used/);
      } finally {
        c.close();
      }
    });

    test('a guest reads but cannot send', async () => {
      const c = await sioConnect(server, version);
      try {
        assert.equal(c.hello.user, null);
        const room = await server.general();
        const joined = await c.must('join', { room });
        assert.equal(joined.room, room);
        const res = await c.emit('send', { room, text: 'hi' });
        assert.equal(res.error.code, 'auth_required');
        // The guest sees what others write.
        const bob = await server.newUser('Bob');
        await server.post(bob, room, `for the guest ${version}`);
        await c.message(room, `for the guest ${version}`);
      } finally {
        c.close();
      }
    });
  });
}

test('a v4 client refused may connect again with other credentials', async () => {
  const c = sioClient(server, 4, { auth: { token: 'bad' }, reconnection: false });
  try {
    await c.event('connect_error');
    c.socket.auth = { token: alice.token };
    c.socket.connect();
    const hello = await c.nextHello();
    assert.equal(hello.user.id, alice.id);
  } finally {
    c.close();
  }
});

test('a fresh ticket on every connection: auth as a function', async () => {
  let calls = 0;
  const c = await sioConnect(server, 4, {
    auth: (cb) => { calls++; server.ticket(alice).then((ticket) => cb({ ticket })); },
  });
  try {
    assert.equal(c.hello.user.id, alice.id);
    c.socket.io.engine.close(); // drop the connection: the client reconnects
    const hello = await c.nextHello();
    assert.equal(hello.user.id, alice.id);
    assert.ok(calls >= 2);
  } finally {
    c.close();
  }
});

test('a banned user is refused', async () => {
  const eve = await server.newUser('Eve');
  await server.must('PATCH', `/api/collections/users/records/${eve.id}`, { token: await server.superToken(), body: { banned: true } });
  const c = sioClient(server, 4, { auth: { token: eve.token }, reconnection: false });
  try {
    const err = await c.event('connect_error');
    assert.equal(err.message, 'This account is banned.');
    assert.deepEqual(err.data, { status: 403 });
  } finally {
    c.close();
  }
});

describe('origins', () => {
  const handshake = (origin) => server.request('GET', '/socket.io/?EIO=4&transport=polling', { headers: origin ? { origin } : {} });

  test('a foreign origin is refused', async () => {
    const res = await handshake('http://evil.example');
    assert.equal(res.status, 403);
  });

  test('the same origin needs no CORS', async () => {
    const res = await handshake(server.url);
    assert.equal(res.status, 200);
    assert.notEqual(res.headers.get('access-control-allow-credentials'), 'true');
  });

  test('an allowed origin may poll with credentials', async () => {
    const res = await handshake('http://app.example');
    assert.equal(res.status, 200);
    assert.equal(res.headers.get('access-control-allow-origin'), 'http://app.example');
    assert.equal(res.headers.get('access-control-allow-credentials'), 'true');
  });

  test('a foreign origin cannot open the WebSocket either', async () => {
    const c = sioClient(server, 4, { transports: ['websocket'], extraHeaders: { Origin: 'http://evil.example' }, reconnection: false });
    try {
      await c.event('connect_error');
      await sleep(100);
      assert.equal(c.socket.connected, false);
    } finally {
      c.close();
    }
  });
});
