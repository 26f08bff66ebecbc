import { setFetch } from '../src/api/client';

export type Call = { method: string; path: string; query: URLSearchParams; headers: Headers; body: unknown };
type Route = (c: Call) => { status?: number; body?: unknown } | undefined;

/** A fake relay: each route answers JSON; every call is recorded. */
export function fakeRelay(routes: Record<string, Route>): Call[] {
  const calls: Call[] = [];
  setFetch(async (input: RequestInfo | URL) => {
    const req = input as Request;
    const url = new URL(req.url);
    const text = await req.text();
    const c: Call = {
      method: req.method,
      path: url.pathname,
      query: url.searchParams,
      headers: req.headers,
      body: text ? JSON.parse(text) : undefined,
    };
    calls.push(c);
    for (const [pattern, route] of Object.entries(routes)) {
      const [m, p] = pattern.split(' ');
      const re = new RegExp(`^${(p ?? '').replace(/:[a-z]+/g, '[^/]+')}$`);
      if (m === c.method && re.test(c.path)) {
        const r = route(c);
        if (r) {
          const status = r.status ?? 200;
          return new Response(status === 204 ? null : JSON.stringify(r.body ?? {}), {
            status,
            headers: { 'content-type': 'application/json' },
          });
        }
      }
    }
    return new Response(
      JSON.stringify({ type: 'error', error: { type: 'not_found_error', message: `no fake for ${c.method} ${c.path}` }, request_id: 'req_fake' }),
      { status: 404, headers: { 'content-type': 'application/json' } },
    );
  });
  return calls;
}

export function apiError(status: number, type: string, message: string) {
  return { status, body: { type: 'error', error: { type, message }, request_id: 'req_test123' } };
}

export const totals = (n: number) => ({
  requests: n,
  input_tokens: 10 * n,
  output_tokens: 5 * n,
  cache_creation_input_tokens: 2 * n,
  cache_read_input_tokens: 8 * n,
  total_tokens: 25 * n,
});

export function key(over: Record<string, unknown> = {}) {
  return {
    id: '0b7c6a55-2d7e-4c36-9a0c-4bb0b9c3e7c1',
    key_prefix: 'sk-proxy-AbC1…',
    name: 'alice',
    description: '',
    token_limit: 1000,
    tokens_used: 250,
    rate_limit_tier: 'basic',
    is_active: true,
    expires_at: null,
    allowed_ips: [],
    allowed_domains: [],
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
    last_used_at: null,
    ...over,
  };
}
