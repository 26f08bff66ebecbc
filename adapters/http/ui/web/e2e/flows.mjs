// End-to-end flows of the dashboard in a real browser (Debian's chromium,
// driven by playwright-core) against a real relay. cmd/relay's
// TestDashboardE2E starts the relay (SQLite, the in-repo fake upstream) and
// runs this with:
//
//   RELAY_URL             the relay, e.g. http://127.0.0.1:34567
//   RELAY_ADMIN_PASSWORD  the admin password (user: RELAY_ADMIN_USER, default admin)
//   SCREENSHOT_DIR        where to save screenshots (optional)
//   CHROMIUM              the browser (default /usr/bin/chromium)
//
// It exits non-zero, naming the step, on the first failure. The proxy is
// called with node's own fetch: a real HTTP client, not the browser.
import { chromium } from 'playwright-core';
import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';

const BASE = process.env.RELAY_URL;
const PASSWORD = process.env.RELAY_ADMIN_PASSWORD;
const USER = process.env.RELAY_ADMIN_USER || 'admin';
const SHOTS = process.env.SCREENSHOT_DIR || '';
const BROWSER = process.env.CHROMIUM || '/usr/bin/chromium';
if (!BASE || !PASSWORD) {
  console.error('flows: RELAY_URL and RELAY_ADMIN_PASSWORD are required');
  process.exit(2);
}
if (SHOTS) mkdirSync(SHOTS, { recursive: true });

const started = Date.now();
const timings = [];
let current = '';

async function step(name, fn) {
  current = name;
  const t0 = Date.now();
  await fn();
  const ms = Date.now() - t0;
  timings.push([name, ms]);
  console.log(`ok   ${name} (${ms} ms)`);
}

function check(cond, msg) {
  if (!cond) throw new Error(msg);
}

async function shot(page, name) {
  if (SHOTS) await page.screenshot({ path: join(SHOTS, `${name}.png`), fullPage: true });
}

/** One call through the proxy, as an SDK would make it. */
async function callProxy(key, { stream = false } = {}) {
  const resp = await fetch(`${BASE}/v1/messages`, {
    method: 'POST',
    headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01', 'content-type': 'application/json' },
    body: JSON.stringify({
      model: 'claude-sonnet-4-5',
      max_tokens: 64,
      stream,
      messages: [{ role: 'user', content: 'Hello from the dashboard e2e test' }],
    }),
  });
  const text = await resp.text();
  return { status: resp.status, text };
}

/** Waits until the relay has written n usage records for the key (the writer flushes in batches). */
async function waitForRecords(token, keyId, n) {
  for (let i = 0; i < 100; i++) {
    const r = await fetch(`${BASE}/admin/usage/logs?key_id=${keyId}`, { headers: { authorization: `Bearer ${token}` } });
    const body = await r.json();
    if (body.data && body.data.length >= n) return body.data;
    await new Promise((res) => setTimeout(res, 100));
  }
  throw new Error(`the relay did not record ${n} requests of ${keyId}`);
}

/** Fails when the page is wider than its viewport, naming what sticks out. */
async function checkFits(page, what) {
  const r = await page.evaluate(() => {
    const w = document.documentElement.clientWidth;
    const out = [];
    for (const el of document.querySelectorAll('body *')) {
      const b = el.getBoundingClientRect();
      if (b.right > w + 1 && el.parentElement?.closest('.table-wrap') == null) {
        out.push(`${el.tagName.toLowerCase()}.${[...el.classList].join('.')} right=${Math.round(b.right)} width=${Math.round(b.width)}`);
      }
    }
    return { width: document.documentElement.scrollWidth, client: w, out: out.slice(0, 8) };
  });
  check(r.width <= r.client, `${what} is ${r.width} px wide at ${r.client}: ${r.out.join('; ')}`);
}

const num = (s) => Number(String(s).replace(/[^\d]/g, ''));

const browser = await chromium.launch({
  executablePath: BROWSER,
  args: [
    '--headless',
    '--no-sandbox',
    '--disable-gpu',
    '--disable-background-networking',
    '--disable-component-update',
    '--disable-sync',
    '--no-first-run',
  ],
});

let failed = false;
try {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, locale: 'en-US' });
  await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: BASE });
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  // Any CSP violation or script error fails the run: the page must work
  // under its strict policy.
  const problems = [];
  page.on('console', (m) => {
    if (m.type() === 'error' && !/status of (401|404)/.test(m.text())) problems.push(`console: ${m.text()}`);
  });
  page.on('pageerror', (e) => problems.push(`page error: ${e.message}`));

  let adminToken = '';
  let alice = { id: '', secret: '' };
  const usage = { requests: 0, tokens: 0 };

  await step('log in', async () => {
    await page.goto(`${BASE}/`);
    check(new URL(page.url()).pathname.startsWith('/ui/login'), `/ went to ${page.url()}`);
    await shot(page, 'login');
    await page.getByLabel('User').fill(USER);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    const stored = await page.evaluate(() => ({
      session: sessionStorage.getItem('relay.admin.session'),
      local: JSON.stringify(localStorage),
    }));
    check(stored.session, 'no session in sessionStorage');
    adminToken = JSON.parse(stored.session).token;
    check(!stored.local.includes(adminToken), 'the admin token is in localStorage');
  });

  await step('create a key and copy its secret', async () => {
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.getByRole('heading', { name: 'Keys' }).waitFor();
    await page.getByRole('button', { name: 'Create key' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByLabel('Name').fill('e2e-alice');
    await dlg.getByLabel('Token limit').fill('1000000');
    await dlg.getByRole('button', { name: 'Create', exact: true }).click();
    const secret = dlg.getByLabel('Secret', { exact: true });
    await secret.waitFor();
    alice.secret = await secret.inputValue();
    check(alice.secret.startsWith('sk-proxy-'), `secret ${alice.secret}`);
    const setup = await dlg.textContent();
    check(setup.includes(`ANTHROPIC_BASE_URL=${BASE}`) && setup.includes(`ANTHROPIC_AUTH_TOKEN=${alice.secret}`), 'no Claude Code set-up');
    await dlg.getByRole('button', { name: 'Copy secret' }).click();
    await dlg.getByRole('button', { name: 'Copied' }).first().waitFor();
    const copied = await page.evaluate(() => navigator.clipboard.readText());
    check(copied === alice.secret, `clipboard has ${copied}`);
    await shot(page, 'key-created');
    await dlg.getByRole('button', { name: 'I have copied it' }).click();
    await page.getByRole('link', { name: 'e2e-alice' }).waitFor();
    const href = await page.getByRole('link', { name: 'e2e-alice' }).getAttribute('href');
    alice.id = href.split('/').pop();
  });

  await step('use the key through the proxy', async () => {
    for (const stream of [false, true]) {
      const r = await callProxy(alice.secret, { stream });
      check(r.status === 200, `proxy answered ${r.status}: ${r.text.slice(0, 300)}`);
    }
    const recs = await waitForRecords(adminToken, alice.id, 2);
    usage.requests = recs.length;
    usage.tokens = recs.reduce((s, r) => s + r.total_tokens, 0);
    check(usage.tokens > 0, 'no tokens recorded');
  });

  await step('see the request and tokens on the overview', async () => {
    await page.getByRole('link', { name: 'Overview' }).click();
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await page.reload();
    await page.getByRole('link', { name: 'e2e-alice' }).waitFor();
    const stat = async (label) => num(await page.locator('.stat', { has: page.getByText(label, { exact: true }) }).locator('dd').textContent());
    check((await stat('Requests')) === usage.requests, `overview requests ${await stat('Requests')} != ${usage.requests}`);
    check((await stat('Total tokens')) === usage.tokens, `overview tokens ${await stat('Total tokens')} != ${usage.tokens}`);
    check((await page.locator('figure.chart').count()) === 3, 'the overview has no charts');
    check((await page.locator('canvas').count()) >= 3, 'the charts drew nothing');
    await shot(page, 'overview');
  });

  await step('see them on the key detail', async () => {
    await page.getByRole('link', { name: 'e2e-alice' }).click();
    await page.getByRole('heading', { name: /e2e-alice/ }).waitFor();
    const recent = page.locator('section[aria-labelledby="key-logs-title"] tbody tr');
    await recent.first().waitFor();
    check((await recent.count()) === usage.requests, `key detail lists ${await recent.count()} requests`);
    await page.getByRole('rowheader', { name: 'claude-sonnet-4-5' }).first().waitFor();
    await shot(page, 'key-detail');
  });

  await step('see them in the logs, drill down and export CSV', async () => {
    await page.getByRole('link', { name: 'Request logs' }).click();
    await page.getByRole('heading', { name: 'Request logs' }).waitFor();
    const rows = page.locator('table.logs tbody tr');
    await rows.first().waitFor();
    check((await rows.count()) === usage.requests, `logs list ${await rows.count()} rows`);
    await rows.first().getByRole('button', { name: /Details of/ }).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByText('Tokens by class').waitFor();
    check((await dlg.textContent()).includes('claude-sonnet-4-5'), 'the drill-down has no model');
    await shot(page, 'log-detail');
    await dlg.getByRole('button', { name: 'Close' }).click();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export CSV' }).click(),
    ]);
    const csv = await readFile(await download.path(), 'utf8');
    const lines = csv.trimEnd().split('\r\n');
    check(lines.length === usage.requests + 1 && lines[0].startsWith('time,request_id,key_id'), `CSV: ${csv.slice(0, 300)}`);
    check(lines.slice(1).every((l) => l.includes(alice.id)), 'CSV rows of another key');
    await shot(page, 'logs');
  });

  await step('disable the key; the proxy answers 401 and the refusal is logged', async () => {
    await page.goto(`${BASE}/ui/keys/${alice.id}`);
    await page.getByRole('heading', { name: /e2e-alice/ }).waitFor();
    await page.getByRole('button', { name: 'Disable' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Disable' }).click();
    await page.getByRole('heading', { name: /e2e-alice/ }).getByText('disabled').waitFor();
    const r = await callProxy(alice.secret);
    check(r.status === 401, `a disabled key got ${r.status}: ${r.text.slice(0, 200)}`);
    check(JSON.parse(r.text).error?.type === 'authentication_error', `refusal ${r.text}`);
    await waitForRecords(adminToken, alice.id, usage.requests + 1);
    await page.getByRole('link', { name: 'Request logs' }).click();
    await page.getByLabel('Status').fill('401');
    await page.getByRole('button', { name: 'Apply' }).click();
    await page.waitForURL(/status=401/);
    const rows = page.locator('table.logs tbody tr');
    await rows.first().waitFor();
    check((await rows.count()) === 1, `401 rows: ${await rows.count()}`);
    check((await rows.first().textContent()).includes('authentication_error'), 'the refusal has no reason');
    await shot(page, 'logs-refusal');
  });

  let bob = '';
  await step('open the key-holder page with a second key', async () => {
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.getByRole('button', { name: 'Create key' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.getByLabel('Name').fill('e2e-bob');
    await dlg.getByRole('button', { name: 'Create', exact: true }).click();
    bob = await dlg.getByLabel('Secret', { exact: true }).inputValue();
    await dlg.getByRole('button', { name: 'I have copied it' }).click();
    const r = await callProxy(bob);
    check(r.status === 200, `bob's call: ${r.status}`);
    const list = await fetch(`${BASE}/admin/api-keys?name=e2e-bob`, { headers: { authorization: `Bearer ${adminToken}` } });
    const bobId = (await list.json()).data[0].id;
    await waitForRecords(adminToken, bobId, 1);

    // A separate browser context: the key holder has no admin session.
    const holder = await browser.newContext({ viewport: { width: 390, height: 844 }, locale: 'en-US' });
    const me = await holder.newPage();
    me.on('pageerror', (e) => problems.push(`key-holder page error: ${e.message}`));
    await me.goto(`${BASE}/ui/me`);
    await me.getByLabel('Proxy key').fill(bob);
    await me.getByRole('button', { name: 'Show' }).click();
    await me.getByRole('heading', { name: /Quota/ }).waitFor();
    const logs = me.locator('section[aria-labelledby="me-logs-title"] tbody tr');
    await logs.first().waitFor();
    check((await logs.count()) === 1, `the key holder sees ${await logs.count()} requests`);
    await me.getByRole('rowheader', { name: 'claude-sonnet-4-5' }).waitFor();
    const stored = await me.evaluate(() => JSON.stringify({ ...sessionStorage }) + JSON.stringify({ ...localStorage }) + document.cookie);
    check(!stored.includes(bob), 'the proxy key was stored');
    await checkFits(me, 'the key-holder page');
    await shot(me, 'me');
    await me.getByLabel('Language').selectOption('zh');
    await me.getByRole('heading', { name: '我的密钥' }).waitFor();
    await shot(me, 'me-zh');
    await holder.close();
  });

  await step('usable at 390 px', async () => {
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(`${BASE}/ui/`);
    await page.getByRole('heading', { name: 'Overview' }).waitFor();
    await checkFits(page, 'the overview');
    await page.getByRole('button', { name: 'Menu' }).click();
    await page.getByRole('link', { name: 'Keys' }).click();
    await page.getByRole('heading', { name: 'Keys' }).waitFor();
    await shot(page, 'keys-mobile');
    await page.setViewportSize({ width: 1280, height: 900 });
  });

  await step('sign out', async () => {
    await page.goto(`${BASE}/ui/keys`);
    await page.getByRole('heading', { name: 'Keys' }).waitFor();
    await shot(page, 'keys');
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.getByLabel('Password').waitFor();
    check(new URL(page.url()).pathname === '/ui/login', `after sign-out: ${page.url()}`);
    check((await page.evaluate(() => sessionStorage.getItem('relay.admin.session'))) === null, 'the session survived sign-out');
    await page.goto(`${BASE}/ui/keys`);
    await page.getByLabel('Password').waitFor();
  });

  check(problems.length === 0, `the page reported problems:\n${problems.join('\n')}`);
} catch (e) {
  failed = true;
  console.error(`FAIL ${current}: ${e.stack || e}`);
} finally {
  await browser.close();
}
console.log(`flows: ${timings.length} steps in ${Date.now() - started} ms`);
process.exit(failed ? 1 : 0);
