import { useState } from 'preact/hooks';
import { admin, unwrap, type UsageGroup, type UsageTotals } from '../api/client';
import { useAsync } from '../hooks';
import { t } from '../i18n';
import { cacheHitRate, lastDays, num, pct, shortId, usd } from '../format';
import { Link } from '../router';
import { Empty, ErrorBox, Loading, Stat } from '../components/ui';
import { CostTable, DailyCharts, fillDays, ModelTable, RangePicker, TotalsStats, type RangeDays } from '../components/usage';
import { SeriesCharts, SeriesStats, type Step } from '../components/series';

const TOP = 10;

type StepChoice = 'auto' | Step;

/**
 * Usage across every key: GET /admin/usage grouped by day, model and key
 * (the key groups carry the keys' names), and GET /admin/usage/series for
 * the error rates, time to first byte and cache savings per hour or day.
 */
export function Overview() {
  const [days, setDays] = useState<RangeDays>(7);
  const [step, setStep] = useState<StepChoice>('auto');
  const range = lastDays(days);
  const q = useAsync(async () => {
    const get = (group_by: 'day' | 'model' | 'key') =>
      admin()
        .GET('/admin/usage', { params: { query: { from: range.from, to: range.to, group_by } } })
        .then(unwrap);
    const [byDay, byModel, byKey] = await Promise.all([get('day'), get('model'), get('key')]);
    const top = [...byKey.groups].sort((a, b) => b.cost_usd - a.cost_usd || b.total_tokens - a.total_tokens).slice(0, TOP);
    return { byDay, byModel, top };
  }, [range.from, range.to]);
  // Apart from the totals, so that either can fail without hiding the other.
  const series = useAsync(
    () =>
      admin()
        .GET('/admin/usage/series', {
          params: { query: { from: range.from, to: range.to, ...(step === 'auto' ? {} : { step }) } },
        })
        .then(unwrap),
    [range.from, range.to, step],
  );

  return (
    <section aria-labelledby="overview-title">
      <div class="page-head">
        <h1 id="overview-title">{t('overview.title')}</h1>
        <RangePicker value={days} onChange={setDays} />
      </div>
      <p class="muted small">{t('overview.rangeNote', { from: range.from.slice(0, 10), to: range.to.slice(0, 10) })}</p>
      {q.error && <ErrorBox error={q.error} onRetry={q.reload} />}
      {!q.data && q.loading && <Loading />}
      {q.data && (
        <div aria-busy={q.loading}>
          <TotalsStats totals={q.data.byDay.totals} />
          {q.data.byDay.totals.requests === 0 ? (
            <Empty>{t('overview.noTraffic')}</Empty>
          ) : (
            <DailyCharts days={fillDays(range.from, range.to, q.data.byDay.groups.map((g) => ({ ...g, key: g.group })))} />
          )}
        </div>
      )}
      <section aria-labelledby="overview-health-title" class="health">
        <div class="page-head">
          <h2 id="overview-health-title">{t('series.title')}</h2>
          <label class="range">
            <span>{t('series.step')}</span>
            <select value={step} onChange={(e) => setStep((e.target as HTMLSelectElement).value as StepChoice)}>
              <option value="auto">{t('series.stepAuto')}</option>
              <option value="hour">{t('series.stepHour')}</option>
              <option value="day">{t('series.stepDay')}</option>
            </select>
          </label>
        </div>
        {series.error && <ErrorBox error={series.error} onRetry={series.reload} />}
        {!series.data && series.loading && <Loading />}
        {series.data && (
          <div aria-busy={series.loading}>
            <SeriesStats totals={series.data.totals} />
            {series.data.totals.requests === 0 ? <Empty>{t('overview.noTraffic')}</Empty> : <SeriesCharts series={series.data} />}
          </div>
        )}
      </section>
      {q.data && (
        <div aria-busy={q.loading}>
          <div class="two-col">
            <section>
              <h2>{t('overview.costByClass')}</h2>
              <CostTable totals={q.data.byDay.totals} caption={t('overview.costByClassCaption')} />
            </section>
            <CacheSection totals={q.data.byDay.totals} />
          </div>
          <div class="two-col">
            <TopKeys rows={q.data.top} total={q.data.byDay.totals.cost_usd} />
            <section>
              <h2>{t('overview.topModels')}</h2>
              <ModelTable
                caption={t('overview.topModelsCaption')}
                rows={q.data.byModel.groups.map((g) => ({ ...g, model: g.group })).slice(0)}
              />
            </section>
          </div>
        </div>
      )}
    </section>
  );
}

/**
 * The cache: its hit rate, what cache reads and writes cost, and what the
 * reads saved: the relay prices each record's cache reads at its own input
 * rate (model, modifiers, price version) when it prices the record, and
 * sums that in cache_saved_usd.
 */
function CacheSection({ totals }: { totals: UsageTotals }) {
  return (
    <section>
      <h2>{t('overview.cache')}</h2>
      <dl class="stats">
        <Stat label={t('usage.cacheHitRate')} value={pct(cacheHitRate(totals))} />
        <Stat label={t('overview.cacheReadCost')} value={usd(totals.cost.cache_read)} sub={t('overview.tokens', { n: num(totals.cache_read_input_tokens) })} />
        <Stat
          label={t('overview.cacheWriteCost')}
          value={usd(totals.cost.cache_write_5m + totals.cost.cache_write_1h)}
          sub={t('overview.tokens', { n: num(totals.cache_creation_input_tokens) })}
        />
      </dl>
      <p class="muted small">{t('overview.savingsNote')}</p>
    </section>
  );
}

function TopKeys({ rows, total }: { rows: UsageGroup[]; total: number }) {
  return (
    <section>
      <h2>{t('overview.topKeys')}</h2>
      {rows.length === 0 ? (
        <Empty>{t('usage.noUsage')}</Empty>
      ) : (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">{t('overview.topKeysCaption', { n: TOP })}</caption>
            <thead>
              <tr>
                <th scope="col">{t('key.name')}</th>
                <th scope="col" class="num">{t('usage.requests')}</th>
                <th scope="col" class="num">{t('usage.totalTokens')}</th>
                <th scope="col" class="num">{t('usage.cost')}</th>
                <th scope="col" class="num">{t('overview.shareOfCost')}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((g) => {
                return (
                  <tr key={g.group}>
                    <th scope="row">
                      <Link href={`/keys/${g.group}`}>{g.key_name || shortId(g.group)}</Link>
                    </th>
                    <td class="num">{num(g.requests)}</td>
                    <td class="num">{num(g.total_tokens)}</td>
                    <td class="num">{usd(g.cost_usd)}</td>
                    <td class="num">{pct(total > 0 ? g.cost_usd / total : null)}</td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}
