// The message box: Enter sends, Shift+Enter starts a new line; an emoji
// picker; @-mention autocomplete; images from the file picker, the
// clipboard or drag and drop; "typing" notices while the user types. Guests
// see it disabled, with a hint to sign in.

import { h, clear, avatar, frameBatch } from '../util.js';
import { checkImage } from '../chat.js';

const $ = (id) => document.getElementById(id);

// The schema's limit on message text, in characters.
const MAX_TEXT = 4000;

// A small set of emoji, with names for screen readers and tooltips.
const EMOJI = [
  ['😀', 'grinning face'], ['😂', 'tears of joy'], ['🙂', 'slightly smiling face'], ['😉', 'winking face'],
  ['😍', 'heart eyes'], ['🤔', 'thinking face'], ['😎', 'cool'], ['😅', 'sweat smile'],
  ['😢', 'crying face'], ['😮', 'surprised'], ['😴', 'sleeping'], ['🙃', 'upside-down face'],
  ['👍', 'thumbs up'], ['👎', 'thumbs down'], ['👏', 'clapping'], ['🙌', 'raised hands'],
  ['🙏', 'folded hands'], ['👋', 'waving hand'], ['💪', 'flexed biceps'], ['👀', 'eyes'],
  ['❤️', 'red heart'], ['🔥', 'fire'], ['✨', 'sparkles'], ['🎉', 'party popper'],
  ['✅', 'check mark'], ['❌', 'cross mark'], ['⚡', 'lightning'], ['⭐', 'star'],
  ['☕', 'coffee'], ['🍕', 'pizza'], ['🚀', 'rocket'], ['💡', 'light bulb'],
];

export function mountComposer({ store, chat, onSignIn, pin }) {
  const form = $('composer');
  const input = $('composer-input');
  const fileInput = $('file-input');
  const errorEl = $('composer-error');
  let attachment = null; // {file, url}
  let editing = null; // the message of mine being edited, or null

  const showError = (text) => {
    errorEl.textContent = text;
    errorEl.hidden = !text;
  };

  // ---- state: which room, guest or not ----

  const render = frameBatch(() => {
    const rs = store.room(store.current);
    const guest = !store.me;
    const noRoom = !rs;
    $('guest-hint').hidden = !guest;
    for (const el of [input, $('attach-button'), $('emoji-button'), $('send-button')]) el.disabled = guest || noRoom;
    const name = rs ? store.roomName(rs.room) : '';
    input.placeholder = guest ? 'Sign in to send messages' : rs ? (rs.room.kind === 'direct' ? `Message ${name}` : `Message #${name}`) : 'Pick a room';
    input.setAttribute('aria-label', rs ? `Message ${name}` : 'Message');
  });
  store.subscribe((topic) => {
    if (topic === 'current' || topic === 'me' || topic === 'rooms') render();
    if (topic === 'current') {
      clearAttachment();
      showError('');
      if (editing) stopEdit();
    }
  });
  $('guest-signin').onclick = onSignIn;

  // ---- sending ----

  form.onsubmit = (e) => {
    e.preventDefault();
    send();
  };

  function send() {
    const roomId = store.current;
    const text = input.value;
    if (!store.me || !roomId) return;
    if ([...text.trim()].length > MAX_TEXT) return showError(`Messages can be at most ${MAX_TEXT} characters.`);
    if (editing) return saveEdit(text);
    if (attachment) chat.sendImage(roomId, attachment.file, text.trim());
    else if (text.trim()) chat.send(roomId, text);
    else return;
    input.value = '';
    autosize();
    clearAttachment();
    showError('');
    closeMention();
    chat.stoppedTyping();
    pin();
  }

  input.addEventListener('keydown', (e) => {
    if (mentionKeys(e)) return;
    // Enter sends; Shift+Enter (and Enter while an IME composes) adds a line.
    if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
      e.preventDefault();
      send();
    } else if (e.key === 'Escape') {
      closeEmoji();
      if (editing) stopEdit();
    }
  });

  // ---- editing one of my messages ----

  $('edit-cancel').onclick = () => {
    stopEdit();
    input.focus();
  };

  /** startEdit puts one of my messages in the box; Enter saves it. */
  function startEdit(m) {
    clearAttachment();
    editing = m;
    input.value = m.text;
    $('editing').hidden = false;
    showError('');
    autosize();
    input.focus();
    input.setSelectionRange(input.value.length, input.value.length);
  }

  function stopEdit() {
    editing = null;
    input.value = '';
    $('editing').hidden = true;
    autosize();
  }

  async function saveEdit(text) {
    const m = editing;
    if (!text.trim()) return showError('A message cannot be empty: delete it instead.');
    if (text.trim() === m.text) return stopEdit();
    try {
      await chat.edit(m.id, text);
      if (editing === m) stopEdit();
    } catch (err) {
      showError(`Not saved: ${err.message}`);
    }
  }

  input.addEventListener('input', () => {
    autosize();
    if (input.value.trim() && store.current) chat.typing(store.current);
    updateMention();
  });
  input.addEventListener('click', updateMention);
  input.addEventListener('blur', () => setTimeout(closeMention, 150));

  // The box grows with its text up to a few lines, then scrolls.
  function autosize() {
    input.style.height = 'auto';
    input.style.height = `${Math.min(input.scrollHeight, 160)}px`;
  }

  // insert puts text at the caret (or over the selection).
  function insert(text) {
    const { selectionStart: a, selectionEnd: b, value } = input;
    input.value = value.slice(0, a) + text + value.slice(b);
    input.selectionStart = input.selectionEnd = a + text.length;
    input.focus();
    autosize();
  }

  // ---- images ----

  $('attach-button').onclick = () => fileInput.click();
  fileInput.onchange = () => {
    if (fileInput.files[0]) attach(fileInput.files[0]);
    fileInput.value = '';
  };

  input.addEventListener('paste', (e) => {
    const file = [...(e.clipboardData?.files || [])].find((f) => f.type.startsWith('image/'));
    if (file) {
      e.preventDefault();
      attach(file);
    }
  });

  const chatArea = $('chat');
  const overlay = $('drop-overlay');
  let dragDepth = 0; // dragenter/leave fire for every child crossed
  const hasFiles = (e) => [...(e.dataTransfer?.types || [])].includes('Files');
  chatArea.addEventListener('dragenter', (e) => {
    if (!hasFiles(e) || !store.me) return;
    dragDepth++;
    overlay.hidden = false;
  });
  chatArea.addEventListener('dragover', (e) => {
    if (hasFiles(e) && store.me) e.preventDefault(); // allow the drop
  });
  chatArea.addEventListener('dragleave', () => {
    if (--dragDepth <= 0) {
      dragDepth = 0;
      overlay.hidden = true;
    }
  });
  chatArea.addEventListener('drop', (e) => {
    if (!hasFiles(e)) return;
    e.preventDefault();
    dragDepth = 0;
    overlay.hidden = true;
    const file = [...e.dataTransfer.files][0];
    if (file && store.me) attach(file);
  });

  function attach(file) {
    const problem = checkImage(file);
    if (problem) return showError(problem);
    showError('');
    clearAttachment();
    attachment = { file, url: URL.createObjectURL(file) };
    const box = $('attachment');
    box.append(
      h('img', { src: attachment.url, alt: '' }),
      h('span', { class: 'attachment-name', text: `${file.name || 'Pasted image'} · ${Math.max(1, Math.round(file.size / 1024))} KB` }),
      h('button', { type: 'button', class: 'link', 'aria-label': 'Remove the image', on: { click: () => { clearAttachment(); input.focus(); } }, text: 'Remove' }));
    box.hidden = false;
    input.focus();
  }

  function clearAttachment() {
    if (attachment) URL.revokeObjectURL(attachment.url);
    attachment = null;
    clear($('attachment'));
    $('attachment').hidden = true;
  }

  // ---- emoji ----

  const emojiButton = $('emoji-button');
  const panel = $('emoji-panel');
  for (const [ch, name] of EMOJI) {
    panel.append(h('button', { type: 'button', class: 'emoji', title: name, 'aria-label': name, text: ch, on: { click: () => { insert(ch); closeEmoji(); } } }));
  }
  emojiButton.onclick = () => (panel.hidden ? openEmoji() : closeEmoji(true));
  panel.addEventListener('keydown', (e) => {
    const buttons = [...panel.querySelectorAll('button')];
    const i = buttons.indexOf(document.activeElement);
    const step = { ArrowRight: 1, ArrowLeft: -1, ArrowDown: 8, ArrowUp: -8 }[e.key];
    if (step && i >= 0) {
      e.preventDefault();
      buttons[(i + step + buttons.length) % buttons.length].focus();
    } else if (e.key === 'Escape') {
      e.preventDefault();
      closeEmoji(true);
    }
  });
  document.addEventListener('click', (e) => {
    if (!panel.hidden && !panel.contains(e.target) && !emojiButton.contains(e.target)) closeEmoji();
  });

  function openEmoji() {
    panel.hidden = false;
    emojiButton.setAttribute('aria-expanded', 'true');
    panel.querySelector('button').focus();
  }

  function closeEmoji(refocus = false) {
    if (panel.hidden) return;
    panel.hidden = true;
    emojiButton.setAttribute('aria-expanded', 'false');
    if (refocus) emojiButton.focus();
  }

  // ---- @mentions ----

  const mentionList = $('mention-list');
  let matches = [];
  let active = 0;
  let atStart = -1; // index of the "@" being completed

  // mentionQuery finds "@partial" right before the caret.
  function mentionQuery() {
    const upto = input.value.slice(0, input.selectionStart);
    const m = /(^|\s)@([^\s@]{0,30})$/u.exec(upto);
    if (!m) return null;
    return { start: upto.length - m[2].length - 1, q: m[2].toLowerCase() };
  }

  // candidates: people online here, then recent authors, then anyone seen.
  function candidates() {
    const rs = store.room(store.current);
    const seen = new Map();
    const add = (u) => u?.id && u.id !== store.me?.id && !seen.has(u.id) && seen.set(u.id, u);
    rs?.online.forEach(add);
    rs?.messages.slice(-200).reverse().forEach((m) => add(m.author));
    store.users.forEach(add);
    return [...seen.values()];
  }

  function updateMention() {
    const found = store.me && mentionQuery();
    if (!found) return closeMention();
    matches = candidates()
      .filter((u) => u.name.toLowerCase().split(/\s+/).some((w) => w.startsWith(found.q)) || u.name.toLowerCase().startsWith(found.q))
      .slice(0, 6);
    if (!matches.length) return closeMention();
    atStart = found.start;
    active = Math.min(active, matches.length - 1);
    drawMentions();
  }

  const drawMentions = () => {
    clear(mentionList);
    matches.forEach((u, i) => {
      const li = h('li', { id: `mention-${i}`, role: 'option', class: 'mention-option', 'aria-selected': String(i === active) },
        avatar(u, 'sm'), h('span', { text: u.name }));
      // mousedown, not click: keep the focus in the text box.
      li.addEventListener('mousedown', (e) => {
        e.preventDefault();
        choose(i);
      });
      mentionList.append(li);
    });
    mentionList.hidden = false;
    input.setAttribute('aria-expanded', 'true');
    input.setAttribute('aria-activedescendant', `mention-${active}`);
  };

  function closeMention() {
    mentionList.hidden = true;
    matches = [];
    active = 0;
    input.setAttribute('aria-expanded', 'false');
    input.removeAttribute('aria-activedescendant');
  }

  function choose(i) {
    const u = matches[i];
    if (!u) return;
    const end = input.selectionStart;
    input.setSelectionRange(atStart, end);
    insert(`@${u.name} `);
    closeMention();
  }

  // mentionKeys handles the keys of an open suggestion list.
  function mentionKeys(e) {
    if (mentionList.hidden || !matches.length) return false;
    if (e.key === 'ArrowDown' || e.key === 'ArrowUp') {
      active = (active + (e.key === 'ArrowDown' ? 1 : -1) + matches.length) % matches.length;
      drawMentions();
    } else if (e.key === 'Enter' || e.key === 'Tab') {
      choose(active);
    } else if (e.key === 'Escape') {
      closeMention();
    } else {
      return false;
    }
    e.preventDefault();
    return true;
  }

  render();
  return { showError, startEdit, focus: () => input.focus() };
}
