// Organisations and 2FA policy in a real browser (issue 6, seeds 002 and 003).
//
// 1. An owner creates an organisation (the "Require two-factor" button is
//    disabled while the owner lacks 2FA, saying why), turns on 2FA with an
//    authenticator app, invites an address without an account (the same
//    answer as any: no account oracle) and revokes it, invites a member who
//    signed up without 2FA (in a second browser). The member's address is
//    not verified yet, so the Organisations page shows the invitation with a
//    link to verify instead of Accept; the member verifies it with the
//    mailed code (read from the dev outbox) and accepts. The owner then
//    requires two-factor. The member,
//    signing in again, is held on the enrolment landing page, set up an
//    authenticator app, saves the recovery codes and only then reaches the
//    organisation. A third person, verified, invited and accepting, is held on the
//    landing page at their next sign-in and leaves the organisation from it
//    (issue 14: a member may always leave).
// 2. With the operator's mandate upcoming (TWOSTEP_POLICY__REQUIRE_TWO_FACTOR
//    and TWOSTEP_POLICY__ENFORCE_FROM 30 days ahead), a user without 2FA sees
//    a banner on every page and the "Why am I seeing this?" page.
//
// Page contract (server-rendered HTML, plain POST forms):
//   header nav             link "Organisations" -> /orgs; [data-testid=mandate-banner]
//                          with links "Set it up now." and "Why am I seeing this?" (/two-factor/why)
//   /orgs                  [data-testid=invitation] rows ([data-testid=invitation-org],
//                          [data-testid=invitation-role], [data-testid=invitation-from]) with buttons
//                          "Accept" / "Decline" (aria-label "Accept the invitation to <org>"…), or, while
//                          the account's address is unverified, [data-testid=invitations-need-verification]
//                          and per row [data-testid=invitation-unverified] with link "Verify your e-mail
//                          address" (/security#email-verification) instead of the buttons;
//                          [data-testid=org] rows (link to /orgs/<id>, [data-testid=org-role]),
//                          form#create-org-form #org-name, button "Create organisation" -> /orgs/<id>
//   /orgs/<id>             h1 [data-testid=org-name], [data-testid=org-two-factor] "Optional"/"Required",
//                          form#require-form button "Require two-factor" (disabled, with
//                          [data-testid=require-blocked] "These owners must turn on 2FA first: …"),
//                          button "Stop requiring"; [data-testid=member] rows with
//                          [data-testid=member-email], [data-testid=member-role], [data-testid=member-2fa]
//                          "On"/"Off" (owners only); link "Show only members without 2FA"
//                          (?two_factor=false); form#invite-form #member-email #member-role,
//                          button "Invite"; [data-testid=pending-invitation] rows with
//                          [data-testid=pending-email], [data-testid=pending-role] and button "Revoke"
//                          ([data-testid=no-invitations] when none); link "Leave" on one's own row and
//                          "Remove" on others' (owners), each to a page asking first (h1 "Leave <org>?",
//                          button "Leave"); [data-testid=require-effect] says how many lack 2FA
//   org needing 2FA        403 page [data-testid=org-requires-two-factor], link "Set up an authenticator app",
//                          link "leave <org>" (to the page that asks)
//   /security/two-factor/required   [data-testid=enrolment-required], links "Set up an authenticator app"
//                          and (phone enabled) "Use my phone number"; [data-testid=leavable-org] rows
//                          with link "Leave" (aria-label "Leave <org>"); every other page redirects here
//   /two-factor/why        h1 "Why am I seeing this?", [data-testid=mandate-date]
//   /security              form#email-code-form #email_code, button "Verify e-mail address";
//                          [data-testid=email-verified] once verified
//   /dev/outbox            (dev mode) [data-testid=outbox-message] rows with data-channel, data-to,
//                          [data-testid=outbox-text]: the verification mail's code and link
//   /verify-email?account=&code=   button "Confirm my e-mail address"

import { test } from 'node:test';
import assert from 'node:assert/strict';

import {
  enrolTotp,
  expectPath,
  fitsPhone,
  goto,
  newAccount,
  pathname,
  screenshot,
  signInWithPassword,
  signOut,
  signUp,
  story,
  submit,
  text,
  twoFactorStatus,
  uniqueEmail,
  verificationLink,
  verifyEmailByLink,
  withOwnServer,
} from './lib/index.mjs';

// Three people, each in a browser of their own (own profile).
const s = story({ browsers: { owner: {}, member: {}, leaver: {} }, chained: true });

const ownerAccount = newAccount('owner');
const memberAccount = newAccount('member');
const leaverAccount = newAccount('leaver');
const ORG_NAME = 'Acme Rockets';
/** The organisation's path, /orgs/<id>, once created. */
let orgPath;

/** The member rows of an organisation page, as { email, role, twoFactor }. */
async function memberRows(page) {
  const rows = page.locator('[data-testid=member]');
  const out = [];
  for (let i = 0; i < (await rows.count()); i += 1) {
    const row = rows.nth(i);
    const badge = row.locator('[data-testid=member-2fa]');
    out.push({
      email: (await text(row.locator('[data-testid=member-email]'))).replace(/\s+you$/, ''),
      role: await text(row.locator('[data-testid=member-role]')),
      twoFactor: (await badge.count()) > 0 ? await text(badge) : undefined,
    });
  }
  return out;
}

s.test('a member signs up without two-factor authentication', async ({ member }) => {
  await signUp(member, memberAccount);
  assert.equal(await twoFactorStatus(member), 'Off');
  await member.getByRole('link', { name: 'Organisations' }).waitFor();
  await screenshot(member, 'orgs-01-member-signed-up');
});

s.test('an owner creates an organisation: "Require two-factor" waits for their 2FA', async ({ owner }) => {
  await signUp(owner, ownerAccount);
  await submit(owner.getByRole('link', { name: 'Organisations' }));
  await expectPath(owner, '/orgs');
  await owner.getByRole('heading', { level: 1, name: 'Organisations' }).waitFor();
  await owner.locator('[data-testid=no-orgs]').waitFor();
  await screenshot(owner, 'orgs-02-empty-list');

  const form = owner.locator('form#create-org-form');
  await form.locator('#org-name').fill(ORG_NAME);
  await submit(form.getByRole('button', { name: 'Create organisation' }));
  assert.match(pathname(owner), /^\/orgs\/[^/]+$/, 'creating leads to the organisation page');
  orgPath = pathname(owner);
  assert.equal(await text(owner.locator('[data-testid=org-name]')), ORG_NAME);
  assert.equal(await text(owner.locator('[data-testid=org-two-factor]')), 'Optional');
  assert.deepEqual(await memberRows(owner), [{ email: ownerAccount.email, role: 'owner', twoFactor: 'Off' }]);

  // The owner has no 2FA yet: the switch is disabled and says who must turn it on.
  const requireButton = owner.getByRole('button', { name: 'Require two-factor' });
  assert.equal(await requireButton.isDisabled(), true, 'disabled while an owner lacks 2FA');
  const reason = await text(owner.locator('[data-testid=require-blocked]'));
  assert.equal(reason, `These owners must turn on 2FA first: ${ownerAccount.email}`);
  assert.equal(await requireButton.getAttribute('aria-describedby'), 'require-blocked');
  await screenshot(owner, 'orgs-03-require-disabled');

  // The list shows it, with the role.
  await goto(owner, '/orgs');
  assert.equal(await owner.locator('[data-testid=org]').count(), 1);
  assert.equal(await text(owner.locator('[data-testid=org-role]')), 'owner');
});

s.test('the owner turns on 2FA with an authenticator app', async ({ owner }) => {
  await goto(owner, '/security');
  await submit(owner.getByRole('link', { name: 'Set up an authenticator app' }));
  ownerAccount.totp = await enrolTotp(owner, { shot: 'orgs-04-owner' });
});

/** Invite `email` from the organisation page as `role`. */
async function invite(owner, email, role) {
  const form = owner.locator('form#invite-form');
  await form.locator('#member-email').fill(email);
  await form.locator('#member-role').selectOption(role);
  await submit(form.getByRole('button', { name: 'Invite' }));
  await expectPath(owner, orgPath);
}

/** The organisation page's pending invitations, as { email, role }. */
async function pendingRows(page) {
  const rows = page.locator('[data-testid=pending-invitation]');
  const out = [];
  for (let i = 0; i < (await rows.count()); i += 1) {
    const row = rows.nth(i);
    out.push({
      email: await text(row.locator('[data-testid=pending-email]')),
      role: await text(row.locator('[data-testid=pending-role]')),
    });
  }
  return out;
}

s.test('the owner invites the member; an address without an account is answered alike', async ({ owner }) => {
  await goto(owner, orgPath);
  await owner.locator('[data-testid=no-invitations]').waitFor();
  // No account oracle: an unknown address gets an invitation like anyone.
  const nobody = uniqueEmail('nobody');
  await invite(owner, nobody, 'owner');
  assert.match(await text(owner.locator('[role=status]')), /Invitation sent/);
  assert.deepEqual(await pendingRows(owner), [{ email: nobody, role: 'owner' }]);
  await submit(owner.getByRole('button', { name: `Revoke the invitation of ${nobody}` }));
  assert.match(await text(owner.locator('[role=status]')), /Invitation revoked/);
  await owner.locator('[data-testid=no-invitations]').waitFor();

  await invite(owner, memberAccount.email, 'member');
  await screenshot(owner, 'orgs-06-invited');
  assert.match(await text(owner.locator('[role=status]')), /Invitation sent/);
  assert.deepEqual(await pendingRows(owner), [{ email: memberAccount.email, role: 'member' }]);
  // Nobody is a member before accepting.
  assert.deepEqual(await memberRows(owner), [{ email: ownerAccount.email, role: 'owner', twoFactor: 'On' }]);
});

s.test('the member, unverified, is asked to verify the address before answering', async ({ member }) => {
  await goto(member, '/orgs');
  const row = member.locator('[data-testid=invitation]');
  assert.equal(await row.count(), 1);
  assert.equal(await text(row.locator('[data-testid=invitation-org]')), ORG_NAME);
  assert.equal(await text(row.locator('[data-testid=invitation-role]')), 'member');
  assert.equal(await text(row.locator('[data-testid=invitation-from]')), ownerAccount.email);
  // Sign-up did not prove the address: no Accept or Decline until it is verified.
  assert.match(
    await text(member.locator('[data-testid=invitations-need-verification]')),
    /Verify your e-mail address to accept or decline/,
  );
  assert.match(await text(row.locator('[data-testid=invitation-unverified]')), /Verify your e-mail address to answer/);
  assert.equal(await member.getByRole('button', { name: `Accept the invitation to ${ORG_NAME}` }).count(), 0);
  assert.equal(await member.getByRole('button', { name: `Decline the invitation to ${ORG_NAME}` }).count(), 0);
  await screenshot(member, 'orgs-06b-invitation-unverified');

  // The link leads to the Security page's code form; the code comes from the mail.
  const link = await verificationLink(member, memberAccount.email);
  const code = /code=(\d{6})/.exec(link)[1];
  await goto(member, '/orgs');
  await submit(row.getByRole('link', { name: 'Verify your e-mail address' }));
  await expectPath(member, '/security');
  const form = member.locator('form#email-code-form');
  await form.locator('#email_code').fill(code);
  await submit(form.getByRole('button', { name: 'Verify e-mail address' }));
  await member.locator('[data-testid=email-verified]').waitFor();
});

s.test('the member accepts the invitation on the Organisations page', async ({ member }) => {
  await goto(member, '/orgs');
  const row = member.locator('[data-testid=invitation]');
  assert.equal(await row.count(), 1);
  assert.equal(await member.locator('[data-testid=invitations-need-verification]').count(), 0);
  await screenshot(member, 'orgs-06c-invitation');
  await submit(member.getByRole('button', { name: `Accept the invitation to ${ORG_NAME}` }));
  await expectPath(member, '/orgs');
  assert.match(await text(member.locator('[role=status]')), /You joined the organisation/);
  assert.equal(await member.locator('[data-testid=invitation]').count(), 0);
  await member.locator('[data-testid=org] a', { hasText: ORG_NAME }).waitFor();
});

s.test('the owner sees the new member and requires two-factor', async ({ owner }) => {
  await goto(owner, orgPath);
  await owner.locator('[data-testid=no-invitations]').waitFor();
  assert.deepEqual(await memberRows(owner), [
    { email: ownerAccount.email, role: 'owner', twoFactor: 'On' },
    { email: memberAccount.email, role: 'member', twoFactor: 'Off' },
  ]);

  // "Show only members without 2FA".
  await submit(owner.getByRole('link', { name: 'Show only members without 2FA' }));
  assert.equal(new URL(owner.url()).search, '?two_factor=false');
  assert.deepEqual(await memberRows(owner), [{ email: memberAccount.email, role: 'member', twoFactor: 'Off' }]);
  await screenshot(owner, 'orgs-07-members-without-2fa');
  await submit(owner.getByRole('link', { name: /Show all 2 members/ }));

  // Every owner has 2FA now: the switch is enabled, and says beforehand
  // what it will mean for the member without 2FA (issue 20, item 6).
  const requireButton = owner.getByRole('button', { name: 'Require two-factor' });
  assert.equal(await requireButton.isDisabled(), false, 'enabled once every owner has 2FA');
  assert.equal(await owner.locator('[data-testid=require-blocked]').count(), 0);
  assert.match(await text(owner.locator('[data-testid=require-effect]')), /1 member does not have it yet\. We e-mail them once/);
  await screenshot(owner, 'orgs-08-require-enabled');
  await submit(requireButton);
  await expectPath(owner, orgPath);
  assert.match(
    await text(owner.locator('[role=status]')),
    /now required of every member\. 1 member without it must set it up at their next sign-in; they were e-mailed about it\./,
  );
  await fitsPhone(owner, 'orgs-09a-required-notice-phone');
  assert.equal(await text(owner.locator('[data-testid=org-two-factor]')), 'Required');
  await owner.getByRole('button', { name: 'Stop requiring' }).waitFor();
  await screenshot(owner, 'orgs-09-required');
});

s.test('the member is walked through set-up before reaching the organisation', async ({ member }) => {
  // Still signed in from sign-up: the organisation is listed, but closed until 2FA is on.
  await goto(member, '/orgs');
  const link = member.locator('[data-testid=org] a', { hasText: ORG_NAME });
  await submit(link);
  await expectPath(member, orgPath);
  await member.locator('[data-testid=org-requires-two-factor]').waitFor();
  assert.match(await text(member.locator('[data-testid=org-requires-two-factor]')), new RegExp(ORG_NAME));
  await member.getByRole('link', { name: 'Set up an authenticator app' }).waitFor();
  await screenshot(member, 'orgs-10-member-org-closed');

  // A fresh sign-in is an enrolment-only session: held on the landing page.
  await signOut(member);
  await signInWithPassword(member, memberAccount);
  await expectPath(member, '/security/two-factor/required');
  assert.match(
    await text(member.locator('[data-testid=enrolment-required]')),
    /requires two-factor authentication: set it up to continue/,
  );
  await screenshot(member, 'orgs-11-member-enrolment-landing');
  for (const elsewhere of ['/security', '/orgs', orgPath, '/security/log']) {
    await goto(member, elsewhere);
    await expectPath(member, '/security/two-factor/required');
  }

  await submit(member.getByRole('link', { name: 'Set up an authenticator app' }));
  memberAccount.totp = await enrolTotp(member, { shot: 'orgs-12-member' });
  await screenshot(member, 'orgs-14-member-security');

  // Now the organisation opens.
  await submit(member.getByRole('link', { name: 'Organisations' }));
  await expectPath(member, '/orgs');
  await submit(member.locator('[data-testid=org] a', { hasText: ORG_NAME }));
  await expectPath(member, orgPath);
  assert.equal(await text(member.locator('[data-testid=org-name]')), ORG_NAME);
  assert.equal(await text(member.locator('[data-testid=org-two-factor]')), 'Required');
  // Members see who is in it, not the 2FA column, nor the owners' controls.
  assert.deepEqual(await memberRows(member), [
    { email: ownerAccount.email, role: 'owner', twoFactor: undefined },
    { email: memberAccount.email, role: 'member', twoFactor: undefined },
  ]);
  assert.equal(await member.locator('form#invite-form').count(), 0);
  assert.equal(await member.getByRole('button', { name: 'Stop requiring' }).count(), 0);
  await member.getByRole('link', { name: 'Leave' }).waitFor();
  await screenshot(member, 'orgs-15-member-org');
});

s.test('the owner sees every member with 2FA', async ({ owner }) => {
  await goto(owner, `${orgPath}?two_factor=false`);
  await owner.locator('[data-testid=no-members]').waitFor();
  await goto(owner, orgPath);
  assert.deepEqual(await memberRows(owner), [
    { email: ownerAccount.email, role: 'owner', twoFactor: 'On' },
    { email: memberAccount.email, role: 'member', twoFactor: 'On' },
  ]);
  await screenshot(owner, 'orgs-16-everyone-has-2fa');
});

s.test('a member held in an enrolment-only session leaves the organisation', async ({ owner, leaver }) => {
  await signUp(leaver, leaverAccount);
  await verifyEmailByLink(leaver, leaverAccount.email);
  await goto(owner, orgPath);
  await invite(owner, leaverAccount.email, 'member');
  await goto(leaver, '/orgs');
  await submit(leaver.getByRole('button', { name: `Accept the invitation to ${ORG_NAME}` }));
  assert.match(await text(leaver.locator('[role=status]')), /You joined the organisation/);

  // The organisation requires 2FA: the next sign-in is held on the landing page…
  await signOut(leaver);
  await signInWithPassword(leaver, leaverAccount);
  await expectPath(leaver, '/security/two-factor/required');
  const row = leaver.locator('[data-testid=leavable-org]');
  assert.match(await text(row), new RegExp(ORG_NAME));
  await screenshot(leaver, 'orgs-17-leave-from-enrolment');
  // …which offers to leave instead, asking first; nothing else requires
  // 2FA, so the account then works as usual.
  await submit(leaver.getByRole('link', { name: `Leave ${ORG_NAME}` }));
  await leaver.getByRole('heading', { level: 1, name: `Leave ${ORG_NAME}?` }).waitFor();
  await fitsPhone(leaver, 'orgs-17a-leave-asks');
  await submit(leaver.getByRole('button', { name: 'Leave' }));
  await expectPath(leaver, '/orgs');
  assert.match(await text(leaver.locator('[role=status]')), /You left the organisation/);
  await leaver.locator('[data-testid=no-orgs]').waitFor();
  await goto(leaver, '/security');
  await expectPath(leaver, '/security');

  await goto(owner, orgPath);
  assert.deepEqual(await memberRows(owner), [
    { email: ownerAccount.email, role: 'owner', twoFactor: 'On' },
    { email: memberAccount.email, role: 'member', twoFactor: 'On' },
  ]);
});

test('the operator mandate: a banner and "Why am I seeing this?" before the date', { timeout: 120_000 }, async () => {
  const from = new Date(Date.now() + 30 * 24 * 3600 * 1000).toISOString().slice(0, 10);
  const env = { TWOSTEP_POLICY__REQUIRE_TWO_FACTOR: 'true', TWOSTEP_POLICY__ENFORCE_FROM: from };
  await withOwnServer({ name: 'mandate banner', env }, async ({ page }) => {
    await signUp(page, newAccount('mandate'));
    const banner = page.locator('[data-testid=mandate-banner]');
    assert.match(await text(banner), new RegExp(`Two-factor authentication becomes mandatory on ${from}`));
    await screenshot(page, 'orgs-20-mandate-banner');

    // On every page.
    await goto(page, '/orgs');
    await banner.waitFor();

    await submit(banner.getByRole('link', { name: 'Why am I seeing this?' }));
    await expectPath(page, '/two-factor/why');
    await page.getByRole('heading', { level: 1, name: 'Why am I seeing this?' }).waitFor();
    assert.match(await text(page.locator('[data-testid=mandate-date]')), new RegExp(from));
    await page.getByRole('heading', { name: 'What is two-factor authentication?' }).waitFor();
    await page.getByRole('heading', { name: 'How do I set it up?' }).waitFor();
    await screenshot(page, 'orgs-21-why-am-i-seeing-this');

    // Set up: the banner goes away.
    await submit(page.getByRole('link', { name: 'Set it up now' }).last());
    await enrolTotp(page, { shot: 'orgs-22-mandate' });
    assert.equal(await banner.count(), 0, 'no banner once 2FA is on');
  });
});
