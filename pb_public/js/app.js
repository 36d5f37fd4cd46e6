// Start-up and wiring: restore the session (or show the sign-in screen),
// then connect the socket, the chat controller, the store and the views.

import { Api, ApiError } from './api.js';
import { ChatSocket } from './socket.js';
import { Store } from './store.js';
import { Chat } from './chat.js';
import { frameBatch } from './util.js';
import { fillIcons } from './ui/icons.js';
import { showAuth } from './ui/auth.js';
import { mountHeader, mountDrawers } from './ui/header.js';
import { mountRooms } from './ui/rooms.js';
import { mountMessages } from './ui/messages.js';
import { mountComposer } from './ui/composer.js';
import { mountPeople } from './ui/people.js';

const $ = (id) => document.getElementById(id);

// Tokens live 5 days by default: refresh well before, while a tab is open.
const REFRESH_EVERY = 12 * 60 * 60 * 1000;
// Fetch a new file token this often: PocketBase's last 3 minutes.
const FILE_TOKEN_EVERY = 2 * 60 * 1000;
// A notice to show on the sign-in screen after a reload (session ended).
const NOTICE_KEY = 'pocketchat.notice';

const api = new Api();

boot();

async function boot() {
  fillIcons();
  const notice = sessionStorage.getItem(NOTICE_KEY) || '';
  sessionStorage.removeItem(NOTICE_KEY);
  if (api.signedIn) {
    try {
      await api.refresh();
    } catch (err) {
      // A refused token means signing in again. If the server is merely
      // unreachable, go on with the saved session: the socket keeps
      // retrying and shows that it is reconnecting.
      if (err instanceof ApiError && err.status < 500) {
        api.signOut();
        return signInScreen('Your session has ended. Please sign in again.');
      }
    }
    return startChat('user');
  }
  signInScreen(notice);
}

function signInScreen(message) {
  $('boot').hidden = true;
  showAuth(api, { message, onDone: startChat });
}

/** leave signs out and starts over from a clean page. */
function leave(notice = '') {
  api.signOut();
  if (notice) sessionStorage.setItem(NOTICE_KEY, notice);
  location.reload();
}

function startChat(mode) {
  $('boot').hidden = true;
  $('app').hidden = false;

  const store = new Store();
  const wsURL = new URL('/api/chat/ws', location.href);
  wsURL.protocol = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const socket = new ChatSocket({
    url: wsURL.href,
    // A fresh single-use ticket for every (re)connect; guests need none.
    getTicket: mode === 'user' ? () => api.ticket() : () => api.checkGuests().then(() => ''),
  });
  const chat = new Chat({ api, socket, store, onMention: (m, room) => mentioned(store, m, room) });

  const drawer = mountDrawers();
  mountHeader({ store });
  mountRooms({ store, chat, drawer, onSignOut: () => leave(), onSignIn: () => leave() });
  const messages = mountMessages({
    store, chat,
    onEdit: (m) => composer.startEdit(m),
    showError: (text) => composer.showError(text),
  });
  const composer = mountComposer({ store, chat, onSignIn: () => leave(), pin: messages.pin });
  mountPeople({ store, chat, api, drawer, showError: composer.showError });
  mountTyping(store);

  // Refused credentials: a ban (403) or a guest-less server say why;
  // anything else is an expired or revoked session.
  socket.on('unauthorized', (err) => {
    leave(err?.status === 403 || mode === 'guest' ? err.message : 'Your session has ended. Please sign in again.');
  });

  // Coming back to the tab: the room on screen is read, mentions are seen.
  document.addEventListener('visibilitychange', () => {
    if (document.visibilityState !== 'visible') return;
    store.setTitleMentions(0);
    chat.markReadIfVisible();
  });
  // Switching rooms reads the room switched to.
  store.subscribe((topic) => topic === 'current' && chat.markReadIfVisible());

  if (mode === 'user') {
    setInterval(() => api.refresh().catch(() => {}), REFRESH_EVERY);
    // Images of private rooms need a file token; each lasts a few minutes.
    api.refreshFileToken().catch(() => {});
    setInterval(() => api.refreshFileToken().catch(() => {}), FILE_TOKEN_EVERY);
  }

  socket.start();
  composer.focus();
  // For tests and the curious: the live objects.
  window.pocketchat = { api, socket, store, chat };
}

// mentioned raises the tab-title count and a notification for a message
// that mentions me while the tab is hidden.
function mentioned(store, message, room) {
  if (document.visibilityState === 'visible') return;
  store.setTitleMentions(store.titleMentions + 1);
  if (!('Notification' in window) || Notification.permission !== 'granted') return;
  const where = room.kind === 'direct' ? 'privately' : `in ${store.roomName(room)}`;
  const n = new Notification(`${message.author.name} mentioned you ${where}`, {
    body: message.text.slice(0, 200),
    tag: message.id, // one notification per message, even with several tabs
  });
  n.onclick = () => {
    window.focus();
    store.select(room.id);
    n.close();
  };
}

// mountTyping shows "Alice is typing…" under the messages; notices expire
// on their own, so it re-checks every second while anyone types.
function mountTyping(store) {
  const el = $('typing');
  let timer = 0;
  const render = frameBatch(() => {
    const names = store.typers(store.current).map((u) => u.name);
    el.textContent = names.length === 0 ? ''
      : names.length === 1 ? `${names[0]} is typing…`
        : names.length === 2 ? `${names[0]} and ${names[1]} are typing…`
          : 'Several people are typing…';
    clearTimeout(timer);
    if (names.length) timer = setTimeout(render, 1000);
  });
  store.subscribe((topic, roomId) => {
    if (topic === 'current' || (topic === 'typing' && roomId === store.current)) render();
  });
}
