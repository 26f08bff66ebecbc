// The key form (create and edit: every field the API has) and the one-time
// display of a new secret with copy-paste set-up.
import { useState } from 'preact/hooks';
import type { APIKey, CreatedAPIKey, CreateKeyRequest, Tier, UpdateKeyRequest } from '../api/client';
import { t } from '../i18n';
import { fromLocalInput, toLocalInput } from '../format';
import { CopyButton, ErrorBox, Snippet } from './ui';

export type KeyFormValues = {
  name: string;
  description: string;
  tokenLimit: string;
  tier: string;
  expires: string;
  ips: string;
  domains: string;
};

export function valuesOf(k?: APIKey): KeyFormValues {
  return {
    name: k?.name ?? '',
    description: k?.description ?? '',
    tokenLimit: k?.token_limit === null || k?.token_limit === undefined ? '' : String(k.token_limit),
    tier: k?.rate_limit_tier ?? '',
    expires: toLocalInput(k?.expires_at),
    ips: (k?.allowed_ips ?? []).join('\n'),
    domains: (k?.allowed_domains ?? []).join('\n'),
  };
}

function lines(s: string): string[] {
  return s
    .split(/[\n,]/)
    .map((x) => x.trim())
    .filter(Boolean);
}

/** The limit as a number, null for "unlimited", or an error message key. */
function parseLimit(s: string): number | null | 'invalid' {
  const v = s.trim().replace(/[_\s,]/g, '');
  if (v === '') return null;
  if (!/^\d+$/.test(v)) return 'invalid';
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : 'invalid';
}

export function toCreate(v: KeyFormValues): CreateKeyRequest | string {
  const limit = parseLimit(v.tokenLimit);
  if (limit === 'invalid') return t('keyForm.limitInvalid');
  const req: CreateKeyRequest = { name: v.name.trim() };
  if (v.description.trim()) req.description = v.description.trim();
  if (limit !== null) req.token_limit = limit;
  if (v.tier) req.rate_limit_tier = v.tier;
  const exp = fromLocalInput(v.expires);
  if (exp) req.expires_at = exp;
  const ips = lines(v.ips);
  if (ips.length) req.allowed_ips = ips;
  const doms = lines(v.domains);
  if (doms.length) req.allowed_domains = doms;
  return req;
}

/** Only the fields that changed, so a PATCH never undoes a concurrent change of another field. */
export function toUpdate(v: KeyFormValues, k: APIKey): UpdateKeyRequest | string {
  const limit = parseLimit(v.tokenLimit);
  if (limit === 'invalid') return t('keyForm.limitInvalid');
  const o = valuesOf(k);
  const req: UpdateKeyRequest = {};
  if (v.name.trim() !== o.name) req.name = v.name.trim();
  if (v.description.trim() !== o.description) req.description = v.description.trim();
  if (limit !== (k.token_limit ?? null)) req.token_limit = limit;
  if (v.tier && v.tier !== o.tier) req.rate_limit_tier = v.tier;
  if (v.expires !== o.expires) req.expires_at = fromLocalInput(v.expires) ?? null;
  const ips = lines(v.ips);
  if (ips.join('\n') !== k.allowed_ips.join('\n')) req.allowed_ips = ips;
  const doms = lines(v.domains);
  if (doms.join('\n') !== k.allowed_domains.join('\n')) req.allowed_domains = doms;
  return req;
}

export function KeyForm(props: {
  idPrefix: string;
  initial: KeyFormValues;
  tiers: Tier[] | undefined;
  creating: boolean;
  submitLabel: string;
  onSubmit: (v: KeyFormValues) => Promise<void>;
  onCancel?: () => void;
}) {
  const [v, setV] = useState(props.initial);
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<Error | undefined>();
  const id = (f: string): string => `${props.idPrefix}-${f}`;
  const on =
    (f: keyof KeyFormValues) =>
    (e: Event): void =>
      setV({ ...v, [f]: (e.target as HTMLInputElement).value });
  const submit = async (e: Event): Promise<void> => {
    e.preventDefault();
    setBusy(true);
    setErr(undefined);
    try {
      await props.onSubmit(v);
    } catch (e2) {
      setErr(e2 instanceof Error ? e2 : new Error(String(e2)));
    } finally {
      setBusy(false);
    }
  };
  return (
    <form class="key-form" onSubmit={submit}>
      <div class="field">
        <label for={id('name')}>{t('key.name')}</label>
        <input id={id('name')} required maxLength={200} value={v.name} onInput={on('name')} />
      </div>
      <div class="field">
        <label for={id('description')}>{t('key.description')}</label>
        <textarea id={id('description')} maxLength={2000} rows={2} value={v.description} onInput={on('description')} />
      </div>
      <div class="grid2">
        <div class="field">
          <label for={id('limit')}>{t('key.tokenLimit')}</label>
          <input
            id={id('limit')}
            inputMode="numeric"
            placeholder={t('key.unlimited')}
            aria-describedby={id('limit-hint')}
            value={v.tokenLimit}
            onInput={on('tokenLimit')}
          />
          <small id={id('limit-hint')} class="hint">
            {t('keyForm.limitHint')}
          </small>
        </div>
        <div class="field">
          <label for={id('tier')}>{t('key.tier')}</label>
          <select id={id('tier')} value={v.tier} onChange={on('tier')}>
            {props.creating && <option value="">{t('keyForm.defaultTier')}</option>}
            {!props.creating && v.tier && !props.tiers?.some((x) => x.name === v.tier) && (
              <option value={v.tier}>{v.tier}</option>
            )}
            {(props.tiers ?? []).map((x) => (
              <option key={x.name} value={x.name}>
                {x.name}
              </option>
            ))}
          </select>
        </div>
      </div>
      <div class="field">
        <label for={id('expires')}>{t('key.expires')}</label>
        <input
          id={id('expires')}
          type="datetime-local"
          aria-describedby={id('expires-hint')}
          value={v.expires}
          onInput={on('expires')}
        />
        <small id={id('expires-hint')} class="hint">
          {t('keyForm.expiresHint')}
        </small>
      </div>
      <div class="grid2">
        <div class="field">
          <label for={id('ips')}>{t('key.allowedIps')}</label>
          <textarea
            id={id('ips')}
            rows={3}
            placeholder="10.0.0.0/8"
            aria-describedby={id('ips-hint')}
            value={v.ips}
            onInput={on('ips')}
          />
          <small id={id('ips-hint')} class="hint">
            {t('keyForm.listHint')}
          </small>
        </div>
        <div class="field">
          <label for={id('domains')}>{t('key.allowedDomains')}</label>
          <textarea
            id={id('domains')}
            rows={3}
            placeholder="app.example.com"
            aria-describedby={id('domains-hint')}
            value={v.domains}
            onInput={on('domains')}
          />
          <small id={id('domains-hint')} class="hint">
            {t('keyForm.listHint')}
          </small>
        </div>
      </div>
      {err && <ErrorBox error={err} />}
      <div class="actions">
        {props.onCancel && (
          <button type="button" onClick={props.onCancel}>
            {t('action.cancel')}
          </button>
        )}
        <button type="submit" class="primary" disabled={busy}>
          {props.submitLabel}
        </button>
      </div>
    </form>
  );
}

export function setupSnippets(origin: string, secret: string): { title: string; code: string }[] {
  return [
    {
      title: t('secret.claudeCode'),
      code: `export ANTHROPIC_BASE_URL=${origin}\nexport ANTHROPIC_AUTH_TOKEN=${secret}\nclaude`,
    },
    {
      title: t('secret.python'),
      code: `import anthropic\n\nclient = anthropic.Anthropic(base_url="${origin}", api_key="${secret}")`,
    },
    {
      title: t('secret.typescript'),
      code: `import Anthropic from "@anthropic-ai/sdk";\n\nconst client = new Anthropic({ baseURL: "${origin}", apiKey: "${secret}" });`,
    },
    {
      title: 'curl',
      code:
        `curl ${origin}/v1/messages \\\n  -H "x-api-key: ${secret}" \\\n  -H "anthropic-version: 2023-06-01" \\\n` +
        `  -H "content-type: application/json" \\\n` +
        `  -d '{"model":"claude-sonnet-4-5","max_tokens":256,"messages":[{"role":"user","content":"Hello"}]}'`,
    },
  ];
}

/** A new secret, shown this once, with set-up for Claude Code, the SDKs and curl. */
export function SecretOnce({ created, onDone }: { created: CreatedAPIKey; onDone: () => void }) {
  const origin = location.origin;
  return (
    <div class="secret-once">
      <p class="notice" role="status">
        {t('secret.once', { name: created.name })}
      </p>
      <div class="secret-row">
        <label for="new-secret">{t('secret.label')}</label>
        <input id="new-secret" class="mono" readOnly value={created.api_key} onFocus={(e) => (e.target as HTMLInputElement).select()} />
        <CopyButton text={created.api_key} label={t('secret.copy')} />
      </div>
      <h3>{t('secret.setup')}</h3>
      {setupSnippets(origin, created.api_key).map((s) => (
        <Snippet key={s.title} title={s.title} code={s.code} />
      ))}
      <div class="actions">
        <button type="button" class="primary" onClick={onDone}>
          {t('secret.done')}
        </button>
      </div>
    </div>
  );
}

