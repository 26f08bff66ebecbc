// CSV export of request logs (RFC 4180). Fields a client chose (model,
// session id, path) could start with a spreadsheet formula, so such a cell
// is prefixed with an apostrophe, as OWASP advises against CSV injection.
import type { UsageLog } from './api/client';

export const LOG_COLUMNS = [
  'time',
  'request_id',
  'key_id',
  'status',
  'error_type',
  'endpoint',
  'path',
  'model',
  'requested_model',
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

export function csvCell(v: unknown): string {
  if (v === null || v === undefined) return '';
  let s = typeof v === 'string' ? v : String(v);
  if (typeof v === 'string' && /^[=+\-@\t\r]/.test(s)) s = `'${s}`;
  return /[",\r\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
}

export function logsToCSV(rows: readonly UsageLog[]): string {
  const lines = [LOG_COLUMNS.join(',')];
  for (const r of rows) lines.push(LOG_COLUMNS.map((c) => csvCell(r[c])).join(','));
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
