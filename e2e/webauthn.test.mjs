// Security keys and passkeys in a real browser (issue 16): Chromium with a
// virtual authenticator (the DevTools protocol's WebAuthn domain, through
// playwright-core's CDP session) stands in for a YubiKey and for the
// device's passkey store.
//
// The story: a person adds a security key as their first factor (the
// recovery codes follow), signs in with the password and the key, creates
// a passkey (re-auth asks for the key), signs in with the passkey alone (the
// button, then the address field's autofill), and finally shuts their own
// address out with the IP allow-list: the passkey is refused like a wrong
// password.
//
// Keys need a host name (an IP address cannot be a relying-party id), so the
// browser opens the server as http://localhost:PORT.
//
// Page contract:
//   /security                 buttons "Add a security key", "Create a passkey";
//                             #keys table rows [data-testid=key] with [data-testid=key-name]
//   /security/keys/new        form#key-new-form #name, button "Continue"; then
//                             form#key-register-form runs the ceremony by itself
//   /login/verify             form#verify-form[data-webauthn-get] starts the key by itself
//   /reauth                   #password and button "Use your security key"
//   /login                    #email autocomplete "username webauthn",
//                             button "Sign in with a passkey"

import { test } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';

import {
  expectPath,
  fillSignUp,
  fitsPhone,
  goto,
  launchBrowser,
  leaveRecoveryCodes,
  newAccount,
  noticeText,
  pathname,
  screenshot,
  signOut,
  signUp,
  story,
  submit,
  text,
  withOwnServer,
  RECOVERY_CODE,
} from './lib/index.mjs';

const WINDOW_SECS = 8;
const s = story({
  env: { TWOSTEP_SESSION__REAUTH_WINDOW_SECS: String(WINDOW_SECS) },
  browsers: {},
  chained: true,
});
const account = newAccount('keys');
let page;
let cdp;
let authenticatorId;
let platformId;

/**
 * A virtual authenticator in the page's browser: a USB key, or with
 * `internal` the device's own passkey store. Presence and user
 * verification are simulated, so every ceremony is answered at once.
 */
async function virtualAuthenticator(session, transport = 'usb') {
  const { authenticatorId: id } = await session.send('WebAuthn.addVirtualAuthenticator', {
    options: {
      protocol: 'ctap2',
      transport,
      hasResidentKey: true,
      hasUserVerification: true,
      isUserVerified: true,
      automaticPresenceSimulation: true,
    },
  });
  return id;
}

/** The virtual authenticator's credentials, as Chromium holds them. */
async function credentials() {
  return (await cdp.send('WebAuthn.getCredentials', { authenticatorId })).credentials;
}

async function keyNames() {
  return page.locator('[data-testid=key-name]').allInnerTexts();
}

/** From the Security page: name a key of `kind` and let the browser make it. */
async function addKey(button, name, { beforeCeremony } = {}) {
  await goto(page, '/security');
  await submit(page.getByRole('link', { name: button }));
  let reauth = false;
  if (pathname(page) === '/reauth') {
    reauth = true;
    const form = page.locator('form#reauth-form');
    await form.locator('#password').fill(account.password);
    const key = form.getByRole('button', { name: 'Use your security key' });
    // With a key, it answers the re-auth too (presence is simulated).
    if (await key.count()) {
      await screenshot(page, 'keys-reauth');
      await submit(key);
    } else {
      await submit(form.getByRole('button', { name: 'Confirm' }));
    }
  }
  await expectPath(page, '/security/keys/new');
  if (beforeCeremony) await beforeCeremony();
  const form = page.locator('form#key-new-form');
  await form.locator('#name').fill(name);
  // The next page starts the ceremony at once and posts its answer.
  await Promise.all([
    page.waitForURL((url) => url.pathname !== '/security/keys/new'),
    form.getByRole('button', { name: 'Continue' }).click(),
  ]);
  await page.waitForLoadState('load');
  return reauth;
}

s.test('a security key is the first factor, with recovery codes', async (st) => {
  const localhost = st.server.url.replace('://127.0.0.1:', '://localhost:');
  page = (await st.openBrowser({ baseURL: localhost })).page;
  cdp = await page.context().newCDPSession(page);
  await cdp.send('WebAuthn.enable');
  authenticatorId = await virtualAuthenticator(cdp);

  await signUp(page, account);
  await goto(page, '/security/keys/new?kind=security_key');
  await page.getByRole('heading', { level: 1, name: 'Add a security key' }).waitFor();
  await screenshot(page, 'keys-01-name');
  await fitsPhone(page, 'keys-01a-name-phone');

  await addKey('Add a security key', 'YubiKey 5C');
  assert.equal(pathname(page), '/security/keys/finish', 'the recovery codes answer the key that turned 2FA on');
  await page.getByRole('heading', { level: 1, name: 'Two-factor authentication is on' }).waitFor();
  const codes = (await page.locator('[data-testid=recovery-code]').allInnerTexts()).map((c) => c.trim());
  assert.equal(codes.length, 10);
  for (const c of codes) assert.match(c, RECOVERY_CODE);
  await leaveRecoveryCodes(page);

  assert.deepEqual(await keyNames(), ['YubiKey 5C']);
  const row = page.locator('[data-testid=key]').first();
  assert.match(await text(row), /Security key/);
  assert.match(await text(row), /device-bound/, "a virtual key's credential is not backed up");
  assert.equal((await credentials()).length, 1, 'the browser made one credential');
  await page.locator('#keys').scrollIntoViewIfNeeded();
  await screenshot(page, 'keys-02-listed');
  await fitsPhone(page, 'keys-02a-listed-phone');
});

s.test('sign in with the password and the key', async () => {
  await signOut(page);
  await goto(page, '/login');
  await page.locator('#email').fill(account.email);
  await page.locator('#password').fill(account.password);
  // The key page starts the ceremony by itself and posts the answer.
  await Promise.all([
    page.waitForURL((url) => url.pathname === '/security'),
    page.getByRole('button', { name: 'Sign in', exact: true }).click(),
  ]);
  await expectPath(page, '/security');
  const used = await page.locator('[data-testid=key] td[data-label="Last used"]').first().innerText();
  assert.notEqual(used.trim(), 'never', 'the key is marked used');
});

s.test('the key page, while the key is away, offers the other ways', async () => {
  await signOut(page);
  await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: false });
  await goto(page, '/login');
  await page.locator('#email').fill(account.email);
  await page.locator('#password').fill(account.password);
  await submit(page.getByRole('button', { name: 'Sign in', exact: true }));
  await expectPath(page, '/login/verify');
  await page.getByText('Waiting for your security key').waitFor();
  await screenshot(page, 'keys-03-prompt');
  await fitsPhone(page, 'keys-03a-prompt-phone');
  assert.ok(await page.getByRole('link', { name: /recovery code/i }).isVisible(), 'a recovery code is offered');
  // The key is back: the page again, and it answers.
  await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: true });
  await Promise.all([page.waitForURL((url) => url.pathname === '/security'), page.reload()]);
});

s.test('create a passkey; re-auth asks for the password and the key', async () => {
  // Past the re-auth window, the sign-in's proof is too old.
  await sleep((WINDOW_SECS + 1) * 1000);
  // The passkey lives on the laptop itself, not on the YubiKey (which
  // holds the account's other credential and would refuse a second one).
  const onTheLaptop = async () => {
    await cdp.send('WebAuthn.setAutomaticPresenceSimulation', { authenticatorId, enabled: false });
    platformId = await virtualAuthenticator(cdp, 'internal');
  };
  assert.ok(await addKey('Create a passkey', 'This laptop', { beforeCeremony: onTheLaptop }), 're-auth was asked');
  await expectPath(page, '/security');
  assert.match(await noticeText(page), /Passkey created/);
  assert.deepEqual((await keyNames()).sort(), ['This laptop', 'YubiKey 5C']);
  const kinds = await page.locator('[data-testid=key]').allInnerTexts();
  assert.ok(kinds.some((k) => /Passkey/.test(k)), kinds.join(' | '));
  const onLaptop = (await cdp.send('WebAuthn.getCredentials', { authenticatorId: platformId })).credentials;
  assert.equal(onLaptop.length, 1, 'the laptop made the passkey');
  assert.ok(onLaptop[0].isResidentCredential, 'the passkey is discoverable (a resident credential)');
});

s.test('sign in with the passkey alone: the autofill', async () => {
  // The sign-in page asks for passkeys in the address field's autofill as
  // it loads; Chromium's virtual authenticator answers that request as a
  // person picking the passkey from the list would. So signing out lands on
  // a sign-in page that signs straight back in, with no password typed.
  const nav = page.getByRole('navigation', { name: 'Account' });
  await Promise.all([
    page.waitForURL((url) => url.pathname === '/login'),
    nav.getByRole('button', { name: 'Sign out' }).click(),
  ]);
  await page.waitForURL((url) => url.pathname === '/security');
  assert.equal(await text(page.locator('[data-testid=account-email]')), account.email);
});

s.test('sign in with the passkey alone: the button', async () => {
  // A browser without passkey autofill: the button is the way.
  await page.addInitScript(() => {
    PublicKeyCredential.isConditionalMediationAvailable = async () => false;
  });
  await signOut(page);
  assert.equal(await page.locator('#email').getAttribute('autocomplete'), 'username webauthn');
  await screenshot(page, 'keys-04-login');
  await fitsPhone(page, 'keys-04a-login-phone');
  await Promise.all([
    page.waitForURL((url) => url.pathname === '/security'),
    page.getByRole('button', { name: 'Sign in with a passkey' }).click(),
  ]);
  assert.equal(await text(page.locator('[data-testid=account-email]')), account.email);
});

s.test('the IP allow-list still applies to a passkey', async () => {
  await goto(page, '/security/ip-allowlist');
  const form = page.locator('form#allowlist-form');
  await form.locator('#entries').fill('198.51.100.0/24 elsewhere');
  await submit(form.getByRole('button', { name: 'Save allow-list' }));
  const confirm = form.locator('[data-testid=confirm-lockout]');
  if (await confirm.count()) {
    await confirm.check();
    await submit(form.getByRole('button', { name: 'Save allow-list' }));
  }
  await goto(page, '/login');
  assert.equal(pathname(page), '/login', 'shut out: signed out');
  await submit(page.getByRole('button', { name: 'Sign in with a passkey' }));
  assert.equal(pathname(page), '/login/passkey');
  const alert = await text(page.locator('[role=alert]'));
  assert.match(alert, /passkey wasn't accepted/, alert);
  await screenshot(page, 'keys-05-refused');
});

test('the operator requires 2FA: a passkey set up from the enrolment page meets it', { timeout: 120_000 }, async () => {
  const env = { TWOSTEP_POLICY__REQUIRE_TWO_FACTOR: 'true' };
  await withOwnServer({ name: 'keys under the mandate', env, browser: false }, async ({ server }) => {
    const browser = await launchBrowser({ baseURL: server.url.replace('://127.0.0.1:', '://localhost:') });
    try {
      const p = browser.page;
      const session = await p.context().newCDPSession(p);
      await session.send('WebAuthn.enable');
      await virtualAuthenticator(session, 'internal');
      const who = newAccount('keys-mandate');
      await goto(p, '/signup');
      await submit(await fillSignUp(p, who.email, who.password));
      await expectPath(p, '/security/two-factor/required');
      await submit(p.getByRole('link', { name: 'Create a passkey' }));
      await expectPath(p, '/security/keys/new');
      await Promise.all([
        p.waitForURL((url) => url.pathname === '/security/keys/finish'),
        p.getByRole('button', { name: 'Continue' }).click(),
      ]);
      await p.getByRole('heading', { level: 1, name: 'Two-factor authentication is on' }).waitFor();
      await leaveRecoveryCodes(p);
      assert.deepEqual(await p.locator('[data-testid=key-name]').allInnerTexts(), ['Passkey']);
    } finally {
      await browser.close();
    }
  });
});
