// The IP allow-list in a real browser (issue 6 item 4, story P3; SEC-61).
//
// A user signs up, opens the IP allow-list editor from the Security page,
// sees their current address, is warned (with a confirmation box) when the
// list would shut that address out, is told which line is wrong, saves their
// current address and a range and sees both listed on the Security page and
// in the editor. Finally they confirm a list without their address: the next
// page signs them out, and signing in from here is refused like a wrong
// password.
//
// Page contract (server-rendered HTML, plain POST forms):
//   /security              section#ip-allowlist, [data-testid=allowlist-status] "Off: …"/"On: …",
//                          [data-testid=allowlist-summary] items, link "Set up an IP allow-list" /
//                          "Edit IP allow-list" -> /security/ip-allowlist
//   /security/ip-allowlist [data-testid=current-ip], [data-testid=allowlist-empty] or
//                          [data-testid=allowlist] with [data-testid=allowlist-entry] rows,
//                          form#allowlist-form textarea#entries (one "address-or-range label" per line),
//                          checkbox [data-testid=confirm-lockout] (only after a lock-out warning),
//                          button "Save allow-list" -> /security?notice=allowlist_saved;
//                          errors in [data-testid=allowlist-error] (role=alert)
//   outside the list       403 page "Not from this address"; /login refuses with the generic error

import { after, before, test } from 'node:test';
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
const RANGE = '198.51.100.0/24';

/** @type {Awaited<ReturnType<typeof startServer>>} */
let server;
/** @type {Awaited<ReturnType<typeof launchBrowser>>} */
let browser;
/** @type {import('playwright-core').Page} */
let page;

const account = { email: uniqueEmail('allow'), password: strongPassword() };

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

function e2e(name, fn) {
  test(name, { timeout: TEST_TIMEOUT_MS }, () => withDiagnostics({ name, page, server }, fn));
}

const pathname = () => new URL(page.url()).pathname;

async function goto(path) {
  const response = await page.goto(`${server.url}${path}`);
  assert.ok(response, `no response for GET ${path}`);
  return response;
}

/** Click a submit button and wait for the page the form post leads to; returns its status. */
async function submit(button) {
  const [response] = await Promise.all([
    page.waitForNavigation({ waitUntil: 'load' }),
    button.click(),
  ]);
  return response?.status();
}

async function expectPath(expected) {
  await page.waitForURL((url) => url.pathname === expected);
  assert.equal(pathname(), expected);
}

async function saveList(text, { confirm = false } = {}) {
  const form = page.locator('form#allowlist-form');
  await form.locator('#entries').fill(text);
  if (confirm) await form.locator('[data-testid=confirm-lockout]').check();
  return submit(form.getByRole('button', { name: 'Save allow-list' }));
}

async function entriesShown() {
  const rows = page.locator('[data-testid=allowlist-entry]');
  const out = [];
  for (let i = 0; i < (await rows.count()); i += 1) {
    const cells = rows.nth(i).locator('td');
    out.push([(await cells.nth(0).innerText()).trim(), (await cells.nth(1).innerText()).trim()]);
  }
  return out;
}

e2e('add the current address and a range, see them listed', async () => {
  // Sign up (which signs in: a fresh password proof, so no re-auth prompt).
  await goto('/signup');
  const signup = page.locator('form#signup-form');
  await signup.locator('#email').fill(account.email);
  await signup.locator('#password').fill(account.password);
  await submit(signup.getByRole('button', { name: 'Create account' }));
  await expectPath('/security');
  const section = page.locator('section#ip-allowlist');
  assert.match(await section.locator('[data-testid=allowlist-status]').innerText(), /^Off/);
  await screenshot(page, 'allowlist-01-security-off');

  await submit(section.getByRole('link', { name: 'Set up an IP allow-list' }));
  await expectPath('/security/ip-allowlist');
  await page.getByRole('heading', { level: 1, name: 'IP allow-list' }).waitFor();
  const current = (await page.locator('[data-testid=current-ip]').innerText()).trim();
  assert.equal(current, '127.0.0.1', 'the editor shows the address the browser comes from');
  await page.locator('[data-testid=allowlist-empty]').waitFor();
  await screenshot(page, 'allowlist-02-editor-empty');

  // A wrong line is named, and what was typed stays.
  let status = await saveList(`${current} This computer\n10.0.0.300 typo`);
  assert.equal(status, 400);
  assert.match(await page.locator('[data-testid=allowlist-error]').innerText(), /10\.0\.0\.300/);
  assert.match(await page.locator('#entries').inputValue(), /10\.0\.0\.300 typo/);
  await screenshot(page, 'allowlist-03-invalid-entry');

  // A list without the current address asks for confirmation and saves nothing.
  status = await saveList(`${RANGE} Office VPN`);
  assert.equal(status, 409);
  assert.match(await page.locator('[data-testid=allowlist-error]').innerText(), /127\.0\.0\.1 is not in this list/);
  await page.locator('[data-testid=confirm-lockout]').waitFor();
  await page.locator('[data-testid=allowlist-empty]').waitFor();
  await screenshot(page, 'allowlist-04-lockout-warning');

  // The current address and a range: saved.
  status = await saveList(`${current} This computer\n198.51.100.9/24 Office VPN`);
  assert.equal(status, 200);
  await expectPath('/security');
  await page.getByText('IP allow-list saved.').waitFor();
  assert.match(await section.locator('[data-testid=allowlist-status]').innerText(), /^On/);
  const summary = (await section.locator('[data-testid=allowlist-summary] li').allInnerTexts()).map((t) => t.trim());
  assert.deepEqual(summary, [`${current} This computer`, `${RANGE} Office VPN`]);
  await screenshot(page, 'allowlist-05-security-on');

  await submit(section.getByRole('link', { name: 'Edit IP allow-list' }));
  await expectPath('/security/ip-allowlist');
  assert.deepEqual(await entriesShown(), [
    [current, 'This computer'],
    [RANGE, 'Office VPN'],
  ]);
  await page.getByText('on the list', { exact: true }).waitFor();
  await screenshot(page, 'allowlist-06-editor-listed');
});

e2e('confirming a list without this address signs out and refuses sign-in here', async () => {
  await goto('/security/ip-allowlist');
  await expectPath('/security/ip-allowlist');
  let status = await saveList(`${RANGE} Office VPN`);
  assert.equal(status, 409);
  status = await saveList(`${RANGE} Office VPN`, { confirm: true });
  // Saved; the redirect to /security is the session's next request, from outside the list.
  assert.equal(status, 403);
  await page.getByRole('heading', { name: 'Not from this address' }).waitFor();
  await screenshot(page, 'allowlist-07-signed-out');

  await goto('/security');
  await expectPath('/login');
  const login = page.locator('form#login-form');
  await login.locator('#email').fill(account.email);
  await login.locator('#password').fill(account.password);
  status = await submit(login.getByRole('button', { name: 'Sign in' }));
  assert.equal(status, 401, 'refused like a wrong password');
  await expectPath('/login');
  const refused = (await page.locator('[role=alert]').first().innerText()).trim();

  await login.locator('#email').fill(account.email);
  await login.locator('#password').fill(`${account.password}-wrong`);
  await submit(login.getByRole('button', { name: 'Sign in' }));
  const wrong = (await page.locator('[role=alert]').first().innerText()).trim();
  assert.equal(refused, wrong, 'the same message as a wrong password');
  await screenshot(page, 'allowlist-08-sign-in-refused');
});
