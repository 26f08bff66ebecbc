import { useState } from 'preact/hooks';
import { admin, unwrap, type APIKey, type CreatedAPIKey } from '../api/client';
import { useAsync } from '../hooks';
import { t } from '../i18n';
import { dateTime, lastDays, relative } from '../format';
import { Link, navigate } from '../router';
import { ConfirmButton, Dialog, ErrorBox, Loading, StatusBadge, UsageBar } from '../components/ui';
import { KeyForm, SecretOnce, toUpdate, valuesOf } from '../components/keyform';
import { CostTable, DailyCharts, fillDays, ModelTable, RangePicker, TotalsStats, type RangeDays } from '../components/usage';
import { BudgetList } from '../components/budgets';
import { LogTable } from '../components/logs';

const RECENT = 20;

/**
 * One key: GET /admin/api-keys/{id}; its budgets' spend from
 * GET /admin/api-keys/{id}/quota; its usage and cost from GET /admin/usage
 * with key_id (per day and per model) and its recent requests from
 * GET /admin/usage/logs with key_id.
 */
export function KeyDetail({ id }: { id: string }) {
  const key = useAsync(() => admin().GET('/admin/api-keys/{id}', { params: { path: { id } } }).then(unwrap), [id]);
  const tiers = useAsync(() => admin().GET('/admin/tiers').then(unwrap), []);
  const [editing, setEditing] = useState(false);
  const [rotated, setRotated] = useState<CreatedAPIKey | undefined>();
  const [current, setCurrent] = useState<APIKey | undefined>();
  const k = current?.id === id ? current : key.data;

  const path = { params: { path: { id } } };
  const act = async (p: Promise<{ data?: APIKey; error?: unknown; response: Response }>): Promise<void> => {
    setCurrent(unwrap(await p));
  };

  return (
    <section aria-labelledby="key-title">
      <p class="crumbs">
        <Link href="/keys">← {t('nav.keys')}</Link>
      </p>
      {key.error && !k && <ErrorBox error={key.error} onRetry={key.reload} />}
      {!k && key.loading && <Loading />}
      {k && (
        <>
          <div class="page-head">
            <h1 id="key-title">
              {k.name} <StatusBadge k={k} />
            </h1>
            <div class="actions">
              <button type="button" onClick={() => setEditing(true)}>
                {t('action.edit')}
              </button>
              {k.is_active ? (
                <ConfirmButton
                  label={t('key.disable')}
                  title={t('key.disable')}
                  message={t('key.disableConfirm', { name: k.name })}
                  danger
                  onConfirm={() => act(admin().POST('/admin/api-keys/{id}/disable', path))}
                />
              ) : (
                <ConfirmButton
                  label={t('key.enable')}
                  title={t('key.enable')}
                  message={t('key.enableConfirm', { name: k.name })}
                  onConfirm={() => act(admin().POST('/admin/api-keys/{id}/enable', path))}
                />
              )}
              <ConfirmButton
                label={t('key.rotate')}
                title={t('key.rotate')}
                message={t('key.rotateConfirm', { name: k.name })}
                danger
                onConfirm={async () => {
                  const r = unwrap(await admin().POST('/admin/api-keys/{id}/rotate', path));
                  setRotated(r);
                  setCurrent(r);
                }}
              />
              <ConfirmButton
                label={t('key.delete')}
                title={t('key.delete')}
                message={t('key.deleteConfirm', { name: k.name })}
                danger
                onConfirm={async () => {
                  unwrap(await admin().DELETE('/admin/api-keys/{id}', path));
                  navigate('/keys');
                }}
              />
            </div>
          </div>
          <KeyFacts k={k} />
          <Dialog open={editing} wide title={t('key.editTitle', { name: k.name })} onClose={() => setEditing(false)}>
            <KeyForm
              idPrefix="edit"
              initial={valuesOf(k)}
              tiers={tiers.data?.data}
              creating={false}
              submitLabel={t('action.save')}
              onCancel={() => setEditing(false)}
              onSubmit={async (v) => {
                const req = toUpdate(v, k);
                if (typeof req === 'string') throw new Error(req);
                if (Object.keys(req).length > 0) {
                  setCurrent(unwrap(await admin().PATCH('/admin/api-keys/{id}', { ...path, body: req })));
                }
                setEditing(false);
              }}
            />
          </Dialog>
          <Dialog open={!!rotated} wide title={t('secret.rotatedTitle')} onClose={() => setRotated(undefined)}>
            {rotated && <SecretOnce created={rotated} onDone={() => setRotated(undefined)} />}
          </Dialog>
          <KeyBudgets id={id} name={k.name} version={k.updated_at} />
          <KeyUsage id={id} />
          <RecentLogs id={id} />
        </>
      )}
    </section>
  );
}

function KeyFacts({ k }: { k: APIKey }) {
  return (
    <dl class="facts">
      <dt>{t('key.id')}</dt>
      <dd>
        <code>{k.id}</code>
      </dd>
      <dt>{t('key.prefix')}</dt>
      <dd>
        <code>{k.key_prefix}</code>
      </dd>
      <dt>{t('key.description')}</dt>
      <dd>{k.description || '—'}</dd>
      <dt>{t('key.tokens')}</dt>
      <dd>
        <UsageBar used={k.tokens_used} limit={k.token_limit} label={t('key.tokensOf', { name: k.name })} />
      </dd>
      <dt>{t('key.tier')}</dt>
      <dd>
        <Link href="/tiers">{k.rate_limit_tier}</Link>
      </dd>
      <dt>{t('key.expires')}</dt>
      <dd>{k.expires_at ? `${dateTime(k.expires_at)} (${relative(k.expires_at)})` : t('key.never')}</dd>
      <dt>{t('key.allowedIps')}</dt>
      <dd>{k.allowed_ips.length ? k.allowed_ips.join(', ') : t('key.any')}</dd>
      <dt>{t('key.allowedDomains')}</dt>
      <dd>{k.allowed_domains.length ? k.allowed_domains.join(', ') : t('key.any')}</dd>
      <dt>{t('key.allowedModels')}</dt>
      <dd>{k.allowed_models?.length ? k.allowed_models.join(', ') : t('key.any')}</dd>
      <dt>{t('key.upstreamGroup')}</dt>
      <dd>
        <Link href="/upstreams">{k.upstream_group || t('upstreams.defaultGroup')}</Link>
      </dd>
      <dt>{t('key.lastUsed')}</dt>
      <dd>{k.last_used_at ? `${dateTime(k.last_used_at)} (${relative(k.last_used_at)})` : t('key.never')}</dd>
      <dt>{t('key.created')}</dt>
      <dd>{dateTime(k.created_at)}</dd>
      <dt>{t('key.updated')}</dt>
      <dd>{dateTime(k.updated_at)}</dd>
    </dl>
  );
}

/**
 * The budgets as admission sees them now, from the key's quota view. It is
 * fetched again after an edit (version is the key's updated_at) and when a
 * window resets.
 */
function KeyBudgets({ id, name, version }: { id: string; name: string; version: string }) {
  const q = useAsync(
    () => admin().GET('/admin/api-keys/{id}/quota', { params: { path: { id } } }).then(unwrap),
    [id, version],
  );
  return (
    <section aria-labelledby="key-budgets-title">
      <h2 id="key-budgets-title">{t('key.budgets')}</h2>
      {q.error && <ErrorBox error={q.error} onRetry={q.reload} />}
      {!q.data && q.loading && <Loading />}
      {q.data && <BudgetList budgets={q.data.budgets ?? []} name={name} onStale={q.reload} />}
    </section>
  );
}

function KeyUsage({ id }: { id: string }) {
  const [days, setDays] = useState<RangeDays>(30);
  const range = lastDays(days);
  const q = useAsync(async () => {
    const get = (group_by: 'day' | 'model') =>
      admin()
        .GET('/admin/usage', { params: { query: { key_id: id, from: range.from, to: range.to, group_by } } })
        .then(unwrap);
    const [byDay, byModel] = await Promise.all([get('day'), get('model')]);
    return { byDay, byModel };
  }, [id, range.from, range.to]);
  return (
    <section aria-labelledby="key-usage-title">
      <div class="page-head">
        <h2 id="key-usage-title">{t('key.usage')}</h2>
        <RangePicker value={days} onChange={setDays} />
      </div>
      {q.error && <ErrorBox error={q.error} onRetry={q.reload} />}
      {!q.data && q.loading && <Loading />}
      {q.data && (
        <>
          <TotalsStats totals={q.data.byDay.totals} />
          <DailyCharts days={fillDays(range.from, range.to, q.data.byDay.groups.map((g) => ({ ...g, key: g.group })))} />
          <h3>{t('key.perModel')}</h3>
          <ModelTable caption={t('key.perModel')} rows={q.data.byModel.groups.map((g) => ({ ...g, model: g.group }))} />
          <h3>{t('overview.costByClass')}</h3>
          <CostTable totals={q.data.byDay.totals} caption={t('overview.costByClassCaption')} />
        </>
      )}
    </section>
  );
}

function RecentLogs({ id }: { id: string }) {
  const q = useAsync(
    () => admin().GET('/admin/usage/logs', { params: { query: { key_id: id, limit: RECENT } } }).then(unwrap),
    [id],
  );
  return (
    <section aria-labelledby="key-logs-title">
      <div class="page-head">
        <h2 id="key-logs-title">{t('key.recent')}</h2>
        <Link href={`/logs?key_id=${encodeURIComponent(id)}`}>{t('key.allLogs')}</Link>
      </div>
      {q.error && <ErrorBox error={q.error} onRetry={q.reload} />}
      {!q.data && q.loading && <Loading />}
      {q.data && <LogTable rows={q.data.data} showKey={false} caption={t('key.recent')} />}
    </section>
  );
}
