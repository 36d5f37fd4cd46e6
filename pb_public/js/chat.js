// The chat controller: the protocol's meaning on top of the socket. It keeps
// the store in step with the server — joins every visible room, catches up
// after a reconnect with `resume`, pages history, sends messages and images,
// and turns pushed events into state.
//
// Unread counts: the client joins every room it can see (public rooms, and
// the private and direct rooms it is a member of), so it receives `message`
// events of all of them; a room's unread count is the messages after its
// read mark (store.js). Joining also means a user is listed as online in
// every room they can see while a tab is open.

import { ApiError, describeError } from './api.js';
import { DisconnectedError } from './socket.js';
import { mentions } from './util.js';

// Messages asked for per history page and per resume step.
const HISTORY_PAGE = 50;
const RESUME_PAGE = 100;
// Send `typing` at most this often while the user keeps typing.
const TYPING_EVERY = 2000;
// Largest image the schema accepts (messages.image: 5 MiB).
export const MAX_IMAGE = 5 << 20;
export const IMAGE_TYPES = ['image/png', 'image/jpeg', 'image/gif', 'image/webp'];

export class Chat {
  /**
   * @param {object} deps
   * @param {import('./api.js').Api} deps.api
   * @param {import('./socket.js').ChatSocket} deps.socket
   * @param {import('./store.js').Store} deps.store
   * @param {(msg: object, room: object) => void} deps.onMention called for a
   *   new live message that mentions me
   */
  constructor({ api, socket, store, onMention }) {
    this.api = api;
    this.socket = socket;
    this.store = store;
    this.onMention = onMention || (() => {});
    this.firstHello = true;
    this.pendingSelect = ''; // a room I created, to open when it appears
    this.lastTyping = 0;
    this.syncing = new Map(); // room id → promise of its (re)join

    const on = (type, fn) => socket.on(type, fn);
    on('hello', (f) => this.#hello(f));
    on('status', (s) => {
      store.setConn({ status: s.status, retryAt: s.retryAt });
      if (s.status !== 'online') store.disconnected();
    });
    on('message', (f) => this.#message(f));
    on('edited', (f) => store.editMessage(f.room, f.message));
    on('deleted', (f) => store.deleteMessage(f.room, f.id));
    on('presence', (f) => store.presence(f.room, f.user, f.status));
    on('online', (f) => store.onlineSummary(f.room, f));
    on('typing', (f) => store.typing(f.room, f.user));
    on('room', (f) => this.#room(f));
    on('resync', (f) => this.#resync(f));
    on('error', (f) => console.warn('chat: server error', f.code, f.message));
  }

  get me() {
    return this.store.me;
  }

  // ---- connecting ----

  #hello(hello) {
    const { store } = this;
    store.setMe(hello.user);
    const fresh = store.setRooms(hello.rooms || []);
    for (const r of fresh) this.#learnRoomUsers(r);
    // Pick the room to show: the one on screen, the last one opened, the
    // default one.
    const saved = localStorage.getItem('pocketchat.room');
    const pick = [store.current, saved].find((id) => id && store.room(id)) || store.defaultRoom();
    store.select(pick);
    const first = this.firstHello;
    this.firstHello = false;
    // Rejoin the room on screen first so it is usable soonest.
    const order = store.sortedRooms().map((r) => r.id).sort((a, b) => (a === pick ? -1 : b === pick ? 1 : 0));
    for (const id of order) this.sync(id, { fresh: !first && fresh.some((r) => r.id === id) });
  }

  /**
   * sync joins a room on the current connection and catches up: `join`
   * returns the latest page, then `resume` from the last message this page
   * already had fetches everything in between, page by page. Messages are
   * deduplicated by id, so overlaps cost nothing and nothing is missed.
   */
  sync(roomId, { fresh = false } = {}) {
    if (this.syncing.has(roomId)) return this.syncing.get(roomId);
    const p = this.#sync(roomId, fresh).finally(() => this.syncing.delete(roomId));
    this.syncing.set(roomId, p);
    return p;
  }

  async #sync(roomId, fresh) {
    const { store, socket } = this;
    const rs = store.room(roomId);
    if (!rs) return;
    const known = rs.messages.map((m) => m.id); // what we had before the join
    let joined;
    try {
      joined = await socket.request('join', { room: roomId });
    } catch (err) {
      if (!(err instanceof DisconnectedError)) console.warn('chat: join failed', roomId, err.message);
      return;
    }
    if (!store.room(roomId)) return; // removed meanwhile
    rs.joined = true;
    const online = joined.online || [];
    store.setOnline(roomId, online, joined.online_count ?? online.length, !!joined.summary);
    // Our oldest message stays the oldest unless we had none.
    if (!rs.loaded || !known.length) rs.hasOlder = joined.more;
    rs.loaded = true;
    store.addMessages(roomId, joined.messages);
    store.initRead(roomId, fresh);
    if (known.length) await this.#resume(roomId, known);
    if (roomId === store.current) this.markReadIfVisible();
    store.emit('messages', roomId);
  }

  // #resync: the server's link to the other nodes broke and came back, so
  // events of a joined room may be lost. Take who is online from the
  // event, then fetch what came after our last message (a join under way
  // first finishes its own catch-up).
  async #resync(f) {
    const { store } = this;
    const rs = store.room(f.room);
    if (!rs || !rs.joined) return;
    const online = f.online || [];
    store.setOnline(f.room, online, f.online_count ?? online.length, !!f.summary);
    await this.syncing.get(f.room);
    const known = rs.messages.map((m) => m.id);
    if (!known.length) return void this.sync(f.room);
    await this.#resume(f.room, known);
    if (f.room === store.current) this.markReadIfVisible();
    store.emit('messages', f.room);
  }

  // #resume fetches the messages after the last one we knew. If that one
  // was deleted meanwhile (not_found), it starts from the one before.
  async #resume(roomId, known) {
    let i = known.length - 1;
    let after = known[i];
    for (let steps = 0; steps < 1000; steps++) {
      let page;
      try {
        page = await this.socket.request('resume', { room: roomId, after, limit: RESUME_PAGE });
      } catch (err) {
        if (err.code === 'not_found' && i > 0 && known.length - i < 20) {
          after = known[--i];
          continue;
        }
        if (!(err instanceof DisconnectedError)) console.warn('chat: resume failed', roomId, err.message);
        return;
      }
      this.store.addMessages(roomId, page.messages);
      if (!page.more || !page.messages.length) return;
      after = page.messages[page.messages.length - 1].id;
    }
  }

  /** loadOlder fetches the page of messages before the oldest one shown. */
  async loadOlder(roomId) {
    const rs = this.store.room(roomId);
    if (!rs || rs.loadingOlder || !rs.hasOlder || !rs.messages.length || !this.socket.online) return;
    rs.loadingOlder = true;
    this.store.emit('messages', roomId);
    try {
      const page = await this.socket.request('history', { room: roomId, before: rs.messages[0].id, limit: HISTORY_PAGE });
      rs.hasOlder = page.more;
      this.store.addMessages(roomId, page.messages);
    } catch (err) {
      console.warn('chat: history failed', err.message);
    } finally {
      rs.loadingOlder = false;
      this.store.emit('messages', roomId);
    }
  }

  // ---- events ----

  #message({ room: roomId, message }) {
    const { store } = this;
    const added = store.addMessages(roomId, [message]);
    if (!added.length) return;
    store.stopTyping(roomId, message.author?.id);
    if (roomId === store.current) this.markReadIfVisible();
    const rs = store.room(roomId);
    if (rs && this.me && message.author?.id !== this.me.id && mentions(message.text, this.me.name)) {
      this.onMention(message, rs.room);
    }
  }

  #room({ action, room }) {
    const { store } = this;
    if (action === 'delete') {
      const wasCurrent = store.current === room.id;
      store.removeRoom(room.id);
      if (wasCurrent) store.select(store.defaultRoom());
      return;
    }
    const isNew = store.upsertRoom(room);
    this.#learnRoomUsers(room);
    if (isNew) {
      this.sync(room.id, { fresh: true });
      if (this.pendingSelect === room.id) {
        this.pendingSelect = '';
        store.select(room.id);
      }
    }
  }

  // #learnRoomUsers fetches the names a direct room is shown by.
  #learnRoomUsers(room) {
    if (room.kind !== 'direct' || !this.me) return;
    const id = this.store.otherMember(room);
    if (id) this.resolveUser(id);
  }

  /** resolveUser returns a user's public face, from the cache or REST. */
  async resolveUser(id) {
    const known = this.store.users.get(id);
    if (known) return known;
    try {
      const user = await this.api.user(id);
      this.store.learnUser(user);
      return user;
    } catch {
      return null;
    }
  }

  /** markReadIfVisible marks the room on screen read if a person can see it. */
  markReadIfVisible() {
    if (document.visibilityState === 'visible' && this.store.current) this.store.markRead(this.store.current);
  }

  // ---- sending ----

  /** send shows the message at once and sends it; the ack confirms it. */
  send(roomId, text) {
    const p = this.store.addPending(roomId, { text });
    this.#deliver(roomId, p);
  }

  /** retry sends a failed message again. */
  retry(roomId, localId) {
    const p = this.store.pending(roomId, localId);
    if (!p) return;
    this.store.setPendingState(roomId, localId, 'sending');
    this.#deliver(roomId, p);
  }

  /** discard drops a failed message. */
  discard(roomId, localId) {
    this.store.removePending(roomId, localId);
  }

  async #deliver(roomId, p) {
    try {
      if (p.file) {
        const rec = await this.api.postImage({ room: roomId, text: p.text, file: p.file });
        // The message event (or the ack) brings the message itself.
        this.store.confirmPending(roomId, p.localId, rec.id);
      } else {
        const ack = await this.socket.request('send', { room: roomId, text: p.text });
        this.store.confirmPending(roomId, p.localId, ack.message);
      }
    } catch (err) {
      let reason = err instanceof DisconnectedError ? 'Not sent: no connection.' : describeError(err);
      if (err instanceof ApiError && err.status === 400 && !Object.keys(err.fields).length) reason = 'You may not post here.';
      this.store.setPendingState(roomId, p.localId, 'failed', reason);
    }
  }

  /**
   * edit changes the text of one of my messages; the room (this page too)
   * learns it from the edited event. Rejects with the server's reason.
   */
  async edit(messageId, text) {
    await this.socket.request('edit', { message: messageId, text });
  }

  /** remove deletes one of my messages; the deleted event removes it. */
  async remove(messageId) {
    await this.socket.request('delete', { message: messageId });
  }

  /** sendImage uploads an image (with optional text) as a new message. */
  sendImage(roomId, file, text = '') {
    const p = this.store.addPending(roomId, { text, file, preview: URL.createObjectURL(file) });
    this.#deliver(roomId, p);
  }

  /** typing tells the room I am typing, at most every TYPING_EVERY ms. */
  typing(roomId) {
    const now = Date.now();
    if (!this.me || now - this.lastTyping < TYPING_EVERY) return;
    this.lastTyping = now;
    this.socket.notify('typing', { room: roomId });
  }

  /** stoppedTyping lets the next keystroke announce typing again at once. */
  stoppedTyping() {
    this.lastTyping = 0;
  }

  // ---- rooms ----

  /** openPrivate opens (creating if needed) my direct room with a user. */
  async openPrivate(userId) {
    const { room } = await this.socket.request('open', { to: userId });
    const isNew = this.store.upsertRoom(room);
    this.#learnRoomUsers(room);
    if (isNew || !this.store.room(room.id).joined) await this.sync(room.id, { fresh: isNew });
    this.store.select(room.id);
    return room;
  }

  /** createRoom creates a room and opens it as soon as the server announces it. */
  async createRoom(fields) {
    const rec = await this.api.createRoom(fields);
    if (this.store.room(rec.id)) this.store.select(rec.id);
    else this.pendingSelect = rec.id;
    return rec;
  }
}

/** checkImage says why a file cannot be sent as an image, or ''. */
export function checkImage(file) {
  if (!IMAGE_TYPES.includes(file.type)) return 'Only PNG, JPEG, GIF and WebP images can be sent.';
  if (file.size > MAX_IMAGE) return 'Images can be at most 5 MB.';
  return '';
}
