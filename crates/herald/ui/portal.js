// The customer portal: one application's endpoints, messages and attempts, reached with the
// short-lived application token of a link from `POST /api/v1/auth/app-portal-access/{app}`.
//
// The link is `/portal#app=<id>&token=<token>`. The fragment never reaches a server; the page
// moves the token into sessionStorage (this tab only) and removes it from the address bar and
// history at once. The token reaches this application and nothing else, so the portal can show
// no operator data even if it tried.

import { Api, appPaths, eventTypeNames } from './api.js';
import { h, pageTitle } from './dom.js';
import { startRouter } from './router.js';
import { endpointDetail, endpointForm, endpointList } from './views-endpoint.js';
import { attemptDetail, messageDetail, messagesSection } from './views-message.js';

const SESSION_KEY = 'herald.portal';
const main = document.getElementById('main');
const nav = document.getElementById('nav');

/** Moves a token in the fragment to sessionStorage and out of the address bar. */
function takeTokenFromFragment() {
  const fragment = new URLSearchParams(location.hash.slice(1));
  if (!fragment.has('token')) return;
  sessionStorage.setItem(SESSION_KEY, JSON.stringify({ app: fragment.get('app') || '', token: fragment.get('token') }));
  history.replaceState(null, '', `${location.pathname}${location.search}#/`);
}

function session() {
  try {
    const saved = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    return saved && saved.token && saved.app ? saved : null;
  } catch {
    return null;
  }
}

function stopped(title, text) {
  sessionStorage.removeItem(SESSION_KEY);
  nav.hidden = true;
  main.replaceChildren(h('div', { class: 'narrow' }, pageTitle(title), h('div', { class: 'alert', role: 'alert' }, h('p', null, text))));
  main.querySelector('h1').focus();
}

let api = null;

function links() {
  const id = encodeURIComponent;
  return {
    endpoints: () => '/',
    newEndpoint: () => '/endpoints/new',
    endpoint: (ep) => `/endpoints/${id(ep)}`,
    editEndpoint: (ep) => `/endpoints/${id(ep)}/edit`,
    message: (msg) => `/messages/${id(msg)}`,
    attempt: (msg, attempt) => `/messages/${id(msg)}/attempts/${id(attempt)}`,
  };
}

async function start() {
  takeTokenFromFragment();
  const current = session();
  if (!current) {
    stopped('This portal link is not valid', 'Open the webhooks portal again from the page that linked you here: portal links work for a short time only.');
    return;
  }
  api = new Api(current.token, () => {
    api = null;
    stopped('Your session has ended', 'Open the webhooks portal again from the page that linked you here.');
  });
  const paths = appPaths(current.app);
  let app;
  try {
    app = await api.get(paths.app);
  } catch (error) {
    if (api) stopped('The portal could not be opened', error.message);
    return;
  }
  document.getElementById('app-name').textContent = `${app.name} · Webhooks`;
  nav.hidden = false;
  let eventTypes = null;
  let router = null;
  const ctx = {
    api,
    appId: app.id,
    paths,
    links: links(),
    from: 'Webhooks portal',
    refresh: () => router.refresh(),
    eventTypes: () => (eventTypes ||= eventTypeNames(api)),
  };
  const routes = [
    [/^\/$/, () => endpointList(ctx)],
    [/^\/endpoints\/new$/, () => endpointForm(ctx)],
    [/^\/endpoints\/([^/]+)$/, ([ep], query) => endpointDetail(ctx, ep, query)],
    [/^\/endpoints\/([^/]+)\/edit$/, ([ep]) => endpointForm(ctx, ep)],
    [/^\/messages$/, async (_, query) => h('div', null, pageTitle('Messages'), await messagesSection(ctx, query, '/messages'))],
    [/^\/messages\/([^/]+)$/, ([msg], query, signal) => messageDetail(ctx, msg, query, signal)],
    [/^\/messages\/([^/]+)\/attempts\/([^/]+)$/, ([msg, attempt]) => attemptDetail(ctx, msg, attempt)],
  ];
  router = startRouter(routes, {
    main,
    enabled: () => api !== null,
    onRoute: ({ path }) => {
      const here = path.startsWith('/messages') ? 'messages' : 'endpoints';
      for (const a of nav.querySelectorAll('a')) {
        if (a.dataset.nav === here) a.setAttribute('aria-current', 'page');
        else a.removeAttribute('aria-current');
      }
    },
  });
}

start();
