// The public HTTP API, as the pages call it: the same routes, tokens and JSON as any client.
// Nothing here knows about private routes; there are none.

/** An error answer from the API, with its JSON body kept for display. */
export class ApiError extends Error {
  constructor(status, body, method, path) {
    super(describe(status, body));
    this.status = status;
    this.body = body;
    this.request = `${method} ${path}`;
  }

  /** Per-field messages of a 422: [{field, message}]. */
  get fieldErrors() {
    const detail = this.body && this.body.detail;
    if (!Array.isArray(detail)) return [];
    return detail.map((item) => ({
      field: (item.loc || []).filter((part) => part !== 'body' && part !== 'query').join('.'),
      message: item.msg,
    }));
  }
}

/** One sentence for an error body: the API's detail, whatever its shape. */
function describe(status, body) {
  if (body && typeof body.detail === 'string') {
    return body.code ? `${body.detail} (${body.code})` : body.detail;
  }
  if (body && Array.isArray(body.detail)) {
    return body.detail
      .map((item) => `${(item.loc || []).join('.')}: ${item.msg}`)
      .join('; ');
  }
  if (status === 0) return 'The server could not be reached.';
  return `The server answered ${status}.`;
}

/** Builds `?a=1&b=x&b=y` from an object; arrays repeat their key, empty values are left out. */
export function queryString(query) {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === '') continue;
    for (const item of Array.isArray(value) ? value : [value]) params.append(key, String(item));
  }
  const text = params.toString();
  return text ? `?${text}` : '';
}

/**
 * Herald's root, from where this module was loaded (`<root>/ui/assets/api.js`), so the pages
 * work under a path prefix too (a reverse proxy serving Herald at `https://example.com/herald/`).
 */
const ROOT = new URL('../../', import.meta.url);

/** The URL of a server path such as `/api/v1/app`, under Herald's root. */
export function serverUrl(path) {
  return new URL(path.replace(/^\/+/, ''), ROOT).href;
}

/** A client holding one bearer token. */
export class Api {
  /**
   * @param {string} token the organisation or application token
   * @param {(error: ApiError) => void} onUnauthorized called when the token stops working
   */
  constructor(token, onUnauthorized) {
    this.token = token;
    this.onUnauthorized = onUnauthorized || (() => {});
  }

  async request(method, path, { query, body } = {}) {
    const url = serverUrl(path) + queryString(query);
    const headers = { Authorization: `Bearer ${this.token}`, Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    let response;
    try {
      response = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        credentials: 'omit',
        cache: 'no-store',
      });
    } catch {
      throw new ApiError(0, null, method, path);
    }
    const text = await response.text();
    let parsed = null;
    if (text) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = { code: 'not_json', detail: text.slice(0, 300) };
      }
    }
    if (!response.ok) {
      const error = new ApiError(response.status, parsed, method, path);
      if (response.status === 401) this.onUnauthorized(error);
      throw error;
    }
    return parsed;
  }

  get(path, query) {
    return this.request('GET', path, { query });
  }

  post(path, body = {}) {
    return this.request('POST', path, { body });
  }

  patch(path, body) {
    return this.request('PATCH', path, { body });
  }

  delete(path) {
    return this.request('DELETE', path);
  }

  /** A GET that answers `null` for a 404, for panels that depend on optional routes. */
  async optional(path, query) {
    try {
      return await this.get(path, query);
    } catch (error) {
      if (error instanceof ApiError && error.status === 404) return null;
      throw error;
    }
  }
}

/** Paths of one application's resources, ids escaped. */
export function appPaths(appId) {
  const app = `/api/v1/app/${encodeURIComponent(appId)}`;
  const id = encodeURIComponent;
  return {
    app,
    endpoints: `${app}/endpoint`,
    endpoint: (ep) => `${app}/endpoint/${id(ep)}`,
    secret: (ep) => `${app}/endpoint/${id(ep)}/secret`,
    rotate: (ep) => `${app}/endpoint/${id(ep)}/secret/rotate`,
    headers: (ep) => `${app}/endpoint/${id(ep)}/headers`,
    stats: (ep) => `${app}/endpoint/${id(ep)}/stats`,
    recover: (ep) => `${app}/endpoint/${id(ep)}/recover`,
    endpointAttempts: (ep) => `${app}/attempt/endpoint/${id(ep)}`,
    messages: `${app}/msg`,
    message: (msg) => `${app}/msg/${id(msg)}`,
    destinations: (msg) => `${app}/msg/${id(msg)}/endpoint`,
    messageAttempts: (msg) => `${app}/attempt/msg/${id(msg)}`,
    attempt: (msg, attempt) => `${app}/msg/${id(msg)}/attempt/${id(attempt)}`,
    resend: (msg, ep) => `${app}/msg/${id(msg)}/endpoint/${id(ep)}/resend`,
  };
}

/** Every registered event type (first 250, which is all in practice), names only. */
export async function eventTypeNames(api) {
  const list = await api.get('/api/v1/event-type', { limit: 250 });
  return list.data.filter((type) => !type.archived).map((type) => type.name);
}

/**
 * Sends a small test message to an application. Svix has no per-endpoint test route, so this
 * posts an ordinary message: every endpoint of the application subscribed to `eventType`
 * receives it, as it would any other message of that type.
 */
export function sendTestEvent(api, appId, eventType, from) {
  return api.post(appPaths(appId).messages, {
    eventType,
    payload: { type: eventType, test: true, sentFrom: from, sentAt: new Date().toISOString() },
  });
}

/** Runs `work` over `items` with at most `limit` in flight; results in input order. */
export async function mapLimited(items, limit, work) {
  const results = new Array(items.length);
  let next = 0;
  async function runner() {
    while (next < items.length) {
      const index = next++;
      results[index] = await work(items[index], index);
    }
  }
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, runner));
  return results;
}
