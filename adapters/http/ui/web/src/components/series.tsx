// The overview's series charts: error rate by status class, time to first
// byte (p50, p95) and the money the cache saved, per hour or per UTC day,
// from GET /admin/usage/series. The relay lists only the steps that had
// requests; the rest are filled in here (zero requests, no percentile).
import { useMemo } from 'preact/hooks';
import type { Schemas } from '../api/client';
import { lang, t } from '../i18n';
import { ms, num, pct } from '../format';
import { Chart, COLORS, xLabel, type Series } from './chart';
import { Stat } from './ui';

export type UsageSeries = Schemas['UsageSeries'];
export type SeriesPoint = Schemas['SeriesPoint'];
export type SeriesTotals = Schemas['SeriesTotals'];
export type Step = UsageSeries['step'];

const STEP_SECONDS: Record<Step, number> = { hour: 3600, day: 86_400 };

/** Ranges up to this many days get hourly points unless asked otherwise, as the relay decides. */
export const HOURLY_UP_TO_DAYS = 7;

/** The status classes charted as error rates, in the API's names. */
export const ERROR_CLASSES = [
  ['client_error', 'series.clientError', COLORS.clientError],
  ['rate_limited', 'series.rateLimited', COLORS.rateLimited],
  ['server_error', 'series.serverError', COLORS.serverError],
  ['overloaded', 'series.overloaded', COLORS.overloaded],
] as const;

/** Errors of every class over all requests (refusals are in their class already). */
export function errorRate(p: SeriesTotals): number | null {
  if (p.requests === 0) return null;
  const s = p.status;
  return (s.client_error + s.rate_limited + s.server_error + s.overloaded) / p.requests;
}

export type FilledSeries = {
  x: number[];
  labels: string[];
  /** The relay's point of each step, or undefined for a step without requests. */
  points: (SeriesPoint | undefined)[];
};

/** One entry per step of [from, to): the steps the relay did not list had no requests. */
export function fillSeries(s: UsageSeries): FilledSeries {
  const step = STEP_SECONDS[s.step];
  const start = Math.floor(Date.parse(s.from) / 1000);
  const end = Math.floor(Date.parse(s.to) / 1000);
  // A day step starts on the UTC day holding from.
  const first = s.step === 'day' ? start - (start % 86_400) : start;
  const by = new Map(s.points.map((p) => [Math.floor(Date.parse(p.start) / 1000), p]));
  const x: number[] = [];
  const labels: string[] = [];
  const points: (SeriesPoint | undefined)[] = [];
  for (let at = first; at < end; at += step) {
    x.push(at);
    labels.push(xLabel(at, step));
    points.push(by.get(at));
  }
  return { x, labels, points };
}

export function SeriesStats({ totals }: { totals: SeriesTotals }) {
  return (
    <dl class="stats">
      <Stat label={t('series.errorRate')} value={pct(errorRate(totals))} />
      <Stat
        label={t('series.refused')}
        value={pct(totals.requests > 0 ? totals.status.refused / totals.requests : null)}
        sub={t('series.requestsN', { n: num(totals.status.refused), all: num(totals.requests) })}
      />
      <Stat label={t('series.ttfbP50')} value={totals.ttfb_p50_ms === null ? '—' : ms(totals.ttfb_p50_ms)} />
      <Stat label={t('series.ttfbP95')} value={totals.ttfb_p95_ms === null ? '—' : ms(totals.ttfb_p95_ms)} />
    </dl>
  );
}

export function SeriesCharts({ series }: { series: UsageSeries }) {
  const step = STEP_SECONDS[series.step];
  const d = useMemo(() => {
    const f = fillSeries(series);
    const rate = (k: keyof SeriesPoint['status']) => f.points.map((p) => (p && p.requests > 0 ? p.status[k] / p.requests : null));
    const errors: Series[] = ERROR_CLASSES.map(([k, label, color]) => ({ label: t(label), values: rate(k), color }));
    errors.push({ label: t('series.refusedByRelay'), values: rate('refused'), color: COLORS.refused, dash: [4, 3] });
    return {
      ...f,
      errors,
      ttfb: [
        { label: t('series.p50'), values: f.points.map((p) => p?.ttfb_p50_ms ?? null), color: COLORS.p50 },
        { label: t('series.p95'), values: f.points.map((p) => p?.ttfb_p95_ms ?? null), color: COLORS.p95 },
      ],
      saved: [{ label: t('series.cacheSaved'), values: f.points.map((p) => p?.cache_saved_usd ?? 0), color: COLORS.saved }],
    };
    // The labels are in the language shown.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [series, lang()]);
  const hourly = series.step === 'hour';
  return (
    <div class="charts">
      <Chart
        title={hourly ? t('series.errorsPerHour') : t('series.errorsPerDay')}
        x={d.x}
        xLabels={d.labels}
        series={d.errors}
        ratio
        fit
        step={step}
      />
      <Chart title={hourly ? t('series.ttfbPerHour') : t('series.ttfbPerDay')} x={d.x} xLabels={d.labels} series={d.ttfb} millis step={step} />
      <Chart
        title={hourly ? t('series.savedPerHour') : t('series.savedPerDay')}
        x={d.x}
        xLabels={d.labels}
        series={d.saved}
        kind={hourly ? 'line' : 'bars'}
        money
        step={step}
      />
    </div>
  );
}
