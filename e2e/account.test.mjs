// Account life cycle in a real browser: sign up, security page, sign out,
// failed sign-in, sign in, and the guards around them.
//
// Page contract (server-rendered HTML, plain POST forms):
//   /signup   form#signup-form, #email, #password, button "Create account" -> /security
//   /login    form#login-form,  #email, #password, button "Sign in"        -> /security
//   /security h1 "Security", [data-testid=account-email], [data-testid=two-factor-status],
//             button "Sign out" (POST form) -> /login with "You have been signed out"
//   errors    [role=alert] on the same page, #email keeps the typed value

import { after, before, beforeEach, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  launchBrowser,
  screenshot,
  startServer,
  strongPassword,
  uniqueEmail,
  withDiagnostics,
} from './harness.mjs';

const TEST_TIMEOUT_MS = 120_000;

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof launchBrowser>>} */
let browser;
/** @type {import('playwright-core').Page} */
let page;

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

// Every test starts signed out.
beforeEach(async () => {
  await browser.context.clearCookies();
});

function e2e(name, fn) {
  test(name, { timeout: TEST_TIMEOUT_MS }, () => withDiagnostics({ name, page, server }, fn));
}

const pathname = () => new URL(page.url()).pathname;

async function goto(path) {
  const response = await page.goto(`${server.url}${path}`);
  assert.ok(response, `no response for GET ${path}`);
  return response;
}

/** Click a submit button and wait for the page that the form post leads to. */
async function submit(button) {
  await Promise.all([page.waitForEvent('load'), button.click()]);
}

async function expectPath(expected) {
  await page.waitForURL((url) => url.pathname === expected);
  assert.equal(pathname(), expected);
}

async function fillSignup(email, password) {
  const form = page.locator('form#signup-form');
  await form.waitFor();
  await form.locator('#email').fill(email);
  await form.locator('#password').fill(password);
  return form.getByRole('button', { name: 'Create account' });
}

async function fillLogin(email, password) {
  const form = page.locator('form#login-form');
  await form.waitFor();
  await form.locator('#email').fill(email);
  await form.locator('#password').fill(password);
  return form.getByRole('button', { name: 'Sign in' });
}

async function signOut() {
  await submit(page.getByRole('button', { name: 'Sign out' }));
  await expectPath('/login');
  await page.getByText('You have been signed out').waitFor();
}

/** Text of the first visible, non-empty [role=alert] (optionally the one matching `text`). */
async function alertText(text = /\S/) {
  const alert = page.locator('[role=alert]').filter({ hasText: text }).first();
  await alert.waitFor();
  return (await alert.innerText()).trim();
}

async function expectSecurityPage(email) {
  await expectPath('/security');
  await page.getByRole('heading', { level: 1, name: 'Security' }).waitFor();
  const shownEmail = (await page.locator('[data-testid=account-email]').innerText()).trim();
  assert.equal(shownEmail, email, 'security page shows the account e-mail');
}

e2e('visiting /security while signed out redirects to /login', async () => {
  await goto('/security');
  await expectPath('/login');
  await page.locator('form#login-form').waitFor();
});

e2e('sign-up with a common password is refused and keeps the e-mail', async () => {
  const email = uniqueEmail('weak');
  await goto('/signup');
  await submit(await fillSignup(email, 'password1234'));

  assert.equal(pathname(), '/signup', 'stays on the sign-up page');
  const message = await alertText();
  assert.ok(message.length > 0, 'the alert explains why the password was refused');
  assert.equal(await page.locator('#email').inputValue(), email, '#email keeps the typed value');

  // The refused sign-up created no account: the same e-mail cannot sign in.
  await goto('/login');
  await submit(await fillLogin(email, 'password1234'));
  assert.equal(pathname(), '/login');
  assert.match(await alertText('Incorrect email or password'), /Incorrect email or password/);
});

e2e('sign up, sign out, wrong password, sign in, sign out', async () => {
  const email = uniqueEmail('account');
  const password = strongPassword();

  // Sign up: signs the new user in and lands on /security.
  await goto('/signup');
  const createAccount = await fillSignup(email, password);
  await screenshot(page, '01-signup');
  await submit(createAccount);
  await expectSecurityPage(email);
  const status = (await page.locator('[data-testid=two-factor-status]').innerText()).trim();
  assert.match(status, /Off/, 'two-factor authentication is off for a new account');
  await screenshot(page, '02-security');

  // Sign out: lands on /login with a notice, and /security is closed again.
  await signOut();
  await screenshot(page, '03-signed-out');
  await goto('/security');
  await expectPath('/login');

  // Wrong password: stays on the sign-in page, says so, keeps the e-mail.
  await submit(await fillLogin(email, `${password}-wrong`));
  assert.equal(pathname(), '/login', 'stays on the sign-in page');
  assert.match(await alertText('Incorrect email or password'), /Incorrect email or password/);
  assert.equal(await page.locator('#email').inputValue(), email, '#email keeps the typed value');
  await screenshot(page, '04-login-error');

  // Right password: back on the security page.
  await goto('/login');
  await submit(await fillLogin(email, password));
  await expectSecurityPage(email);

  await signOut();
});
