// Flows: the account steps every story goes through on the way to what it
// is about. Each checks the pages it passes, so a story that uses one also
// proves the flow still works.
//
// An account is `{ email, password, totp? }`: `totp` is the Authenticator
// that enrolTotp returns, its codes spent in order across the story.
//
// Page contract:
//   /signup        form#signup-form, #email, #password, button "Create account" -> /security
//   /login         form#login-form,  #email, #password, button "Sign in"
//                  -> /security, or /login/verify when a second factor is asked
//   /login/verify  form#verify-form #code, checkbox #remember
//                  "Remember this browser for 30 days", button "Verify"
//   /security      h1 "Security", [data-testid=account-email], [data-testid=two-factor-status]
//   header         nav "Account" with button "Sign out" -> /login "You have been signed out."
//   /security/totp/new  GET: only a button "Start set-up" (a GET changes nothing, SEC-55);
//                  its POST: [data-testid=totp-secret] "ABCD EFGH ...", form#totp-confirm-form #code,
//                  button "Verify and enable" -> /security/totp/confirm: h1 "Two-factor
//                  authentication is on", [data-testid=recovery-code] x10, a box to tick and button "I have saved my codes"
//   /reauth        "Confirm it's you": form#reauth-form #password and/or #code, button "Confirm"
//   /dev/outbox    (dev mode) [data-testid=outbox-message] rows, newest first, data-channel,
//                  data-to, [data-testid=outbox-text]
//   /verify-email?account=&code=  button "Confirm my e-mail address" (POST; a GET changes nothing)

import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';

import { screenshot, strongPassword, uniqueEmail } from './harness.mjs';
import { expectPath, fill, goto, pathname, submit, text } from './steps.mjs';
import { Authenticator } from './totp.mjs';

/** @typedef {import('playwright-core').Page} Page */
/** @typedef {{ email: string, password: string, totp?: Authenticator }} Account */

export const RECOVERY_CODE = /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/;
const VERIFICATION_LINK = /\/verify-email\?account=[^\s&]+&code=\d{6}/;

/**
 * A new user's credentials (no account yet).
 * @param {string} prefix of the e-mail address
 * @returns {Account}
 */
export function newAccount(prefix) {
  return { email: uniqueEmail(prefix), password: strongPassword() };
}

/**
 * On /signup: fill the form; returns its "Create account" button.
 * @param {Page} page
 */
export async function fillSignUp(page, email, password) {
  const form = page.locator('form#signup-form');
  await fill(form, { '#email': email, '#password': password });
  return form.getByRole('button', { name: 'Create account' });
}

/**
 * On /login: fill the form; returns its "Sign in" button.
 * @param {Page} page
 */
export async function fillLogin(page, email, password) {
  const form = page.locator('form#login-form');
  await fill(form, { '#email': email, '#password': password });
  return form.getByRole('button', { name: 'Sign in' });
}

/**
 * The Security page, optionally of `email`.
 * @param {Page} page
 * @param {string} [email]
 */
export async function expectSecurityPage(page, email) {
  await expectPath(page, '/security');
  await page.getByRole('heading', { level: 1, name: 'Security' }).waitFor();
  if (email !== undefined) {
    const shown = await text(page.locator('[data-testid=account-email]'));
    assert.equal(shown, email, 'security page shows the account e-mail');
  }
}

/** @param {Page} page */
export async function twoFactorStatus(page) {
  return text(page.locator('[data-testid=two-factor-status]'));
}

/**
 * Sign up (which signs in) and land on the Security page.
 * @param {Page} page
 * @param {Account} account
 */
export async function signUp(page, account) {
  await goto(page, '/signup');
  await submit(await fillSignUp(page, account.email, account.password));
  await expectSecurityPage(page, account.email);
}

/**
 * The password step of sign-in; with 2FA on it leads to /login/verify (or
 * /security on a remembered browser).
 * @param {Page} page
 * @param {Account} account
 * @returns {Promise<number | undefined>} the status of the page it leads to
 */
export async function signInWithPassword(page, account, password = account.password) {
  await goto(page, '/login');
  return submit(await fillLogin(page, account.email, password));
}

/**
 * On /login/verify: type a fresh code from the account's authenticator
 * (optionally ticking "Remember this browser") and verify.
 * @param {Page} page
 * @param {Account} account
 */
export async function verifyWithCode(page, account, { remember = false } = {}) {
  assert.ok(account.totp, `${account.email} has no authenticator to take a code from`);
  await expectPath(page, '/login/verify');
  const form = page.locator('form#verify-form');
  await form.waitFor();
  const box = page.getByLabel('Remember this browser for 30 days');
  assert.equal(await box.getAttribute('id'), 'remember', 'the label names #remember');
  assert.equal(await box.isChecked(), false, '"Remember this browser" is not ticked by default');
  if (remember) await box.check();
  await form.locator('#code').fill(await account.totp.next());
  await submit(form.getByRole('button', { name: 'Verify', exact: true }));
}

/**
 * Sign in and land on the Security page: the password alone, or with
 * `code` the password and then a code from the account's authenticator.
 * @param {Page} page
 * @param {Account} account
 * @param {{ code?: boolean, remember?: boolean }} [options]
 */
export async function signIn(page, account, { code = false, remember = false } = {}) {
  await signInWithPassword(page, account);
  if (code) await verifyWithCode(page, account, { remember });
  await expectSecurityPage(page, account.email);
}

/**
 * The header's "Sign out" (the Security page has other "Sign out" buttons,
 * one per other session).
 * @param {Page} page
 */
export async function signOut(page) {
  const nav = page.getByRole('navigation', { name: 'Account' });
  await submit(nav.getByRole('button', { name: 'Sign out' }));
  await expectPath(page, '/login');
  await page.getByText('You have been signed out').waitFor();
}

/**
 * On the set-up page's GET (a button only), start an enrolment.
 * @param {Page} page
 */
export async function startTotpSetup(page) {
  await expectPath(page, '/security/totp/new');
  await submit(page.getByRole('button', { name: 'Start set-up' }));
  await expectPath(page, '/security/totp/new');
}

/**
 * On the started set-up page: the secret as shown, for "the app" to type in.
 * @param {Page} page
 */
export async function readTotpSecret(page) {
  const grouped = await text(page.locator('[data-testid=totp-secret]'));
  assert.match(grouped, /^[A-Z2-7]{4}( [A-Z2-7]{1,4})+$/, 'secret is shown as groups of Base32 characters');
  return grouped.replace(/\s+/g, '');
}

/**
 * On the started set-up page: confirm with a code from `totp`; the answer is
 * the recovery codes page, whose ten distinct codes land in `totp.recoveryCodes`.
 * @param {Page} page
 * @param {Authenticator} totp
 */
export async function confirmTotp(page, totp) {
  const form = page.locator('form#totp-confirm-form');
  await form.locator('#code').fill(await totp.next());
  await submit(form.getByRole('button', { name: 'Verify and enable' }));
  assert.equal(pathname(page), '/security/totp/confirm', 'the recovery codes are the response to the confirm post');
  await page.getByRole('heading', { level: 1, name: 'Two-factor authentication is on' }).waitFor();
  const codes = (await page.locator('[data-testid=recovery-code]').allInnerTexts()).map((c) => c.trim());
  assert.equal(codes.length, 10, 'ten recovery codes are shown');
  for (const c of codes) assert.match(c, RECOVERY_CODE);
  assert.equal(new Set(codes).size, 10, 'the recovery codes are distinct');
  totp.recoveryCodes = codes;
}

/**
 * On the recovery codes page: "I have saved my codes" leads to the Security
 * page, with two-factor authentication on.
 * @param {Page} page
 */
export async function leaveRecoveryCodes(page) {
  // The way on asks first that they were saved.
  await page.getByLabel('I have saved these codes somewhere safe').check();
  await submit(page.getByRole('button', { name: 'I have saved my codes' }));
  await expectSecurityPage(page);
  assert.equal(await twoFactorStatus(page), 'On');
}

/**
 * Enrol an authenticator app from the set-up page's GET (/security/totp/new,
 * reached by whichever link the story follows) to the Security page with 2FA
 * on. With `shot`, screenshots `<shot>-totp-setup` and `<shot>-recovery-codes`.
 * @param {Page} page
 * @param {{ shot?: string }} [options]
 * @returns {Promise<Authenticator>} with the recovery codes shown
 */
export async function enrolTotp(page, { shot } = {}) {
  await startTotpSetup(page);
  const totp = new Authenticator(await readTotpSecret(page));
  if (shot) await screenshot(page, `${shot}-totp-setup`);
  await confirmTotp(page, totp);
  if (shot) await screenshot(page, `${shot}-recovery-codes`);
  await leaveRecoveryCodes(page);
  return totp;
}

/**
 * When a sensitive action sent the browser to "Confirm it's you", give what
 * it asks for (password and/or a fresh code) and confirm. With `shot`, a
 * screenshot of the re-auth page.
 * @param {Page} page
 * @param {Account} account
 * @param {{ what: string, shot?: string }} options `what` names the action, for the log
 * @returns {Promise<boolean>} whether re-auth was asked
 */
export async function reauthIfAsked(page, account, { what, shot }) {
  if (pathname(page) !== '/reauth') {
    process.stderr.write(`[e2e] no re-auth asked before ${what}\n`);
    return false;
  }
  process.stderr.write(`[e2e] re-auth was asked before ${what}\n`);
  await page.getByRole('heading', { level: 1, name: "Confirm it's you" }).waitFor();
  if (shot) await screenshot(page, shot);
  const form = page.locator('form#reauth-form');
  if ((await form.locator('#password').count()) > 0) {
    await form.locator('#password').fill(account.password);
  }
  if ((await form.locator('#code').count()) > 0) {
    assert.ok(account.totp, `re-auth asks ${account.email} for a code, but it has no authenticator`);
    await form.locator('#code').fill(await account.totp.next());
  }
  await submit(form.getByRole('button', { name: 'Confirm' }));
  assert.notEqual(pathname(page), '/reauth', `re-auth was not accepted: ${await page.locator('main').innerText()}`);
  return true;
}

/**
 * The dev outbox's rows: channel, recipient and text, newest first.
 * @param {Page} page
 */
export async function outboxMessages(page) {
  const response = await goto(page, '/dev/outbox');
  assert.equal(response.status(), 200, 'the dev outbox is served in dev mode');
  await page.getByRole('heading', { level: 1, name: 'Dev outbox' }).waitFor();
  const rows = page.locator('[data-testid=outbox-message]');
  const out = [];
  for (let i = 0; i < (await rows.count()); i += 1) {
    const row = rows.nth(i);
    out.push({
      channel: await row.getAttribute('data-channel'),
      to: await row.getAttribute('data-to'),
      text: await row.locator('[data-testid=outbox-text]').innerText(),
    });
  }
  return out;
}

/**
 * The e-mail verification links (/verify-email?account=…&code=…) mailed to
 * `email`, newest first, read from the dev outbox (no mail provider is
 * configured: the outbox keeps the message).
 * @param {Page} page
 * @param {string} email
 */
export async function verificationLinks(page, email) {
  const mails = (await outboxMessages(page)).filter((m) => m.channel === 'email' && m.to === email);
  return mails.map((m) => VERIFICATION_LINK.exec(m.text)?.[0]).filter((link) => link !== undefined);
}

/**
 * The newest verification link mailed to `email`, waiting (briefly) for it.
 * @param {Page} page
 * @param {string} email
 */
export async function verificationLink(page, email) {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const [link] = await verificationLinks(page, email);
    if (link) return link;
    assert.ok(Date.now() < deadline, `no verification mail to ${email} in the dev outbox`);
    await sleep(250);
  }
}

/**
 * Confirm the account's address with the mailed link, as from the mail.
 * @param {Page} page
 * @param {string} email
 */
export async function verifyEmailByLink(page, email) {
  await goto(page, await verificationLink(page, email));
  await submit(page.getByRole('button', { name: 'Confirm my e-mail address' }));
  await page.getByRole('heading', { level: 1, name: 'E-mail address confirmed' }).waitFor();
}
