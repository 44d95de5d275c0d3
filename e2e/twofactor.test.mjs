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

import { readFileSync } from 'node:fs';
import assert from 'node:assert/strict';

import {
  Authenticator,
  alertText,
  confirmTotp,
  decodeQr,
  expectPath,
  expectSecurityPage,
  goto,
  leaveRecoveryCodes,
  newAccount,
  pathname,
  readTotpSecret,
  reauthIfAsked,
  screenshot,
  signOut,
  signInWithPassword,
  signUp,
  startTotpSetup,
  story,
  submit,
  text,
  twoFactorStatus,
  verifyWithCode,
} from './lib/index.mjs';

const ISSUER = 'twostep';

const s = story({ timeout: 90_000, chained: true });

// The story's shared state, filled in as the steps run.
const account = newAccount('twofactor');
/** How many recovery codes have been spent so far. */
let recoveryUsed = 0;

/** Read the setup page: enrolment id (from the PNG link), secret, and the PNG's href. */
async function readSetupPage(page) {
  await expectPath(page, '/security/totp/new');
  await page.getByRole('heading', { level: 1, name: 'Set up an authenticator app' }).waitFor();
  const svg = page.locator('[data-testid=totp-qr] svg');
  await svg.waitFor();
  const secret = await readTotpSecret(page);
  const pngLink = page.getByRole('link', { name: 'Download the QR code as a PNG' });
  const href = await pngLink.getAttribute('href');
  const match = /^\/security\/totp\/([^/]+)\/qr\.png$/.exec(href ?? '');
  assert.ok(match, `PNG link is /security/totp/<id>/qr.png, got ${href}`);
  return { id: match[1], secret, href, svg };
}

function expectedUri(base32) {
  return `otpauth://totp/${ISSUER}:${account.email}?secret=${base32}&issuer=${ISSUER}`;
}

/** The PNG download and the inline SVG both decode to exactly the expected otpauth URI. */
async function checkQrCodes(page, setup) {
  const response = await page.request.get(`${s.server.url}${setup.href}`);
  assert.equal(response.status(), 200, `GET ${setup.href}`);
  assert.match(response.headers()['content-type'] ?? '', /^image\/png/);
  assert.deepEqual(await decodeQr(await response.body()), [expectedUri(setup.secret)], 'PNG QR code');

  // What a phone would scan: the inline SVG as rendered by the browser.
  assert.deepEqual(await decodeQr(await setup.svg.screenshot()), [expectedUri(setup.secret)], 'inline SVG QR code');
}

s.test('sign up and enrol an authenticator app: QR code, secret, recovery codes', async ({ page, server }) => {
  // 1. Sign up: lands on /security with 2FA off.
  await signUp(page, account);
  assert.equal(await twoFactorStatus(page), 'Off');
  await screenshot(page, '2fa-01-signed-up');

  // 2. Setup page: inline QR + grouped secret, both matching the PNG download.
  await submit(page.getByRole('link', { name: 'Set up an authenticator app' }));
  // The GET shows a button and starts nothing.
  assert.equal(await page.locator('[data-testid=totp-qr]').count(), 0, 'no QR code before the button');
  await startTotpSetup(page);
  const first = await readSetupPage(page);
  await checkQrCodes(page, first);
  await screenshot(page, '2fa-02-totp-setup');

  // A new secret and QR code on every start; the newest one is used.
  await goto(page, '/security/totp/new');
  await startTotpSetup(page);
  const setup = await readSetupPage(page);
  assert.notEqual(setup.secret, first.secret, 'starting again makes a new secret');
  assert.notEqual(setup.id, first.id, 'starting again makes a new enrolment');
  await checkQrCodes(page, setup);
  await screenshot(page, '2fa-03-totp-setup-reloaded');
  account.totp = new Authenticator(setup.secret);

  // 3. Confirm with a code from oathtool: 2FA turns on and ten distinct recovery codes are shown once.
  await confirmTotp(page, account.totp);
  const { recoveryCodes } = account.totp;

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
  await page.context().grantPermissions(['clipboard-read', 'clipboard-write'], { origin: server.url });
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
  await leaveRecoveryCodes(page);
  await expectSecurityPage(page, account.email);
  assert.equal(await page.locator('[data-testid=authenticator]').count(), 1, 'one authenticator listed');
  assert.equal(await text(page.locator('[data-testid=recovery-remaining]')), '10 of 10 recovery codes left.');
  await screenshot(page, '2fa-05-security-on');
});

s.test('sign in with the authenticator app: a wrong code is refused, a fresh code works', async ({ page }) => {
  await signOut(page);

  // 5. Password first, then the second-factor page.
  await signInWithPassword(page, account);
  await expectPath(page, '/login/verify');
  await page.getByRole('heading', { level: 1, name: 'Two-factor authentication' }).waitFor();
  const codeInput = page.getByLabel('Enter the 6-digit code from your authenticator app');
  assert.equal(await codeInput.getAttribute('id'), 'code', 'the label names #code');
  assert.equal(await codeInput.getAttribute('autocomplete'), 'one-time-code');
  assert.equal(await codeInput.getAttribute('inputmode'), 'numeric');
  await screenshot(page, '2fa-06-login-verify');

  // 6. A wrong code: an alert, and still on the verify page.
  await codeInput.fill(account.totp.certainlyWrong());
  await submit(page.getByRole('button', { name: 'Verify', exact: true }));
  assert.equal(pathname(page), '/login/verify', 'stays on the verify page');
  assert.match(await alertText(page), /didn't work/);
  await screenshot(page, '2fa-07-wrong-code');

  // The right code, from a time step after the one spent on enrolment.
  await verifyWithCode(page, account);
  await expectSecurityPage(page, account.email);
  assert.equal(await twoFactorStatus(page), 'On');
  await screenshot(page, '2fa-08-signed-in-with-totp');
});

s.test('sign in with a recovery code: any case, no dashes, works once', async ({ page }) => {
  const { recoveryCodes } = account.totp;
  await signOut(page);

  // 7. "Use a recovery code", typed in UPPERCASE without dashes.
  await signInWithPassword(page, account);
  await expectPath(page, '/login/verify');
  await submit(page.getByRole('link', { name: 'Use a recovery code' }));
  await expectPath(page, '/login/verify');
  const input = page.getByLabel('Enter one of your recovery codes');
  await input.waitFor();
  const spent = recoveryCodes[0];
  await input.fill(spent.replaceAll('-', '').toUpperCase());
  await screenshot(page, '2fa-09-recovery-code-page');
  await submit(page.getByRole('button', { name: 'Verify', exact: true }));
  recoveryUsed += 1;
  await expectSecurityPage(page, account.email);
  const notice = await text(page.locator('[role=status]'));
  assert.match(notice, /recovery code/i, `the notice says a recovery code was used: ${notice}`);
  assert.match(notice, /\b9 recovery codes are left\b/, `the notice says 9 are left: ${notice}`);
  assert.equal(await text(page.locator('[data-testid=recovery-remaining]')), '9 of 10 recovery codes left.');
  await screenshot(page, '2fa-10-signed-in-with-recovery-code');

  // 8. The same code again on a fresh sign-in: refused.
  await signOut(page);
  await signInWithPassword(page, account);
  await expectPath(page, '/login/verify');
  await submit(page.getByRole('link', { name: 'Use a recovery code' }));
  await page.getByLabel('Enter one of your recovery codes').fill(spent);
  await submit(page.getByRole('button', { name: 'Verify', exact: true }));
  assert.equal(pathname(page), '/login/verify', 'stays on the verify page');
  assert.match(await alertText(page), /not valid or was already used/);
  await screenshot(page, '2fa-11-recovery-code-reused');

  // Another, unused code on the same page still signs in.
  await page.getByLabel('Enter one of your recovery codes').fill(recoveryCodes[1]);
  await submit(page.getByRole('button', { name: 'Verify', exact: true }));
  recoveryUsed += 1;
  await expectSecurityPage(page, account.email);
  assert.equal(
    await text(page.locator('[data-testid=recovery-remaining]')),
    `${10 - recoveryUsed} of 10 recovery codes left.`,
  );
});

s.test('disable two-factor authentication', async ({ page }) => {
  // 9. From the security page; re-auth may be asked first.
  await expectSecurityPage(page, account.email);
  await submit(page.getByRole('link', { name: 'Disable two-factor authentication' }));
  await page.waitForURL((url) => ['/reauth', '/security/two-factor/disable'].includes(url.pathname));
  await reauthIfAsked(page, account, { what: 'disabling two-factor authentication', shot: '2fa-12-reauth' });

  await expectPath(page, '/security/two-factor/disable');
  await page.getByRole('heading', { level: 1, name: 'Disable two-factor authentication' }).waitFor();
  await screenshot(page, '2fa-13-disable-confirm');
  await submit(page.getByRole('button', { name: 'Disable two-factor authentication' }));
  await expectSecurityPage(page, account.email);
  assert.equal(await twoFactorStatus(page), 'Off');
  assert.match(await text(page.locator('[role=status]')), /Two-factor authentication is off/);
  assert.equal(await page.locator('[data-testid=authenticator]').count(), 0, 'no authenticator listed');
  await screenshot(page, '2fa-14-disabled');

  // The password alone signs in again.
  await signOut(page);
  await signInWithPassword(page, account);
  await expectSecurityPage(page, account.email);
  assert.equal(await twoFactorStatus(page), 'Off');
  await signOut(page);
});
