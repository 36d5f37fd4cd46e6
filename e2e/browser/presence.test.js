// Who is online in a room with more people than CHAT_PRESENCE_LIMIT: the
// server stops announcing each one and sends counts; the online list shows
// the count, says why the list is not complete, and becomes a live list
// again when enough people have left.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launchBrowser, openChat, check, waitFor } from './harness.js';

describe('presence', () => {
  let server;
  let browser;

  before(async () => {
    [server, browser] = await Promise.all([Server.start({ env: { CHAT_PRESENCE_LIMIT: '3' } }), launchBrowser()]);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  // The count in the heading and the hint below the list of the room on screen.
  const people = (page) => page.evaluate(() => ({
    count: document.getElementById('online-count').textContent,
    hint: document.getElementById('people-hint').textContent,
    names: [...document.querySelectorAll('#online-list .person-name')].map((n) => n.textContent),
  }));
  const countIs = (page, n) => waitFor(page, (want) => document.getElementById('online-count').textContent === want, String(n));

  test('the online list of a room over the presence limit shows the count', async () => {
    const [alice, bob, carol, dave] = await Promise.all(['Alice', 'Bob', 'Carol', 'Dave'].map((n) => server.createUser(n)));
    const a = await openChat(browser, server, alice);
    const b = await openChat(browser, server, bob);
    const c = await openChat(browser, server, carol);

    // Three, the limit: everyone listed, live.
    await countIs(a, 3);
    let seen = await people(a);
    assert.deepEqual(seen.names.toSorted(), ['Alice', 'Bob', 'Carol']);
    assert.doesNotMatch(seen.hint, /too many/);

    // A fourth: a summary. The count is right everywhere; the list is the
    // first three by name (and oneself), and says so.
    const d = await openChat(browser, server, dave);
    for (const page of [a, b, c, d]) await countIs(page, 4);
    seen = await people(a);
    assert.match(seen.hint, /4 online: too many to follow one by one/);
    assert.deepEqual(seen.names.toSorted(), ['Alice', 'Bob', 'Carol']);
    seen = await people(d);
    assert.match(seen.hint, /too many/);
    assert.deepEqual(seen.names.toSorted(), ['Alice', 'Bob', 'Carol', 'Dave']);

    // Down to two (the resume mark): the whole list, live again.
    await d.context().close();
    await c.context().close();
    await countIs(a, 2);
    seen = await people(a);
    assert.deepEqual(seen.names.toSorted(), ['Alice', 'Bob']);
    assert.doesNotMatch(seen.hint, /too many/);
    await b.context().close();
    await countIs(a, 1);
    assert.deepEqual((await people(a)).names, ['Alice']);
    check(a);
  });
});
