import { setFetch } from '../src/api/client';

/** One call to the fake relay; text is the body exactly as sent (body is it parsed). */
export type Call = { method: string; path: string; query: URLSearchParams; headers: Headers; body: unknown; text: string };
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
      text,
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

/** A CostBreakdown of n requests: $0.036 each (0.01 + 0.02 + 0.005 + 0.001). */
export const cost = (n: number) => ({
  input: 0.01 * n,
  output: 0.02 * n,
  cache_write_5m: 0.005 * n,
  cache_write_1h: 0,
  cache_read: 0.001 * n,
  web_search: 0,
  web_fetch: 0,
});

/** UsageTotals of n requests, every required field present. */
export const totals = (n: number) => ({
  requests: n,
  input_tokens: 10 * n,
  output_tokens: 5 * n,
  cache_creation_input_tokens: 2 * n,
  cache_read_input_tokens: 8 * n,
  total_tokens: 25 * n,
  cost_usd: Math.round(36 * n) / 1000,
  cost: cost(n),
  cache_saved_usd: Math.round(9 * n) / 1000,
});

/** SeriesTotals of n requests (one rate-limited, one refused when n > 1), every field present. */
export const seriesTotals = (n: number, over: Record<string, unknown> = {}) => ({
  requests: n,
  input_tokens: 10 * n,
  output_tokens: 5 * n,
  cache_creation_input_tokens: 2 * n,
  cache_read_input_tokens: 8 * n,
  total_tokens: 25 * n,
  cost_usd: Math.round(36 * n) / 1000,
  cache_saved_usd: Math.round(9 * n) / 1000,
  status: { ok: n > 1 ? n - 1 : n, client_error: 0, rate_limited: n > 1 ? 1 : 0, server_error: 0, overloaded: 0, refused: n > 1 ? 1 : 0 },
  ttfb_samples: n,
  ttfb_p50_ms: n > 0 ? 120 : null,
  ttfb_p95_ms: n > 0 ? 2300 : null,
  ...over,
});

/** GET /admin/usage/series over [from, to) with one point per start given. */
export function series(from: string, to: string, step: 'hour' | 'day', starts: string[]) {
  return {
    from,
    to,
    step,
    totals: seriesTotals(2 * starts.length),
    points: starts.map((start) => ({ ...seriesTotals(2), start })),
  };
}

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
    allowed_models: [],
    budgets: [],
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
    last_used_at: null,
    ...over,
  };
}

/** A Quota (GET /api/usage/quota, GET /admin/api-keys/{id}/quota). */
export function quota(over: Record<string, unknown> = {}) {
  return {
    token_limit: 1000,
    tokens_used: 400,
    tokens_reserved: 10,
    tokens_remaining: 590,
    usage_ratio: 0.4,
    is_active: true,
    expires_at: null,
    tier: { name: 'basic', requests: { limit: 100, period: 60, remaining: 99, reset_after_seconds: 0.6 } },
    budgets: [],
    ...over,
  };
}

/** A MoneyBudgetStatus. */
export function budget(over: Record<string, unknown> = {}) {
  return {
    window: 'day',
    limit_usd: 25,
    used_usd: 10,
    reserved_usd: 5,
    remaining_usd: 10,
    resets_at: null,
    ...over,
  };
}

/** A UsageLog with every required field. */
export function log(over: Record<string, unknown> = {}) {
  return {
    request_id: 'req_0001',
    key_id: '0b7c6a55-2d7e-4c36-9a0c-4bb0b9c3e7c1',
    time: '2026-03-10T12:00:00Z',
    model: 'claude-sonnet-4-5',
    path: '/v1/messages',
    status: 200,
    stream: false,
    input_tokens: 3,
    output_tokens: 600,
    cache_creation_input_tokens: 2000,
    cache_read_input_tokens: 45000,
    total_tokens: 47603,
    estimated: false,
    latency_ms: 1234,
    ttfb_ms: 321,
    upstream_request_id: 'req_up_1',
    session_id: '',
    client_ip: '203.0.113.7',
    error_type: '',
    endpoint: 'messages',
    requested_model: '',
    batch: false,
    service_tier: 'standard',
    speed: '',
    inference_geo: 'global',
    web_search_requests: 0,
    web_fetch_requests: 0,
    upstream: 'primary',
    cost_usd: 0.034509,
    cost: { input: 0.000009, output: 0.009, cache_write_5m: 0, cache_write_1h: 0.012, cache_read: 0.0135, web_search: 0, web_fetch: 0 },
    price_version: '2026-12-01.1',
    cost_fallback_5m: false,
    cost_unpriced: false,
    cost_detail: null,
    cache_saved_usd: 0.1215,
    attempts: 1,
    tried_upstreams: [],
    ...over,
  };
}

/** GET /admin/pricing: one model, the refuse policy, one unpriced model. */
export function pricing(over: Record<string, unknown> = {}) {
  return {
    version: '2026-12-01.1',
    source: 'https://platform.claude.com/docs/en/about-claude/pricing',
    sources: ['https://platform.claude.com/docs/en/build-with-claude/batch-processing'],
    retrieved: '2026-12-01',
    comment: 'seed',
    models: [
      {
        id: 'claude-sonnet-4-5-20250929',
        aliases: ['claude-sonnet-4-5'],
        patterns: ['claude-sonnet-4-5-20*'],
        name: 'Claude Sonnet 4.5',
        rates: { input: '3', output: '15', cache_write_5m: '3.75', cache_write_1h: '6', cache_read: '0.30' },
        long_context: {
          above_prompt_tokens: 200000,
          rates: { input: '6', output: '22.50', cache_write_5m: '7.50', cache_write_1h: '12', cache_read: '0.60' },
        },
        geo: { us: '1.1' },
        web_search_per_1000: '10',
        web_fetch_per_1000: '0',
      },
    ],
    policy: { unpriced: 'refuse', fallback_model: null },
    unpriced_models: [
      { model: 'claude-future-9', requests: 3, first_seen: '2026-12-01T10:00:00Z', last_seen: '2026-12-01T11:00:00Z' },
    ],
    ...over,
  };
}

/** An Upstream of GET /admin/upstreams, healthy, every required field present. */
export function upstream(over: Record<string, unknown> = {}) {
  return {
    id: 'primary',
    name: 'primary',
    url: 'https://api.anthropic.com',
    api_key_last4: 'abcd',
    priority: 0,
    weight: 1,
    max_concurrency: null,
    models: [],
    group: '',
    enabled: true,
    disabled_reason: null,
    state: 'healthy',
    state_reason: null,
    state_since: null,
    state_until: null,
    in_flight: 0,
    recent_errors: 0,
    last_probe: null,
    headroom: null,
    cache_hit_rate: null,
    models_state: [],
    loaded: true,
    created_at: '2026-01-01T00:00:00Z',
    updated_at: '2026-01-01T00:00:00Z',
    ...over,
  };
}
