// Small helpers shared by the modules: building DOM nodes safely, turning
// message text into nodes, dates, and timing.
//
// Nothing in the client ever assigns user data to innerHTML: every piece of
// text goes through textContent (h() below does that for string children),
// so a message like `<img src=x onerror=alert(1)>` shows those characters.

/**
 * h builds an element. attrs: plain attributes, plus
 *   class: string, text: textContent, on: {event: handler},
 *   dataset: {key: value}, and properties for the names in PROPS.
 * children: nodes or strings (strings become text nodes); null/false skipped.
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null || v === false) continue;
    if (k === 'class') el.className = v;
    else if (k === 'text') el.textContent = v;
    else if (k === 'on') for (const [ev, fn] of Object.entries(v)) el.addEventListener(ev, fn);
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (PROPS.has(k)) el[k] = v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

// Set as properties, not attributes (their live state differs).
const PROPS = new Set(['value', 'checked', 'disabled', 'hidden', 'selected']);

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

/** clear removes every child of el. */
export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
}

// ---- message text ----

// A URL starts with http:// or https:// and runs to the next white space.
const URL_RE = /\bhttps?:\/\/[^\s<>"]+/gi;
// Punctuation that usually ends a sentence rather than a URL.
const TRAILING = /[.,;:!?'"\]}>]+$/;

/**
 * splitText cuts text into parts {type: 'text'|'link'|'mention', value, href}.
 * Links are http(s) only and checked with the URL parser; mention marks
 * "@myName" (case-insensitive) when myName is given.
 */
export function splitText(text, myName = '') {
  const parts = [];
  let last = 0;
  for (const m of text.matchAll(URL_RE)) {
    let raw = m[0].replace(TRAILING, '');
    // Keep a closing parenthesis only when the URL opened one (wiki links).
    while (raw.endsWith(')') && count(raw, '(') < count(raw, ')')) raw = raw.slice(0, -1);
    let href = '';
    try {
      const u = new URL(raw);
      if (u.protocol === 'http:' || u.protocol === 'https:') href = u.href;
    } catch { /* not a URL after all: stays text */ }
    if (!href) continue;
    if (m.index > last) parts.push(...mentionParts(text.slice(last, m.index), myName));
    parts.push({ type: 'link', value: raw, href });
    last = m.index + raw.length;
  }
  if (last < text.length) parts.push(...mentionParts(text.slice(last), myName));
  return parts;
}

function count(s, ch) {
  return s.split(ch).length - 1;
}

function mentionParts(text, myName) {
  if (!myName) return [{ type: 'text', value: text }];
  const parts = [];
  const lower = text.toLowerCase();
  const needle = '@' + myName.toLowerCase();
  let from = 0;
  let i;
  while ((i = lower.indexOf(needle, from)) !== -1) {
    const end = i + needle.length;
    if (isNameChar(text[end])) { // "@Al" must not match "@Alice"
      from = end;
      continue;
    }
    if (i > 0) parts.push({ type: 'text', value: text.slice(0, i) });
    parts.push({ type: 'mention', value: text.slice(i, end) });
    text = text.slice(end);
    return parts.concat(mentionParts(text, myName));
  }
  parts.push({ type: 'text', value: text });
  return parts;
}

function isNameChar(ch) {
  return ch !== undefined && /[\p{L}\p{N}_]/u.test(ch);
}

/** mentions reports whether text mentions "@name" as a whole name. */
export function mentions(text, name) {
  return !!name && splitText(text, name).some((p) => p.type === 'mention');
}

/** textNodes renders message text as DOM nodes (never as HTML). */
export function textNodes(text, myName) {
  return splitText(text, myName).map((p) => {
    if (p.type === 'link') {
      return h('a', { href: p.href, target: '_blank', rel: 'noopener noreferrer', text: p.value });
    }
    if (p.type === 'mention') return h('mark', { class: 'mention', text: p.value });
    return document.createTextNode(p.value);
  });
}

// ---- dates ----

/** dayKey is the local calendar day of a date, e.g. "2026-11-22". */
export function dayKey(date) {
  const d = new Date(date);
  return `${d.getFullYear()}-${d.getMonth() + 1}-${d.getDate()}`;
}

/** dayLabel is "Today", "Yesterday" or a long local date. */
export function dayLabel(date) {
  const d = new Date(date);
  const today = new Date();
  const yesterday = new Date(today.getFullYear(), today.getMonth(), today.getDate() - 1);
  if (dayKey(d) === dayKey(today)) return 'Today';
  if (dayKey(d) === dayKey(yesterday)) return 'Yesterday';
  return d.toLocaleDateString(undefined, { weekday: 'long', year: 'numeric', month: 'long', day: 'numeric' });
}

/** clock is the local time of day, e.g. "14:05". */
export function clock(date) {
  return new Date(date).toLocaleTimeString(undefined, { hour: '2-digit', minute: '2-digit' });
}

// ---- people ----

/** initials of a display name, for avatars without a picture. */
export function initials(name) {
  const words = String(name || '?').trim().split(/\s+/).filter(Boolean);
  const first = [...(words[0] || '?')][0];
  const second = words.length > 1 ? [...words[words.length - 1]][0] : '';
  return (first + second).toUpperCase();
}

/** hue derives a stable color hue from an id, for avatar backgrounds. */
export function hue(id) {
  let n = 0;
  for (const ch of String(id)) n = (n * 31 + ch.charCodeAt(0)) >>> 0;
  return n % 360;
}

/** avatar renders a user's picture, or their initials on a colored disc. */
export function avatar(user, size = 'md') {
  const cls = `avatar avatar-${size}`;
  if (user?.avatar) {
    return h('img', { class: cls, src: user.avatar + '?thumb=100x100', alt: '', loading: 'lazy', decoding: 'async' });
  }
  const el = h('span', { class: cls, 'aria-hidden': 'true', text: initials(user?.name) });
  el.style.setProperty('--avatar-hue', hue(user?.id || user?.name || ''));
  return el;
}

// ---- timing ----

/** sleep resolves after ms. */
export function sleep(ms) {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * frameBatch returns a function that schedules fn to run once on the next
 * animation frame however often it is called before then: views call it on
 * every store change and render at most once per frame.
 */
export function frameBatch(fn) {
  let queued = false;
  return () => {
    if (queued) return;
    queued = true;
    requestAnimationFrame(() => {
      queued = false;
      fn();
    });
  };
}
