import { useEffect, useState } from 'preact/hooks';
import { admin, asError, unwrap, type UsageLog } from '../api/client';
import { t } from '../i18n';
import { fromLocalInput, num, toLocalInput } from '../format';
import { navigate, useLocation } from '../router';
import { ErrorBox, Loading } from '../components/ui';
import { LogTable } from '../components/logs';
import { download, logsToCSV } from '../csv';

const PAGE = 100;
const EXPORT_PAGE = 500;
/** An export stops here; narrow the filters for more. */
export const EXPORT_MAX = 50_000;

type Filters = {
  key_id: string;
  status: string;
  model: string;
  upstream: string;
  /** 'true' or '' (URL text, like the others). */
  refusals_only: string;
  from: string;
  to: string;
};

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function readFilters(q: URLSearchParams): Filters {
  return {
    key_id: q.get('key_id') ?? '',
    status: q.get('status') ?? '',
    model: q.get('model') ?? '',
    upstream: q.get('upstream') ?? '',
    refusals_only: q.get('refusals_only') === 'true' ? 'true' : '',
    from: q.get('from') ?? '',
    to: q.get('to') ?? '',
  };
}

/** The server-side filters of GET /admin/usage/logs; every filter is applied by the relay. */
function query(f: Filters, cursor?: string, limit = PAGE) {
  return {
    limit,
    ...(f.key_id ? { key_id: f.key_id } : {}),
    ...(f.status ? { status: Number(f.status) } : {}),
    ...(f.model ? { model: f.model } : {}),
    ...(f.upstream ? { upstream: f.upstream } : {}),
    ...(f.refusals_only === 'true' ? { refusals_only: true } : {}),
    ...(f.from ? { from: f.from } : {}),
    ...(f.to ? { to: f.to } : {}),
    ...(cursor ? { cursor } : {}),
  };
}

/** Request logs across keys: GET /admin/usage/logs with the server's filters. */
export function Logs() {
  const { query: q } = useLocation();
  const applied = readFilters(q);
  const appliedKey = JSON.stringify(applied);
  const [form, setForm] = useState<Filters>(applied);
  const [rows, setRows] = useState<UsageLog[]>([]);
  const [next, setNext] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const [err, setErr] = useState<Error | undefined>();
  const [formErr, setFormErr] = useState('');
  const [exporting, setExporting] = useState<number | null>(null);
  const [exportNote, setExportNote] = useState('');

  const load = async (cursor?: string): Promise<void> => {
    setLoading(true);
    setErr(undefined);
    try {
      const page = unwrap(await admin().GET('/admin/usage/logs', { params: { query: query(applied, cursor) } }));
      setRows((r) => (cursor ? [...r, ...page.data] : page.data));
      setNext(page.next_cursor);
    } catch (e) {
      setErr(asError(e));
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    setForm(applied);
    setRows([]);
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [appliedKey]);

  const apply = (e: Event): void => {
    e.preventDefault();
    const f = {
      ...form,
      key_id: form.key_id.trim(),
      status: form.status.trim(),
      model: form.model.trim(),
      upstream: form.upstream.trim(),
    };
    if (f.key_id && !UUID.test(f.key_id)) return setFormErr(t('logs.badKey'));
    if (f.status && !/^[1-5]\d\d$/.test(f.status)) return setFormErr(t('logs.badStatus'));
    setFormErr('');
    const p = new URLSearchParams();
    for (const [k, v] of Object.entries(f)) if (v) p.set(k, v);
    const s = p.toString();
    navigate(`/logs${s ? `?${s}` : ''}`);
  };

  const exportCSV = async (): Promise<void> => {
    setExporting(0);
    setExportNote('');
    setErr(undefined);
    try {
      const all: UsageLog[] = [];
      let cursor: string | undefined;
      do {
        const page = unwrap(
          await admin().GET('/admin/usage/logs', { params: { query: query(applied, cursor, EXPORT_PAGE) } }),
        );
        all.push(...page.data);
        setExporting(all.length);
        cursor = page.next_cursor ?? undefined;
      } while (cursor && all.length < EXPORT_MAX);
      const rowsOut = all.slice(0, EXPORT_MAX);
      download(`relay-logs-${new Date().toISOString().replace(/[:.]/g, '-')}.csv`, logsToCSV(rowsOut));
      setExportNote(
        cursor ? t('logs.exportCapped', { n: num(rowsOut.length) }) : t('logs.exported', { n: num(rowsOut.length) }),
      );
    } catch (e) {
      setErr(asError(e));
    } finally {
      setExporting(null);
    }
  };

  const set = (k: keyof Filters) => (e: Event) => setForm({ ...form, [k]: (e.target as HTMLInputElement).value });

  return (
    <section aria-labelledby="logs-title">
      <div class="page-head">
        <h1 id="logs-title">{t('logs.title')}</h1>
        <button type="button" onClick={exportCSV} disabled={exporting !== null}>
          {exporting !== null ? t('logs.exporting', { n: num(exporting) }) : t('logs.export')}
        </button>
      </div>
      {exportNote && (
        <p class="notice" role="status">
          {exportNote}
        </p>
      )}
      <form class="filters" onSubmit={apply} aria-label={t('logs.filters')}>
        <div class="field">
          <label for="logs-key">{t('log.keyId')}</label>
          <input id="logs-key" class="mono" value={form.key_id} onInput={set('key_id')} placeholder="00000000-…" />
        </div>
        <div class="field narrow">
          <label for="logs-status">{t('log.status')}</label>
          <input id="logs-status" inputMode="numeric" maxLength={3} value={form.status} onInput={set('status')} placeholder="429" />
        </div>
        <div class="field">
          <label for="logs-model">{t('log.model')}</label>
          <input
            id="logs-model"
            maxLength={256}
            spellcheck={false}
            value={form.model}
            onInput={set('model')}
            placeholder="claude-sonnet-4-5"
            aria-describedby="logs-exact-hint"
          />
        </div>
        <div class="field">
          <label for="logs-upstream">{t('log.upstream')}</label>
          <input
            id="logs-upstream"
            maxLength={256}
            spellcheck={false}
            value={form.upstream}
            onInput={set('upstream')}
            aria-describedby="logs-exact-hint"
          />
        </div>
        <div class="field">
          <label for="logs-from">{t('logs.from')}</label>
          <input
            id="logs-from"
            type="datetime-local"
            value={toLocalInput(form.from)}
            onInput={(e) => setForm({ ...form, from: fromLocalInput((e.target as HTMLInputElement).value) ?? '' })}
          />
        </div>
        <div class="field">
          <label for="logs-to">{t('logs.to')}</label>
          <input
            id="logs-to"
            type="datetime-local"
            value={toLocalInput(form.to)}
            onInput={(e) => setForm({ ...form, to: fromLocalInput((e.target as HTMLInputElement).value) ?? '' })}
          />
        </div>
        <div class="field check">
          <label for="logs-refusals">
            <input
              id="logs-refusals"
              type="checkbox"
              checked={form.refusals_only === 'true'}
              onChange={(e) => setForm({ ...form, refusals_only: (e.target as HTMLInputElement).checked ? 'true' : '' })}
            />{' '}
            {t('logs.refusalsOnly')}
          </label>
        </div>
        <div class="field buttons">
          <button type="submit" class="primary">
            {t('logs.apply')}
          </button>
          <button
            type="button"
            onClick={() => {
              setFormErr('');
              navigate('/logs');
            }}
          >
            {t('logs.reset')}
          </button>
        </div>
      </form>
      <small id="logs-exact-hint" class="hint filters-hint">
        {t('logs.exactHint')}
      </small>
      {formErr && (
        <p class="state error" role="alert">
          {formErr}
        </p>
      )}
      {err && <ErrorBox error={err} onRetry={() => void load()} />}
      {rows.length === 0 && loading && <Loading />}
      {!(rows.length === 0 && (loading || err)) && (
        <LogTable rows={rows} showKey caption={t('logs.title')} />
      )}
      {next && (
        <p class="pager">
          <button type="button" disabled={loading} onClick={() => void load(next)}>
            {loading ? t('state.loading') : t('logs.more')}
          </button>
        </p>
      )}
    </section>
  );
}
