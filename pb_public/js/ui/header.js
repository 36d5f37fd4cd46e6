// The bar above the messages: the room's name and description, the
// connection state ("Reconnecting…"), the owner's Invite button, turning on
// notifications, and the buttons that open the drawers on small screens.
// Also keeps the tab title current (with the count of unseen mentions).

import { h, clear, frameBatch } from '../util.js';
import { icon } from './icons.js';

const $ = (id) => document.getElementById(id);

const CONN_TEXT = {
  connecting: 'Connecting…',
  reconnecting: 'Reconnecting…',
  stopped: 'Disconnected',
};

export function mountHeader({ store }) {
  const render = frameBatch(() => {
    const rs = store.room(store.current);
    const room = rs?.room;
    const name = room ? store.roomName(room) : (store.rooms.size ? '' : 'No rooms');
    const title = $('room-title');
    clear(title);
    if (room && room.kind !== 'direct') title.append(icon(room.kind === 'private' ? 'lock' : 'hash'));
    title.append(h('span', { text: name }));
    $('room-description').textContent = room
      ? (room.kind === 'direct' ? 'Private chat' : room.description || (room.kind === 'private' ? 'Private room' : 'Public room'))
      : '';
    $('invite-button').hidden = !(room && store.me && room.kind === 'private' && room.owner === store.me.id);
    const base = room ? `${name} · pocketchat` : 'pocketchat';
    document.title = store.titleMentions ? `(${store.titleMentions}) ${base}` : base;
  });
  store.subscribe((topic) => {
    if (topic === 'current' || topic === 'rooms' || topic === 'me' || topic === 'title') render();
    if (topic === 'conn') renderConn();
  });

  function renderConn() {
    const { status } = store.conn;
    const el = $('conn-status');
    el.dataset.state = status;
    el.textContent = CONN_TEXT[status] || '';
    document.body.dataset.conn = status;
  }
  renderConn();

  // Notifications for mentions need the person's permission, asked on a click.
  const notify = $('notify-button');
  const showNotify = () => {
    notify.hidden = !('Notification' in window) || Notification.permission !== 'default' || !store.me;
  };
  store.subscribe((topic) => topic === 'me' && showNotify());
  notify.onclick = async () => {
    await Notification.requestPermission();
    showNotify();
  };
  showNotify();
}

/**
 * mountDrawers wires the ☰ (rooms) and people buttons that open the side
 * panels as drawers on narrow screens. It returns {close} for the views
 * that should close them after a choice.
 */
export function mountDrawers() {
  const app = $('app');
  const scrim = $('scrim');
  const toggles = { sidebar: $('rooms-toggle'), people: $('people-toggle') };

  const set = (which) => {
    for (const [name, btn] of Object.entries(toggles)) {
      const open = name === which;
      btn.setAttribute('aria-expanded', String(open));
      app.classList.toggle(`${name}-open`, open);
    }
    scrim.hidden = !which;
  };
  const close = () => {
    const open = Object.entries(toggles).find(([, b]) => b.getAttribute('aria-expanded') === 'true');
    set(null);
    if (open) open[1].focus({ preventScroll: true });
  };

  toggles.sidebar.onclick = () => (app.classList.contains('sidebar-open') ? close() : (set('sidebar'), $('sidebar').querySelector('button')?.focus()));
  toggles.people.onclick = () => (app.classList.contains('people-open') ? close() : set('people'));
  scrim.onclick = close;
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && !scrim.hidden) close();
  });
  return { close: () => set(null) };
}
