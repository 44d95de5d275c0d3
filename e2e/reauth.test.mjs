// A sensitive action finishes after "Confirm it's you" (issue 20, item 2):
// with a re-auth window of 8 s (`session.reauth_window_secs`), "Sign out
// everywhere else" on the Security page is interrupted by the re-auth page;
// after the password the person is back on the question, one click from
// done, and the other browser is signed out. Nothing is silently dropped.
//
// Page contract:
//   /security                          button "Sign out everywhere else" (a POST form)
//   /reauth                            "Confirm it's you", #password, button "Confirm"
//   /security/sessions/revoke-others   heading and button "Sign out everywhere else", link "Cancel"
//   /security?notice=others_revoked    "All your other sessions were signed out."

import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';

import {
  expectPath,
  fitsPhone,
  goto,
  newAccount,
  noticeText,
  pathname,
  reauthIfAsked,
  screenshot,
  signInWithPassword,
  signUp,
  story,
  submit,
} from './lib/index.mjs';

const WINDOW_SECS = 8;

const s = story({
  env: { TWOSTEP_SESSION__REAUTH_WINDOW_SECS: String(WINDOW_SECS) },
  browsers: { page: {}, other: {} },
  chained: true,
});

const account = newAccount('reauth');

s.test('signed in from two browsers', async ({ page, other }) => {
  await signUp(page, account);
  await signInWithPassword(other, account);
  await expectPath(other, '/security');
});

s.test('sign out everywhere else, confirm it is you, and the action is one click away', async ({ page, other }) => {
  // Past the window, the password proven at sign-up is too old.
  await sleep((WINDOW_SECS + 1) * 1000);
  await goto(page, '/security');
  await submit(page.getByRole('button', { name: 'Sign out everywhere else' }));
  assert.equal(pathname(page), '/reauth', 'a stale proof asks first');
  assert.ok(await reauthIfAsked(page, account, { what: 'signing out everywhere else', shot: 'reauth-01-asked' }));

  await expectPath(page, '/security/sessions/revoke-others');
  await page.getByRole('heading', { level: 1, name: 'Sign out everywhere else' }).waitFor();
  await screenshot(page, 'reauth-02-back-at-the-question');
  await fitsPhone(page, 'reauth-02a-back-at-the-question-phone');
  await submit(page.getByRole('button', { name: 'Sign out everywhere else' }));
  await expectPath(page, '/security');
  assert.match(await noticeText(page), /All your other sessions were signed out/);

  // The other browser's session is gone.
  await goto(other, '/security');
  assert.equal(pathname(other), '/login', 'the other browser must sign in again');
});
