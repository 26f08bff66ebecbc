import { describe, expect, it } from 'vitest';
import { messages } from '../src/messages';
import { cacheHitRate, countdown, daysIn, lastDays, period } from '../src/format';
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
