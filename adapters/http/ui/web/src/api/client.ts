// The dashboard's only way to the relay: clients generated from
// api/openapi.yaml (openapi-typescript types, openapi-fetch calls), so the
// spec stays the one contract and the pages see exactly what the CLI sees.
import createClient, { type Client, type Middleware } from 'openapi-fetch';
import type { components, paths } from './schema.gen';
import { session } from '../session';

export type Schemas = components['schemas'];
export type APIKey = Schemas['APIKey'];
export type CreatedAPIKey = Schemas['CreatedAPIKey'];
export type UsageTotals = Schemas['UsageTotals'];
export type UsageGroup = Schemas['UsageGroup'];
export type AdminUsage = Schemas['AdminUsage'];
export type UsageLog = Schemas['UsageLog'];
export type UsageLogList = Schemas['UsageLogList'];
export type Tier = Schemas['Tier'];
export type Quota = Schemas['Quota'];
export type KeyUsage = Schemas['KeyUsage'];
export type DailyUsage = Schemas['DailyUsage'];
export type CreateKeyRequest = Schemas['CreateKeyRequest'];
export type UpdateKeyRequest = Schemas['UpdateKeyRequest'];
export type PutTierRequest = Schemas['PutTierRequest'];
export type BudgetWindow = Schemas['BudgetWindow'];
export type Budget = Schemas['Budget'];
export type BudgetInput = Schemas['BudgetInput'];
export type MoneyBudgetStatus = Schemas['MoneyBudgetStatus'];
export type CostBreakdown = Schemas['CostBreakdown'];
export type Pricing = Schemas['Pricing'];
export type PriceEntry = Schemas['PriceEntry'];
export type PriceRates = Schemas['PriceRates'];
export type PriceVersion = Schemas['PriceVersion'];
export type UnpricedModel = Schemas['UnpricedModel'];
export type Upstream = Schemas['Upstream'];
export type UpstreamModelState = Schemas['UpstreamModelState'];
export type UpstreamProbe = Schemas['UpstreamProbe'];
export type UpstreamHeadroom = Schemas['UpstreamHeadroom'];
export type RateLimitReading = Schemas['RateLimitReading'];
export type UpstreamTestResult = Schemas['UpstreamTestResult'];
export type CreateUpstreamRequest = Schemas['CreateUpstreamRequest'];
export type UpdateUpstreamRequest = Schemas['UpdateUpstreamRequest'];
export type ApiClient = Client<paths>;

/** An answer of the relay that was not a success, with its message as it came. */
export class ApiError extends Error {
  readonly status: number;
  readonly type: string;
  readonly requestId: string;
  constructor(status: number, type: string, message: string, requestId = '') {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.type = type;
    this.requestId = requestId;
  }
}

type ErrorBody = { error?: { type?: string; message?: string }; request_id?: string };

/** Turns an openapi-fetch result into its data, or throws its error as it came. */
export function unwrap<T>(r: { data?: T; error?: unknown; response: Response }): T {
  if (r.error !== undefined || !r.response.ok) {
    const body = (r.error ?? {}) as ErrorBody;
    const msg = body.error?.message || `${r.response.status} ${r.response.statusText}`.trim();
    throw new ApiError(
      r.response.status,
      body.error?.type ?? '',
      msg,
      body.request_id ?? r.response.headers.get('x-request-id') ?? '',
    );
  }
  return r.data as T;
}

/** A call that the network, not the relay, refused. */
export function asError(e: unknown): Error {
  return e instanceof Error ? e : new Error(String(e));
}

let fetchImpl: typeof fetch = (...a) => globalThis.fetch(...a);

/** Tests replace the transport. */
export function setFetch(f: typeof fetch): void {
  fetchImpl = f;
  adminClient = makeAdmin();
}

function base(): string {
  return typeof location !== 'undefined' && location.origin !== 'null' ? location.origin : 'http://localhost';
}

// The admin token is added to every /admin call but login; a 401 on one
// means the token expired or was revoked, so the session ends and the app
// returns to the login page with the relay's message.
const adminAuth: Middleware = {
  onRequest({ request, schemaPath }) {
    if (schemaPath !== '/admin/login') {
      const tok = session.token();
      if (tok) request.headers.set('Authorization', `Bearer ${tok}`);
    }
    return request;
  },
  async onResponse({ response, schemaPath }) {
    if (response.status === 401 && schemaPath !== '/admin/login') {
      let msg = '';
      try {
        msg = ((await response.clone().json()) as ErrorBody).error?.message ?? '';
      } catch {
        /* not JSON */
      }
      session.end(msg || 'unauthorized');
    }
    return response;
  },
};

function makeAdmin(): ApiClient {
  const c = createClient<paths>({ baseUrl: base(), fetch: (r) => fetchImpl(r) });
  c.use(adminAuth);
  return c;
}

let adminClient = makeAdmin();

/** The client for /admin/*, carrying the signed-in admin's token. */
export function admin(): ApiClient {
  return adminClient;
}

/**
 * A client for /api/* that authenticates with a proxy key. The key lives
 * only in this closure: it is never written to any storage.
 */
export function keyHolder(proxyKey: string): ApiClient {
  const c = createClient<paths>({ baseUrl: base(), fetch: (r) => fetchImpl(r) });
  c.use({
    onRequest({ request }) {
      request.headers.set('Authorization', `Bearer ${proxyKey}`);
      return request;
    },
  });
  return c;
}

/** HTTP Basic credentials, UTF-8 safe (btoa alone takes only Latin-1). */
export function basicAuth(user: string, password: string): string {
  const bytes = new TextEncoder().encode(`${user}:${password}`);
  let bin = '';
  for (const b of bytes) bin += String.fromCharCode(b);
  return `Basic ${btoa(bin)}`;
}
