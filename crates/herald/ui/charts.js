// Charts drawn as inline SVG from numbers the API gave: no library, no canvas. Each chart has a
// text summary for screen readers and its numbers in a table under "Show data".

import { h } from './dom.js';

const WIDTH = 420;
const HEIGHT = 220;
const MARGIN = { left: 46, right: 10, top: 12, bottom: 26 };

/** A round upper bound for an axis: 1, 2 or 5 times a power of ten. */
function niceMax(value) {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 5, 10]) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}

const clock = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });

/**
 * A chart over time buckets.
 * - `buckets`: [{t: Date, values: [number|null, ...]}], one value per series
 * - `series`: [{name, class}] — the class colours it (see herald.css)
 * - `kind`: 'bars' (stacked) or 'line'
 * - `format`: number => string for the axis and summary
 * - `max`: fixed upper bound (e.g. 100 for percentages)
 * - `empty`: what the chart says when every value is zero or missing
 */
export function timeChart({ title, buckets, series, kind = 'line', format = String, max, empty = 'No attempts in this period' }) {
  const uid = `c-${Math.random().toString(36).slice(2, 9)}`;
  const plotWidth = WIDTH - MARGIN.left - MARGIN.right;
  const plotHeight = HEIGHT - MARGIN.top - MARGIN.bottom;
  const totals = buckets.map((b) => (kind === 'bars'
    ? b.values.reduce((sum, v) => sum + (v || 0), 0)
    : Math.max(0, ...b.values.filter((v) => v !== null))));
  const top = max || niceMax(Math.max(0, ...totals));
  const step = plotWidth / Math.max(1, buckets.length);
  const x = (index) => MARGIN.left + index * step;
  const y = (value) => MARGIN.top + plotHeight - (value / top) * plotHeight;

  const grid = [0, 0.5, 1].map((fraction) => {
    const value = top * fraction;
    return h('g', { class: 'grid' },
      h('line', { x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(value), y2: y(value) }),
      h('text', { x: MARGIN.left - 6, y: y(value) + 4, 'text-anchor': 'end' }, format(value)));
  });
  const labelled = buckets.length > 1 ? [0, Math.floor((buckets.length - 1) / 2), buckets.length - 1] : [0];
  // The first label starts at its bucket and the last ends at its bucket, so neither is cut off.
  const anchor = (index) => (index === 0 ? 'start' : index === buckets.length - 1 ? 'end' : 'middle');
  const labelX = (index) => (index === 0 ? x(0) : index === buckets.length - 1 ? x(index) + step : x(index) + step / 2);
  const xLabels = buckets.length === 0 ? [] : labelled.map((index) => h('text', {
    class: 'axis', x: labelX(index), y: HEIGHT - 6, 'text-anchor': buckets.length > 1 ? anchor(index) : 'middle',
  }, clock.format(buckets[index].t)));

  const marks = kind === 'bars' ? bars(buckets, series, x, y, step) : lines(buckets, series, x, y, step);
  const hasData = buckets.some((b) => b.values.some((v) => v !== null && v !== 0));
  const summary = describe(title, buckets, series, format, hasData);

  const svg = h('svg', {
    viewBox: `0 0 ${WIDTH} ${HEIGHT}`, role: 'img', class: 'chart',
    'aria-labelledby': `${uid}-t ${uid}-d`,
  },
  h('title', { id: `${uid}-t` }, title),
  h('desc', { id: `${uid}-d` }, summary),
  grid, marks, xLabels,
  hasData ? null : h('text', { class: 'no-data', x: WIDTH / 2, y: HEIGHT / 2, 'text-anchor': 'middle' },
    empty));

  return h('figure', { class: 'chart-figure' },
    h('figcaption', null, title),
    svg,
    series.length > 1 ? h('ul', { class: 'legend' }, series.map((s) => h('li', null,
      h('span', { class: `swatch ${s.class}`, 'aria-hidden': 'true' }), s.name))) : null,
    h('details', { class: 'chart-data' }, h('summary', null, 'Show data'), dataTable(title, buckets, series, format)));
}

function bars(buckets, series, x, y, step) {
  const width = Math.max(1, step * 0.8);
  return buckets.map((bucket, index) => {
    let base = 0;
    return h('g', null, bucket.values.map((value, s) => {
      if (!value) return null;
      const top = y(base + value);
      const bottom = y(base);
      base += value;
      return h('rect', { class: series[s].class, x: x(index) + step * 0.1, y: top, width, height: Math.max(0.5, bottom - top) });
    }));
  });
}

function lines(buckets, series, x, y, step) {
  return series.map((s, sIndex) => {
    let d = '';
    let pen = false;
    const dots = [];
    buckets.forEach((bucket, index) => {
      const value = bucket.values[sIndex];
      if (value === null || value === undefined) {
        pen = false;
        return;
      }
      const px = (x(index) + step / 2).toFixed(1);
      const py = y(value).toFixed(1);
      d += `${pen ? 'L' : 'M'}${px},${py} `;
      pen = true;
      dots.push(h('circle', { cx: px, cy: py, r: 2.5 }));
    });
    return h('g', { class: `line ${s.class}` }, d ? h('path', { d: d.trim() }) : null, dots);
  });
}

function describe(title, buckets, series, format, hasData) {
  if (!hasData) return `${title}: no data in this period.`;
  return series.map((s, index) => {
    const values = buckets.map((b) => b.values[index]).filter((v) => v !== null && v !== undefined);
    if (values.length === 0) return `${s.name}: no data.`;
    return `${s.name}: latest ${format(values[values.length - 1])}, highest ${format(Math.max(...values))}.`;
  }).join(' ');
}

function dataTable(title, buckets, series, format) {
  return h('table', { class: 'compact' },
    h('caption', { class: 'visually-hidden' }, title),
    h('thead', null, h('tr', null, h('th', { scope: 'col' }, 'From'), series.map((s) => h('th', { scope: 'col' }, s.name)))),
    h('tbody', null, buckets.map((bucket) => h('tr', null,
      h('th', { scope: 'row' }, clock.format(bucket.t)),
      bucket.values.map((value) => h('td', null, value === null || value === undefined ? '—' : format(value)))))));
}

/** Splits `[from, to)` into `count` equal buckets and counts items into them by `at(item)`. */
export function bucketize(items, { from, to, count, at }) {
  const width = (to - from) / count;
  const buckets = Array.from({ length: count }, (_, index) => ({ t: new Date(from + index * width), items: [] }));
  for (const item of items) {
    const when = at(item);
    if (when < from || when >= to) continue;
    buckets[Math.min(count - 1, Math.floor((when - from) / width))].items.push(item);
  }
  return buckets;
}
