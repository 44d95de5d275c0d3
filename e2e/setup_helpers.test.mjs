// The helpers around setting a factor up, in a real browser: copy buttons
// for the TOTP key, the pairing link and the enrol command; the otpauth://
// link that opens the authenticator app on a phone; and the "I have saved
// my codes" step before new recovery codes are left behind.

import assert from 'node:assert/strict';

import {
  Authenticator,
  confirmTotp,
  expectPath,
  fitsPhone,
  goto,
  newAccount,
  pathname,
  readTotpSecret,
  reauthIfAsked,
  screenshot,
  signUp,
  startTotpSetup,
  story,
  submit,
} from './lib/index.mjs';

const s = story({ browsers: { page: { permissions: ['clipboard-read', 'clipboard-write'] } } });

const clipboard = (page) => page.evaluate(() => navigator.clipboard.readText());

s.test('copy the key, open the app by link, and confirm the codes were saved before leaving', async ({ page }) => {
  const account = newAccount('helpers');
  await signUp(page, account);
  await goto(page, '/security/totp/new');
  await startTotpSetup(page);
  const secret = await readTotpSecret(page);

  await page.getByRole('button', { name: 'Copy key' }).click();
  await page.getByRole('button', { name: 'Copied' }).waitFor();
  assert.equal(await clipboard(page), secret, 'the key, without the spaces shown for typing');
  const href = await page.getByTestId('otpauth-link').getAttribute('href');
  assert.match(href, /^otpauth:\/\/totp\//);
  assert.equal(new URL(href).searchParams.get('secret'), secret);
  await screenshot(page, 'helpers-01-totp-setup');

  const totp = new Authenticator(secret);
  account.totp = totp;
  await confirmTotp(page, totp);
  // Not ticked: the browser holds the form back.
  await page.getByRole('button', { name: 'I have saved my codes' }).click();
  assert.equal(pathname(page), '/security/totp/confirm', 'still on the codes');
  await page.getByRole('button', { name: 'Copy', exact: true }).click();
  await page.getByRole('button', { name: 'Copied' }).waitFor();
  assert.deepEqual((await clipboard(page)).split('\n'), totp.recoveryCodes);
  await screenshot(page, 'helpers-02-codes-not-confirmed');
  await page.getByLabel('I have saved these codes somewhere safe').check();
  await submit(page.getByRole('button', { name: 'I have saved my codes' }));
  await expectPath(page, '/security');

  // Pairing a companion: the link and the command are one click each.
  await goto(page, '/security/push/new');
  await reauthIfAsked(page, account, { what: 'pairing' });
  if (pathname(page) !== '/security/push/new') await goto(page, '/security/push/new');
  await submit(page.getByRole('button', { name: 'Show the pairing code' }));
  const link = await page.getByTestId('pairing-link').inputValue();
  await page.getByRole('button', { name: 'Copy link' }).click();
  await page.getByRole('button', { name: 'Copied' }).waitFor();
  assert.equal(await clipboard(page), link);
  await page.getByRole('button', { name: 'Copy command' }).click();
  await page.getByRole('button', { name: 'Copied' }).nth(1).waitFor();
  assert.equal(await clipboard(page), `twostep companion enroll '${link}'`);
  await screenshot(page, 'helpers-03-pairing');
  await fitsPhone(page, 'helpers-03-pairing-390');
});
