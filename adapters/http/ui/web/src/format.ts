// Formatting, per the chosen language. Numbers are shown exactly (grouped)
// where an operator compares them, and compactly only in charts.
import { lang, t } from './i18n';

function locale(): string {
  return lang() === 'zh' ? 'zh-CN' : 'en-US';
}

export function num(n: number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  return new Intl.NumberFormat(locale()).format(n);
}

/** A USD amount: cents for large sums, up to six decimals for small ones. */
export function usd(n: number | null | undefined): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  const digits = Math.abs(n) >= 100 ? 2 : Math.abs(n) >= 1 ? 4 : 6;
  return new Intl.NumberFormat(locale(), { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: digits }).format(n);
}

/** A USD amount to the nanodollar (9 decimals), for one request's drill-down. */
export function usdExact(n: number | string | null | undefined): string {
  if (n === null || n === undefined || n === '') return '—';
  if (typeof n === 'number' && !Number.isFinite(n)) return '—';
  // Intl formats a decimal string exactly (as a decimal, not via a float);
  // the ES2022 lib types only declare numbers.
  return new Intl.NumberFormat(locale(), { style: 'currency', currency: 'USD', minimumFractionDigits: 2, maximumFractionDigits: 9 }).format(
    n as number,
  );
}

/** Integer nanodollars (cost_detail's unit) as an exact decimal USD string: 34509000 → "0.034509". */
export function nanoToDecimal(n: number): string {
  if (!Number.isSafeInteger(n)) return decimalText(n / 1e9);
  const neg = n < 0;
  const s = String(Math.abs(n)).padStart(10, '0');
  const int = s.slice(0, -9);
  const frac = s.slice(-9).replace(/0+$/, '');
  return `${neg ? '-' : ''}${int}${frac ? `.${frac}` : ''}`;
}

/**
 * A JSON number as plain decimal text, never with an exponent (String(1e-7)
 * is "1e-7"). Amounts of at most 15 significant digits come back exactly as
 * the relay wrote them, since that is what a double holds.
 */
export function decimalText(n: number): string {
  if (!Number.isFinite(n)) return '';
  const s = String(n);
  if (!/e/i.test(s)) return s;
  return n.toFixed(9).replace(/\.?0+$/, '');
}

/** A price-table decimal (a string as the relay writes it, or a number) as "$3.75". */
export function rate(d: string | number | null | undefined): string {
  if (d === null || d === undefined || d === '') return '—';
  return `$${typeof d === 'number' ? decimalText(d) : d}`;
}

/** A multiplier from the price table: "×0.5". */
export function times(d: string | number | null | undefined): string {
  if (d === null || d === undefined || d === '') return '—';
  return `×${typeof d === 'number' ? decimalText(d) : d}`;
}

export function compact(n: number): string {
  return new Intl.NumberFormat(locale(), { notation: 'compact', maximumFractionDigits: 1 }).format(n);
}

export function pct(ratio: number | null | undefined, digits = 1): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return '—';
  return new Intl.NumberFormat(locale(), { style: 'percent', maximumFractionDigits: digits }).format(ratio);
}

export function dateTime(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return new Intl.DateTimeFormat(locale(), { dateStyle: 'medium', timeStyle: 'medium' }).format(d);
}

export function ms(n: number): string {
  if (n < 1000) return `${num(n)} ms`;
  return `${new Intl.NumberFormat(locale(), { maximumFractionDigits: 2 }).format(n / 1000)} s`;
}

/** "3 min ago", "in 2 days". */
export function relative(iso: string | null | undefined, now = Date.now()): string {
  if (!iso) return '—';
  const t = new Date(iso).getTime();
  if (Number.isNaN(t)) return iso;
  const s = Math.round((t - now) / 1000);
  const rtf = new Intl.RelativeTimeFormat(locale(), { numeric: 'auto' });
  const abs = Math.abs(s);
  if (abs < 60) return rtf.format(s, 'second');
  if (abs < 3600) return rtf.format(Math.round(s / 60), 'minute');
  if (abs < 86400) return rtf.format(Math.round(s / 3600), 'hour');
  return rtf.format(Math.round(s / 86400), 'day');
}

/** A countdown: "1:05:09", "4:07", "0:09". */
export function countdown(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  const h = Math.floor(s / 3600);
  const m = Math.floor((s % 3600) / 60);
  const r = s % 60;
  const mm = h > 0 ? String(m).padStart(2, '0') : String(m);
  return `${h > 0 ? `${h}:` : ''}${mm}:${String(r).padStart(2, '0')}`;
}

/**
 * Time until a budget resets: a ticking countdown under a day ("3:05:09"),
 * days and hours beyond ("12 d 4 h").
 */
export function resetIn(seconds: number): string {
  const s = Math.max(0, Math.ceil(seconds));
  if (s < 86400) return countdown(s);
  return t('unit.daysHours', { d: Math.floor(s / 86400), h: Math.floor((s % 86400) / 3600) });
}

/** A period in seconds as "45 s", "1 min", "2 h", "1 d" (or the language's units). */
export function period(seconds: number): string {
  if (seconds % 86400 === 0) return t('unit.days', { n: seconds / 86400 });
  if (seconds % 3600 === 0) return t('unit.hours', { n: seconds / 3600 });
  if (seconds % 60 === 0) return t('unit.minutes', { n: seconds / 60 });
  return t('unit.seconds', { n: seconds });
}

/** The cache hit rate: cache reads over all input-side tokens. */
export function cacheHitRate(u: {
  input_tokens: number;
  cache_creation_input_tokens: number;
  cache_read_input_tokens: number;
}): number | null {
  const all = u.input_tokens + u.cache_creation_input_tokens + u.cache_read_input_tokens;
  return all > 0 ? u.cache_read_input_tokens / all : null;
}

export function shortId(id: string): string {
  return id.length > 8 ? id.slice(0, 8) : id;
}

// UTC days, as the relay's rollups and daily views count them.

export function utcDay(t: Date): Date {
  return new Date(Date.UTC(t.getUTCFullYear(), t.getUTCMonth(), t.getUTCDate()));
}

/** [from, to) covering the last n UTC days, today included: day-aligned, so the relay reads its rollup. */
export function lastDays(n: number, now = new Date()): { from: string; to: string } {
  const to = utcDay(now);
  to.setUTCDate(to.getUTCDate() + 1);
  const from = new Date(to);
  from.setUTCDate(from.getUTCDate() - n);
  return { from: from.toISOString().replace('.000Z', 'Z'), to: to.toISOString().replace('.000Z', 'Z') };
}

/** Every UTC day (YYYY-MM-DD) in [from, to). */
export function daysIn(from: string, to: string): string[] {
  const out: string[] = [];
  const end = new Date(to).getTime();
  for (let d = utcDay(new Date(from)); d.getTime() < end; d.setUTCDate(d.getUTCDate() + 1)) {
    out.push(d.toISOString().slice(0, 10));
  }
  return out;
}

/** A <input type="datetime-local"> value (local time) as RFC 3339, or undefined. */
export function fromLocalInput(v: string): string | undefined {
  if (!v) return undefined;
  const d = new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : d.toISOString();
}

/** RFC 3339 as a <input type="datetime-local"> value in local time. */
export function toLocalInput(iso: string | null | undefined): string {
  if (!iso) return '';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '';
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}
