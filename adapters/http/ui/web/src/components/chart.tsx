// A time-series chart (uPlot: canvas, ~50 kB, stays responsive with tens of
// thousands of points). For screen readers and for exact values, the same
// data is available as a table under the chart, rendered only once opened
// (90 days of hourly points are 2,160 rows).
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import { t } from '../i18n';
import { compact, decimalText, ms as msText, num, pct, usd } from '../format';

const DAY = 86_400;

const COUNT_INCRS = [1, 2, 5].flatMap((m) => Array.from({ length: 16 }, (_, e) => m * 10 ** e)).sort((a, b) => a - b);

export type Series = { label: string; values: (number | null)[]; color: string; dash?: number[] };

type Props = {
  title: string;
  /** x values: unix seconds (UTC day or hour starts). */
  x: number[];
  /** Labels of the x values for the data table (e.g. the day). */
  xLabels: string[];
  series: Series[];
  kind?: 'line' | 'bars';
  /** Values are ratios (0..1), shown as percentages. */
  ratio?: boolean;
  /** A ratio axis fitted to the data rather than 0..100 % (small error rates). */
  fit?: boolean;
  /** Values are USD amounts. */
  money?: boolean;
  /** Values are milliseconds. */
  millis?: boolean;
  /** The width of a point in seconds: a day (default) or an hour. */
  step?: number;
  height?: number;
};

type Unit = { ratio: boolean; money: boolean; millis: boolean };

function fmt(u: Unit, v: number | null | undefined): string {
  if (v === null || v === undefined) return '—';
  return u.ratio ? pct(v) : u.money ? usd(v) : u.millis ? msText(Math.round(v)) : num(v);
}

/** An axis tick in USD: "$0.05", "$1.2K". */
function usdTick(v: number): string {
  return Math.abs(v) >= 1000 ? `$${compact(v)}` : `$${decimalText(Number(v.toPrecision(3)))}`;
}

/** The indices of the values whose neighbours are both missing. */
export function isolated(values: (number | null)[]): number[] {
  const out: number[] = [];
  for (let i = 0; i < values.length; i++) {
    if (values[i] === null || values[i] === undefined) continue;
    if ((i === 0 || values[i - 1] == null) && (i === values.length - 1 || values[i + 1] == null)) out.push(i);
  }
  return out;
}

/** An x value as the table and the cursor show it: the UTC day, or the UTC hour. */
export function xLabel(sec: number, step = DAY): string {
  const iso = new Date(sec * 1000).toISOString();
  return step >= DAY ? iso.slice(0, 10) : `${iso.slice(0, 10)} ${iso.slice(11, 16)}`;
}

export function Chart({
  title,
  x,
  xLabels,
  series,
  kind = 'line',
  ratio = false,
  fit = false,
  money = false,
  millis = false,
  step = DAY,
  height = 220,
}: Props) {
  const box = useRef<HTMLDivElement>(null);
  const [tableOpen, setTableOpen] = useState(false);
  const unit: Unit = { ratio, money, millis };
  useEffect(() => {
    const el = box.current;
    if (!el) return;
    const opts: uPlot.Options = {
      width: Math.max(el.clientWidth, 280),
      height,
      legend: { show: false },
      // The relay counts days in UTC; so does the axis.
      tzDate: (ts) => uPlot.tzDate(new Date(ts * 1000), 'Etc/UTC'),
      cursor: { drag: { x: false, y: false } },
      scales: {
        // Bars are centred on their step: leave half a step at each end.
        x: { time: true, range: (_u, min, max) => (kind === 'bars' ? [min - step / 2, max + step / 2] : [min, max]) },
        y: {
          range:
            ratio && !fit
              ? [0, 1]
              : (_u, _min, max) => [0, ratio ? Math.min(1, max > 0 ? max * 1.1 : 0.05) : max > 0 ? max * 1.1 : 1],
        },
      },
      axes: [
        { stroke: 'currentColor', grid: { stroke: 'rgba(127,127,127,0.15)' } },
        {
          stroke: 'currentColor',
          grid: { stroke: 'rgba(127,127,127,0.15)' },
          size: 56,
          // Counts have whole-number ticks; money and ratios fractional ones.
          incrs: ratio || money ? undefined : COUNT_INCRS,
          values: (_u, vals) =>
            vals.map((v) => (ratio ? pct(v, fit ? 1 : 0) : money ? usdTick(v) : millis ? msText(Math.round(v)) : compact(v))),
        },
      ],
      series: [
        { label: step >= DAY ? t('chart.day') : t('chart.hour'), value: (_u, v) => (v === null ? '—' : xLabel(v, step)) },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          dash: s.dash,
          width: kind !== 'bars' && x.length > 500 ? 1 : 2,
          fill: kind === 'bars' ? s.color : undefined,
          paths: kind === 'bars' ? uPlot.paths.bars?.({ size: [0.7, 40] }) : undefined,
          // Every point on a short series; on a long one only those with
          // no neighbour, which a line alone would not show (an hour with
          // requests between hours without).
          points:
            kind === 'bars' ? { show: false } : { show: true, size: 5, filter: x.length <= 62 ? null : isolated(s.values) },
          value: (_u: uPlot, v: number | null) => fmt(unit, v),
        })),
      ],
    };
    const data: uPlot.AlignedData = [x, ...series.map((s) => s.values)];
    const plot = new uPlot(opts, data, el);
    const ro = new ResizeObserver(() => plot.setSize({ width: Math.max(el.clientWidth, 280), height }));
    ro.observe(el);
    return () => {
      ro.disconnect();
      plot.destroy();
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [x, series, kind, ratio, fit, money, millis, step, height, title]);
  return (
    <figure class="chart">
      <figcaption>{title}</figcaption>
      <div ref={box} class="chart-canvas" role="img" aria-label={t('chart.aria', { title })} />
      {series.length > 1 && (
        <ul class="legend" aria-hidden="true">
          {series.map((s) => (
            <li key={s.label}>
              <span class="swatch" style={{ background: s.color }} />
              {s.label}
            </li>
          ))}
        </ul>
      )}
      <details class="chart-table" onToggle={(e) => setTableOpen((e.currentTarget as HTMLDetailsElement).open)}>
        <summary>{t('chart.asTable')}</summary>
        {tableOpen && (
          <div class="table-wrap">
            <table>
              <caption class="sr-only">{title}</caption>
              <thead>
                <tr>
                  <th scope="col">{step >= DAY ? t('chart.day') : t('chart.hour')}</th>
                  {series.map((s) => (
                    <th scope="col" key={s.label}>
                      {s.label}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {xLabels.map((lbl, i) => (
                  <tr key={lbl}>
                    <th scope="row">{lbl}</th>
                    {series.map((s) => (
                      <td key={s.label} class="num">
                        {fmt(unit, s.values[i])}
                      </td>
                    ))}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </details>
    </figure>
  );
}

/** Day rows (YYYY-MM-DD) as uPlot x values. */
export function dayX(days: string[]): number[] {
  return days.map((d) => Date.parse(`${d}T00:00:00Z`) / 1000);
}

export const COLORS = {
  requests: '#2f6fde',
  input: '#2f6fde',
  output: '#d9822b',
  cacheWrite: '#8e5bd6',
  cacheRead: '#1f9d6a',
  hit: '#1f9d6a',
  cost: '#b4531f',
  saved: '#1f9d6a',
  clientError: '#d9822b',
  rateLimited: '#8e5bd6',
  serverError: '#c23b3b',
  overloaded: '#7a4a1f',
  refused: '#5f6b7a',
  p50: '#2f6fde',
  p95: '#c23b3b',
};
