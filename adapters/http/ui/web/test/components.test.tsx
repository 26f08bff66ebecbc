import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/preact';
import { apiError, budget, fakeRelay, key, log, pricing, quota, series, totals, upstream } from './helpers';
import { session } from '../src/session';
import { setLang } from '../src/i18n';

vi.mock('../src/components/chart', () => import('./chart-mock'));

const { App } = await import('../src/app');
const { Me } = await import('../src/pages/me');

const ID = '0b7c6a55-2d7e-4c36-9a0c-4bb0b9c3e7c1';
const tiersRoute = () => ({ body: { data: [{ name: 'basic', requests: 100, period: 60, tokens: null, max_concurrency: null, created_at: '', updated_at: '' }] } });
/** Every call the key detail makes, answered; over replaces routes. */
function keyDetailRoutes(over: Record<string, Parameters<typeof fakeRelay>[0][string]> = {}) {
  return {
    'GET /admin/api-keys/:id': () => ({ body: key() }),
    'GET /admin/api-keys/:id/quota': () => ({ body: quota() }),
    'GET /admin/tiers': tiersRoute,
    'GET /admin/usage': (c: { query: URLSearchParams }) => ({
      body: {
        from: c.query.get('from'),
        to: c.query.get('to'),
        group_by: c.query.get('group_by'),
        totals: totals(2),
        groups: c.query.get('group_by') === 'model' ? [{ ...totals(2), group: 'claude-sonnet-4-5' }] : [],
      },
    }),
    'GET /admin/usage/logs': () => ({ body: { data: [log()], next_cursor: null } }),
    ...over,
  };
}

function at(path: string): void {
  history.replaceState(null, '', path);
}

beforeEach(() => {
  setLang('en');
  sessionStorage.clear();
  localStorage.clear();
});
afterEach(() => {
  cleanup();
  session.end();
});

describe('login', () => {
  it('sends HTTP Basic, keeps the token in sessionStorage only, and goes to the page asked for', async () => {
    const calls = fakeRelay({
      'POST /admin/login': () => ({ body: { access_token: 'jwt-token', token_type: 'bearer', expires_in: 3600 } }),
      'GET /admin/api-keys': () => ({ body: { data: [], next_cursor: null } }),
      'GET /admin/tiers': () => ({ body: { data: [] } }),
    });
    at('/ui/keys');
    render(<App />);
    const pw = await screen.findByLabelText('Password');
    fireEvent.input(pw, { target: { value: 'pässword' } });
    fireEvent.submit(pw.closest('form')!);
    await screen.findByRole('heading', { name: 'Keys' });
    const login = calls.find((c) => c.path === '/admin/login')!;
    expect(login.headers.get('authorization')).toBe('Basic YWRtaW46cMOkc3N3b3Jk');
    await waitFor(() => expect(calls.some((c) => c.path === '/admin/api-keys')).toBe(true));
    const list = calls.find((c) => c.path === '/admin/api-keys')!;
    expect(list.headers.get('authorization')).toBe('Bearer jwt-token');
    expect(sessionStorage.getItem('relay.admin.session')).toContain('jwt-token');
    expect(JSON.stringify(localStorage)).not.toContain('jwt-token');
    expect(location.pathname).toBe('/ui/keys');
  });

  it('shows the relay’s error message as it came', async () => {
    fakeRelay({ 'POST /admin/login': () => apiError(401, 'authentication_error', 'invalid admin credentials') });
    at('/ui/');
    render(<App />);
    const pw = await screen.findByLabelText('Password');
    fireEvent.input(pw, { target: { value: 'wrong' } });
    fireEvent.submit(pw.closest('form')!);
    const alert = await screen.findByRole('alert');
    expect(alert.textContent).toContain('invalid admin credentials');
    expect(alert.textContent).toContain('req_test123');
  });

  it('returns to the login page when the API answers 401, and on sign-out', async () => {
    session.start('admin', 'stale', 3600);
    fakeRelay({ 'GET /admin/tiers': () => apiError(401, 'authentication_error', 'admin token has expired; log in again') });
    at('/ui/tiers');
    render(<App />);
    await screen.findByText(/admin token has expired/);
    expect(await screen.findByLabelText('Password')).toBeTruthy();
    expect(sessionStorage.getItem('relay.admin.session')).toBeNull();
  });
});

describe('keys', () => {
  beforeEach(() => session.start('admin', 'jwt', 3600));

  it('lists a server page with bars, searches on the server and pages with the cursor', async () => {
    const calls = fakeRelay({
      'GET /admin/api-keys': (c) =>
        c.query.get('cursor')
          ? { body: { data: [key({ id: '11111111-1111-4111-8111-111111111111', name: 'bob', token_limit: null })], next_cursor: null } }
          : { body: { data: [key()], next_cursor: 'CURSOR2' } },
      'GET /admin/tiers': () => ({ body: { data: [] } }),
    });
    at('/ui/keys');
    render(<App />);
    const bar = await screen.findByRole('progressbar', { name: 'Tokens used by alice' });
    expect(bar.getAttribute('aria-valuenow')).toBe('250');
    expect(bar.getAttribute('aria-valuemax')).toBe('1000');
    fireEvent.click(screen.getByRole('button', { name: 'Next' }));
    await screen.findByText('bob');
    expect(calls.at(-1)!.query.get('cursor')).toBe('CURSOR2');
    expect(screen.getByText(/unlimited/)).toBeTruthy();
    fireEvent.input(screen.getByLabelText('Search by name'), { target: { value: 'ali' } });
    await waitFor(() => expect(calls.at(-1)!.query.get('name')).toBe('ali'));
    expect(calls.at(-1)!.query.get('cursor')).toBeNull();
  });

  it('creates a key and shows its secret once with set-up for Claude Code, the SDKs and curl', async () => {
    const calls = fakeRelay({
      'GET /admin/api-keys': () => ({ body: { data: [], next_cursor: null } }),
      'GET /admin/tiers': () => ({ body: { data: [{ name: 'basic', requests: 100, period: 60, tokens: null, max_concurrency: null, created_at: '', updated_at: '' }] } }),
      'POST /admin/api-keys': (c) => ({ status: 201, body: { ...key({ name: (c.body as { name: string }).name }), api_key: 'sk-proxy-SECRET' } }),
    });
    at('/ui/keys');
    render(<App />);
    await screen.findByText(/No keys yet/);
    fireEvent.click(screen.getByRole('button', { name: 'Create key' }));
    const dlg = await screen.findByRole('dialog');
    fireEvent.input(within(dlg).getByLabelText('Name'), { target: { value: 'carol' } });
    fireEvent.input(within(dlg).getByLabelText('Token limit'), { target: { value: '5,000,000' } });
    fireEvent.input(within(dlg).getByLabelText('Allowed IPs'), { target: { value: '10.0.0.0/8\n203.0.113.7' } });
    fireEvent.submit(within(dlg).getByLabelText('Name').closest('form')!);
    await within(dlg).findByDisplayValue('sk-proxy-SECRET');
    const post = calls.find((c) => c.method === 'POST')!;
    expect(post.body).toEqual({ name: 'carol', token_limit: 5000000, allowed_ips: ['10.0.0.0/8', '203.0.113.7'] });
    const text = dlg.textContent ?? '';
    expect(text).toContain(`ANTHROPIC_BASE_URL=${location.origin}`);
    expect(text).toContain('ANTHROPIC_AUTH_TOKEN=sk-proxy-SECRET');
    expect(text).toContain('anthropic.Anthropic(base_url=');
    expect(text).toContain('-H "x-api-key: sk-proxy-SECRET"');
  });

  it('bulk-disables the selected keys with one call after a confirmation, and says what became of each', async () => {
    const dave = '22222222-2222-4222-8222-222222222222';
    let listed = 0;
    const calls = fakeRelay({
      'GET /admin/api-keys': () => {
        listed++;
        return { body: { data: [key(), key({ id: dave, name: 'dave' })], next_cursor: null } };
      },
      'GET /admin/tiers': () => ({ body: { data: [] } }),
      'POST /admin/api-keys/bulk': (c) => {
        const b = c.body as { action: string; ids: string[] };
        return {
          body: {
            action: b.action,
            ok: 1,
            not_found: 1,
            results: [
              { id: b.ids[0], result: 'ok', changed: true },
              { id: b.ids[1], result: 'not_found', changed: false },
            ],
          },
        };
      },
    });
    at('/ui/keys');
    render(<App />);
    const all = await screen.findByLabelText('Select every key on this page');
    expect(all.tagName).toBe('INPUT');
    // Each row's box is labelled with its key, and reachable by keyboard.
    expect(screen.getByLabelText('Select dave').getAttribute('type')).toBe('checkbox');
    fireEvent.click(all);
    fireEvent.click(screen.getByRole('button', { name: 'Disable selected' }));
    const dlg = await screen.findByRole('dialog');
    expect(dlg.textContent).toContain('Disable 2 keys?');
    expect(calls.some((c) => c.method === 'POST')).toBe(false);
    fireEvent.click(within(dlg).getByRole('button', { name: 'Disable selected' }));
    const done = await screen.findByRole('status');
    expect(done.textContent).toBe('Now disabled: 1 (1 changed). 1 not found: dave.');
    const posts = calls.filter((c) => c.method === 'POST');
    expect(posts).toHaveLength(1);
    expect(posts[0]!.path).toBe('/admin/api-keys/bulk');
    expect(posts[0]!.body).toEqual({ action: 'disable', ids: [key().id, dave] });
    expect(calls.some((c) => c.path.endsWith('/disable'))).toBe(false);
    await waitFor(() => expect(listed).toBe(2));
  });

  it('shows the relay’s error when a bulk call is refused', async () => {
    fakeRelay({
      'GET /admin/api-keys': () => ({ body: { data: [key()], next_cursor: null } }),
      'GET /admin/tiers': () => ({ body: { data: [] } }),
      'POST /admin/api-keys/bulk': () => apiError(400, 'invalid_request_error', 'ids must hold 1 to 500 key ids, got 501'),
    });
    at('/ui/keys');
    render(<App />);
    fireEvent.click(await screen.findByLabelText('Select alice'));
    fireEvent.click(screen.getByRole('button', { name: 'Enable selected' }));
    fireEvent.click(within(await screen.findByRole('dialog')).getByRole('button', { name: 'Enable selected' }));
    expect((await screen.findByRole('alert')).textContent).toContain('ids must hold 1 to 500 key ids, got 501');
  });
});

describe('overview', () => {
  beforeEach(() => session.start('admin', 'jwt', 3600));

  it('shows the totals, top keys by name and top models from GET /admin/usage, with no call per key', async () => {
    const id = '0b7c6a55-2d7e-4c36-9a0c-4bb0b9c3e7c1';
    const gone = '33333333-3333-4333-8333-333333333333';
    const unknown = '55555555-5555-4555-8555-555555555555';
    const calls = fakeRelay({
      'GET /admin/usage': (c) => {
        const g = c.query.get('group_by');
        const groups =
          g === 'key'
            ? [
                { ...totals(3), group: id, key_name: 'alice' },
                { ...totals(2), group: gone, key_name: 'gone-but-named' },
                { ...totals(1), group: unknown, key_name: '' },
              ]
            : g === 'model'
              ? [{ ...totals(4), group: 'claude-sonnet-4-5' }]
              : [{ ...totals(4), group: c.query.get('from')!.slice(0, 10) }];
        return { body: { from: c.query.get('from'), to: c.query.get('to'), group_by: g, totals: totals(4), groups } };
      },
      'GET /admin/usage/series': (c) => ({ body: series(c.query.get('from')!, c.query.get('to')!, 'hour', []) }),
    });
    at('/ui/');
    render(<App />);
    await screen.findByRole('link', { name: 'alice' });
    expect(screen.getByRole('link', { name: 'gone-but-named' })).toBeTruthy();
    expect(screen.getByRole('link', { name: '55555555' })).toBeTruthy();
    expect(screen.getByText('claude-sonnet-4-5')).toBeTruthy();
    const stats = screen.getAllByRole('definition').map((d) => d.textContent);
    expect(stats).toContain('4'); // requests
    expect(stats).toContain('100'); // total tokens
    expect(stats).toContain('40%'); // cache hit: 32 / (40 + 8 + 32)
    const usage = calls.filter((c) => c.path === '/admin/usage');
    expect(usage.map((c) => c.query.get('group_by')).sort()).toEqual(['day', 'key', 'model']);
    for (const c of usage) {
      expect(c.query.get('from')).toMatch(/T00:00:00Z$/);
      expect(c.query.get('to')).toMatch(/T00:00:00Z$/);
    }
    expect(calls.some((c) => c.path.startsWith('/admin/api-keys'))).toBe(false);
  });

  it('charts error rates by class, p50/p95 time to first byte and cache savings per hour, or per day beyond 7 days', async () => {
    const calls = fakeRelay({
      'GET /admin/usage': (c) => ({
        body: { from: c.query.get('from'), to: c.query.get('to'), group_by: c.query.get('group_by'), totals: totals(4), groups: [] },
      }),
      'GET /admin/usage/series': (c) => {
        const from = c.query.get('from')!;
        const days = (Date.parse(c.query.get('to')!) - Date.parse(from)) / 86400_000;
        const step = (c.query.get('step') ?? (days > 7 ? 'day' : 'hour')) as 'hour' | 'day';
        return { body: series(from, c.query.get('to')!, step, [from]) };
      },
    });
    at('/ui/');
    render(<App />);
    await screen.findByText('Error rate by class per hour');
    const charts = () => Object.fromEntries(screen.getAllByTestId('chart').map((c) => [c.textContent, Number(c.getAttribute('data-points'))]));
    // 7 days of hours, the steps without requests filled in.
    expect(charts()).toMatchObject({
      'Error rate by class per hour': 168,
      'Time to first byte per hour (p50, p95)': 168,
      'Saved by the cache per hour (USD)': 168,
    });
    const stat = (label: string) => screen.getAllByText(label, { selector: 'dt' })[0]!.nextElementSibling!.textContent;
    expect(stat('Error rate')).toBe('50%'); // 1 rate-limited of 2
    expect(stat('First byte, p50')).toBe('120 ms');
    expect(stat('First byte, p95')).toBe('2.3 s');
    expect(stat('Refused by the relay')).toBe('50%1 of 2 requests');
    const first = calls.find((c) => c.path === '/admin/usage/series')!;
    expect(first.query.get('step')).toBeNull();

    fireEvent.change(screen.getByLabelText('Range'), { target: { value: '90' } });
    await screen.findByText('Error rate by class per day');
    expect(charts()['Error rate by class per day']).toBe(90);
    // 90 days of hourly points, asked for: 2,160 of them.
    fireEvent.change(screen.getByLabelText('Points'), { target: { value: 'hour' } });
    await screen.findByText('Error rate by class per hour');
    expect(calls.at(-1)!.query.get('step')).toBe('hour');
    expect(charts()['Time to first byte per hour (p50, p95)']).toBe(2160);
  });

  it('shows the series’ own error apart from the totals', async () => {
    fakeRelay({
      'GET /admin/usage': (c) => ({
        body: { from: c.query.get('from'), to: c.query.get('to'), group_by: c.query.get('group_by'), totals: totals(4), groups: [] },
      }),
      'GET /admin/usage/series': () => apiError(400, 'invalid_request_error', 'usage series: from and to must be whole hours'),
    });
    at('/ui/');
    render(<App />);
    expect((await screen.findByRole('alert')).textContent).toContain('usage series: from and to must be whole hours');
    expect(screen.getAllByText('Requests', { selector: 'dt' }).length).toBeGreaterThan(0);
  });
});

describe('key holder page', () => {
  it('keeps the key in memory only and shows quota, usage and logs from /api/usage*', async () => {
    const calls = fakeRelay({
      'GET /api/usage/quota': () => ({
        body: {
          token_limit: 1000, tokens_used: 400, tokens_reserved: 10, tokens_remaining: 590, usage_ratio: 0.4,
          is_active: true, expires_at: null,
          tier: { name: 'basic', requests: { limit: 100, period: 60, remaining: 99, reset_after_seconds: 0.6 } },
        },
      }),
      'GET /api/usage/daily': (c) => ({ body: { from: c.query.get('from'), to: c.query.get('to'), data: [] } }),
      'GET /api/usage': (c) => ({ body: { ...totals(2), from: c.query.get('from'), to: c.query.get('to'), by_model: [{ ...totals(2), model: 'claude-haiku-4-5' }] } }),
      'GET /api/usage/logs': () => ({ body: { data: [], next_cursor: null } }),
    });
    render(<Me />);
    fireEvent.input(screen.getByLabelText('Proxy key'), { target: { value: 'sk-proxy-MINE' } });
    fireEvent.submit(screen.getByLabelText('Proxy key').closest('form')!);
    await screen.findByRole('progressbar', { name: 'Quota' });
    await screen.findByText('claude-haiku-4-5');
    expect(screen.getByText('99 of 100 left per 1 min', { exact: false })).toBeTruthy();
    for (const c of calls) expect(c.headers.get('authorization')).toBe('Bearer sk-proxy-MINE');
    const stored = JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }) + document.cookie;
    expect(stored).not.toContain('sk-proxy-MINE');
    expect((screen.queryByLabelText('Proxy key') as HTMLInputElement | null)?.value ?? '').toBe('');
  });

  it('shows a refusal as the relay said it', async () => {
    fakeRelay({ 'GET /api/usage/quota': () => apiError(401, 'authentication_error', 'invalid API key') });
    render(<Me />);
    fireEvent.input(screen.getByLabelText('Proxy key'), { target: { value: 'sk-proxy-BAD' } });
    fireEvent.submit(screen.getByLabelText('Proxy key').closest('form')!);
    expect((await screen.findByRole('alert')).textContent).toContain('invalid API key');
  });
});

describe('money budgets', () => {
  beforeEach(() => session.start('admin', 'jwt', 3600));

  it('shows each key’s tokens and budgets as bars with reset countdowns from the list alone', async () => {
    const resets = new Date(Date.now() + 3909_000).toISOString();
    const calls = fakeRelay({
      'GET /admin/api-keys': () => ({
        body: {
          data: [
            key({
              tokens_used: 250,
              budgets: [{ window: 'day', limit_usd: 25, time_zone: 'Europe/Paris' }, { window: 'total', limit_usd: 100 }],
              quota: {
                tokens_used: 300, tokens_reserved: 40, tokens_remaining: 660, usage_ratio: 0.3,
                budgets: [
                  budget({ window: 'day', time_zone: 'Europe/Paris', resets_at: resets }),
                  budget({ window: 'total', limit_usd: 100, used_usd: 1, reserved_usd: 0, remaining_usd: 99, resets_at: null }),
                ],
              },
            }),
            key({ id: '22222222-2222-4222-8222-222222222222', name: 'dave', token_limit: null,
              quota: { tokens_used: 250, tokens_reserved: 0, tokens_remaining: null, usage_ratio: null, budgets: [] } }),
          ],
          next_cursor: null,
        },
      }),
      'GET /admin/tiers': () => ({ body: { data: [] } }),
    });
    at('/ui/keys');
    render(<App />);
    // The ledger's figure, not the stored one, as on the key detail.
    const tokens = await screen.findByRole('progressbar', { name: 'Tokens used by alice' });
    expect(tokens.getAttribute('aria-valuenow')).toBe('300');
    const alice = screen.getByRole('row', { name: /alice/ });
    expect(alice.textContent).toContain('40 held by requests in flight');
    const day = within(alice).getByRole('progressbar', { name: 'Day (Europe/Paris) budget of alice' });
    expect(day.getAttribute('aria-valuetext')).toBe('$10.00 used, $5.00 reserved, of $25.00');
    expect(day.closest('.budget')!.textContent).toMatch(/resets in 1:05:0\d/);
    expect(within(alice).getByRole('progressbar', { name: 'Total budget of alice' }).closest('.budget')!.textContent).toContain('never resets');
    expect(screen.getByRole('row', { name: /dave/ }).textContent).toContain('none');
    expect(calls.filter((c) => c.path.startsWith('/admin/api-keys'))).toHaveLength(1);
  });

  it('lists budget limits on the key list without one quota call per key', async () => {
    const calls = fakeRelay({
      'GET /admin/api-keys': () => ({
        body: {
          data: [
            key({ budgets: [{ window: 'day', limit_usd: 25, time_zone: 'Europe/Paris' }, { window: 'month', limit_usd: 200 }] }),
            key({ id: '22222222-2222-4222-8222-222222222222', name: 'dave' }),
          ],
          next_cursor: null,
        },
      }),
      'GET /admin/tiers': () => ({ body: { data: [] } }),
    });
    at('/ui/keys');
    render(<App />);
    await screen.findByText('alice');
    const alice = screen.getByRole('row', { name: /alice/ });
    expect(alice.textContent).toContain('Day (Europe/Paris) $25.00');
    expect(alice.textContent).toContain('Month $200.00');
    expect(screen.getByRole('row', { name: /dave/ }).textContent).toContain('none');
    expect(calls.some((c) => c.path.endsWith('/quota'))).toBe(false);
  });

  it('shows each budget on the key detail: used, reserved shaded, left and a reset countdown', async () => {
    const resets = new Date(Date.now() + 3909_000).toISOString();
    const calls = fakeRelay(
      keyDetailRoutes({
        'GET /admin/api-keys/:id/quota': () => ({
          body: quota({
            budgets: [
              budget({ window: 'day', time_zone: 'Europe/Paris', resets_at: resets }),
              budget({ window: 'total', limit_usd: 100, used_usd: 1, reserved_usd: 0, remaining_usd: 99, resets_at: null }),
            ],
          }),
        }),
      }),
    );
    at(`/ui/keys/${ID}`);
    render(<App />);
    const day = await screen.findByRole('progressbar', { name: 'Day (Europe/Paris) budget of alice' });
    expect(day.getAttribute('aria-valuenow')).toBe('10');
    expect(day.getAttribute('aria-valuemax')).toBe('25');
    expect(day.getAttribute('aria-valuetext')).toBe('$10.00 used, $5.00 reserved, of $25.00');
    // Used fills 10/25 of the bar, reserved the next 5/25, shaded.
    expect((day.querySelector('.fill') as HTMLElement).style.width).toBe('40%');
    expect((within(day).getByTestId('reserved') as HTMLElement).style.width).toBe('20%');
    const box = day.closest('.budget')!;
    expect(box.textContent).toContain('$5.00 reserved');
    expect(box.textContent).toContain('$10.00 left');
    expect(box.textContent).toMatch(/resets in 1:05:0\d/);
    expect(box.querySelector('time')!.getAttribute('datetime')).toBe(resets);
    const total = screen.getByRole('progressbar', { name: 'Total budget of alice' });
    expect(within(total).queryByTestId('reserved')).toBeNull();
    expect(total.closest('.budget')!.textContent).toContain('never resets');
    expect(calls.filter((c) => c.path === `/admin/api-keys/${ID}/quota`)).toHaveLength(1);
    // Cost per day (a chart), per model and per class; recent requests with their cost.
    expect(screen.getAllByTestId('chart').map((c) => c.textContent)).toContain('Cost per day (USD)');
    expect(screen.getByRole('row', { name: /claude-sonnet-4-5 2 \$0\.072/ })).toBeTruthy();
    expect(screen.getByRole('table', { name: 'What the usage cost, per price class' }).textContent).toContain('$0.072');
    expect(await screen.findByText('$0.034509')).toBeTruthy();
  });

  it('fetches the quota again once a window has reset, and only once', async () => {
    let n = 0;
    const calls = fakeRelay(
      keyDetailRoutes({
        'GET /admin/api-keys/:id/quota': () => {
          n++;
          const at = n === 1 ? new Date(Date.now() - 5000) : new Date(Date.now() + 600_000);
          return { body: quota({ budgets: [budget({ window: '5h', resets_at: at.toISOString() })] }) };
        },
      }),
    );
    at(`/ui/keys/${ID}`);
    render(<App />);
    await screen.findByRole('progressbar', { name: '5 hours (rolling) budget of alice' });
    await waitFor(() => expect(calls.filter((c) => c.path.endsWith('/quota'))).toHaveLength(2));
    await screen.findByText(/resets in (10:00|9:5\d)/);
    await new Promise((r) => setTimeout(r, 50));
    expect(calls.filter((c) => c.path.endsWith('/quota'))).toHaveLength(2);
  });
});

describe('key form', () => {
  beforeEach(() => session.start('admin', 'jwt', 3600));

  async function openCreate() {
    const calls = fakeRelay({
      'GET /admin/api-keys': () => ({ body: { data: [], next_cursor: null } }),
      'GET /admin/tiers': tiersRoute,
      'POST /admin/api-keys': (c) => ({ status: 201, body: { ...key({ name: (c.body as { name: string }).name }), api_key: 'sk-proxy-SECRET' } }),
    });
    at('/ui/keys');
    render(<App />);
    await screen.findByText(/No keys yet/);
    fireEvent.click(screen.getByRole('button', { name: 'Create key' }));
    const dlg = await screen.findByRole('dialog');
    fireEvent.input(within(dlg).getByLabelText('Name'), { target: { value: 'erin' } });
    return { calls, dlg };
  }

  it('sends budgets with their limits as the exact strings typed, and allowed models', async () => {
    const { calls, dlg } = await openCreate();
    fireEvent.click(within(dlg).getByRole('button', { name: 'Add budget' }));
    fireEvent.click(within(dlg).getByRole('button', { name: 'Add budget' }));
    const [w1, w2] = within(dlg).getAllByLabelText('Window') as HTMLSelectElement[];
    expect(w1!.value).toBe('day');
    expect(w2!.value).toBe('month');
    const [l1, l2] = within(dlg).getAllByLabelText('Limit (USD)');
    const [z1, z2] = within(dlg).getAllByLabelText('Time zone') as HTMLInputElement[];
    fireEvent.input(l1!, { target: { value: '10.50' } });
    fireEvent.input(z1!, { target: { value: 'Europe/Paris' } });
    fireEvent.change(w2!, { target: { value: 'total' } });
    expect(z2!.disabled).toBe(true);
    fireEvent.input(l2!, { target: { value: '0.123456789' } });
    fireEvent.click(within(dlg).getByRole('button', { name: 'Add budget' }));
    fireEvent.input(within(dlg).getAllByLabelText('Limit (USD)')[2]!, { target: { value: '$9007199.254740991' } });
    fireEvent.input(within(dlg).getByLabelText('Allowed models'), { target: { value: 'claude-sonnet-*\nclaude-haiku-4-5' } });
    fireEvent.submit(within(dlg).getByLabelText('Name').closest('form')!);
    await within(dlg).findByDisplayValue('sk-proxy-SECRET');
    const post = calls.find((c) => c.method === 'POST')!;
    expect(post.body).toEqual({
      name: 'erin',
      allowed_models: ['claude-sonnet-*', 'claude-haiku-4-5'],
      budgets: [
        { window: 'day', limit_usd: '10.50', time_zone: 'Europe/Paris' },
        { window: 'total', limit_usd: '0.123456789' },
        // The third row took the first window not in use: month, freed above.
        { window: 'month', limit_usd: '9007199.254740991' },
      ],
    });
    // Strings, not numbers: the relay reads them exactly.
    expect(post.text).toContain('"limit_usd":"10.50"');
    expect(post.text).toContain('"limit_usd":"9007199.254740991"');
  });

  it('explains a bad budget and sends nothing', async () => {
    const { calls, dlg } = await openCreate();
    const form = within(dlg).getByLabelText('Name').closest('form')!;
    fireEvent.click(within(dlg).getByRole('button', { name: 'Add budget' }));
    const cases: [string, RegExp][] = [
      ['10,5', /Budget 1: the limit must be a plain amount in USD with at most 9 decimals/],
      ['', /Budget 1: enter a limit in USD/],
      ['0.000', /Budget 1: the limit must be more than 0/],
      ['9007199.254740992', /Budget 1: the limit can be at most 9007199\.254740991 USD/],
      ['1.0000000001', /at most 9 decimals/],
      ['-5', /plain amount/],
      ['1e3', /plain amount/],
    ];
    for (const [v, msg] of cases) {
      fireEvent.input(within(dlg).getByLabelText('Limit (USD)'), { target: { value: v } });
      fireEvent.submit(form);
      await waitFor(() => expect(within(dlg).getByRole('alert').textContent).toMatch(msg));
    }
    fireEvent.input(within(dlg).getByLabelText('Limit (USD)'), { target: { value: '5' } });
    fireEvent.input(within(dlg).getByLabelText('Time zone'), { target: { value: 'Mars/Olympus' } });
    fireEvent.submit(form);
    await waitFor(() => expect(within(dlg).getByRole('alert').textContent).toContain('“Mars/Olympus” is not a known IANA time zone'));
    fireEvent.input(within(dlg).getByLabelText('Time zone'), { target: { value: '' } });
    fireEvent.click(within(dlg).getByRole('button', { name: 'Add budget' }));
    fireEvent.change(within(dlg).getAllByLabelText('Window')[1]!, { target: { value: 'day' } });
    fireEvent.input(within(dlg).getAllByLabelText('Limit (USD)')[1]!, { target: { value: '7' } });
    fireEvent.submit(form);
    await waitFor(() => expect(within(dlg).getByRole('alert').textContent).toContain('Budget 2: there is already a Day budget'));
    fireEvent.click(within(dlg).getByRole('button', { name: 'Remove budget 2' }));
    expect(within(dlg).getAllByLabelText('Window')).toHaveLength(1);
    for (let i = 1; i < 8; i++) fireEvent.click(within(dlg).getByRole('button', { name: 'Add budget' }));
    expect((within(dlg).getByRole('button', { name: 'Add budget' }) as HTMLButtonElement).disabled).toBe(true);
    expect(calls.some((c) => c.method === 'POST')).toBe(false);
  });

  it('on edit, sends budgets only when they changed, and then all of them', async () => {
    const k = key({ budgets: [{ window: 'month', limit_usd: 200 }, { window: 'day', limit_usd: 0.000000001, time_zone: 'Asia/Shanghai' }], allowed_models: ['claude-*'] });
    const calls = fakeRelay(
      keyDetailRoutes({
        'GET /admin/api-keys/:id': () => ({ body: k }),
        'PATCH /admin/api-keys/:id': (c) => ({ body: { ...k, ...(c.body as object), updated_at: '2026-01-02T00:00:00Z' } }),
      }),
    );
    at(`/ui/keys/${ID}`);
    render(<App />);
    fireEvent.click(await screen.findByRole('button', { name: 'Edit' }));
    let dlg = await screen.findByRole('dialog');
    const limits = within(dlg).getAllByLabelText('Limit (USD)') as HTMLInputElement[];
    expect(limits.map((l) => l.value)).toEqual(['200', '0.000000001']);
    expect((within(dlg).getAllByLabelText('Time zone')[1] as HTMLInputElement).value).toBe('Asia/Shanghai');
    expect((within(dlg).getByLabelText('Allowed models') as HTMLTextAreaElement).value).toBe('claude-*');
    fireEvent.input(within(dlg).getByLabelText('Name'), { target: { value: 'alice2' } });
    fireEvent.submit(within(dlg).getByLabelText('Name').closest('form')!);
    await waitFor(() => expect(calls.filter((c) => c.method === 'PATCH')).toHaveLength(1));
    expect(calls.find((c) => c.method === 'PATCH')!.body).toEqual({ name: 'alice2' });
    // The quota is fetched again after the edit (the key's updated_at changed).
    await waitFor(() => expect(calls.filter((c) => c.path.endsWith('/quota'))).toHaveLength(2));

    fireEvent.click(await screen.findByRole('button', { name: 'Edit' }));
    dlg = await screen.findByRole('dialog');
    fireEvent.input(within(dlg).getAllByLabelText('Limit (USD)')[0]!, { target: { value: '250.5' } });
    fireEvent.input(within(dlg).getByLabelText('Allowed models'), { target: { value: '' } });
    fireEvent.submit(within(dlg).getByLabelText('Name').closest('form')!);
    await waitFor(() => expect(calls.filter((c) => c.method === 'PATCH')).toHaveLength(2));
    expect(calls.filter((c) => c.method === 'PATCH')[1]!.body).toEqual({
      allowed_models: [],
      budgets: [
        { window: 'month', limit_usd: '250.5' },
        { window: 'day', limit_usd: '0.000000001', time_zone: 'Asia/Shanghai' },
      ],
    });
  });
});

describe('request logs', () => {
  beforeEach(() => session.start('admin', 'jwt', 3600));

  it('sends model, upstream and refusals-only to the server and keeps them in the URL', async () => {
    const calls = fakeRelay({ 'GET /admin/usage/logs': () => ({ body: { data: [log()], next_cursor: null } }) });
    at('/ui/logs?model=claude-sonnet-4-5&refusals_only=true');
    render(<App />);
    await screen.findByText('$0.034509');
    const first = calls.at(-1)!.query;
    expect(first.get('model')).toBe('claude-sonnet-4-5');
    expect(first.get('refusals_only')).toBe('true');
    expect(first.get('upstream')).toBeNull();
    expect((screen.getByLabelText('Refusals only') as HTMLInputElement).checked).toBe(true);
    expect((screen.getByLabelText('Model') as HTMLInputElement).value).toBe('claude-sonnet-4-5');

    fireEvent.input(screen.getByLabelText('Upstream'), { target: { value: ' backup ' } });
    fireEvent.click(screen.getByLabelText('Refusals only'));
    fireEvent.input(screen.getByLabelText('Status'), { target: { value: '429' } });
    fireEvent.submit(screen.getByRole('form', { name: 'Filters' }));
    await waitFor(() => expect(calls.at(-1)!.query.get('upstream')).toBe('backup'));
    const q = calls.at(-1)!.query;
    expect(q.get('model')).toBe('claude-sonnet-4-5');
    expect(q.get('status')).toBe('429');
    expect(q.get('refusals_only')).toBeNull();
    expect(q.get('limit')).toBe('100');
    expect(new URLSearchParams(location.search).get('upstream')).toBe('backup');
    expect(location.search).not.toContain('refusals_only');
  });

  it('drills down into tokens and cost per class, price version, flags and the cost of each step', async () => {
    const detailed = log({
      request_id: 'req_steps',
      cost_fallback_5m: true,
      cost_unpriced: true,
      status: 200,
      iterations: [
        { type: 'message', model: 'claude-sonnet-4-5', input_tokens: 3, output_tokens: 500, cache_creation_input_tokens: 2000, cache_read_input_tokens: 45000 },
        { type: 'advisor_message', model: 'claude-opus-4-6', input_tokens: 0, output_tokens: 100, cache_creation_input_tokens: 0, cache_read_input_tokens: 0 },
      ],
      cost_detail: {
        price_version: '2026-12-01.1',
        input: 9000, output: 9000000, cache_write_5m: 0, cache_write_1h: 12000000, cache_read: 13500000, web_search: 0, web_fetch: 0,
        total: 34509000,
        fallback_5m: true,
        unpriced: ['claude-mystery-1'],
        parts: [
          { type: 'message', model: 'claude-sonnet-4-5', priced_as: 'claude-sonnet-4-5-20250929', input: 9000, output: 7500000, cache_write_5m: 0, cache_write_1h: 12000000, cache_read: 13500000, total: 33009000 },
          { type: 'advisor_message', model: 'claude-opus-4-6', priced_as: 'claude-opus-4-6', input: 0, output: 1500000, cache_write_5m: 0, cache_write_1h: 0, cache_read: 0, total: 1500000, long_context: true },
        ],
      },
    });
    const refused = log({
      request_id: 'req_refused', status: 429, error_type: 'rate_limit_error', upstream: '', price_version: null, cost_usd: 0, attempts: 0,
      cost: { input: 0, output: 0, cache_write_5m: 0, cache_write_1h: 0, cache_read: 0, web_search: 0, web_fetch: 0 },
      input_tokens: 0, output_tokens: 0, cache_creation_input_tokens: 0, cache_read_input_tokens: 0, total_tokens: 0, ttfb_ms: 0,
    });
    fakeRelay({ 'GET /admin/usage/logs': () => ({ body: { data: [detailed, refused], next_cursor: null } }) });
    at('/ui/logs');
    render(<App />);
    const row = (await screen.findByText('$0.034509')).closest('tr')!;
    expect(row.textContent).toContain('primary');
    expect(within(row).getByTitle(/no price/)).toBeTruthy();
    expect(within(row).getByTitle(/5-minute rate/)).toBeTruthy();
    const refusedRow = screen.getByRole('button', { name: 'Details of req_refused' }).closest('tr')!;
    expect(within(refusedRow).getByTitle('not priced').textContent).toBe('—');

    fireEvent.click(screen.getByRole('button', { name: 'Details of req_steps' }));
    const dlg = await screen.findByRole('dialog');
    const facts = dlg.querySelector('dl')!.textContent!;
    expect(facts).toContain('Price version2026-12-01.1');
    expect(facts).toContain('Cache writes priced at the 5-min rateyes');
    expect(facts).toContain('Unpriced tokensyes (claude-mystery-1)');
    expect(facts).toContain('Upstreamprimary');
    expect(facts).toContain('First byte321 ms');
    const byClass = within(dlg).getByRole('table', { name: 'Tokens and cost by class' });
    expect(within(byClass).getByRole('row', { name: /Cache reads 45,000 \$0\.0135/ })).toBeTruthy();
    expect(within(byClass).getByRole('row', { name: /Cache writes, 1 h \$0\.012/ })).toBeTruthy();
    expect(within(byClass).getByRole('row', { name: /Billed 47,603 \$0\.034509/ })).toBeTruthy();
    const steps = within(dlg).getByRole('table', { name: 'Cost per step' });
    expect(within(steps).getByRole('row', { name: /advisor_message \(claude-opus-4-6\).*long context/ }).textContent).toContain('$0.0015');
    expect(within(steps).getByRole('row', { name: /^message/ }).textContent).toContain('$0.033009');
    expect(within(dlg).getByRole('table', { name: 'Tokens per step' })).toBeTruthy();
    fireEvent.click(within(dlg).getByRole('button', { name: 'Close' }));

    fireEvent.click(screen.getByRole('button', { name: 'Details of req_refused' }));
    const dlg2 = await screen.findByRole('dialog');
    const facts2 = dlg2.querySelector('dl')!.textContent!;
    expect(facts2).toContain('Error / refusalrate_limit_error');
    expect(facts2).toContain('Costnot priced');
    expect(facts2).toContain('Upstreamnone (answered by the relay)');
    expect(facts2).toContain('Attemptsnone (the relay answered without sending it)');
  });

  it('shows the retries and the failover of a request, in the row and the drill-down', async () => {
    fakeRelay({
      'GET /admin/usage/logs': () => ({
        body: { data: [log({ request_id: 'req_failover', attempts: 3, tried_upstreams: ['eu-1', 'eu-2'], upstream: 'primary' })], next_cursor: null },
      }),
    });
    at('/ui/logs');
    render(<App />);
    const row = (await screen.findByRole('button', { name: 'Details of req_failover' })).closest('tr')!;
    expect(within(row).getByTitle('Sent 3 times; failed over from eu-1, eu-2').textContent).toBe('×3');
    fireEvent.click(within(row).getByRole('button', { name: 'Details of req_failover' }));
    const dlg = await screen.findByRole('dialog');
    const facts = dlg.querySelector('dl')!.textContent!;
    expect(facts).toContain('Attempts3 (retried 2 times)');
    expect(facts).toContain('Upstreams tried beforeeu-1eu-2');
    expect(facts).toContain('Saved by the cache$0.1215');
    expect(Array.from(dlg.querySelectorAll('ol.tried li')).map((li) => li.textContent)).toEqual(['eu-1', 'eu-2']);
  });
});

describe('pricing', () => {
  beforeEach(() => session.start('admin', 'jwt', 3600));

  const versions = {
    data: [
      { version: '2026-12-01.1', created_at: '2026-12-01T09:00:00Z', created_by: 'seed', comment: 'embedded seed' },
      { version: '2026-11-01.1', created_at: null, created_by: 'ops', comment: 'November prices' },
    ],
  };

  it('shows the table, the policy, the unpriced models and the versions, and is linked next to Tiers', async () => {
    fakeRelay({
      'GET /admin/pricing': () => ({ body: pricing() }),
      'GET /admin/pricing/versions': () => ({ body: versions }),
    });
    at('/ui/pricing');
    render(<App />);
    const row = (await screen.findByText('claude-sonnet-4-5-20250929')).closest('tr')!;
    const cells = [...row.querySelectorAll('td')].map((c) => c.textContent);
    expect(cells.slice(0, 5)).toEqual(['$3', '$15', '$3.75', '$6', '$0.30']);
    expect(row.textContent).toContain('above 200,000 prompt tokens:');
    expect(row.textContent).toContain('Output $22.50');
    expect(row.textContent).toContain('us ×1.1');
    expect(row.textContent).toContain('also: claude-sonnet-4-5, claude-sonnet-4-5-20*');
    expect(cells.at(-2)).toBe('$10');
    expect(screen.getByText(/refused on keys with a money budget/)).toBeTruthy();
    expect(screen.getByText('claude-future-9')).toBeTruthy();
    const hist = screen.getByRole('table', { name: 'Versions' });
    expect(within(hist).getByRole('row', { name: /2026-12-01\.1 current/ }).textContent).toContain('embedded seed');
    expect(within(hist).getByRole('row', { name: /2026-11-01\.1/ }).textContent).toContain('ops');
    const nav = screen.getByRole('navigation', { name: 'Main' });
    const links = within(nav).getAllByRole('link').map((a) => a.textContent);
    expect(links.indexOf('Pricing')).toBe(links.indexOf('Tiers') + 1);
  });

  it('puts the table as pasted, and shows the relay’s 409 and 400 messages', async () => {
    let status = 409;
    const calls = fakeRelay({
      'GET /admin/pricing': () => ({ body: pricing() }),
      'GET /admin/pricing/versions': () => ({ body: versions }),
      'PUT /admin/pricing': () =>
        status === 409
          ? apiError(409, 'invalid_request_error', 'price table version "2026-12-01.1" is already stored; give the new table a new version')
          : status === 400
            ? apiError(400, 'invalid_request_error', 'invalid price table:\nmodels[0].rates.output: missing\nmodels[1]: duplicate id "x"')
            : { body: pricing({ version: '2026-12-02.1' }) },
    });
    at('/ui/pricing');
    render(<App />);
    await screen.findByText('claude-sonnet-4-5-20250929');
    const json = screen.getByLabelText('Table JSON');
    const form = json.closest('form')!;

    fireEvent.input(json, { target: { value: '{"version": ' } });
    fireEvent.submit(form);
    expect((await screen.findByRole('alert')).textContent).toContain('This is not valid JSON');
    expect(calls.some((c) => c.method === 'PUT')).toBe(false);

    const table = '{"version": "2026-12-01.1", "models": [{"id": "x", "rates": {"input": 0.30000000000000001, "output": "15", "cache_write_5m": "3.75", "cache_write_1h": "6", "cache_read": "0.3"}}]}';
    fireEvent.input(json, { target: { value: table } });
    fireEvent.input(screen.getByLabelText('Why'), { target: { value: 'new prices' } });
    fireEvent.submit(form);
    await waitFor(() => expect(screen.getByRole('alert').textContent).toContain('price table version "2026-12-01.1" is already stored'));
    expect(screen.getByRole('alert').textContent).toContain('409');
    const put = calls.find((c) => c.method === 'PUT')!;
    // Sent as pasted: the number keeps every digit.
    expect(put.text).toBe(`{"table":${table},"comment":"new prices"}`);
    expect(put.headers.get('content-type')).toBe('application/json');

    status = 400;
    fireEvent.submit(form);
    await waitFor(() => expect(screen.getByRole('alert').textContent).toContain('models[1]: duplicate id "x"'));
    expect(screen.getByRole('alert').querySelector('.error-message')!.textContent).toBe(
      'invalid price table:\nmodels[0].rates.output: missing\nmodels[1]: duplicate id "x"',
    );

    status = 200;
    fireEvent.submit(form);
    expect((await screen.findByRole('status')).textContent).toContain('Version 2026-12-02.1 is now current.');
    await waitFor(() => expect(calls.filter((c) => c.path === '/admin/pricing' && c.method === 'GET')).toHaveLength(2));
  });

  it('adds entries for an unpriced model with POST /admin/pricing/models, guarded by the current version', async () => {
    const calls = fakeRelay({
      'GET /admin/pricing': () => ({ body: pricing() }),
      'GET /admin/pricing/versions': () => ({ body: versions }),
      'POST /admin/pricing/models': () => apiError(409, 'invalid_request_error', 'the current version is no longer 2026-12-01.1'),
    });
    at('/ui/pricing');
    render(<App />);
    fireEvent.click(await screen.findByRole('button', { name: 'Add a price for claude-future-9' }));
    const json = screen.getByLabelText('Model entries JSON') as HTMLTextAreaElement;
    expect(JSON.parse(json.value)[0].id).toBe('claude-future-9');
    fireEvent.submit(json.closest('form')!);
    expect((await screen.findByRole('alert')).textContent).toContain('Give the new version a name.');
    fireEvent.input(screen.getByLabelText('New version'), { target: { value: '2026-12-02.1' } });
    const entry = '{"id": "claude-future-9", "rates": {"input": "1", "output": "5", "cache_write_5m": "1.25", "cache_write_1h": "2", "cache_read": "0.10"}}';
    fireEvent.input(json, { target: { value: entry } });
    fireEvent.submit(json.closest('form')!);
    await waitFor(() => expect(screen.getByRole('alert').textContent).toContain('the current version is no longer 2026-12-01.1'));
    const post = calls.find((c) => c.method === 'POST')!;
    expect(post.text).toBe(`{"base_version":"2026-12-01.1","version":"2026-12-02.1","models":[${entry}]}`);
  });
});

describe('money on the overview and the key holder page', () => {
  it('shows cost, top keys by cost, cost by class and what the cache saved', async () => {
    session.start('admin', 'jwt', 3600);
    const cheap = '44444444-4444-4444-8444-444444444444';
    fakeRelay({
      'GET /admin/usage': (c) => {
        const g = c.query.get('group_by');
        const groups =
          g === 'key'
            ? [
                { ...totals(5), cost_usd: 0.01, group: cheap, key_name: 'cheap' },
                { ...totals(1), cost_usd: 0.5, group: ID, key_name: 'alice' },
              ]
            : g === 'model'
              ? [{ ...totals(4), group: 'claude-sonnet-4-5' }]
              : [{ ...totals(4), group: c.query.get('from')!.slice(0, 10) }];
        return { body: { from: c.query.get('from'), to: c.query.get('to'), group_by: g, totals: totals(4), groups } };
      },
      'GET /admin/usage/series': (c) => ({ body: series(c.query.get('from')!, c.query.get('to')!, 'hour', []) }),
    });
    at('/ui/');
    render(<App />);
    await screen.findByRole('link', { name: 'alice' });
    const stat = (label: string) => screen.getAllByText(label, { selector: 'dt' })[0]!.nextElementSibling!.textContent;
    expect(stat('Cost')).toBe('$0.144');
    expect(stat('Cache reads cost')).toBe('$0.004' + '32 tokens');
    expect(stat('Saved by the cache')).toBe('$0.036');
    const topKeys = screen.getByRole('table', { name: 'The 10 keys that cost the most' });
    const names = within(topKeys).getAllByRole('rowheader').map((r) => r.textContent);
    expect(names).toEqual(['alice', 'cheap']);
    expect(screen.getByRole('table', { name: 'What the usage cost, per price class' }).textContent).toContain('Cache writes, 5 min$0.0213.9%');
    expect(screen.getAllByTestId('chart').map((c) => c.textContent)).toContain('Cost per day (USD)');
    expect(screen.getByText(/each request’s own input rate/)).toBeTruthy();
  });

  it('shows the key holder its budgets with bars and countdowns, and the cost of its usage and requests', async () => {
    const resets = new Date(Date.now() + 2 * 86400_000 + 5 * 3600_000 + 30_000).toISOString();
    fakeRelay({
      'GET /api/usage/quota': () => ({ body: quota({ budgets: [budget({ window: 'week', time_zone: 'UTC', used_usd: 2.5, reserved_usd: 0.25, remaining_usd: 22.25, resets_at: resets })] }) }),
      'GET /api/usage/daily': (c) => ({ body: { from: c.query.get('from'), to: c.query.get('to'), data: [] } }),
      'GET /api/usage': (c) => ({ body: { ...totals(2), from: c.query.get('from'), to: c.query.get('to'), by_model: [{ ...totals(2), model: 'claude-haiku-4-5' }] } }),
      'GET /api/usage/logs': () => ({ body: { data: [log({ cost_usd: 0.0042 })], next_cursor: null } }),
    });
    render(<Me />);
    fireEvent.input(screen.getByLabelText('Proxy key'), { target: { value: 'sk-proxy-MINE' } });
    fireEvent.submit(screen.getByLabelText('Proxy key').closest('form')!);
    const bar = await screen.findByRole('progressbar', { name: 'Week (UTC) budget of My key' });
    expect(bar.getAttribute('aria-valuetext')).toBe('$2.50 used, $0.25 reserved, of $25.00');
    expect(bar.closest('.budget')!.textContent).toContain('resets in 2 d 5 h');
    expect(bar.closest('.budget')!.textContent).toContain('$22.25 left');
    await screen.findByText('$0.0042');
    expect(screen.getAllByText('Cost', { selector: 'dt' })[0]!.nextElementSibling!.textContent).toBe('$0.072');
  });
});

describe('upstreams', () => {
  beforeEach(() => session.start('admin', 'jwt', 3600));
  afterEach(() => vi.useRealTimers());

  const iso = (ms: number) => new Date(Date.now() + ms).toISOString();
  /** Real time passing, while setInterval may be faked. */
  const tick = (ms = 10) => new Promise((r) => setTimeout(r, ms));

  function pool() {
    return [
      upstream({
        cache_hit_rate: 0.8125,
        in_flight: 2,
        recent_errors: 1,
        last_probe: { at: iso(-60_000), ok: true, model: null },
        headroom: {
          requests: { limit: 1000, remaining: 50, reset: iso(30_000) },
          input_tokens: { limit: 400000, remaining: 300000, reset: null },
          output_tokens: null,
          read_at: iso(-5000),
          model: 'claude-sonnet-4-5',
        },
        models_state: [
          {
            model: 'claude-opus-4-1',
            state: 'cooling',
            state_reason: 'overloaded 529',
            state_since: iso(-10_000),
            state_until: iso(125_000),
            last_probe: null,
            headroom: null,
          },
        ],
      }),
      upstream({
        id: 'up_b',
        name: 'org-b',
        api_key_last4: 'wxyz',
        priority: 1,
        weight: 2,
        max_concurrency: 50,
        models: ['claude-sonnet-*'],
        group: 'team-eu',
        state: 'cooling',
        state_reason: 'rate_limited 429',
        state_since: iso(-20_000),
        state_until: iso(42_000),
        recent_errors: 3,
      }),
      upstream({
        id: 'up_c',
        name: 'org-c',
        api_key_last4: null,
        enabled: false,
        disabled_reason: 'auth 401: invalid x-api-key',
        state: 'disabled',
        state_reason: 'auth 401: invalid x-api-key',
        state_since: iso(-3600_000),
        recent_errors: null,
        last_probe: { at: iso(-120_000), ok: false, model: 'claude-haiku-4-5' },
      }),
    ];
  }

  it('lists every upstream with its state, countdown, disabled reason and headroom, refreshed every 10 s with one call', async () => {
    vi.useFakeTimers({ toFake: ['setInterval', 'clearInterval'] });
    const calls = fakeRelay({ 'GET /admin/upstreams': () => ({ body: { data: pool() } }) });
    at('/ui/upstreams');
    render(<App />);
    const table = await screen.findByRole('table', { name: 'Upstreams' });
    const row = (name: string) => within(table).getByRole('rowheader', { name: new RegExp(`^${name}`) }).closest('tr')!;
    const cells = (name: string) => [...row(name).querySelectorAll('td')].map((c) => c.textContent);

    const p = cells('primary');
    expect(p.slice(0, 8)).toEqual(['https://api.anthropic.com', '…abcd', '0', '1', 'no cap', 'every model', 'default', 'yes']);
    expect(p[8]).toBe('healthy');
    expect(p[9]).toBe('2');
    expect(p[10]).toBe('1');
    expect(p[11]).toContain('ok');
    expect(p[11]).toContain('GET /v1/models');
    expect(p[12]).toMatch(/Requests: 50 of 1,000 left \(5%\) · full in 0:(29|30|31)/);
    expect(p[12]).toContain('Input tokens: 300,000 of 400,000 left (75%)');
    expect(p[12]).not.toContain('Output tokens');
    expect(p[12]).toContain('(claude-sonnet-4-5)');
    expect(row('primary').querySelector('.headroom li.low')!.textContent).toMatch(/^Requests/);
    expect(p[13]).toBe('81.3%');

    const b = cells('org-b');
    expect(b.slice(1, 7)).toEqual(['…wxyz', '1', '2', '50', 'claude-sonnet-*', 'team-eu']);
    expect(b[8]).toMatch(/^cooling/);
    expect(b[8]).toContain('rate_limited 429');
    expect(b[8]).toContain('since 20 seconds ago');
    expect(b[8]).toMatch(/cooling ends in 0:4[123]/);
    expect(b[10]).toBe('3');

    const c = cells('org-c');
    expect(c[1]).toBe('—');
    expect(c[7]).toBe('noauth 401: invalid x-api-key');
    expect(c[8]).toMatch(/^disabled/);
    expect(c[10]).toBe('—');
    expect(c[11]).toContain('failed');
    expect(c[11]).toContain('claude-haiku-4-5');
    expect(row('org-c').className).toBe('inactive');
    expect(within(row('org-c')).getByRole('button', { name: 'Enable' })).toBeTruthy();
    expect(within(row('org-c')).queryByRole('button', { name: 'Disable' })).toBeNull();

    // Per-model states in an expandable row.
    const toggle = within(row('primary')).getByRole('button', { name: 'Per-model state of primary (1)' });
    expect(toggle.getAttribute('aria-expanded')).toBe('false');
    fireEvent.click(toggle);
    expect(toggle.getAttribute('aria-expanded')).toBe('true');
    const models = screen.getByRole('table', { name: 'Per-model state of primary' });
    const m = within(models).getByRole('rowheader', { name: 'claude-opus-4-1' }).closest('tr')!;
    expect(m.textContent).toContain('overloaded 529');
    expect(m.textContent).toMatch(/cooling ends in 2:0[456]/);
    fireEvent.click(toggle);
    expect(screen.queryByRole('table', { name: 'Per-model state of primary' })).toBeNull();

    // Linked after Pricing.
    const nav = screen.getByRole('navigation', { name: 'Main' });
    const links = within(nav).getAllByRole('link').map((a) => a.textContent);
    expect(links.indexOf('Upstreams')).toBe(links.indexOf('Pricing') + 1);

    // One list call, and one more every 10 s; never a call per row.
    expect(calls).toHaveLength(1);
    vi.advanceTimersByTime(10_000);
    for (let i = 0; i < 50 && calls.length < 2; i++) await tick();
    expect(calls.map((x) => `${x.method} ${x.path}`)).toEqual(['GET /admin/upstreams', 'GET /admin/upstreams']);
    vi.advanceTimersByTime(10_000);
    for (let i = 0; i < 50 && calls.length < 3; i++) await tick();
    expect(calls).toHaveLength(3);
    cleanup();
    vi.advanceTimersByTime(30_000);
    await tick(30);
    expect(calls).toHaveLength(3);
  });

  it('creates an upstream: the API key is required, the body is exact, and the relay’s 409 and 400 are shown', async () => {
    let status = 409;
    const calls = fakeRelay({
      'GET /admin/upstreams': () => ({ body: { data: [upstream()] } }),
      'POST /admin/upstreams': (c) =>
        status === 409
          ? apiError(409, 'invalid_request_error', 'an upstream named "org-b" already exists')
          : status === 400
            ? apiError(400, 'invalid_request_error', 'url: must be http or https with a host')
            : { status: 201, body: upstream({ id: 'up_b', name: 'org-b', api_key_last4: 'wxyz', ...(c.body as object), api_key: undefined }) },
    });
    at('/ui/upstreams');
    render(<App />);
    await screen.findByRole('table', { name: 'Upstreams' });
    fireEvent.click(screen.getByRole('button', { name: 'Add upstream' }));
    const dlg = await screen.findByRole('dialog');
    const form = within(dlg).getByLabelText('Name').closest('form')!;
    fireEvent.input(within(dlg).getByLabelText('Name'), { target: { value: 'org-b' } });
    expect((within(dlg).getByLabelText('URL') as HTMLInputElement).value).toBe('https://api.anthropic.com');
    const keyField = within(dlg).getByLabelText('API key') as HTMLInputElement;
    expect(keyField.type).toBe('password');
    expect(keyField.required).toBe(true);
    fireEvent.submit(form);
    expect((await within(dlg).findByRole('alert')).textContent).toContain('Enter the upstream’s API key.');
    expect(calls.some((c) => c.method === 'POST')).toBe(false);

    fireEvent.input(keyField, { target: { value: 'sk-ant-secret-wxyz' } });
    fireEvent.input(within(dlg).getByLabelText('Weight'), { target: { value: '2' } });
    fireEvent.input(within(dlg).getByLabelText('Max concurrency'), { target: { value: '50' } });
    fireEvent.input(within(dlg).getByLabelText('Models'), { target: { value: 'claude-sonnet-*\nclaude-haiku-4-5' } });
    fireEvent.input(within(dlg).getByLabelText('Group'), { target: { value: 'team-eu' } });
    fireEvent.submit(form);
    await waitFor(() => expect(within(dlg).getByRole('alert').textContent).toContain('an upstream named "org-b" already exists'));
    expect(within(dlg).getByRole('alert').textContent).toContain('409');
    expect(calls.find((c) => c.method === 'POST')!.body).toEqual({
      name: 'org-b',
      url: 'https://api.anthropic.com',
      api_key: 'sk-ant-secret-wxyz',
      priority: 0,
      weight: 2,
      enabled: true,
      max_concurrency: 50,
      models: ['claude-sonnet-*', 'claude-haiku-4-5'],
      group: 'team-eu',
    });

    status = 400;
    fireEvent.submit(form);
    await waitFor(() => expect(within(dlg).getByRole('alert').textContent).toContain('url: must be http or https with a host'));

    fireEvent.input(within(dlg).getByLabelText('Group'), { target: { value: 'g'.repeat(65) } });
    fireEvent.submit(form);
    await waitFor(() => expect(within(dlg).getByRole('alert').textContent).toContain('The group can be at most 64 bytes.'));
    expect(calls.filter((c) => c.method === 'POST')).toHaveLength(2);

    status = 201;
    fireEvent.input(within(dlg).getByLabelText('Group'), { target: { value: '' } });
    fireEvent.input(within(dlg).getByLabelText('Max concurrency'), { target: { value: '' } });
    fireEvent.input(within(dlg).getByLabelText('Models'), { target: { value: '' } });
    fireEvent.submit(form);
    await waitFor(() => expect(calls.filter((c) => c.path === '/admin/upstreams' && c.method === 'GET')).toHaveLength(2));
    expect(calls.filter((c) => c.method === 'POST').at(-1)!.body).toEqual({
      name: 'org-b',
      url: 'https://api.anthropic.com',
      api_key: 'sk-ant-secret-wxyz',
      priority: 0,
      weight: 2,
      enabled: true,
    });
    expect(screen.queryByRole('dialog')).toBeNull();
    expect(document.body.innerHTML).not.toContain('sk-ant-secret-wxyz');
  });

  it('edits only the fields that changed, and sends the API key only when a new one is typed', async () => {
    let u = upstream({ max_concurrency: 10, models: ['claude-*'] });
    let fail = false;
    const calls = fakeRelay({
      'GET /admin/upstreams': () => ({ body: { data: [u] } }),
      'PATCH /admin/upstreams/:id': (c) => {
        if (fail) return apiError(409, 'invalid_request_error', 'the upstream keeps changing; retry');
        u = { ...u, ...(c.body as object), api_key: undefined } as typeof u;
        return { body: u };
      },
    });
    at('/ui/upstreams');
    render(<App />);
    fireEvent.click(await screen.findByRole('button', { name: 'Edit upstream primary' }));
    let dlg = await screen.findByRole('dialog');
    expect((within(dlg).getByLabelText('Max concurrency') as HTMLInputElement).value).toBe('10');
    expect((within(dlg).getByLabelText('Models') as HTMLTextAreaElement).value).toBe('claude-*');
    const key1 = within(dlg).getByLabelText('New API key') as HTMLInputElement;
    expect(key1.value).toBe('');
    expect(key1.required).toBe(false);
    expect(dlg.textContent).toContain('Leave empty to keep the current key (…abcd).');
    fireEvent.input(within(dlg).getByLabelText('Weight'), { target: { value: '3' } });
    fireEvent.input(within(dlg).getByLabelText('Max concurrency'), { target: { value: '' } });
    fireEvent.click(within(dlg).getByLabelText('Enabled (in the pool)'));
    fireEvent.submit(within(dlg).getByLabelText('Name').closest('form')!);
    await waitFor(() => expect(calls.filter((c) => c.method === 'PATCH')).toHaveLength(1));
    const patch = calls.find((c) => c.method === 'PATCH')!;
    expect(patch.path).toBe('/admin/upstreams/primary');
    expect(patch.body).toEqual({ weight: 3, max_concurrency: null, enabled: false });
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());

    fireEvent.click(await screen.findByRole('button', { name: 'Edit upstream primary' }));
    dlg = await screen.findByRole('dialog');
    fail = true;
    fireEvent.input(within(dlg).getByLabelText('New API key'), { target: { value: 'sk-ant-new-9876' } });
    fireEvent.submit(within(dlg).getByLabelText('Name').closest('form')!);
    await waitFor(() => expect(within(dlg).getByRole('alert').textContent).toContain('the upstream keeps changing; retry'));
    fail = false;
    fireEvent.submit(within(dlg).getByLabelText('Name').closest('form')!);
    await waitFor(() => expect(calls.filter((c) => c.method === 'PATCH')).toHaveLength(3));
    expect(calls.filter((c) => c.method === 'PATCH')[2]!.body).toEqual({ api_key: 'sk-ant-new-9876' });
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());

    // Opened again, the key field is empty: the key is not kept.
    fireEvent.click(await screen.findByRole('button', { name: 'Edit upstream primary' }));
    dlg = await screen.findByRole('dialog');
    expect((within(dlg).getByLabelText('New API key') as HTMLInputElement).value).toBe('');
    expect(document.body.innerHTML).not.toContain('sk-ant-new-9876');
    // Nothing changed: nothing is sent.
    fireEvent.submit(within(dlg).getByLabelText('Name').closest('form')!);
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    expect(calls.filter((c) => c.method === 'PATCH')).toHaveLength(3);
  });

  it('tests, disables, enables and deletes, each only after a confirmation', async () => {
    let ok = true;
    const calls = fakeRelay({
      'GET /admin/upstreams': () => ({ body: { data: [upstream(), upstream({ id: 'up_c', name: 'org-c', enabled: false, state: 'disabled', disabled_reason: 'disabled by admin' })] } }),
      'POST /admin/upstreams/:id/test': () => ({
        body: ok ? { ok: true, status: 200, latency_ms: 123.4, message: '' } : { ok: false, status: 401, latency_ms: 85, message: 'invalid x-api-key' },
      }),
      'POST /admin/upstreams/:id/disable': () => ({ body: upstream({ enabled: false }) }),
      'POST /admin/upstreams/:id/enable': () => ({ body: upstream({ id: 'up_c', name: 'org-c' }) }),
      'DELETE /admin/upstreams/:id': () => ({ status: 204 }),
    });
    at('/ui/upstreams');
    render(<App />);
    const table = await screen.findByRole('table', { name: 'Upstreams' });
    const row = (name: string) => within(table).getByRole('rowheader', { name: new RegExp(`^${name}`) }).closest('tr')!;
    const confirm = async (rowName: string, button: string, title: string) => {
      fireEvent.click(within(row(rowName)).getByRole('button', { name: button }));
      const dlg = await screen.findByRole('dialog', { name: title });
      expect(calls.filter((c) => c.method !== 'GET')).toHaveLength(done);
      fireEvent.click(within(dlg).getByRole('button', { name: button }));
      const want = ++done;
      await waitFor(() => expect(calls.filter((c) => c.method !== 'GET')).toHaveLength(want));
      await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
      return calls.filter((c) => c.method !== 'GET').at(-1)!;
    };
    let done = 0;

    // Cancelled: nothing is sent.
    fireEvent.click(within(row('primary')).getByRole('button', { name: 'Delete' }));
    fireEvent.click(within(await screen.findByRole('dialog', { name: 'Delete upstream primary' })).getByRole('button', { name: 'Cancel' }));
    expect(calls.filter((c) => c.method !== 'GET')).toHaveLength(0);

    let c = await confirm('primary', 'Test', 'Test upstream primary');
    expect(`${c.method} ${c.path}`).toBe('POST /admin/upstreams/primary/test');
    let status = await screen.findByRole('status');
    expect(status.textContent).toContain('Test of “primary”: ok status 200 · 123 ms');

    ok = false;
    c = await confirm('org-c', 'Test', 'Test upstream org-c');
    expect(c.path).toBe('/admin/upstreams/up_c/test');
    await waitFor(() => expect(screen.getByRole('status').textContent).toContain('failed status 401 · 85 ms · invalid x-api-key'));

    const lists = () => calls.filter((x) => x.method === 'GET').length;
    const before = lists();
    c = await confirm('primary', 'Disable', 'Disable upstream primary');
    expect(`${c.method} ${c.path}`).toBe('POST /admin/upstreams/primary/disable');
    await waitFor(() => expect(lists()).toBe(before + 1));

    c = await confirm('org-c', 'Enable', 'Enable upstream org-c');
    expect(`${c.method} ${c.path}`).toBe('POST /admin/upstreams/up_c/enable');

    c = await confirm('org-c', 'Delete', 'Delete upstream org-c');
    expect(`${c.method} ${c.path}`).toBe('DELETE /admin/upstreams/up_c');
    await waitFor(() => expect(lists()).toBe(before + 3));
  });
});

describe('key form: upstream group', () => {
  beforeEach(() => session.start('admin', 'jwt', 3600));

  it('sends upstream_group on create when set, and on edit only when changed; shows it on the key detail', async () => {
    const calls = fakeRelay({
      'GET /admin/api-keys': () => ({ body: { data: [], next_cursor: null } }),
      'GET /admin/tiers': tiersRoute,
      'POST /admin/api-keys': (c) => ({ status: 201, body: { ...key(c.body as Record<string, unknown>), api_key: 'sk-proxy-SECRET' } }),
    });
    at('/ui/keys');
    render(<App />);
    await screen.findByText(/No keys yet/);
    fireEvent.click(screen.getByRole('button', { name: 'Create key' }));
    const dlg = await screen.findByRole('dialog');
    fireEvent.input(within(dlg).getByLabelText('Name'), { target: { value: 'frank' } });
    fireEvent.input(within(dlg).getByLabelText('Upstream group'), { target: { value: '组'.repeat(22) } });
    fireEvent.submit(within(dlg).getByLabelText('Name').closest('form')!);
    await waitFor(() => expect(within(dlg).getByRole('alert').textContent).toContain('The upstream group can be at most 64 bytes.'));
    fireEvent.input(within(dlg).getByLabelText('Upstream group'), { target: { value: ' team-eu ' } });
    fireEvent.submit(within(dlg).getByLabelText('Name').closest('form')!);
    await within(dlg).findByDisplayValue('sk-proxy-SECRET');
    expect(calls.find((c) => c.method === 'POST')!.body).toEqual({ name: 'frank', upstream_group: 'team-eu' });
    cleanup();

    const k = key({ upstream_group: 'team-eu' });
    const edits = fakeRelay(
      keyDetailRoutes({
        'GET /admin/api-keys/:id': () => ({ body: k }),
        'PATCH /admin/api-keys/:id': (c) => ({ body: { ...k, ...(c.body as object), updated_at: '2026-01-02T00:00:00Z' } }),
      }),
    );
    at(`/ui/keys/${ID}`);
    render(<App />);
    const dt = await screen.findByText('Upstream group', { selector: 'dt' });
    expect(dt.nextElementSibling!.textContent).toBe('team-eu');
    fireEvent.click(screen.getByRole('button', { name: 'Edit' }));
    let edit = await screen.findByRole('dialog');
    expect((within(edit).getByLabelText('Upstream group') as HTMLInputElement).value).toBe('team-eu');
    fireEvent.input(within(edit).getByLabelText('Name'), { target: { value: 'alice2' } });
    fireEvent.submit(within(edit).getByLabelText('Name').closest('form')!);
    await waitFor(() => expect(edits.filter((c) => c.method === 'PATCH')).toHaveLength(1));
    expect(edits.find((c) => c.method === 'PATCH')!.body).toEqual({ name: 'alice2' });
    await waitFor(() => expect(screen.queryByRole('dialog')).toBeNull());
    fireEvent.click(await screen.findByRole('button', { name: 'Edit' }));
    edit = await screen.findByRole('dialog');
    fireEvent.input(within(edit).getByLabelText('Upstream group'), { target: { value: '' } });
    fireEvent.submit(within(edit).getByLabelText('Name').closest('form')!);
    await waitFor(() => expect(edits.filter((c) => c.method === 'PATCH')).toHaveLength(2));
    expect(edits.filter((c) => c.method === 'PATCH')[1]!.body).toEqual({ upstream_group: '' });
  });
});
