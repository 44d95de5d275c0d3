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

import assert from 'node:assert/strict';

import {
  expectPath,
  fillLogin,
  goto,
  newAccount,
  screenshot,
  signUp,
  story,
  submit,
  text,
} from './lib/index.mjs';

const RANGE = '198.51.100.0/24';

const s = story();
const account = newAccount('allow');

async function saveList(page, list, { confirm = false } = {}) {
  const form = page.locator('form#allowlist-form');
  await form.locator('#entries').fill(list);
  if (confirm) await form.locator('[data-testid=confirm-lockout]').check();
  return submit(form.getByRole('button', { name: 'Save allow-list' }));
}

async function entriesShown(page) {
  const rows = page.locator('[data-testid=allowlist-entry]');
  const out = [];
  for (let i = 0; i < (await rows.count()); i += 1) {
    const cells = rows.nth(i).locator('td');
    out.push([await text(cells.nth(0)), await text(cells.nth(1))]);
  }
  return out;
}

s.test('add the current address and a range, see them listed', async ({ page }) => {
  // Sign up (which signs in: a fresh password proof, so no re-auth prompt).
  await signUp(page, account);
  const section = page.locator('section#ip-allowlist');
  assert.match(await section.locator('[data-testid=allowlist-status]').innerText(), /^Off/);
  await screenshot(page, 'allowlist-01-security-off');

  await submit(section.getByRole('link', { name: 'Set up an IP allow-list' }));
  await expectPath(page, '/security/ip-allowlist');
  await page.getByRole('heading', { level: 1, name: 'IP allow-list' }).waitFor();
  const current = await text(page.locator('[data-testid=current-ip]'));
  assert.equal(current, '127.0.0.1', 'the editor shows the address the browser comes from');
  await page.locator('[data-testid=allowlist-empty]').waitFor();
  await screenshot(page, 'allowlist-02-editor-empty');

  // A wrong line is named, and what was typed stays.
  let status = await saveList(page, `${current} This computer\n10.0.0.300 typo`);
  assert.equal(status, 400);
  assert.match(await page.locator('[data-testid=allowlist-error]').innerText(), /10\.0\.0\.300/);
  assert.match(await page.locator('#entries').inputValue(), /10\.0\.0\.300 typo/);
  await screenshot(page, 'allowlist-03-invalid-entry');

  // A list without the current address asks for confirmation and saves nothing.
  status = await saveList(page, `${RANGE} Office VPN`);
  assert.equal(status, 409);
  assert.match(await page.locator('[data-testid=allowlist-error]').innerText(), /127\.0\.0\.1 is not in this list/);
  await page.locator('[data-testid=confirm-lockout]').waitFor();
  await page.locator('[data-testid=allowlist-empty]').waitFor();
  await screenshot(page, 'allowlist-04-lockout-warning');

  // The current address and a range: saved.
  status = await saveList(page, `${current} This computer\n198.51.100.9/24 Office VPN`);
  assert.equal(status, 200);
  await expectPath(page, '/security');
  await page.getByText('IP allow-list saved.').waitFor();
  assert.match(await section.locator('[data-testid=allowlist-status]').innerText(), /^On/);
  const summary = (await section.locator('[data-testid=allowlist-summary] li').allInnerTexts()).map((t) => t.trim());
  assert.deepEqual(summary, [`${current} This computer`, `${RANGE} Office VPN`]);
  await screenshot(page, 'allowlist-05-security-on');

  await submit(section.getByRole('link', { name: 'Edit IP allow-list' }));
  await expectPath(page, '/security/ip-allowlist');
  assert.deepEqual(await entriesShown(page), [
    [current, 'This computer'],
    [RANGE, 'Office VPN'],
  ]);
  await page.getByText('on the list', { exact: true }).waitFor();
  await screenshot(page, 'allowlist-06-editor-listed');
});

s.test('confirming a list without this address signs out and refuses sign-in here', async ({ page }) => {
  await goto(page, '/security/ip-allowlist');
  await expectPath(page, '/security/ip-allowlist');
  let status = await saveList(page, `${RANGE} Office VPN`);
  assert.equal(status, 409);
  status = await saveList(page, `${RANGE} Office VPN`, { confirm: true });
  // Saved; the redirect to /security is the session's next request, from outside the list.
  assert.equal(status, 403);
  await page.getByRole('heading', { name: 'Not from this address' }).waitFor();
  await screenshot(page, 'allowlist-07-signed-out');

  await goto(page, '/security');
  await expectPath(page, '/login');
  status = await submit(await fillLogin(page, account.email, account.password));
  assert.equal(status, 401, 'refused like a wrong password');
  await expectPath(page, '/login');
  const refused = await text(page.locator('[role=alert]').first());

  await submit(await fillLogin(page, account.email, `${account.password}-wrong`));
  const wrong = await text(page.locator('[role=alert]').first());
  assert.equal(refused, wrong, 'the same message as a wrong password');
  await screenshot(page, 'allowlist-08-sign-in-refused');
});
