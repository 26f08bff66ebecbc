// Request-log rows and the per-request drill-down, shared by the logs page,
// the key detail and the key holder's page.
import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { UsageLog } from '../api/client';
import { t } from '../i18n';
import { dateTime, ms, num, shortId } from '../format';
import { Link } from '../router';
import { Dialog, Empty, HttpStatus } from './ui';

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

function Row({ label, children }: { label: string; children: ComponentChildren }) {
  return (
    <>
      <dt>{label}</dt>
      <dd>{children}</dd>
    </>
  );
}

const yes = (b: boolean): string => (b ? t('common.yes') : t('common.no'));

/** Everything the relay recorded about one request (never its body). */
export function LogDetail({ log: r, showKey }: { log: UsageLog; showKey: boolean }) {
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
        <Row label={t('log.endpoint')}>{r.endpoint || '—'}</Row>
        <Row label={t('log.path')}>
          <code>{r.path}</code>
        </Row>
        <Row label={t('log.model')}>{r.model || '—'}</Row>
        <Row label={t('log.requestedModel')}>{r.requested_model || '—'}</Row>
        <Row label={t('log.stream')}>{yes(r.stream)}</Row>
        <Row label={t('log.batch')}>{yes(r.batch)}</Row>
        <Row label={t('log.estimatedLabel')}>{yes(r.estimated)}</Row>
        <Row label={t('log.latency')}>{ms(r.latency_ms)}</Row>
        <Row label={t('log.ttfb')}>{r.ttfb_ms > 0 ? ms(r.ttfb_ms) : '—'}</Row>
        <Row label={t('log.serviceTier')}>{r.service_tier || '—'}</Row>
        <Row label={t('log.speed')}>{r.speed || '—'}</Row>
        <Row label={t('log.geo')}>{r.inference_geo || '—'}</Row>
        <Row label={t('log.webSearch')}>{num(r.web_search_requests)}</Row>
        <Row label={t('log.webFetch')}>{num(r.web_fetch_requests)}</Row>
        <Row label={t('log.session')}>{r.session_id ? <code>{r.session_id}</code> : '—'}</Row>
        <Row label={t('log.clientIp')}>{r.client_ip || '—'}</Row>
        <Row label={t('log.upstreamRequestId')}>{r.upstream_request_id ? <code>{r.upstream_request_id}</code> : '—'}</Row>
      </dl>
      <div class="table-wrap">
        <table>
          <caption>{t('log.tokensByClass')}</caption>
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
            <tr class="total">
              <th scope="row">{t('log.billed')}</th>
              <td class="num">{num(r.input_tokens)}</td>
              <td class="num">{num(r.output_tokens)}</td>
              <td class="num">{num(r.cache_creation_input_tokens)}</td>
              <td class="num">{num(r.cache_read_input_tokens)}</td>
            </tr>
          </tbody>
        </table>
      </div>
    </div>
  );
}
