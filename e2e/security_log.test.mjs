// The security log as people read it (issue 20, item 4), in a real browser:
// a sign-in with a wrong code first is ONE entry that says how it ended and
// what went wrong; revealing recovery codes is marked as needing attention;
// the log filters by kind and pages through with "Older"; and it fits a
// phone (390 px) as well as a desktop.
//
// Page contract:
//   /security       section "Security log": [data-testid=latest-log] with the latest
//                   [data-testid=log-entry] rows, and the link
//                   "See recent sign-ins and changes to your account" -> /security/log
//   /security/log   nav "Filter the log": Everything, Sign-ins, Security changes,
//                   Devices and sessions, Needs attention (?kind=…, the current one
//                   aria-current=page); [data-testid=log-entry] rows (20 a page, newest
//                   first): [data-testid=log-title], notes as list items,
//                   [data-testid=log-advice], data-attention="true" with "Needs attention";
//                   nav "Pages": "Older" (?before=<cursor>) and "Newest"; or
//                   [data-testid=log-empty]
//
// One story, chained: the account is made once.

import assert from 'node:assert/strict';

import {
  enrolTotp,
  expectPath,
  expectSecurityPage,
  fitsPhone,
  goto,
  newAccount,
  pathname,
  screenshot,
  signIn,
  signInWithPassword,
  signOut,
  signUp,
  story,
  submit,
  totpNow,
  verifyWithCode,
} from './lib/index.mjs';

const s = story({ chained: true, timeout: 120_000 });
const account = newAccount('seclog');

const entries = (page) => page.locator('[data-testid=log-entry]');
const titles = (page) => page.locator('[data-testid=log-entry] [data-testid=log-title]').allInnerTexts();
const SIGNED_IN_WITH_APP = /^Signed in with an authenticator app from Chrome on Linux, 127\.0\.0\.1$/;

s.test('a sign-in with a wrong code first is one entry', async ({ page }) => {
  await signUp(page, account);
  // Enough activity for more than one page (20 entries): ten sign-ins with
  // the password alone, each with its sign-out.
  for (let i = 0; i < 10; i++) {
    await signOut(page);
    await signIn(page, account);
  }
  await goto(page, '/security/totp/new');
  account.totp = await enrolTotp(page);
  await signOut(page);

  await signInWithPassword(page, account);
  await expectPath(page, '/login/verify');
  const right = totpNow(account.totp.secret);
  await page.locator('form#verify-form #code').fill(right === '123456' ? '654321' : '123456');
  await submit(page.getByRole('button', { name: 'Verify', exact: true }));
  await page.locator('[role=alert]').first().waitFor();
  await verifyWithCode(page, account);
  await expectSecurityPage(page, account.email);

  // The Security page shows the latest entries, the sign-in first.
  const latest = page.getByTestId('latest-log');
  await latest.waitFor();
  const first = latest.locator('[data-testid=log-entry]').first();
  assert.match((await first.getByTestId('log-title').innerText()).trim(), SIGNED_IN_WITH_APP);
  assert.deepEqual(await first.locator('li').allInnerTexts(), ['1 wrong code']);
  await screenshot(page, 'seclog-01-security-page');
  await fitsPhone(page, 'seclog-01-security-page-390');

  await submit(page.getByRole('link', { name: 'See recent sign-ins and changes to your account' }));
  await expectPath(page, '/security/log');
  const shown = await titles(page);
  assert.equal(shown.filter((t) => SIGNED_IN_WITH_APP.test(t)).length, 1, `one entry for the sign-in: ${shown}`);
  assert.ok(!shown.some((t) => /wrong code|Password entered/.test(t)), `no step on its own: ${shown}`);
  assert.equal(await entries(page).count(), 20, 'a page holds 20 entries');
  await screenshot(page, 'seclog-02-log-1280');
  await fitsPhone(page, 'seclog-02-log-390');
});

s.test('revealed recovery codes need attention', async ({ page }) => {
  // Just signed in: no re-auth is asked.
  await goto(page, '/security/recovery-codes');
  await submit(page.getByRole('button', { name: 'Show my codes' }));
  await page.locator('[data-testid=recovery-code]').first().waitFor();
  await goto(page, '/security/log');
  const flagged = page.locator('[data-testid=log-entry][data-attention=true]').first();
  assert.equal((await flagged.getByTestId('log-title').innerText()).trim(), 'Recovery codes were shown');
  await flagged.getByText('Needs attention').waitFor();
  assert.match(await flagged.getByTestId('log-advice').innerText(), /change your password/);

  await submit(page.getByRole('navigation', { name: 'Filter the log' }).getByRole('link', { name: 'Needs attention' }));
  assert.equal(new URL(page.url()).searchParams.get('kind'), 'warnings');
  const warnings = await titles(page);
  assert.deepEqual(warnings, ['Recovery codes were shown'], 'only what needs attention');
  await screenshot(page, 'seclog-03-needs-attention');
});

s.test('the log filters by kind and pages through with Older', async ({ page }) => {
  await goto(page, '/security/log');
  const filters = page.getByRole('navigation', { name: 'Filter the log' });
  await submit(filters.getByRole('link', { name: 'Security changes' }));
  assert.equal(new URL(page.url()).searchParams.get('kind'), 'changes');
  assert.equal(await filters.locator('[aria-current=page]').innerText(), 'Security changes');
  const changes = await titles(page);
  assert.ok(changes.includes('Two-factor authentication turned on with an authenticator app'), `${changes}`);
  assert.ok(changes.some((t) => t.startsWith('Account created and signed in from Chrome on Linux')), `${changes}`);
  assert.ok(!changes.some((t) => t.startsWith('Signed in')), `no sign-ins among the changes: ${changes}`);
  await fitsPhone(page, 'seclog-04-changes-390');

  await submit(filters.getByRole('link', { name: 'Sign-ins' }));
  const signIns = await titles(page);
  assert.ok(signIns.length === 20 && signIns.every((t) => /^(Signed in|Signed out)/.test(t)), `${signIns}`);

  // Everything, page by page: the second page goes on where the first ended.
  await submit(filters.getByRole('link', { name: 'Everything' }));
  const firstPage = await titles(page);
  const pages = page.getByRole('navigation', { name: 'Pages' });
  assert.equal(await pages.getByRole('link', { name: 'Newest' }).count(), 0, 'the newest page has no "Newest"');
  await submit(pages.getByRole('link', { name: 'Older' }));
  assert.equal(pathname(page), '/security/log');
  assert.match(new URL(page.url()).searchParams.get('before') ?? '', /^\d+$/, 'a cursor, not an offset');
  const secondPage = await titles(page);
  assert.ok(secondPage.length > 0 && secondPage.length <= 20);
  assert.match(secondPage.at(-1), /^Account created/, 'the oldest entry ends the last page');
  assert.ok(!firstPage.some((t) => t.startsWith('Account created')));
  assert.equal(await pages.getByRole('link', { name: 'Older' }).count(), 0, 'nothing older');
  await screenshot(page, 'seclog-05-older-1280');
  await fitsPhone(page, 'seclog-05-older-390');
  await submit(pages.getByRole('link', { name: 'Newest' }));
  assert.deepEqual(await titles(page), firstPage);
});
