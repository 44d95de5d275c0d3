// Two-factor authentication in a real browser: enrol an authenticator app
// (QR code + typed secret), save recovery codes, sign in with a TOTP code
// from an independent client (oathtool), sign in with a recovery code, and
// turn two-factor authentication off again.
//
// Page contract (server-rendered HTML, plain POST forms):
//   /security              [data-testid=two-factor-status] "On"/"Off",
//                          link "Set up an authenticator app" -> /security/totp/new,
//                          [data-testid=authenticator] rows, [data-testid=recovery-remaining]
//                          "N of 10 recovery codes left.", link "Disable two-factor authentication"
//   /security/totp/new     GET: only a button "Start set-up" (a GET changes nothing, SEC-55);
//                          its POST: [data-testid=totp-qr] inline <svg>, link /security/totp/<id>/qr.png,
//                          [data-testid=totp-secret] "ABCD EFGH ...", form#totp-confirm-form #code,
//                          button "Verify and enable" -> recovery codes page
//   recovery codes page    [data-testid=recovery-code] x10 "xxxx-xxxx-xxxx-xxxx", button "Download"
//                          (a POST to /security/recovery-codes.txt), buttons "Copy" and "Print"
//   /login/verify          form#verify-form #code, button "Verify", link "Use a recovery code"
//                          (?method=recovery_code); wrong code -> [role=alert], same page
//   /reauth                "Confirm it's you": #password and/or #code, button "Confirm"
//   /security/two-factor/disable  confirm page, button "Disable two-factor authentication"
//
// TOTP codes are single use per 30 s step: the server refuses any code whose
// step is not above the last accepted one (enrolment included), so the test
// waits for a new step before each code it types.
//
// The tests below are steps of one story and share one account; each fails
// at once (rather than misleadingly) when an earlier one did not finish.

import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  decodeQr,
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
const ISSUER = 'twostep';
const RECOVERY_CODE = /^[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}-[a-z2-7]{4}$/;

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof launchBrowser>>} */
let browser;
/** @type {import('playwright-core').Page} */
let page;

// The story's shared state, filled in as the steps run.
const account = { email: uniqueEmail('twofactor'), password: strongPassword() };
/** Base32 secret of the enrolled authenticator. */
let secret;
/** The 30 s step of the last TOTP code the server accepted. */
let lastTotpStep;
/** @type {string[]} recovery codes as shown, "xxxx-xxxx-xxxx-xxxx" */
let recoveryCodes = [];
/** How many recovery codes have been spent so far. */
let recoveryUsed = 0;
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
    await browser?.close();
  } finally {
    await server?.stop();
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

const pathname = () => new URL(page.url()).pathname;

async function goto(path) {
  const response = await page.goto(`${server.url}${path}`);
  assert.ok(response, `no response for GET ${path}`);
  return response;
}

/** Click a submit button (or link) and wait for the page it leads to. */
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

/** Text of the first visible, non-empty [role=alert] (optionally the one matching `match`). */
async function alertText(match = /\S/) {
  const alert = page.locator('[role=alert]').filter({ hasText: match }).first();
  await alert.waitFor();
  return text(alert);
}

async function expectSecurityPage() {
  await expectPath('/security');
  await page.getByRole('heading', { level: 1, name: 'Security' }).waitFor();
  assert.equal(await text(page.locator('[data-testid=account-email]')), account.email);
}

async function twoFactorStatus() {
  return text(page.locator('[data-testid=two-factor-status]'));
}

async function signOut() {
  await submit(page.getByRole('button', { name: 'Sign out' }));
  await expectPath('/login');
  await page.getByText('You have been signed out').waitFor();
}

/** Password step of sign-in; with 2FA on it leads to /login/verify. */
async function signInWithPassword() {
  await goto('/login');
  const form = page.locator('form#login-form');
  await form.waitFor();
  await form.locator('#email').fill(account.email);
  await form.locator('#password').fill(account.password);
  await submit(form.getByRole('button', { name: 'Sign in' }));
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

/** A 6-digit code that matches none of the steps the server could accept now (T-2 .. T+2). */
function certainlyWrongTotp() {
  const start = Math.floor(Date.now() / 1000) - 2 * 30;
  const out = execFileSync('oathtool', ['--totp', '-b', '-w', '4', '-N', `@${start}`, secret], { encoding: 'utf8' });
  const nearby = new Set(out.split('\n').filter(Boolean));
  assert.ok(nearby.size >= 5, `oathtool printed ${JSON.stringify(out)}`);
  const wrong = ['000000', '111111', '222222', '333333', '444444', '555555'].find((c) => !nearby.has(c));
  assert.ok(wrong);
  return wrong;
}

/** On the set-up page's GET (a button only), start the enrolment. */
async function startSetup() {
  await expectPath('/security/totp/new');
  await submit(page.getByRole('button', { name: 'Start set-up' }));
}

/** Read the setup page: enrolment id (from the PNG link), secret, and the PNG's href. */
async function readSetupPage() {
  await expectPath('/security/totp/new');
  await page.getByRole('heading', { level: 1, name: 'Set up an authenticator app' }).waitFor();
  const svg = page.locator('[data-testid=totp-qr] svg');
  await svg.waitFor();
  const grouped = await text(page.locator('[data-testid=totp-secret]'));
  assert.match(grouped, /^[A-Z2-7]{4}( [A-Z2-7]{1,4})+$/, 'secret is shown as groups of Base32 characters');
  const pngLink = page.getByRole('link', { name: 'Download the QR code as a PNG' });
  const href = await pngLink.getAttribute('href');
  const match = /^\/security\/totp\/([^/]+)\/qr\.png$/.exec(href ?? '');
  assert.ok(match, `PNG link is /security/totp/<id>/qr.png, got ${href}`);
  return { id: match[1], secret: grouped.replace(/\s+/g, ''), href, svg };
}

function expectedUri(base32) {
  return `otpauth://totp/${ISSUER}:${account.email}?secret=${base32}&issuer=${ISSUER}`;
}

/** The PNG download and the inline SVG both decode to exactly the expected otpauth URI. */
async function checkQrCodes(setup) {
  const response = await page.request.get(`${server.url}${setup.href}`);
  assert.equal(response.status(), 200, `GET ${setup.href}`);
  assert.match(response.headers()['content-type'] ?? '', /^image\/png/);
  assert.deepEqual(await decodeQr(await response.body()), [expectedUri(setup.secret)], 'PNG QR code');

  // What a phone would scan: the inline SVG as rendered by the browser.
  assert.deepEqual(await decodeQr(await setup.svg.screenshot()), [expectedUri(setup.secret)], 'inline SVG QR code');
}

e2e('sign up and enrol an authenticator app: QR code, secret, recovery codes', async () => {
  // 1. Sign up: lands on /security with 2FA off.
  await goto('/signup');
  const form = page.locator('form#signup-form');
  await form.waitFor();
  await form.locator('#email').fill(account.email);
  await form.locator('#password').fill(account.password);
  await submit(form.getByRole('button', { name: 'Create account' }));
  await expectSecurityPage();
  assert.equal(await twoFactorStatus(), 'Off');
  await screenshot(page, '2fa-01-signed-up');

  // 2. Setup page: inline QR + grouped secret, both matching the PNG download.
  await submit(page.getByRole('link', { name: 'Set up an authenticator app' }));
  // The GET shows a button and starts nothing.
  assert.equal(await page.locator('[data-testid=totp-qr]').count(), 0, 'no QR code before the button');
  await startSetup();
  const first = await readSetupPage();
  await checkQrCodes(first);
  await screenshot(page, '2fa-02-totp-setup');

  // A new secret and QR code on every start; the newest one is used.
  await goto('/security/totp/new');
  await startSetup();
  const setup = await readSetupPage();
  assert.notEqual(setup.secret, first.secret, 'starting again makes a new secret');
  assert.notEqual(setup.id, first.id, 'starting again makes a new enrolment');
  await checkQrCodes(setup);
  await screenshot(page, '2fa-03-totp-setup-reloaded');
  secret = setup.secret;

  // 3. Confirm with a code from oathtool: 2FA turns on and recovery codes are shown once.
  const { code, step } = await freshTotp();
  const confirmForm = page.locator('form#totp-confirm-form');
  await confirmForm.locator('#code').fill(code);
  await submit(confirmForm.getByRole('button', { name: 'Verify and enable' }));
  lastTotpStep = step;
  assert.equal(pathname(), '/security/totp/confirm', 'the recovery codes are the response to the confirm post');
  await page.getByRole('heading', { level: 1, name: 'Two-factor authentication is on' }).waitFor();

  const codeItems = page.locator('[data-testid=recovery-code]');
  recoveryCodes = (await codeItems.allInnerTexts()).map((c) => c.trim());
  assert.equal(recoveryCodes.length, 10, 'ten recovery codes are shown');
  for (const c of recoveryCodes) assert.match(c, RECOVERY_CODE);
  assert.equal(new Set(recoveryCodes).size, 10, 'the recovery codes are distinct');

  const download = page.getByRole('button', { name: 'Download', exact: true });
  await download.waitFor();
  const copy = page.getByRole('button', { name: 'Copy', exact: true });
  await copy.waitFor();
  const print = page.getByRole('button', { name: 'Print' });
  await print.waitFor();
  await screenshot(page, '2fa-04-recovery-codes');

  // Download posts the page's form (it is audited and mailed) and saves a file.
  const [file] = await Promise.all([page.waitForEvent('download'), download.click()]);
  assert.equal(file.suggestedFilename(), 'twostep-recovery-codes.txt');
  const fileText = readFileSync(await file.path(), 'utf8');
  for (const c of recoveryCodes) assert.ok(fileText.includes(c), `the download lists ${c}`);
  // A plain GET of the file's address (a link from anywhere) reveals nothing.
  const get = await page.request.get(`${server.url}/security/recovery-codes.txt`);
  assert.equal(get.status(), 200);
  assert.ok(!(await get.text()).includes(recoveryCodes[0]), 'a GET shows a button, not the codes');

  // The Copy button copies exactly the ten codes, one per line.
  await browser.context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
  await copy.click();
  await page.getByRole('button', { name: 'Copied' }).waitFor();
  const clipboard = await page.evaluate(() => navigator.clipboard.readText());
  assert.equal(clipboard, recoveryCodes.join('\n'), 'Copy puts the codes on the clipboard');

  // The Print button opens the print dialog (stubbed: headless Chromium has none).
  await page.evaluate(() => {
    window.__printed = 0;
    window.print = () => {
      window.__printed += 1;
    };
  });
  await print.click();
  assert.equal(await page.evaluate(() => window.__printed), 1, 'Print calls window.print()');

  // 4. Security page: on, one authenticator, all recovery codes left.
  await submit(page.getByRole('link', { name: 'I have saved my codes' }));
  await expectSecurityPage();
  assert.equal(await twoFactorStatus(), 'On');
  assert.equal(await page.locator('[data-testid=authenticator]').count(), 1, 'one authenticator listed');
  assert.equal(await text(page.locator('[data-testid=recovery-remaining]')), '10 of 10 recovery codes left.');
  await screenshot(page, '2fa-05-security-on');
});

e2e('sign in with the authenticator app: a wrong code is refused, a fresh code works', async () => {
  await signOut();

  // 5. Password first, then the second-factor page.
  await signInWithPassword();
  await expectPath('/login/verify');
  await page.getByRole('heading', { level: 1, name: 'Two-factor authentication' }).waitFor();
  const codeInput = page.getByLabel('Enter the 6-digit code from your authenticator app');
  assert.equal(await codeInput.getAttribute('id'), 'code', 'the label names #code');
  assert.equal(await codeInput.getAttribute('autocomplete'), 'one-time-code');
  assert.equal(await codeInput.getAttribute('inputmode'), 'numeric');
  await screenshot(page, '2fa-06-login-verify');

  // 6. A wrong code: an alert, and still on the verify page.
  await codeInput.fill(certainlyWrongTotp());
  await submit(page.getByRole('button', { name: 'Verify', exact: true }));
  assert.equal(pathname(), '/login/verify', 'stays on the verify page');
  assert.match(await alertText(), /didn't work/);
  await screenshot(page, '2fa-07-wrong-code');

  // The right code, from a time step after the one spent on enrolment.
  const { code, step } = await freshTotp();
  await page.locator('form#verify-form #code').fill(code);
  await submit(page.getByRole('button', { name: 'Verify', exact: true }));
  lastTotpStep = step;
  await expectSecurityPage();
  assert.equal(await twoFactorStatus(), 'On');
  await screenshot(page, '2fa-08-signed-in-with-totp');
});

e2e('sign in with a recovery code: any case, no dashes, works once', async () => {
  await signOut();

  // 7. "Use a recovery code", typed in UPPERCASE without dashes.
  await signInWithPassword();
  await expectPath('/login/verify');
  await submit(page.getByRole('link', { name: 'Use a recovery code' }));
  await expectPath('/login/verify');
  const input = page.getByLabel('Enter one of your recovery codes');
  await input.waitFor();
  const spent = recoveryCodes[0];
  await input.fill(spent.replaceAll('-', '').toUpperCase());
  await screenshot(page, '2fa-09-recovery-code-page');
  await submit(page.getByRole('button', { name: 'Verify', exact: true }));
  recoveryUsed += 1;
  await expectSecurityPage();
  const notice = await text(page.locator('[role=status]'));
  assert.match(notice, /recovery code/i, `the notice says a recovery code was used: ${notice}`);
  assert.match(notice, /\b9 recovery codes are left\b/, `the notice says 9 are left: ${notice}`);
  assert.equal(await text(page.locator('[data-testid=recovery-remaining]')), '9 of 10 recovery codes left.');
  await screenshot(page, '2fa-10-signed-in-with-recovery-code');

  // 8. The same code again on a fresh sign-in: refused.
  await signOut();
  await signInWithPassword();
  await expectPath('/login/verify');
  await submit(page.getByRole('link', { name: 'Use a recovery code' }));
  await page.getByLabel('Enter one of your recovery codes').fill(spent);
  await submit(page.getByRole('button', { name: 'Verify', exact: true }));
  assert.equal(pathname(), '/login/verify', 'stays on the verify page');
  assert.match(await alertText(), /not valid or was already used/);
  await screenshot(page, '2fa-11-recovery-code-reused');

  // Another, unused code on the same page still signs in.
  await page.getByLabel('Enter one of your recovery codes').fill(recoveryCodes[1]);
  await submit(page.getByRole('button', { name: 'Verify', exact: true }));
  recoveryUsed += 1;
  await expectSecurityPage();
  assert.equal(
    await text(page.locator('[data-testid=recovery-remaining]')),
    `${10 - recoveryUsed} of 10 recovery codes left.`,
  );
});

e2e('disable two-factor authentication', async () => {
  // 9. From the security page; re-auth may be asked first.
  await expectSecurityPage();
  await submit(page.getByRole('link', { name: 'Disable two-factor authentication' }));
  await page.waitForURL((url) => ['/reauth', '/security/two-factor/disable'].includes(url.pathname));

  if (pathname() === '/reauth') {
    await page.getByRole('heading', { level: 1, name: "Confirm it's you" }).waitFor();
    process.stderr.write('[e2e] re-auth was asked before disabling two-factor authentication\n');
    await screenshot(page, '2fa-12-reauth');
    const form = page.locator('form#reauth-form');
    if ((await form.locator('#password').count()) > 0) {
      await form.locator('#password').fill(account.password);
    }
    let step;
    if ((await form.locator('#code').count()) > 0) {
      const fresh = await freshTotp();
      step = fresh.step;
      await form.locator('#code').fill(fresh.code);
    }
    await submit(form.getByRole('button', { name: 'Confirm' }));
    if (step !== undefined) lastTotpStep = step;
  } else {
    process.stderr.write('[e2e] no re-auth asked before disabling two-factor authentication\n');
  }

  await expectPath('/security/two-factor/disable');
  await page.getByRole('heading', { level: 1, name: 'Disable two-factor authentication' }).waitFor();
  await screenshot(page, '2fa-13-disable-confirm');
  await submit(page.getByRole('button', { name: 'Disable two-factor authentication' }));
  await expectSecurityPage();
  assert.equal(await twoFactorStatus(), 'Off');
  assert.match(await text(page.locator('[role=status]')), /Two-factor authentication is off/);
  assert.equal(await page.locator('[data-testid=authenticator]').count(), 0, 'no authenticator listed');
  await screenshot(page, '2fa-14-disabled');

  // The password alone signs in again.
  await signOut();
  await signInWithPassword();
  await expectSecurityPage();
  assert.equal(await twoFactorStatus(), 'Off');
  await signOut();
});
