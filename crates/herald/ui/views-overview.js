// The dashboard's overview: counts, the endpoints that need attention first, charts of the last
// 24 hours built from attempt lists, and live rates from /metrics. Everything comes from the
// public API; panels whose data a server does not offer are left out.

import { appPaths, mapLimited } from './api.js';
import { bucketize, timeChart } from './charts.js';
import { emptyState, h, httpStatus, pageTitle, section, table, time } from './dom.js';
import { every, link } from './router.js';
import { has, parseMetrics, queueGauges, ratesBetween } from './prometheus.js';
import { appLinks } from './views-apps.js';

/** Applications and endpoints looked at (one page each); the page says when there are more. */
const MAX_APPS = 50;
const MAX_ENDPOINTS = 100;
/** Attempts read per endpoint for the charts (one page). */
const ATTEMPTS_PER_ENDPOINT = 250;
const HOURS = 24;
/** Live rates: a scrape every 5 seconds, the last 5 minutes kept while the tab is open. */
const SCRAPE_MS = 5000;
const LIVE_POINTS = 60;
const scrapes = [];

export async function overview(api, signal) {
  const to = Date.now();
  const from = to - HOURS * 3_600_000;
  const apps = await api.get('/api/v1/app', { limit: MAX_APPS });
  const perApp = await mapLimited(apps.data, 4, async (app) => ({
    app, endpoints: (await api.get(appPaths(app.id).endpoints, { limit: 250 })).data,
  }));
  const all = perApp.flatMap(({ app, endpoints }) => endpoints.map((ep) => ({ app, ep })));
  const sample = all.slice(0, MAX_ENDPOINTS);
  const looked = await mapLimited(sample, 6, async ({ app, ep }) => {
    const paths = appPaths(app.id);
    const [stats, attempts] = await Promise.all([
      api.optional(paths.stats(ep.id)).catch(() => null),
      api.get(paths.endpointAttempts(ep.id), { limit: ATTEMPTS_PER_ENDPOINT, after: new Date(from).toISOString() })
        .then((list) => list.data).catch(() => []),
    ]);
    return { app, ep, stats, attempts, failing: attempts.length > 0 && attempts[0].statusText === 'fail' };
  });

  const sum = (key) => looked.reduce((total, item) => total + (item.stats ? item.stats[key] : 0), 0);
  const haveStats = looked.some((item) => item.stats);
  const more = !apps.done || all.length > sample.length;
  const tiles = h('div', { class: 'tiles' },
    tile('Applications', `${apps.data.length}${apps.done ? '' : '+'}`),
    tile('Endpoints', `${all.length}`),
    tile('Failing', String(looked.filter((i) => i.failing).length), 'fail'),
    tile('Disabled', String(all.filter(({ ep }) => ep.disabled).length), 'fail'),
    haveStats ? tile('Waiting to be delivered', String(sum('pending') + sum('sending')), 'pending') : null);

  const attempts = looked.flatMap((item) => item.attempts);
  const charts = historyCharts(attempts, from, to);
  const scope = more
    ? `From the first ${sample.length} endpoints of the first ${apps.data.length} applications, at most ${ATTEMPTS_PER_ENDPOINT} attempts each.`
    : `From every endpoint's attempts (at most ${ATTEMPTS_PER_ENDPOINT} each).`;

  const live = liveSection(signal);
  return h('div', null,
    pageTitle('Overview'),
    tiles,
    h('p', { class: 'hint' }, '“Waiting to be delivered” counts pending and in-flight deliveries of the last 28 days; “Failing” endpoints’ latest attempt failed.'),
    attentionSection(looked, all),
    section(`Deliveries in the last ${HOURS} hours`, h('p', { class: 'hint' }, scope), h('div', { class: 'charts' }, charts)),
    live);
}

/** Milliseconds for an axis or summary: one decimal below 10. */
function ms(value) {
  return value < 10 ? value.toFixed(1).replace(/\.0$/, '') : String(Math.round(value));
}

function tile(label, value, kind = '') {
  return h('div', { class: `tile ${kind}` }, h('span', { class: 'tile-value' }, value), h('span', { class: 'tile-label' }, label));
}

/** Disabled and failing endpoints first, then those with failures, most failures first. */
function attentionSection(looked, all) {
  const seen = new Map(looked.map((item) => [item.ep.id, item]));
  const items = all.map(({ app, ep }) => seen.get(ep.id) || { app, ep, stats: null, attempts: [], failing: false });
  const needs = items.filter((i) => i.ep.disabled || i.failing || (i.stats && i.stats.fail > 0));
  const rank = (i) => (i.ep.disabled ? 0 : i.failing ? 1 : 2);
  needs.sort((a, b) => rank(a) - rank(b) || (b.stats ? b.stats.fail : 0) - (a.stats ? a.stats.fail : 0));
  const body = needs.length === 0
    ? emptyState(all.length ? 'Every endpoint is enabled and its latest attempt succeeded.' : 'No endpoints yet.')
    : table('Endpoints that need attention', [
      { label: 'Endpoint', cell: (i) => h('a', { href: link(appLinks(i.app.id).endpoint(i.ep.id)), class: 'mono break' }, i.ep.url) },
      { label: 'Application', cell: (i) => h('a', { href: link(appLinks(i.app.id).app()) }, i.app.name) },
      { label: 'State', cell: (i) => h('span', { class: 'badge status-fail' }, i.ep.disabled ? 'Disabled' : i.failing ? 'Failing' : 'Some failures') },
      { label: 'Failed (28 days)', class: 'num', cell: (i) => (i.stats ? String(i.stats.fail) : '—') },
      { label: 'Pending', class: 'num', cell: (i) => (i.stats ? String(i.stats.pending) : '—') },
      { label: 'Latest attempt', cell: (i) => (i.attempts[0] ? h('span', null, httpStatus(i.attempts[0].responseStatusCode), ' ', time(i.attempts[0].timestamp)) : '—') },
    ], needs, (i) => ({ dataset: { endpointState: i.ep.disabled ? 'disabled' : i.failing ? 'failing' : 'failures' } }));
  return section('Needs attention', body);
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

/** Rates from /metrics, sampled while the overview is open; hidden if the server has none. */
function liveSection(signal) {
  const body = h('div', { class: 'charts' }, h('p', { class: 'muted' }, 'Measuring…'));
  const extra = h('div');
  const panel = section('Live (from /metrics)', h('p', { class: 'hint' },
    'Rates between scrapes of the Prometheus endpoint, every 5 seconds while this page is open.'), body, extra);
  const scrape = async () => {
    const response = await fetch('/metrics', { cache: 'no-store', credentials: 'omit' });
    if (!response.ok) throw new Error(`metrics: ${response.status}`);
    const samples = parseMetrics(await response.text());
    if (!has(samples, 'herald_delivery_attempts_total')) throw new Error('no delivery metrics');
    scrapes.push({ at: Date.now(), samples });
    if (scrapes.length > LIVE_POINTS + 1) scrapes.shift();
    drawLive(body, extra, samples);
    return true;
  };
  scrape().then(() => every(SCRAPE_MS, scrape, signal, 10_000)).catch(() => panel.remove());
  return panel;
}

function drawLive(body, extra, latest) {
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
  const gauges = queueGauges(latest);
  extra.replaceChildren(gauges.length === 0 ? '' : h('div', { class: 'tiles' },
    gauges.map((g) => tile(`${g.name}${Object.keys(g.labels).length ? ` ${JSON.stringify(g.labels)}` : ''}`, String(g.value), 'pending'))));
}
