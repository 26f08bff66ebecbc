// CSV export of request logs (RFC 4180). Fields a client chose (model,
// session id, path) could start with a spreadsheet formula, so such a cell
// is prefixed with an apostrophe, as OWASP advises against CSV injection.
import type { UsageLog } from './api/client';
import { decimalText } from './format';

/** The log fields written as they are. */
const FIELDS = [
  'time',
  'request_id',
  'key_id',
  'status',
  'error_type',
  'endpoint',
  'path',
  'model',
  'requested_model',
  'upstream',
  'attempts',
  'stream',
  'batch',
  'estimated',
  'input_tokens',
  'output_tokens',
  'cache_creation_input_tokens',
  'cache_read_input_tokens',
  'total_tokens',
  'latency_ms',
  'ttfb_ms',
  'service_tier',
  'speed',
  'inference_geo',
  'web_search_requests',
  'web_fetch_requests',
  'session_id',
  'client_ip',
  'upstream_request_id',
] as const satisfies readonly (keyof UsageLog)[];

/** An amount as plain decimal text (never "1e-7"), empty when never priced. */
const money =
  (get: (r: UsageLog) => number | undefined) =>
  (r: UsageLog): string =>
    r.price_version === null || r.price_version === undefined ? '' : decimalText(get(r) ?? 0);

/** The cost columns: USD, exactly as the relay gave them. */
const COST: readonly [string, (r: UsageLog) => unknown][] = [
  ['cost_usd', money((r) => r.cost_usd)],
  ['cost_input', money((r) => r.cost?.input)],
  ['cost_output', money((r) => r.cost?.output)],
  ['cost_cache_write_5m', money((r) => r.cost?.cache_write_5m)],
  ['cost_cache_write_1h', money((r) => r.cost?.cache_write_1h)],
  ['cost_cache_read', money((r) => r.cost?.cache_read)],
  ['cost_web_search', money((r) => r.cost?.web_search)],
  ['cost_web_fetch', money((r) => r.cost?.web_fetch)],
  ['price_version', (r) => r.price_version],
  ['cost_fallback_5m', (r) => r.cost_fallback_5m],
  ['cost_unpriced', (r) => r.cost_unpriced],
  ['cache_saved_usd', money((r) => r.cache_saved_usd)],
];

/** The upstreams tried before the one that answered, in order, as one cell. */
const RETRIES: readonly [string, (r: UsageLog) => unknown][] = [
  ['tried_upstreams', (r) => (Array.isArray(r.tried_upstreams) ? r.tried_upstreams.join(' ') : r.tried_upstreams)],
];

const COLUMNS: readonly [string, (r: UsageLog) => unknown][] = [
  ...FIELDS.map((f) => [f, (r: UsageLog) => r[f]] as [string, (r: UsageLog) => unknown]),
  ...COST,
  ...RETRIES,
];

export const LOG_COLUMNS: readonly string[] = COLUMNS.map(([name]) => name);

export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = typeof v === 'string' ? v : String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function logsToCSV(rows: readonly UsageLog[]): string {
  const lines = [LOG_COLUMNS.join(',')];
  for (const r of rows) lines.push(COLUMNS.map(([, get]) => csvCell(get(r))).join(','));
  return `${lines.join('\r\n')}\r\n`;
}

/** Offers text as a file download (a blob: URL, so no inline script or data: URL). */
export function download(name: string, text: string, type = 'text/csv;charset=utf-8'): void {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
