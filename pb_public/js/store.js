// The client's state: who I am, the rooms I can see and, per room, its
// messages (deduplicated by id, ordered by seq), my messages still being
// sent, who is online and who is typing. Views subscribe and re-render;
// only chat.js (and app.js for the connection state) change it.

/** normalizeText mirrors the server's cleanup enough to match my own echo. */
export function normalizeText(text) {
  return text.replace(/\r\n?/g, '\n').trim();
}

// A typing notice shows for this long unless renewed.
export const TYPING_TTL = 3500;
// Join/leave notices kept per room.
const MAX_NOTICES = 30;

let localIds = 0;

export class Store {
  constructor() {
    this.me = null; // null for a guest
    this.conn = { status: 'connecting', retryAt: 0 };
    this.rooms = new Map(); // id → RoomState
    this.current = '';
    this.users = new Map(); // id → {id, name, avatar, bot}: names for direct rooms, mentions
    this.titleMentions = 0; // mentions of me while the tab was hidden
    this.listeners = new Set();
    this.readKey = '';
    this.read = {}; // room id → last seq read, saved per user
  }

  /** subscribe calls fn(topic, roomId) on every change; returns the unsubscriber. */
  subscribe(fn) {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  emit(topic, roomId = '') {
    for (const fn of this.listeners) fn(topic, roomId);
  }

  // ---- who and how connected ----

  setMe(user) {
    this.me = user || null;
    if (user) {
      this.learnUser(user);
      this.readKey = `pocketchat.read.${user.id}`;
      try {
        this.read = JSON.parse(localStorage.getItem(this.readKey) || '{}') || {};
      } catch {
        this.read = {};
      }
    }
    this.emit('me');
  }

  setConn(conn) {
    this.conn = conn;
    this.emit('conn');
  }

  /** learnUser caches a user's name and avatar (from any event). */
  learnUser(user) {
    if (!user?.id) return;
    const old = this.users.get(user.id);
    if (old && old.name === user.name && old.avatar === user.avatar) return;
    this.users.set(user.id, { id: user.id, name: user.name, avatar: user.avatar || '', bot: !!user.bot });
    // A direct room is named after the other member: its label may change.
    if (!old || old.name !== user.name) this.emit('rooms');
  }

  // ---- rooms ----

  room(id) {
    return this.rooms.get(id);
  }

  /**
   * setRooms replaces the visible rooms with hello's list, keeping the state
   * (messages, read marks) of rooms that are still there. It returns the
   * rooms that are new to this page.
   */
  setRooms(list) {
    const ids = new Set(list.map((r) => r.id));
    for (const id of [...this.rooms.keys()]) if (!ids.has(id)) this.rooms.delete(id);
    const fresh = [];
    for (const r of list) {
      if (this.rooms.has(r.id)) this.rooms.get(r.id).room = r;
      else {
        this.rooms.set(r.id, newRoomState(r));
        fresh.push(r);
      }
    }
    for (const rs of this.rooms.values()) rs.joined = false;
    this.emit('rooms');
    return fresh;
  }

  /** upsertRoom adds or updates a room; it reports whether it was new. */
  upsertRoom(room) {
    const rs = this.rooms.get(room.id);
    if (rs) rs.room = room;
    else this.rooms.set(room.id, newRoomState(room));
    this.emit('rooms');
    if (room.id === this.current) this.emit('current');
    return !rs;
  }

  removeRoom(id) {
    if (!this.rooms.delete(id)) return;
    delete this.read[id];
    this.saveRead();
    this.emit('rooms');
  }

  /** disconnected marks every room as needing a rejoin. */
  disconnected() {
    for (const rs of this.rooms.values()) {
      rs.joined = false;
      rs.online.clear();
      rs.onlineCount = 0;
      rs.summary = false;
      rs.typing.clear();
    }
    this.emit('people', this.current);
    this.emit('typing', this.current);
  }

  /** otherMember is the other user of a direct room (the room's label). */
  otherMember(room) {
    return room.members.find((id) => id !== this.me?.id) || room.members[0] || '';
  }

  /** roomName is what people see: a direct room shows the other member. */
  roomName(room) {
    if (room.kind !== 'direct') return room.name;
    const other = this.users.get(this.otherMember(room));
    return other?.name || 'Private chat';
  }

  /** sortedRooms lists rooms for the sidebar: by kind, then name. */
  sortedRooms() {
    const rank = { public: 0, private: 1, direct: 2 };
    return [...this.rooms.values()]
      .map((rs) => rs.room)
      .sort((a, b) => (rank[a.kind] ?? 3) - (rank[b.kind] ?? 3) || this.roomName(a).localeCompare(this.roomName(b)));
  }

  /**
   * defaultRoom is where to go without a choice: the oldest public room
   * (the seeded General), else the first room listed.
   */
  defaultRoom() {
    const rooms = this.sortedRooms();
    const pub = rooms.filter((r) => r.kind === 'public').sort((a, b) => String(a.created).localeCompare(String(b.created)));
    return (pub[0] || rooms[0])?.id || '';
  }

  select(id) {
    if (this.current === id) return;
    this.current = id;
    localStorage.setItem('pocketchat.room', id);
    this.emit('current');
    this.emit('rooms');
  }

  // ---- messages ----

  /**
   * addMessages merges messages into a room, ignoring ids it already has,
   * keeping seq order. It returns the messages that were new.
   */
  addMessages(roomId, msgs) {
    const rs = this.rooms.get(roomId);
    if (!rs || !msgs?.length) return [];
    const added = [];
    for (const m of msgs) {
      if (rs.ids.has(m.id)) continue;
      rs.ids.set(m.id, m);
      insertBySeq(rs.messages, m);
      this.learnUser(m.author);
      this.#settlePending(rs, m);
      added.push(m);
    }
    if (added.length) {
      this.emit('messages', roomId);
      this.emit('rooms'); // unread counts
    }
    return added;
  }

  editMessage(roomId, msg) {
    const rs = this.rooms.get(roomId);
    const old = rs?.ids.get(msg.id);
    if (!old) return;
    const edited = { ...msg, edited: true };
    rs.ids.set(msg.id, edited);
    rs.messages[rs.messages.indexOf(old)] = edited;
    this.emit('messages', roomId);
  }

  deleteMessage(roomId, id) {
    const rs = this.rooms.get(roomId);
    const old = rs?.ids.get(id);
    if (!old) return;
    rs.ids.delete(id);
    rs.messages.splice(rs.messages.indexOf(old), 1);
    this.emit('messages', roomId);
    this.emit('rooms');
  }

  // ---- my messages on their way ----

  /** addPending shows a message of mine at once, as "sending". */
  addPending(roomId, { text, file = null, preview = '' }) {
    const rs = this.rooms.get(roomId);
    const p = { localId: `local-${++localIds}`, room: roomId, text: normalizeText(text), file, preview, state: 'sending', error: '', boundId: '', created: new Date().toISOString() };
    rs.pending.push(p);
    this.emit('messages', roomId);
    return p;
  }

  pending(roomId, localId) {
    return this.rooms.get(roomId)?.pending.find((p) => p.localId === localId);
  }

  setPendingState(roomId, localId, state, error = '') {
    const p = this.pending(roomId, localId);
    if (!p) return;
    p.state = state;
    p.error = error;
    this.emit('messages', roomId);
  }

  /**
   * confirmPending settles a pending message with the stored one (from the
   * ack or the REST answer). The stored message's own `message` event may
   * come before or after; whichever is second finds it already there.
   */
  confirmPending(roomId, localId, msg) {
    const rs = this.rooms.get(roomId);
    if (!rs) return;
    const p = rs.pending.find((x) => x.localId === localId);
    if (p) p.boundId = msg?.id || msg;
    if (msg?.id) this.addMessages(roomId, [msg]);
    if (p && rs.ids.has(p.boundId)) this.#removePending(rs, p);
  }

  // #settlePending drops the pending copy of a message of mine that has
  // just arrived. The REST upload and the ack name the id; a text message's
  // echo may beat its ack, so it is matched by text, oldest first: a
  // connection's sends are stored in the order they were sent.
  #settlePending(rs, m) {
    if (!this.me || m.author?.id !== this.me.id || !rs.pending.length) return;
    let p = rs.pending.find((x) => x.boundId === m.id);
    if (!p && !m.image) p = rs.pending.find((x) => !x.file && !x.boundId && x.text === m.text);
    if (p) this.#removePending(rs, p);
  }

  #removePending(rs, p) {
    const i = rs.pending.indexOf(p);
    if (i < 0) return; // already settled by the other of ack and echo
    rs.pending.splice(i, 1);
    if (p.preview) URL.revokeObjectURL(p.preview);
    this.emit('messages', rs.room.id);
  }

  removePending(roomId, localId) {
    const rs = this.rooms.get(roomId);
    const p = rs?.pending.find((x) => x.localId === localId);
    if (p) this.#removePending(rs, p);
  }

  // ---- presence, typing, notices ----

  /**
   * setOnline takes who is online from a `joined` reply: the first users by
   * name (all of them unless the room is a summary), their count, and
   * whether the room is a summary (too many online to announce each one:
   * the server sends `online` counts instead of `presence`).
   */
  setOnline(roomId, users, count = users.length, summary = false) {
    const rs = this.rooms.get(roomId);
    if (!rs) return;
    rs.online = new Map(users.map((u) => [u.id, u]));
    users.forEach((u) => this.learnUser(u));
    rs.onlineCount = count;
    rs.summary = summary;
    this.#listMe(rs);
    this.emit('people', roomId);
  }

  /**
   * onlineSummary applies an `online` event: a new count while the room is
   * a summary; or, when it stops being one, the whole list, after which
   * `presence` events keep it again.
   */
  onlineSummary(roomId, { online_count: count, summary, online }) {
    const rs = this.rooms.get(roomId);
    if (!rs || !rs.joined) return;
    rs.onlineCount = count;
    rs.summary = !!summary;
    if (!summary) {
      rs.online = new Map((online || []).map((u) => [u.id, u]));
      rs.online.forEach((u) => this.learnUser(u));
      this.#listMe(rs);
    }
    this.emit('people', roomId);
  }

  /** onlineTotal is how many are online in the room, listed or not. */
  onlineTotal(rs) {
    return rs.summary ? rs.onlineCount : rs.online.size;
  }

  // #listMe keeps me in the list of a room I joined: the server never
  // tells a connection about its own user, and a list it sends may predate
  // my join by a moment.
  #listMe(rs) {
    if (rs.joined && this.me && !rs.online.has(this.me.id)) rs.online.set(this.me.id, this.me);
  }

  presence(roomId, user, status) {
    const rs = this.rooms.get(roomId);
    if (!rs || !user?.id) return;
    this.learnUser(user);
    const was = rs.online.has(user.id);
    if (status === 'online') rs.online.set(user.id, user);
    else rs.online.delete(user.id);
    if (status === 'offline') rs.typing.delete(user.id);
    // A summary room announces nobody; a late event from before it became
    // one may still arrive and is not worth a notice.
    if (was !== (status === 'online') && user.id !== this.me?.id && !rs.summary) {
      this.addNotice(roomId, `${user.name} ${status === 'online' ? 'joined' : 'left'}`);
    }
    this.emit('people', roomId);
    this.emit('typing', roomId);
  }

  /** addNotice shows a line such as "Bob joined" after the latest message. */
  addNotice(roomId, text) {
    const rs = this.rooms.get(roomId);
    if (!rs) return;
    const last = rs.messages[rs.messages.length - 1];
    rs.notices.push({ key: `n-${++localIds}`, afterSeq: last ? last.seq : 0, text, time: new Date().toISOString() });
    if (rs.notices.length > MAX_NOTICES) rs.notices.shift();
    this.emit('messages', roomId);
  }

  typing(roomId, user) {
    const rs = this.rooms.get(roomId);
    if (!rs || user.id === this.me?.id) return;
    rs.typing.set(user.id, { user, until: Date.now() + TYPING_TTL });
    this.emit('typing', roomId);
  }

  stopTyping(roomId, userId) {
    const rs = this.rooms.get(roomId);
    if (rs?.typing.delete(userId)) this.emit('typing', roomId);
  }

  /** typers lists who is typing in a room now (expired notices dropped). */
  typers(roomId) {
    const rs = this.rooms.get(roomId);
    if (!rs) return [];
    const now = Date.now();
    for (const [id, t] of rs.typing) if (t.until <= now) rs.typing.delete(id);
    return [...rs.typing.values()].map((t) => t.user);
  }

  // ---- unread ----

  /**
   * unread counts the messages of a room, not mine, after the last one I
   * read. Read marks are kept per user in localStorage, so counts survive a
   * reload (up to the page of messages a join returns).
   */
  unread(roomId) {
    const rs = this.rooms.get(roomId);
    if (!rs) return 0;
    const mark = this.read[roomId] ?? Infinity;
    let n = 0;
    for (let i = rs.messages.length - 1; i >= 0 && rs.messages[i].seq > mark; i--) {
      if (rs.messages[i].author?.id !== this.me?.id) n++;
    }
    return n;
  }

  /** markRead marks everything in the room read. */
  markRead(roomId) {
    const rs = this.rooms.get(roomId);
    if (!rs) return;
    const last = rs.messages[rs.messages.length - 1];
    const seq = last ? last.seq : 0;
    if (this.read[roomId] === seq) return;
    this.read[roomId] = seq;
    this.saveRead();
    this.emit('rooms');
  }

  /**
   * initRead sets the read mark of a room seen for the first time: a room
   * that was there when the page loaded starts read; one that appears later
   * (someone opened a private chat with me) starts with everything unread.
   */
  initRead(roomId, allUnread) {
    if (roomId in this.read) return;
    if (allUnread) this.read[roomId] = 0;
    else this.markRead(roomId);
  }

  saveRead() {
    if (this.readKey) localStorage.setItem(this.readKey, JSON.stringify(this.read));
  }

  setTitleMentions(n) {
    this.titleMentions = n;
    this.emit('title');
  }
}

function newRoomState(room) {
  return {
    room,
    messages: [], // sorted by seq
    ids: new Map(), // id → message
    pending: [], // my messages not yet stored
    notices: [], // join/leave lines
    hasOlder: false, // older messages exist on the server
    loadingOlder: false,
    loaded: false, // joined at least once
    joined: false, // joined on the current connection
    online: new Map(), // user id → user: everyone, or the first by name in a summary room
    onlineCount: 0, // users online, as the server last said
    summary: false, // too many online: counts instead of presence events
    typing: new Map(), // user id → {user, until}
  };
}

// insertBySeq keeps msgs ordered by seq; appending is the common case.
function insertBySeq(msgs, m) {
  let i = msgs.length;
  while (i > 0 && msgs[i - 1].seq > m.seq) i--;
  msgs.splice(i, 0, m);
}
