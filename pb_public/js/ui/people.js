// Who is online in the room on screen (click someone to chat privately),
// and the owner's "Invite people" dialog for private rooms.

import { h, clear, avatar, frameBatch } from '../util.js';
import { describeError } from '../api.js';

const $ = (id) => document.getElementById(id);

export function mountPeople({ store, chat, api, drawer, showError }) {
  const list = $('online-list');

  const render = frameBatch(() => {
    const rs = store.room(store.current);
    const users = rs ? [...rs.online.values()] : [];
    // Me first, then by name.
    users.sort((a, b) => (b.id === store.me?.id) - (a.id === store.me?.id) || a.name.localeCompare(b.name));
    const focused = document.activeElement?.dataset?.user;
    clear(list);
    for (const u of users) {
      const me = u.id === store.me?.id;
      const label = [h('span', { class: 'person-name', text: u.name }), me && h('span', { class: 'muted', text: ' (you)' }), u.bot && h('span', { class: 'badge', text: 'bot' })];
      const face = [h('span', { class: 'presence-dot', 'aria-hidden': 'true' }), avatar(u, 'sm')];
      // Guests cannot open private chats, nobody chats with themselves.
      const item = me || !store.me
        ? h('div', { class: 'person' }, face, label)
        : h('button', {
          type: 'button',
          class: 'person',
          dataset: { user: u.id },
          title: `Private chat with ${u.name}`,
          'aria-label': `Start a private chat with ${u.name}`,
          on: { click: () => openPrivate(u) },
        }, face, label);
      list.append(h('li', {}, item));
    }
    // In a summary room (too many online for the server to announce each
    // one) the list is the first people by name as of joining, and only
    // the count stays current.
    const total = rs ? store.onlineTotal(rs) : 0;
    const count = $('online-count');
    count.textContent = rs ? total.toLocaleString() : '';
    count.title = rs ? `${total.toLocaleString()} online` : '';
    $('people-hint').textContent = !rs ? ''
      : total === 0 ? 'Nobody is signed in here right now.'
        : rs.summary ? `${total.toLocaleString()} online: too many to follow one by one. Listed are the first ${users.length.toLocaleString()} by name when you came in.${store.me ? ' Click someone to chat privately.' : ''}`
          : store.me && users.length > 1 ? 'Click someone to chat privately.' : '';
    if (focused) list.querySelector(`[data-user="${CSS.escape(focused)}"]`)?.focus();
  });
  store.subscribe((topic, roomId) => {
    if (topic === 'current' || topic === 'me' || (topic === 'people' && roomId === store.current)) render();
  });

  async function openPrivate(user) {
    try {
      await chat.openPrivate(user.id);
      drawer.close();
      $('composer-input').focus();
    } catch (err) {
      showError(`Could not open a private chat with ${user.name}: ${describeError(err)}`);
    }
  }

  mountInvite({ store, api });
}

// The invite dialog: suggestions from people seen in the chat, and a
// search of all users by name. Inviting adds the user to the room's
// members through REST; the server then announces the room to them.
function mountInvite({ store, api }) {
  const dialog = $('invite-dialog');
  const search = $('invite-search');
  const results = $('invite-results');
  const status = $('invite-status');
  let timer = 0;
  let seq = 0;

  $('invite-button').onclick = () => {
    search.value = '';
    status.textContent = '';
    showUsers(suggestions(), 'People you have seen here:');
    dialog.showModal();
    search.focus();
  };
  dialog.querySelector('[data-close]').onclick = () => dialog.close();

  search.oninput = () => {
    clearTimeout(timer);
    const q = search.value.trim();
    if (!q) return showUsers(suggestions(), 'People you have seen here:');
    timer = setTimeout(async () => {
      const mine = ++seq; // ignore answers to older searches
      try {
        const users = await api.searchUsers(q);
        if (mine === seq) showUsers(users, users.length ? '' : `Nobody called “${q}”.`);
      } catch (err) {
        if (mine === seq) status.textContent = describeError(err);
      }
    }, 250);
  };

  function room() {
    return store.room(store.current)?.room;
  }

  function suggestions() {
    const r = room();
    return [...store.users.values()].filter((u) => !u.bot && u.id !== store.me?.id && !r?.members.includes(u.id)).slice(0, 20);
  }

  function showUsers(users, note) {
    status.textContent = note;
    clear(results);
    const r = room();
    for (const u of users.filter((x) => x.id !== store.me?.id)) {
      const member = r?.members.includes(u.id);
      const btn = h('button', { type: 'button', class: 'button small', disabled: member, text: member ? 'Member' : 'Invite', 'aria-label': member ? `${u.name} is a member` : `Invite ${u.name}` });
      btn.onclick = async () => {
        btn.disabled = true;
        try {
          await api.addMember(r.id, u.id);
          btn.textContent = 'Invited';
          btn.setAttribute('aria-label', `${u.name} was invited`);
          status.textContent = `${u.name} can now read and write in ${r.name}.`;
        } catch (err) {
          btn.disabled = false;
          status.textContent = describeError(err);
        }
      };
      results.append(h('li', { class: 'invite-row' }, avatar(u, 'sm'), h('span', { class: 'person-name', text: u.name }), btn));
    }
  }
}
