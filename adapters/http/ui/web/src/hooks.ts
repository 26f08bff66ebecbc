import { useCallback, useEffect, useRef, useState } from 'preact/hooks';
import { asError } from './api/client';

export type Async<T> = {
  data: T | undefined;
  error: Error | undefined;
  loading: boolean;
  reload: () => void;
};

/**
 * Runs load whenever deps change and keeps its latest result. An answer
 * that arrives after a newer call started is dropped, so quick filter
 * changes never show stale rows.
 */
export function useAsync<T>(load: () => Promise<T>, deps: unknown[]): Async<T> {
  const [state, setState] = useState<{ data?: T; error?: Error; loading: boolean }>({ loading: true });
  const seq = useRef(0);
  const [n, setN] = useState(0);
  useEffect(() => {
    const mine = ++seq.current;
    setState((s) => ({ data: s.data, loading: true }));
    load().then(
      (data) => mine === seq.current && setState({ data, loading: false }),
      (e: unknown) => mine === seq.current && setState({ error: asError(e), loading: false }),
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, n]);
  const reload = useCallback(() => setN((x) => x + 1), []);
  return { data: state.data, error: state.error, loading: state.loading, reload };
}

/** A value that follows v after it has stayed the same for ms. */
export function useDebounced<T>(v: T, ms: number): T {
  const [d, setD] = useState(v);
  useEffect(() => {
    const id = setTimeout(() => setD(v), ms);
    return () => clearTimeout(id);
  }, [v, ms]);
  return d;
}

/** The current time, ticking every second (for countdowns). */
export function useNow(active = true): number {
  const [now, setNow] = useState(Date.now());
  useEffect(() => {
    if (!active) return;
    const id = setInterval(() => setNow(Date.now()), 1000);
    return () => clearInterval(id);
  }, [active]);
  return now;
}

/**
 * Calls reload once when one of the times (RFC 3339) has passed, a couple
 * of seconds late so the relay's clock has passed it too: a budget window
 * rolled over and the numbers on the page are stale. Each time triggers at
 * most one reload, so a relay that still answers the old time is not
 * asked again and again.
 */
export function useReloadAt(times: (string | null | undefined)[], now: number, reload: (() => void) | undefined): void {
  const done = useRef(new Set<string>());
  useEffect(() => {
    if (!reload) return;
    for (const at of times) {
      if (!at || done.current.has(at)) continue;
      const when = Date.parse(at);
      if (!Number.isNaN(when) && now >= when + 2000) {
        done.current.add(at);
        reload();
        return;
      }
    }
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [now]);
}
