// The operator dashboard: sign in with an organisation token (kept in sessionStorage for this
// tab only), then the overview, applications, endpoints, messages and attempts.

import { Api, ApiError } from './api.js';
import { errorBox, field, h, pageTitle } from './dom.js';
import { startRouter } from './router.js';
import { appContext, appView, appsView } from './views-apps.js';
import { endpointDetail, endpointForm } from './views-endpoint.js';
import { attemptDetail, messageDetail } from './views-message.js';
import { overview } from './views-overview.js';
import { sourcesView, sourceView } from './views-sources.js';

const TOKEN_KEY = 'herald.dashboard.token';
const main = document.getElementById('main');
const nav = document.getElementById('nav');
const signOut = document.getElementById('sign-out');
let router = null;
/** The signed-in client; null when signed out (then routes render nothing). */
let api = null;

function signedOut(reason) {
  api = null;
  sessionStorage.removeItem(TOKEN_KEY);
  nav.hidden = true;
  signOut.hidden = true;
  main.replaceChildren(signInView(reason));
  main.querySelector('input').focus();
}

signOut.addEventListener('click', () => {
  signedOut(null);
  history.replaceState(null, '', `${location.pathname}#/`);
});

/** Checks that a token is an organisation token: it may list applications. */
async function verify(token) {
  const api = new Api(token);
  try {
    await api.get('/api/v1/app', { limit: 1 });
  } catch (error) {
    if (error instanceof ApiError && error.status === 403) {
      throw new Error('This is an application token: it opens the customer portal of one application, not the dashboard. Sign in with an organisation token.');
    }
    throw error;
  }
}

function signInView(reason) {
  const input = h('input', { type: 'password', id: 'token', name: 'token', autocomplete: 'off', required: true, spellcheck: 'false' });
  const errors = h('div', { class: 'form-errors' }, reason ? errorBox(reason, 'Signed out') : null);
  const form = h('form', { class: 'card form sign-in', 'aria-label': 'Sign in' },
    errors,
    field('Organisation token', input, 'An organisation API token (sk_…): the one `herald serve` printed at first start, or one from `herald token create`. It stays in this browser tab only.'),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'button primary' }, 'Sign in')));
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    const token = input.value.trim();
    if (!token) {
      errors.replaceChildren(errorBox(new Error('Paste an organisation token.'), 'Not signed in'));
      return;
    }
    try {
      await verify(token);
    } catch (error) {
      errors.replaceChildren(errorBox(error, 'Not signed in'));
      input.focus();
      return;
    }
    sessionStorage.setItem(TOKEN_KEY, token);
    start(token);
  });
  return h('div', { class: 'narrow' }, pageTitle('Sign in to Herald'), form);
}

const ctx = (appId) => appContext(api, appId, () => router.refresh());
const routes = [
  [/^\/$/, (_, __, signal) => overview(api, signal)],
  [/^\/apps$/, (_, query) => appsView(api, query)],
  [/^\/apps\/([^/]+)$/, ([app], query) => appView(ctx(app), query)],
  [/^\/apps\/([^/]+)\/endpoints\/new$/, ([app]) => endpointForm(ctx(app))],
  [/^\/apps\/([^/]+)\/endpoints\/([^/]+)$/, ([app, ep], query) => endpointDetail(ctx(app), ep, query)],
  [/^\/apps\/([^/]+)\/endpoints\/([^/]+)\/edit$/, ([app, ep]) => endpointForm(ctx(app), ep)],
  [/^\/apps\/([^/]+)\/messages\/([^/]+)$/, ([app, msg], query, signal) => messageDetail(ctx(app), msg, query, signal)],
  [/^\/apps\/([^/]+)\/messages\/([^/]+)\/attempts\/([^/]+)$/, ([app, msg, attempt]) => attemptDetail(ctx(app), msg, attempt)],
  [/^\/sources$/, (_, query) => sourcesView(api, query)],
  [/^\/sources\/([^/]+)$/, ([source]) => sourceView(api, source, () => router.refresh())],
];

function start(token) {
  api = new Api(token, () => signedOut(new Error('The token is no longer accepted. Sign in again.')));
  nav.hidden = false;
  signOut.hidden = false;
  if (router) {
    router.refresh();
    return;
  }
  router = startRouter(routes, {
    main,
    enabled: () => api !== null,
    onRoute: ({ path }) => {
      const section = path.startsWith('/apps') ? 'apps' : path.startsWith('/sources') ? 'sources' : 'overview';
      for (const a of nav.querySelectorAll('a')) {
        if (a.dataset.nav === section) a.setAttribute('aria-current', 'page');
        else a.removeAttribute('aria-current');
      }
    },
  });
}

const saved = sessionStorage.getItem(TOKEN_KEY);
if (saved) start(saved);
else signedOut(null);
