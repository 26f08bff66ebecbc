import { describe, expect, it } from 'vitest';
import { messages } from '../src/messages';
import { cacheHitRate, countdown, daysIn, decimalText, lastDays, nanoToDecimal, period, rate, resetIn, times, usd, usdExact } from '../src/format';
import { budgetLimit, toBudgets } from '../src/components/keyform';
import { log, series, seriesTotals } from './helpers';
import { errorRate, fillSeries } from '../src/components/series';
import { attemptsText } from '../src/components/logs';
import { isolated } from '../src/components/chart';
import { csvCell, logsToCSV, LOG_COLUMNS } from '../src/csv';
import { match } from '../src/router';
import { t, setLang } from '../src/i18n';

describe('catalogue', () => {
  const placeholders = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
  it('has every English key in Chinese, with the same placeholders', () => {
    for (const [k, v] of Object.entries(messages.en)) {
      const zh = (messages.zh as Record<string, string>)[k];
      expect(zh, k).toBeTruthy();
      expect(placeholders(zh ?? ''), k).toEqual(placeholders(v));
    }
    expect(Object.keys(messages.zh).sort()).toEqual(Object.keys(messages.en).sort());
  });
  it('switches language and fills placeholders', () => {
    setLang('zh');
    expect(t('keys.selected', { n: 3 })).toBe('已选择 3 个');
    setLang('en');
    expect(t('keys.selected', { n: 3 })).toBe('3 selected');
    expect(document.documentElement.lang).toBe('en');
  });
});

describe('format', () => {
  it('gives day-aligned UTC ranges, so the relay reads its rollup', () => {
    const r = lastDays(7, new Date('2026-03-10T15:04:05Z'));
    expect(r).toEqual({ from: '2026-03-04T00:00:00Z', to: '2026-03-11T00:00:00Z' });
    expect(daysIn(r.from, r.to)).toEqual([
      '2026-03-04', '2026-03-05', '2026-03-06', '2026-03-07', '2026-03-08', '2026-03-09', '2026-03-10',
    ]);
  });
  it('formats countdowns and periods', () => {
    expect(countdown(9.2)).toBe('0:10');
    expect(countdown(3909)).toBe('1:05:09');
    expect(countdown(-3)).toBe('0:00');
    expect(period(60)).toBe('1 min');
    expect(period(86400)).toBe('1 d');
    expect(period(45)).toBe('45 s');
  });
  it('computes the cache hit rate over input-side tokens', () => {
    expect(cacheHitRate({ input_tokens: 10, cache_creation_input_tokens: 10, cache_read_input_tokens: 80 })).toBe(0.8);
    expect(cacheHitRate({ input_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 })).toBeNull();
  });
});

describe('money', () => {
  it('formats amounts: cents for large sums, more digits for small ones, nanodollars in the drill-down', () => {
    expect(usd(1234.5)).toBe('$1,234.50');
    expect(usd(2.5)).toBe('$2.50');
    expect(usd(0.034509)).toBe('$0.034509');
    expect(usdExact(0.000000001)).toBe('$0.000000001');
    expect(usdExact('9007199.254740991')).toBe('$9,007,199.254740991');
    expect(nanoToDecimal(34509000)).toBe('0.034509');
    expect(nanoToDecimal(1)).toBe('0.000000001');
    expect(nanoToDecimal(25_000_000_000)).toBe('25');
    expect(nanoToDecimal(-1500)).toBe('-0.0000015');
  });
  it('writes JSON numbers as plain decimals, never with an exponent', () => {
    expect(decimalText(1e-7)).toBe('0.0000001');
    expect(decimalText(0.000000001)).toBe('0.000000001');
    expect(decimalText(10.5)).toBe('10.5');
    expect(decimalText(200)).toBe('200');
    expect(rate('0.30')).toBe('$0.30');
    expect(rate(3.75)).toBe('$3.75');
    expect(times('1.1')).toBe('×1.1');
  });
  it('counts down to a reset, in days and hours beyond a day', () => {
    expect(resetIn(3909)).toBe('1:05:09');
    expect(resetIn(2 * 86400 + 5 * 3600 + 59)).toBe('2 d 5 h');
    expect(resetIn(-1)).toBe('0:00');
  });
  it('takes a budget limit as the exact text typed, within the API’s bounds', () => {
    expect(budgetLimit(' 10.50 ')).toEqual({ value: '10.50' });
    expect(budgetLimit('$25')).toEqual({ value: '25' });
    expect(budgetLimit('0.000000001')).toEqual({ value: '0.000000001' });
    expect(budgetLimit('9007199.254740991')).toEqual({ value: '9007199.254740991' });
    expect(budgetLimit('9007199.254740992')).toEqual({ error: 'keyForm.budgetLimitMax' });
    expect(budgetLimit('0')).toEqual({ error: 'keyForm.budgetLimitZero' });
    expect(budgetLimit('')).toEqual({ error: 'keyForm.budgetLimitRequired' });
    for (const bad of ['1,5', '1.', '.5', '-1', '+1', '1e3', '1.0000000001', 'ten', '0x10'])
      expect(budgetLimit(bad), bad).toEqual({ error: 'keyForm.budgetLimitInvalid' });
  });
  it('drops the time zone of a window that takes none, and refuses a second budget of the same window and zone', () => {
    expect(
      toBudgets([
        { id: 1, window: '5h', limit: '1', zone: 'Europe/Paris' },
        { id: 2, window: 'day', limit: '2', zone: ' Europe/Paris ' },
        { id: 3, window: 'day', limit: '3', zone: '' },
      ]),
    ).toEqual([
      { window: '5h', limit_usd: '1' },
      { window: 'day', limit_usd: '2', time_zone: 'Europe/Paris' },
      { window: 'day', limit_usd: '3' },
    ]);
    expect(toBudgets([{ id: 1, window: 'week', limit: '1', zone: 'UTC' }, { id: 2, window: 'week', limit: '2', zone: 'UTC' }])).toBe(
      'Budget 2: there is already a Week (UTC) budget; keep one per window and time zone.',
    );
    expect(toBudgets(Array.from({ length: 9 }, (_, i) => ({ id: i, window: 'day' as const, limit: '1', zone: '' })))).toBe('At most 8 budgets.');
  });
});

describe('csv', () => {
  it('quotes and defuses formulas', () => {
    expect(csvCell('a,b')).toBe('"a,b"');
    expect(csvCell('say "hi"')).toBe('"say ""hi"""');
    expect(csvCell('=HYPERLINK("x")')).toBe(`"'=HYPERLINK(""x"")"`);
    expect(csvCell('-1+1')).toBe("'-1+1");
    expect(csvCell(42)).toBe('42');
    expect(csvCell(false)).toBe('false');
    expect(csvCell(null)).toBe('');
  });
  it('writes a header and one line per row', () => {
    const row = Object.fromEntries(LOG_COLUMNS.map((c) => [c, c === 'status' ? 200 : 'x'])) as never;
    const out = logsToCSV([row, row]);
    const lines = out.trimEnd().split('\r\n');
    expect(lines).toHaveLength(3);
    expect(lines[0]).toBe(LOG_COLUMNS.join(','));
  });
});

describe('router', () => {
  it('matches patterns', () => {
    expect(match('/keys/:id', '/keys/abc')).toEqual({ id: 'abc' });
    expect(match('/keys/:id', '/keys')).toBeNull();
    expect(match('/keys/:id', '/keys/')).toBeNull();
    expect(match('/logs', '/logs')).toEqual({});
  });
});

describe('csv cost columns', () => {
  it('exports cost per class, price version and flags, as plain decimals; empty when never priced', () => {
    const lines = logsToCSV([
      log({ cost_usd: 1e-7, cost_fallback_5m: true }) as never,
      log({ price_version: null, cost_usd: 0, status: 401, error_type: 'authentication_error' }) as never,
    ])
      .trimEnd()
      .split('\r\n');
    const head = lines[0]!.split(',');
    expect(head.slice(0, 3)).toEqual(['time', 'request_id', 'key_id']);
    for (const c of ['upstream', 'cost_usd', 'cost_input', 'cost_output', 'cost_cache_write_5m', 'cost_cache_write_1h', 'cost_cache_read', 'cost_web_search', 'cost_web_fetch', 'price_version', 'cost_fallback_5m', 'cost_unpriced'])
      expect(head, c).toContain(c);
    const row = (i: number) => Object.fromEntries(head.map((h, j) => [h, lines[i]!.split(',')[j]]));
    expect(row(1)).toMatchObject({ upstream: 'primary', cost_usd: '0.0000001', cost_cache_read: '0.0135', cost_cache_write_1h: '0.012', price_version: '2026-12-01.1', cost_fallback_5m: 'true', cost_unpriced: 'false' });
    expect(row(2)).toMatchObject({ status: '401', cost_usd: '', cost_input: '', price_version: '' });
  });
});

describe('usage series', () => {
  const from = '2026-03-01T00:00:00Z';
  const pt = (start: string, over: Record<string, unknown> = {}) => ({ ...seriesTotals(2), start, ...over });

  it('fills the hours the relay left out, and keeps its points where they belong', () => {
    const f = fillSeries({ ...series(from, '2026-03-01T05:00:00Z', 'hour', []), points: [pt('2026-03-01T01:00:00Z'), pt('2026-03-01T04:00:00Z')] });
    expect(f.labels).toEqual(['2026-03-01 00:00', '2026-03-01 01:00', '2026-03-01 02:00', '2026-03-01 03:00', '2026-03-01 04:00']);
    expect(f.points.map((p) => (p ? p.start : null))).toEqual([null, '2026-03-01T01:00:00Z', null, null, '2026-03-01T04:00:00Z']);
  });

  it('counts days from the UTC day of from, and 2,160 hourly points fast', () => {
    const days = fillSeries({ ...series('2026-03-01T06:00:00Z', '2026-03-04T00:00:00Z', 'day', []), points: [pt('2026-03-01T00:00:00Z')] });
    expect(days.labels).toEqual(['2026-03-01', '2026-03-02', '2026-03-03']);
    expect(days.points[0]?.start).toBe('2026-03-01T00:00:00Z');
    const starts = Array.from({ length: 2160 }, (_, i) => new Date(Date.parse(from) + i * 3600_000).toISOString().replace('.000Z', 'Z'));
    const big = series(from, new Date(Date.parse(from) + 90 * 86400_000).toISOString(), 'hour', starts);
    const t0 = performance.now();
    const f = fillSeries(big);
    expect(performance.now() - t0).toBeLessThan(100);
    expect(f.x).toHaveLength(2160);
    expect(f.points.every(Boolean)).toBe(true);
  });

  it('reads error rates over every class, refusals included once', () => {
    expect(errorRate(seriesTotals(4, { status: { ok: 1, client_error: 1, rate_limited: 1, server_error: 0, overloaded: 1, refused: 1 } }))).toBe(0.75);
    expect(errorRate(seriesTotals(0))).toBeNull();
  });
});

describe('attempts', () => {
  it('says how often a request was sent', () => {
    expect(attemptsText({ attempts: 0, upstream: '' })).toBe('none (the relay answered without sending it)');
    expect(attemptsText({ attempts: 0, upstream: 'primary' })).toBe('—');
    expect(attemptsText({ attempts: 1, upstream: 'primary' })).toBe('1');
    expect(attemptsText({ attempts: 4, upstream: 'primary' })).toBe('4 (retried 3 times)');
  });
  it('exports attempts, the upstreams tried and the cache savings', () => {
    const lines = logsToCSV([log({ attempts: 2, tried_upstreams: ['eu-1'], cache_saved_usd: 0.25 }) as never]).trimEnd().split('\r\n');
    const head = lines[0]!.split(',');
    const row = Object.fromEntries(head.map((h, j) => [h, lines[1]!.split(',')[j]]));
    expect(row).toMatchObject({ attempts: '2', tried_upstreams: 'eu-1', cache_saved_usd: '0.25' });
  });
});

describe('chart points', () => {
  it('marks the values a line would not show: those without a neighbour', () => {
    expect(isolated([null, 1, null, 2, 3, null, 0])).toEqual([1, 6]);
    expect(isolated([5])).toEqual([0]);
    expect(isolated([null, null])).toEqual([]);
  });
});
