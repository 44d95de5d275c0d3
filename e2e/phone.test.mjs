// Codes by text message and e-mail in a real browser (issue 5): add a phone
// number (its code arrives at a stand-in Twilio API run by this test), sign
// in with a texted code, and confirm the e-mail address through the mailed
// link read from the dev outbox.
//
// Page contract (server-rendered HTML, plain POST forms):
//   /security              [data-testid=phone-number] "No phone number" or the masked number,
//                          link "Add phone number" / "Change number", link "Remove";
//                          [data-testid=email-unverified] with button "Resend verification e-mail"
//                          and form#email-code-form, or [data-testid=email-verified]
//   /security/phone        form#phone-form: select #country (default US), #number, radios
//                          "Text me" / "Call me", button "Send code"; [data-testid=sms-risk]
//   code page              [data-testid=sent-to] "… +1 ••• ••• ••23 …", #code, button "Verify",
//                          resend button "Send a new code" (disabled while it counts down;
//                          too early -> 429 and "Wait N seconds")
//   /login/verify          for a phone-only account: button "Text me a code", button "Call me",
//                          link "Use a recovery code"; after sending, [data-testid=sent-to]
//   /dev/outbox            (dev mode only) [data-testid=outbox-message] rows, newest first,
//                          data-channel, data-to, [data-testid=outbox-text]
//   /verify-email?account=&code=   button "Confirm my e-mail address" (POST; a GET changes nothing)
//
// The tests below are steps of one story and share one account; each fails
// at once (rather than misleadingly) when an earlier one did not finish.

import http from 'node:http';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, test } from 'node:test';
import assert from 'node:assert/strict';

import {
  alertText,
  expectPath,
  expectSecurityPage,
  fillLogin,
  goto,
  leaveRecoveryCodes,
  newAccount,
  outboxMessages,
  screenshot,
  signOut,
  signUp,
  story,
  submit,
  text,
  twoFactorStatus,
  verificationLinks,
  withOwnServer,
} from './lib/index.mjs';

const TWILIO_SID = 'AC123';
const TWILIO_TOKEN = 'secret';
const TWILIO_FROM = '+14155550100';
const PHONE_TYPED = '(415) 555-0123';
const PHONE_E164 = '+14155550123';
const PHONE_MASKED = '+1 ••• ••• ••23';
const MESSAGE_WAIT_MS = 15_000;

/**
 * A stand-in for Twilio's REST API: records every request and answers 201
 * with a message sid, as Twilio does.
 */
async function startTwilio() {
  /** @type {{ method: string, path: string, authorization: string, form: Record<string, string> }[]} */
  const requests = [];
  const srv = http.createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => {
      body += chunk;
    });
    req.on('end', () => {
      requests.push({
        method: req.method ?? '',
        path: req.url ?? '',
        authorization: req.headers.authorization ?? '',
        form: Object.fromEntries(new URLSearchParams(body)),
      });
      res.writeHead(201, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ sid: `SM${randomBytes(16).toString('hex')}`, status: 'queued' }));
    });
  });
  await new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', resolve);
  });
  const { port } = /** @type {import('node:net').AddressInfo} */ (srv.address());
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    close: () => new Promise((resolve) => srv.close(() => resolve(undefined))),
  };
}

/** @type {Awaited<ReturnType<typeof startTwilio>>} */
let twilio;

const s = story({
  // The stand-in Twilio starts first: the server is told its address.
  env: async () => {
    twilio = await startTwilio();
    return {
      TWOSTEP_TWILIO_ACCOUNT_SID: TWILIO_SID,
      TWOSTEP_TWILIO_AUTH_TOKEN: TWILIO_TOKEN,
      TWOSTEP_TWILIO_FROM: TWILIO_FROM,
      TWOSTEP_TWILIO_BASE_URL: twilio.url,
      TWOSTEP_PHONE_COUNTRIES: '*',
    };
  },
  chained: true,
});

// After the story's own hook has stopped the server.
after(async () => {
  await twilio?.close();
});

const account = newAccount('phone');

/** The next text message the stand-in Twilio receives after `seen` requests; returns its 6-digit code. */
async function nextSms(seen) {
  const deadline = Date.now() + MESSAGE_WAIT_MS;
  while (twilio.requests.length <= seen) {
    if (Date.now() > deadline) {
      throw new Error(`no request reached the stand-in Twilio within ${MESSAGE_WAIT_MS / 1000} s`);
    }
    await sleep(100);
  }
  assert.equal(twilio.requests.length, seen + 1, 'exactly one message was sent');
  const sms = twilio.requests[seen];
  assert.equal(sms.method, 'POST');
  assert.equal(sms.path, `/2010-04-01/Accounts/${TWILIO_SID}/Messages.json`);
  const basic = `Basic ${Buffer.from(`${TWILIO_SID}:${TWILIO_TOKEN}`).toString('base64')}`;
  assert.equal(sms.authorization, basic, 'HTTP basic auth with the account sid and token');
  assert.equal(sms.form.To, PHONE_E164, 'sent to the number in E.164');
  assert.equal(sms.form.From, TWILIO_FROM);
  const match = /\b(\d{6})\b/.exec(sms.form.Body ?? '');
  assert.ok(match, `the SMS body holds a 6-digit code: ${JSON.stringify(sms.form.Body)}`);
  return match[1];
}

/** Any 6-digit code but `right`. */
const wrongCode = (right) => (right === '000000' ? '111111' : '000000');

s.test('add a phone number: the texted code turns two-factor authentication on', async ({ page }) => {
  // Sign up: 2FA off, no phone yet, the e-mail address unverified.
  await signUp(page, account);
  assert.equal(await twoFactorStatus(page), 'Off');
  assert.equal(await text(page.locator('[data-testid=phone-number]')), 'No phone number');
  assert.match(await text(page.locator('[data-testid=email-unverified]')), /Your e-mail address is not verified/);
  await screenshot(page, 'phone-01-security-no-phone');

  // The set-up page: countries with calling codes, US first choice, the SIM-swap warning.
  await submit(page.getByRole('link', { name: 'Add phone number' }));
  await expectPath(page, '/security/phone');
  await page.getByRole('heading', { level: 1, name: 'Add a phone number' }).waitFor();
  assert.match(await text(page.locator('[data-testid=sms-risk]')), /can be intercepted \(SIM swapping\)/);
  const country = page.getByLabel('Country');
  assert.equal(await country.inputValue(), 'US', 'the United States are chosen by default');
  const options = await country.locator('option').allInnerTexts();
  assert.ok(options.length >= 30, `at least 30 countries, got ${options.length}`);
  for (const [name, code] of [['United Kingdom', '+44'], ['France', '+33'], ['Germany', '+49']]) {
    assert.ok(options.includes(`${name} (${code})`), `${name} (${code}) is offered`);
  }
  assert.ok(await page.getByLabel('Text me').isChecked(), '"Text me" is the default');

  // An impossible number is refused inline, keeping what was typed.
  await country.selectOption('US');
  await page.getByLabel('Phone number').fill('123');
  assert.equal(await submit(page.getByRole('button', { name: 'Send code' })), 400);
  assert.match(await alertText(page), /not a valid phone number/i);
  assert.equal(await page.getByLabel('Phone number').inputValue(), '123');
  assert.equal(twilio.requests.length, 0, 'nothing was sent for an invalid number');
  await screenshot(page, 'phone-02-invalid-number');

  await page.getByLabel('Phone number').fill(PHONE_TYPED);
  await screenshot(page, 'phone-03-setup');
  await submit(page.getByRole('button', { name: 'Send code' }));

  // The code page: where the code went, and a resend button that counts down.
  await page.getByRole('heading', { level: 1, name: 'Verify your phone number' }).waitFor();
  assert.ok((await text(page.locator('[data-testid=sent-to]'))).includes(PHONE_MASKED), 'the masked number is shown');
  const code = await nextSms(0);
  const resend = page.getByRole('button', { name: 'Send a new code' });
  assert.ok(await resend.isDisabled(), 'the resend button waits out the cooldown');
  await page.getByText(/You can ask for a new one in \d+ seconds?/).waitFor();
  await screenshot(page, 'phone-04-code-sent');

  // Asking again too early (the script's countdown bypassed) is answered 429 with the wait.
  await resend.evaluate((b) => {
    b.disabled = false;
  });
  assert.equal(await submit(resend), 429);
  assert.match(await alertText(page, /Wait/), /Wait \d+ seconds/);
  assert.ok((await text(page.locator('[data-testid=sent-to]'))).includes(PHONE_MASKED), 'still says where the code went');
  assert.ok(await page.getByRole('button', { name: 'Send a new code' }).isDisabled(), 'the countdown starts again');
  await sleep(1_000);
  assert.equal(twilio.requests.length, 1, 'the throttled resend sent nothing');
  await screenshot(page, 'phone-05-resend-too-early');

  // A wrong code is refused inline; the right one turns 2FA on and shows recovery codes.
  await page.getByLabel('Enter the 6-digit code').fill(wrongCode(code));
  assert.equal(await submit(page.getByRole('button', { name: 'Verify', exact: true })), 401);
  assert.match(await alertText(page), /didn't work/);
  await page.getByLabel('Enter the 6-digit code').fill(code);
  await submit(page.getByRole('button', { name: 'Verify', exact: true }));
  await page.getByRole('heading', { level: 1, name: 'Two-factor authentication is on' }).waitFor();
  const recoveryCodes = await page.locator('[data-testid=recovery-code]').allInnerTexts();
  assert.equal(recoveryCodes.length, 10, 'ten recovery codes are shown');
  await screenshot(page, 'phone-06-recovery-codes');

  await leaveRecoveryCodes(page);
  assert.equal(await text(page.locator('[data-testid=phone-number]')), PHONE_MASKED);
  assert.equal(await page.locator('[data-testid=authenticator]').count(), 0, 'the phone is not listed as an app');
  await page.getByRole('link', { name: 'Change number' }).waitFor();
  await screenshot(page, 'phone-07-security-with-phone');
});

s.test('sign in with a code by text message', async ({ page }) => {
  await signOut(page);

  await submit(await fillLogin(page, account.email, account.password));
  await expectPath(page, '/login/verify');
  await page.getByRole('heading', { level: 1, name: 'Two-factor authentication' }).waitFor();

  // Exactly the account's methods: the phone's two and recovery codes; no app.
  await page.getByRole('button', { name: 'Call me' }).waitFor();
  await page.getByRole('link', { name: 'Use a recovery code' }).waitFor();
  assert.equal(await page.getByText('Use your authenticator app').count(), 0, 'no app is offered');
  assert.equal(await page.getByText('E-mail me a code').count(), 0, 'an unverified address is not offered');
  await screenshot(page, 'phone-08-login-choose');

  const seen = twilio.requests.length;
  const textMe = page.getByRole('button', { name: 'Text me a code' });
  if ((await submit(textMe)) === 429) {
    // The set-up code went to the same number moments ago: the page says how
    // long to wait, and its countdown enables the button again.
    assert.match(await alertText(page, /Wait/), /Wait \d+ seconds/);
    assert.ok(await textMe.isDisabled(), 'the button waits out the cooldown');
    await screenshot(page, 'phone-09-login-wait');
    await page.waitForFunction(
      () => !document.querySelector('#send-form button[data-countdown]')?.disabled,
      null,
      { timeout: 40_000, polling: 250 },
    );
    assert.equal(twilio.requests.length, seen, 'nothing was sent while throttled');
    assert.equal(await submit(textMe), 200);
  }
  assert.ok((await text(page.locator('[data-testid=sent-to]'))).includes(PHONE_MASKED), 'the masked number is shown');
  const code = await nextSms(seen);
  assert.ok(await page.getByRole('button', { name: 'Send a new code' }).isDisabled(), 'resend counts down');
  await screenshot(page, 'phone-10-login-code-sent');

  await page.getByLabel('Enter the 6-digit code we texted you').fill(code);
  await page.getByLabel('Remember this browser for 30 days').waitFor();
  await submit(page.getByRole('button', { name: 'Verify', exact: true }));
  await expectSecurityPage(page, account.email);
  await screenshot(page, 'phone-11-signed-in-by-sms');
});

s.test('confirm the e-mail address with the mailed link, on a device without a session', async ({ page }) => {
  // A fresh mail on request; the latest link is the one that works.
  await goto(page, '/security');
  const resend = () => submit(page.getByRole('button', { name: 'Resend verification e-mail' }));
  if ((await resend()) === 429) {
    // The sign-up mail went out less than the cooldown ago: wait as told.
    const wait = Number(/Wait (\d+) seconds?/.exec(await alertText(page, /Wait/))?.[1] ?? '30');
    await sleep((wait + 1) * 1000);
    await goto(page, '/security');
    await resend();
  }
  await expectSecurityPage(page);
  assert.match(await text(page.locator('[role=status]')), /We sent you a verification e-mail/);

  // Straight away again: refused with the wait (429).
  assert.equal(await resend(), 429);
  assert.match(await alertText(page, /Wait/), /Wait \d+ seconds/);
  assert.ok(await page.getByRole('button', { name: 'Resend verification e-mail' }).isDisabled());
  await screenshot(page, 'phone-12-email-resend-too-early');

  // Dev mode: the outbox lists the mails (and the texts sent through Twilio).
  let links = [];
  const deadline = Date.now() + MESSAGE_WAIT_MS;
  while (links.length < 2 && Date.now() < deadline) {
    links = await verificationLinks(page, account.email);
    if (links.length < 2) await sleep(250);
  }
  assert.equal(links.length, 2, 'the sign-up mail and the resent one are in the outbox');
  const sms = (await outboxMessages(page)).filter((m) => m.channel === 'sms');
  assert.equal(sms.length, 2, 'the two texts are listed too');
  assert.ok(sms.every((m) => m.to === PHONE_E164));
  await screenshot(page, 'phone-13-dev-outbox');
  const [latest, older] = links;
  const path = latest.slice(latest.indexOf('/verify-email'));

  // Another device: a browser with no session opens the link.
  const other = await s.openBrowser();
  try {
    const p = other.page;
    await goto(p, path);
    await p.getByRole('heading', { level: 1, name: 'Confirm your e-mail address' }).waitFor();
    await screenshot(p, 'phone-14-verify-email-link');

    // Opening the link alone changed nothing (mail scanners fetch links).
    await goto(page, '/security');
    await page.locator('[data-testid=email-unverified]').waitFor();

    // The older link's code was replaced by the newer one.
    await goto(p, older.slice(older.indexOf('/verify-email')));
    assert.equal(await submit(p.getByRole('button', { name: 'Confirm my e-mail address' })), 400);
    await p.getByRole('heading', { level: 1, name: 'This link does not work' }).waitFor();

    await goto(p, path);
    await submit(p.getByRole('button', { name: 'Confirm my e-mail address' }));
    await p.getByRole('heading', { level: 1, name: 'E-mail address confirmed' }).waitFor();
    await screenshot(p, 'phone-15-email-confirmed');
  } finally {
    await other.close();
  }

  await goto(page, '/security');
  await page.locator('[data-testid=email-verified]').waitFor();
  assert.equal(await page.locator('[data-testid=email-unverified]').count(), 0);
  await screenshot(page, 'phone-16-security-email-verified');
});

test('the dev outbox does not exist outside dev mode', { timeout: 120_000 }, async () => {
  const env = { TWOSTEP_DEV_MODE: 'false' };
  await withOwnServer({ name: 'no dev outbox', env, browser: false }, async ({ server }) => {
    const res = await fetch(`${server.url}/dev/outbox`);
    assert.equal(res.status, 404);
    const unknown = await fetch(`${server.url}/dev/nothing-here`);
    assert.equal(unknown.status, 404);
    assert.equal(await res.text(), await unknown.text(), 'answered like any unknown path');
  });
});
