// Reads `/metrics` (the Prometheus text format) so the overview can show live rates: counters
// sampled twice make a rate. Only what the dashboard needs: names, labels, values.

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

/**
 * Gauges that describe a queue (a name with `queue`, `pending`, `depth` or `backlog`), for
 * servers that expose them; newer Herald versions may.
 */
export function queueGauges(samples) {
  return samples.filter((s) => /^herald_.*(queue|pending|depth|backlog)/.test(s.name)
    && !s.name.endsWith('_total') && !s.name.endsWith('_bucket')
    && !s.name.endsWith('_sum') && !s.name.endsWith('_count'));
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
