// Reads `/metrics` (the Prometheus text format) for the overview: gauges give the queue and
// endpoint health now, counters sampled twice make a rate. Only what the dashboard needs:
// names, labels, values.

/** Parses the text format into samples: [{name, labels: {k: v}, value}]. Comments are skipped. */
export function parseMetrics(text) {
  const samples = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (!line || line.startsWith('#')) continue;
    const match = line.match(/^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s+(\S+)/);
    if (!match) continue;
    const labels = {};
    for (const pair of (match[3] || '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g)) {
      labels[pair[1]] = pair[2].replace(/\\"/g, '"').replace(/\\\\/g, '\\');
    }
    const value = Number(match[4]);
    if (!Number.isNaN(value)) samples.push({ name: match[1], labels, value });
  }
  return samples;
}

/** The sum of a metric's samples whose labels include `where`. */
export function total(samples, name, where = {}) {
  return samples
    .filter((s) => s.name === name && Object.entries(where).every(([k, v]) => s.labels[k] === v))
    .reduce((sum, s) => sum + s.value, 0);
}

/** Whether the metric is exposed at all (so a panel can hide what this server lacks). */
export function has(samples, name) {
  return samples.some((s) => s.name === name);
}

/** The value of a metric without labels, or null when the server does not expose it. */
export function gauge(samples, name) {
  return has(samples, name) ? total(samples, name) : null;
}

/**
 * The delivery queue from Herald's gauges (`herald_queue_deliveries{state}` and
 * `herald_queue_oldest_due_age_seconds`), or null when the server has none (an older Herald,
 * or a scrape whose store queries failed).
 */
export function queueState(samples) {
  if (!has(samples, 'herald_queue_deliveries')) return null;
  const count = (state) => total(samples, 'herald_queue_deliveries', { state });
  return {
    due: count('due'),
    scheduled: count('scheduled'),
    leased: count('leased'),
    oldestDueSeconds: gauge(samples, 'herald_queue_oldest_due_age_seconds'),
  };
}

/** Endpoint health from Herald's gauges; each null when the server does not expose it. */
export function endpointGauges(samples) {
  return {
    disabled: gauge(samples, 'herald_endpoints_disabled'),
    failing: gauge(samples, 'herald_endpoints_failing'),
    circuitOpen: gauge(samples, 'herald_endpoints_circuit_open'),
  };
}

/**
 * The rates between two scrapes `seconds` apart: messages accepted and attempts per second,
 * the share of attempts that succeeded, and the mean attempt latency in milliseconds.
 */
export function ratesBetween(before, after, seconds) {
  const delta = (name, where) => Math.max(0, total(after, name, where) - total(before, name, where));
  const attempts = delta('herald_delivery_attempts_total');
  const succeeded = delta('herald_delivery_attempts_total', { outcome: 'success' });
  const durationSum = delta('herald_delivery_attempt_duration_seconds_sum');
  const durationCount = delta('herald_delivery_attempt_duration_seconds_count');
  return {
    accepted: delta('herald_messages_accepted_total') / seconds,
    attempts: attempts / seconds,
    successRate: attempts > 0 ? (100 * succeeded) / attempts : null,
    latencyMs: durationCount > 0 ? (1000 * durationSum) / durationCount : null,
  };
}
