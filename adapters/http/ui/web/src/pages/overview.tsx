import { useState } from 'preact/hooks';
import { admin, ApiError, unwrap, type APIKey, type UsageGroup } from '../api/client';
import { useAsync } from '../hooks';
import { t } from '../i18n';
import { lastDays, num, pct, shortId } from '../format';
import { Link } from '../router';
import { Empty, ErrorBox, Loading } from '../components/ui';
import { DailyCharts, fillDays, ModelTable, RangePicker, TotalsStats, type RangeDays } from '../components/usage';

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
    const top = [...byKey.groups].sort((a, b) => b.total_tokens - a.total_tokens).slice(0, TOP);
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
            <TopKeys rows={q.data.top} names={q.data.names} total={q.data.byDay.totals.total_tokens} />
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
                <th scope="col" class="num">{t('overview.share')}</th>
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
                    <td class="num">{pct(total > 0 ? g.total_tokens / total : null)}</td>
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
