// PocketBase's REST API, with fetch: accounts, the session token, users,
// rooms and image messages. Chat traffic goes over the WebSocket (socket.js);
// these are the things the chat protocol leaves to PocketBase.

const AUTH_KEY = 'pocketchat.auth';

/** ApiError is an answer from the server that is not a success. */
export class ApiError extends Error {
  /**
   * @param {number} status HTTP status
   * @param {string} message PocketBase's message
   * @param {Record<string, {code: string, message: string}>} fields
   *   PocketBase's validation errors, by field name
   */
  constructor(status, message, fields = {}) {
    super(message || `Request failed (${status})`);
    this.name = 'ApiError';
    this.status = status;
    this.fields = fields;
  }

  /** auth reports whether the credentials were refused. */
  get auth() {
    return this.status === 401 || this.status === 403;
  }
}

/** NetworkError means the server could not be reached at all. */
export class NetworkError extends Error {
  constructor(cause) {
    super('Cannot reach the server. Check your connection and try again.');
    this.name = 'NetworkError';
    this.cause = cause;
  }
}

/**
 * Api talks to PocketBase on the page's own origin and remembers the signed-in
 * user's token in localStorage, so a reload signs the user in again.
 */
export class Api {
  constructor(base = '') {
    this.base = base;
    this.token = '';
    this.user = null; // {id, name, avatar, email}
    try {
      const saved = JSON.parse(localStorage.getItem(AUTH_KEY) || 'null');
      if (saved?.token && saved?.record?.id) this.#setAuth(saved.token, saved.record, false);
    } catch { /* a damaged entry is the same as none */ }
  }

  get signedIn() {
    return !!this.token;
  }

  #setAuth(token, record, save = true) {
    this.token = token;
    this.user = userFromRecord(record);
    this.user.email = record.email || '';
    if (save) localStorage.setItem(AUTH_KEY, JSON.stringify({ token, record }));
  }

  /** signOut forgets the session. Tokens are stateless: nothing to revoke. */
  signOut() {
    this.token = '';
    this.user = null;
    localStorage.removeItem(AUTH_KEY);
  }

  /**
   * request sends one API call. body: a plain object (sent as JSON) or a
   * FormData (multipart, for file uploads). It resolves with the decoded JSON
   * answer and rejects with ApiError or NetworkError.
   */
  async request(method, path, body, { signal } = {}) {
    const headers = {};
    if (this.token) headers.Authorization = this.token;
    let payload;
    if (body instanceof FormData) payload = body; // the browser sets the multipart boundary
    else if (body !== undefined) {
      headers['Content-Type'] = 'application/json';
      payload = JSON.stringify(body);
    }
    let res;
    try {
      res = await fetch(this.base + path, { method, headers, body: payload, signal });
    } catch (err) {
      if (err.name === 'AbortError') throw err;
      throw new NetworkError(err);
    }
    const data = res.status === 204 ? null : await res.json().catch(() => null);
    if (!res.ok) throw new ApiError(res.status, data?.message, data?.data || {});
    return data;
  }

  // ---- accounts ----

  /** signUp creates an account (avatar: an optional File) and signs in. */
  async signUp({ name, email, password, avatar }) {
    const form = new FormData();
    form.set('name', name);
    form.set('email', email);
    form.set('password', password);
    form.set('passwordConfirm', password);
    if (avatar) form.set('avatar', avatar);
    await this.request('POST', '/api/collections/users/records', form);
    return this.signIn(email, password);
  }

  async signIn(email, password) {
    const res = await this.request('POST', '/api/collections/users/auth-with-password', {
      identity: email,
      password,
    });
    this.#setAuth(res.token, res.record);
    return this.user;
  }

  /** refresh trades the token for a fresh one (and the current record). */
  async refresh() {
    const res = await this.request('POST', '/api/collections/users/auth-refresh');
    this.#setAuth(res.token, res.record);
    return this.user;
  }

  /**
   * refreshFileToken gets a fresh token for protected files: images in
   * private rooms and private chats, which PocketBase serves only to those
   * who may read their message. Tokens last a few minutes; concurrent
   * calls share one request.
   */
  refreshFileToken() {
    if (!this.token) return Promise.resolve('');
    this.fileTokenRequest ??= this.request('POST', '/api/files/token')
      .then((res) => (this.fileToken = res.token))
      .finally(() => (this.fileTokenRequest = null));
    return this.fileTokenRequest;
  }

  /** fileURL is a file's URL path with the current file token, if any. */
  fileURL(path) {
    if (!this.fileToken) return path;
    const u = new URL(path, location.href);
    u.searchParams.set('token', this.fileToken);
    return u.pathname + u.search;
  }

  /** ticket gets a single-use ticket for opening the chat WebSocket. */
  async ticket() {
    // Bounded: a reconnect must not hang on one stuck request.
    const res = await this.request('POST', '/api/chat/ticket', undefined, { signal: AbortSignal.timeout(10000) });
    return res.ticket;
  }

  /**
   * checkGuests asks whether the chat takes guests: the socket endpoint
   * answers a plain GET with 401 before anything else when it does not (a
   * failed WebSocket handshake would not tell the page why).
   */
  async checkGuests() {
    let res;
    try {
      res = await fetch(`${this.base}/api/chat/ws`, { signal: AbortSignal.timeout(10000) });
    } catch (err) {
      throw new NetworkError(err);
    }
    if (res.status === 401) throw new ApiError(401, 'This server does not let guests read. Please sign in.');
  }

  // ---- users ----

  /** user fetches one user's public face (name and avatar). */
  async user(id) {
    const rec = await this.request('GET', `/api/collections/users/records/${encodeURIComponent(id)}?fields=id,name,avatar,bot`);
    return userFromRecord(rec);
  }

  /** searchUsers finds users whose name contains q. */
  async searchUsers(q, limit = 10) {
    // PocketBase filter strings are quoted with '; drop the characters that
    // could end the literal rather than trying to escape them.
    const term = q.replace(/['"\\]/g, '').trim();
    const filter = encodeURIComponent(`name ~ '${term}' && bot = false`);
    const res = await this.request('GET', `/api/collections/users/records?filter=${filter}&sort=name&perPage=${limit}&skipTotal=1&fields=id,name,avatar,bot`);
    return res.items.map(userFromRecord);
  }

  // ---- rooms ----

  /** createRoom creates a public or private room owned by the signed-in user. */
  createRoom({ name, description, kind }) {
    return this.request('POST', '/api/collections/rooms/records', {
      name,
      description,
      kind,
      owner: this.user.id,
      members: [this.user.id],
    });
  }

  /** addMember adds a user to a room's members ("members+" appends atomically). */
  addMember(roomId, userId) {
    return this.request('PATCH', `/api/collections/rooms/records/${encodeURIComponent(roomId)}`, { 'members+': userId });
  }

  // ---- messages ----

  /**
   * postImage creates a message with an image through REST (the chat
   * protocol carries text only). The server broadcasts it to the room like
   * any other message; the answer is the stored record.
   */
  postImage({ room, text, file }) {
    const form = new FormData();
    form.set('room', room);
    form.set('author', this.user.id);
    form.set('text', text || '');
    form.set('image', file);
    return this.request('POST', '/api/collections/messages/records', form);
  }
}

/** userFromRecord turns a users record into the chat protocol's User shape. */
export function userFromRecord(rec) {
  return {
    id: rec.id,
    name: rec.name || '',
    avatar: rec.avatar ? `/api/files/users/${rec.id}/${encodeURIComponent(rec.avatar)}` : '',
    bot: !!rec.bot,
  };
}

/**
 * describeError turns an error into a sentence for people; field errors
 * come back separately (by field) for forms to place under their inputs.
 */
export function describeError(err) {
  if (err instanceof NetworkError) return err.message;
  if (err instanceof ApiError) {
    if (err.status === 413) return 'That file is too large.';
    if (err.status >= 500) return 'The server had a problem. Please try again.';
    const fields = Object.entries(err.fields);
    if (fields.length) return fields.map(([f, e]) => `${label(f)}: ${fieldMessage(f, e)}`).join(' ');
    return err.message;
  }
  return err?.message || String(err);
}

/** fieldMessage words a PocketBase validation error for a person. */
export function fieldMessage(field, e) {
  if (field === 'email' && e.code === 'validation_not_unique') return 'An account with this email already exists.';
  if (field === 'name' && e.code === 'validation_not_unique') return 'This name is already taken.';
  if (field === 'password' && e.code === 'validation_min_text_constraint') return `Too short. ${e.message}`;
  return e.message;
}

function label(field) {
  return { passwordConfirm: 'Password', name: 'Name', email: 'Email', password: 'Password', avatar: 'Avatar', image: 'Image', text: 'Text' }[field] || field;
}
