// The dashboard's ingest sources (webhooks providers send to Herald for you): the list, and one
// source's page (its ingest URL, its destinations, the events it received, its refusals).
// Everything comes from the public ingest API; a source's events and forwarding attempts are
// those of its application (`appId`), shown by the application pages.

import {
  actionButton, details, emptyState, h, pageTitle, pager, section, table, time,
} from './dom.js';
import { link, navigate } from './router.js';
import { appLinks } from './views-apps.js';

const base = '/ingest/api/v1/source';
const sourcePath = (id) => `${base}/${encodeURIComponent(id)}`;

/** The sources, a page at a time. */
export async function sourcesView(api, query) {
  const list = await api.get(base, { limit: 50, iterator: query.iterator });
  const rows = list.data;
  return h('div', null,
    pageTitle('Sources'),
    section('Ingest sources',
      h('p', { class: 'muted' },
        'Providers (GitHub, Stripe, Shopify, Slack, …) send to a source\'s ingest URL; Herald verifies, ',
        'deduplicates and stores each event, then forwards it to the source\'s destinations.'),
      rows.length === 0
        ? emptyState('No sources yet. Create one with the API (POST /ingest/api/v1/source) or `herald source create`.')
        : table('Sources', [
          { label: 'Name', cell: (s) => h('a', { href: link(`/sources/${encodeURIComponent(s.id)}`) }, s.name) },
          { label: 'Type', cell: (s) => h('span', { class: 'mono' }, s.type) },
          { label: 'UID', cell: (s) => (s.uid ? h('span', { class: 'mono' }, s.uid) : h('span', { class: 'muted' }, '—')) },
          { label: 'Created', cell: (s) => time(s.createdAt) },
        ], rows),
      pager(list, query.iterator || '', (iterator) => navigate('/sources', { iterator }))));
}

/** One source: its URL, destinations, events and refusals. */
export async function sourceView(api, id, refresh) {
  const source = await api.get(sourcePath(id));
  const [destinations, refusals] = await Promise.all([
    api.get(`${sourcePath(source.id)}/endpoint`, { limit: 50 }),
    api.get(`${sourcePath(source.id)}/refusal`, { limit: 50 }),
  ]);
  const app = appLinks(source.appId);
  const rotate = actionButton('Rotate the ingest URL', async () => {
    await api.post(`${sourcePath(source.id)}/token/rotate`);
    refresh();
  }, {
    confirm: 'Give the source a new ingest URL? The current one keeps working for the grace period (48 hours by default).',
    done: 'The source has a new ingest URL.',
  });
  return h('div', null,
    pageTitle(source.name),
    section('Source',
      details([
        ['Id', h('span', { class: 'mono' }, source.id)],
        ['UID', source.uid ? h('span', { class: 'mono' }, source.uid) : null],
        ['Type', h('span', { class: 'mono' }, source.type)],
        ['Ingest URL', h('span', { class: 'mono' }, source.ingestUrl)],
        ['Created', time(source.createdAt)],
      ]),
      h('p', null, h('a', { href: link(app.app()) }, 'Events and forwarding attempts')),
      rotate),
    section('Destinations',
      destinations.data.length === 0
        ? emptyState('No destinations yet: events are stored but forwarded nowhere. Add one with POST …/endpoint.')
        : table('Destinations', [
          { label: 'URL', cell: (ep) => h('a', { href: link(app.endpoint(ep.id)) }, ep.url) },
          { label: 'Status', cell: (ep) => (ep.disabled ? 'disabled' : 'enabled') },
          { label: 'Created', cell: (ep) => time(ep.createdAt) },
        ], destinations.data)),
    section('Refused requests',
      refusals.data.length === 0
        ? emptyState('No refused requests.')
        : table('Refused requests', [
          { label: 'Time', cell: (r) => time(r.timestamp) },
          { label: 'Reason', cell: (r) => h('span', { class: 'mono' }, r.reason) },
          { label: 'Address', cell: (r) => h('span', { class: 'mono' }, r.address) },
        ], refusals.data)));
}
