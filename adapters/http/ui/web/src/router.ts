// A small history router: the relay answers every /ui/* page with
// index.html, and the app picks the page from the path.
import { h, type ComponentChildren } from 'preact';
import { useEffect, useState } from 'preact/hooks';

export const BASE = '/ui';

const listeners = new Set<() => void>();

function notify(): void {
  for (const l of listeners) l();
}

if (typeof window !== 'undefined') window.addEventListener('popstate', notify);

/** The app path: location.pathname without /ui ("/" for the overview). */
export function currentPath(): string {
  const p = location.pathname;
  if (p === BASE || p === `${BASE}/`) return '/';
  return p.startsWith(`${BASE}/`) ? p.slice(BASE.length).replace(/\/+$/, '') || '/' : p;
}

export function currentQuery(): URLSearchParams {
  return new URLSearchParams(location.search);
}

/** Goes to an app path ("/keys?name=x"); replace keeps the history entry. */
export function navigate(to: string, replace = false): void {
  const url = BASE + (to === '/' ? '/' : to);
  if (url === location.pathname + location.search) return;
  if (replace) history.replaceState(null, '', url);
  else history.pushState(null, '', url);
  notify();
}

/** Re-renders the caller when the location changes; returns the app path. */
export function useLocation(): { path: string; query: URLSearchParams } {
  const [, tick] = useState(0);
  useEffect(() => {
    const l = (): void => tick((n) => n + 1);
    listeners.add(l);
    return () => listeners.delete(l);
  }, []);
  return { path: currentPath(), query: currentQuery() };
}

/** Matches "/keys/:id" against a path; returns the params or null. */
export function match(pattern: string, path: string): Record<string, string> | null {
  const ps = pattern.split('/');
  const xs = path.split('/');
  if (ps.length !== xs.length) return null;
  const out: Record<string, string> = {};
  for (let i = 0; i < ps.length; i++) {
    const p = ps[i] ?? '';
    const x = xs[i] ?? '';
    if (p.startsWith(':')) {
      if (!x) return null;
      out[p.slice(1)] = decodeURIComponent(x);
    } else if (p !== x) return null;
  }
  return out;
}

type LinkProps = {
  href: string;
  children?: ComponentChildren;
  class?: string;
  'aria-current'?: 'page' | undefined;
  'aria-label'?: string;
};

/** An in-app link: a real <a href> (so it opens in a new tab too). */
export function Link(props: LinkProps) {
  const { href, children, ...rest } = props;
  return h(
    'a',
    {
      ...rest,
      href: BASE + (href === '/' ? '/' : href),
      onClick: (e: MouseEvent) => {
        if (e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || e.altKey) return;
        e.preventDefault();
        navigate(href);
      },
    },
    children,
  );
}
