// Accounts in the browser client: signing up and in, the remembered session,
// the errors people see, signing out, and reading as a guest.

import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Server, launchBrowser, openChat, connected, check, message, tinyPNG } from './harness.js';

describe('accounts', () => {
  let server;
  let browser;

  before(async () => {
    [server, browser] = await Promise.all([Server.start(), launchBrowser()]);
  });

  after(async () => {
    await browser?.close();
    await server?.close();
  });

  test('sign up with an avatar, then a reload signs in by itself', async () => {
    const page = await openChat(browser, server);
    await page.getByRole('tab', { name: 'Create account' }).click();
    const form = page.locator('#signup-form');
    await form.getByLabel('Name').fill('Ada Lovelace');
    await form.getByLabel('Email').fill('ada@example.com');
    await form.getByLabel('Password').fill('analytical-engine');
    await form.getByLabel(/Avatar/).setInputFiles({ name: 'ada.png', mimeType: 'image/png', buffer: await tinyPNG() });
    await page.getByRole('button', { name: 'Create account' }).click();

    await connected(page);
    await page.locator('#me-box', { hasText: 'Ada Lovelace' }).waitFor();
    await page.locator('#me-box img.avatar[src*="/api/files/users/"]').waitFor();
    await page.locator('#room-title', { hasText: 'General' }).waitFor();

    await page.reload();
    await connected(page);
    await page.locator('#me-box', { hasText: 'Ada Lovelace' }).waitFor();
    assert.equal(await page.locator('#auth').isVisible(), false, 'the sign-in screen shows after a reload');
    // The token was refreshed on start and saved again.
    const saved = await page.evaluate(() => JSON.parse(localStorage.getItem('pocketchat.auth')));
    assert.equal(saved.record.name, 'Ada Lovelace');
    check(page);
    await page.context().close();
  });

  test('a wrong password says so', async () => {
    const user = await server.createUser('Grace');
    const page = await openChat(browser, server);
    const form = page.locator('#signin-form');
    await form.getByLabel('Email').fill(user.email);
    await form.getByLabel('Password').fill('not-the-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Wrong email or password.' }).waitFor();
    assert.equal(await page.locator('#app').isVisible(), false);

    // The right one works.
    await form.getByLabel('Password').fill(user.password);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await connected(page);
    check(page);
    await page.context().close();
  });

  test('sign-up errors are shown by field: taken email, weak password', async () => {
    const taken = await server.createUser('Taken');
    const page = await openChat(browser, server);
    await page.getByRole('tab', { name: 'Create account' }).click();
    const form = page.locator('#signup-form');
    await form.getByLabel('Name').fill('Someone');
    await form.getByLabel('Email').fill(taken.email);
    await form.getByLabel('Password').fill('short');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.locator('#signup-password-error', { hasText: 'at least 8 characters' }).waitFor();

    await form.getByLabel('Password').fill('long-enough-password');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.locator('#signup-email-error', { hasText: 'already exists' }).waitFor();
    assert.equal(await form.getByLabel('Email').getAttribute('aria-invalid'), 'true');
    check(page);
    await page.context().close();
  });

  test('a server that cannot be reached gets a clear message', async () => {
    const page = await openChat(browser, server);
    await page.route('**/api/collections/users/auth-with-password', (route) => route.abort('connectionrefused'));
    const form = page.locator('#signin-form');
    await form.getByLabel('Email').fill('nobody@example.com');
    await form.getByLabel('Password').fill('whatever-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Cannot reach the server' }).waitFor();
    await page.context().close();
  });

  test('signing out forgets the session', async () => {
    const user = await server.createUser('Leaver');
    const page = await openChat(browser, server, user);
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByRole('button', { name: 'Sign in' }).waitFor();
    assert.equal(await page.evaluate(() => localStorage.getItem('pocketchat.auth')), null);
    await page.reload();
    await page.locator('#signin-form').waitFor();
    check(page);
    await page.context().close();
  });

  test('a guest reads public rooms but cannot send', async () => {
    const writer = await server.createUser('Writer');
    await server.post(writer, await server.general(), 'Welcome, readers!');

    const page = await openChat(browser, server);
    await page.getByRole('button', { name: 'Read the public rooms as a guest' }).click();
    await connected(page);
    await message(page, 'Welcome, readers!').waitFor();

    const box = page.getByRole('textbox', { name: /^Message/ });
    assert.equal(await box.isDisabled(), true, 'the message box is enabled for a guest');
    assert.equal(await page.getByRole('button', { name: 'Send' }).isDisabled(), true);
    await page.locator('#guest-hint', { hasText: 'to join the conversation' }).waitFor();
    assert.equal(await box.getAttribute('placeholder'), 'Sign in to send messages');

    // The hint's button leads to the sign-in screen.
    await page.locator('#guest-hint').getByRole('button', { name: 'Sign in' }).click();
    await page.locator('#signin-form').waitFor();
    check(page);
    await page.context().close();
  });

  test('a server without guests sends visitors to sign in', async () => {
    const closed = await Server.start({ env: { CHAT_GUESTS: 'false' } });
    try {
      const page = await openChat(browser, closed);
      await page.getByRole('button', { name: 'Read the public rooms as a guest' }).click();
      await page.locator('#signin-form').waitFor();
      await page.getByRole('alert').filter({ hasText: 'does not let guests read' }).waitFor();
      check(page);
      await page.context().close();
    } finally {
      await closed.close();
    }
  });
});
