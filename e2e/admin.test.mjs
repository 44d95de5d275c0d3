// Administration in a real browser: an operator granted on the command line
// (`twostep admin grant`, against the test server's data dir) signs in with
// 2FA, finds a user, resets the user's 2FA through the confirmation page,
// and sees the entry in the audit log; a non-admin finds no admin area.
//
// Page contract (server-rendered HTML, plain forms):
//   header                 link "Admin" for administrators only
//   /admin                 h1 "Users", form#user-search (#q, #two_factor, button "Search"),
//                          [data-testid=user-row][data-email=…] with [data-testid=user-two-factor] "On"/"Off"
//                          and link "Reset 2FA" -> /admin/users/<id>/reset-2fa
//   /admin/users/<id>/reset-2fa  (after re-auth when stale) confirm page, [data-testid=target-email],
//                          button "Reset two-factor authentication" -> /admin?… with [data-testid=admin-notice]
//   /admin/audit           form#audit-filter (#user, #event, #since, #until, button "Filter"),
//                          [data-testid=audit-entry][data-event=…] rows
//   non-admins             /admin answers 404

import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  launchBrowser,
  screenshot,
  startServer,
  strongPassword,
  totpNow,
  uniqueEmail,
  withDiagnostics,
} from './harness.mjs';

const TEST_TIMEOUT_MS = 120_000;
const STEP_MS = 30_000;

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof launchBrowser>>} */
let browser;
/** @type {import('playwright-core').Page} */
let page;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = browser.page;
  page.setDefaultTimeout(15_000);
  page.setDefaultNavigationTimeout(30_000);
});

after(async () => {
  try {
    await browser?.close();
  } finally {
    await server?.stop();
  }
});

function e2e(name, fn) {
  test(name, { timeout: TEST_TIMEOUT_MS }, () => withDiagnostics({ name, page, server }, fn));
}

const pathname = () => new URL(page.url()).pathname;

async function goto(p) {
  const response = await page.goto(`${server.url}${p}`);
  assert.ok(response, `no response for GET ${p}`);
  return response;
}

async function submit(control) {
  await Promise.all([page.waitForEvent('load'), control.click()]);
}

async function expectPath(expected) {
  await page.waitForURL((url) => url.pathname === expected);
  assert.equal(pathname(), expected);
}

async function text(locator) {
  return (await locator.innerText()).trim();
}

/** The JSON API, as a second client would use it. */
async function api(method, p, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${server.url}${p}`, { method, headers, body: body && JSON.stringify(body) });
  const json = await res.json().catch(() => null);
  return { status: res.status, json };
}

const stepOf = (ms) => Math.floor(ms / STEP_MS);

/** An account with an authenticator app, made through the API. */
async function userWithTotp(prefix) {
  const account = { email: uniqueEmail(prefix), password: strongPassword() };
  assert.equal((await api('POST', '/api/v1/accounts', account)).status, 201);
  const login = await api('POST', '/api/v1/login', account);
  assert.equal(login.status, 200, JSON.stringify(login.json));
  account.token = login.json.session_token;
  const enrol = await api('POST', '/api/v1/me/totp', {}, account.token);
  assert.equal(enrol.status, 201, JSON.stringify(enrol.json));
  account.secret = enrol.json.secret;
  account.lastStep = stepOf(Date.now());
  const code = totpNow(account.secret);
  const confirm = await api(
    'POST',
    '/api/v1/me/totp/confirm',
    { enrollment_id: enrol.json.enrollment_id, code },
    account.token,
  );
  assert.equal(confirm.status, 201, JSON.stringify(confirm.json));
  return account;
}

/** A code from a 30 s step after the last one the account used. */
async function freshTotp(account) {
  for (;;) {
    if (stepOf(Date.now()) <= account.lastStep) {
      const waitMs = (account.lastStep + 1) * STEP_MS - Date.now() + 1_000;
      process.stderr.write(`[e2e] waiting ${(waitMs / 1000).toFixed(1)} s for a new TOTP time step\n`);
      await sleep(waitMs);
    }
    const before = stepOf(Date.now());
    const code = totpNow(account.secret);
    if (stepOf(Date.now()) === before) {
      account.lastStep = before;
      return code;
    }
  }
}

/** `twostep …` on the server's data dir (same database and key), as an operator would. */
function cli(...args) {
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([key]) => !/^TWOSTEP_(BIN|REQUIRE_TOOLS|TEST_.*)$/.test(key)),
  );
  return execFileSync(path.resolve(process.env.TWOSTEP_BIN), args, {
    encoding: 'utf8',
    env: { ...env, TWOSTEP_DATA_DIR: server.dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

async function signIn(account, { code } = {}) {
  await goto('/login');
  const form = page.locator('form#login-form');
  await form.locator('#email').fill(account.email);
  await form.locator('#password').fill(account.password);
  await submit(form.getByRole('button', { name: 'Sign in' }));
  if (code) {
    await expectPath('/login/verify');
    await page.locator('form#verify-form #code').fill(code);
    await submit(page.getByRole('button', { name: 'Verify', exact: true }));
  }
  await expectPath('/security');
}

e2e('an admin resets a user’s two-factor authentication and sees it in the audit log', async () => {
  const target = await userWithTotp('target');
  const admin = await userWithTotp('admin');

  // 1. No administrator by default; the first is granted on the command line.
  const granted = cli('admin', 'grant', admin.email);
  assert.match(granted, /is an administrator/);

  // 2. The admin signs in with password and authenticator code; the header links to Admin.
  await browser.context.clearCookies();
  await signIn(admin, { code: await freshTotp(admin) });
  const adminLink = page.locator('header').getByRole('link', { name: 'Admin' });
  await adminLink.waitFor();
  await submit(adminLink);
  await expectPath('/admin');
  await page.getByRole('heading', { level: 1, name: 'Users' }).waitFor();
  await screenshot(page, 'admin-01-users');

  // 3. Search for the user: one row, 2FA on.
  const search = page.locator('form#user-search');
  await search.locator('#q').fill(target.email.split('@')[0].toUpperCase());
  await submit(search.getByRole('button', { name: 'Search' }));
  const rows = page.locator('[data-testid=user-row]');
  assert.equal(await rows.count(), 1);
  const row = page.locator(`[data-testid=user-row][data-email="${target.email}"]`);
  assert.equal(await text(row.locator('[data-testid=user-two-factor]')), 'On');
  await screenshot(page, 'admin-02-search');

  // 4. Reset 2FA: a confirmation page naming the user first.
  await submit(row.getByRole('link', { name: 'Reset 2FA' }));
  await page.getByRole('heading', { level: 1, name: 'Reset two-factor authentication' }).waitFor();
  assert.match(pathname(), /^\/admin\/users\/[^/]+\/reset-2fa$/);
  assert.equal(await text(page.locator('[data-testid=target-email]')), target.email);
  await screenshot(page, 'admin-03-confirm-reset');
  await submit(page.getByRole('button', { name: 'Reset two-factor authentication' }));
  await expectPath('/admin');
  const notice = await text(page.locator('[data-testid=admin-notice]'));
  assert.match(notice, /Two-factor authentication of .* was reset and all its sessions ended/);
  assert.ok(notice.includes(target.email), notice);
  assert.equal(await text(row.locator('[data-testid=user-two-factor]')), 'Off');
  await screenshot(page, 'admin-04-after-reset');

  // The user's session has ended.
  assert.equal((await api('GET', '/api/v1/me', undefined, target.token)).status, 401);

  // 5. The audit log, filtered by user and event, names the admin as actor.
  await submit(page.getByRole('link', { name: 'Audit log' }));
  await expectPath('/admin/audit');
  const filter = page.locator('form#audit-filter');
  await filter.locator('#user').fill(target.email);
  await filter.locator('#event').fill('two_factor_reset');
  const today = new Date().toISOString().slice(0, 10);
  await filter.locator('#since').fill(today);
  await filter.locator('#until').fill(today);
  await submit(filter.getByRole('button', { name: 'Filter' }));
  const entries = page.locator('[data-testid=audit-entry]');
  assert.equal(await entries.count(), 1);
  const entry = await text(entries.first());
  assert.match(entry, /two_factor_reset/);
  assert.match(entry, /\badmin\b/);
  assert.ok(entry.includes(target.email), entry);
  await screenshot(page, 'admin-05-audit');

  // 6. The user, signed in with the password alone now, has no admin area.
  await browser.context.clearCookies();
  await signIn(target);
  assert.equal(await page.locator('header').getByRole('link', { name: 'Admin' }).count(), 0);
  const res = await goto('/admin');
  assert.equal(res.status(), 404);
});
