// "Remember this browser" in a real browser: tick the box on the code page,
// sign out and in again with the password only, forget the browser on the
// Security page, and be asked for a code again. Also checks the security
// log lists what happened.
//
// TOTP codes are single use per 30 s step (enrolment included), so the test
// waits for a new step before each code it types.

import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { launchBrowser, screenshot, startServer, strongPassword, totpNow, uniqueEmail, withDiagnostics } from './harness.mjs';

let server;
let browser;
let page;
const account = { email: uniqueEmail('devices'), password: strongPassword() };
let secret;
let lastStep = -1;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  page = browser.page;
  page.setDefaultTimeout(15_000);
});

after(async () => {
  try {
    await browser?.close();
  } finally {
    await server?.stop();
  }
});

const pathname = () => new URL(page.url()).pathname;

async function goto(path) {
  await page.goto(`${server.url}${path}`);
}

async function submit(control) {
  await Promise.all([page.waitForEvent('load'), control.click()]);
}

/** A code from oathtool for a 30 s step no code was accepted in yet. */
async function freshCode() {
  let step = Math.floor(Date.now() / 30_000);
  if (step <= lastStep) {
    await sleep((lastStep + 1) * 30_000 - Date.now() + 1_000);
    step = Math.floor(Date.now() / 30_000);
  }
  lastStep = step;
  return totpNow(secret);
}

async function signIn() {
  await goto('/login');
  await page.fill('#email', account.email);
  await page.fill('#password', account.password);
  await submit(page.getByRole('button', { name: 'Sign in' }));
}

async function signOut() {
  await submit(page.getByRole('button', { name: 'Sign out' }));
  assert.equal(pathname(), '/login');
}

test('remember this browser, then forget it', { timeout: 150_000 }, async () => {
  await withDiagnostics({ name: 'remember this browser', page, server }, async () => {
    // Sign up and enable an authenticator app.
    await goto('/signup');
    await page.fill('#email', account.email);
    await page.fill('#password', account.password);
    await submit(page.getByRole('button', { name: 'Create account' }));
    assert.equal(pathname(), '/security');
    await submit(page.getByRole('link', { name: 'Set up an authenticator app' }));
    secret = (await page.locator('[data-testid=totp-secret]').innerText()).replace(/\s+/g, '');
    await page.fill('#code', await freshCode());
    await submit(page.getByRole('button', { name: 'Verify and enable' }));
    assert.equal(await page.locator('[data-testid=recovery-code]').count(), 10);
    await goto('/security');
    assert.equal(await page.locator('[data-testid=no-remembered-browsers]').count(), 1);
    await signOut();

    // Tick "Remember this browser" at the code step.
    await signIn();
    assert.equal(pathname(), '/login/verify');
    await page.getByLabel('Remember this browser for 30 days').check();
    await screenshot(page, 'devices-01-remember-checkbox');
    await page.fill('#code', await freshCode());
    await submit(page.getByRole('button', { name: 'Verify' }));
    assert.equal(pathname(), '/security');
    const rows = page.locator('[data-testid=remembered-browser]');
    assert.equal(await rows.count(), 1);
    assert.match(await rows.first().innerText(), /Chrome on Linux/);
    await screenshot(page, 'devices-02-remembered-browser-listed');

    // Password only: no code asked.
    await signOut();
    await signIn();
    assert.equal(pathname(), '/security', 'a remembered browser skips the second factor');
    await screenshot(page, 'devices-03-signed-in-without-code');

    // Forget it on the Security page.
    await submit(page.locator('[data-testid=remembered-browser]').getByRole('button', { name: 'Forget' }));
    assert.match(await page.getByRole('status').innerText(), /asked for a code again/);
    assert.equal(await page.locator('[data-testid=no-remembered-browsers]').count(), 1);
    await screenshot(page, 'devices-04-browser-forgotten');

    // Asked for a code again.
    await signOut();
    await signIn();
    assert.equal(pathname(), '/login/verify', 'a forgotten browser is asked for the code again');
    await screenshot(page, 'devices-05-asked-for-code-again');
    await page.fill('#code', await freshCode());
    await submit(page.getByRole('button', { name: 'Verify' }));
    assert.equal(pathname(), '/security');

    // The security log tells the story.
    await submit(page.getByRole('link', { name: /recent sign-ins/ }));
    assert.equal(pathname(), '/security/log');
    const log = await page.locator('table').innerText();
    for (const event of ['browser remembered', 'browser forgotten', 'sign in succeeded', 'authenticator added']) {
      assert.ok(log.includes(event), `${event} missing from the security log`);
    }
    await screenshot(page, 'devices-06-security-log');
  });
});
