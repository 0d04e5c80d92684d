// Messages and attempts, shared by the dashboard and the portal: the message list (filters,
// find by id), one message (payload, where it went, every attempt, resend), and one attempt
// (the request Herald sent and the response that came back).

import {
  actionButton, announce, copyText, details, emptyState, field, h, httpStatus, isoToLocal, jsonBlock,
  localToIso, pageTitle, pager, section, shortId, statusBadge, table, time,
} from './dom.js';
import { every, link, navigate } from './router.js';

const STATUSES = [['', 'Any status'], ['success', 'Succeeded'], ['fail', 'Failed'], ['pending', 'Pending'], ['sending', 'Sending']];

function select(id, options, value) {
  return h('select', { id }, options.map(([optionValue, text]) => h('option', { value: optionValue, selected: optionValue === (value || '') }, text)));
}

/** A filter form; `go` gets the new query. Inputs have ids so focus survives re-rendering. */
async function filterForm(ctx, query, go, { withStatus }) {
  const names = await ctx.eventTypes().catch(() => []);
  const eventType = select('f-event-type', [['', 'Any event type'], ...names.map((n) => [n, n])], query.event_type);
  const status = withStatus ? select('f-status', STATUSES, query.status) : null;
  const after = h('input', { type: 'datetime-local', id: 'f-after', value: isoToLocal(query.after) });
  const before = h('input', { type: 'datetime-local', id: 'f-before', value: isoToLocal(query.before) });
  const form = h('form', { class: 'filters', 'aria-label': 'Filters' },
    field('Event type', eventType), status ? field('Status', status) : null,
    field('After', after), field('Before', before),
    h('div', { class: 'buttons' }, h('button', { type: 'submit', class: 'button secondary', id: 'f-apply' }, 'Apply filters'),
      Object.keys(query).length ? h('a', { class: 'button link', href: '#', id: 'f-clear' }, 'Clear') : null));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    go({ event_type: eventType.value, status: status ? status.value : undefined, after: localToIso(after.value), before: localToIso(before.value) });
  });
  form.querySelector('#f-clear')?.addEventListener('click', (event) => {
    event.preventDefault();
    go({});
  });
  return form;
}

/** Filters of an attempt list: event type, status, time. */
export function attemptFilters(ctx, query, go) {
  return filterForm(ctx, query, go, { withStatus: true });
}

function shorten(text, length = 80) {
  if (!text) return h('span', { class: 'muted' }, '(empty)');
  return text.length > length ? `${text.slice(0, length)}…` : text;
}

/** Attempts as a table; each links to its detail page, and each can be resent. */
export function attemptsTable(ctx, attempts, { showMessage = false, showEndpoint = false, onResend } = {}) {
  const resend = onResend || (async (attempt) => {
    await ctx.api.post(ctx.paths.resend(attempt.msgId, attempt.endpointId));
    announce('Sent again. The new attempt appears here.');
    navigate(ctx.links.message(attempt.msgId));
  });
  return table('Attempts', [
    { label: 'When', cell: (a) => h('a', { href: link(ctx.links.attempt(a.msgId, a.id)), 'aria-label': `Attempt details, ${new Date(a.timestamp).toLocaleString()}` }, time(a.timestamp)) },
    showMessage ? { label: 'Event type', cell: (a) => (a.msg ? h('span', { class: 'mono' }, a.msg.eventType) : '—') } : null,
    showMessage ? { label: 'Message', cell: (a) => h('a', { href: link(ctx.links.message(a.msgId)) }, shortId(a.msgId)) } : null,
    showEndpoint ? { label: 'Endpoint', cell: (a) => h('a', { href: link(ctx.links.endpoint(a.endpointId)), class: 'mono break' }, a.url) } : null,
    { label: 'Status', cell: (a) => statusBadge(a.statusText) },
    { label: 'HTTP', cell: (a) => httpStatus(a.responseStatusCode) },
    { label: 'Took', class: 'num', cell: (a) => `${a.responseDurationMs} ms` },
    { label: 'Trigger', cell: (a) => (a.triggerType === 1 ? 'Manual' : 'Scheduled') },
    { label: 'Response', cell: (a) => h('span', { class: 'mono response' }, shorten(a.response)) },
    { label: 'Actions', cell: (a) => actionButton('Resend', () => resend(a), { data: { action: 'resend' } }) },
  ].filter(Boolean), attempts, (a) => ({ dataset: { attemptStatus: a.statusText, attemptId: a.id } }));
}

/** The application's messages, newest first, filterable, with "find by id". */
export async function messagesSection(ctx, query, path) {
  const list = await ctx.api.get(ctx.paths.messages, {
    limit: 25, with_content: false, iterator: query.iterator,
    event_types: query.event_type, after: query.after, before: query.before,
  });
  const filters = await filterForm(ctx, query, (next) => navigate(path, next), { withStatus: false });
  const find = h('input', { type: 'search', id: 'find-message', placeholder: 'msg_… or your event id', autocomplete: 'off' });
  const findForm = h('form', { class: 'inline-form', role: 'search', 'aria-label': 'Find a message' },
    field('Find a message by id or event id', find),
    h('button', { type: 'submit', class: 'button secondary' }, 'Find'));
  findForm.addEventListener('submit', (event) => {
    event.preventDefault();
    if (find.value.trim()) navigate(ctx.links.message(find.value.trim()));
  });
  const rows = list.data;
  return section('Messages', findForm, filters,
    rows.length === 0
      ? emptyState(Object.keys(query).filter((k) => k !== 'iterator').length ? 'No messages match these filters.' : 'No messages yet.')
      : table('Messages', [
        { label: 'When', cell: (m) => time(m.timestamp) },
        { label: 'Event type', cell: (m) => h('span', { class: 'mono' }, m.eventType) },
        { label: 'Message', cell: (m) => h('a', { href: link(ctx.links.message(m.id)) }, shortId(m.id)) },
        { label: 'Event id', cell: (m) => (m.eventId ? h('span', { class: 'mono' }, m.eventId) : h('span', { class: 'muted' }, '—')) },
      ], rows),
    pager(list, query.iterator || '', (iterator) => navigate(path, { ...query, iterator })));
}

/** One message: what was sent, where it went, every attempt; watched while deliveries run. */
export async function messageDetail(ctx, msgId, query, signal) {
  const message = await ctx.api.get(ctx.paths.message(msgId));
  const id = message.id;
  const destinations = h('div', { id: 'destinations' });
  const attempts = h('div', { id: 'attempts' });
  let awaited = 0;

  const refresh = async () => {
    // Destinations first, then attempts: an attempt is recorded with its delivery's new status
    // in one transaction, so every status read here has its attempt in the list read after.
    const dest = await ctx.api.get(ctx.paths.destinations(id), { limit: 250 });
    const list = await ctx.api.get(ctx.paths.messageAttempts(id), { limit: 50 });
    const onResend = async (endpointId) => {
      await ctx.api.post(ctx.paths.resend(id, endpointId));
      awaited = list.data.length + 1;
      announce('Sent again. The new attempt will appear below.');
      watch();
    };
    destinations.replaceChildren(dest.data.length === 0
      ? emptyState('No endpoint was subscribed to this message when it was sent.')
      : table('Destinations', [
        { label: 'Endpoint', cell: (d) => h('a', { href: link(ctx.links.endpoint(d.id)), class: 'mono break' }, d.url) },
        { label: 'Status', cell: (d) => statusBadge(d.statusText) },
        { label: 'Next attempt', cell: (d) => (d.nextAttempt ? time(d.nextAttempt) : h('span', { class: 'muted' }, '—')) },
        { label: 'Actions', cell: (d) => actionButton('Resend', () => onResend(d.id), { data: { action: 'resend-destination' } }) },
      ], dest.data, (d) => ({ dataset: { destinationStatus: d.statusText } })));
    attempts.replaceChildren(list.data.length === 0
      ? emptyState('No attempts yet.')
      : attemptsTable(ctx, list.data, { showEndpoint: true, onResend: (a) => onResend(a.endpointId) }));
    const running = dest.data.some((d) => d.statusText === 'pending' || d.statusText === 'sending');
    return running || list.data.length < awaited;
  };

  let watching = false;
  const watch = () => {
    if (watching) return;
    watching = true;
    every(1000, async () => {
      const again = await refresh();
      if (!again) watching = false;
      return again;
    }, signal);
  };
  if (await refresh()) watch();

  return h('div', null,
    pageTitle(`Message ${message.eventType}`),
    h('div', { class: 'grid-2' },
      section('Details', details([
        ['Message id', h('span', { class: 'mono' }, message.id)],
        ['Event type', h('span', { class: 'mono' }, message.eventType)],
        ['Event id', message.eventId ? h('span', { class: 'mono' }, message.eventId) : null],
        ['Channels', message.channels && message.channels.length ? message.channels.join(', ') : null],
        ['Sent', time(message.timestamp)],
        ['Deliver at', message.deliverAt ? time(message.deliverAt) : null],
      ])),
      section('Payload', jsonBlock(message.payload, 'Payload'),
        h('div', { class: 'buttons' }, actionButton('Copy payload', () => copyText(JSON.stringify(message.payload, null, 2)), { done: 'Payload copied.' })))),
    section('Destinations', h('p', { class: 'hint' }, 'This page refreshes while deliveries are under way.'), destinations),
    section('Attempts', attempts));
}

/** One attempt: the request Herald sent and the response it got. */
export async function attemptDetail(ctx, msgId, attemptId) {
  const [attempt, message] = await Promise.all([
    ctx.api.get(ctx.paths.attempt(msgId, attemptId)),
    ctx.api.get(ctx.paths.message(msgId)),
  ]);
  const [endpoint, custom] = await Promise.all([
    ctx.api.optional(ctx.paths.endpoint(attempt.endpointId)).catch(() => null),
    ctx.api.optional(ctx.paths.headers(attempt.endpointId)).catch(() => null),
  ]);
  const seconds = Math.floor(new Date(attempt.timestamp).getTime() / 1000);
  // Attempts record what they sent; older ones are shown rebuilt from the message.
  const recorded = attempt.request || null;
  const headerRows = recorded ? recorded.headers : [
    ['content-type', 'application/json'],
    ['webhook-id', message.id],
    ['webhook-timestamp', `${seconds} (about; set when sent)`],
    ['webhook-signature', 'v1,… (computed when sent, not stored)'],
  ];
  if (!recorded && endpoint && endpoint.hasBearerToken) headerRows.push(['authorization', 'Bearer … (hidden)']);
  if (!recorded && custom) {
    for (const [name, value] of Object.entries(custom.headers || {})) headerRows.push([name, value]);
    for (const name of custom.sensitive || []) headerRows.push([name, '(hidden: sensitive)']);
  }
  const resend = actionButton('Resend', async () => {
    await ctx.api.post(ctx.paths.resend(message.id, attempt.endpointId));
    announce('Sent again.');
    navigate(ctx.links.message(message.id));
  }, { kind: 'primary', data: { action: 'resend' } });

  return h('div', null,
    pageTitle(`Attempt to ${endpoint ? (endpoint.description || endpoint.url) : attempt.url}`, statusBadge(attempt.statusText)),
    h('div', { class: 'buttons' }, resend,
      h('a', { class: 'button secondary', href: link(ctx.links.message(message.id)) }, 'Message'),
      endpoint ? h('a', { class: 'button secondary', href: link(ctx.links.endpoint(endpoint.id)) }, 'Endpoint') : null),
    section('Request', details([
      ['Sent', time(attempt.timestamp)],
      ['Method and URL', h('span', { class: 'mono break' }, `${recorded ? recorded.method : 'POST'} ${attempt.url}`)],
      ['Trigger', attempt.triggerType === 1 ? 'Manual (resend or recover)' : 'Scheduled'],
    ]),
    h('h3', null, 'Headers'),
    h('p', { class: 'hint' }, recorded
      ? 'As sent; the values of credentials and signatures are not kept.'
      : 'Rebuilt from the message and the endpoint’s current settings: this attempt was recorded without its headers.'),
    table('Request headers', [
      { label: 'Name', cell: ([name]) => h('span', { class: 'mono' }, name) },
      { label: 'Value', cell: ([, value]) => h('span', { class: 'mono break' }, value) },
    ], headerRows),
    h('h3', null, 'Body'),
    recorded && recorded.body !== undefined
      ? h('div', null, h('p', { class: 'hint' }, 'Converted or transformed for this endpoint: not the message’s payload as published.'),
        jsonBlock(recorded.body, 'Request body'))
      : jsonBlock(message.payload, 'Request body')),
    section('Response', details([
      ['Status', httpStatus(attempt.responseStatusCode)],
      ['Took', `${attempt.responseDurationMs} ms`],
    ]),
    h('h3', null, 'Body'),
    h('p', { class: 'hint' }, 'The start of the response body, or why no response arrived.'),
    h('pre', { class: 'code', tabindex: '0', id: 'response-body', 'aria-label': 'Response body' }, attempt.response || '(empty)')));
}
