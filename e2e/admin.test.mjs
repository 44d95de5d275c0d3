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

import assert from 'node:assert/strict';

import {
  Authenticator,
  expectPath,
  goto,
  newAccount,
  pathname,
  screenshot,
  signIn,
  story,
  submit,
  text,
  twostepCli,
} from './lib/index.mjs';

const s = story();

/** The JSON API, as a second client would use it. */
async function api(method, p, body, token) {
  const headers = { 'content-type': 'application/json' };
  if (token) headers.authorization = `Bearer ${token}`;
  const res = await fetch(`${s.server.url}${p}`, { method, headers, body: body && JSON.stringify(body) });
  const json = await res.json().catch(() => null);
  return { status: res.status, json };
}

/** An account with an authenticator app, made through the API. */
async function userWithTotp(prefix) {
  const account = newAccount(prefix);
  assert.equal((await api('POST', '/api/v1/accounts', account)).status, 201);
  const login = await api('POST', '/api/v1/login', account);
  assert.equal(login.status, 200, JSON.stringify(login.json));
  account.token = login.json.session_token;
  const enrol = await api('POST', '/api/v1/me/totp', {}, account.token);
  assert.equal(enrol.status, 201, JSON.stringify(enrol.json));
  account.totp = new Authenticator(enrol.json.secret);
  const confirm = await api(
    'POST',
    '/api/v1/me/totp/confirm',
    { enrollment_id: enrol.json.enrollment_id, code: await account.totp.next() },
    account.token,
  );
  assert.equal(confirm.status, 201, JSON.stringify(confirm.json));
  return account;
}

s.test('an admin resets a user’s two-factor authentication and sees it in the audit log', async ({ page, server }) => {
  const target = await userWithTotp('target');
  const admin = await userWithTotp('admin');

  // 1. No administrator by default; the first is granted on the command line.
  const granted = twostepCli(server, 'admin', 'grant', admin.email);
  assert.match(granted, /is an administrator/);

  // 2. The admin signs in with password and authenticator code; the header links to Admin.
  await page.context().clearCookies();
  await signIn(page, admin, { code: true });
  const adminLink = page.locator('header').getByRole('link', { name: 'Admin' });
  await adminLink.waitFor();
  await submit(adminLink);
  await expectPath(page, '/admin');
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
  // Each factor names its own kind (`Factor::kind`), not the stored slug.
  assert.equal(await text(row.locator('td[data-label="Two-factor"] .help')), 'authenticator app');
  await screenshot(page, 'admin-02-search');

  // 4. Reset 2FA: a confirmation page naming the user first.
  await submit(row.getByRole('link', { name: 'Reset 2FA' }));
  await page.getByRole('heading', { level: 1, name: 'Reset two-factor authentication' }).waitFor();
  assert.match(pathname(page), /^\/admin\/users\/[^/]+\/reset-2fa$/);
  assert.equal(await text(page.locator('[data-testid=target-email]')), target.email);
  await screenshot(page, 'admin-03-confirm-reset');
  await submit(page.getByRole('button', { name: 'Reset two-factor authentication' }));
  await expectPath(page, '/admin');
  const notice = await text(page.locator('[data-testid=admin-notice]'));
  assert.match(notice, /Two-factor authentication of .* was reset and all its sessions ended/);
  assert.ok(notice.includes(target.email), notice);
  assert.equal(await text(row.locator('[data-testid=user-two-factor]')), 'Off');
  await screenshot(page, 'admin-04-after-reset');

  // The user's session has ended.
  assert.equal((await api('GET', '/api/v1/me', undefined, target.token)).status, 401);

  // 5. The audit log, filtered by user and event, names the admin as actor.
  await submit(page.getByRole('link', { name: 'Audit log' }));
  await expectPath(page, '/admin/audit');
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
  await page.context().clearCookies();
  await signIn(page, target);
  assert.equal(await page.locator('header').getByRole('link', { name: 'Admin' }).count(), 0);
  const res = await goto(page, '/admin');
  assert.equal(res.status(), 404);
});
