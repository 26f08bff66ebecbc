// The key form (create and edit: every field the API has) and the one-time
// display of a new secret with copy-paste set-up.
import { useRef, useState } from 'preact/hooks';
import type {
  APIKey,
  BudgetInput,
  BudgetWindow,
  CreatedAPIKey,
  CreateKeyRequest,
  Tier,
  UpdateKeyRequest,
} from '../api/client';
import { t, type MsgKey } from '../i18n';
import { decimalText, fromLocalInput, toLocalInput } from '../format';
import { CopyButton, ErrorBox, Snippet } from './ui';
import { isCalendar, windowLabel, windowName, WINDOWS } from './budgets';

/** One row of the budgets editor; id only keeps rows apart while editing. */
export type BudgetRow = { id: number; window: BudgetWindow; limit: string; zone: string };

export type KeyFormValues = {
  name: string;
  description: string;
  tokenLimit: string;
  tier: string;
  expires: string;
  ips: string;
  domains: string;
  models: string;
  upstreamGroup: string;
  budgets: BudgetRow[];
};

/** The API's limits on budgets (CreateKeyRequest.budgets, BudgetInput.limit_usd). */
export const MAX_BUDGETS = 8;
/** CreateKeyRequest.upstream_group: at most 64 bytes (UTF-8). */
export const MAX_GROUP_BYTES = 64;
const MAX_NANO = 9_007_199_254_740_991n; // 9007199.254740991 USD

export function valuesOf(k?: APIKey): KeyFormValues {
  return {
    name: k?.name ?? '',
    description: k?.description ?? '',
    tokenLimit: k?.token_limit === null || k?.token_limit === undefined ? '' : String(k.token_limit),
    tier: k?.rate_limit_tier ?? '',
    expires: toLocalInput(k?.expires_at),
    ips: (k?.allowed_ips ?? []).join('\n'),
    domains: (k?.allowed_domains ?? []).join('\n'),
    models: (k?.allowed_models ?? []).join('\n'),
    upstreamGroup: k?.upstream_group ?? '',
    budgets: (k?.budgets ?? []).map((b, i) => ({
      id: i + 1,
      window: b.window,
      limit: decimalText(b.limit_usd),
      zone: b.time_zone ?? '',
    })),
  };
}

function lines(s: string): string[] {
  return s
    .split(/[\n,]/)
    .map((x) => x.trim())
    .filter(Boolean);
}

/** The group as typed (trimmed), or the error when it is longer than the relay takes. */
function upstreamGroup(s: string): { value: string } | { error: string } {
  const v = s.trim();
  if (new TextEncoder().encode(v).length > MAX_GROUP_BYTES) return { error: t('keyForm.upstreamGroupTooLong', { n: MAX_GROUP_BYTES }) };
  return { value: v };
}

/** The limit as a number, null for "unlimited", or an error message key. */
function parseLimit(s: string): number | null | 'invalid' {
  const v = s.trim().replace(/[_\s,]/g, '');
  if (v === '') return null;
  if (!/^\d+$/.test(v)) return 'invalid';
  const n = Number(v);
  return Number.isSafeInteger(n) ? n : 'invalid';
}

/**
 * A budget limit as the text to send. limit_usd is read exactly by the
 * relay when it is a JSON string ("10.50"), so the amount typed is sent as
 * typed, never through a float. It must be a plain decimal with at most 9
 * decimals, more than 0 and at most 9007199.254740991 (BudgetInput in the
 * spec); a "$" in front is allowed. A comma is refused rather than guessed
 * at: it is a thousands separator in one locale and a decimal point in
 * another.
 */
export function budgetLimit(s: string): { value: string } | { error: MsgKey } {
  const v = s.trim().replace(/^\$\s*/, '');
  if (v === '') return { error: 'keyForm.budgetLimitRequired' };
  const m = /^(\d+)(?:\.(\d{1,9}))?$/.exec(v);
  if (!m) return { error: 'keyForm.budgetLimitInvalid' };
  const nano = BigInt(m[1] ?? '0') * 1_000_000_000n + BigInt((m[2] ?? '').padEnd(9, '0'));
  if (nano === 0n) return { error: 'keyForm.budgetLimitZero' };
  if (nano > MAX_NANO) return { error: 'keyForm.budgetLimitMax' };
  return { value: v };
}

function knownZone(z: string): boolean {
  try {
    new Intl.DateTimeFormat('en', { timeZone: z });
    return true;
  } catch {
    return false;
  }
}

/** The budget rows as the API takes them, or the first problem (naming its row). */
export function toBudgets(rows: BudgetRow[]): BudgetInput[] | string {
  if (rows.length > MAX_BUDGETS) return t('keyForm.budgetTooMany', { n: MAX_BUDGETS });
  const out: BudgetInput[] = [];
  const seen = new Set<string>();
  for (const [i, r] of rows.entries()) {
    const n = i + 1;
    const lim = budgetLimit(r.limit);
    if ('error' in lim) return t(lim.error, { n });
    const zone = isCalendar(r.window) ? r.zone.trim() : '';
    if (zone && !knownZone(zone)) return t('keyForm.budgetZoneInvalid', { n, zone });
    // The relay allows one budget per window and zone; an absent zone and
    // the relay's default zone are the same, which only the relay knows.
    const k = `${r.window}@${zone}`;
    if (seen.has(k)) return t('keyForm.budgetDuplicate', { n, window: windowLabel(r.window, zone) });
    seen.add(k);
    const b: BudgetInput = { window: r.window, limit_usd: lim.value };
    if (zone) b.time_zone = zone;
    out.push(b);
  }
  return out;
}

/** The rows as compared for "changed": what would be sent, not how it was typed around it. */
function budgetsKey(rows: BudgetRow[]): string {
  return JSON.stringify(rows.map((r) => [r.window, r.limit.trim(), isCalendar(r.window) ? r.zone.trim() : '']));
}

export function toCreate(v: KeyFormValues): CreateKeyRequest | string {
  const limit = parseLimit(v.tokenLimit);
  if (limit === 'invalid') return t('keyForm.limitInvalid');
  const budgets = toBudgets(v.budgets);
  if (typeof budgets === 'string') return budgets;
  const group = upstreamGroup(v.upstreamGroup);
  if ('error' in group) return group.error;
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
  const models = lines(v.models);
  if (models.length) req.allowed_models = models;
  if (budgets.length) req.budgets = budgets;
  if (group.value) req.upstream_group = group.value;
  return req;
}

/** Only the fields that changed, so a PATCH never undoes a concurrent change of another field. */
export function toUpdate(v: KeyFormValues, k: APIKey): UpdateKeyRequest | string {
  const limit = parseLimit(v.tokenLimit);
  if (limit === 'invalid') return t('keyForm.limitInvalid');
  const group = upstreamGroup(v.upstreamGroup);
  if ('error' in group) return group.error;
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
  const models = lines(v.models);
  if (models.join('\n') !== (k.allowed_models ?? []).join('\n')) req.allowed_models = models;
  if (group.value !== o.upstreamGroup) req.upstream_group = group.value;
  // budgets replace the whole list, so it is sent whole, and only when a
  // row changed: untouched limits are never re-sent through a float.
  if (budgetsKey(v.budgets) !== budgetsKey(o.budgets)) {
    const budgets = toBudgets(v.budgets);
    if (typeof budgets === 'string') return budgets;
    req.budgets = budgets;
  }
  return req;
}

let zoneList: string[] | undefined;

/** IANA zones this browser knows, for suggestions (the relay decides what it accepts). */
function zones(): string[] {
  if (!zoneList) {
    try {
      zoneList = typeof Intl.supportedValuesOf === 'function' ? Intl.supportedValuesOf('timeZone') : [];
    } catch {
      zoneList = [];
    }
  }
  return zoneList;
}

function BudgetsEditor(props: { idPrefix: string; rows: BudgetRow[]; onChange: (rows: BudgetRow[]) => void }) {
  const { rows, onChange } = props;
  const next = useRef(rows.reduce((m, r) => Math.max(m, r.id), 0) + 1);
  const id = (f: string): string => `${props.idPrefix}-${f}`;
  const set = (i: number, patch: Partial<BudgetRow>): void =>
    onChange(rows.map((r, j) => (j === i ? { ...r, ...patch } : r)));
  const add = (): void => {
    const used = new Set(rows.map((r) => r.window));
    const w = (['day', 'month', 'week', '5h', 'total'] as const).find((x) => !used.has(x)) ?? 'day';
    onChange([...rows, { id: next.current++, window: w, limit: '', zone: '' }]);
  };
  return (
    <fieldset class="budgets-editor" aria-describedby={id('budgets-hint')}>
      <legend>{t('keyForm.budgets')}</legend>
      <small id={id('budgets-hint')} class="hint">
        {t('keyForm.budgetsHint', { n: MAX_BUDGETS })}
      </small>
      {rows.length === 0 && <p class="muted small">{t('keyForm.noBudgets')}</p>}
      {rows.map((r, i) => {
        const rid = (f: string): string => id(`budget-${r.id}-${f}`);
        const cal = isCalendar(r.window);
        return (
          <div class="budget-row" key={r.id} role="group" aria-label={t('keyForm.budgetN', { n: i + 1 })}>
            <div class="field">
              <label for={rid('window')}>{t('keyForm.budgetWindow')}</label>
              <select
                id={rid('window')}
                value={r.window}
                onChange={(e) => set(i, { window: (e.target as HTMLSelectElement).value as BudgetWindow })}
              >
                {WINDOWS.map((w) => (
                  <option key={w} value={w}>
                    {windowName(w)}
                  </option>
                ))}
              </select>
            </div>
            <div class="field">
              <label for={rid('limit')}>{t('keyForm.budgetLimit')}</label>
              <input
                id={rid('limit')}
                inputMode="decimal"
                autocomplete="off"
                placeholder="25.00"
                value={r.limit}
                onInput={(e) => set(i, { limit: (e.target as HTMLInputElement).value })}
              />
            </div>
            <div class="field">
              <label for={rid('zone')}>{t('keyForm.budgetZone')}</label>
              <input
                id={rid('zone')}
                list={id('zones')}
                autocomplete="off"
                spellcheck={false}
                maxLength={64}
                disabled={!cal}
                placeholder={cal ? t('keyForm.budgetZoneDefault') : t('keyForm.budgetZoneNone')}
                value={cal ? r.zone : ''}
                onInput={(e) => set(i, { zone: (e.target as HTMLInputElement).value })}
              />
            </div>
            <button
              type="button"
              class="danger"
              aria-label={t('keyForm.budgetRemoveN', { n: i + 1 })}
              onClick={() => onChange(rows.filter((_, j) => j !== i))}
            >
              {t('keyForm.budgetRemove')}
            </button>
          </div>
        );
      })}
      <button type="button" onClick={add} disabled={rows.length >= MAX_BUDGETS}>
        {t('keyForm.budgetAdd')}
      </button>
      {rows.some((r) => isCalendar(r.window)) && (
        <datalist id={id('zones')}>
          {zones().map((z) => (
            <option key={z} value={z} />
          ))}
        </datalist>
      )}
    </fieldset>
  );
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
    (f: Exclude<keyof KeyFormValues, 'budgets'>) =>
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
        <div class="field">
          <label for={id('models')}>{t('key.allowedModels')}</label>
          <textarea
            id={id('models')}
            rows={3}
            spellcheck={false}
            placeholder="claude-sonnet-*"
            aria-describedby={id('models-hint')}
            value={v.models}
            onInput={on('models')}
          />
          <small id={id('models-hint')} class="hint">
            {t('keyForm.modelsHint')}
          </small>
        </div>
        <div class="field">
          <label for={id('group')}>{t('key.upstreamGroup')}</label>
          <input
            id={id('group')}
            spellcheck={false}
            autocomplete="off"
            placeholder={t('upstreams.defaultGroup')}
            aria-describedby={id('group-hint')}
            value={v.upstreamGroup}
            onInput={on('upstreamGroup')}
          />
          <small id={id('group-hint')} class="hint">
            {t('keyForm.upstreamGroupHint')}
          </small>
        </div>
      </div>
      <BudgetsEditor idPrefix={props.idPrefix} rows={v.budgets} onChange={(budgets) => setV({ ...v, budgets })} />
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

