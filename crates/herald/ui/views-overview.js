// The dashboard's overview, from the cheapest public sources:
// - totals, endpoint health and the delivery queue from the gauges of /metrics;
// - each application's last 24 hours and endpoint counts from its stats route (one request per
//   application);
// - endpoint details only for the applications whose stats show failing or disabled endpoints,
//   to list those endpoints first;
// - charts of the last 24 hours from the attempt lists of a few endpoints (a bounded number of
//   requests), and live rates from /metrics while the page is open.
// Panels whose source a server does not offer (a 404, a missing metric) are left out.

import { appPaths, mapLimited, serverUrl } from './api.js';
import { bucketize, timeChart } from './charts.js';
import { emptyState, h, httpStatus, pageTitle, section, table, time } from './dom.js';
import { every, link } from './router.js';
import { endpointGauges, has, parseMetrics, queueState, ratesBetween } from './prometheus.js';
import { appLinks } from './views-apps.js';

const HOURS = 24;
/** Applications read (pages of 250), each with one stats request; the page says when there are more. */
const MAX_APPS = 1000;
/** Applications whose endpoints are listed under "Needs attention", most troubled first. */
const ATTENTION_APPS = 20;
/** Rows of the applications' health table. */
const HEALTH_ROWS = 10;
/** The charts: the attempts of at most this many endpoints, one page each. */
const CHART_ENDPOINTS = 10;
const ATTEMPTS_PER_ENDPOINT = 250;
/** Live rates and the queue: a scrape every 5 seconds, the last 5 minutes kept while the tab is open. */
const SCRAPE_MS = 5000;
const LIVE_POINTS = 60;
const scrapes = [];

export async function overview(api, signal) {
  const to = Date.now();
  const from = to - HOURS * 3_600_000;
  const window = { since: new Date(from).toISOString(), until: new Date(to).toISOString() };
  const [apps, metrics] = await Promise.all([listApps(api), scrapeMetrics().catch(() => null)]);
  const looked = await mapLimited(apps.data, 6, async (app) => ({
    app, stats: await api.optional(`${appPaths(app.id).app}/stats`, window).catch(() => null),
  }));
  const withStats = looked.filter((item) => item.stats);
  const endpointLists = new Map();
  const endpointsOf = async (app) => {
    if (!endpointLists.has(app.id)) {
      endpointLists.set(app.id, api.get(appPaths(app.id).endpoints, { limit: 250 }).then((list) => list.data));
    }
    return endpointLists.get(app.id);
  };
  const [attention, sample] = await Promise.all([
    needingAttention(api, withStats, endpointsOf),
    chartSample(api, withStats.length ? withStats : looked, endpointsOf, from),
  ]);

  return h('div', null,
    pageTitle('Overview'),
    totals(apps, withStats, metrics),
    queueSection(metrics),
    withStats.length ? attentionSection(attention, withStats) : null,
    withStats.length ? healthSection(withStats) : null,
    section(`Deliveries in the last ${HOURS} hours`,
      h('p', { class: 'hint', id: 'chart-scope' }, chartScope(sample, withStats)),
      h('div', { class: 'charts' }, historyCharts(sample.attempts, from, to))),
    liveSection(signal, metrics));
}

/** Every application (pages of 250), up to MAX_APPS. */
async function listApps(api) {
  const data = [];
  let iterator;
  for (;;) {
    const page = await api.get('/api/v1/app', { limit: 250, iterator });
    data.push(...page.data);
    if (page.done || !page.iterator || data.length >= MAX_APPS) return { data: data.slice(0, MAX_APPS), done: page.done && data.length <= MAX_APPS };
    iterator = page.iterator;
  }
}

async function scrapeMetrics() {
  const response = await fetch(serverUrl('/metrics'), { cache: 'no-store', credentials: 'omit' });
  if (!response.ok) throw new Error(`metrics: ${response.status}`);
  const samples = parseMetrics(await response.text());
  scrapes.push({ at: Date.now(), samples });
  if (scrapes.length > LIVE_POINTS + 1) scrapes.shift();
  return samples;
}

const sumOf = (items, pick) => items.reduce((total, item) => total + pick(item.stats), 0);

function totals(apps, withStats, metrics) {
  const gauges = metrics ? endpointGauges(metrics) : { disabled: null, failing: null, circuitOpen: null };
  const haveStats = withStats.length > 0;
  const fromStats = (pick) => (haveStats ? sumOf(withStats, pick) : null);
  const failing = gauges.failing ?? fromStats((s) => s.endpoints.failing);
  const disabled = gauges.disabled ?? fromStats((s) => s.endpoints.disabled);
  const succeeded = fromStats((s) => s.attempts.success);
  const failed = fromStats((s) => s.attempts.fail);
  const rate = haveStats && succeeded + failed > 0 ? `${Math.round((100 * succeeded) / (succeeded + failed))}%` : '—';
  const health = [
    tile('Applications', `${apps.data.length}${apps.done ? '' : '+'}`, '', 'applications'),
    haveStats ? tile('Endpoints', String(fromStats((s) => s.endpoints.total)), '', 'endpoints') : null,
    failing === null ? null : tile('Failing endpoints', String(failing), failing ? 'fail' : '', 'failing'),
    disabled === null ? null : tile('Disabled endpoints', String(disabled), disabled ? 'fail' : '', 'disabled'),
    gauges.circuitOpen === null ? null : tile('Circuit open', String(gauges.circuitOpen), gauges.circuitOpen ? 'fail' : '', 'circuit-open'),
  ];
  const activity = [
    haveStats ? tile(`Messages (${HOURS} h)`, String(fromStats((s) => s.messages)), '', 'messages') : null,
    haveStats ? tile(`Attempts (${HOURS} h)`, String(succeeded + failed), '', 'attempts') : null,
    haveStats ? tile(`Success rate (${HOURS} h)`, rate, succeeded + failed === 0 ? '' : failed === 0 ? 'success' : 'fail', 'success-rate') : null,
  ];
  const sources = [
    haveStats ? `Endpoints, messages and attempts: each application’s statistics for the last ${HOURS} hours.` : null,
    gauges.failing !== null ? 'Failing (failed since their last success), disabled and circuit-open endpoints: the gauges of /metrics.' : null,
    apps.done ? null : `Only the first ${MAX_APPS} applications are counted.`,
  ].filter(Boolean);
  return h('div', { id: 'totals' },
    h('div', { class: 'tiles' }, health),
    haveStats ? h('div', { class: 'tiles' }, activity) : null,
    sources.length ? h('p', { class: 'hint' }, sources.join(' ')) : null);
}

function tile(label, value, kind = '', key = '') {
  return h('div', { class: `tile ${kind}`, dataset: key ? { tile: key } : null },
    h('span', { class: 'tile-value' }, value), h('span', { class: 'tile-label' }, label));
}

/** Seconds as "0 s", "2.5 s", "4 min", "1.5 h". */
function age(seconds) {
  if (seconds < 60) return `${seconds < 10 ? seconds.toFixed(1).replace(/\.0$/, '') : Math.round(seconds)} s`;
  if (seconds < 3600) return `${Math.round(seconds / 60)} min`;
  return `${(seconds / 3600).toFixed(1).replace(/\.0$/, '')} h`;
}

/** The delivery queue from /metrics, refreshed by the live scrapes; hidden without the gauges. */
let queueBody = null;
function queueSection(metrics) {
  const queue = metrics ? queueState(metrics) : null;
  if (!queue) {
    queueBody = null;
    return null;
  }
  queueBody = h('div', { class: 'tiles', id: 'queue' });
  drawQueue(queue);
  return section('Delivery queue', h('p', { class: 'hint' },
    'From the gauges of /metrics, refreshed every 5 seconds while this page is open (each count stops at 100,000).'), queueBody);
}

function drawQueue(queue) {
  if (!queueBody || !queue) return;
  queueBody.replaceChildren(
    tile('Due now', String(queue.due), queue.due ? 'pending' : '', 'due'),
    tile('Scheduled', String(queue.scheduled), queue.scheduled ? 'pending' : '', 'scheduled'),
    tile('Being attempted', String(queue.leased), queue.leased ? 'pending' : '', 'leased'),
    queue.oldestDueSeconds === null ? null : tile('Oldest due for', age(queue.oldestDueSeconds), queue.oldestDueSeconds >= 60 ? 'fail' : '', 'oldest-due'));
}

/**
 * The endpoints of the applications whose stats show failing or disabled ones (most such
 * endpoints first, up to ATTENTION_APPS): disabled ones, and enabled ones whose latest attempt
 * failed. Latest attempts are read until the application's failing count is found.
 */
async function needingAttention(api, withStats, endpointsOf) {
  const troubled = (s) => s.endpoints.failing + s.endpoints.disabled;
  const apps = withStats.filter((i) => troubled(i.stats) > 0)
    .sort((a, b) => troubled(b.stats) - troubled(a.stats))
    .slice(0, ATTENTION_APPS);
  const perApp = await mapLimited(apps, 3, async ({ app, stats }) => {
    const endpoints = await endpointsOf(app).catch(() => []);
    const latest = (ep) => api.get(appPaths(app.id).endpointAttempts(ep.id), { limit: 1 })
      .then((list) => list.data[0] || null).catch(() => null);
    const found = [];
    for (const ep of endpoints.filter((e) => e.disabled)) found.push({ app, ep, state: 'disabled', latest: null });
    await mapLimited(found, 4, async (item) => { item.latest = await latest(item.ep); });
    let failing = 0;
    const enabled = endpoints.filter((e) => !e.disabled);
    for (let i = 0; i < enabled.length && failing < stats.endpoints.failing; i += 4) {
      const batch = enabled.slice(i, i + 4);
      const attempts = await Promise.all(batch.map(latest));
      batch.forEach((ep, j) => {
        if (attempts[j] && attempts[j].statusText === 'fail') {
          failing += 1;
          found.push({ app, ep, state: 'failing', latest: attempts[j] });
        }
      });
    }
    return found;
  });
  const rank = (i) => (i.state === 'disabled' ? 0 : 1);
  return { items: perApp.flat().sort((a, b) => rank(a) - rank(b)), apps: apps.length, more: withStats.filter((i) => troubled(i.stats) > 0).length > apps.length };
}

function attentionSection(attention, withStats) {
  const failures = withStats.filter((i) => i.stats.attempts.fail > 0).length;
  const body = attention.items.length === 0
    ? emptyState(sumOf(withStats, (s) => s.endpoints.total)
      ? 'No endpoint is disabled or failing.'
      : 'No endpoints yet.')
    : table('Endpoints that need attention', [
      { label: 'Endpoint', cell: (i) => h('a', { href: link(appLinks(i.app.id).endpoint(i.ep.id)), class: 'mono break' }, i.ep.url) },
      { label: 'Application', cell: (i) => h('a', { href: link(appLinks(i.app.id).app()) }, i.app.name) },
      { label: 'State', cell: (i) => h('span', { class: 'badge status-fail' }, i.state === 'disabled' ? 'Disabled' : 'Failing') },
      { label: 'Latest attempt', cell: (i) => (i.latest ? h('span', null, httpStatus(i.latest.responseStatusCode), ' ', time(i.latest.timestamp)) : '—') },
    ], attention.items, (i) => ({ dataset: { endpointState: i.state } }));
  const notes = [
    attention.more ? `The endpoints of the ${attention.apps} applications with the most failing and disabled endpoints are listed.` : null,
    failures ? `${failures} application${failures === 1 ? ' has' : 's have'} failed attempts in the last ${HOURS} hours: see below.` : null,
  ].filter(Boolean);
  return section('Needs attention', body, notes.length ? h('p', { class: 'hint' }, notes.join(' ')) : null);
}

/** Applications by health: failing and disabled endpoints, then failed attempts, then activity. */
function healthSection(withStats) {
  const s = (i) => i.stats;
  const sorted = [...withStats].sort((a, b) => (s(b).endpoints.failing + s(b).endpoints.disabled) - (s(a).endpoints.failing + s(a).endpoints.disabled)
    || s(b).attempts.fail - s(a).attempts.fail
    || (s(b).attempts.success + s(b).attempts.fail) - (s(a).attempts.success + s(a).attempts.fail));
  const rows = sorted.slice(0, HEALTH_ROWS);
  const count = (value, bad) => (value && bad ? h('span', { class: 'badge status-fail' }, String(value)) : String(value));
  return section(`Applications, last ${HOURS} hours`,
    table('Applications by health', [
      { label: 'Application', cell: (i) => h('a', { href: link(appLinks(i.app.id).app()) }, i.app.name) },
      { label: 'Messages', class: 'num', cell: (i) => String(s(i).messages) },
      { label: 'Succeeded', class: 'num', cell: (i) => String(s(i).attempts.success) },
      { label: 'Failed', class: 'num', cell: (i) => count(s(i).attempts.fail, true) },
      { label: 'Success rate', class: 'num', cell: (i) => (s(i).successRate === null ? '—' : `${Math.round(100 * s(i).successRate)}%`) },
      { label: 'Endpoints', class: 'num', cell: (i) => String(s(i).endpoints.total) },
      { label: 'Failing', class: 'num', cell: (i) => count(s(i).endpoints.failing, true) },
      { label: 'Disabled', class: 'num', cell: (i) => count(s(i).endpoints.disabled, true) },
    ], rows, (i) => ({ dataset: { appHealth: i.app.uid || i.app.id } })),
    sorted.length > rows.length
      ? h('p', { class: 'hint' }, `The ${rows.length} applications needing attention most, of ${sorted.length}; `, h('a', { href: link('/apps') }, 'all applications'), '.')
      : null);
}

/**
 * The endpoints the charts are drawn from: those of the busiest applications of the window
 * (by attempts, per their stats), at most CHART_ENDPOINTS, one page of attempts each. At most
 * CHART_ENDPOINTS endpoint lists and CHART_ENDPOINTS attempt lists are read.
 */
async function chartSample(api, looked, endpointsOf, from) {
  const busy = (i) => (i.stats ? i.stats.attempts.success + i.stats.attempts.fail : 1);
  const candidates = looked.filter((i) => busy(i) > 0).sort((a, b) => busy(b) - busy(a));
  const chosen = [];
  const apps = [];
  for (const { app } of candidates) {
    if (chosen.length >= CHART_ENDPOINTS) break;
    const endpoints = await endpointsOf(app).catch(() => []);
    if (endpoints.length === 0) continue;
    apps.push(app);
    for (const ep of endpoints.slice(0, CHART_ENDPOINTS - chosen.length)) chosen.push({ app, ep });
  }
  const lists = await mapLimited(chosen, 4, ({ app, ep }) => api.get(appPaths(app.id).endpointAttempts(ep.id),
    { limit: ATTEMPTS_PER_ENDPOINT, after: new Date(from).toISOString() }).then((list) => list.data).catch(() => []));
  return { endpoints: chosen.length, apps, attempts: lists.flat(), candidates: candidates.length };
}

function chartScope(sample, withStats) {
  if (sample.endpoints === 0) return 'No attempts in this period.';
  const names = sample.apps.map((app) => app.name).join(', ');
  const drawn = `Drawn from the attempts of ${sample.endpoints} endpoint${sample.endpoints === 1 ? '' : 's'} `
    + `(the latest ${ATTEMPTS_PER_ENDPOINT} at most of each) in the busiest application${sample.apps.length === 1 ? '' : 's'}: ${names}.`;
  if (!withStats.length) return drawn;
  const all = sumOf(withStats, (s) => s.attempts.success + s.attempts.fail);
  return `${drawn} They show ${sample.attempts.length} of the ${all} attempts made in the last ${HOURS} hours; the counts above include every application.`;
}

/** Milliseconds for an axis or summary: one decimal below 10. */
function ms(value) {
  return value < 10 ? value.toFixed(1).replace(/\.0$/, '') : String(Math.round(value));
}

/** Attempts per hour, success rate and latency, from attempt records. */
function historyCharts(attempts, from, to) {
  const buckets = bucketize(attempts, { from, to, count: HOURS, at: (a) => Date.parse(a.timestamp) });
  const counts = buckets.map((b) => ({
    t: b.t,
    values: [b.items.filter((a) => a.statusText === 'success').length, b.items.filter((a) => a.statusText !== 'success').length],
  }));
  const rate = buckets.map((b) => ({
    t: b.t,
    values: [b.items.length ? (100 * b.items.filter((a) => a.statusText === 'success').length) / b.items.length : null],
  }));
  const latency = buckets.map((b) => {
    const times = b.items.map((a) => a.responseDurationMs).sort((x, y) => x - y);
    if (!times.length) return { t: b.t, values: [null, null] };
    const mean = times.reduce((s, v) => s + v, 0) / times.length;
    return { t: b.t, values: [mean, times[Math.min(times.length - 1, Math.floor(times.length * 0.95))]] };
  });
  return [
    timeChart({ title: 'Attempts per hour', kind: 'bars', buckets: counts,
      series: [{ name: 'Succeeded', class: 's-success' }, { name: 'Failed', class: 's-fail' }], format: (v) => String(Math.round(v)) }),
    timeChart({ title: 'Success rate (%)', buckets: rate, max: 100,
      series: [{ name: 'Success rate', class: 's-success' }], format: (v) => `${Math.round(v)}%` }),
    timeChart({ title: 'Attempt latency (ms)', buckets: latency,
      series: [{ name: 'Mean', class: 's-primary' }, { name: '95th percentile', class: 's-secondary' }], format: ms }),
  ];
}

/**
 * Rates from /metrics, sampled while the overview is open (each scrape also refreshes the
 * queue); left out if the server has no delivery metrics, removed if a scrape fails.
 */
function liveSection(signal, metrics) {
  if (!metrics) return null;
  const body = h('div', { class: 'charts' }, h('p', { class: 'muted' }, 'Measuring…'));
  const panel = has(metrics, 'herald_delivery_attempts_total')
    ? section('Live (from /metrics)', h('p', { class: 'hint' },
      'Rates between scrapes of the Prometheus endpoint, every 5 seconds while this page is open.'), body)
    : null;
  const scrape = async () => {
    let samples;
    try {
      samples = await scrapeMetrics();
    } catch {
      if (panel) panel.remove();
      return false;
    }
    drawQueue(queueState(samples));
    if (panel) drawLive(body);
    return true;
  };
  every(SCRAPE_MS, scrape, signal, 10_000);
  if (panel) drawLive(body);
  return panel;
}

function drawLive(body) {
  const points = [];
  for (let i = 1; i < scrapes.length; i += 1) {
    const seconds = (scrapes[i].at - scrapes[i - 1].at) / 1000;
    points.push({ t: new Date(scrapes[i].at), rates: ratesBetween(scrapes[i - 1].samples, scrapes[i].samples, seconds) });
  }
  if (points.length === 0) return;
  const chart = (title, pick, series, format, max) => timeChart({
    title, buckets: points.map((p) => ({ t: p.t, values: pick(p.rates) })), series, format, max,
    empty: 'No deliveries since this page opened',
  });
  body.replaceChildren(
    chart('Per second', (r) => [r.accepted, r.attempts],
      [{ name: 'Messages accepted', class: 's-primary' }, { name: 'Attempts', class: 's-secondary' }], (v) => v.toFixed(1).replace(/\.0$/, '')),
    chart('Success rate (%)', (r) => [r.successRate], [{ name: 'Success rate', class: 's-success' }], (v) => `${Math.round(v)}%`, 100),
    chart('Mean attempt latency (ms)', (r) => [r.latencyMs], [{ name: 'Mean latency', class: 's-primary' }], ms));
}
