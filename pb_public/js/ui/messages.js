// The message list of the room on screen: date separators, grouped
// messages, my messages still being sent, join/leave notices, paging back
// through history when scrolled to the top, and the full-size image viewer.
//
// Rendering is keyed: each item has a key that changes whenever its look
// does, and only new keys build new elements, so new messages do not
// rebuild the list (and screen readers announce only what was added).

import { h, clear, avatar, textNodes, mentions, dayKey, dayLabel, clock, frameBatch } from '../util.js';
import { icon } from './icons.js';

const $ = (id) => document.getElementById(id);

// Consecutive messages of one author within this time share one header.
const GROUP_WINDOW = 5 * 60 * 1000;
// Scrolled within this many pixels of the top: fetch older messages.
const LOAD_OLDER_AT = 200;
// Within this many pixels of the bottom counts as "at the bottom": new
// messages then keep the view pinned there.
const STICK_WITHIN = 80;

export function mountMessages({ store, chat, onEdit = () => {}, showError = () => {} }) {
  const scroller = $('scroller');
  const list = $('message-list');
  const older = $('older-button');
  let shownRoom = null;
  let nodes = new Map(); // key → element
  let stick = true; // keep the newest message in view

  const render = frameBatch(draw);
  store.subscribe((topic, roomId) => {
    if (topic === 'current' || topic === 'me' || (topic === 'messages' && roomId === store.current)) render();
  });

  scroller.addEventListener('scroll', () => {
    stick = scroller.scrollHeight - scroller.scrollTop - scroller.clientHeight < STICK_WITHIN;
    if (scroller.scrollTop < LOAD_OLDER_AT) chat.loadOlder(store.current);
  }, { passive: true });
  older.onclick = () => chat.loadOlder(store.current);

  // Buttons inside messages, by delegation (the elements come and go).
  list.addEventListener('click', (e) => {
    const btn = e.target.closest('button[data-action]');
    if (!btn) return;
    const { action, local, full, id } = btn.dataset;
    if (action === 'edit') {
      const m = store.room(store.current)?.ids.get(id);
      if (m) onEdit(m);
    } else if (action === 'delete') {
      chat.remove(id).catch((err) => showError(`Not deleted: ${err.message}`));
    } else if (action === 'retry') chat.retry(store.current, local);
    else if (action === 'discard') chat.discard(store.current, local);
    else if (action === 'image') openImage(full, btn.querySelector('img')?.alt || 'Image');
  });

  const dialog = $('image-dialog');
  dialog.addEventListener('click', (e) => {
    // A click on the backdrop (the dialog itself, outside the picture) closes.
    if (e.target === dialog || e.target.closest('[data-close]')) dialog.close();
  });

  function openImage(src, alt) {
    const img = $('image-full');
    img.src = chat.api.fileURL(src);
    retryOnError(chat.api, img, src);
    img.alt = alt;
    dialog.showModal();
  }

  /** pin keeps the newest message in view (after I send something). */
  function pin() {
    stick = true;
    render();
  }

  function draw() {
    const rs = store.room(store.current);
    if (store.current !== shownRoom) {
      clear(list);
      nodes = new Map();
      shownRoom = store.current;
      stick = true;
    }
    if (!rs) {
      older.hidden = true;
      $('history-start').hidden = true;
      return;
    }
    list.setAttribute('aria-label', `Messages in ${store.roomName(rs.room)}`);
    const items = buildItems(rs, store.me, chat.api);

    // Unless pinned to the bottom, keep the first message on screen where
    // it is while older history is inserted above it (the scroller has
    // overflow-anchor: none, so the browser does not do this itself).
    // The anchor is found again by message id: its element may have been
    // rebuilt (a message becomes "compact" when older ones by the same
    // author arrive above it).
    const anchor = stick ? null : firstVisible(scroller, list);
    const anchorSel = anchor && (anchor.dataset.id ? `[data-id="${CSS.escape(anchor.dataset.id)}"]` : `[data-local="${CSS.escape(anchor.dataset.local)}"]`);
    const anchorTop = anchor?.getBoundingClientRect().top;
    reconcile(list, nodes, items);
    const moved = anchorSel && list.querySelector(anchorSel);
    if (stick) scroller.scrollTop = scroller.scrollHeight;
    else if (moved) scroller.scrollTop += moved.getBoundingClientRect().top - anchorTop;

    older.hidden = !rs.hasOlder || rs.loadingOlder || !rs.messages.length;
    $('older-loading').hidden = !rs.loadingOlder;
    const start = $('history-start');
    start.hidden = rs.hasOlder || !rs.loaded;
    start.textContent = rs.room.kind === 'direct'
      ? `This is the beginning of your private chat with ${store.roomName(rs.room)}.`
      : `This is the beginning of ${store.roomName(rs.room)}.`;

    // A short history that does not fill the view cannot be scrolled up:
    // fetch older pages until it does (or there are none).
    if (rs.hasOlder && !rs.loadingOlder && scroller.scrollHeight <= scroller.clientHeight + LOAD_OLDER_AT) {
      chat.loadOlder(rs.room.id);
    }
  }

  // Keep the bottom in view while pictures load and change the height.
  list.addEventListener('load', () => {
    if (stick) scroller.scrollTop = scroller.scrollHeight;
  }, true);

  return { pin };
}

// reconcile makes list's children the items' elements, in order, reusing
// the elements of keys it already has.
function reconcile(list, nodes, items) {
  const keep = new Map();
  let cursor = list.firstElementChild;
  for (const item of items) {
    const el = nodes.get(item.key) || item.build();
    keep.set(item.key, el);
    if (el === cursor) cursor = cursor.nextElementSibling;
    else list.insertBefore(el, cursor);
  }
  for (const [key, el] of nodes) if (!keep.has(key)) el.remove();
  nodes.clear();
  for (const [k, v] of keep) nodes.set(k, v);
}

// firstVisible is the first message element whose bottom is below the top
// of the scroller: the one a reader's eyes are on when history grows above.
function firstVisible(scroller, list) {
  const top = scroller.getBoundingClientRect().top;
  for (const el of list.children) {
    if ((el.dataset.id || el.dataset.local) && el.getBoundingClientRect().bottom > top) return el;
  }
  return null;
}

// buildItems lists what the room shows, in order: messages by seq with date
// separators and notices between them, then my messages on their way.
function buildItems(rs, me, api) {
  const items = [];
  const myName = me?.name || '';
  let day = '';
  let prev = null; // the previous message, for grouping
  const notices = rs.notices;
  let ni = 0;

  const separator = (date) => {
    const k = dayKey(date);
    if (k === day) return;
    day = k;
    prev = null;
    items.push({ key: `d:${k}`, build: () => h('div', { class: 'day', role: 'separator' }, h('span', { text: dayLabel(date) })) });
  };
  const notice = (n) => {
    separator(n.time);
    prev = null;
    items.push({ key: n.key, build: () => h('p', { class: 'notice' }, n.text, h('time', { datetime: n.time, text: ` · ${clock(n.time)}` })) });
  };

  for (const m of rs.messages) {
    while (ni < notices.length && notices[ni].afterSeq < m.seq) notice(notices[ni++]);
    separator(m.created);
    const compact = !!prev && prev.author?.id === m.author?.id && prev.kind === m.kind && m.kind !== 'system' &&
      new Date(m.created) - new Date(prev.created) < GROUP_WINDOW;
    const mine = !!me && m.author?.id === me.id;
    items.push({
      key: `m:${m.id}:${m.updated}:${m.edited ? 'e' : ''}:${compact ? 'c' : ''}`,
      build: () => messageEl(m, { compact, mine, myName, api }),
    });
    prev = m;
  }
  while (ni < notices.length) notice(notices[ni++]);

  for (const p of rs.pending) {
    separator(p.created);
    items.push({ key: `p:${p.localId}:${p.state}`, build: () => pendingEl(p, me) });
    prev = null;
  }
  return items;
}

function messageEl(m, { compact, mine, myName, api }) {
  const author = m.author?.name || (m.kind === 'system' ? 'System' : 'Deleted user');
  if (m.kind === 'system') {
    return h('p', { class: 'notice system', dataset: { id: m.id } }, ...textNodes(m.text, ''));
  }
  const mentionsMe = !mine && mentions(m.text, myName);
  const cls = ['msg', compact && 'compact', mine && 'mine', mentionsMe && 'mentions-me', m.kind === 'bot' && 'bot']
    .filter(Boolean).join(' ');
  return h('article', { class: cls, dataset: { id: m.id, seq: m.seq } },
    h('div', { class: 'msg-side' }, compact
      ? h('time', { class: 'msg-hover-time', datetime: m.created, title: new Date(m.created).toLocaleString(), text: clock(m.created) })
      : avatar(m.author, 'md')),
    h('div', { class: 'msg-main' },
      compact
        ? h('span', { class: 'visually-hidden', text: `${author}: ` })
        : h('header', { class: 'msg-head' },
          h('span', { class: 'msg-author', text: author }),
          (m.author?.bot || m.kind === 'bot') && h('span', { class: 'badge', text: 'bot' }),
          h('time', { datetime: m.created, title: new Date(m.created).toLocaleString(), text: clock(m.created) })),
      m.text && h('div', { class: 'msg-text' }, ...textNodes(m.text, myName)),
      m.image && imageEl(api, m.thumb || m.image, m.image, `Image from ${author}`),
      (m.edited || edited(m)) && h('span', { class: 'edited', text: '(edited)' })),
    mine && m.kind === 'user' && h('div', { class: 'msg-actions' },
      h('button', { type: 'button', dataset: { action: 'edit', id: m.id }, 'aria-label': 'Edit this message', text: 'Edit' }),
      h('button', { type: 'button', dataset: { action: 'delete', id: m.id }, 'aria-label': 'Delete this message', text: 'Delete' })));
}

// edited tells an edited message in history: saved again a while after
// it was posted (a post and its own save differ by microseconds).
function edited(m) {
  return m.updated && m.created && Date.parse(m.updated) - Date.parse(m.created) > 1000;
}

function imageEl(api, thumb, full, alt) {
  const img = h('img', { src: api.fileURL(thumb), alt, loading: 'lazy', decoding: 'async' });
  retryOnError(api, img, thumb);
  return h('button', { type: 'button', class: 'msg-image', dataset: { action: 'image', full }, 'aria-label': `${alt}, open full size` }, img);
}

/**
 * retryOnError loads a protected image once more with a fresh file token
 * if it fails: a lazy image may start loading after its token expired.
 */
function retryOnError(api, img, path) {
  img.addEventListener('error', () => {
    api.refreshFileToken().then(() => (img.src = api.fileURL(path))).catch(() => {});
  }, { once: true });
}

function pendingEl(p, me) {
  const failed = p.state === 'failed';
  return h('article', { class: `msg mine pending ${failed ? 'failed' : 'sending'}`, dataset: { local: p.localId } },
    h('div', { class: 'msg-side' }, avatar(me, 'md')),
    h('div', { class: 'msg-main' },
      h('header', { class: 'msg-head' }, h('span', { class: 'msg-author', text: me?.name || 'Me' })),
      p.text && h('div', { class: 'msg-text' }, ...textNodes(p.text, '')),
      p.preview && h('div', { class: 'msg-image' }, h('img', { src: p.preview, alt: 'Image being sent' })),
      failed
        ? h('div', { class: 'msg-status', role: 'alert' },
          h('span', { text: p.error || 'Not sent.' }),
          h('button', { type: 'button', class: 'link', dataset: { action: 'retry', local: p.localId } }, icon('retry'), 'Retry'),
          h('button', { type: 'button', class: 'link', dataset: { action: 'discard', local: p.localId }, text: 'Discard' }))
        : h('div', { class: 'msg-status', text: p.file ? 'Uploading…' : 'Sending…' })));
}
