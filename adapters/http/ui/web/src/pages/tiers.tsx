import { useState } from 'preact/hooks';
import { admin, unwrap, type PutTierRequest, type Tier } from '../api/client';
import { useAsync } from '../hooks';
import { t } from '../i18n';
import { dateTime, num, period } from '../format';
import { ConfirmButton, Dialog, Empty, ErrorBox, Loading } from '../components/ui';

type TierForm = { name: string; requests: string; period: string; tokens: string; maxConcurrency: string };

const NAME = /^[a-z0-9_-]{1,64}$/;

function formOf(x?: Tier): TierForm {
  return {
    name: x?.name ?? '',
    requests: x ? String(x.requests) : '100',
    period: x ? String(x.period) : '60',
    tokens: x?.tokens ? String(x.tokens) : '',
    maxConcurrency: x?.max_concurrency ? String(x.max_concurrency) : '',
  };
}

export function toPut(f: TierForm): PutTierRequest | string {
  const int = (s: string): number | null => (/^\d+$/.test(s.trim()) ? Number(s.trim()) : null);
  const requests = int(f.requests);
  const per = int(f.period);
  if (requests === null || requests < 1) return t('tiers.badRequests');
  if (per === null || per < 1) return t('tiers.badPeriod');
  const req: PutTierRequest = { requests, period: per, tokens: null, max_concurrency: null };
  if (f.tokens.trim()) {
    const n = int(f.tokens);
    if (n === null || n < 1) return t('tiers.badTokens');
    req.tokens = n;
  }
  if (f.maxConcurrency.trim()) {
    const n = int(f.maxConcurrency);
    if (n === null || n < 1) return t('tiers.badConcurrency');
    req.max_concurrency = n;
  }
  return req;
}

/** Rate-limit tiers: GET /admin/tiers, PUT and DELETE /admin/tiers/{name}. */
export function Tiers() {
  const list = useAsync(() => admin().GET('/admin/tiers').then(unwrap), []);
  const [editing, setEditing] = useState<{ tier?: Tier } | undefined>();
  const rows = list.data?.data ?? [];
  return (
    <section aria-labelledby="tiers-title">
      <div class="page-head">
        <h1 id="tiers-title">{t('tiers.title')}</h1>
        <button type="button" class="primary" onClick={() => setEditing({})}>
          {t('tiers.new')}
        </button>
      </div>
      <p class="muted small">{t('tiers.intro')}</p>
      {list.error && <ErrorBox error={list.error} onRetry={list.reload} />}
      {!list.data && list.loading && <Loading />}
      {list.data && rows.length === 0 && <Empty />}
      {rows.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">{t('tiers.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('tiers.name')}</th>
                <th scope="col" class="num">{t('tiers.requests')}</th>
                <th scope="col" class="num">{t('tiers.tokens')}</th>
                <th scope="col" class="num">{t('tiers.maxConcurrency')}</th>
                <th scope="col">{t('key.updated')}</th>
                <th scope="col">
                  <span class="sr-only">{t('tiers.actions')}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((x) => (
                <tr key={x.name}>
                  <th scope="row">{x.name}</th>
                  <td class="num">{t('tiers.perPeriod', { n: num(x.requests), period: period(x.period) })}</td>
                  <td class="num">
                    {x.tokens ? t('tiers.perPeriod', { n: num(x.tokens), period: period(x.period) }) : t('tiers.noLimit')}
                  </td>
                  <td class="num">{x.max_concurrency ? num(x.max_concurrency) : t('tiers.noLimit')}</td>
                  <td>{dateTime(x.updated_at)}</td>
                  <td class="actions">
                    <button type="button" aria-label={t('tiers.editNamed', { name: x.name })} onClick={() => setEditing({ tier: x })}>
                      {t('action.edit')}
                    </button>
                    <ConfirmButton
                      label={t('action.delete')}
                      title={t('tiers.deleteNamed', { name: x.name })}
                      message={t('tiers.deleteConfirm', { name: x.name })}
                      danger
                      onConfirm={async () => {
                        unwrap(await admin().DELETE('/admin/tiers/{name}', { params: { path: { name: x.name } } }));
                        list.reload();
                      }}
                    />
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Dialog
        open={!!editing}
        title={editing?.tier ? t('tiers.editNamed', { name: editing.tier.name }) : t('tiers.new')}
        onClose={() => setEditing(undefined)}
      >
        {editing && (
          <TierEditor
            tier={editing.tier}
            onDone={() => {
              setEditing(undefined);
              list.reload();
            }}
            onCancel={() => setEditing(undefined)}
          />
        )}
      </Dialog>
    </section>
  );
}

function TierEditor({ tier, onDone, onCancel }: { tier?: Tier; onDone: () => void; onCancel: () => void }) {
  const [f, setF] = useState(formOf(tier));
  const [err, setErr] = useState<Error | undefined>();
  const [busy, setBusy] = useState(false);
  const set = (k: keyof TierForm) => (e: Event) => setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setErr(undefined);
    const name = f.name.trim();
    if (!NAME.test(name)) return setErr(new Error(t('tiers.badName')));
    const body = toPut(f);
    if (typeof body === 'string') return setErr(new Error(body));
    setBusy(true);
    try {
      unwrap(await admin().PUT('/admin/tiers/{name}', { params: { path: { name } }, body }));
      onDone();
    } catch (e2) {
      setErr(e2 instanceof Error ? e2 : new Error(String(e2)));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form onSubmit={submit}>
      <div class="field">
        <label for="tier-name">{t('tiers.name')}</label>
        <input
          id="tier-name"
          required
          readOnly={!!tier}
          pattern="[a-z0-9_\-]{1,64}"
          aria-describedby="tier-name-hint"
          value={f.name}
          onInput={set('name')}
        />
        <small id="tier-name-hint" class="hint">
          {t('tiers.nameHint')}
        </small>
      </div>
      <div class="grid2">
        <div class="field">
          <label for="tier-requests">{t('tiers.requestsField')}</label>
          <input id="tier-requests" inputMode="numeric" required value={f.requests} onInput={set('requests')} />
        </div>
        <div class="field">
          <label for="tier-period">{t('tiers.periodField')}</label>
          <input id="tier-period" inputMode="numeric" required value={f.period} onInput={set('period')} />
        </div>
        <div class="field">
          <label for="tier-tokens">{t('tiers.tokensField')}</label>
          <input id="tier-tokens" inputMode="numeric" placeholder={t('tiers.noLimit')} value={f.tokens} onInput={set('tokens')} />
        </div>
        <div class="field">
          <label for="tier-conc">{t('tiers.maxConcurrency')}</label>
          <input
            id="tier-conc"
            inputMode="numeric"
            placeholder={t('tiers.noLimit')}
            value={f.maxConcurrency}
            onInput={set('maxConcurrency')}
          />
        </div>
      </div>
      {err && <ErrorBox error={err} />}
      <div class="actions">
        <button type="button" onClick={onCancel}>
          {t('action.cancel')}
        </button>
        <button type="submit" class="primary" disabled={busy}>
          {t('action.save')}
        </button>
      </div>
    </form>
  );
}
