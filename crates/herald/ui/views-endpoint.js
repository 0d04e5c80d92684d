// Endpoints, shared by the dashboard and the portal: the list, the add/edit form, and one
// endpoint's page (details, delivery counts, signing secret, actions, attempts).
//
// `ctx` says which application and how to link: {api, appId, paths, from, links, eventTypes,
// refresh}.

import { ApiError, sendTestEvent } from './api.js';
import {
  actionButton, announce, copyText, details, emptyState, errorBox, field, h, isoToLocal, localToIso,
  pageTitle, pager, section, table, time,
} from './dom.js';
import { link, navigate } from './router.js';
import { attemptFilters, attemptsTable } from './views-message.js';

/** An endpoint's name in lists: its description, else its URL. */
function label(endpoint) {
  return endpoint.description || endpoint.url;
}

function enabledBadge(endpoint) {
  return endpoint.disabled
    ? h('span', { class: 'badge status-fail' }, 'Disabled')
    : h('span', { class: 'badge status-success' }, 'Enabled');
}

function eventTypesText(endpoint) {
  return endpoint.eventTypes && endpoint.eventTypes.length ? endpoint.eventTypes.join(', ') : 'All event types';
}

/**
 * The application's endpoints with their delivery counts (last 28 days): a page of its own
 * (the portal's start page) or a section of another page.
 */
export async function endpointList(ctx, { asPage = true } = {}) {
  const list = await ctx.api.get(ctx.paths.endpoints, { limit: 250 });
  const stats = await Promise.all(list.data.map((ep) => ctx.api.optional(ctx.paths.stats(ep.id)).catch(() => null)));
  const add = h('a', { class: 'button primary', href: link(ctx.links.newEndpoint()) }, 'Add endpoint');
  const count = (index, key) => (stats[index] ? String(stats[index][key]) : '—');
  const rows = list.data.map((ep, index) => ({ ep, index }));
  const body = list.data.length === 0
    ? emptyState('No endpoints yet. Add the URL where webhooks should be sent.', add)
    : table('Endpoints', [
      { label: 'Endpoint', cell: ({ ep }) => h('a', { href: link(ctx.links.endpoint(ep.id)) }, label(ep),
        ep.description ? h('span', { class: 'sub mono' }, ep.url) : null) },
      { label: 'Status', cell: ({ ep }) => enabledBadge(ep) },
      { label: 'Event types', cell: ({ ep }) => eventTypesText(ep) },
      { label: 'Succeeded', class: 'num', cell: ({ index }) => count(index, 'success') },
      { label: 'Failed', class: 'num', cell: ({ index }) => count(index, 'fail') },
      { label: 'Pending', class: 'num', cell: ({ index }) => count(index, 'pending') },
    ], rows);
  const note = h('p', { class: 'hint' }, 'Delivery counts cover messages of the last 28 days.');
  if (asPage) return h('div', null, pageTitle('Endpoints', list.data.length ? add : null), h('div', { class: 'card' }, note, body));
  return section('Endpoints', h('div', { class: 'buttons' }, list.data.length ? add : null), note, body);
}

/** The add form (no `endpointId`) or the edit form of one endpoint. */
export async function endpointForm(ctx, endpointId) {
  const editing = Boolean(endpointId);
  const [endpoint, registered] = await Promise.all([
    editing ? ctx.api.get(ctx.paths.endpoint(endpointId)) : null,
    ctx.eventTypes(),
  ]);
  const current = new Set((endpoint && endpoint.eventTypes) || []);
  const names = [...new Set([...registered, ...current])].sort();

  const url = h('input', { type: 'url', name: 'url', required: true, autocomplete: 'url',
    placeholder: 'https://example.com/webhooks', value: endpoint ? endpoint.url : '' });
  const description = h('input', { type: 'text', name: 'description', value: endpoint ? endpoint.description : '' });
  const channels = h('input', { type: 'text', name: 'channels',
    value: endpoint && endpoint.channels ? endpoint.channels.join(', ') : '' });
  const rateLimit = h('input', { type: 'number', name: 'rateLimit', min: '1', max: '65535', inputmode: 'numeric',
    value: endpoint && endpoint.rateLimit ? String(endpoint.rateLimit) : '' });
  const disabled = h('input', { type: 'checkbox', name: 'disabled', id: 'ep-disabled', checked: endpoint && endpoint.disabled });
  const ordered = h('input', { type: 'checkbox', name: 'ordered', id: 'ep-ordered', checked: endpoint && endpoint.ordered });
  const choice = (name, options, value) => h('select', { name },
    options.map(([optionValue, text]) => h('option', { value: optionValue, selected: optionValue === value }, text)));
  const onExhausted = choice('orderedOnExhausted', [
    ['skip', 'Skip it: give the message up and go on with the next'],
    ['pause', 'Pause: wait until it is resent or recovered'],
  ], (endpoint && endpoint.orderedOnExhausted) || 'skip');
  const consent = choice('consent', [
    ['', 'The server\'s setting'],
    ['cloudevents', 'Ask first (CloudEvents webhook handshake)'],
    ['off', 'Do not ask'],
  ], (endpoint && endpoint.consent) || '');
  const boxes = names.map((name) => h('label', { class: 'check' },
    h('input', { type: 'checkbox', name: 'eventTypes', value: name, checked: current.has(name) }), ' ', h('span', { class: 'mono' }, name)));

  const fields = {
    url: field('URL', url, 'Where Herald POSTs each webhook. It must be reachable from the Herald server.'),
    description: field('Description (optional)', description),
    channels: field('Channels (optional)', channels, 'Comma-separated. Only messages on one of these channels are sent; empty means all.'),
    rateLimit: field('Rate limit (optional)', rateLimit, 'Most deliveries per second to this endpoint.'),
    orderedOnExhausted: field('When a message fails for good (ordered delivery)', onExhausted,
      'What an ordered lane does once its first message has used up its retries.'),
    consent: field('Consent', consent,
      'Whether the endpoint must agree to receive webhooks (an OPTIONS handshake) before anything is sent to it.'),
  };
  const eventTypes = h('fieldset', { class: 'field' },
    h('legend', null, 'Event types'),
    names.length
      ? h('p', { class: 'hint' }, 'Leave all unchecked to receive every event type.')
      : h('p', { class: 'hint' }, 'No event types are registered, so this endpoint receives every event.'),
    h('div', { class: 'checks' }, boxes));
  const summary = h('div', { class: 'form-errors' });

  const save = h('button', { type: 'submit', class: 'button primary' }, editing ? 'Save changes' : 'Add endpoint');
  const cancel = h('a', { class: 'button secondary', href: link(editing ? ctx.links.endpoint(endpointId) : ctx.links.endpoints()) }, 'Cancel');
  const form = h('form', { class: 'card form', novalidate: true, 'aria-label': editing ? 'Edit endpoint' : 'Add endpoint' },
    summary, fields.url, fields.description, eventTypes, fields.channels, fields.rateLimit,
    h('div', { class: 'field' }, h('label', { class: 'check', for: 'ep-ordered' }, ordered,
      ' Ordered delivery (one message at a time per ordering key, in the order they were sent)')),
    fields.orderedOnExhausted, fields.consent,
    h('div', { class: 'field' }, h('label', { class: 'check', for: 'ep-disabled' }, disabled, ' Disabled (keep it, send nothing)')),
    h('div', { class: 'buttons' }, save, cancel));

  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    Object.values(fields).forEach((f) => f.showError(''));
    summary.replaceChildren();
    const checked = boxes.map((b) => b.querySelector('input')).filter((input) => input.checked).map((input) => input.value);
    const channelList = channels.value.split(',').map((c) => c.trim()).filter(Boolean);
    const body = {
      url: url.value.trim(),
      description: description.value.trim(),
      eventTypes: checked.length ? checked : null,
      channels: channelList.length ? channelList : null,
      rateLimit: rateLimit.value ? Number(rateLimit.value) : null,
      disabled: disabled.checked,
      ordered: ordered.checked,
      orderedOnExhausted: onExhausted.value,
      consent: consent.value || null,
    };
    if (!body.url) {
      fields.url.showError('Enter the URL webhooks should be sent to.');
      url.focus();
      return;
    }
    save.disabled = true;
    try {
      const saved = editing
        ? await ctx.api.patch(ctx.paths.endpoint(endpointId), body)
        : await ctx.api.post(ctx.paths.endpoints, stripNulls(body));
      const warnings = (saved.warnings || []).map((w) => w.detail).join(' ');
      announce(`${editing ? 'Endpoint saved.' : 'Endpoint added.'}${warnings ? ` Warning: ${warnings}` : ''}`);
      navigate(ctx.links.endpoint(saved.id));
    } catch (error) {
      save.disabled = false;
      showFieldErrors(error, fields, summary);
    }
  });
  return h('div', null, pageTitle(editing ? 'Edit endpoint' : 'Add an endpoint'), form);
}

function stripNulls(body) {
  return Object.fromEntries(Object.entries(body).filter(([, value]) => value !== null));
}

/** Puts a 422's messages next to their fields, and the API's whole answer in the summary. */
function showFieldErrors(error, fields, summary) {
  for (const item of error instanceof ApiError ? error.fieldErrors : []) {
    const name = Object.keys(fields).find((key) => item.field === key || item.field.startsWith(`${key}.`));
    if (name) fields[name].showError(item.message);
  }
  summary.replaceChildren(errorBox(error, 'The endpoint was not saved'));
  const first = summary.closest('form').querySelector('[aria-invalid="true"]');
  if (first) first.focus();
}

/** The event type a test event for this endpoint uses: one it is subscribed to. */
function testEventType(endpoint) {
  if (endpoint.eventTypes && endpoint.eventTypes.length) return endpoint.eventTypes[0];
  return 'herald.test';
}

/** One endpoint: details, counts, secret, actions, and its attempts (filterable). */
export async function endpointDetail(ctx, endpointId, query) {
  const [endpoint, stats] = await Promise.all([
    ctx.api.get(ctx.paths.endpoint(endpointId)),
    ctx.api.optional(ctx.paths.stats(endpointId)).catch(() => null),
  ]);
  const id = endpoint.id;
  const testType = testEventType(endpoint);

  const actions = h('div', { class: 'buttons' },
    h('a', { class: 'button secondary', href: link(ctx.links.editEndpoint(id)) }, 'Edit'),
    actionButton(endpoint.disabled ? 'Enable' : 'Disable', async () => {
      await ctx.api.patch(ctx.paths.endpoint(id), { disabled: !endpoint.disabled });
      announce(endpoint.disabled ? 'Endpoint enabled.' : 'Endpoint disabled.');
      ctx.refresh();
    }, { data: { action: 'toggle' } }),
    actionButton('Send test event', async () => {
      const message = await sendTestEvent(ctx.api, ctx.appId, testType, ctx.from);
      announce('Test event sent.');
      navigate(ctx.links.message(message.id));
    }, { kind: 'primary', data: { action: 'test-event' } }),
    actionButton('Delete', async () => {
      await ctx.api.delete(ctx.paths.endpoint(id));
      announce('Endpoint deleted.');
      navigate(ctx.links.endpoints());
    }, { kind: 'danger', confirm: `Delete the endpoint ${endpoint.url}? It will receive nothing more.` }));

  const testNote = h('p', { class: 'hint' }, `“Send test event” sends a small message of type `,
    h('code', null, testType), ' to this application: every endpoint subscribed to that type receives it.');

  const info = section('Details', details([
    ['URL', h('span', { class: 'mono break' }, endpoint.url)],
    ['Endpoint id', h('span', { class: 'mono' }, endpoint.id)],
    ['UID', endpoint.uid ? h('span', { class: 'mono' }, endpoint.uid) : null],
    ['Status', enabledBadge(endpoint)],
    ['Event types', eventTypesText(endpoint)],
    ['Channels', endpoint.channels && endpoint.channels.length ? endpoint.channels.join(', ') : 'All channels'],
    ['Rate limit', endpoint.rateLimit ? `${endpoint.rateLimit} per second` : 'None'],
    ['Bearer token', endpoint.hasBearerToken ? 'Sent with every delivery' : 'None'],
    ['Consent', consentText(endpoint)],
    ['Payload version', endpoint.payloadVersion ? `Pinned to version ${endpoint.payloadVersion}` : 'As published'],
    ['Ordering', endpoint.ordered
      ? `One at a time per ordering key; a message that fails for good ${endpoint.orderedOnExhausted === 'pause' ? 'pauses its lane until resent' : 'is skipped'}`
      : 'None (concurrent)'],
    ['Created', time(endpoint.createdAt)],
    ['Updated', time(endpoint.updatedAt)],
  ]));

  const counts = stats ? section('Deliveries in the last 28 days', h('div', { class: 'tiles' },
    tile('Succeeded', stats.success, 'success'), tile('Failed', stats.fail, 'fail'),
    tile('Pending', stats.pending, 'pending'), tile('Sending', stats.sending, 'sending'))) : null;

  return h('div', null,
    pageTitle(label(endpoint), enabledBadge(endpoint)),
    actions, testNote,
    h('div', { class: 'grid-2' }, info, h('div', null, counts, secretSection(ctx, id))),
    lanesSection(ctx, stats),
    versionSection(ctx, endpoint),
    testAllSection(ctx, endpoint),
    recoverSection(ctx, id),
    await attemptsSection(ctx, id, query));
}

/** Whether deliveries wait for the endpoint's consent (CloudEvents handshake), and its answer. */
function consentText(endpoint) {
  switch (endpoint.consentStatus) {
    case 'pending': return 'Awaiting consent: deliveries wait until the endpoint grants it';
    case 'granted': return endpoint.consentRate ? `Granted, at most ${endpoint.consentRate} per minute` : 'Granted';
    case 'refused': return `Refused${endpoint.consentReason ? `: ${endpoint.consentReason}` : ''}`;
    default: return 'Not required';
  }
}

/** An ordered endpoint's lanes that have work: the head, since when, and what waits behind it. */
function lanesSection(ctx, stats) {
  const lanes = stats && stats.orderedLanes;
  if (!lanes) return null;
  if (lanes.length === 0) {
    return section('Ordered lanes', h('p', { class: 'hint' }, 'Every lane is caught up.'));
  }
  const state = (lane) => (lane.held ? 'held: resend or recover it' : lane.headStatus === 3 ? 'sending' : 'pending');
  return section('Ordered lanes', table('Ordered lanes', [
    { label: 'Ordering key', cell: (lane) => (lane.orderingKey === null ? '(none)' : h('span', { class: 'mono' }, lane.orderingKey)) },
    { label: 'Head message', cell: (lane) => h('a', { class: 'mono', href: link(ctx.links.message(lane.headMsgId)) }, lane.headMsgId) },
    { label: 'Since', cell: (lane) => time(lane.headSince) },
    { label: 'State', cell: state },
    { label: 'Waiting behind', cell: (lane) => String(lane.waiting) },
  ], lanes, (lane) => ({ 'data-held': String(lane.held) })));
}

function tile(labelText, value, kind) {
  return h('div', { class: `tile ${kind}` }, h('span', { class: 'tile-value' }, String(value)), h('span', { class: 'tile-label' }, labelText));
}

/** The signing secret: hidden until asked for, copyable, rotatable. */
function secretSection(ctx, endpointId) {
  const value = h('code', { id: 'secret-value', class: 'secret mono' }, 'whsec_••••••••••••••••');
  let secret = null;
  const load = async () => {
    if (!secret) secret = (await ctx.api.get(ctx.paths.secret(endpointId))).key;
    return secret;
  };
  const show = h('button', { type: 'button', class: 'button secondary', 'aria-pressed': 'false', 'aria-controls': 'secret-value', id: 'secret-toggle' }, 'Show');
  const status = h('span', { class: 'action-status', role: 'status' });
  show.addEventListener('click', async () => {
    status.replaceChildren();
    try {
      const visible = show.getAttribute('aria-pressed') === 'true';
      value.textContent = visible ? 'whsec_••••••••••••••••' : await load();
      show.setAttribute('aria-pressed', String(!visible));
      show.textContent = visible ? 'Show' : 'Hide';
    } catch (error) {
      status.replaceChildren(errorBox(error, 'The secret could not be read'));
    }
  });
  const copy = actionButton('Copy', async () => copyText(await load()), { done: 'Secret copied.' });
  const rotate = actionButton('Rotate', async () => {
    const rotated = await ctx.api.post(ctx.paths.rotate(endpointId), {});
    secret = rotated && rotated.key ? rotated.key : null;
    secret = secret || (await ctx.api.get(ctx.paths.secret(endpointId))).key;
    value.textContent = secret;
    show.setAttribute('aria-pressed', 'true');
    show.textContent = 'Hide';
  }, {
    confirm: 'Rotate the signing secret? The current secret keeps signing alongside the new one for 24 hours.',
    done: 'New secret created; the previous one keeps signing for 24 hours.',
  });
  return section('Signing secret',
    h('p', { class: 'hint' }, 'Verify each webhook’s ', h('code', null, 'webhook-signature'),
      ' header with this secret (Standard Webhooks).'),
    h('div', { class: 'secret-row' }, value),
    h('div', { class: 'buttons' }, show, copy, rotate), status);
}

/**
 * The payload version the endpoint receives: when pinned, a preview of the next version of its
 * most recent message, and the move to it.
 */
function versionSection(ctx, endpoint) {
  if (!endpoint.payloadVersion) return null;
  const next = String(Number(endpoint.payloadVersion) + 1);
  const base = ctx.paths.endpoint(endpoint.id);
  const shown = h('pre', { class: 'payload mono', id: 'version-preview', hidden: true });
  const preview = actionButton(`Preview version ${next}`, async () => {
    const answer = await ctx.api.get(`${base}/payload-preview`, { version: next });
    shown.textContent = answer.version === next
      ? JSON.stringify(answer.payload, null, 2)
      : `The most recent message was published at version ${answer.publishedVersion}: nothing newer to move to.`;
    shown.hidden = false;
  }, { data: { action: 'preview-version' } });
  const upgrade = actionButton(`Upgrade to version ${next}`, async () => {
    await ctx.api.patch(base, { payloadVersion: next });
    announce(`Now receiving version ${next}.`);
    ctx.refresh();
  }, { kind: 'primary', confirm: `Receive version ${next} of every payload from now on?`, data: { action: 'upgrade-version' } });
  return section('Payload version',
    h('p', { class: 'hint' }, `Messages reach this endpoint converted to version ${endpoint.payloadVersion}. `,
      'Preview how the most recent one looks at the next version, and move when your receiver reads it.'),
    h('div', { class: 'buttons' }, preview, upgrade), shown);
}

/** Sends an example of every event type the endpoint subscribes to, to it alone. */
function testAllSection(ctx, endpoint) {
  const run = actionButton('Test every event type', async () => {
    let names = endpoint.eventTypes;
    if (!names || !names.length) {
      const page = await ctx.api.get('/api/v1/event-type', { limit: 250 });
      names = page.data.map((eventType) => eventType.name);
    }
    if (!names.length) throw new Error('No event type is registered yet.');
    for (const eventType of names) {
      await ctx.api.post(`${ctx.paths.endpoint(endpoint.id)}/send-example`, { eventType });
    }
    announce(`${names.length} example events sent; their attempts appear below.`);
    ctx.refresh();
  }, { data: { action: 'test-all' } });
  return section('Test the receiver',
    h('p', { class: 'hint' }, 'Sends one example of every event type this endpoint receives (from each type’s schema), to this endpoint only.'),
    run);
}

/** Re-send every message whose delivery here failed since a time. */
function recoverSection(ctx, endpointId) {
  const since = h('input', { type: 'datetime-local', id: 'recover-since', required: true,
    value: isoToLocal(new Date(Date.now() - 86_400_000).toISOString()) });
  const run = actionButton('Recover failed messages', async () => {
    if (!since.value) throw new Error('Choose the time to recover from.');
    await ctx.api.post(ctx.paths.recover(endpointId), { since: localToIso(since.value) });
  }, { done: 'Recovery started: failed messages since then are being sent again.', data: { action: 'recover' } });
  return section('Recover failures',
    h('p', { class: 'hint' }, 'Sends every message whose delivery to this endpoint failed since the chosen time again, once.'),
    h('div', { class: 'inline-form' }, field('Failed since', since), run));
}

async function attemptsSection(ctx, endpointId, query) {
  const here = ctx.links.endpoint(endpointId);
  const list = await ctx.api.get(ctx.paths.endpointAttempts(endpointId), {
    limit: 25, with_msg: true, iterator: query.iterator, status: query.status,
    event_types: query.event_type, after: query.after, before: query.before,
  });
  const filters = await attemptFilters(ctx, query, (next) => navigate(here, next));
  return section('Attempts', filters,
    list.data.length === 0
      ? emptyState(Object.keys(query).length ? 'No attempts match these filters.' : 'No attempts yet. Send a test event to see one.')
      : attemptsTable(ctx, list.data, { showMessage: true }),
    pagerFor(list, query, here));
}

/** A pager that keeps the filters. */
export function pagerFor(list, query, path) {
  return pager(list, query.iterator || '', (iterator) => navigate(path, { ...query, iterator }));
}
