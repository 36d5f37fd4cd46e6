// The sign-in / sign-up screen.

import { ApiError, NetworkError, describeError, fieldMessage } from '../api.js';
import { checkImage } from '../chat.js';

const $ = (id) => document.getElementById(id);

/**
 * showAuth shows the account screen. onDone(mode) runs after a successful
 * sign-in or sign-up ('user') or when the visitor chooses to look around as
 * a guest ('guest'). message: an optional notice to show first (e.g. the
 * session expired).
 */
export function showAuth(api, { onDone, message = '' }) {
  const screen = $('auth');
  screen.hidden = false;
  const alert = $('auth-alert');
  const tabs = { signin: $('tab-signin'), signup: $('tab-signup') };
  const forms = { signin: $('signin-form'), signup: $('signup-form') };

  const showAlert = (text) => {
    alert.textContent = text;
    alert.hidden = !text;
  };
  const select = (which, focus = true) => {
    for (const k of Object.keys(tabs)) {
      const on = k === which;
      tabs[k].setAttribute('aria-selected', String(on));
      tabs[k].tabIndex = on ? 0 : -1;
      forms[k].hidden = !on;
    }
    showAlert('');
    if (focus) forms[which].querySelector('input').focus();
  };
  tabs.signin.onclick = () => select('signin');
  tabs.signup.onclick = () => select('signup');
  // Arrow keys move between tabs, as in any tab list.
  for (const t of Object.values(tabs)) {
    t.onkeydown = (e) => {
      if (e.key !== 'ArrowLeft' && e.key !== 'ArrowRight') return;
      const next = t === tabs.signin ? 'signup' : 'signin';
      select(next, false);
      tabs[next].focus();
    };
  }

  const done = (mode) => {
    screen.hidden = true;
    onDone(mode);
  };

  forms.signin.onsubmit = async (e) => {
    e.preventDefault();
    const email = $('signin-email').value.trim();
    const password = $('signin-password').value;
    if (!email || !password) return showAlert('Enter your email and password.');
    await busy(forms.signin, async () => {
      try {
        await api.signIn(email, password);
        done('user');
      } catch (err) {
        if (err instanceof ApiError && err.status === 400) showAlert('Wrong email or password.');
        else showAlert(describeError(err));
        $('signin-password').select();
      }
    });
  };

  forms.signup.onsubmit = async (e) => {
    e.preventDefault();
    clearFieldErrors();
    const name = $('signup-name').value.trim();
    const email = $('signup-email').value.trim();
    const password = $('signup-password').value;
    const avatar = $('signup-avatar').files[0] || null;
    const local = {};
    if (!name) local.name = 'Enter the name people will see.';
    if (!email) local.email = 'Enter your email address.';
    if (password.length < 8) local.password = 'Use at least 8 characters.';
    if (avatar && checkImage(avatar)) local.avatar = checkImage(avatar);
    if (Object.keys(local).length) return showFieldErrors(local);
    await busy(forms.signup, async () => {
      try {
        await api.signUp({ name, email, password, avatar });
        done('user');
      } catch (err) {
        if (err instanceof ApiError && Object.keys(err.fields).length) {
          const msgs = {};
          for (const [f, v] of Object.entries(err.fields)) msgs[f === 'passwordConfirm' ? 'password' : f] = fieldMessage(f, v);
          showFieldErrors(msgs);
          showAlert('Please correct the marked fields.');
        } else if (err instanceof NetworkError) {
          showAlert(err.message);
        } else {
          showAlert(describeError(err));
        }
      }
    });
  };

  $('guest-button').onclick = () => done('guest');

  function showFieldErrors(msgs) {
    let first = null;
    for (const [field, text] of Object.entries(msgs)) {
      const el = $(`signup-${field}-error`);
      const input = $(`signup-${field}`);
      if (!el) {
        showAlert(text);
        continue;
      }
      el.textContent = text;
      el.hidden = false;
      input?.setAttribute('aria-invalid', 'true');
      first ||= input;
    }
    first?.focus();
  }

  function clearFieldErrors() {
    for (const el of forms.signup.querySelectorAll('.field-error')) {
      el.hidden = true;
      el.textContent = '';
    }
    for (const el of forms.signup.querySelectorAll('[aria-invalid]')) el.removeAttribute('aria-invalid');
    showAlert('');
  }

  select('signin', false);
  showAlert(message);
  $('signin-email').focus();
}

// busy disables a form's submit button while work runs.
async function busy(form, work) {
  const button = form.querySelector('[type=submit]');
  button.disabled = true;
  form.setAttribute('aria-busy', 'true');
  try {
    await work();
  } finally {
    button.disabled = false;
    form.removeAttribute('aria-busy');
  }
}
