// Account life cycle in a real browser: sign up, security page, sign out,
// failed sign-in, sign in, and the guards around them.
//
// Page contract (server-rendered HTML, plain POST forms):
//   /signup   form#signup-form, #email, #password, button "Create account" -> /security
//   /login    form#login-form,  #email, #password, button "Sign in"        -> /security
//   /security h1 "Security", [data-testid=account-email], [data-testid=two-factor-status],
//             button "Sign out" (POST form) -> /login with "You have been signed out"
//   errors    [role=alert] on the same page, #email keeps the typed value

import { beforeEach } from 'node:test';
import assert from 'node:assert/strict';

import {
  alertText,
  expectPath,
  expectSecurityPage,
  fillLogin,
  fillSignUp,
  goto,
  newAccount,
  pathname,
  screenshot,
  signOut,
  story,
  submit,
  twoFactorStatus,
} from './lib/index.mjs';

const s = story();

// Every test starts signed out.
beforeEach(async () => {
  await s.page.context().clearCookies();
});

s.test('visiting /security while signed out redirects to /login', async ({ page }) => {
  await goto(page, '/security');
  await expectPath(page, '/login');
  await page.locator('form#login-form').waitFor();
});

s.test('sign-up with a common password is refused and keeps the e-mail', async ({ page }) => {
  const { email } = newAccount('weak');
  await goto(page, '/signup');
  await submit(await fillSignUp(page, email, 'password1234'));

  assert.equal(pathname(page), '/signup', 'stays on the sign-up page');
  const message = await alertText(page);
  assert.ok(message.length > 0, 'the alert explains why the password was refused');
  assert.equal(await page.locator('#email').inputValue(), email, '#email keeps the typed value');

  // The refused sign-up created no account: the same e-mail cannot sign in.
  await goto(page, '/login');
  await submit(await fillLogin(page, email, 'password1234'));
  assert.equal(pathname(page), '/login');
  assert.match(await alertText(page, 'Incorrect email or password'), /Incorrect email or password/);
});

s.test('sign up, sign out, wrong password, sign in, sign out', async ({ page }) => {
  const { email, password } = newAccount('account');

  // Sign up: signs the new user in and lands on /security.
  await goto(page, '/signup');
  const createAccount = await fillSignUp(page, email, password);
  await screenshot(page, '01-signup');
  await submit(createAccount);
  await expectSecurityPage(page, email);
  assert.match(await twoFactorStatus(page), /Off/, 'two-factor authentication is off for a new account');
  await screenshot(page, '02-security');

  // Sign out: lands on /login with a notice, and /security is closed again.
  await signOut(page);
  await screenshot(page, '03-signed-out');
  await goto(page, '/security');
  await expectPath(page, '/login');

  // Wrong password: stays on the sign-in page, says so, keeps the e-mail.
  await submit(await fillLogin(page, email, `${password}-wrong`));
  assert.equal(pathname(page), '/login', 'stays on the sign-in page');
  assert.match(await alertText(page, 'Incorrect email or password'), /Incorrect email or password/);
  assert.equal(await page.locator('#email').inputValue(), email, '#email keeps the typed value');
  await screenshot(page, '04-login-error');

  // Right password: back on the security page.
  await goto(page, '/login');
  await submit(await fillLogin(page, email, password));
  await expectSecurityPage(page, email);

  await signOut(page);
});
