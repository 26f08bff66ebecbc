// A time-series chart (uPlot: canvas, ~50 kB, stays responsive with tens of
// thousands of points). For screen readers and for exact values, the same
// data is available as a table under the chart.
import { useEffect, useRef } from 'preact/hooks';
import uPlot from 'uplot';
import { t } from '../i18n';
import { compact, decimalText, num, pct, usd } from '../format';

const HALF_DAY = 43_200;

const COUNT_INCRS = [1, 2, 5].flatMap((m) => Array.from({ length: 16 }, (_, e) => m * 10 ** e)).sort((a, b) => a - b);

export type Series = { label: string; values: (number | null)[]; color: string };

type Props = {
  title: string;
  /** x values: unix seconds (UTC day starts for daily data). */
  x: number[];
  /** Labels of the x values for the data table (e.g. the day). */
  xLabels: string[];
  series: Series[];
  kind?: 'line' | 'bars';
  /** Values are ratios (0..1), shown as percentages. */
  ratio?: boolean;
  /** Values are USD amounts. */
  money?: boolean;
  height?: number;
};

function fmt(ratio: boolean, money: boolean, v: number | null | undefined): string {
  if (v === null || v === undefined) return '—';
  return ratio ? pct(v) : money ? usd(v) : num(v);
}

/** An axis tick in USD: "$0.05", "$1.2K". */
function usdTick(v: number): string {
  return Math.abs(v) >= 1000 ? `$${compact(v)}` : `$${decimalText(Number(v.toPrecision(3)))}`;
}

export function Chart({ title, x, xLabels, series, kind = 'line', ratio = false, money = false, height = 220 }: Props) {
  const box = useRef<HTMLDivElement>(null);
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
        // Bars are centred on their day: leave half a day at each end.
        x: { time: true, range: (_u, min, max) => (kind === 'bars' ? [min - HALF_DAY, max + HALF_DAY] : [min, max]) },
        y: { range: ratio ? [0, 1] : (_u, _min, max) => [0, max > 0 ? max * 1.1 : 1] },
      },
      axes: [
        { stroke: 'currentColor', grid: { stroke: 'rgba(127,127,127,0.15)' } },
        {
          stroke: 'currentColor',
          grid: { stroke: 'rgba(127,127,127,0.15)' },
          size: 56,
          // Counts have whole-number ticks; money and ratios fractional ones.
          incrs: ratio || money ? undefined : COUNT_INCRS,
          values: (_u, vals) => vals.map((v) => (ratio ? pct(v, 0) : money ? usdTick(v) : compact(v))),
        },
      ],
      series: [
        { label: t('chart.day'), value: (_u, v) => (v === null ? '—' : new Date(v * 1000).toISOString().slice(0, 10)) },
        ...series.map((s) => ({
          label: s.label,
          stroke: s.color,
          width: 2,
          fill: kind === 'bars' ? s.color : undefined,
          paths: kind === 'bars' ? uPlot.paths.bars?.({ size: [0.7, 40] }) : undefined,
          points: { show: kind !== 'bars' && x.length <= 62 },
          value: (_u: uPlot, v: number | null) => fmt(ratio, money, v),
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
  }, [x, series, kind, ratio, money, height, title]);
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
      <details class="chart-table">
        <summary>{t('chart.asTable')}</summary>
        <div class="table-wrap">
          <table>
            <caption class="sr-only">{title}</caption>
            <thead>
              <tr>
                <th scope="col">{t('chart.day')}</th>
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
                      {fmt(ratio, money, s.values[i])}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
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
};
