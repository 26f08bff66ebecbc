import { useState } from 'preact/hooks';
import { admin, ApiError, unwrap, type APIKey, type UsageGroup, type UsageTotals } from '../api/client';
import { useAsync } from '../hooks';
import { t } from '../i18n';
import { cacheHitRate, lastDays, num, pct, shortId, usd } from '../format';
import { Link } from '../router';
import { Empty, ErrorBox, Loading, Stat } from '../components/ui';
import { CostTable, DailyCharts, fillDays, ModelTable, RangePicker, TotalsStats, type RangeDays } from '../components/usage';

const TOP = 10;

type KeyName = { id: string; name: string; deleted: boolean };

// Names of the top keys: at most TOP lookups, in parallel. A deleted key's
// usage stays, but the key itself answers 404.
async function keyNames(ids: string[]): Promise<Map<string, KeyName>> {
  const out = new Map<string, KeyName>();
  await Promise.all(
    ids.map(async (id) => {
      try {
        const k: APIKey = unwrap(await admin().GET('/admin/api-keys/{id}', { params: { path: { id } } }));
        out.set(id, { id, name: k.name, deleted: false });
      } catch (e) {
        if (e instanceof ApiError && e.status === 404) out.set(id, { id, name: '', deleted: true });
        else throw e;
      }
    }),
  );
  return out;
}

/** Usage across every key: GET /admin/usage grouped by day, model and key. */
export function Overview() {
  const [days, setDays] = useState<RangeDays>(7);
  const range = lastDays(days);
  const q = useAsync(async () => {
    const get = (group_by: 'day' | 'model' | 'key') =>
      admin()
        .GET('/admin/usage', { params: { query: { from: range.from, to: range.to, group_by } } })
        .then(unwrap);
    const [byDay, byModel, byKey] = await Promise.all([get('day'), get('model'), get('key')]);
    const top = [...byKey.groups].sort((a, b) => b.cost_usd - a.cost_usd || b.total_tokens - a.total_tokens).slice(0, TOP);
    const names = await keyNames(top.map((g) => g.group));
    return { byDay, byModel, top, names };
  }, [range.from, range.to]);

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
          <div class="two-col">
            <section>
              <h2>{t('overview.costByClass')}</h2>
              <CostTable totals={q.data.byDay.totals} caption={t('overview.costByClassCaption')} />
            </section>
            <CacheSection totals={q.data.byDay.totals} />
          </div>
          <div class="two-col">
            <TopKeys rows={q.data.top} names={q.data.names} total={q.data.byDay.totals.cost_usd} />
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
 * The cache: its hit rate and what cache reads and writes cost.
 *
 * The money it saved is not shown, because the API cannot give it exactly.
 * Saved = (cache-read tokens at the input rate) − cost.cache_read, and the
 * input rate is per request: its model (or each iteration's model), the
 * batch discount, fast mode, the inference_geo multiplier and the
 * long-context tier, under the price version that priced it. The totals
 * carry tokens and cost per class but no rates, and the current table
 * would misprice repriced or older records. It needs a field on
 * UsageTotals (and so on every group) such as `cache_read_at_input_usd`:
 * the cache reads priced at the input rate when each record was priced;
 * then saved = cache_read_at_input_usd − cost.cache_read.
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

function TopKeys({ rows, names, total }: { rows: UsageGroup[]; names: Map<string, KeyName>; total: number }) {
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
                const n = names.get(g.group);
                return (
                  <tr key={g.group}>
                    <th scope="row">
                      {n?.deleted ? (
                        <span>
                          <code>{shortId(g.group)}</code> <span class="badge off">{t('key.deleted')}</span>
                        </span>
                      ) : (
                        <Link href={`/keys/${g.group}`}>{n?.name || shortId(g.group)}</Link>
                      )}
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
