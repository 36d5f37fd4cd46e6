// Network trouble: the server restarts while people chat. The client shows
// that it is reconnecting, comes back with a fresh ticket, rejoins, resumes
// from its last message, and shows everything sent meanwhile exactly once.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launchBrowser, openChat, connected, send, message, check, waitFor } from './harness.js';

describe('reconnecting', () => {
  let server;
  let browser;

  before(async () => {
    [server, browser] = await Promise.all([Server.start(), launchBrowser()]);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('after a server restart every message sent meanwhile shows once', async () => {
    const [alice, bob] = await Promise.all([server.createUser('Alice'), server.createUser('Bob')]);
    const general = await server.general();
    const a = await openChat(browser, server, alice);
    const b = await openChat(browser, server, bob);

    await send(b, 'before the restart');
    await message(a, 'before the restart').waitFor();

    // Hold Alice's ticket requests, so she stays away until the others
    // have written (the requests go through, late, when released).
    const held = [];
    let holding = true;
    await a.route('**/api/chat/ticket', (route) => (holding ? held.push(route) : route.fallback()));

    await server.restart();
    // The restart closed Alice's socket: she sees it.
    await a.getByRole('status').filter({ hasText: 'Reconnecting…' }).waitFor();
    await waitFor(a, () => document.body.dataset.conn === 'reconnecting');

    // A message typed now cannot be sent: it is marked, with a retry button.
    await send(a, 'typed while away');
    const failed = a.locator('#message-list .msg.failed', { hasText: 'typed while away' });
    await failed.getByRole('button', { name: 'Retry' }).waitFor();

    // Meanwhile: Bob's browser is back and writes, and 60 more messages
    // come through REST — more than one page, so the catch-up must page.
    await connected(b);
    await send(b, 'after the restart, from the browser');
    await message(b, 'after the restart, from the browser').waitFor();
    const missed = Array.from({ length: 60 }, (_, i) => `missed ${String(i + 1).padStart(2, '0')}`);
    for (const text of missed) await server.post(bob, general, text);

    // Let Alice reconnect.
    holding = false;
    // A request the page gave up on (its 10 s limit) cannot be continued.
    for (const route of held) await route.fallback().catch(() => {});
    await connected(a);
    await a.getByRole('status').filter({ hasText: 'Reconnecting…' }).waitFor({ state: 'detached' });

    const expected = ['before the restart', 'after the restart, from the browser', ...missed];
    await message(a, 'missed 60').waitFor();
    for (const text of expected) {
      assert.equal(await message(a, text).count(), 1, `"${text}" is not shown exactly once`);
    }
    const texts = await a.locator('#message-list .msg:not(.pending) .msg-text').allTextContents();
    assert.deepEqual(texts, expected, 'messages are missing, repeated or out of order');
    const ids = await a.locator('#message-list .msg:not(.pending)').evaluateAll((els) => els.map((e) => e.dataset.id));
    assert.equal(new Set(ids).size, ids.length);

    // Retrying the failed message now sends it, once, to both.
    await failed.getByRole('button', { name: 'Retry' }).click();
    await message(b, 'typed while away').waitFor();
    await message(a, 'typed while away').waitFor();
    await failed.waitFor({ state: 'detached' });
    assert.equal(await message(a, 'typed while away').count(), 1);
    assert.equal(await message(b, 'typed while away').count(), 1);

    // Bob's page also came back without repeats.
    const bobTexts = await b.locator('#message-list .msg:not(.pending) .msg-text').allTextContents();
    assert.deepEqual(bobTexts, [...expected, 'typed while away']);
    check(a);
    check(b);
  });

  test('an account that no longer exists is sent back to sign in', async () => {
    const user = await server.createUser('Gone');
    const page = await openChat(browser, server, user);
    // The user deletes their account elsewhere; then the connection drops.
    await server.must('DELETE', `/api/collections/users/records/${user.id}`, { token: user.token });
    await server.restart();
    await page.locator('#signin-form').waitFor();
    await page.getByRole('alert').filter({ hasText: 'Your session has ended' }).waitFor();
    check(page);
  });
});
