// The sidebar: rooms and private chats with unread counts, the "create a
// room" dialog, and who I am (with sign out). On narrow screens the sidebar
// is a drawer opened by the ☰ button.

import { h, clear, avatar, frameBatch } from '../util.js';
import { describeError } from '../api.js';
import { icon } from './icons.js';

const $ = (id) => document.getElementById(id);

export function mountRooms({ store, chat, onSignOut, onSignIn, drawer }) {
  const roomList = $('room-list');
  const dmList = $('dm-list');

  const render = frameBatch(() => {
    // Re-rendering replaces the buttons: keep keyboard focus where it was.
    const focused = document.activeElement?.dataset?.room;
    const rooms = store.sortedRooms();
    fill(roomList, rooms.filter((r) => r.kind !== 'direct'));
    fill(dmList, rooms.filter((r) => r.kind === 'direct'));
    $('dm-empty').hidden = rooms.some((r) => r.kind === 'direct');
    $('dm-section').hidden = !store.me; // guests have no private chats
    $('new-room-button').hidden = !store.me;
    if (focused) document.querySelector(`[data-room="${CSS.escape(focused)}"]`)?.focus();
  });
  store.subscribe((topic) => {
    if (topic === 'rooms' || topic === 'current' || topic === 'me') render();
  });
  store.subscribe((topic) => {
    if (topic === 'me') renderMe();
  });

  function fill(ul, rooms) {
    clear(ul);
    for (const r of rooms) {
      const name = store.roomName(r);
      const unread = r.id === store.current ? 0 : store.unread(r.id);
      const current = r.id === store.current;
      const lead = r.kind === 'direct'
        ? avatar(store.users.get(store.otherMember(r)) || { id: store.otherMember(r), name }, 'sm')
        : icon(r.kind === 'private' ? 'lock' : 'hash');
      ul.append(h('li', {},
        h('button', {
          type: 'button',
          class: `room-item${current ? ' current' : ''}${unread ? ' unread' : ''}`,
          'aria-current': current ? 'true' : null,
          'aria-label': unread ? `${name}, ${unread} unread` : name,
          dataset: { room: r.id, kind: r.kind },
          on: { click: () => open(r.id) },
        },
        lead,
        h('span', { class: 'room-name', text: name }),
        unread ? h('span', { class: 'unread-badge', 'aria-hidden': 'true', text: unread > 99 ? '99+' : String(unread) }) : null)));
    }
  }

  function open(id) {
    store.select(id);
    drawer.close();
    $('composer-input').focus({ preventScroll: true });
  }

  function renderMe() {
    const box = $('me-box');
    clear(box);
    if (store.me) {
      box.append(
        avatar(store.me, 'md'),
        h('div', { class: 'me-name' }, h('span', { text: store.me.name }), h('small', { class: 'muted', text: 'Signed in' })),
        h('button', { type: 'button', class: 'icon-button', 'aria-label': 'Sign out', title: 'Sign out', on: { click: onSignOut } }, icon('logout')));
    } else {
      box.append(
        h('div', { class: 'me-name' }, h('span', { text: 'Guest' }), h('small', { class: 'muted', text: 'Reading public rooms' })),
        h('button', { type: 'button', class: 'button primary', on: { click: onSignIn }, text: 'Sign in' }));
    }
  }
  renderMe();

  mountRoomDialog({ store, chat, drawer });
  return { render };
}

// The "Create a room" dialog.
function mountRoomDialog({ chat, drawer }) {
  const dialog = $('room-dialog');
  const form = $('room-form');
  const alert = $('room-alert');
  const nameError = $('room-name-error');

  $('new-room-button').onclick = () => {
    form.reset();
    alert.hidden = true;
    nameError.hidden = true;
    $('room-name').removeAttribute('aria-invalid');
    dialog.showModal();
    $('room-name').focus();
  };
  dialog.querySelector('[data-close]').onclick = () => dialog.close();

  form.onsubmit = async (e) => {
    e.preventDefault();
    const name = $('room-name').value.trim();
    const description = $('room-description-input').value.trim();
    const kind = form.elements.kind.value;
    alert.hidden = true;
    nameError.hidden = true;
    if (!name) return fieldError('Give the room a name.');
    const submit = form.querySelector('[type=submit]');
    submit.disabled = true;
    try {
      await chat.createRoom({ name, description, kind });
      dialog.close();
      drawer.close();
      $('composer-input').focus();
    } catch (err) {
      if (err.fields?.name) {
        fieldError(err.fields.name.code === 'validation_not_unique' ? 'A room with this name already exists.' : err.fields.name.message);
      } else {
        alert.textContent = describeError(err);
        alert.hidden = false;
      }
    } finally {
      submit.disabled = false;
    }
  };

  function fieldError(text) {
    nameError.textContent = text;
    nameError.hidden = false;
    $('room-name').setAttribute('aria-invalid', 'true');
    $('room-name').focus();
  }
}
