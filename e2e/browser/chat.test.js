// Chatting in the browser client: two people in real time, text that is
// never HTML, paging back through history, images, private chats, rooms
// that change live, inviting to a private room, and mentions.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import {
  Server, launchBrowser, openChat, openRoom, roomButton, send, message, check, waitFor, tinyPNG, repoRoot,
} from './harness.js';

describe('chat', () => {
  let server;
  let browser;
  let alice, bob, carol; // users
  let a, b, c; // their pages
  let general, design; // rooms

  before(async () => {
    [server, browser] = await Promise.all([Server.start(), launchBrowser()]);
    [alice, bob, carol] = await Promise.all(['Alice', 'Bob', 'Carol'].map((n) => server.createUser(n)));
    general = await server.general();
    design = await server.createRoom({ name: 'Design', kind: 'public', description: 'Mockups and UI reviews' });
    await server.createRoom({ name: 'Random', kind: 'public' });
    [a, b, c] = await Promise.all([alice, bob, carol].map((u) => openChat(browser, server, u)));
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('people chat in real time', async () => {
    // Everyone sees everyone online.
    await a.locator('#online-list', { hasText: 'Bob' }).waitFor();
    await b.locator('#online-list', { hasText: 'Alice' }).waitFor();
    await b.locator('#online-list', { hasText: 'Carol' }).waitFor();

    const conversation = [
      [a, 'Morning all! 👋 Is the release going out today?'],
      [b, 'Yes, v1.2 is live 🚀 Notes: https://example.com/releases/1.2'],
      [c, 'Nice! The new onboarding flow looks great on my phone.'],
      [a, 'Great work @Bob 🎉 Lunch is on me.'],
    ];
    for (const [from, text] of conversation) {
      await send(from, text);
      for (const page of [a, b, c]) await message(page, text).waitFor();
    }

    // Each message exactly once everywhere, none left "sending".
    for (const page of [a, b, c]) {
      for (const [, text] of conversation) {
        assert.equal(await message(page, text).count(), 1, `"${text}" is not shown once`);
      }
      await waitFor(page, () => document.querySelectorAll('#message-list .pending').length === 0);
    }

    // The link is a real link, opening safely in a new tab.
    const link = a.locator('#message-list a', { hasText: 'https://example.com/releases/1.2' });
    assert.equal(await link.getAttribute('href'), 'https://example.com/releases/1.2');
    assert.equal(await link.getAttribute('rel'), 'noopener noreferrer');
    // Bob sees his mention highlighted.
    const praise = message(b, 'Great work @Bob 🎉 Lunch is on me.');
    await praise.locator('mark.mention', { hasText: '@Bob' }).waitFor();
    assert.match(await praise.getAttribute('class'), /mentions-me/);

    // A message in another room counts as unread there.
    await server.post(carol, design.id, 'New mockups are up for review.');
    await b.locator('#room-list .room-item.unread', { hasText: 'Design' }).locator('.unread-badge', { hasText: '1' }).waitFor();

    // "Alice is typing…" while she types, gone a few seconds after.
    await a.getByRole('textbox', { name: /^Message/ }).fill('Thinking of ');
    await b.locator('#typing', { hasText: 'Alice is typing…' }).waitFor();

    // The main screen, for the README.
    await b.screenshot({ path: path.join(repoRoot, 'docs/screenshot.png') });

    await b.locator('#typing:empty').waitFor({ state: 'attached' });
    await a.getByRole('textbox', { name: /^Message/ }).fill('');
    // Opening the room reads it.
    await openRoom(b, 'Design');
    await message(b, 'New mockups are up for review.').waitFor();
    await b.locator('#room-list .room-item.unread').waitFor({ state: 'detached' });
    check(a);
    check(b);
    check(c);
  });

  test('message text is shown as text, never run as HTML', async () => {
    const payload = '<img src=x onerror=alert(1)> <script>alert(2)</script> <b>bold?</b> javascript:alert(3)';
    await openRoom(b, 'General');
    await send(a, payload);
    const shown = message(b, payload);
    await shown.waitFor();
    assert.equal(await shown.locator('.msg-text').textContent(), payload);
    assert.equal(await shown.locator('.msg-text img, .msg-text script, .msg-text b').count(), 0);
    // No link for a javascript: "URL".
    assert.equal(await shown.locator('a').count(), 0);
    assert.deepEqual(a.dialogs, []);
    assert.deepEqual(b.dialogs, []);
    check(a);
    check(b);
  });

  test('names of people, rooms and files are shown as text, never run as HTML', async () => {
    const evil = {
      user: '<img src=x onerror=alert(4)>Eve',
      room: '<script>alert(5)</script><b>Lounge</b>',
      description: '<img src=z onerror=alert(6)> topic',
      file: '<img src=y onerror=alert(7)>.png',
    };
    const eve = await server.createUser(evil.user);
    await server.createRoom({ name: evil.room, kind: 'public', description: evil.description });
    await server.post(eve, general, 'hi from Eve');

    // Eve's name above her message, the room's name in the sidebar and as
    // the title, its description: text, with no element or handler made.
    await openRoom(a, 'General');
    const msg = message(a, 'hi from Eve');
    await msg.waitFor();
    assert.equal(await msg.locator('.msg-author').textContent(), evil.user);
    const room = roomButton(a, evil.room);
    await room.waitFor();
    await openRoom(a, evil.room);
    assert.equal(await a.locator('#room-title').textContent(), evil.room);
    await a.getByText(evil.description).first().waitFor();

    // A picked file's name in the composer.
    await a.locator('#file-input').setInputFiles({ name: evil.file, mimeType: 'image/png', buffer: await tinyPNG(20, 20) });
    await a.locator('#attachment', { hasText: evil.file }).waitFor();

    const injected = await a.evaluate(() => ({
      handlers: document.querySelectorAll('[onerror], [onload], [onclick]').length,
      scripts: [...document.querySelectorAll('script')].filter((s) => !s.src).length,
      bold: document.querySelectorAll('#sidebar b, #room-title b').length,
    }));
    assert.deepEqual(injected, { handlers: 0, scripts: 0, bold: 0 });
    await a.locator('#attachment button').first().click(); // drop the attachment again
    await openRoom(a, 'General');
    check(a);
  });

  test('I edit and delete my own messages; everyone sees it live', async () => {
    await openRoom(a, 'General');
    await openRoom(b, 'General');
    await send(a, 'Teh meeting is at 3');
    const mine = message(a, 'Teh meeting is at 3');
    await mine.waitFor();
    await message(b, 'Teh meeting is at 3').waitFor();
    // Nobody else's messages offer to be changed.
    assert.equal(await message(b, 'Teh meeting is at 3').getByRole('button', { name: 'Edit this message' }).count(), 0);

    await mine.getByRole('button', { name: 'Edit this message' }).click();
    const input = a.getByRole('textbox', { name: /^Message/ });
    assert.equal(await input.inputValue(), 'Teh meeting is at 3');
    await a.locator('#editing').waitFor();
    await input.fill('The meeting is at 3');
    await input.press('Enter');
    for (const page of [a, b]) {
      const edited = message(page, 'The meeting is at 3');
      await edited.locator('.edited', { hasText: '(edited)' }).waitFor();
      assert.equal(await message(page, 'Teh meeting is at 3').count(), 0);
    }
    await a.locator('#editing').waitFor({ state: 'hidden' });
    assert.equal(await input.inputValue(), '');

    // Esc leaves editing without a change.
    await message(a, 'The meeting is at 3').getByRole('button', { name: 'Edit this message' }).click();
    await input.press('Escape');
    await a.locator('#editing').waitFor({ state: 'hidden' });

    await message(a, 'The meeting is at 3').getByRole('button', { name: 'Delete this message' }).click();
    for (const page of [a, b]) await message(page, 'The meeting is at 3').waitFor({ state: 'detached' });
    check(a);
    check(b);
  });

  test('messages sent in quick succession arrive once each, in order', async () => {
    await openRoom(a, 'General');
    await openRoom(b, 'General');
    const box = a.getByRole('textbox', { name: /^Message/ });
    const burst = ['one', 'two', 'three', 'four', 'five'].map((w) => `quick ${w}`);
    for (const text of burst) {
      await box.fill(text);
      await box.press('Enter'); // no waiting for the ack in between
    }
    for (const page of [a, b]) {
      await message(page, 'quick five').waitFor();
      await waitFor(page, () => document.querySelectorAll('#message-list .pending').length === 0);
      const texts = (await page.locator('#message-list .msg .msg-text').allTextContents()).filter((t) => t.startsWith('quick '));
      assert.deepEqual(texts, burst);
    }
    check(a);
    check(b);
  });

  test('scrolling up loads older messages, each once', async () => {
    const room = await server.createRoom({ name: 'History', kind: 'public' });
    for (let i = 1; i <= 120; i++) await server.post(alice, room.id, `history ${String(i).padStart(3, '0')}`);

    // A fresh page: it knows nothing of the room yet.
    const page = await openChat(browser, server, bob);
    await openRoom(page, 'History');
    await message(page, 'history 120').waitFor();
    assert.equal(await message(page, 'history 001').count(), 0, 'the whole history came at once');

    const scroller = page.locator('#scroller');
    for (let round = 0; round < 10 && !(await message(page, 'history 001').count()); round++) {
      const before = await page.locator('#message-list .msg').count();
      await scroller.evaluate((el) => { el.scrollTop = 0; });
      await waitFor(page, (n) => document.querySelectorAll('#message-list .msg').length > n, before);
    }
    await message(page, 'history 001').waitFor();

    const texts = await page.locator('#message-list .msg .msg-text').allTextContents();
    const want = Array.from({ length: 120 }, (_, i) => `history ${String(i + 1).padStart(3, '0')}`);
    assert.deepEqual(texts, want);
    const ids = await page.locator('#message-list .msg').evaluateAll((els) => els.map((e) => e.dataset.id));
    assert.equal(new Set(ids).size, 120);
    await page.locator('#history-start', { hasText: 'This is the beginning of History.' }).waitFor();
    check(page);
    await page.context().close();
  });

  test('an image shows as a thumbnail for the other person', async () => {
    await openRoom(a, 'General');
    await openRoom(b, 'General');
    await a.locator('#file-input').setInputFiles({ name: 'gradient.png', mimeType: 'image/png', buffer: await tinyPNG(120, 80) });
    await a.locator('#attachment', { hasText: 'gradient.png' }).waitFor();
    await send(a, 'A picture for you');

    const msg = message(b, 'A picture for you');
    const img = msg.locator('.msg-image img');
    await img.waitFor();
    // Signed-in clients add their file token (needed in private rooms).
    assert.match(await img.getAttribute('src'), /^\/api\/files\/messages\/\w+\/gradient\w*\.png\?thumb=200x200&token=[\w.-]+$/);
    await waitFor(b, (id) => {
      const el = document.querySelector(`[data-id="${id}"] .msg-image img`);
      return el && el.complete && el.naturalWidth > 0;
    }, await msg.getAttribute('data-id'));

    // Clicking the thumbnail opens the full-size picture.
    await msg.getByRole('button', { name: /open full size/ }).click();
    const full = b.locator('#image-dialog img');
    await full.waitFor();
    assert.match(await full.getAttribute('src'), /^\/api\/files\/messages\/\w+\/gradient\w*\.png\?token=[\w.-]+$/);
    await b.keyboard.press('Escape');
    await b.locator('#image-dialog').waitFor({ state: 'hidden' });

    // The sender sees the stored message once, no copy left uploading.
    await message(a, 'A picture for you').locator('.msg-image img').waitFor();
    await waitFor(a, () => document.querySelectorAll('#message-list .pending').length === 0);
    assert.equal(await message(a, 'A picture for you').count(), 1);
    check(a);
    check(b);
  });

  test('an image in a private room shows for its members, and only with their token', async () => {
    await server.createRoom({ name: 'Plans', kind: 'private', members: [alice.id, bob.id] });
    await roomButton(a, 'Plans').waitFor();
    await openRoom(a, 'Plans');
    await openRoom(b, 'Plans');
    await a.locator('#file-input').setInputFiles({ name: 'plan.png', mimeType: 'image/png', buffer: await tinyPNG(90, 60) });
    await a.locator('#attachment', { hasText: 'plan.png' }).waitFor();
    await send(a, 'The plan');

    const msg = message(b, 'The plan');
    await msg.locator('.msg-image img').waitFor();
    const id = await msg.getAttribute('data-id');
    await waitFor(b, (id) => {
      const el = document.querySelector(`[data-id="${id}"] .msg-image img`);
      return el && el.complete && el.naturalWidth > 0;
    }, id);
    // The same address without the token is refused.
    const src = await msg.locator('.msg-image img').getAttribute('src');
    const bare = new URL(src.replace(/[?&]token=[^&]*/, ''), server.url).href;
    assert.equal((await fetch(bare)).status, 404);
    await openRoom(a, 'General');
    await openRoom(b, 'General');
    check(a);
    check(b);
  });

  test('a private chat opened from the online list is invisible to a third person', async () => {
    await a.locator('#online-list', { hasText: 'Carol' }).waitFor();

    await a.getByRole('button', { name: 'Start a private chat with Bob' }).click();
    await a.locator('#room-title', { hasText: 'Bob' }).waitFor();
    await a.locator('#room-description', { hasText: 'Private chat' }).waitFor();
    // Bob gets the room at once, named after Alice.
    await roomButton(b, 'Alice').waitFor();

    await send(a, 'Just between us: the surprise party is on Friday.');
    // Unread on Bob's side until he opens it.
    await b.locator('#dm-list .room-item.unread .unread-badge', { hasText: '1' }).waitFor();
    await openRoom(b, 'Alice');
    await message(b, 'Just between us: the surprise party is on Friday.').waitFor();
    await b.locator('#dm-list .room-item .unread-badge').waitFor({ state: 'detached' });
    await send(b, 'My lips are sealed.');
    await message(a, 'My lips are sealed.').waitFor();

    // Carol has no such room and never got its messages.
    await c.locator('#dm-empty').waitFor();
    assert.equal(await c.locator('#dm-list .room-item').count(), 0);
    assert.equal(await c.getByText('surprise party').count(), 0);
    const leaked = await c.evaluate(() => [...window.pocketchat.store.rooms.values()].some((rs) => rs.room.kind === 'direct'));
    assert.equal(leaked, false);
    // Nor can she read them through REST.
    const res = await server.must('GET', `/api/collections/messages/records?filter=${encodeURIComponent("text~'surprise'")}`, { token: carol.token });
    assert.equal(res.items.length, 0);

    // Opening it again reuses the same room.
    await openRoom(a, 'General');
    await a.getByRole('button', { name: 'Start a private chat with Bob' }).click();
    await a.locator('#room-title', { hasText: 'Bob' }).waitFor();
    assert.equal(await a.locator('#dm-list .room-item').count(), 1);
    check(a);
    check(b);
    check(c);
  });

  test('rooms created, renamed and removed in the dashboard change live', async () => {
    await openRoom(b, 'General');
    const room = await server.createRoom({ name: 'Announcements', kind: 'public', description: 'News from the team' });
    await roomButton(b, 'Announcements').waitFor();
    await roomButton(a, 'Announcements').waitFor();

    // A private room for Alice only: Bob never sees it.
    await server.createRoom({ name: 'Alice only', kind: 'private', members: [alice.id] });
    await roomButton(a, 'Alice only').waitFor();

    await openRoom(b, 'Announcements');
    await b.locator('#room-description', { hasText: 'News from the team' }).waitFor();
    await server.must('PATCH', `/api/collections/rooms/records/${room.id}`, { token: await server.superToken(), body: { name: 'News' } });
    await roomButton(b, 'News').waitFor();
    await b.locator('#room-title', { hasText: 'News' }).waitFor();
    assert.equal(await roomButton(b, 'Announcements').count(), 0);

    await server.must('DELETE', `/api/collections/rooms/records/${room.id}`, { token: await server.superToken() });
    await roomButton(b, 'News').waitFor({ state: 'detached' });
    // The room on screen went away: Bob is back in General.
    await b.locator('#room-title', { hasText: 'General' }).waitFor();
    assert.equal(await roomButton(b, 'Alice only').count(), 0);
    check(a);
    check(b);
  });

  test('the owner creates a private room and invites someone', async () => {
    await a.getByRole('button', { name: 'Create a room' }).click();
    const dialog = a.getByRole('dialog', { name: 'Create a room' });
    await dialog.getByLabel('Name').fill('Secret plans');
    await dialog.getByLabel(/Private/).check();
    await dialog.getByRole('button', { name: 'Create room' }).click();
    await a.locator('#room-title', { hasText: 'Secret plans' }).waitFor();
    assert.equal(await roomButton(b, 'Secret plans').count(), 0);

    await a.getByRole('button', { name: 'Invite' }).click();
    const invite = a.getByRole('dialog', { name: 'Invite people' });
    await invite.getByLabel('Find people by name').fill('Bo');
    await invite.getByRole('button', { name: 'Invite Bob' }).click();
    await invite.getByRole('button', { name: 'Bob was invited' }).waitFor();
    await invite.getByRole('button', { name: 'Done' }).click();

    await roomButton(b, 'Secret plans').waitFor();
    await send(a, 'Welcome to the secret room, Bob.');
    await openRoom(b, 'Secret plans');
    await message(b, 'Welcome to the secret room, Bob.').waitFor();

    // A name that is taken is refused with a clear message.
    await a.getByRole('button', { name: 'Create a room' }).click();
    await dialog.getByLabel('Name').fill('General');
    await dialog.getByRole('button', { name: 'Create room' }).click();
    await dialog.locator('#room-name-error', { hasText: 'already exists' }).waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    check(a);
    check(b);
  });

  test('on a phone-sized screen, with the keyboard', async () => {
    const p = await openChat(browser, server, carol, { viewport: { width: 390, height: 760 } });
    // The room list is a drawer behind the ☰ button.
    assert.equal(await p.locator('#sidebar').isVisible(), false, 'the room list shows on a phone');
    const toggle = p.getByRole('button', { name: 'Show rooms' });
    await toggle.click();
    assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
    await p.locator('#sidebar').waitFor({ state: 'visible' });
    await p.locator('#sidebar').getByRole('button', { name: 'Random' }).click();
    await p.locator('#room-title', { hasText: 'Random' }).waitFor();
    await p.locator('#sidebar').waitFor({ state: 'hidden' });

    // Enter sends, Shift+Enter starts a new line.
    const box = p.getByRole('textbox', { name: 'Message Random' });
    await box.focus();
    await p.keyboard.type('line one');
    await p.keyboard.press('Shift+Enter');
    await p.keyboard.type('line two');
    await p.keyboard.press('Enter');
    await message(p, 'line one\nline two').waitFor();
    assert.equal(await box.inputValue(), '');

    // @-mention autocomplete: pick with the keyboard, then send.
    await p.keyboard.type('@Bo');
    await p.getByRole('option', { name: 'Bob' }).waitFor();
    await p.keyboard.press('Enter');
    assert.equal(await box.inputValue(), '@Bob ');
    // An emoji from the picker.
    await p.getByRole('button', { name: 'Insert an emoji' }).click();
    await p.getByRole('button', { name: 'party popper' }).click();
    await p.keyboard.type(' see you there');
    await p.keyboard.press('Enter');
    await message(p, '@Bob 🎉 see you there').waitFor();
    check(p);
    await p.context().close();
  });

  test('images can be pasted or dropped into the chat', async () => {
    await openRoom(a, 'General');
    await openRoom(b, 'General');
    const png = [...(await tinyPNG(40, 40))];
    // Paste: a clipboard with a file in it.
    await a.getByRole('textbox', { name: /^Message/ }).evaluate((box, bytes) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], 'pasted.png', { type: 'image/png' }));
      box.dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
    }, png);
    await a.locator('#attachment', { hasText: 'pasted.png' }).waitFor();
    await a.getByRole('button', { name: 'Remove the image' }).click();
    await a.locator('#attachment').waitFor({ state: 'hidden' });

    // Drop: the overlay shows while dragging, the file is attached on drop.
    await a.locator('#chat').evaluate((chat, bytes) => {
      const dt = new DataTransfer();
      dt.items.add(new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' }));
      chat.dispatchEvent(new DragEvent('dragenter', { dataTransfer: dt, bubbles: true }));
      window.overlayShown = !document.getElementById('drop-overlay').hidden;
      chat.dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true, cancelable: true }));
    }, png);
    assert.equal(await a.evaluate(() => window.overlayShown), true);
    await a.locator('#attachment', { hasText: 'dropped.png' }).waitFor();
    assert.equal(await a.locator('#drop-overlay').isVisible(), false);
    // An image alone, without text, is a message too.
    await a.getByRole('button', { name: 'Send' }).click();
    await b.locator('#message-list .msg img[src*="dropped"]').waitFor();

    // Something that is not an image is refused before any upload.
    await a.locator('#file-input').setInputFiles({ name: 'notes.txt', mimeType: 'text/plain', buffer: Buffer.from('hello') });
    await a.locator('#composer-error', { hasText: 'Only PNG, JPEG, GIF and WebP' }).waitFor();
    check(a);
    check(b);
  });

  test('a mention while the tab is hidden counts in the title and notifies', async () => {
    await openRoom(a, 'General');
    await openRoom(b, 'General');
    await a.context().grantPermissions(['notifications'], { origin: server.url });
    // Pretend Alice switched to another tab, and record notifications.
    await a.evaluate(() => {
      window.shown = [];
      window.Notification = class {
        static permission = 'granted';
        constructor(title, opts) { window.shown.push({ title, body: opts.body }); }
        close() {}
      };
      Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await send(b, 'Hey @Alice, can you review my change?');
    await message(a, 'Hey @Alice, can you review my change?').waitFor();
    await waitFor(a, () => document.title.startsWith('(1) '));
    const shown = await a.evaluate(() => window.shown);
    assert.deepEqual(shown, [{ title: 'Bob mentioned you in General', body: 'Hey @Alice, can you review my change?' }]);

    // Coming back clears the count.
    await a.evaluate(() => {
      delete document.visibilityState;
      document.dispatchEvent(new Event('visibilitychange'));
    });
    await waitFor(a, () => !document.title.startsWith('('));
    check(a);
    check(b);
  });
});
