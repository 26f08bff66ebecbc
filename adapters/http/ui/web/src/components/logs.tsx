// Request-log rows and the per-request drill-down, shared by the logs page,
// the key detail and the key holder's page.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { UsageLog } from '../api/client';
import { t } from '../i18n';
import { dateTime, ms, nanoToDecimal, num, shortId, usd, usdExact } from '../format';
import { Link } from '../router';
import { Dialog, Empty, HttpStatus } from './ui';
import { COST_CLASSES } from './usage';

export function LogTable({ rows, showKey, caption }: { rows: UsageLog[]; showKey: boolean; caption: string }) {
  const [open, setOpen] = useState<UsageLog | undefined>();
  if (rows.length === 0) return <Empty>{t('logs.none')}</Empty>;
  return (
    <>
      <div class="table-wrap">
        <table class="logs">
          <caption class="sr-only">{caption}</caption>
          <thead>
            <tr>
              <th scope="col">{t('log.time')}</th>
              {showKey && <th scope="col">{t('log.key')}</th>}
              <th scope="col">{t('log.status')}</th>
              <th scope="col">{t('log.model')}</th>
              <th scope="col">{t('log.endpoint')}</th>
              <th scope="col" class="num">{t('usage.input')}</th>
              <th scope="col" class="num">{t('usage.output')}</th>
              <th scope="col" class="num">{t('usage.cacheRead')}</th>
              <th scope="col" class="num">{t('usage.totalTokens')}</th>
              <th scope="col" class="num">{t('usage.cost')}</th>
              {showKey && <th scope="col">{t('log.upstream')}</th>}
              <th scope="col" class="num">{t('log.latency')}</th>
              <th scope="col" class="num">{t('log.ttfb')}</th>
              <th scope="col">
                <span class="sr-only">{t('log.details')}</span>
              </th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.request_id} class={r.status >= 400 ? 'refused' : ''}>
                <td class="nowrap">{dateTime(r.time)}</td>
                {showKey && (
                  <td>
                    <Link href={`/keys/${r.key_id}`}>
                      <code>{shortId(r.key_id)}</code>
                    </Link>
                  </td>
                )}
                <td>
                  <HttpStatus status={r.status} />
                  {r.error_type && <span class="muted small"> {r.error_type}</span>}
                </td>
                <td>{r.model || '—'}</td>
                <td>{r.endpoint || r.path}</td>
                <td class="num">{num(r.input_tokens)}</td>
                <td class="num">{num(r.output_tokens)}</td>
                <td class="num">{num(r.cache_read_input_tokens)}</td>
                <td class="num">
                  {num(r.total_tokens)}
                  {r.estimated && (
                    <abbr class="flag" title={t('log.estimated')}>
                      ≈
                    </abbr>
                  )}
                </td>
                <td class="num">
                  <Cost r={r} />
                </td>
                {showKey && (
                  <td>
                    {r.upstream || '—'}
                    <Retried r={r} />
                  </td>
                )}
                <td class="num">{ms(r.latency_ms)}</td>
                <td class="num">{r.ttfb_ms > 0 ? ms(r.ttfb_ms) : '—'}</td>
                <td>
                  <button
                    type="button"
                    class="link"
                    aria-label={t('log.openDetails', { id: r.request_id })}
                    onClick={() => setOpen(r)}
                  >
                    {t('log.details')}
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Dialog open={!!open} wide title={t('log.detailTitle')} onClose={() => setOpen(undefined)}>
        {open && <LogDetail log={open} showKey={showKey} />}
      </Dialog>
    </>
  );
}

/** A request's cost with its flags; "—" when it was never priced (price_version null). */
function Cost({ r }: { r: UsageLog }) {
  if (r.price_version === null || r.price_version === undefined) {
    return <span title={t('log.notPriced')}>—</span>;
  }
  return (
    <>
      {usd(r.cost_usd)}
      {r.cost_unpriced && (
        <abbr class="flag" title={t('log.unpricedHint')}>
          !
        </abbr>
      )}
      {r.cost_fallback_5m && (
        <abbr class="flag" title={t('log.fallback5mHint')}>
          5m
        </abbr>
      )}
    </>
  );
}

/** A flag on a request the relay sent more than once (retried, or failed over to another upstream). */
function Retried({ r }: { r: UsageLog }) {
  if ((r.attempts ?? 0) <= 1) return null;
  const failover = (r.tried_upstreams ?? []).length > 0;
  return (
    <abbr class="flag" title={t(failover ? 'log.failoverHint' : 'log.retriedHint', { n: r.attempts, tried: (r.tried_upstreams ?? []).join(', ') })}>
      ×{r.attempts}
    </abbr>
  );
}

/**
 * "1", "3 (retried 2 times)", or that the relay answered without sending
 * it; "—" for an answered request whose record does not count its
 * attempts (recorded before the relay counted them).
 */
export function attemptsText(r: Pick<UsageLog, 'attempts' | 'upstream'>): string {
  const n = r.attempts ?? 0;
  if (n === 0) return r.upstream ? '—' : t('log.noAttempts');
  if (n === 1) return num(1);
  return t('log.attemptsRetried', { n: num(n), retries: num(n - 1) });
}

function Row({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </>
  );
}

const yes = (b: boolean): string => (b ? t('common.yes') : t('common.no'));

type Nanos = Partial<Record<(typeof COST_CLASSES)[number][0] | 'total', number>>;
type CostPart = Nanos & { type?: string; model?: string; priced_as?: string; long_context?: boolean; fallback_5m?: boolean };
/** cost_detail as the relay stores it (domain/pricing.Cost): integer nanodollars. */
type CostDetail = {
  parts?: CostPart[];
  unpriced?: string[];
  fallback?: string[];
  unpriced_modifiers?: string[];
  long_context?: boolean;
};

function strings(v: unknown): string[] {
  return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

/** The parts of cost_detail this page shows, read defensively (it is free-form JSON). */
function readDetail(d: UsageLog['cost_detail']): CostDetail | null {
  if (!d || typeof d !== 'object') return null;
  const o = d as Record<string, unknown>;
  return {
    parts: Array.isArray(o.parts) ? (o.parts.filter((p) => p && typeof p === 'object') as CostPart[]) : [],
    unpriced: strings(o.unpriced),
    fallback: strings(o.fallback),
    unpriced_modifiers: strings(o.unpriced_modifiers),
    long_context: o.long_context === true,
  };
}

const nano = (n: number | undefined): string => (typeof n === 'number' ? usdExact(nanoToDecimal(n)) : '—');

/** Everything the relay recorded about one request (never its body). */
export function LogDetail({ log: r, showKey }: { log: UsageLog; showKey: boolean }) {
  const detail = readDetail(r.cost_detail);
  const priced = r.price_version !== null && r.price_version !== undefined;
  // Tokens per price class. The log carries cache writes as one count (no
  // 5m/1h split), so that count spans both cache-write rows.
  const tokens: Record<(typeof COST_CLASSES)[number][0], string> = {
    input: num(r.input_tokens),
    output: num(r.output_tokens),
    cache_write_5m: num(r.cache_creation_input_tokens),
    cache_write_1h: '',
    cache_read: num(r.cache_read_input_tokens),
    web_search: t('log.calls', { n: num(r.web_search_requests) }),
    web_fetch: t('log.calls', { n: num(r.web_fetch_requests) }),
  };
  return (
    <div class="log-detail">
      <dl class="facts">
        <Row label={t('log.requestId')}>
          <code>{r.request_id}</code>
        </Row>
        <Row label={t('log.time')}>{dateTime(r.time)}</Row>
        {showKey && (
          <Row label={t('log.key')}>
            <Link href={`/keys/${r.key_id}`}>
              <code>{r.key_id}</code>
            </Link>
          </Row>
        )}
        <Row label={t('log.status')}>
          <HttpStatus status={r.status} />
        </Row>
        <Row label={t('log.errorType')}>{r.error_type || '—'}</Row>
        <Row label={t('log.upstream')}>{r.upstream || t('log.noUpstream')}</Row>
        <Row label={t('log.attempts')}>{attemptsText(r)}</Row>
        <Row label={t('log.triedUpstreams')}>
          {(r.tried_upstreams ?? []).length > 0 ? (
            <ol class="tried">
              {(r.tried_upstreams ?? []).map((u, i) => (
                <li key={`${i}:${u}`}>{u}</li>
              ))}
            </ol>
          ) : (
            '—'
          )}
        </Row>
        <Row label={t('log.endpoint')}>{r.endpoint || '—'}</Row>
        <Row label={t('log.path')}>
          <code>{r.path}</code>
        </Row>
        <Row label={t('log.model')}>{r.model || '—'}</Row>
        <Row label={t('log.requestedModel')}>{r.requested_model || '—'}</Row>
        <Row label={t('usage.cost')}>{priced ? usdExact(r.cost_usd) : t('log.notPriced')}</Row>
        <Row label={t('usage.cacheSaved')}>{priced ? usdExact(r.cache_saved_usd) : '—'}</Row>
        <Row label={t('log.priceVersion')}>{priced ? <Link href="/pricing">{r.price_version}</Link> : '—'}</Row>
        <Row label={t('log.fallback5m')}>{yes(r.cost_fallback_5m)}</Row>
        <Row label={t('log.unpriced')}>
          {yes(r.cost_unpriced)}
          {detail && detail.unpriced && detail.unpriced.length > 0 && <span class="muted"> ({detail.unpriced.join(', ')})</span>}
        </Row>
        {detail && detail.fallback && detail.fallback.length > 0 && (
          <Row label={t('log.pricedAtFallback')}>{detail.fallback.join(', ')}</Row>
        )}
        {detail && detail.unpriced_modifiers && detail.unpriced_modifiers.length > 0 && (
          <Row label={t('log.unpricedModifiers')}>{detail.unpriced_modifiers.join(', ')}</Row>
        )}
        {detail?.long_context && <Row label={t('log.longContext')}>{t('common.yes')}</Row>}
        <Row label={t('log.stream')}>{yes(r.stream)}</Row>
        <Row label={t('log.batch')}>{yes(r.batch)}</Row>
        <Row label={t('log.estimatedLabel')}>{yes(r.estimated)}</Row>
        <Row label={t('log.latency')}>{ms(r.latency_ms)}</Row>
        <Row label={t('log.ttfb')}>{r.ttfb_ms > 0 ? ms(r.ttfb_ms) : '—'}</Row>
        <Row label={t('log.serviceTier')}>{r.service_tier || '—'}</Row>
        <Row label={t('log.speed')}>{r.speed || '—'}</Row>
        <Row label={t('log.geo')}>{r.inference_geo || '—'}</Row>
        <Row label={t('log.session')}>{r.session_id ? <code>{r.session_id}</code> : '—'}</Row>
        <Row label={t('log.clientIp')}>{r.client_ip || '—'}</Row>
        <Row label={t('log.upstreamRequestId')}>{r.upstream_request_id ? <code>{r.upstream_request_id}</code> : '—'}</Row>
      </dl>
      <div class="table-wrap">
        <table>
          <caption>{t('log.byClass')}</caption>
          <thead>
            <tr>
              <th scope="col">{t('cost.class')}</th>
              <th scope="col" class="num">{t('log.tokens')}</th>
              <th scope="col" class="num">{t('usage.cost')}</th>
            </tr>
          </thead>
          <tbody>
            {COST_CLASSES.map(([k, label]) => (
              <tr key={k}>
                <th scope="row">{t(label)}</th>
                {k === 'cache_write_5m' ? (
                  <td class="num" rowSpan={2}>
                    {tokens[k]}
                  </td>
                ) : k === 'cache_write_1h' ? null : (
                  <td class="num">{tokens[k]}</td>
                )}
                <td class="num">{priced ? usdExact(r.cost?.[k]) : '—'}</td>
              </tr>
            ))}
            <tr class="total">
              <th scope="row">{t('log.billed')}</th>
              <td class="num">{num(r.total_tokens)}</td>
              <td class="num">{priced ? usdExact(r.cost_usd) : '—'}</td>
            </tr>
          </tbody>
        </table>
      </div>
      {(r.iterations ?? []).length > 0 && (
        <div class="table-wrap">
          <table>
            <caption>{t('log.tokensByStep')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('log.step')}</th>
                <th scope="col" class="num">{t('usage.input')}</th>
                <th scope="col" class="num">{t('usage.output')}</th>
                <th scope="col" class="num">{t('usage.cacheWrite')}</th>
                <th scope="col" class="num">{t('usage.cacheRead')}</th>
              </tr>
            </thead>
            <tbody>
              {(r.iterations ?? []).map((it, i) => (
                <tr key={i}>
                  <th scope="row">
                    {it.type}
                    {it.model && <span class="muted"> ({it.model})</span>}
                  </th>
                  <td class="num">{num(it.input_tokens)}</td>
                  <td class="num">{num(it.output_tokens)}</td>
                  <td class="num">{num(it.cache_creation_input_tokens)}</td>
                  <td class="num">{num(it.cache_read_input_tokens)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {detail && detail.parts && detail.parts.length > 0 && (
        <div class="table-wrap">
          <table>
            <caption>{t('log.costByStep')}</caption>
            <thead>
              <tr>
                <th scope="col">{t('log.step')}</th>
                <th scope="col">{t('log.pricedAs')}</th>
                {COST_CLASSES.slice(0, 5).map(([k, label]) => (
                  <th scope="col" class="num" key={k}>
                    {t(label)}
                  </th>
                ))}
                <th scope="col" class="num">{t('cost.total')}</th>
              </tr>
            </thead>
            <tbody>
              {detail.parts.map((p, i) => (
                <tr key={i}>
                  <th scope="row">
                    {p.type || t('log.step')}
                    {p.model && <span class="muted"> ({p.model})</span>}
                    {p.long_context && <span class="badge warn">{t('log.longContext')}</span>}
                    {p.fallback_5m && (
                      <abbr class="flag" title={t('log.fallback5mHint')}>
                        5m
                      </abbr>
                    )}
                  </th>
                  <td>{p.priced_as || t('log.notPriced')}</td>
                  {COST_CLASSES.slice(0, 5).map(([k]) => (
                    <td class="num" key={k}>
                      {nano(p[k])}
                    </td>
                  ))}
                  <td class="num">{nano(p.total)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
      {r.cost_detail && (
        <details class="raw">
          <summary>{t('log.costDetailRaw')}</summary>
          <pre>
            <code>{JSON.stringify(r.cost_detail, null, 2)}</code>
          </pre>
        </details>
      )}
    </div>
  );
}
