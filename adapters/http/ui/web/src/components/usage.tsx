// Usage views shared by the overview, the key detail and the key holder's
// page: the same charts and tables over the same API shapes, so the same
// numbers look the same everywhere.
import { useMemo } from 'preact/hooks';
import type { CostBreakdown, UsageTotals } from '../api/client';
import { t } from '../i18n';
import { cacheHitRate, daysIn, num, pct, usd } from '../format';
import { Chart, COLORS, dayX } from './chart';
import { Empty, Stat } from './ui';

type DayRow = UsageTotals & { day: string };

const ZERO: UsageTotals = {
  requests: 0,
  input_tokens: 0,
  output_tokens: 0,
  cache_creation_input_tokens: 0,
  cache_read_input_tokens: 0,
  total_tokens: 0,
  cost_usd: 0,
  cache_saved_usd: 0,
  cost: { input: 0, output: 0, cache_write_5m: 0, cache_write_1h: 0, cache_read: 0, web_search: 0, web_fetch: 0 },
};

/** One row per UTC day of [from, to); days the relay did not list are zeros. */
export function fillDays(from: string, to: string, rows: (UsageTotals & { key: string })[]): DayRow[] {
  const by = new Map(rows.map((r) => [r.key, r]));
  return daysIn(from, to).map((day) => ({ ...ZERO, ...(by.get(day) ?? {}), day }));
}

export function TotalsStats({ totals }: { totals: UsageTotals }) {
  return (
    <dl class="stats">
      <Stat label={t('usage.requests')} value={num(totals.requests)} />
      <Stat label={t('usage.cost')} value={usd(totals.cost_usd)} />
      <Stat label={t('usage.totalTokens')} value={num(totals.total_tokens)} />
      <Stat label={t('usage.input')} value={num(totals.input_tokens)} />
      <Stat label={t('usage.output')} value={num(totals.output_tokens)} />
      <Stat label={t('usage.cacheWrite')} value={num(totals.cache_creation_input_tokens)} />
      <Stat label={t('usage.cacheRead')} value={num(totals.cache_read_input_tokens)} />
      <Stat label={t('usage.cacheHitRate')} value={pct(cacheHitRate(totals))} />
      <Stat label={t('usage.cacheSaved')} value={usd(totals.cache_saved_usd)} />
    </dl>
  );
}

export function DailyCharts({ days, showHitRate = true }: { days: DayRow[]; showHitRate?: boolean }) {
  const d = useMemo(() => {
    const labels = days.map((r) => r.day);
    return {
      labels,
      x: dayX(labels),
      requests: [{ label: t('usage.requests'), values: days.map((r) => r.requests), color: COLORS.requests }],
      cost: [{ label: t('usage.cost'), values: days.map((r) => r.cost_usd), color: COLORS.cost }],
      tokens: [
        { label: t('usage.input'), values: days.map((r) => r.input_tokens), color: COLORS.input },
        { label: t('usage.output'), values: days.map((r) => r.output_tokens), color: COLORS.output },
        { label: t('usage.cacheWrite'), values: days.map((r) => r.cache_creation_input_tokens), color: COLORS.cacheWrite },
        { label: t('usage.cacheRead'), values: days.map((r) => r.cache_read_input_tokens), color: COLORS.cacheRead },
      ],
      hit: [{ label: t('usage.cacheHitRate'), values: days.map((r) => cacheHitRate(r)), color: COLORS.hit }],
    };
  }, [days]);
  return (
    <div class="charts">
      <Chart title={t('chart.requestsPerDay')} x={d.x} xLabels={d.labels} series={d.requests} kind="bars" />
      <Chart title={t('chart.costPerDay')} x={d.x} xLabels={d.labels} series={d.cost} kind="bars" money />
      <Chart title={t('chart.tokensPerDay')} x={d.x} xLabels={d.labels} series={d.tokens} />
      {showHitRate && <Chart title={t('chart.cacheHitPerDay')} x={d.x} xLabels={d.labels} series={d.hit} ratio />}
    </div>
  );
}

/** Usage per model, dearest first (then most tokens). */
export function ModelTable({ rows, caption }: { rows: (UsageTotals & { model: string })[]; caption: string }) {
  if (rows.length === 0) return <Empty>{t('usage.noUsage')}</Empty>;
  const sorted = [...rows].sort(
    (a, b) => b.cost_usd - a.cost_usd || b.total_tokens - a.total_tokens || a.model.localeCompare(b.model),
  );
  return (
    <div class="table-wrap">
      <table>
        <caption class="sr-only">{caption}</caption>
        <thead>
          <tr>
            <th scope="col">{t('usage.model')}</th>
            <th scope="col" class="num">{t('usage.requests')}</th>
            <th scope="col" class="num">{t('usage.cost')}</th>
            <th scope="col" class="num">{t('usage.input')}</th>
            <th scope="col" class="num">{t('usage.output')}</th>
            <th scope="col" class="num">{t('usage.cacheWrite')}</th>
            <th scope="col" class="num">{t('usage.cacheRead')}</th>
            <th scope="col" class="num">{t('usage.totalTokens')}</th>
            <th scope="col" class="num">{t('usage.cacheHitRate')}</th>
          </tr>
        </thead>
        <tbody>
          {sorted.map((r) => (
            <tr key={r.model}>
              <th scope="row">{r.model || t('usage.noModel')}</th>
              <td class="num">{num(r.requests)}</td>
              <td class="num">{usd(r.cost_usd)}</td>
              <td class="num">{num(r.input_tokens)}</td>
              <td class="num">{num(r.output_tokens)}</td>
              <td class="num">{num(r.cache_creation_input_tokens)}</td>
              <td class="num">{num(r.cache_read_input_tokens)}</td>
              <td class="num">{num(r.total_tokens)}</td>
              <td class="num">{pct(cacheHitRate(r))}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

/** The price classes of CostBreakdown, in the order the relay lists them. */
export const COST_CLASSES = [
  ['input', 'usage.input'],
  ['output', 'usage.output'],
  ['cache_write_5m', 'cost.cacheWrite5m'],
  ['cache_write_1h', 'cost.cacheWrite1h'],
  ['cache_read', 'usage.cacheRead'],
  ['web_search', 'cost.webSearch'],
  ['web_fetch', 'cost.webFetch'],
] as const satisfies readonly (readonly [keyof CostBreakdown, string])[];

/** What the usage cost, per price class, with each class's share. */
export function CostTable({ totals, caption }: { totals: UsageTotals; caption: string }) {
  const all = totals.cost_usd;
  return (
    <div class="table-wrap">
      <table class="cost-table">
        <caption>{caption}</caption>
        <thead>
          <tr>
            <th scope="col">{t('cost.class')}</th>
            <th scope="col" class="num">{t('usage.cost')}</th>
            <th scope="col" class="num">{t('overview.share')}</th>
          </tr>
        </thead>
        <tbody>
          {COST_CLASSES.map(([k, label]) => (
            <tr key={k}>
              <th scope="row">{t(label)}</th>
              <td class="num">{usd(totals.cost[k])}</td>
              <td class="num">{pct(all > 0 ? totals.cost[k] / all : null)}</td>
            </tr>
          ))}
          <tr class="total">
            <th scope="row">{t('cost.total')}</th>
            <td class="num">{usd(all)}</td>
            <td class="num">{all > 0 ? pct(1) : '—'}</td>
          </tr>
        </tbody>
      </table>
    </div>
  );
}

export type RangeDays = 7 | 30 | 90;

export function RangePicker({ value, onChange }: { value: RangeDays; onChange: (v: RangeDays) => void }) {
  return (
    <label class="range">
      <span>{t('range.label')}</span>
      <select value={value} onChange={(e) => onChange(Number((e.target as HTMLSelectElement).value) as RangeDays)}>
        <option value={7}>{t('range.days', { n: 7 })}</option>
        <option value={30}>{t('range.days', { n: 30 })}</option>
        <option value={90}>{t('range.days', { n: 90 })}</option>
      </select>
    </label>
  );
}
