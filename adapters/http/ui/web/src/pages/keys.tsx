import { useEffect, useState } from 'preact/hooks';
import { admin, asError, unwrap, type APIKey, type CreatedAPIKey, type Schemas } from '../api/client';
import { useAsync, useDebounced, useNow, useReloadAt } from '../hooks';
import { t } from '../i18n';
import { dateTime, num, relative, shortId } from '../format';
import { Link } from '../router';
import { ConfirmButton, Dialog, Empty, ErrorBox, Loading, StatusBadge, UsageBar } from '../components/ui';
import { KeyForm, SecretOnce, toCreate, valuesOf } from '../components/keyform';
import { BudgetBars, BudgetLimits } from '../components/budgets';

const PAGE = 50;
/** The most ids one POST /admin/api-keys/bulk takes. */
export const BULK_MAX = 500;

type Active = '' | 'true' | 'false';
type BulkAction = Schemas['BulkKeysRequest']['action'];
type BulkDone = { action: BulkAction; ok: number; changed: number; missing: string[] };

/**
 * The key list: GET /admin/api-keys, paginated and filtered on the server.
 * Each key comes with its quota view (tokens used and held, every budget's
 * spend and reset), read by the relay for the whole page at once, so the
 * bars and countdowns cost no call per key. A key whose view the relay
 * could not read shows its stored tokens and its budget limits.
 */
export function Keys() {
  const [name, setName] = useState('');
  const [active, setActive] = useState<Active>('');
  const search = useDebounced(name.trim(), 300);
  // The cursors of the pages before this one, for "previous".
  const [cursors, setCursors] = useState<string[]>([]);
  const [cursor, setCursor] = useState<string | undefined>();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [creating, setCreating] = useState(false);
  const [created, setCreated] = useState<CreatedAPIKey | undefined>();
  const [bulkErr, setBulkErr] = useState<Error | undefined>();
  const [bulkDone, setBulkDone] = useState<BulkDone | undefined>();

  useEffect(() => {
    setCursor(undefined);
    setCursors([]);
    setSelected(new Set());
  }, [search, active]);

  const list = useAsync(
    () =>
      admin()
        .GET('/admin/api-keys', {
          params: {
            query: {
              limit: PAGE,
              ...(search ? { name: search } : {}),
              ...(active ? { active: active === 'true' } : {}),
              ...(cursor ? { cursor } : {}),
            },
          },
        })
        .then(unwrap),
    [search, active, cursor],
  );
  const tiers = useAsync(() => admin().GET('/admin/tiers').then(unwrap), []);
  const rows = list.data?.data ?? [];
  // One clock for every countdown of the page; the page is fetched again
  // once a budget window has reset.
  const resets = rows.flatMap((k) => (k.quota?.budgets ?? []).map((b) => b.resets_at));
  const now = useNow(resets.some(Boolean));
  useReloadAt(resets, now, list.reload);

  const toggle = (id: string): void => {
    const s = new Set(selected);
    if (s.has(id)) s.delete(id);
    else s.add(id);
    setSelected(s);
  };
  const allOnPage = rows.length > 0 && rows.every((k) => selected.has(k.id));

  // POST /admin/api-keys/bulk, BULK_MAX ids a call; each id is answered ok
  // or not_found. An error stops there and is shown with what was done
  // before it (done stays done, and acting again is harmless).
  const bulk = async (action: BulkAction): Promise<void> => {
    setBulkErr(undefined);
    setBulkDone(undefined);
    const ids = [...selected];
    const done: BulkDone = { action, ok: 0, changed: 0, missing: [] };
    try {
      for (let i = 0; i < ids.length; i += BULK_MAX) {
        const r = unwrap(await admin().POST('/admin/api-keys/bulk', { body: { action, ids: ids.slice(i, i + BULK_MAX) } }));
        done.ok += r.ok;
        for (const x of r.results) {
          if (x.changed) done.changed++;
          if (x.result === 'not_found') done.missing.push(rows.find((k) => k.id === x.id)?.name ?? shortId(x.id));
        }
      }
    } catch (e) {
      setBulkErr(asError(e));
    }
    if (done.ok > 0 || done.missing.length > 0) setBulkDone(done);
    setSelected(new Set());
    list.reload();
  };

  return (
    <section aria-labelledby="keys-title">
      <div class="page-head">
        <h1 id="keys-title">{t('keys.title')}</h1>
        <button type="button" class="primary" onClick={() => setCreating(true)}>
          {t('keys.create')}
        </button>
      </div>
      <form class="filters" role="search" onSubmit={(e) => e.preventDefault()}>
        <div class="field">
          <label for="keys-search">{t('keys.search')}</label>
          <input
            id="keys-search"
            type="search"
            maxLength={200}
            placeholder={t('keys.searchPlaceholder')}
            value={name}
            onInput={(e) => setName((e.target as HTMLInputElement).value)}
          />
        </div>
        <div class="field">
          <label for="keys-active">{t('keys.status')}</label>
          <select id="keys-active" value={active} onChange={(e) => setActive((e.target as HTMLSelectElement).value as Active)}>
            <option value="">{t('keys.all')}</option>
            <option value="true">{t('key.status.active')}</option>
            <option value="false">{t('key.status.disabled')}</option>
          </select>
        </div>
      </form>

      {selected.size > 0 && (
        <div class="bulk" role="region" aria-label={t('keys.bulk')}>
          <span>{t('keys.selected', { n: selected.size })}</span>
          <ConfirmButton
            label={t('keys.bulkDisable')}
            title={t('keys.bulkDisable')}
            message={t('keys.bulkDisableConfirm', { n: selected.size })}
            danger
            onConfirm={() => bulk('disable')}
          />
          <ConfirmButton
            label={t('keys.bulkEnable')}
            title={t('keys.bulkEnable')}
            message={t('keys.bulkEnableConfirm', { n: selected.size })}
            onConfirm={() => bulk('enable')}
          />
          <button type="button" onClick={() => setSelected(new Set())}>
            {t('keys.clearSelection')}
          </button>
        </div>
      )}
      {bulkDone && (
        <p class="state done" role="status">
          {t(bulkDone.action === 'disable' ? 'keys.bulkDisabled' : 'keys.bulkEnabled', { n: bulkDone.ok, changed: bulkDone.changed })}
          {bulkDone.missing.length > 0 && <> {t('keys.bulkMissing', { n: bulkDone.missing.length, names: bulkDone.missing.join(', ') })}</>}
        </p>
      )}
      {bulkErr && <ErrorBox error={bulkErr} />}

      {list.error && <ErrorBox error={list.error} onRetry={list.reload} />}
      {!list.data && list.loading && <Loading />}
      {list.data && rows.length === 0 && <Empty>{search || active ? t('keys.noMatch') : t('keys.none')}</Empty>}
      {rows.length > 0 && (
        <div class="table-wrap" aria-busy={list.loading}>
          <table class="keys">
            <caption class="sr-only">{t('keys.title')}</caption>
            <thead>
              <tr>
                <th scope="col">
                  <input
                    type="checkbox"
                    aria-label={t('keys.selectAll')}
                    checked={allOnPage}
                    onChange={() => {
                      const s = new Set(selected);
                      for (const k of rows) {
                        if (allOnPage) s.delete(k.id);
                        else s.add(k.id);
                      }
                      setSelected(s);
                    }}
                  />
                </th>
                <th scope="col">{t('key.name')}</th>
                <th scope="col">{t('key.prefix')}</th>
                <th scope="col">{t('key.tier')}</th>
                <th scope="col">{t('keys.status')}</th>
                <th scope="col">{t('key.tokens')}</th>
                <th scope="col">{t('key.budgets')}</th>
                <th scope="col">{t('key.lastUsed')}</th>
                <th scope="col">{t('key.expires')}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((k) => (
                <KeyRow key={k.id} k={k} now={now} checked={selected.has(k.id)} onToggle={() => toggle(k.id)} />
              ))}
            </tbody>
          </table>
        </div>
      )}
      {list.data && (cursors.length > 0 || list.data.next_cursor) && (
        <nav class="pager" aria-label={t('pager.label')}>
          <button
            type="button"
            disabled={cursors.length === 0}
            onClick={() => {
              const prev = [...cursors];
              const c = prev.pop();
              setCursors(prev);
              setCursor(c || undefined);
            }}
          >
            {t('pager.prev')}
          </button>
          <span>{t('pager.page', { n: cursors.length + 1 })}</span>
          <button
            type="button"
            disabled={!list.data.next_cursor}
            onClick={() => {
              setCursors([...cursors, cursor ?? '']);
              setCursor(list.data?.next_cursor ?? undefined);
            }}
          >
            {t('pager.next')}
          </button>
        </nav>
      )}

      <Dialog
        open={creating}
        wide
        title={created ? t('secret.title') : t('keys.create')}
        onClose={() => {
          setCreating(false);
          setCreated(undefined);
        }}
      >
        {created ? (
          <SecretOnce
            created={created}
            onDone={() => {
              setCreating(false);
              setCreated(undefined);
              list.reload();
            }}
          />
        ) : (
          <KeyForm
            idPrefix="create"
            initial={valuesOf()}
            tiers={tiers.data?.data}
            creating
            submitLabel={t('keys.createSubmit')}
            onCancel={() => setCreating(false)}
            onSubmit={async (v) => {
              const req = toCreate(v);
              if (typeof req === 'string') throw new Error(req);
              setCreated(unwrap(await admin().POST('/admin/api-keys', { body: req })));
              list.reload();
            }}
          />
        )}
      </Dialog>
    </section>
  );
}

function KeyRow({ k, now, checked, onToggle }: { k: APIKey; now: number; checked: boolean; onToggle: () => void }) {
  const q = k.quota;
  return (
    <tr class={k.is_active ? '' : 'inactive'}>
      <td>
        <input type="checkbox" aria-label={t('keys.select', { name: k.name })} checked={checked} onChange={onToggle} />
      </td>
      <th scope="row">
        <Link href={`/keys/${k.id}`}>{k.name}</Link>
        {k.description && <div class="muted small clip">{k.description}</div>}
      </th>
      <td>
        <code>{k.key_prefix}</code>
      </td>
      <td>{k.rate_limit_tier}</td>
      <td>
        <StatusBadge k={k} />
      </td>
      <td>
        <UsageBar used={q?.tokens_used ?? k.tokens_used} limit={k.token_limit} label={t('key.tokensOf', { name: k.name })} />
        {q && q.tokens_reserved > 0 && <div class="muted small">{t('key.tokensHeld', { n: num(q.tokens_reserved) })}</div>}
      </td>
      <td class="budget-cell">{q ? <BudgetBars budgets={q.budgets} name={k.name} now={now} /> : <BudgetLimits budgets={k.budgets} />}</td>
      <td title={dateTime(k.last_used_at)}>{k.last_used_at ? relative(k.last_used_at) : t('key.never')}</td>
      <td title={dateTime(k.expires_at)}>{k.expires_at ? relative(k.expires_at) : t('key.never')}</td>
    </tr>
  );
}
