import { useState } from 'preact/hooks';
import { admin, asError, unwrap, type PriceEntry, type PriceRates, type Pricing as PricingView } from '../api/client';
import { useAsync } from '../hooks';
import { t } from '../i18n';
import { dateTime, num, rate, relative, times } from '../format';
import { Empty, ErrorBox, Loading } from '../components/ui';

type Mode = 'table' | 'models';

type Draft = { mode: Mode; text: string; version: string; comment: string };

const EMPTY: Draft = { mode: 'table', text: '', version: '', comment: '' };

/**
 * The price table: the current version (GET /admin/pricing, with the
 * unpriced-model policy and the unpriced models seen lately), every
 * version (GET /admin/pricing/versions) and a form to store a new one
 * (PUT /admin/pricing, or POST /admin/pricing/models for some entries).
 */
export function Pricing() {
  const cur = useAsync(() => admin().GET('/admin/pricing').then(unwrap), []);
  const versions = useAsync(() => admin().GET('/admin/pricing/versions').then(unwrap), []);
  const [draft, setDraft] = useState<Draft>(EMPTY);
  const [stored, setStored] = useState('');
  const [loadErr, setLoadErr] = useState<Error | undefined>();
  const p = cur.data;

  // A stored version's table, as it was stored, into the editor.
  const load = async (version: string): Promise<void> => {
    setLoadErr(undefined);
    try {
      const v = unwrap(await admin().GET('/admin/pricing/versions/{version}', { params: { path: { version } } }));
      setDraft({ ...EMPTY, mode: 'table', text: JSON.stringify(v.table, null, 2) });
      setStored('');
      document.getElementById('pricing-json')?.focus();
    } catch (e) {
      setLoadErr(asError(e));
    }
  };

  return (
    <section aria-labelledby="pricing-title">
      <div class="page-head">
        <h1 id="pricing-title">{t('pricing.title')}</h1>
      </div>
      <p class="muted small">{t('pricing.intro')}</p>
      {cur.error && <ErrorBox error={cur.error} onRetry={cur.reload} />}
      {!p && cur.loading && <Loading />}
      {p && (
        <>
          <Current p={p} />
          <Unpriced
            p={p}
            onPrice={(model) => {
              setDraft({ ...EMPTY, mode: 'models', text: entryTemplate(model, p) });
              setStored('');
              document.getElementById('pricing-json')?.focus();
            }}
          />
          <ModelsTable models={p.models} />
        </>
      )}
      <section aria-labelledby="pricing-versions-title">
        <h2 id="pricing-versions-title">{t('pricing.versions')}</h2>
        {versions.error && <ErrorBox error={versions.error} onRetry={versions.reload} />}
        {loadErr && <ErrorBox error={loadErr} />}
        {!versions.data && versions.loading && <Loading />}
        {versions.data && versions.data.data.length === 0 && <Empty />}
        {versions.data && versions.data.data.length > 0 && (
          <div class="table-wrap">
            <table>
              <caption class="sr-only">{t('pricing.versions')}</caption>
              <thead>
                <tr>
                  <th scope="col">{t('pricing.version')}</th>
                  <th scope="col">{t('pricing.storedAt')}</th>
                  <th scope="col">{t('pricing.storedBy')}</th>
                  <th scope="col">{t('pricing.why')}</th>
                  <th scope="col">
                    <span class="sr-only">{t('tiers.actions')}</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {versions.data.data.map((v) => (
                  <tr key={v.version}>
                    <th scope="row">
                      <code>{v.version}</code>{' '}
                      {v.version === p?.version && <span class="badge on">{t('pricing.current')}</span>}
                    </th>
                    <td title={dateTime(v.created_at)}>{v.created_at ? relative(v.created_at) : t('pricing.embedded')}</td>
                    <td>{v.created_by}</td>
                    <td class="wrap">{v.comment || '—'}</td>
                    <td>
                      <button
                        type="button"
                        class="link"
                        aria-label={t('pricing.loadNamed', { version: v.version })}
                        onClick={() => void load(v.version)}
                      >
                        {t('pricing.load')}
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </section>
      <Editor
        current={p?.version}
        draft={draft}
        setDraft={setDraft}
        stored={stored}
        onLoadCurrent={p ? () => void load(p.version) : undefined}
        onStored={(v) => {
          setStored(v);
          setDraft(EMPTY);
          cur.reload();
          versions.reload();
        }}
      />
    </section>
  );
}

function Current({ p }: { p: PricingView }) {
  return (
    <dl class="facts">
      <dt>{t('pricing.version')}</dt>
      <dd>
        <code>{p.version}</code>
      </dd>
      <dt>{t('pricing.source')}</dt>
      <dd>
        {/^https?:\/\//.test(p.source) ? (
          <a href={p.source} rel="noreferrer noopener" target="_blank">
            {p.source}
          </a>
        ) : (
          p.source || '—'
        )}
      </dd>
      {p.sources && p.sources.length > 0 && (
        <>
          <dt>{t('pricing.sources')}</dt>
          <dd>
            <ul class="plain">
              {p.sources.map((s) => (
                <li key={s}>{s}</li>
              ))}
            </ul>
          </dd>
        </>
      )}
      <dt>{t('pricing.retrieved')}</dt>
      <dd>{p.retrieved || '—'}</dd>
      <dt>{t('pricing.comment')}</dt>
      <dd>{p.comment || '—'}</dd>
      <dt>{t('pricing.policy')}</dt>
      <dd>
        {p.policy.unpriced === 'fallback'
          ? t('pricing.policyFallback', { model: p.policy.fallback_model ?? '—' })
          : t('pricing.policyRefuse')}
      </dd>
    </dl>
  );
}

function Unpriced({ p, onPrice }: { p: PricingView; onPrice: (model: string) => void }) {
  return (
    <section aria-labelledby="pricing-unpriced-title">
      <h2 id="pricing-unpriced-title">{t('pricing.unpriced')}</h2>
      <p class="muted small">{t('pricing.unpricedIntro')}</p>
      {p.unpriced_models.length === 0 ? (
        <Empty>{t('pricing.unpricedNone')}</Empty>
      ) : (
        <div class="table-wrap">
          <table>
            <caption class="sr-only">{t('pricing.unpriced')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('usage.model')}</th>
                <th scope="col" class="num">{t('usage.requests')}</th>
                <th scope="col">{t('pricing.firstSeen')}</th>
                <th scope="col">{t('pricing.lastSeen')}</th>
                <th scope="col">
                  <span class="sr-only">{t('tiers.actions')}</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {p.unpriced_models.map((m) => (
                <tr key={m.model}>
                  <th scope="row">
                    <code>{m.model}</code>
                  </th>
                  <td class="num">{num(m.requests)}</td>
                  <td title={dateTime(m.first_seen)}>{relative(m.first_seen)}</td>
                  <td title={dateTime(m.last_seen)}>{relative(m.last_seen)}</td>
                  <td>
                    <button
                      type="button"
                      class="link"
                      aria-label={t('pricing.priceNamed', { model: m.model })}
                      onClick={() => onPrice(m.model)}
                    >
                      {t('pricing.price')}
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

const RATE_CLASSES = ['input', 'output', 'cache_write_5m', 'cache_write_1h', 'cache_read'] as const satisfies readonly (keyof PriceRates)[];

function rateLabel(k: (typeof RATE_CLASSES)[number]): string {
  return t(
    (
      {
        input: 'usage.input',
        output: 'usage.output',
        cache_write_5m: 'cost.cacheWrite5m',
        cache_write_1h: 'cost.cacheWrite1h',
        cache_read: 'usage.cacheRead',
      } as const
    )[k],
  );
}

function ModelsTable({ models }: { models: PriceEntry[] }) {
  const [filter, setFilter] = useState('');
  const f = filter.trim().toLowerCase();
  const rows = f
    ? models.filter((m) => [m.id, m.name ?? '', ...(m.aliases ?? []), ...(m.patterns ?? [])].some((s) => s.toLowerCase().includes(f)))
    : models;
  return (
    <section aria-labelledby="pricing-models-title">
      <div class="page-head">
        <h2 id="pricing-models-title">{t('pricing.models', { n: models.length })}</h2>
        <div class="field inline">
          <label for="pricing-filter">{t('pricing.filter')}</label>
          <input id="pricing-filter" type="search" value={filter} onInput={(e) => setFilter((e.target as HTMLInputElement).value)} />
        </div>
      </div>
      <p class="muted small">{t('pricing.ratesNote')}</p>
      {rows.length === 0 ? (
        <Empty />
      ) : (
        <div class="table-wrap">
          <table class="prices">
            <caption class="sr-only">{t('pricing.modelsCaption')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('usage.model')}</th>
                {RATE_CLASSES.map((k) => (
                  <th scope="col" class="num" key={k}>
                    {rateLabel(k)}
                  </th>
                ))}
                <th scope="col">{t('pricing.longContext')}</th>
                <th scope="col" class="num">{t('pricing.batch')}</th>
                <th scope="col" class="num">{t('pricing.fast')}</th>
                <th scope="col">{t('pricing.geo')}</th>
                <th scope="col" class="num">{t('pricing.webSearch')}</th>
                <th scope="col" class="num">{t('pricing.webFetch')}</th>
              </tr>
            </thead>
            <tbody>
              {rows.map((m) => (
                <tr key={m.id}>
                  <th scope="row" class="wrap">
                    <code>{m.id}</code>
                    {m.name && <div class="small">{m.name}</div>}
                    {m.status && <div class="muted small">{m.status}</div>}
                    {(m.aliases?.length ?? 0) + (m.patterns?.length ?? 0) > 0 && (
                      <div class="muted small">{t('pricing.alsoMatches', { names: [...(m.aliases ?? []), ...(m.patterns ?? [])].join(', ') })}</div>
                    )}
                  </th>
                  {RATE_CLASSES.map((k) => (
                    <td class="num" key={k}>
                      {rate(m.rates[k])}
                    </td>
                  ))}
                  <td class="small">
                    {m.long_context ? (
                      <>
                        {t('pricing.above', { n: num(m.long_context.above_prompt_tokens) })}
                        <br />
                        {RATE_CLASSES.map((k) => `${rateLabel(k)} ${rate(m.long_context?.rates[k])}`).join(' · ')}
                      </>
                    ) : (
                      '—'
                    )}
                  </td>
                  <td class="num">
                    {m.batch !== undefined ? times(m.batch) : <span title={t('pricing.batchDefault')}>×0.5*</span>}
                  </td>
                  <td class="num">{m.fast !== undefined ? times(m.fast) : <span title={t('pricing.noFast')}>—</span>}</td>
                  <td class="small">
                    {m.geo && Object.keys(m.geo).length > 0
                      ? Object.entries(m.geo)
                          .map(([g, x]) => `${g} ${times(x)}`)
                          .join(', ')
                      : '—'}
                  </td>
                  <td class="num">{rate(m.web_search_per_1000)}</td>
                  <td class="num">{rate(m.web_fetch_per_1000)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </section>
  );
}

/** A starting entry for an unpriced model: the fallback entry's card if there is one, else zeros to fill in. */
function entryTemplate(model: string, p: PricingView): string {
  const base = p.models.find((m) => m.id === p.policy.fallback_model);
  const rates: PriceRates = base?.rates ?? { input: '', output: '', cache_write_5m: '', cache_write_1h: '', cache_read: '' };
  return JSON.stringify([{ id: model, name: model, rates }], null, 2);
}

/** Checks the JSON and builds the request body around the text as typed. */
function pricingBody(d: Draft): { raw: string; parsed: unknown } | string {
  const text = d.text.trim();
  if (!text) return t('pricing.emptyJson');
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    return t('pricing.badJson', { msg: (e as Error).message });
  }
  const isObj = (v: unknown): boolean => typeof v === 'object' && v !== null && !Array.isArray(v);
  const comment = d.comment.trim();
  const tail = comment ? `,"comment":${JSON.stringify(comment)}` : '';
  if (d.mode === 'table') {
    if (!isObj(parsed)) return t('pricing.notObject');
    return { raw: `{"table":${text}${tail}}`, parsed };
  }
  const version = d.version.trim();
  if (!version) return t('pricing.versionRequired');
  let models = text;
  if (isObj(parsed)) models = `[${text}]`;
  else if (!Array.isArray(parsed) || parsed.length === 0 || !parsed.every(isObj)) return t('pricing.notEntries');
  return { raw: `{"version":${JSON.stringify(version)},"models":${models}${tail}}`, parsed };
}

function Editor(props: {
  current: string | undefined;
  draft: Draft;
  setDraft: (d: Draft) => void;
  stored: string;
  onLoadCurrent?: () => void;
  onStored: (version: string) => void;
}) {
  const { draft: d, setDraft } = props;
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<Error | undefined>();
  const set = (k: keyof Draft) => (e: Event) => setDraft({ ...d, [k]: (e.target as HTMLInputElement).value });

  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setErr(undefined);
    const b = pricingBody(d);
    if (typeof b === 'string') return setErr(new Error(b));
    setBusy(true);
    try {
      // The text is sent as typed (bodySerializer), not re-serialised from
      // the parsed value: a price written as a JSON number reaches the relay
      // with every digit, never through a float.
      const res =
        d.mode === 'table'
          ? await admin().PUT('/admin/pricing', { body: { table: b.parsed as Record<string, unknown> }, bodySerializer: () => b.raw })
          : await admin().POST('/admin/pricing/models', {
              body: { version: d.version.trim(), models: [] },
              bodySerializer: () => withBase(b.raw, props.current),
            });
      props.onStored(unwrap(res).version);
    } catch (e2) {
      setErr(asError(e2));
    } finally {
      setBusy(false);
    }
  };

  const onFile = async (e: Event): Promise<void> => {
    const input = e.target as HTMLInputElement;
    const f = input.files?.[0];
    if (!f) return;
    try {
      setDraft({ ...d, text: await f.text() });
    } catch (e2) {
      setErr(asError(e2));
    }
    input.value = '';
  };

  return (
    <section aria-labelledby="pricing-new-title">
      <h2 id="pricing-new-title">{t('pricing.new')}</h2>
      {props.stored && (
        <p class="notice" role="status">
          {t('pricing.stored', { version: props.stored })}
        </p>
      )}
      <form class="pricing-form" onSubmit={submit}>
        <fieldset class="radios">
          <legend>{t('pricing.mode')}</legend>
          <label>
            <input type="radio" name="pricing-mode" value="table" checked={d.mode === 'table'} onChange={() => setDraft({ ...d, mode: 'table' })} />{' '}
            {t('pricing.modeTable')}
          </label>
          <label>
            <input type="radio" name="pricing-mode" value="models" checked={d.mode === 'models'} onChange={() => setDraft({ ...d, mode: 'models' })} />{' '}
            {t('pricing.modeModels')}
          </label>
        </fieldset>
        <div class="field">
          <label for="pricing-file">{t('pricing.file')}</label>
          <input id="pricing-file" type="file" accept="application/json,.json" onChange={(e) => void onFile(e)} />
        </div>
        <div class="field">
          <label for="pricing-json">{d.mode === 'table' ? t('pricing.tableJson') : t('pricing.modelsJson')}</label>
          <textarea
            id="pricing-json"
            class="mono"
            rows={14}
            spellcheck={false}
            aria-describedby="pricing-json-hint"
            value={d.text}
            onInput={set('text')}
          />
          <small id="pricing-json-hint" class="hint">
            {d.mode === 'table' ? t('pricing.tableHint') : t('pricing.modelsHint', { version: props.current ?? '—' })}
          </small>
        </div>
        <div class="grid2">
          {d.mode === 'models' && (
            <div class="field">
              <label for="pricing-version">{t('pricing.newVersion')}</label>
              <input id="pricing-version" maxLength={200} value={d.version} onInput={set('version')} />
            </div>
          )}
          <div class="field">
            <label for="pricing-comment">{t('pricing.why')}</label>
            <input id="pricing-comment" maxLength={1000} value={d.comment} onInput={set('comment')} />
          </div>
        </div>
        {err && <ErrorBox error={err} />}
        <div class="actions">
          {props.onLoadCurrent && d.mode === 'table' && (
            <button type="button" onClick={props.onLoadCurrent}>
              {t('pricing.startFromCurrent')}
            </button>
          )}
          <button type="submit" class="primary" disabled={busy}>
            {t('pricing.store')}
          </button>
        </div>
      </form>
    </section>
  );
}

/** Adds base_version to an entries body, so a table changed meanwhile is refused (409), not overwritten. */
function withBase(raw: string, base: string | undefined): string {
  return base ? `{"base_version":${JSON.stringify(base)},${raw.slice(1)}` : raw;
}
