// OpenID Connect in a real browser: a demo app (started here, using the
// openid-client library) sends a person to twostep, who signs in with the
// password and a TOTP code, consents, and lands back signed in with `amr`
// showing two factors; a second app that requires two factors steps up a
// password-only session (a remembered browser) with a code on the re-auth
// page instead of accepting it.
//
// Page contract:
//   /oidc/authorize   without a session -> /login, back here after sign-in
//   consent page      h1 "Sign in to NAME?", form#consent-form, buttons "Allow" / "Deny"
//   /reauth           "Confirm it's you" (step-up), then back to /oidc/authorize
//   demo app          [data-testid=who|acr|amr] after its /callback

import assert from 'node:assert/strict';

import { startDemoApp } from './rp/demo_app.mjs';
import {
  enrolTotp,
  expectPath,
  expectSecurityPage,
  fillLogin,
  fitsPhone,
  newAccount,
  pathname,
  reauthIfAsked,
  screenshot,
  signOut,
  signUp,
  story,
  submit,
  twostepCli,
  verifyWithCode,
} from './lib/index.mjs';

const s = story({ timeout: 120_000, chained: true });
const account = newAccount('oidc');
const apps = {};

function register(server, name, ...flags) {
  return (redirectUri) =>
    JSON.parse(twostepCli(server, 'oidc', 'client', 'add', name, '--redirect-uri', redirectUri, ...flags, '--json'));
}

async function text(page, id) {
  return (await page.locator(`[data-testid=${id}]`).innerText()).trim();
}

s.test('sign up, set up an authenticator app, sign out', async ({ page, server }) => {
  apps.wiki = await startDemoApp({ issuer: server.url, name: 'Wiki', register: register(server, 'Wiki') });
  apps.vault = await startDemoApp({
    issuer: server.url,
    name: 'Vault',
    register: register(server, 'Vault', '--require-two-factor', '--skip-consent'),
  });
  await signUp(page, account);
  await submit(page.getByRole('link', { name: 'Set up an authenticator app' }));
  account.totp = await enrolTotp(page);
  await expectSecurityPage(page, account.email);
  await signOut(page);
});

s.test('an app sends the person to twostep: password, code, consent, and back with two factors', async ({ page }) => {
  await page.goto(`${apps.wiki.url}/login`);
  await expectPath(page, '/login');
  await submit(await fillLogin(page, account.email, account.password));
  await verifyWithCode(page, account, { remember: true });
  await page.getByRole('heading', { level: 1, name: 'Sign in to Wiki?' }).waitFor();
  await screenshot(page, 'oidc-01-consent');
  await fitsPhone(page, 'oidc-consent');
  await submit(page.getByRole('button', { name: 'Allow' }));
  await page.waitForURL(`${apps.wiki.url}/callback**`);
  assert.equal(await text(page, 'who'), account.email);
  assert.equal(await text(page, 'acr'), 'urn:twostep:2fa');
  assert.equal(await text(page, 'amr'), 'pwd otp mfa');
  await screenshot(page, 'oidc-02-signed-in-at-the-app');
});

s.test('an app requiring two factors steps up a password-only session', async ({ page, server }) => {
  await page.goto(`${server.url}/security`);
  await signOut(page);
  // The remembered browser signs in with the password alone.
  await submit(await fillLogin(page, account.email, account.password));
  await expectSecurityPage(page, account.email);
  await page.goto(`${apps.vault.url}/login`);
  assert.equal(pathname(page), '/reauth', 'the second factor is asked for, not skipped');
  await screenshot(page, 'oidc-03-step-up');
  assert.ok(await reauthIfAsked(page, account, { what: 'a two-factor app' }));
  await page.waitForURL(`${apps.vault.url}/callback**`);
  assert.equal(await text(page, 'acr'), 'urn:twostep:2fa');
  assert.equal(await text(page, 'amr'), 'pwd otp mfa');
  await apps.wiki.stop();
  await apps.vault.stop();
});
