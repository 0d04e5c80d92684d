// The dashboard's applications: the list (search, create) and one application's page
// (details, portal link, test event, its endpoints and messages).

import { appPaths, eventTypeNames, sendTestEvent } from './api.js';
import {
  actionButton, announce, details, emptyState, errorBox, field, h, pageTitle, pager, section, table, time,
} from './dom.js';
import { link, navigate } from './router.js';
import { endpointList } from './views-endpoint.js';
import { messagesSection } from './views-message.js';

/** Routes of one application inside the dashboard. */
export function appLinks(appId) {
  const base = `/apps/${encodeURIComponent(appId)}`;
  const id = encodeURIComponent;
  return {
    app: () => base,
    endpoints: () => base,
    newEndpoint: () => `${base}/endpoints/new`,
    endpoint: (ep) => `${base}/endpoints/${id(ep)}`,
    editEndpoint: (ep) => `${base}/endpoints/${id(ep)}/edit`,
    message: (msg) => `${base}/messages/${id(msg)}`,
    attempt: (msg, attempt) => `${base}/messages/${id(msg)}/attempts/${id(attempt)}`,
  };
}

/** The applications, a page at a time; search filters the page, Enter opens an id or uid. */
export async function appsView(api, query) {
  const list = await api.get('/api/v1/app', { limit: 50, iterator: query.iterator });
  const search = h('input', { type: 'search', id: 'app-search', autocomplete: 'off', value: query.q || '' });
  const rows = list.data;
  const matches = (app, text) => [app.name, app.uid || '', app.id].some((v) => v.toLowerCase().includes(text));
  const listTable = rows.length === 0 ? null : table('Applications', [
    { label: 'Name', cell: (app) => h('a', { href: link(appLinks(app.id).app()) }, app.name) },
    { label: 'UID', cell: (app) => (app.uid ? h('span', { class: 'mono' }, app.uid) : h('span', { class: 'muted' }, '—')) },
    { label: 'Id', cell: (app) => h('span', { class: 'mono' }, app.id) },
    { label: 'Created', cell: (app) => time(app.createdAt) },
  ], rows, (app) => ({ dataset: { search: [app.name, app.uid || '', app.id].join(' ').toLowerCase() } }));
  const noMatch = h('p', { class: 'empty', hidden: true }, 'No application on this page matches. Press Enter to open it by id or uid.');
  const applyFilter = () => {
    const text = search.value.trim().toLowerCase();
    let shown = 0;
    for (const row of listTable ? listTable.querySelectorAll('tbody tr') : []) {
      row.hidden = Boolean(text) && !row.dataset.search.includes(text);
      if (!row.hidden) shown += 1;
    }
    noMatch.hidden = !listTable || shown > 0;
  };
  for (const type of ['input', 'change', 'search']) search.addEventListener(type, applyFilter);
  const searchForm = h('form', { role: 'search', class: 'inline-form', 'aria-label': 'Applications' },
    field('Search applications', search, 'Filters this page by name, uid or id. Press Enter to open an application by its id or uid.'));
  searchForm.addEventListener('submit', (event) => {
    event.preventDefault();
    const text = search.value.trim();
    const visible = rows.filter((app) => matches(app, text.toLowerCase()));
    if (visible.length === 1) navigate(appLinks(visible[0].id).app());
    else if (text) navigate(appLinks(text).app());
  });
  applyFilter();

  return h('div', null,
    pageTitle('Applications'),
    createForm(api),
    section('All applications', searchForm,
      rows.length === 0 ? emptyState('No applications yet. Create one for each customer that receives webhooks.') : listTable,
      noMatch,
      pager(list, query.iterator || '', (iterator) => navigate('/apps', { iterator }))));
}

function createForm(api) {
  const name = h('input', { type: 'text', id: 'new-app-name', required: true });
  const uid = h('input', { type: 'text', id: 'new-app-uid', autocomplete: 'off' });
  const errors = h('div');
  const form = h('form', { class: 'inline-form', 'aria-label': 'New application' },
    field('Name', name), field('UID (optional)', uid, 'Your own id for this customer.'),
    h('button', { type: 'submit', class: 'button primary' }, 'Create application'), errors);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    errors.replaceChildren();
    try {
      const app = await api.post('/api/v1/app', { name: name.value.trim(), uid: uid.value.trim() || null });
      announce('Application created.');
      navigate(appLinks(app.id).app());
    } catch (error) {
      errors.replaceChildren(errorBox(error, 'The application was not created'));
    }
  });
  return h('details', { class: 'card' }, h('summary', null, 'New application'), form);
}

/** One application: details, actions, endpoints and messages. */
export async function appView(ctx, query) {
  const app = await ctx.api.get(ctx.paths.app);
  const portalResult = h('div', { class: 'portal-link' });
  const portal = actionButton('Open customer portal', async () => {
    const access = await ctx.api.post(`/api/v1/auth/app-portal-access/${encodeURIComponent(app.id)}`, {});
    portalResult.replaceChildren(h('p', null, 'A portal link for this customer was created. ',
      h('a', { href: access.url, target: '_blank', rel: 'noopener noreferrer' }, 'Open the portal in a new tab'),
      '. The link carries a short-lived token that reaches this application only.'));
  }, { data: { action: 'portal' } });
  const types = await eventTypeNames(ctx.api).catch(() => []);
  const testType = types[0] || 'herald.test';
  const test = actionButton('Send test event', async () => {
    const message = await sendTestEvent(ctx.api, app.id, testType, ctx.from);
    navigate(ctx.links.message(message.id));
  }, { data: { action: 'test-event' } });

  return h('div', null,
    pageTitle(app.name),
    h('div', { class: 'buttons' }, portal, test),
    portalResult,
    h('p', { class: 'hint' }, 'The test event is a message of type ', h('code', null, testType),
      ' with a small payload; every endpoint subscribed to that type receives it.'),
    section('Details', details([
      ['Application id', h('span', { class: 'mono' }, app.id)],
      ['UID', app.uid ? h('span', { class: 'mono' }, app.uid) : null],
      ['Created', time(app.createdAt)],
      ['Rate limit', app.rateLimit ? `${app.rateLimit} per second` : null],
    ])),
    await endpointList(ctx, { asPage: false }),
    await messagesSection(ctx, query, ctx.links.app()));
}

/** What views of one application need, for the dashboard (organisation token). */
export function appContext(api, appId, refresh) {
  let eventTypes = null;
  return {
    api,
    appId,
    paths: appPaths(appId),
    links: appLinks(appId),
    from: 'Herald dashboard',
    refresh,
    eventTypes: () => (eventTypes ||= eventTypeNames(api)),
  };
}
