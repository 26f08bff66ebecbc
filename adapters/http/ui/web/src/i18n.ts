// Language selection; every string is in messages.ts, the one catalogue.
import { useEffect, useState } from 'preact/hooks';
import { messages, type MsgKey } from './messages';

export type Lang = keyof typeof messages;
export type { MsgKey };

const STORE = 'relay.lang'; // a preference, not a secret

function initial(): Lang {
  try {
    const saved = localStorage.getItem(STORE);
    if (saved === 'en' || saved === 'zh') return saved;
  } catch {
    /* storage disabled */
  }
  return typeof navigator !== 'undefined' && navigator.language?.toLowerCase().startsWith('zh') ? 'zh' : 'en';
}

let current: Lang = initial();
const listeners = new Set<() => void>();

function apply(): void {
  if (typeof document !== 'undefined') document.documentElement.lang = current === 'zh' ? 'zh-CN' : 'en';
}
apply();

export function lang(): Lang {
  return current;
}

export function setLang(l: Lang): void {
  if (l === current) return;
  current = l;
  try {
    localStorage.setItem(STORE, l);
  } catch {
    /* storage disabled */
  }
  apply();
  for (const f of listeners) f();
}

/** The message for key, with {name} placeholders filled from vars. */
export function t(key: MsgKey, vars?: Record<string, string | number>): string {
  const s = messages[current][key] ?? messages.en[key];
  if (!vars) return s;
  return s.replace(/\{(\w+)\}/g, (m, k: string) => (k in vars ? String(vars[k]) : m));
}

/** Re-renders the caller when the language changes. */
export function useLang(): Lang {
  const [, tick] = useState(0);
  useEffect(() => {
    const f = (): void => tick((n) => n + 1);
    listeners.add(f);
    return () => listeners.delete(f);
  }, []);
  return current;
}
