// Push approval in real browsers (issue 9): two Chromium contexts, one the
// user's computer, the other their phone. The phone pairs the companion
// page from the Security page's link, then approves a sign-in by typing the
// number the computer shows, and the computer's sign-in page carries on by
// itself. A denial ("This wasn't me"), a wrong number and a fourth push in a
// row (fatigue) are refused clearly.
//
// Page contract (server-rendered HTML and the companion page's script):
//   /security              section "Companion devices (push)": [data-testid=push-device] rows
//                          ([data-testid=push-device-name], "Woken when asked": by its browser / only while open, links Rename/Remove),
//                          link "Add a companion device" -> /security/push/new (re-auth first)
//   /security/push/new     GET: only a button "Show the pairing code" (SEC-55); its POST:
//                          [data-testid=push-qr] inline <svg> of the link,
//                          [data-testid=pairing-link] (an input) <public url>/companion#pair=<code>,
//                          [data-testid=pairing-expiry], link "Done"
//   /companion             pairing: "Name this device" + button "Add device"; paired:
//                          [data-testid=companion-paired] "Approves sign-ins for EMAIL as NAME";
//                          each request [data-testid=push-request]: "Type the number shown on the
//                          sign-in page", buttons "Approve", "Deny", "This wasn't me";
//                          outcomes [data-testid=push-outcome]; button "Forget this device"
//   /login/verify          button "Approve on my phone (push)" (POST /login/challenge, method push)
//   push page              "Approve on your phone": [data-testid=push-number] two digits,
//                          [data-testid=push-sent-to], countdown, form#push-verify-form
//                          ("I approved it — continue"), "Send another push",
//                          "Use another method"; [data-testid=push-outcome] on denial or expiry
//
// The tests are steps of one story and share one account; each fails at
// once (rather than misleadingly) when an earlier one did not finish.

import assert from 'node:assert/strict';

import {
  decodeQr,
  enrolTotp,
  expectPath,
  fitsPhone,
  goto,
  newAccount,
  pathname,
  reauthIfAsked,
  screenshot,
  signInWithPassword,
  signOut,
  signUp,
  story,
  submit,
  text,
  verifyWithCode,
} from './lib/index.mjs';

const DEVICE_NAME = 'Test phone';
const PHONE = {
  viewport: { width: 390, height: 844 },
  deviceScaleFactor: 2,
  isMobile: true,
  hasTouch: true,
  userAgent:
    'Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Mobile Safari/537.36',
};

// The user's computer, and their phone running the companion page.
const s = story({
  browsers: { computer: { viewport: { width: 1100, height: 850 } }, phone: PHONE },
  timeout: 150_000,
  chained: true,
});

const account = newAccount('push');

/** On /security/push/new's GET (a button only): make the pairing code. */
async function showPairingCode(computer) {
  await expectPath(computer, '/security/push/new');
  assert.equal(await computer.locator('[data-testid=pairing-link]').count(), 0, 'no pairing code on a GET');
  await submit(computer.getByRole('button', { name: 'Show the pairing code' }));
  await expectPath(computer, '/security/push/new');
  await computer.getByRole('heading', { level: 1, name: 'Add a companion device' }).waitFor();
}

/** Password step, then "Approve on my phone": the push page's number. */
async function signInWithPush(computer) {
  await signInWithPassword(computer, account);
  await expectPath(computer, '/login/verify');
  await submit(computer.getByRole('button', { name: 'Approve on my phone (push)' }).first());
  return readNumber(computer);
}

async function readNumber(computer) {
  await computer.getByRole('heading', { level: 1, name: 'Approve on your phone' }).waitFor();
  const number = await text(computer.locator('[data-testid=push-number]'));
  assert.match(number, /^\d{2}$/, 'the page shows a 2-digit number');
  return number;
}

/** The phone's card for the newest request. */
async function requestCard(phone) {
  const card = phone.locator('[data-testid=push-request]');
  await card.waitFor({ timeout: 20_000 });
  assert.equal(await card.count(), 1, 'one request is shown');
  return card;
}

s.test('sign up, turn on 2FA with an app, and pair a phone from the Security page', async ({ server, computer, phone }) => {
  // The computer: sign up and set up an authenticator app (2FA on).
  await signUp(computer, account);
  await submit(computer.getByRole('link', { name: 'Set up an authenticator app' }));
  account.totp = await enrolTotp(computer);
  await computer.getByRole('heading', { level: 2, name: 'Two-factor authentication' }).waitFor();
  await computer.locator('[data-testid=no-push-device]').waitFor();
  await screenshot(computer, 'push-01-computer-security-before');

  // Security → Add a companion device (re-auth first if it is asked).
  await submit(computer.getByRole('link', { name: 'Add a companion device' }));
  await computer.waitForURL((url) => ['/reauth', '/security/push/new'].includes(url.pathname));
  await reauthIfAsked(computer, account, { what: 'adding a companion device', shot: 'push-02-computer-reauth' });
  await expectPath(computer, '/security/push/new');
  await showPairingCode(computer);
  const link = await computer.locator('[data-testid=pairing-link]').inputValue();
  assert.match(link, new RegExp(`^${server.url}/companion#pair=[A-Za-z0-9_-]{40,}$`), `pairing link: ${link}`);
  assert.match(await text(computer.locator('[data-testid=pairing-expiry]')), /expires in 10 minutes/);
  assert.ok((await computer.locator('main').innerText()).includes(`twostep companion enroll '${link}'`), 'the CLI command is shown');
  // What a phone's camera would read: the QR code holds exactly the link.
  assert.deepEqual(await decodeQr(await computer.locator('[data-testid=push-qr] svg').screenshot()), [link]);
  await screenshot(computer, 'push-03-computer-pairing-link');

  // The phone opens the link, names itself and pairs.
  await goto(phone, link);
  await phone.getByRole('heading', { level: 1, name: 'twostep companion' }).waitFor();
  await phone.getByLabel('Name this device').fill(DEVICE_NAME);
  await screenshot(phone, 'push-04-phone-pairing');
  await phone.getByRole('button', { name: 'Add device' }).click();
  const paired = phone.locator('[data-testid=companion-paired]');
  await paired.waitFor();
  assert.equal(await text(paired), `Approves sign-ins for ${account.email} as ${DEVICE_NAME}.`);
  assert.equal(new URL(phone.url()).hash, '', 'the pairing code is gone from the address bar');
  // Headless Chromium has no notification permission: the page works without Web Push.
  await phone.getByText('Waiting for sign-in requests').waitFor();
  // The key is a non-extractable CryptoKey in IndexedDB.
  const stored = await phone.evaluate(
    () =>
      new Promise((resolve, reject) => {
        const open = indexedDB.open('twostep-companion');
        open.onerror = () => reject(open.error);
        open.onsuccess = () => {
          const get = open.result.transaction('device').objectStore('device').get('self');
          get.onsuccess = () => {
            const d = get.result;
            resolve({
              id: typeof d.deviceId,
              type: d.privateKey.type,
              extractable: d.privateKey.extractable,
              algorithm: d.privateKey.algorithm.namedCurve,
            });
          };
        };
      }),
  );
  assert.deepEqual(stored, { id: 'string', type: 'private', extractable: false, algorithm: 'P-256' });
  await screenshot(phone, 'push-05-phone-paired');

  // The same link works once.
  const again = await s.openBrowser(PHONE);
  try {
    const other = again.page;
    await goto(other, link);
    await other.getByLabel('Name this device').fill('Second phone');
    await other.getByRole('button', { name: 'Add device' }).click();
    await other.getByText('This pairing link is invalid, used or expired').waitFor();
  } finally {
    await again.close();
  }

  // Back on the computer, the Security page lists the device.
  await submit(computer.getByRole('link', { name: 'Done' }));
  await expectPath(computer, '/security');
  const row = computer.locator('[data-testid=push-device]');
  assert.equal(await row.count(), 1, 'one companion device');
  assert.equal(await text(row.locator('[data-testid=push-device-name]')), DEVICE_NAME);
  assert.equal(await computer.locator('[data-testid=authenticator]').count(), 1, 'the app is still the only app listed');
  await screenshot(computer, 'push-06-computer-security-with-device');
});

s.test('sign in by approving on the phone: the sign-in page carries on by itself', async ({ computer, phone }) => {
  await signOut(computer);
  const number = await signInWithPush(computer);
  assert.match(await text(computer.locator('[data-testid=push-sent-to]')), new RegExp(DEVICE_NAME));
  await computer.getByText(/expires in \d+ seconds/).waitFor();
  await screenshot(computer, 'push-07-computer-number');

  const card = await requestCard(phone);
  assert.ok((await text(card)).includes(account.email), 'the request names the account');
  assert.match(await text(card), /127\.0\.0\.1/, 'and where it comes from');
  await screenshot(phone, 'push-08-phone-request');
  await card.getByLabel('Type the number shown on the sign-in page').fill(number);
  await screenshot(phone, 'push-09-phone-number-typed');
  await card.getByRole('button', { name: 'Approve' }).click();
  await phone.locator('[data-testid=push-outcome]').filter({ hasText: 'Approved' }).waitFor();
  await screenshot(phone, 'push-10-phone-approved');

  // No click on the computer: it signs in by itself.
  await computer.waitForURL((url) => url.pathname === '/security', { timeout: 30_000 });
  await computer.getByRole('heading', { level: 1, name: 'Security' }).waitFor();
  assert.equal(await text(computer.locator('[data-testid=account-email]')), account.email);
  await screenshot(computer, 'push-11-computer-signed-in');
});

s.test('sign-in opens on push with a companion, and on the method chosen on the Security page', async ({ computer }) => {
  // With a companion, the second step offers the push first, not a code field.
  await signOut(computer);
  await signInWithPassword(computer, account);
  await expectPath(computer, '/login/verify');
  await computer.locator('#push-send-form').getByRole('button', { name: 'Approve on my phone (push)' }).waitFor();
  assert.equal(await computer.locator('#code').count(), 0, 'no code field until asked for');
  await screenshot(computer, 'push-11a-computer-push-first');
  await fitsPhone(computer, 'push-11a-computer-push-first-390');
  await submit(computer.getByRole('link', { name: 'Use your authenticator app' }));
  await verifyWithCode(computer, account);
  await expectPath(computer, '/security');

  // The account chooses the app first: the next sign-in opens on the code field.
  await computer.getByLabel('After your password, sign-in offers').selectOption({ label: 'Use your authenticator app' });
  await submit(computer.getByRole('button', { name: 'Use this first' }));
  assert.match(await text(computer.locator('[role=status]')), /sign-in asks for that first/);
  await screenshot(computer, 'push-11b-computer-first-method');
  await fitsPhone(computer, 'push-11b-computer-first-method-390');
  await signOut(computer);
  await signInWithPassword(computer, account);
  await expectPath(computer, '/login/verify');
  await computer.locator('#code').waitFor();
  await verifyWithCode(computer, account);
  await expectPath(computer, '/security');

  // Back to the strongest first, for the stories after this one.
  await computer.getByLabel('After your password, sign-in offers').selectOption({ value: '' });
  await submit(computer.getByRole('button', { name: 'Use this first' }));
});

s.test('re-auth by push: on a remembered browser, a change is confirmed on the phone', async ({ computer, phone }) => {
  // Signing in with "remember this browser" makes the next sign-in password-only,
  // so the session has no fresh second factor and changes ask for one.
  await signOut(computer);
  const first = await signInWithPush(computer);
  await computer.locator('#remember').check();
  let card = await requestCard(phone);
  await card.getByLabel('Type the number shown on the sign-in page').fill(first);
  await card.getByRole('button', { name: 'Approve' }).click();
  await computer.waitForURL((url) => url.pathname === '/security', { timeout: 30_000 });
  await signOut(computer);
  await signInWithPassword(computer, account);
  await expectPath(computer, '/security');

  await goto(computer, '/security/push/new');
  await computer.getByRole('heading', { level: 1, name: "Confirm it's you" }).waitFor();
  await submit(computer.getByRole('button', { name: 'Approve on my phone (push)' }));
  await computer.getByRole('heading', { level: 1, name: "Confirm it's you" }).waitFor();
  const number = await text(computer.locator('[data-testid=push-number]'));
  assert.match(number, /^\d{2}$/);
  await screenshot(computer, 'push-20-computer-reauth-number');
  card = await requestCard(phone);
  await card.getByLabel('Type the number shown on the sign-in page').fill(number);
  await card.getByRole('button', { name: 'Approve' }).click();
  // The page confirms by itself and goes on to the change it was asked for.
  await computer.waitForURL((url) => url.pathname === '/security/push/new', { timeout: 30_000 });
  await computer.getByRole('heading', { level: 1, name: 'Add a companion device' }).waitFor();
  await computer.getByRole('button', { name: 'Show the pairing code' }).waitFor();
  await screenshot(computer, 'push-21-computer-reauth-done');

  // Forget this browser again, so the next sign-ins ask for the second factor.
  await goto(computer, '/security');
  const forget = computer.getByRole('button', { name: 'Forget', exact: true });
  assert.equal(await forget.count(), 1, 'one remembered browser');
  await submit(forget);
  await expectPath(computer, '/security');
});

s.test('"This wasn\'t me", a wrong number and push fatigue are refused, and the sign-in page says so', async ({ computer, phone }) => {
  await signOut(computer);
  await signInWithPush(computer);

  // Deny: "This wasn't me".
  let card = await requestCard(phone);
  await card.getByRole('button', { name: "This wasn't me" }).click();
  await phone.locator('[data-testid=push-outcome]').filter({ hasText: 'Denied and reported' }).waitFor();
  await screenshot(phone, 'push-12-phone-not-me');
  const outcome = computer.locator('[data-testid=push-outcome]');
  await outcome.filter({ hasText: 'The request was denied on your device.' }).waitFor({ timeout: 30_000 });
  assert.equal(pathname(computer), '/login/challenge', 'no sign-in happened');
  assert.equal(await computer.locator('[data-testid=push-number]').isVisible(), false, 'the number is gone');
  await computer.getByRole('button', { name: 'Send another push' }).waitFor();
  await computer.getByRole('link', { name: 'Use another method' }).waitFor();
  await screenshot(computer, 'push-13-computer-denied');

  // Another push; the phone types a wrong number.
  await submit(computer.getByRole('button', { name: 'Send another push' }));
  const number = await readNumber(computer);
  const wrong = String((Number(number) + 1) % 100).padStart(2, '0');
  card = await requestCard(phone);
  // Approving without a number is not even sent.
  await card.getByRole('button', { name: 'Approve' }).click();
  await card.getByText('Type the 2-digit number shown on the sign-in page first.').waitFor();
  await card.getByLabel('Type the number shown on the sign-in page').fill(wrong);
  await card.getByRole('button', { name: 'Approve' }).click();
  await phone.locator('[data-testid=push-outcome]').filter({ hasText: 'Wrong number: the request was denied.' }).waitFor();
  await screenshot(phone, 'push-14-phone-wrong-number');
  await outcome.filter({ hasText: 'The request was denied on your device.' }).waitFor({ timeout: 30_000 });
  await screenshot(computer, 'push-15-computer-denied-wrong-number');

  // Without script, "I approved it — continue" on a denied request changes nothing.
  const status = await computer.evaluate(async () => {
    const form = document.getElementById('push-verify-form');
    const res = await fetch('/login/verify', { method: 'POST', body: new URLSearchParams(new FormData(form)) });
    return res.status;
  });
  assert.equal(status, 401, 'a denied push does not sign in');
  await goto(computer, '/security');
  await expectPath(computer, '/login');

  // Push fatigue (§2.9): a third unanswered push in 10 minutes is the last one.
  await signInWithPush(computer);
  await requestCard(phone);
  await submit(computer.getByRole('button', { name: 'Send another push' }));
  await computer.getByRole('heading', { level: 1, name: 'Two-factor authentication' }).waitFor();
  assert.match(
    await text(computer.locator('[role=alert]')),
    /^Too many sign-in requests were sent to your device\. Try again in \d+ (seconds|minutes) or use another method\.$/,
  );
  await computer.getByRole('button', { name: 'Approve on my phone (push)' }).waitFor();
  await computer.getByRole('link', { name: 'Use your authenticator app' }).waitFor();
  await screenshot(computer, 'push-16-computer-throttled');
});

s.test('rename and remove devices: from the Security page (re-auth) and from the phone itself', async ({ computer, phone }) => {
  // Pushes are throttled for now: sign in with the app.
  await submit(computer.getByRole('link', { name: 'Use your authenticator app' }));
  await verifyWithCode(computer, account);
  await expectPath(computer, '/security');

  // Rename: a bad name is refused with a message, a good one is listed.
  await submit(computer.getByRole('link', { name: `Rename ${DEVICE_NAME}` }));
  await computer.getByRole('heading', { level: 1, name: 'Rename companion device' }).waitFor();
  await computer.getByLabel('Name').fill('x'.repeat(80));
  await computer.locator('#name').evaluate((el) => el.removeAttribute('maxlength'));
  await computer.getByLabel('Name').fill('x'.repeat(80));
  await submit(computer.getByRole('button', { name: 'Save' }));
  assert.match(await text(computer.locator('[role=alert]')), /Names are 1 to 64 characters/);
  await computer.getByLabel('Name').fill('Work phone');
  await submit(computer.getByRole('button', { name: 'Save' }));
  await expectPath(computer, '/security');
  assert.match(await text(computer.locator('[role=status]')), /Companion device renamed/);
  assert.equal(await text(computer.locator('[data-testid=push-device-name]')), 'Work phone');

  // The phone forgets itself: its key is deleted and the account no longer lists it.
  await phone.getByRole('button', { name: 'Forget this device' }).click();
  await phone.getByRole('button', { name: 'Forget it' }).click();
  await phone.locator('[data-testid=companion-unpaired]').waitFor();
  await phone.getByText('This device was forgotten').waitFor();
  await screenshot(phone, 'push-17-phone-forgotten');
  await goto(computer, '/security');
  await computer.locator('[data-testid=no-push-device]').waitFor();

  // Pair it again, then remove it from the Security page (re-auth if asked).
  await goto(computer, '/security/push/new');
  await computer.waitForURL((url) => ['/reauth', '/security/push/new'].includes(url.pathname));
  await reauthIfAsked(computer, account, { what: 'pairing again' });
  await showPairingCode(computer);
  const link = await computer.locator('[data-testid=pairing-link]').inputValue();
  // The phone still shows /companion: only the fragment changes, and the page starts over with it.
  await phone.goto(link);
  await phone.getByLabel('Name this device').fill(DEVICE_NAME);
  await phone.getByRole('button', { name: 'Add device' }).click();
  await phone.locator('[data-testid=companion-paired]').waitFor();
  await goto(computer, '/security');
  await submit(computer.getByRole('link', { name: `Remove ${DEVICE_NAME}` }));
  await reauthIfAsked(computer, account, { what: 'removing a companion device' });
  await computer.getByRole('heading', { level: 1, name: 'Remove companion device' }).waitFor();
  await submit(computer.getByRole('button', { name: 'Remove' }));
  await expectPath(computer, '/security');
  assert.match(await text(computer.locator('[role=status]')), /Companion device removed/);
  await computer.locator('[data-testid=no-push-device]').waitFor();
  await screenshot(computer, 'push-18-computer-device-removed');

  // The phone's next poll is refused, and it says so.
  await phone.getByText('The server no longer accepts this device').waitFor({ timeout: 40_000 });
  await screenshot(phone, 'push-19-phone-removed-from-account');
});
