import { useEffect, useState } from 'preact/hooks';
import { admin, unwrap, type APIKey, type CreatedAPIKey } from '../api/client';
import { useAsync, useDebounced } from '../hooks';
import { t } from '../i18n';
import { relative, dateTime } from '../format';
import { Link } from '../router';
import { ConfirmButton, Dialog, Empty, ErrorBox, Loading, StatusBadge, UsageBar } from '../components/ui';
import { KeyForm, SecretOnce, toCreate, valuesOf } from '../components/keyform';
import { BudgetLimits } from '../components/budgets';

const PAGE = 50;

type Active = '' | 'true' | 'false';

/**
 * The key list: GET /admin/api-keys, paginated and filtered on the server.
 *
 * Budgets show their limits only. The list answers each key's budgets
 * (window, limit, zone) but not their spend, which only the per-key quota
 * views (GET /admin/api-keys/{id}/quota) carry; fetching those for a page
 * would be one call per key (50 a page), the N+1 this dashboard avoids,
 * and each call reads the budget ledger. So the bars, with reserved spend
 * and reset countdowns, are on the key detail, one call for one key. Bars
 * here would need the list to carry the spend, e.g. APIKeyList items with
 * MoneyBudgetStatus (used_usd, reserved_usd, resets_at) instead of Budget.
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

  const toggle = (id: string): void => {
    const s = new Set(selected);
    if (s.has(id)) s.delete(id);
    else s.add(id);
    setSelected(s);
  };
  const allOnPage = rows.length > 0 && rows.every((k) => selected.has(k.id));

  // One call per key (the API has no bulk call); failures are listed.
  const bulk = async (enable: boolean): Promise<void> => {
    setBulkErr(undefined);
    const failed: string[] = [];
    for (const id of selected) {
      const p = { params: { path: { id } } };
      try {
        unwrap(await (enable ? admin().POST('/admin/api-keys/{id}/enable', p) : admin().POST('/admin/api-keys/{id}/disable', p)));
      } catch (e) {
        failed.push(`${rows.find((k) => k.id === id)?.name ?? id}: ${(e as Error).message}`);
      }
    }
    setSelected(new Set());
    list.reload();
    if (failed.length) setBulkErr(new Error(failed.join('\n')));
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
            onConfirm={() => bulk(false)}
          />
          <ConfirmButton
            label={t('keys.bulkEnable')}
            title={t('keys.bulkEnable')}
            message={t('keys.bulkEnableConfirm', { n: selected.size })}
            onConfirm={() => bulk(true)}
          />
          <button type="button" onClick={() => setSelected(new Set())}>
            {t('keys.clearSelection')}
          </button>
        </div>
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
                <KeyRow key={k.id} k={k} checked={selected.has(k.id)} onToggle={() => toggle(k.id)} />
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

function KeyRow({ k, checked, onToggle }: { k: APIKey; checked: boolean; onToggle: () => void }) {
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
        <UsageBar used={k.tokens_used} limit={k.token_limit} label={t('key.tokensOf', { name: k.name })} />
      </td>
      <td>
        <BudgetLimits budgets={k.budgets} />
      </td>
      <td title={dateTime(k.last_used_at)}>{k.last_used_at ? relative(k.last_used_at) : t('key.never')}</td>
      <td title={dateTime(k.expires_at)}>{k.expires_at ? relative(k.expires_at) : t('key.never')}</td>
    </tr>
  );
}
