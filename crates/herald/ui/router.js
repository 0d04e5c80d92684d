// Hash routing: `#/path?query` picks a view, which renders into <main>. Filters live in the
// query so a filtered list can be bookmarked and shared (tokens never are: they stay in
// sessionStorage). Fragments that do not start with `#/` (the skip link's `#main`) are not routes.

import { errorBox, h } from './dom.js';

/** The current route: path and query of the fragment. */
export function currentRoute() {
  const hash = location.hash.startsWith('#/') ? location.hash.slice(1) : '/';
  const [path, search = ''] = hash.split('?');
  return { path: path.replace(/\/+$/, '') || '/', query: Object.fromEntries(new URLSearchParams(search)) };
}

/** The fragment for a path and query (empty values left out). */
export function link(path, query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== '') params.set(key, value);
  }
  const search = params.toString();
  return `#${path}${search ? `?${search}` : ''}`;
}

/** Goes to a route (adds a history entry, so Back works). */
export function navigate(path, query) {
  location.hash = link(path, query);
}

/**
 * Starts routing. `routes`: [[RegExp, (match, query, signal) => Promise<Node>]]. A view's
 * `signal` is aborted when the reader navigates away, which stops its refreshes.
 */
export function startRouter(routes, { main, onRoute, enabled = () => true }) {
  let generation = 0;
  let controller = null;

  async function render() {
    if (!enabled()) return;
    const route = currentRoute();
    const mine = ++generation;
    if (controller) controller.abort();
    controller = new AbortController();
    const signal = controller.signal;
    if (onRoute) onRoute(route);
    const found = routes.find(([pattern]) => pattern.test(route.path));
    main.setAttribute('aria-busy', 'true');
    let view;
    try {
      if (!found) {
        view = h('div', null, h('h1', { tabindex: '-1' }, 'Page not found'),
          h('p', null, 'There is no page at this address. ', h('a', { href: '#/' }, 'Go to the start page.')));
      } else {
        const match = route.path.match(found[0]).slice(1).map(decodeURIComponent);
        view = await found[1](match, route.query, signal);
      }
    } catch (error) {
      view = h('div', null, h('h1', { tabindex: '-1' }, 'This page could not be loaded'), errorBox(error));
    }
    if (mine !== generation || !enabled()) return;
    // Keep focus on a control the new page also has (a filter that was just applied), else
    // move it to the new page's heading, as a page load would for screen-reader users.
    const focusedId = document.activeElement && document.activeElement.id;
    main.replaceChildren(view);
    main.removeAttribute('aria-busy');
    const same = focusedId && document.getElementById(focusedId);
    const heading = main.querySelector('h1');
    if (same) same.focus({ preventScroll: true });
    else if (heading) heading.focus({ preventScroll: true });
    if (!same) window.scrollTo(0, 0);
  }

  window.addEventListener('hashchange', () => {
    if (location.hash === '' || location.hash.startsWith('#/')) render();
  });
  render();
  return { refresh: render };
}

/**
 * Calls `work` every `ms` milliseconds (never two at once) until `signal` aborts, `work`
 * returns false or throws, or `limit` calls were made. For pages that watch deliveries happen.
 */
export function every(ms, work, signal, limit = 120) {
  let count = 0;
  let timer = null;
  const tick = async () => {
    count += 1;
    let again;
    try {
      again = await work();
    } catch {
      again = false;
    }
    if (again !== false && count < limit && !signal.aborted) timer = setTimeout(tick, ms);
  };
  timer = setTimeout(tick, ms);
  signal.addEventListener('abort', () => clearTimeout(timer));
}
