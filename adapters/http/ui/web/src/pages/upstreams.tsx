import { useEffect, useState } from 'preact/hooks';
import {
  admin,
  unwrap,
  type CreateUpstreamRequest,
  type RateLimitReading,
  type UpdateUpstreamRequest,
  type Upstream,
  type UpstreamHeadroom,
  type UpstreamModelState,
  type UpstreamProbe,
  type UpstreamTestResult,
} from '../api/client';
import { useAsync, useNow, useReloadAt } from '../hooks';
import { t } from '../i18n';
import { countdown, dateTime, ms, num, pct, relative, resetIn } from '../format';
import { ConfirmButton, Dialog, Empty, ErrorBox, Loading } from '../components/ui';

/** The list is fetched again this often while the page is open (one call for every upstream). */
export const REFRESH_MS = 10_000;

type State = Upstream['state'];

export type UpstreamForm = {
  name: string;
  url: string;
  apiKey: string;
  priority: string;
  weight: string;
  maxConcurrency: string;
  models: string;
  group: string;
  enabled: boolean;
};

const MAX_INT = 1_000_000;
const MAX_MODELS = 64;
const MAX_GROUP_BYTES = 64;

export function formOf(u?: Upstream): UpstreamForm {
  return {
    name: u?.name ?? '',
    url: u?.url ?? 'https://api.anthropic.com',
    apiKey: '',
    priority: u ? String(u.priority) : '0',
    weight: u ? String(u.weight) : '1',
    maxConcurrency: u?.max_concurrency ? String(u.max_concurrency) : '',
    models: (u?.models ?? []).join('\n'),
    group: u?.group ?? '',
    enabled: u?.enabled ?? true,
  };
}

function lines(s: string): string[] {
  return s
    .split(/[\n,]/)
    .map((x) => x.trim())
    .filter(Boolean);
}

/** UTF-8 bytes: the relay counts a group's length in bytes. */
export function bytes(s: string): number {
  return new TextEncoder().encode(s).length;
}

type Parsed = {
  name: string;
  url: string;
  priority: number;
  weight: number;
  maxConcurrency: number | null;
  models: string[];
  group: string;
};

/** The fields every upstream has, checked; or the first problem. */
function parse(f: UpstreamForm): Parsed | string {
  const int = (s: string): number | null => (/^\d+$/.test(s.trim()) ? Number(s.trim()) : null);
  const name = f.name.trim();
  if (!name || name.length > 200) return t('upstreams.badName');
  const url = f.url.trim();
  if (!/^https?:\/\/[^/\s]+/i.test(url)) return t('upstreams.badUrl');
  const priority = int(f.priority);
  if (priority === null || priority > MAX_INT) return t('upstreams.badPriority');
  const weight = int(f.weight);
  if (weight === null || weight < 1 || weight > MAX_INT) return t('upstreams.badWeight');
  let maxConcurrency: number | null = null;
  if (f.maxConcurrency.trim()) {
    const n = int(f.maxConcurrency);
    if (n === null || n > MAX_INT) return t('upstreams.badConcurrency');
    maxConcurrency = n === 0 ? null : n;
  }
  const models = lines(f.models);
  if (models.length > MAX_MODELS) return t('upstreams.tooManyModels', { n: MAX_MODELS });
  const group = f.group.trim();
  if (bytes(group) > MAX_GROUP_BYTES) return t('upstreams.groupTooLong', { n: MAX_GROUP_BYTES });
  return { name, url, priority, weight, maxConcurrency, models, group };
}

/** POST /admin/upstreams: the key is required; cap, models and group only when set. */
export function toCreate(f: UpstreamForm): CreateUpstreamRequest | string {
  const p = parse(f);
  if (typeof p === 'string') return p;
  const apiKey = f.apiKey.trim();
  if (!apiKey) return t('upstreams.keyRequired');
  const req: CreateUpstreamRequest = {
    name: p.name,
    url: p.url,
    api_key: apiKey,
    priority: p.priority,
    weight: p.weight,
    enabled: f.enabled,
  };
  if (p.maxConcurrency !== null) req.max_concurrency = p.maxConcurrency;
  if (p.models.length) req.models = p.models;
  if (p.group) req.group = p.group;
  return req;
}

/**
 * PATCH /admin/upstreams/{id}: only the fields that changed, so an edit
 * never undoes a concurrent change of another field; the key only when a
 * new one was typed.
 */
export function toUpdate(f: UpstreamForm, u: Upstream): UpdateUpstreamRequest | string {
  const p = parse(f);
  if (typeof p === 'string') return p;
  const req: UpdateUpstreamRequest = {};
  if (p.name !== u.name) req.name = p.name;
  if (p.url !== u.url) req.url = p.url;
  const apiKey = f.apiKey.trim();
  if (apiKey) req.api_key = apiKey;
  if (p.priority !== u.priority) req.priority = p.priority;
  if (p.weight !== u.weight) req.weight = p.weight;
  if (p.maxConcurrency !== (u.max_concurrency || null)) req.max_concurrency = p.maxConcurrency;
  if (p.models.join('\n') !== u.models.join('\n')) req.models = p.models;
  if (p.group !== u.group) req.group = p.group;
  if (f.enabled !== u.enabled) req.enabled = f.enabled;
  return req;
}

function stateClass(s: State): string {
  return s === 'healthy' ? 'on' : s === 'disabled' ? 'err' : 'warn';
}

/** A state with its reason, since when, and a countdown to its end while cooling or probing. */
function StateCell({
  s,
  now,
}: {
  s: Pick<UpstreamModelState, 'state' | 'state_reason' | 'state_since' | 'state_until'>;
  now: number;
}) {
  const until = s.state_until ? Date.parse(s.state_until) : NaN;
  return (
    <div class="up-state">
      <span class={`badge ${stateClass(s.state)}`}>{t(`upstreams.state.${s.state}` as const)}</span>
      {s.state_reason && <div class="small">{s.state_reason}</div>}
      {s.state_since && (
        <div class="muted small">
          <time dateTime={s.state_since} title={dateTime(s.state_since)}>
            {t('upstreams.since', { t: relative(s.state_since, now) })}
          </time>
        </div>
      )}
      {s.state_until && !Number.isNaN(until) && (s.state === 'cooling' || s.state === 'probing') && (
        <div class="small">
          <time dateTime={s.state_until} title={dateTime(s.state_until)}>
            {t(s.state === 'cooling' ? 'upstreams.coolingEnds' : 'upstreams.probeLost', {
              t: countdown((until - now) / 1000),
            })}
          </time>
        </div>
      )}
    </div>
  );
}

function Probe({ p, now }: { p: UpstreamProbe | null; now: number }) {
  if (!p) return <span class="muted">{t('upstreams.noProbe')}</span>;
  return (
    <div>
      <span class={`badge ${p.ok ? 'on' : 'err'}`}>{p.ok ? t('upstreams.probeOk') : t('upstreams.probeFailed')}</span>{' '}
      <time class="small" dateTime={p.at} title={dateTime(p.at)}>
        {relative(p.at, now)}
      </time>
      <div class="muted small">{p.model ?? t('upstreams.probeModels')}</div>
    </div>
  );
}

function Reading({ label, r, now }: { label: string; r: RateLimitReading | null; now: number }) {
  if (!r) return null;
  const ratio = r.limit > 0 ? r.remaining / r.limit : 0;
  const reset = r.reset ? Date.parse(r.reset) : NaN;
  return (
    <li class={ratio < 0.1 ? 'low' : ''}>
      {t('upstreams.remainingOf', { what: label, remaining: num(r.remaining), limit: num(r.limit) })}{' '}
      <span class="muted">({pct(ratio)})</span>
      {r.reset && !Number.isNaN(reset) && (
        <>
          {' · '}
          <time dateTime={r.reset} title={dateTime(r.reset)}>
            {reset > now ? t('upstreams.resetsIn', { t: resetIn((reset - now) / 1000) }) : t('upstreams.resetPassed')}
          </time>
        </>
      )}
    </li>
  );
}

/** The rate-limit headroom of the freshest answer: what is left of each limit, and when it is full again. */
function Headroom({ h, now }: { h: UpstreamHeadroom | null; now: number }) {
  if (!h || (!h.requests && !h.input_tokens && !h.output_tokens)) return <span class="muted">{t('upstreams.noHeadroom')}</span>;
  return (
    <div>
      <ul class="plain headroom">
        <Reading label={t('upstreams.hrRequests')} r={h.requests} now={now} />
        <Reading label={t('upstreams.hrInput')} r={h.input_tokens} now={now} />
        <Reading label={t('upstreams.hrOutput')} r={h.output_tokens} now={now} />
      </ul>
      <div class="muted small" title={dateTime(h.read_at)}>
        {h.model ? t('upstreams.readAtModel', { t: relative(h.read_at, now), model: h.model }) : t('upstreams.readAt', { t: relative(h.read_at, now) })}
      </div>
    </div>
  );
}

const COLUMNS = 16;

/**
 * The upstream pool: GET /admin/upstreams (every upstream with its live
 * state, fetched again every 10 s), create, edit, test, disable, enable and
 * delete through /admin/upstreams[/{id}[/test|disable|enable]].
 */
export function Upstreams() {
  const list = useAsync(() => admin().GET('/admin/upstreams').then(unwrap), []);
  const [editing, setEditing] = useState<{ up?: Upstream } | undefined>();
  const [open, setOpen] = useState<Set<string>>(new Set());
  const [tested, setTested] = useState<{ name: string; r: UpstreamTestResult } | undefined>();
  const rows = list.data?.data ?? [];
  const reload = list.reload;

  useEffect(() => {
    const id = setInterval(reload, REFRESH_MS);
    return () => clearInterval(id);
  }, [reload]);

  const timed = (x: Pick<UpstreamModelState, 'state' | 'state_until'>): string | null =>
    x.state === 'cooling' || x.state === 'probing' ? x.state_until : null;
  const now = useNow(rows.some((u) => timed(u) || u.headroom || u.models_state.some((m) => timed(m))));
  useReloadAt(rows.flatMap((u) => [timed(u), ...u.models_state.map(timed)]), now, reload);

  const toggle = (id: string): void => {
    const next = new Set(open);
    if (next.has(id)) next.delete(id);
    else next.add(id);
    setOpen(next);
  };
  const act = async (u: Upstream, what: 'disable' | 'enable'): Promise<void> => {
    const path = { params: { path: { id: u.id } } };
    unwrap(
      what === 'disable'
        ? await admin().POST('/admin/upstreams/{id}/disable', path)
        : await admin().POST('/admin/upstreams/{id}/enable', path),
    );
    reload();
  };

  return (
    <section aria-labelledby="upstreams-title">
      <div class="page-head">
        <h1 id="upstreams-title">{t('upstreams.title')}</h1>
        <button type="button" class="primary" onClick={() => setEditing({})}>
          {t('upstreams.new')}
        </button>
      </div>
      <p class="muted small">{t('upstreams.intro')}</p>
      {tested && (
        <p class={`notice ${tested.r.ok ? '' : 'bad'}`} role="status">
          {t('upstreams.tested', { name: tested.name })}{' '}
          <span class={`badge ${tested.r.ok ? 'on' : 'err'}`}>{tested.r.ok ? t('upstreams.testOk') : t('upstreams.testFailed')}</span>{' '}
          {tested.r.status === null ? t('upstreams.noStatus') : t('upstreams.status', { status: tested.r.status })} ·{' '}
          {ms(Math.round(tested.r.latency_ms))}
          {tested.r.message && <> · {tested.r.message}</>}
        </p>
      )}
      {list.error && <ErrorBox error={list.error} onRetry={reload} />}
      {!list.data && list.loading && <Loading />}
      {list.data && rows.length === 0 && <Empty>{t('upstreams.none')}</Empty>}
      {rows.length > 0 && (
        <div class="table-wrap">
          <table class="upstreams">
            <caption class="sr-only">{t('upstreams.title')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('upstreams.name')}</th>
                <th scope="col">{t('upstreams.url')}</th>
                <th scope="col">{t('upstreams.key')}</th>
                <th scope="col" class="num">{t('upstreams.priority')}</th>
                <th scope="col" class="num">{t('upstreams.weight')}</th>
                <th scope="col" class="num">{t('upstreams.maxConcurrency')}</th>
                <th scope="col">{t('upstreams.models')}</th>
                <th scope="col">{t('upstreams.group')}</th>
                <th scope="col">{t('upstreams.enabled')}</th>
                <th scope="col">{t('upstreams.stateCol')}</th>
                <th scope="col" class="num">{t('upstreams.inFlight')}</th>
                <th scope="col" class="num">{t('upstreams.recentErrors')}</th>
                <th scope="col">{t('upstreams.lastProbe')}</th>
                <th scope="col">{t('upstreams.headroom')}</th>
                <th scope="col" class="num">{t('upstreams.cacheHitRate')}</th>
                <th scope="col">
                  <span class="sr-only">{t('tiers.actions')}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((u) => (
                <UpstreamRow
                  key={u.id}
                  u={u}
                  now={now}
                  expanded={open.has(u.id)}
                  onToggle={() => toggle(u.id)}
                  onEdit={() => setEditing({ up: u })}
                  onTest={async () => {
                    setTested(undefined);
                    const r = unwrap(await admin().POST('/admin/upstreams/{id}/test', { params: { path: { id: u.id } } }));
                    setTested({ name: u.name, r });
                  }}
                  onDisable={() => act(u, 'disable')}
                  onEnable={() => act(u, 'enable')}
                  onDelete={async () => {
                    unwrap(await admin().DELETE('/admin/upstreams/{id}', { params: { path: { id: u.id } } }));
                    reload();
                  }}
                />
              ))}
            </tbody>
          </table>
        </div>
      )}
      <Dialog
        open={!!editing}
        wide
        title={editing?.up ? t('upstreams.editNamed', { name: editing.up.name }) : t('upstreams.new')}
        onClose={() => setEditing(undefined)}
      >
        {editing && (
          <UpstreamEditor
            up={editing.up}
            onDone={() => {
              setEditing(undefined);
              reload();
            }}
            onCancel={() => setEditing(undefined)}
          />
        )}
      </Dialog>
    </section>
  );
}

function UpstreamRow(props: {
  u: Upstream;
  now: number;
  expanded: boolean;
  onToggle: () => void;
  onEdit: () => void;
  onTest: () => Promise<void>;
  onDisable: () => Promise<void>;
  onEnable: () => Promise<void>;
  onDelete: () => Promise<void>;
}) {
  const { u, now } = props;
  const detailId = `up-models-${u.id}`;
  return (
    <>
      <tr class={u.enabled ? '' : 'inactive'}>
        <th scope="row">
          {u.name}
          <div class="muted small">
            <code>{u.id}</code>
            {!u.loaded && <> · {t('upstreams.notLoaded')}</>}
          </div>
        </th>
        <td class="clip" title={u.url}>
          {u.url}
        </td>
        <td>
          {u.api_key_last4 ? (
            <code aria-label={t('upstreams.keyEnding', { last4: u.api_key_last4 })}>…{u.api_key_last4}</code>
          ) : (
            '—'
          )}
        </td>
        <td class="num">{num(u.priority)}</td>
        <td class="num">{num(u.weight)}</td>
        <td class="num">{u.max_concurrency ? num(u.max_concurrency) : t('upstreams.noCap')}</td>
        <td>{u.models.length ? u.models.join(', ') : <span class="muted">{t('upstreams.everyModel')}</span>}</td>
        <td>{u.group || <span class="muted">{t('upstreams.defaultGroup')}</span>}</td>
        <td class="wrap">
          <span class={`badge ${u.enabled ? 'on' : 'off'}`}>{u.enabled ? t('common.yes') : t('common.no')}</span>
          {u.disabled_reason && <div class="small">{u.disabled_reason}</div>}
        </td>
        <td class="wrap">
          <StateCell s={u} now={now} />
        </td>
        <td class="num">{num(u.in_flight)}</td>
        <td class="num">{u.recent_errors === null ? '—' : num(u.recent_errors)}</td>
        <td>
          <Probe p={u.last_probe} now={now} />
        </td>
        <td>
          <Headroom h={u.headroom} now={now} />
        </td>
        <td class="num">{pct(u.cache_hit_rate)}</td>
        <td class="actions">
          <button
            type="button"
            aria-expanded={props.expanded}
            aria-controls={detailId}
            aria-label={t('upstreams.modelsOf', { name: u.name, n: u.models_state.length })}
            onClick={props.onToggle}
          >
            {t('upstreams.perModel', { n: u.models_state.length })}
          </button>
          <ConfirmButton
            label={t('upstreams.test')}
            title={t('upstreams.testNamed', { name: u.name })}
            message={t('upstreams.testConfirm', { name: u.name })}
            onConfirm={props.onTest}
          />
          <button type="button" aria-label={t('upstreams.editNamed', { name: u.name })} onClick={props.onEdit}>
            {t('action.edit')}
          </button>
          {u.enabled ? (
            <ConfirmButton
              label={t('upstreams.disable')}
              title={t('upstreams.disableNamed', { name: u.name })}
              message={t('upstreams.disableConfirm', { name: u.name })}
              danger
              onConfirm={props.onDisable}
            />
          ) : (
            <ConfirmButton
              label={t('upstreams.enable')}
              title={t('upstreams.enableNamed', { name: u.name })}
              message={t('upstreams.enableConfirm', { name: u.name })}
              onConfirm={props.onEnable}
            />
          )}
          <ConfirmButton
            label={t('action.delete')}
            title={t('upstreams.deleteNamed', { name: u.name })}
            message={t('upstreams.deleteConfirm', { name: u.name })}
            danger
            onConfirm={props.onDelete}
          />
        </td>
      </tr>
      {props.expanded && (
        <tr id={detailId} class="up-models">
          <td colSpan={COLUMNS}>
            {u.models_state.length === 0 ? (
              <p class="muted small">{t('upstreams.noModelState')}</p>
            ) : (
              <table>
                <caption>{t('upstreams.modelsCaption', { name: u.name })}</caption>
                <thead>
                  <tr>
                    <th scope="col">{t('usage.model')}</th>
                    <th scope="col">{t('upstreams.stateCol')}</th>
                    <th scope="col">{t('upstreams.lastProbe')}</th>
                    <th scope="col">{t('upstreams.headroom')}</th>
                  </tr>
                </thead>
                <tbody>
                  {u.models_state.map((m) => (
                    <tr key={m.model}>
                      <th scope="row">
                        <code>{m.model}</code>
                      </th>
                      <td class="wrap">
                        <StateCell s={m} now={now} />
                      </td>
                      <td>
                        <Probe p={m.last_probe} now={now} />
                      </td>
                      <td>
                        <Headroom h={m.headroom} now={now} />
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </td>
        </tr>
      )}
    </>
  );
}

function UpstreamEditor({ up, onDone, onCancel }: { up?: Upstream; onDone: () => void; onCancel: () => void }) {
  const [f, setF] = useState(formOf(up));
  const [err, setErr] = useState<Error | undefined>();
  const [busy, setBusy] = useState(false);
  const set = (k: Exclude<keyof UpstreamForm, 'enabled'>) => (e: Event) =>
    setF({ ...f, [k]: (e.target as HTMLInputElement).value });
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setErr(undefined);
    const body = up ? toUpdate(f, up) : toCreate(f);
    if (typeof body === 'string') return setErr(new Error(body));
    setBusy(true);
    try {
      if (!up) unwrap(await admin().POST('/admin/upstreams', { body: body as CreateUpstreamRequest }));
      else if (Object.keys(body).length > 0)
        unwrap(await admin().PATCH('/admin/upstreams/{id}', { params: { path: { id: up.id } }, body }));
      // The key is write-only: it is not kept once the relay has it.
      setF((x) => ({ ...x, apiKey: '' }));
      onDone();
    } catch (e2) {
      setErr(e2 instanceof Error ? e2 : new Error(String(e2)));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="upstream-form" onSubmit={submit}>
      <div class="grid2">
        <div class="field">
          <label for="up-name">{t('upstreams.name')}</label>
          <input id="up-name" required maxLength={200} value={f.name} onInput={set('name')} />
        </div>
        <div class="field">
          <label for="up-url">{t('upstreams.url')}</label>
          <input
            id="up-url"
            required
            inputMode="url"
            spellcheck={false}
            maxLength={2048}
            aria-describedby="up-url-hint"
            value={f.url}
            onInput={set('url')}
          />
          <small id="up-url-hint" class="hint">
            {t('upstreams.urlHint')}
          </small>
        </div>
      </div>
      <div class="field">
        <label for="up-key">{up ? t('upstreams.newKey') : t('upstreams.apiKey')}</label>
        <input
          id="up-key"
          type="password"
          required={!up}
          autocomplete="off"
          spellcheck={false}
          maxLength={512}
          aria-describedby="up-key-hint"
          value={f.apiKey}
          onInput={set('apiKey')}
        />
        <small id="up-key-hint" class="hint">
          {up
            ? up.api_key_last4
              ? t('upstreams.newKeyHintLast4', { last4: up.api_key_last4 })
              : t('upstreams.newKeyHint')
            : t('upstreams.apiKeyHint')}
        </small>
      </div>
      <div class="grid2">
        <div class="field">
          <label for="up-priority">{t('upstreams.priority')}</label>
          <input
            id="up-priority"
            inputMode="numeric"
            required
            aria-describedby="up-priority-hint"
            value={f.priority}
            onInput={set('priority')}
          />
          <small id="up-priority-hint" class="hint">
            {t('upstreams.priorityHint')}
          </small>
        </div>
        <div class="field">
          <label for="up-weight">{t('upstreams.weight')}</label>
          <input id="up-weight" inputMode="numeric" required aria-describedby="up-weight-hint" value={f.weight} onInput={set('weight')} />
          <small id="up-weight-hint" class="hint">
            {t('upstreams.weightHint')}
          </small>
        </div>
        <div class="field">
          <label for="up-conc">{t('upstreams.maxConcurrency')}</label>
          <input
            id="up-conc"
            inputMode="numeric"
            placeholder={t('upstreams.noCap')}
            aria-describedby="up-conc-hint"
            value={f.maxConcurrency}
            onInput={set('maxConcurrency')}
          />
          <small id="up-conc-hint" class="hint">
            {t('upstreams.concurrencyHint')}
          </small>
        </div>
        <div class="field">
          <label for="up-group">{t('upstreams.group')}</label>
          <input
            id="up-group"
            spellcheck={false}
            placeholder={t('upstreams.defaultGroup')}
            aria-describedby="up-group-hint"
            value={f.group}
            onInput={set('group')}
          />
          <small id="up-group-hint" class="hint">
            {t('upstreams.groupHint')}
          </small>
        </div>
      </div>
      <div class="field">
        <label for="up-models">{t('upstreams.models')}</label>
        <textarea
          id="up-models"
          rows={3}
          spellcheck={false}
          placeholder="claude-sonnet-*"
          aria-describedby="up-models-hint"
          value={f.models}
          onInput={set('models')}
        />
        <small id="up-models-hint" class="hint">
          {t('upstreams.modelsHint', { n: MAX_MODELS })}
        </small>
      </div>
      <div class="field check">
        <label>
          <input type="checkbox" checked={f.enabled} onChange={(e) => setF({ ...f, enabled: (e.target as HTMLInputElement).checked })} />
          {t('upstreams.enabledField')}
        </label>
      </div>
      {err && <ErrorBox error={err} />}
      <div class="actions">
        <button type="button" onClick={onCancel}>
          {t('action.cancel')}
        </button>
        <button type="submit" class="primary" disabled={busy}>
          {up ? t('action.save') : t('upstreams.create')}
        </button>
      </div>
    </form>
  );
}
