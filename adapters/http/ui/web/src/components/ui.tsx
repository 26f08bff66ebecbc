// Small shared widgets: the states a page can be in (never blank), usage
// bars, dialogs and confirmations, copy buttons.
import type { ComponentChildren, JSX } from 'preact';
import { useEffect, useRef, useState } from 'preact/hooks';
import { ApiError } from '../api/client';
import { t } from '../i18n';
import { num, pct } from '../format';

export function Loading({ label }: { label?: string }) {
  return (
    <p class="state loading" role="status" aria-live="polite">
      <span class="spinner" aria-hidden="true" />
      {label ?? t('state.loading')}
    </p>
  );
}

export function Empty({ children }: { children?: ComponentChildren }) {
  return <p class="state empty">{children ?? t('state.empty')}</p>;
}

/** An error exactly as the relay said it, with its status, type and request id. */
export function ErrorBox({ error, onRetry }: { error: Error; onRetry?: () => void }) {
  const api = error instanceof ApiError ? error : null;
  return (
    <div class="state error" role="alert">
      <p class="error-message">{error.message}</p>
      {api && (
        <p class="error-meta">
          {api.status}
          {api.type && ` · ${api.type}`}
          {api.requestId && ` · ${api.requestId}`}
        </p>
      )}
      {onRetry && (
        <button type="button" onClick={onRetry}>
          {t('action.retry')}
        </button>
      )}
    </div>
  );
}

/** A used/limit bar; an unlimited limit shows only the count. */
export function UsageBar({ used, limit, label }: { used: number; limit: number | null | undefined; label: string }) {
  if (limit === null || limit === undefined) {
    return (
      <span class="usage-bar unlimited">
        {num(used)} <span class="muted">/ {t('key.unlimited')}</span>
      </span>
    );
  }
  const ratio = limit > 0 ? used / limit : 1;
  const level = ratio >= 1 ? 'full' : ratio >= 0.8 ? 'high' : 'ok';
  return (
    <span class={`usage-bar ${level}`}>
      <span
        class="bar"
        role="progressbar"
        aria-label={label}
        aria-valuemin={0}
        aria-valuemax={limit}
        aria-valuenow={Math.min(used, limit)}
        aria-valuetext={`${num(used)} / ${num(limit)} (${pct(ratio)})`}
      >
        <span class="fill" style={{ width: `${Math.min(ratio, 1) * 100}%` }} />
      </span>
      <span class="bar-text">
        {num(used)} / {num(limit)} <span class="muted">({pct(ratio)})</span>
      </span>
    </span>
  );
}

export function StatusBadge({ k }: { k: { is_active: boolean; expires_at: string | null } }) {
  if (!k.is_active) return <span class="badge off">{t('key.status.disabled')}</span>;
  if (k.expires_at && new Date(k.expires_at).getTime() <= Date.now())
    return <span class="badge warn">{t('key.status.expired')}</span>;
  return <span class="badge on">{t('key.status.active')}</span>;
}

export function HttpStatus({ status }: { status: number }) {
  const cls = status >= 500 ? 'err' : status >= 400 ? 'warn' : 'on';
  return <span class={`badge ${cls}`}>{status}</span>;
}

let dialogSeq = 0;

/** A modal <dialog>: focus moves in, Esc closes, focus returns on close. */
export function Dialog(props: {
  open: boolean;
  title: string;
  onClose: () => void;
  children: ComponentChildren;
  wide?: boolean;
}) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (props.open && !d.open) {
      if (typeof d.showModal === 'function') d.showModal();
      else d.setAttribute('open', '');
    } else if (!props.open && d.open) {
      if (typeof d.close === 'function') d.close();
      else d.removeAttribute('open');
    }
  }, [props.open]);
  const titleId = useRef(`dlg-${++dialogSeq}`).current;
  return (
    <dialog
      ref={ref}
      class={props.wide ? 'wide' : ''}
      aria-labelledby={titleId}
      onClose={props.onClose}
      onCancel={(e: Event) => {
        e.preventDefault();
        props.onClose();
      }}
    >
      {props.open && (
        <div class="dialog-body">
          <header class="dialog-head">
            <h2 id={titleId}>{props.title}</h2>
            <button type="button" class="icon" aria-label={t('action.close')} onClick={props.onClose}>
              ×
            </button>
          </header>
          {props.children}
        </div>
      )}
    </dialog>
  );
}

/** A button that asks first; the action's error is shown in the dialog. */
export function ConfirmButton(props: {
  label: string;
  title: string;
  message: string;
  confirmLabel?: string;
  danger?: boolean;
  disabled?: boolean;
  onConfirm: () => Promise<unknown>;
}) {
  const [open, setOpen] = useState(false);
  const [busy, setBusy] = useState(false);
  const [err, setErr] = useState<Error | undefined>();
  const run = async (): Promise<void> => {
    setBusy(true);
    setErr(undefined);
    try {
      await props.onConfirm();
      setOpen(false);
    } catch (e) {
      setErr(e instanceof Error ? e : new Error(String(e)));
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <button
        type="button"
        class={props.danger ? 'danger' : ''}
        disabled={props.disabled}
        onClick={() => {
          setErr(undefined);
          setOpen(true);
        }}
      >
        {props.label}
      </button>
      <Dialog open={open} title={props.title} onClose={() => setOpen(false)}>
        <p>{props.message}</p>
        {err && <ErrorBox error={err} />}
        <div class="actions">
          <button type="button" onClick={() => setOpen(false)}>
            {t('action.cancel')}
          </button>
          <button type="button" class={props.danger ? 'danger' : 'primary'} disabled={busy} onClick={run}>
            {props.confirmLabel ?? props.label}
          </button>
        </div>
      </Dialog>
    </>
  );
}

/** Copies text; says so for screen readers too. */
export function CopyButton({ text, label }: { text: string; label?: string }) {
  const [done, setDone] = useState<'' | 'ok' | 'fail'>('');
  const copy = async (): Promise<void> => {
    try {
      await navigator.clipboard.writeText(text);
      setDone('ok');
    } catch {
      setDone('fail');
    }
    setTimeout(() => setDone(''), 2000);
  };
  return (
    <button type="button" class="copy" onClick={copy} aria-label={label ?? t('action.copy')}>
      {done === 'ok' ? t('action.copied') : done === 'fail' ? t('action.copyFailed') : (label ?? t('action.copy'))}
      <span class="sr-only" aria-live="polite">
        {done === 'ok' ? t('action.copied') : ''}
      </span>
    </button>
  );
}

/** A code block with its own copy button. */
export function Snippet({ title, code }: { title: string; code: string }) {
  return (
    <figure class="snippet">
      <figcaption>
        <span>{title}</span>
        <CopyButton text={code} label={t('action.copyNamed', { name: title })} />
      </figcaption>
      <pre>
        <code>{code}</code>
      </pre>
    </figure>
  );
}

export function Field(props: { label: string; hint?: string; children: JSX.Element; id: string }) {
  return (
    <div class="field">
      <label for={props.id}>{props.label}</label>
      {props.children}
      {props.hint && (
        <small id={`${props.id}-hint`} class="hint">
          {props.hint}
        </small>
      )}
    </div>
  );
}

/** Three columns of headline numbers. */
export function Stat({ label, value, sub }: { label: string; value: string; sub?: string }) {
  return (
    <div class="stat">
      <dt>{label}</dt>
      <dd>
        {value}
        {sub && <small>{sub}</small>}
      </dd>
    </div>
  );
}
