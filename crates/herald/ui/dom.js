// Building the page: elements from data (text is always text, never markup), and the small
// pieces every view shares: tables, badges, errors, empty states, buttons that run actions.

import { ApiError } from './api.js';

/**
 * Creates an element. `props`: `class`, `on<Event>` handlers, `dataset`, and attributes
 * (`true` sets an empty attribute, `false`/`null` leaves it out). Children: nodes, strings
 * (as text), arrays, and null (skipped).
 */
export function h(tag, props, ...children) {
  const element = tag === 'svg' || SVG_TAGS.has(tag)
    ? document.createElementNS('http://www.w3.org/2000/svg', tag)
    : document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === 'class') element.setAttribute('class', value);
    else if (key === 'dataset') Object.assign(element.dataset, value);
    else if (key.startsWith('on') && typeof value === 'function') {
      element.addEventListener(key.slice(2).toLowerCase(), value);
    } else if (key === 'value' && 'value' in element) element.value = value;
    else if (key === 'checked' && 'checked' in element) element.checked = Boolean(value);
    else element.setAttribute(key, value === true ? '' : String(value));
  }
  append(element, children);
  return element;
}

const SVG_TAGS = new Set(['g', 'path', 'line', 'rect', 'circle', 'text', 'title', 'desc', 'polyline']);

function append(parent, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(parent, child);
    else parent.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Tells screen-reader users what just happened. */
export function announce(message) {
  const region = document.getElementById('announcer');
  if (!region) return;
  region.textContent = '';
  // A fresh text node is announced even when the message repeats.
  setTimeout(() => {
    region.textContent = message;
  }, 50);
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** A `<time>` in the reader's time zone, the exact instant in its tooltip. */
export function time(iso) {
  if (!iso) return h('span', { class: 'muted' }, '—');
  const date = new Date(iso);
  return h('time', { datetime: iso, title: iso }, dateFormat.format(date));
}

/** A delivery status (`success`, `pending`, `fail`, `sending`) as a labelled badge. */
export function statusBadge(statusText) {
  const labels = { success: 'Succeeded', pending: 'Pending', fail: 'Failed', sending: 'Sending' };
  return h('span', { class: `badge status-${statusText}` }, labels[statusText] || statusText);
}

/** An HTTP status of an attempt; 0 means no response arrived. */
export function httpStatus(code) {
  if (!code) return h('span', { class: 'badge status-fail' }, 'No response');
  const kind = code >= 200 && code < 300 ? 'success' : 'fail';
  return h('span', { class: `badge status-${kind} mono` }, String(code));
}

/** An alert showing what went wrong, with the API's own detail. */
export function errorBox(error, title = 'Something went wrong') {
  const detail = error instanceof ApiError ? error.message : String(error && error.message || error);
  const status = error instanceof ApiError && error.status ? ` (HTTP ${error.status})` : '';
  return h('div', { class: 'alert', role: 'alert' },
    h('strong', null, title + status), h('p', { class: 'detail' }, detail));
}

/** What a list shows when it has nothing, and what to do about it. */
export function emptyState(message, action) {
  return h('div', { class: 'empty' }, h('p', null, message), action || null);
}

/**
 * A table. `columns`: [{label, cell: (row) => node|string, class?}]. Wrapped so a narrow screen
 * scrolls the table, not the page.
 */
export function table(caption, columns, rows, rowProps) {
  return h('div', { class: 'table-wrap' },
    h('table', null,
      h('caption', { class: 'visually-hidden' }, caption),
      h('thead', null, h('tr', null, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
      h('tbody', null, rows.map((row) => h('tr', rowProps ? rowProps(row) : null,
        columns.map((c) => h('td', { class: c.class, 'data-label': c.label }, c.cell(row))))))));
}

/** A heading the router moves focus to after navigating. */
export function pageTitle(text, ...extra) {
  document.title = `${text} · ${document.body.classList.contains('portal') ? 'Webhooks' : 'Herald'}`;
  return h('div', { class: 'page-title' }, h('h1', { tabindex: '-1' }, text), ...extra);
}

/** A section with a heading. */
export function section(title, ...children) {
  const id = `s-${title.toLowerCase().replace(/[^a-z0-9]+/g, '-')}`;
  return h('section', { class: 'card', 'aria-labelledby': id }, h('h2', { id }, title), ...children);
}

/**
 * A button that runs `action`: disabled while it runs, its error shown beside it (the API's
 * detail), and `done` announced on success. `confirm` asks first.
 */
export function actionButton(label, action, { kind = 'secondary', confirm: question, done, data } = {}) {
  const status = h('span', { class: 'action-status', role: 'status' });
  const button = h('button', { type: 'button', class: `button ${kind}`, dataset: data || {} }, label);
  button.addEventListener('click', async () => {
    if (question && !window.confirm(question)) return;
    button.disabled = true;
    status.replaceChildren();
    try {
      await action();
      if (done) {
        status.replaceChildren(h('span', { class: 'ok' }, done));
        announce(done);
      }
    } catch (error) {
      status.replaceChildren(errorBox(error, `${label} failed`));
    } finally {
      button.disabled = false;
    }
  });
  return h('span', { class: 'action' }, button, status);
}

/** Copies text to the clipboard, also where the async clipboard is unavailable (plain http). */
export async function copyText(text) {
  if (navigator.clipboard && window.isSecureContext) {
    await navigator.clipboard.writeText(text);
    return;
  }
  const area = h('textarea', { class: 'visually-hidden', readonly: true });
  area.value = text;
  document.body.append(area);
  area.select();
  document.execCommand('copy');
  area.remove();
}

/** A labelled form field; `hint` and errors are tied to the input for assistive technology. */
export function field(label, input, hint) {
  const id = input.id || `f-${Math.random().toString(36).slice(2, 9)}`;
  input.id = id;
  const hintNode = hint ? h('p', { class: 'hint', id: `${id}-hint` }, hint) : null;
  if (hintNode) input.setAttribute('aria-describedby', `${id}-hint`);
  const error = h('p', { class: 'field-error', id: `${id}-error`, hidden: true });
  const wrapper = h('div', { class: 'field' }, h('label', { for: id }, label), input, hintNode, error);
  wrapper.showError = (message) => {
    error.textContent = message;
    error.hidden = !message;
    if (message) {
      input.setAttribute('aria-invalid', 'true');
      input.setAttribute('aria-describedby', [hintNode && `${id}-hint`, `${id}-error`].filter(Boolean).join(' '));
    } else {
      input.removeAttribute('aria-invalid');
    }
  };
  return wrapper;
}

/**
 * Previous / next buttons for a Svix list page fetched with `iterator` (empty for the first
 * page). Lists are newest first; a `-` iterator pages back towards newer items, and then
 * `done` says whether there are newer ones still.
 */
export function pager(list, iterator, go) {
  const backwards = Boolean(iterator) && iterator.startsWith('-');
  const newerDone = backwards ? list.done : !iterator;
  const olderDone = backwards ? false : list.done;
  if (newerDone && olderDone) return null;
  const newer = h('button', { type: 'button', class: 'button secondary', disabled: newerDone }, 'Previous page');
  const older = h('button', { type: 'button', class: 'button secondary', disabled: olderDone }, 'Next page');
  newer.addEventListener('click', () => go(list.prevIterator || ''));
  older.addEventListener('click', () => go(list.iterator || ''));
  return h('nav', { class: 'pager', 'aria-label': 'Pages' }, newer, older);
}

/** Pretty JSON in a scrollable, focusable block. */
export function jsonBlock(value, label) {
  let text;
  try {
    text = typeof value === 'string' ? JSON.stringify(JSON.parse(value), null, 2) : JSON.stringify(value, null, 2);
  } catch {
    text = String(value);
  }
  return h('pre', { class: 'code', tabindex: '0', 'aria-label': label }, text);
}

/** A term/definition list from [[term, value], ...]; null values are left out. */
export function details(pairs) {
  return h('dl', { class: 'details' },
    pairs.filter(([, value]) => value !== null && value !== undefined)
      .map(([term, value]) => [h('dt', null, term), h('dd', null, value)]));
}

/** A short id shown in monospace, with the full id in its tooltip. */
export function shortId(id) {
  return h('span', { class: 'mono', title: id }, id.length > 18 ? `${id.slice(0, 10)}…${id.slice(-6)}` : id);
}

/** A datetime-local input's value as ISO 8601, or '' when empty. */
export function localToIso(value) {
  return value ? new Date(value).toISOString() : '';
}

/** ISO 8601 as a datetime-local input's value (the reader's time zone). */
export function isoToLocal(iso) {
  if (!iso) return '';
  const date = new Date(iso);
  const pad = (n) => String(n).padStart(2, '0');
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())}T${pad(date.getHours())}:${pad(date.getMinutes())}`;
}
