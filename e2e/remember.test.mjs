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
//   /security/log          [data-testid=log-entry] rows: when, event (audit kind with
//                          spaces), ok/failed, address, device
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

const TEST_TIMEOUT_MS = 90_000;
const STEP_MS = 30_000;
const RESET_LINK = /\/reset-password\?token=([A-Za-z0-9_-]+)/g;

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof launchBrowser>>} */
let browser;
/** @type {import('playwright-core').Page} */
let page;
/** The second browser (its own profile directory), started in the devices step. */
/** @type {Awaited<ReturnType<typeof launchBrowser>> | undefined} */
let otherBrowser;

// The story's shared state, filled in as the steps run.
const account = { email: uniqueEmail('remember'), password: strongPassword() };
/** Base32 secret of the enrolled authenticator. */
let secret;
/** The 30 s step of the last TOTP code the server accepted. */
let lastTotpStep;
/** Name of the first step that failed; later steps refuse to run on a broken story. */
let brokenAt;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = browser.page;
  page.setDefaultTimeout(15_000);
  page.setDefaultNavigationTimeout(30_000);
});

after(async () => {
  try {
    await otherBrowser?.close();
  } finally {
    try {
      await browser?.close();
    } finally {
      await server?.stop();
    }
  }
});

function e2e(name, fn) {
  test(name, { timeout: TEST_TIMEOUT_MS }, async () => {
    assert.equal(brokenAt, undefined, `an earlier step failed ("${brokenAt}"), so this one cannot run`);
    try {
      await withDiagnostics({ name, page, server }, fn);
    } catch (err) {
      brokenAt = name;
      throw err;
    }
  });
}

const pathname = (p = page) => new URL(p.url()).pathname;

async function goto(path, p = page) {
  const response = await p.goto(`${server.url}${path}`);
  assert.ok(response, `no response for GET ${path}`);
  return response;
}

/** Click a submit button (or link) and wait for the page it leads to. */
async function submit(control, p = page) {
  await Promise.all([p.waitForEvent('load'), control.click()]);
}

async function expectPath(expected, p = page) {
  await p.waitForURL((url) => url.pathname === expected);
  assert.equal(pathname(p), expected);
}

async function text(locator) {
  return (await locator.innerText()).trim();
}

/** Text of the page's notice ([role=status]). */
async function noticeText(p = page) {
  const notice = p.locator('[role=status]').first();
  await notice.waitFor();
  return text(notice);
}

/** Text of the first visible, non-empty [role=alert] (optionally the one matching `match`). */
async function alertText(match = /\S/, p = page) {
  const alert = p.locator('[role=alert]').filter({ hasText: match }).first();
  await alert.waitFor();
  return text(alert);
}

async function expectSecurityPage(p = page) {
  await expectPath('/security', p);
  await p.getByRole('heading', { level: 1, name: 'Security' }).waitFor();
  assert.equal(await text(p.locator('[data-testid=account-email]')), account.email);
}

const sessionRows = (p = page) => p.locator('[data-testid=session]');
const rememberedRows = (p = page) => p.locator('[data-testid=remembered-browser]');
const noRememberedBrowsers = (p = page) => p.locator('[data-testid=no-remembered-browsers]');

/** The header's "Sign out" (the Security page has other "Sign out" buttons, one per other session). */
async function signOut(p = page) {
  const nav = p.getByRole('navigation', { name: 'Account' });
  await submit(nav.getByRole('button', { name: 'Sign out' }), p);
  await expectPath('/login', p);
  await p.getByText('You have been signed out').waitFor();
}

/** Password step of sign-in; with 2FA on it leads to /login/verify (or /security on a remembered browser). */
async function signInWithPassword(password = account.password, p = page) {
  await goto('/login', p);
  const form = p.locator('form#login-form');
  await form.waitFor();
  await form.locator('#email').fill(account.email);
  await form.locator('#password').fill(password);
  await submit(form.getByRole('button', { name: 'Sign in' }), p);
}

const stepOf = (ms) => Math.floor(ms / STEP_MS);

/**
 * A TOTP code from oathtool whose 30 s step is above the last accepted one,
 * waiting for the next step to begin (plus a second of margin) when needed.
 * @returns {Promise<{ code: string, step: number }>}
 */
async function freshTotp() {
  for (;;) {
    if (lastTotpStep !== undefined && stepOf(Date.now()) <= lastTotpStep) {
      const waitMs = (lastTotpStep + 1) * STEP_MS - Date.now() + 1_000;
      process.stderr.write(`[e2e] waiting ${(waitMs / 1000).toFixed(1)} s for a new TOTP time step\n`);
      await sleep(waitMs);
    }
    const before = stepOf(Date.now());
    const code = totpNow(secret);
    // A step boundary between the two clock reads leaves the code's step unknown: try again.
    if (stepOf(Date.now()) === before) return { code, step: before };
  }
}

/** On /login/verify: type a fresh code (optionally ticking "Remember this browser") and verify. */
async function verifyWithCode({ remember = false, p = page } = {}) {
  await expectPath('/login/verify', p);
  const form = p.locator('form#verify-form');
  await form.waitFor();
  const box = p.getByLabel('Remember this browser for 30 days');
  assert.equal(await box.getAttribute('id'), 'remember', 'the label names #remember');
  assert.equal(await box.isChecked(), false, '"Remember this browser" is not ticked by default');
  if (remember) await box.check();
  const { code, step } = await freshTotp();
  await form.locator('#code').fill(code);
  await submit(form.getByRole('button', { name: 'Verify', exact: true }), p);
  lastTotpStep = step;
}

/**
 * When a sensitive action sent the browser to "Confirm it's you", give what
 * it asks for (password and/or a fresh code) and confirm.
 * @returns {Promise<boolean>} whether re-auth was asked
 */
async function completeReauthIfAsked(what, shotName, password = account.password) {
  if (pathname() !== '/reauth') {
    process.stderr.write(`[e2e] no re-auth asked before ${what}\n`);
    return false;
  }
  process.stderr.write(`[e2e] re-auth was asked before ${what}\n`);
  await page.getByRole('heading', { level: 1, name: "Confirm it's you" }).waitFor();
  await screenshot(page, shotName);
  const form = page.locator('form#reauth-form');
  if ((await form.locator('#password').count()) > 0) {
    await form.locator('#password').fill(password);
  }
  let step;
  if ((await form.locator('#code').count()) > 0) {
    const fresh = await freshTotp();
    step = fresh.step;
    await form.locator('#code').fill(fresh.code);
  }
  await submit(form.getByRole('button', { name: 'Confirm' }));
  if (step !== undefined) lastTotpStep = step;
  assert.notEqual(pathname(), '/reauth', `re-auth was not accepted: ${await page.locator('main').innerText()}`);
  return true;
}

/** The security log's rows as { event, result, device } (newest first). */
async function logEntries() {
  const rows = page.locator('[data-testid=log-entry]');
  await rows.first().waitFor();
  return rows.evaluateAll((trs) =>
    trs.map((tr) => {
      const cells = [...tr.cells].map((td) => td.innerText.trim());
      return { when: cells[0], event: cells[1], result: cells[2], ip: cells[3], device: cells[4] };
    }),
  );
}

/** Waits (briefly) for the dev-mode console mailer to print a reset link; the newest one or undefined. */
async function resetLinkFromLogs(seenBefore) {
  const deadline = Date.now() + 5_000;
  for (;;) {
    const links = [...server.logs().matchAll(RESET_LINK)].map((m) => m[0]);
    if (links.length > seenBefore) return links.at(-1);
    if (Date.now() > deadline) return undefined;
    await sleep(100);
  }
}

e2e('sign up and enable an authenticator app', async () => {
  await goto('/signup');
  const form = page.locator('form#signup-form');
  await form.waitFor();
  await form.locator('#email').fill(account.email);
  await form.locator('#password').fill(account.password);
  await submit(form.getByRole('button', { name: 'Create account' }));
  await expectSecurityPage();
  assert.equal(await noRememberedBrowsers().count(), 1, 'no remembered browser before 2FA');

  await submit(page.getByRole('link', { name: 'Set up an authenticator app' }));
  await expectPath('/security/totp/new');
  await submit(page.getByRole('button', { name: 'Start set-up' }));
  await expectPath('/security/totp/new');
  const grouped = await text(page.locator('[data-testid=totp-secret]'));
  assert.match(grouped, /^[A-Z2-7]{4}( [A-Z2-7]{1,4})+$/);
  secret = grouped.replace(/\s+/g, '');
  const { code, step } = await freshTotp();
  const confirmForm = page.locator('form#totp-confirm-form');
  await confirmForm.locator('#code').fill(code);
  await submit(confirmForm.getByRole('button', { name: 'Verify and enable' }));
  lastTotpStep = step;
  await page.getByRole('heading', { level: 1, name: 'Two-factor authentication is on' }).waitFor();
  assert.equal(await page.locator('[data-testid=recovery-code]').count(), 10);

  await submit(page.getByRole('link', { name: 'I have saved my codes' }));
  await expectSecurityPage();
  assert.equal(await text(page.locator('[data-testid=two-factor-status]')), 'On');
  assert.equal(await noRememberedBrowsers().count(), 1);
  assert.equal(await sessionRows().count(), 1, 'one signed-in device');
  await screenshot(page, 'remember-01-two-factor-on');
  await signOut();
});

e2e('tick "Remember this browser" at the code step: the browser is listed', async () => {
  await signInWithPassword();
  await expectPath('/login/verify');
  await page.getByRole('heading', { level: 1, name: 'Two-factor authentication' }).waitFor();
  await page.getByLabel('Remember this browser for 30 days').waitFor();
  await screenshot(page, 'remember-02-verify-with-remember-box');

  await verifyWithCode({ remember: true });
  await expectSecurityPage();
  const rows = rememberedRows();
  assert.equal(await rows.count(), 1, 'one remembered browser');
  assert.equal(await noRememberedBrowsers().count(), 0);
  const row = await text(rows.first());
  assert.match(row, /Chrome on Linux/, `the row names the browser: ${row}`);
  assert.match(row, /127\.0\.0\.1/, `the row shows the address: ${row}`);
  await rows.first().getByRole('button', { name: 'Forget' }).waitFor();
  await screenshot(page, 'remember-03-remembered-browser-listed');
});

e2e('a remembered browser signs in with the password only', async () => {
  await signOut();
  await signInWithPassword();
  assert.equal(pathname(), '/security', 'no code is asked on a remembered browser');
  await expectSecurityPage();
  assert.equal(await rememberedRows().count(), 1, 'still remembered');
  await screenshot(page, 'remember-04-signed-in-without-code');
});

e2e('"Forget" on the Security page: the browser is asked for a code again', async () => {
  await expectSecurityPage();
  await submit(rememberedRows().first().getByRole('button', { name: 'Forget' }));
  // Forgetting lowers privilege: no re-auth, straight back to the Security page.
  await expectSecurityPage();
  assert.match(await noticeText(), /That browser will be asked for a code again/);
  assert.equal(await rememberedRows().count(), 0, 'no remembered browser left');
  assert.equal(await noRememberedBrowsers().count(), 1);
  await screenshot(page, 'remember-05-browser-forgotten');

  await signOut();
  await signInWithPassword();
  assert.equal(pathname(), '/login/verify', 'a forgotten browser is asked for the code again');
  await screenshot(page, 'remember-06-asked-for-code-again');
  // Remember it once more, so that the password change below can be seen to forget it.
  await verifyWithCode({ remember: true });
  await expectSecurityPage();
  assert.equal(await rememberedRows().count(), 1, 'remembered again');
});

e2e('signed-in devices: sign out the session of another browser', async () => {
  // A second browser with its own profile signs in to the same account.
  otherBrowser = await launchBrowser();
  const other = otherBrowser.page;
  other.setDefaultTimeout(15_000);
  other.setDefaultNavigationTimeout(30_000);
  await signInWithPassword(account.password, other);
  assert.equal(pathname(other), '/login/verify', 'the second browser is not remembered: a code is asked');
  await verifyWithCode({ p: other });
  await expectSecurityPage(other);
  assert.equal(await sessionRows(other).count(), 2, 'the second browser sees two sessions');
  await screenshot(other, 'remember-07-second-browser-signed-in');

  // The first browser sees both sessions, its own one tagged "this device".
  await page.reload();
  await expectSecurityPage();
  const rows = sessionRows();
  assert.equal(await rows.count(), 2, 'two signed-in devices');
  const current = rows.filter({ hasText: 'this device' });
  assert.equal(await current.count(), 1, 'exactly one row is "this device"');
  assert.equal(await current.getByRole('button', { name: 'Sign out' }).count(), 0, 'no "Sign out" on this device');
  for (const row of await rows.allInnerTexts()) assert.match(row, /Chrome on Linux/);
  await page.getByRole('button', { name: 'Sign out everywhere else' }).waitFor();
  await screenshot(page, 'remember-08-two-signed-in-devices');

  const otherRow = () => sessionRows().filter({ hasNotText: 'this device' });
  assert.equal(await otherRow().count(), 1);
  await submit(otherRow().getByRole('button', { name: 'Sign out' }));
  if (await completeReauthIfAsked('signing out another session', 'remember-09-reauth-sign-out-device')) {
    await expectSecurityPage();
    assert.equal(await sessionRows().count(), 2, 're-auth alone signs nobody out');
    await submit(otherRow().getByRole('button', { name: 'Sign out' }));
  }
  await expectSecurityPage();
  assert.match(await noticeText(), /That device was signed out/);
  assert.equal(await sessionRows().count(), 1, 'one signed-in device left');
  assert.equal(await sessionRows().filter({ hasText: 'this device' }).count(), 1);
  assert.equal(await page.getByRole('button', { name: 'Sign out everywhere else' }).count(), 0);
  await screenshot(page, 'remember-10-other-device-signed-out');

  // The second browser's session is over.
  await goto('/security', other);
  await expectPath('/login', other);
  await other.locator('form#login-form').waitFor();
  await screenshot(other, 'remember-11-second-browser-signed-out');
  await otherBrowser.close();
  otherBrowser = undefined;
});

e2e('change the password: the new one works, the old one does not', async () => {
  const oldPassword = account.password;
  const newPassword = strongPassword();
  assert.notEqual(newPassword, oldPassword);

  await goto('/security');
  await submit(page.getByRole('link', { name: 'Change password' }));
  await page.waitForURL((url) => ['/reauth', '/security/password'].includes(url.pathname));
  await completeReauthIfAsked('changing the password', 'remember-12-reauth-change-password');
  await expectPath('/security/password');
  await page.getByRole('heading', { level: 1, name: 'Change password' }).waitFor();
  const form = page.locator('form#password-form');
  await form.locator('#current_password').fill(oldPassword);
  await form.locator('#new_password').fill(newPassword);
  await screenshot(page, 'remember-13-change-password');
  await submit(form.getByRole('button', { name: 'Change password' }));
  await expectSecurityPage();
  assert.match(await noticeText(), /Password changed/);
  account.password = newPassword;
  // A new password forgets every remembered browser.
  assert.equal(await rememberedRows().count(), 0, 'the password change forgot the remembered browser');
  assert.equal(await noRememberedBrowsers().count(), 1);
  assert.equal(await sessionRows().count(), 1, 'this session survives the change');
  await screenshot(page, 'remember-14-password-changed');

  // The old password is refused.
  await signOut();
  await signInWithPassword(oldPassword);
  assert.equal(pathname(), '/login', 'the old password does not sign in');
  assert.match(await alertText(), /Incorrect email or password/);
  assert.equal(await page.locator('#email').inputValue(), account.email, 'the e-mail is kept');
  await screenshot(page, 'remember-15-old-password-refused');

  // The new one works, and asks for the code (the browser was forgotten).
  await signInWithPassword(newPassword);
  assert.equal(pathname(), '/login/verify', 'the password change forgot this browser: a code is asked');
  // Remember it again, so that the password reset below can be seen to forget it.
  await verifyWithCode({ remember: true });
  await expectSecurityPage();
  assert.equal(await rememberedRows().count(), 1);
  await screenshot(page, 'remember-16-signed-in-with-new-password');
});

e2e('the security log lists what happened', async () => {
  await goto('/security');
  await submit(page.getByRole('link', { name: 'See recent sign-ins and changes to your account' }));
  await expectPath('/security/log');
  await page.getByRole('heading', { level: 1, name: 'Security log' }).waitFor();
  const entries = await logEntries();
  const events = entries.map((e) => e.event);
  const count = (event, result) =>
    entries.filter((e) => e.event === event && (result === undefined || e.result === result)).length;

  for (const event of [
    'account created',
    'authenticator added',
    'sign in succeeded',
    'sign out',
    'browser remembered',
    'browser forgotten',
    'session revoked',
    'password changed',
  ]) {
    assert.ok(events.includes(event), `"${event}" is in the security log: ${JSON.stringify(events)}`);
  }
  assert.ok(count('browser remembered', 'ok') >= 3, 'three "browser remembered" entries (remembered three times)');
  assert.ok(count('sign in password', 'failed') >= 1, 'the refused old password is logged as failed');
  assert.equal(count('password changed', 'ok'), 1, 'one password change');
  for (const e of entries) assert.equal(e.device, 'Chrome on Linux', `device of ${JSON.stringify(e)}`);
  for (const e of entries) assert.match(e.event, /^[a-z0-9 ]+$/, 'events read as words, no underscores');
  await screenshot(page, 'remember-17-security-log');
});

e2e('forgot password: the reset link sets a new password, and the code is still asked', async () => {
  await goto('/security');
  await signOut();

  await submit(page.getByRole('link', { name: 'Forgot your password?' }));
  await expectPath('/forgot-password');
  await page.getByRole('heading', { level: 1, name: 'Reset your password' }).waitFor();
  const linksBefore = [...server.logs().matchAll(RESET_LINK)].length;
  await page.locator('form#forgot-form #email').fill(account.email);
  await screenshot(page, 'remember-18-forgot-password');
  await submit(page.getByRole('button', { name: 'Send reset link' }));
  assert.match(await noticeText(), /If an account exists for that address/);
  await screenshot(page, 'remember-19-reset-link-sent');

  // No mail server here: the dev-mode console mailer prints the mail to the server's output.
  const link = await resetLinkFromLogs(linksBefore);
  assert.ok(link, 'the dev-mode console mailer printed the reset link to the server output');
  await goto(link);
  await expectPath('/reset-password');
  await page.getByRole('heading', { level: 1, name: 'Choose a new password' }).waitFor();
  const resetPassword = strongPassword();
  const form = page.locator('form#reset-form');
  await form.locator('#password').fill(resetPassword);
  await screenshot(page, 'remember-20-choose-new-password');
  await submit(form.getByRole('button', { name: 'Set new password' }));
  await expectPath('/login');
  assert.match(await noticeText(), /Your password has been reset/);
  await screenshot(page, 'remember-21-password-reset');
  const previousPassword = account.password;
  account.password = resetPassword;

  // The link works once.
  const again = await goto(link);
  assert.equal(again.status(), 400, 'a spent reset link is refused');
  assert.match(await alertText(), /This link is invalid, already used or expired/);
  assert.equal(await page.locator('form#reset-form').count(), 0);

  // The password before the reset no longer works.
  await signInWithPassword(previousPassword);
  assert.equal(pathname(), '/login');
  assert.match(await alertText(), /Incorrect email or password/);

  // The new one does, and the second factor is still asked: the reset forgot
  // the browser remembered in the previous step.
  await signInWithPassword(resetPassword);
  assert.equal(pathname(), '/login/verify', 'after a reset the code is still asked');
  await page.getByLabel('Enter the 6-digit code from your authenticator app').waitFor();
  await screenshot(page, 'remember-22-code-asked-after-reset');
});
