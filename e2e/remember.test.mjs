// Devices and credentials in a real browser: "Remember this browser" at the
// code step, signing in again with the password only, forgetting the browser
// on the Security page, signing out another browser's session, changing the
// password, the security log, and resetting a forgotten password by the
// e-mailed link.
//
// Page contract (server-rendered HTML, plain POST forms):
//   /login/verify          form#verify-form #code, checkbox #remember
//                          "Remember this browser for 30 days", button "Verify"
//   /security              section "Signed-in devices": [data-testid=session] rows, the
//                          current one tagged "this device", a "Sign out" button on
//                          every other row (-> "That device was signed out."),
//                          "Sign out everywhere else";
//                          section "Remembered browsers": [data-testid=remembered-browser]
//                          rows ("Chrome on Linux", address, until) with a "Forget" button
//                          (-> "That browser will be asked for a code again."), or
//                          [data-testid=no-remembered-browsers];
//                          link "Change password" -> /security/password;
//                          link "See recent sign-ins ..." -> /security/log
//   header                 nav "Account" with button "Sign out" -> /login "You have been signed out."
//   /reauth                "Confirm it's you": #password and/or #code, button "Confirm"
//   /security/password     form#password-form #current_password, #new_password,
//                          button "Change password" -> /security "Password changed. ..."
//   /security/log          [data-testid=log-entry] rows: when, [data-testid=log-title] (what
//                          happened, in words; a sign-in's steps are one entry), notes, device
//   /forgot-password       form#forgot-form #email, button "Send reset link" ->
//                          "If an account exists for that address, ..."
//   /reset-password?token= form#reset-form #password, button "Set new password" ->
//                          /login "Your password has been reset. ..."
//
// TOTP codes are single use per 30 s step (enrolment included), so the test
// waits for a new step before each code it types. To stay within ~3 minutes
// the story types five codes in all; the last sign-in (after the reset) only
// checks that a code is asked.
//
// The tests below are steps of one story and share one account; each fails
// at once (rather than misleadingly) when an earlier one did not finish.

import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';

import {
  alertText,
  enrolTotp,
  expectPath,
  expectSecurityPage,
  goto,
  newAccount,
  noticeText,
  pathname,
  reauthIfAsked,
  screenshot,
  signInWithPassword,
  signOut,
  signUp,
  strongPassword,
  story,
  submit,
  text,
  verifyWithCode,
} from './lib/index.mjs';

const RESET_LINK = /\/reset-password\?token=([A-Za-z0-9_-]+)/g;

const s = story({ timeout: 90_000, chained: true });

// The story's shared state, filled in as the steps run.
const account = newAccount('remember');

const sessionRows = (page) => page.locator('[data-testid=session]');
const rememberedRows = (page) => page.locator('[data-testid=remembered-browser]');
const noRememberedBrowsers = (page) => page.locator('[data-testid=no-remembered-browsers]');


/**
 * The security log's entries as { title, text } (newest first), every page
 * of it ("Older" until there is none): `text` is all the entry says.
 */
async function logEntries(page) {
  const all = [];
  for (;;) {
    const rows = page.locator('[data-testid=log-entry]');
    await rows.first().waitFor();
    const entries = await rows.evaluateAll((trs) =>
      trs.map((tr) => ({
        title: tr.querySelector('[data-testid=log-title]').innerText.trim(),
        text: tr.innerText,
      })),
    );
    all.push(...entries);
    const older = page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: 'Older' });
    if ((await older.count()) === 0) return all;
    await submit(older);
  }
}

/** Waits (briefly) for the dev-mode console mailer to print a reset link; the newest one or undefined. */
async function resetLinkFromLogs(server, seenBefore) {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const links = [...server.logs().matchAll(RESET_LINK)].map((m) => m[0]);
    if (links.length > seenBefore) return links.at(-1);
    if (Date.now() > deadline) return undefined;
    await sleep(100);
  }
}

s.test('sign up and enable an authenticator app', async ({ page }) => {
  await signUp(page, account);
  assert.equal(await noRememberedBrowsers(page).count(), 1, 'no remembered browser before 2FA');

  await submit(page.getByRole('link', { name: 'Set up an authenticator app' }));
  account.totp = await enrolTotp(page);
  await expectSecurityPage(page, account.email);
  assert.equal(await noRememberedBrowsers(page).count(), 1);
  assert.equal(await sessionRows(page).count(), 1, 'one signed-in device');
  await screenshot(page, 'remember-01-two-factor-on');
  await signOut(page);
});

s.test('tick "Remember this browser" at the code step: the browser is listed', async ({ page }) => {
  await signInWithPassword(page, account);
  await expectPath(page, '/login/verify');
  await page.getByRole('heading', { level: 1, name: 'Two-factor authentication' }).waitFor();
  await page.getByLabel('Remember this browser for 30 days').waitFor();
  await screenshot(page, 'remember-02-verify-with-remember-box');

  await verifyWithCode(page, account, { remember: true });
  await expectSecurityPage(page, account.email);
  const rows = rememberedRows(page);
  assert.equal(await rows.count(), 1, 'one remembered browser');
  assert.equal(await noRememberedBrowsers(page).count(), 0);
  const row = await text(rows.first());
  assert.match(row, /Chrome on Linux/, `the row names the browser: ${row}`);
  assert.match(row, /127\.0\.0\.1/, `the row shows the address: ${row}`);
  await rows.first().getByRole('button', { name: 'Forget' }).waitFor();
  await screenshot(page, 'remember-03-remembered-browser-listed');
});

s.test('a remembered browser signs in with the password only', async ({ page }) => {
  await signOut(page);
  await signInWithPassword(page, account);
  assert.equal(pathname(page), '/security', 'no code is asked on a remembered browser');
  await expectSecurityPage(page, account.email);
  assert.equal(await rememberedRows(page).count(), 1, 'still remembered');
  await screenshot(page, 'remember-04-signed-in-without-code');
});

s.test('"Forget" on the Security page: the browser is asked for a code again', async ({ page }) => {
  await expectSecurityPage(page, account.email);
  await submit(rememberedRows(page).first().getByRole('button', { name: 'Forget' }));
  // Forgetting lowers privilege: no re-auth, straight back to the Security page.
  await expectSecurityPage(page, account.email);
  assert.match(await noticeText(page), /That browser will be asked for a code again/);
  assert.equal(await rememberedRows(page).count(), 0, 'no remembered browser left');
  assert.equal(await noRememberedBrowsers(page).count(), 1);
  await screenshot(page, 'remember-05-browser-forgotten');

  await signOut(page);
  await signInWithPassword(page, account);
  assert.equal(pathname(page), '/login/verify', 'a forgotten browser is asked for the code again');
  await screenshot(page, 'remember-06-asked-for-code-again');
  // Remember it once more, so that the password change below can be seen to forget it.
  await verifyWithCode(page, account, { remember: true });
  await expectSecurityPage(page, account.email);
  assert.equal(await rememberedRows(page).count(), 1, 'remembered again');
});

s.test('signed-in devices: sign out the session of another browser', async ({ page }) => {
  // A second browser with its own profile signs in to the same account.
  const otherBrowser = await s.openBrowser();
  const other = otherBrowser.page;
  await signInWithPassword(other, account);
  assert.equal(pathname(other), '/login/verify', 'the second browser is not remembered: a code is asked');
  await verifyWithCode(other, account);
  await expectSecurityPage(other, account.email);
  assert.equal(await sessionRows(other).count(), 2, 'the second browser sees two sessions');
  await screenshot(other, 'remember-07-second-browser-signed-in');

  // The first browser sees both sessions, its own one tagged "this device".
  await page.reload();
  await expectSecurityPage(page, account.email);
  const rows = sessionRows(page);
  assert.equal(await rows.count(), 2, 'two signed-in devices');
  const current = rows.filter({ hasText: 'this device' });
  assert.equal(await current.count(), 1, 'exactly one row is "this device"');
  assert.equal(await current.getByRole('button', { name: 'Sign out' }).count(), 0, 'no "Sign out" on this device');
  for (const row of await rows.allInnerTexts()) assert.match(row, /Chrome on Linux/);
  await page.getByRole('button', { name: 'Sign out everywhere else' }).waitFor();
  await screenshot(page, 'remember-08-two-signed-in-devices');

  const otherRow = () => sessionRows(page).filter({ hasNotText: 'this device' });
  assert.equal(await otherRow().count(), 1);
  await submit(otherRow().getByRole('button', { name: 'Sign out' }));
  const what = 'signing out another session';
  if (await reauthIfAsked(page, account, { what, shot: 'remember-09-reauth-sign-out-device' })) {
    await expectSecurityPage(page, account.email);
    assert.equal(await sessionRows(page).count(), 2, 're-auth alone signs nobody out');
    await submit(otherRow().getByRole('button', { name: 'Sign out' }));
  }
  await expectSecurityPage(page, account.email);
  assert.match(await noticeText(page), /That device was signed out/);
  assert.equal(await sessionRows(page).count(), 1, 'one signed-in device left');
  assert.equal(await sessionRows(page).filter({ hasText: 'this device' }).count(), 1);
  assert.equal(await page.getByRole('button', { name: 'Sign out everywhere else' }).count(), 0);
  await screenshot(page, 'remember-10-other-device-signed-out');

  // The second browser's session is over.
  await goto(other, '/security');
  await expectPath(other, '/login');
  await other.locator('form#login-form').waitFor();
  await screenshot(other, 'remember-11-second-browser-signed-out');
  await otherBrowser.close();
});

s.test('change the password: the new one works, the old one does not', async ({ page }) => {
  const oldPassword = account.password;
  const newPassword = strongPassword();
  assert.notEqual(newPassword, oldPassword);

  await goto(page, '/security');
  await submit(page.getByRole('link', { name: 'Change password' }));
  await page.waitForURL((url) => ['/reauth', '/security/password'].includes(url.pathname));
  await reauthIfAsked(page, account, { what: 'changing the password', shot: 'remember-12-reauth-change-password' });
  await expectPath(page, '/security/password');
  await page.getByRole('heading', { level: 1, name: 'Change password' }).waitFor();
  const form = page.locator('form#password-form');
  await form.locator('#current_password').fill(oldPassword);
  await form.locator('#new_password').fill(newPassword);
  await screenshot(page, 'remember-13-change-password');
  await submit(form.getByRole('button', { name: 'Change password' }));
  await expectSecurityPage(page, account.email);
  assert.match(await noticeText(page), /Password changed/);
  account.password = newPassword;
  // A new password forgets every remembered browser.
  assert.equal(await rememberedRows(page).count(), 0, 'the password change forgot the remembered browser');
  assert.equal(await noRememberedBrowsers(page).count(), 1);
  assert.equal(await sessionRows(page).count(), 1, 'this session survives the change');
  await screenshot(page, 'remember-14-password-changed');

  // The old password is refused.
  await signOut(page);
  await signInWithPassword(page, account, oldPassword);
  assert.equal(pathname(page), '/login', 'the old password does not sign in');
  assert.match(await alertText(page), /Incorrect email or password/);
  assert.equal(await page.locator('#email').inputValue(), account.email, 'the e-mail is kept');
  await screenshot(page, 'remember-15-old-password-refused');

  // The new one works, and asks for the code (the browser was forgotten).
  await signInWithPassword(page, account, newPassword);
  assert.equal(pathname(page), '/login/verify', 'the password change forgot this browser: a code is asked');
  // Remember it again, so that the password reset below can be seen to forget it.
  await verifyWithCode(page, account, { remember: true });
  await expectSecurityPage(page, account.email);
  assert.equal(await rememberedRows(page).count(), 1);
  await screenshot(page, 'remember-16-signed-in-with-new-password');
});

s.test('the security log lists what happened', async ({ page }) => {
  await goto(page, '/security');
  await submit(page.getByRole('link', { name: 'See recent sign-ins and changes to your account' }));
  await expectPath(page, '/security/log');
  await page.getByRole('heading', { level: 1, name: 'Security log' }).waitFor();
  const entries = await logEntries(page);
  const titles = entries.map((e) => e.title);
  const count = (pattern) => entries.filter((e) => pattern.test(e.text)).length;

  assert.ok(titles.some((t) => t.startsWith('Account created and signed in from Chrome on Linux')));
  for (const title of [
    'Two-factor authentication turned on with an authenticator app',
    'Signed out',
    'A remembered browser was forgotten',
    'Another device was signed out',
    'Password changed',
  ]) {
    assert.ok(titles.includes(title), `"${title}" is in the security log: ${JSON.stringify(titles)}`);
  }
  // A sign-in is one entry, its steps (the code, remembering the browser) inside it.
  assert.ok(titles.some((t) => t.startsWith('Signed in with an authenticator app from Chrome on Linux')));
  assert.ok(titles.includes('Signed in with your password on a remembered browser from Chrome on Linux, 127.0.0.1'));
  assert.ok(count(/This browser was remembered for 30 days/) >= 3, 'remembered three times');
  assert.ok(
    titles.includes('Sign-in failed from Chrome on Linux, 127.0.0.1: wrong password'),
    'the refused old password is logged as failed',
  );
  assert.equal(titles.filter((t) => t === 'Password changed').length, 1, 'one password change');
  for (const e of entries) assert.match(e.text, /Chrome on Linux/, `device of ${JSON.stringify(e)}`);
  for (const t of titles) assert.ok(!t.includes('_'), `entries read as words, no slugs: ${t}`);
  await screenshot(page, 'remember-17-security-log');
});

s.test('forgot password: the reset link sets a new password, and the code is still asked', async ({ page, server }) => {
  await goto(page, '/security');
  await signOut(page);

  await submit(page.getByRole('link', { name: 'Forgot your password?' }));
  await expectPath(page, '/forgot-password');
  await page.getByRole('heading', { level: 1, name: 'Reset your password' }).waitFor();
  const linksBefore = [...server.logs().matchAll(RESET_LINK)].length;
  await page.locator('form#forgot-form #email').fill(account.email);
  await screenshot(page, 'remember-18-forgot-password');
  await submit(page.getByRole('button', { name: 'Send reset link' }));
  assert.match(await noticeText(page), /If an account exists for that address/);
  await screenshot(page, 'remember-19-reset-link-sent');

  // No mail server here: the dev-mode console mailer prints the mail to the server's output.
  const link = await resetLinkFromLogs(server, linksBefore);
  assert.ok(link, 'the dev-mode console mailer printed the reset link to the server output');
  await goto(page, link);
  await expectPath(page, '/reset-password');
  await page.getByRole('heading', { level: 1, name: 'Choose a new password' }).waitFor();
  const resetPassword = strongPassword();
  const form = page.locator('form#reset-form');
  await form.locator('#password').fill(resetPassword);
  await screenshot(page, 'remember-20-choose-new-password');
  await submit(form.getByRole('button', { name: 'Set new password' }));
  await expectPath(page, '/login');
  assert.match(await noticeText(page), /Your password has been reset/);
  await screenshot(page, 'remember-21-password-reset');
  const previousPassword = account.password;
  account.password = resetPassword;

  // The link works once.
  const again = await goto(page, link);
  assert.equal(again.status(), 400, 'a spent reset link is refused');
  assert.match(await alertText(page), /This link is invalid, already used or expired/);
  assert.equal(await page.locator('form#reset-form').count(), 0);

  // The password before the reset no longer works.
  await signInWithPassword(page, account, previousPassword);
  assert.equal(pathname(page), '/login');
  assert.match(await alertText(page), /Incorrect email or password/);

  // The new one does, and the second factor is still asked: the reset forgot
  // the browser remembered in the previous step.
  await signInWithPassword(page, account);
  assert.equal(pathname(page), '/login/verify', 'after a reset the code is still asked');
  await page.getByLabel('Enter the 6-digit code from your authenticator app').waitFor();
  await screenshot(page, 'remember-22-code-asked-after-reset');
});
