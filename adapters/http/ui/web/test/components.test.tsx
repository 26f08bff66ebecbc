import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { cleanup, fireEvent, render, screen, waitFor, within } from '@testing-library/preact';
import { apiError, fakeRelay, key, totals } from './helpers';
import { session } from '../src/session';
import { setLang } from '../src/i18n';

vi.mock('../src/components/chart', () => import('./chart-mock'));

const { App } = await import('../src/app');
const { Me } = await import('../src/pages/me');

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

  it('bulk-disables the selected keys after a confirmation', async () => {
    const calls = fakeRelay({
      'GET /admin/api-keys': () => ({ body: { data: [key(), key({ id: '22222222-2222-4222-8222-222222222222', name: 'dave' })], next_cursor: null } }),
      'GET /admin/tiers': () => ({ body: { data: [] } }),
      'POST /admin/api-keys/:id/disable': () => ({ body: key({ is_active: false }) }),
    });
    at('/ui/keys');
    render(<App />);
    fireEvent.click(await screen.findByLabelText('Select every key on this page'));
    fireEvent.click(screen.getByRole('button', { name: 'Disable selected' }));
    const dlg = await screen.findByRole('dialog');
    expect(dlg.textContent).toContain('Disable 2 keys?');
    fireEvent.click(within(dlg).getByRole('button', { name: 'Disable selected' }));
    await waitFor(() => expect(calls.filter((c) => c.path.endsWith('/disable'))).toHaveLength(2));
  });
});

describe('overview', () => {
  beforeEach(() => session.start('admin', 'jwt', 3600));

  it('shows the totals, top keys by name and top models from GET /admin/usage', async () => {
    const id = '0b7c6a55-2d7e-4c36-9a0c-4bb0b9c3e7c1';
    const gone = '33333333-3333-4333-8333-333333333333';
    const calls = fakeRelay({
      'GET /admin/usage': (c) => {
        const g = c.query.get('group_by');
        const groups =
          g === 'key'
            ? [{ ...totals(3), group: id }, { ...totals(1), group: gone }]
            : g === 'model'
              ? [{ ...totals(4), group: 'claude-sonnet-4-5' }]
              : [{ ...totals(4), group: c.query.get('from')!.slice(0, 10) }];
        return { body: { from: c.query.get('from'), to: c.query.get('to'), group_by: g, totals: totals(4), groups } };
      },
      'GET /admin/api-keys/:id': (c) => (c.path.endsWith(id) ? { body: key() } : apiError(404, 'not_found_error', 'no such key')),
    });
    at('/ui/');
    render(<App />);
    await screen.findByRole('link', { name: 'alice' });
    expect(screen.getByText('deleted')).toBeTruthy();
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
