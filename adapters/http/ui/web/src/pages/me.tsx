import { useState } from 'preact/hooks';
import { keyHolder, unwrap, type ApiClient, type Quota, type UsageLog } from '../api/client';
import { useAsync, useNow } from '../hooks';
import { t } from '../i18n';
import { countdown, dateTime, lastDays, num, period, relative } from '../format';
import { LangSwitch } from '../components/lang';
import { Empty, ErrorBox, Loading, StatusBadge, UsageBar } from '../components/ui';
import { CostTable, DailyCharts, fillDays, ModelTable, TotalsStats } from '../components/usage';
import { BudgetList } from '../components/budgets';
import { LogTable } from '../components/logs';

const PAGE = 50;

/**
 * The key holder's own page: paste a proxy key, see its quota, money
 * budgets, usage, cost and logs through /api/usage*, which only ever show that key's data. The key
 * is held in this component's state only — never in any storage — so a
 * reload forgets it.
 */
export function Me() {
  const [client, setClient] = useState<ApiClient | undefined>();
  const [quota, setQuota] = useState<{ q: Quota; at: number } | undefined>();
  const [draft, setDraft] = useState('');
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<Error | undefined>();

  const open = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setErr(undefined);
    const c = keyHolder(draft.trim());
    try {
      const q = unwrap(await c.GET('/api/usage/quota'));
      setQuota({ q, at: Date.now() });
      setClient(c);
      setDraft('');
    } catch (e2) {
      setErr(e2 instanceof Error ? e2 : new Error(String(e2)));
    } finally {
      setBusy(false);
    }
  };

  return (
    <div class="shell me">
      <header class="top">
        <span class="brand">{t('app.title')}</span>
        <div class="nav-end">
          <LangSwitch />
          {client && (
            <button
              type="button"
              onClick={() => {
                setClient(undefined);
                setQuota(undefined);
              }}
            >
              {t('me.forget')}
            </button>
          )}
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        <h1>{t('me.title')}</h1>
        {!client && (
          <form class="me-key" onSubmit={open}>
            <p class="muted">{t('me.intro')}</p>
            <div class="field">
              <label for="me-key">{t('me.key')}</label>
              <input
                id="me-key"
                type="password"
                class="mono"
                autocomplete="off"
                spellcheck={false}
                required
                placeholder="sk-proxy-…"
                aria-describedby="me-key-hint"
                value={draft}
                onInput={(e) => setDraft((e.target as HTMLInputElement).value)}
              />
              <small id="me-key-hint" class="hint">
                {t('me.keyHint')}
              </small>
            </div>
            {err && <ErrorBox error={err} />}
            <button type="submit" class="primary" disabled={busy || !draft.trim()}>
              {t('me.open')}
            </button>
          </form>
        )}
        {client && quota && (
          <>
            <QuotaView quota={quota.q} at={quota.at} />
            <section aria-labelledby="me-budgets-title">
              <h2 id="me-budgets-title">{t('key.budgets')}</h2>
              <BudgetList
                budgets={quota.q.budgets ?? []}
                name={t('me.title')}
                onStale={() => {
                  // A window reset: fetch the quota again (same key, same client).
                  client.GET('/api/usage/quota').then(unwrap).then(
                    (q) => setQuota({ q, at: Date.now() }),
                    () => undefined,
                  );
                }}
              />
            </section>
            <MyUsage client={client} />
            <MyLogs client={client} />
          </>
        )}
      </main>
    </div>
  );
}

function QuotaView({ quota: q, at }: { quota: Quota; at: number }) {
  const now = useNow();
  const left = (s: number): string => countdown(s - (now - at) / 1000);
  return (
    <section aria-labelledby="me-quota-title">
      <h2 id="me-quota-title">
        {t('me.quota')} <StatusBadge k={q} />
      </h2>
      <dl class="facts">
        <dt>{t('key.tokens')}</dt>
        <dd>
          <UsageBar used={q.tokens_used} limit={q.token_limit} label={t('me.quota')} />
        </dd>
        <dt>{t('me.reserved')}</dt>
        <dd>{num(q.tokens_reserved)}</dd>
        <dt>{t('me.remaining')}</dt>
        <dd>{q.tokens_remaining === null ? t('key.unlimited') : num(q.tokens_remaining)}</dd>
        <dt>{t('key.expires')}</dt>
        <dd>{q.expires_at ? `${dateTime(q.expires_at)} (${relative(q.expires_at)})` : t('key.never')}</dd>
        <dt>{t('key.tier')}</dt>
        <dd>{q.tier.name}</dd>
        <dt>{t('me.requestBudget')}</dt>
        <dd>
          {t('me.budget', {
            remaining: num(q.tier.requests.remaining),
            limit: num(q.tier.requests.limit),
            period: period(q.tier.requests.period),
          })}
          {q.tier.requests.remaining < q.tier.requests.limit && (
            <span class="muted"> · {t('me.fullIn', { t: left(q.tier.requests.reset_after_seconds) })}</span>
          )}
        </dd>
        {q.tier.tokens && (
          <>
            <dt>{t('me.tokenBudget')}</dt>
            <dd>
              {t('me.budget', {
                remaining: num(q.tier.tokens.remaining),
                limit: num(q.tier.tokens.limit),
                period: period(q.tier.tokens.period),
              })}
              {q.tier.tokens.remaining < q.tier.tokens.limit && (
                <span class="muted"> · {t('me.fullIn', { t: left(q.tier.tokens.reset_after_seconds) })}</span>
              )}
            </dd>
          </>
        )}
        {q.tier.concurrency && (
          <>
            <dt>{t('tiers.maxConcurrency')}</dt>
            <dd>{t('me.concurrency', { inFlight: num(q.tier.concurrency.in_flight), limit: num(q.tier.concurrency.limit) })}</dd>
          </>
        )}
      </dl>
    </section>
  );
}

function MyUsage({ client }: { client: ApiClient }) {
  const range = lastDays(30);
  const q = useAsync(async () => {
    const [daily, totals] = await Promise.all([
      client.GET('/api/usage/daily', { params: { query: range } }).then(unwrap),
      client.GET('/api/usage', { params: { query: range } }).then(unwrap),
    ]);
    return { daily, totals };
  }, [client, range.from]);
  return (
    <section aria-labelledby="me-usage-title">
      <h2 id="me-usage-title">{t('me.usage')}</h2>
      {q.error && <ErrorBox error={q.error} onRetry={q.reload} />}
      {!q.data && q.loading && <Loading />}
      {q.data && (
        <>
          <TotalsStats totals={q.data.totals} />
          {q.data.totals.requests === 0 ? (
            <Empty>{t('usage.noUsage')}</Empty>
          ) : (
            <DailyCharts days={fillDays(range.from, range.to, q.data.daily.data.map((d) => ({ ...d, key: d.date })))} />
          )}
          <h3>{t('key.perModel')}</h3>
          <ModelTable caption={t('key.perModel')} rows={q.data.totals.by_model} />
          <h3>{t('overview.costByClass')}</h3>
          <CostTable totals={q.data.totals} caption={t('overview.costByClassCaption')} />
        </>
      )}
    </section>
  );
}

function MyLogs({ client }: { client: ApiClient }) {
  const [rows, setRows] = useState<UsageLog[]>([]);
  const [cursor, setCursor] = useState<string | undefined>();
  const q = useAsync(async () => {
    const page = unwrap(await client.GET('/api/usage/logs', { params: { query: { limit: PAGE, ...(cursor ? { cursor } : {}) } } }));
    setRows((r) => (cursor ? [...r, ...page.data] : page.data));
    return page;
  }, [client, cursor]);
  return (
    <section aria-labelledby="me-logs-title">
      <h2 id="me-logs-title">{t('me.logs')}</h2>
      {q.error && <ErrorBox error={q.error} onRetry={q.reload} />}
      {rows.length === 0 && q.loading && <Loading />}
      {!(rows.length === 0 && q.loading) && !q.error && <LogTable rows={rows} showKey={false} caption={t('me.logs')} />}
      {q.data?.next_cursor && (
        <p class="pager">
          <button type="button" disabled={q.loading} onClick={() => setCursor(q.data?.next_cursor ?? undefined)}>
            {t('logs.more')}
          </button>
        </p>
      )}
    </section>
  );
}
