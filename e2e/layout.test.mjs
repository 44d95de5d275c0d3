// Every page as people meet it, on a phone (390×844) and on a desktop
// (1280×800): signed out, signed in, an administrator's, and the error
// pages. None may scroll sideways or put a box past the screen's edge, and
// each is photographed to target/e2e-screenshots/layout-<width>-<page>.png
// for a person to look at.

import assert from 'node:assert/strict';

import { enrolTotp, goto, newAccount, overflow, screenshot, signUp, story, twostepCli } from './lib/index.mjs';

const SIZES = {
  phone: { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true },
  desktop: { viewport: { width: 1280, height: 800 } },
};

const s = story({ browsers: SIZES, timeout: 240_000 });

const SIGNED_OUT = ['/login', '/signup', '/forgot-password', '/no-such-page', '/login/challenge'];
const SIGNED_IN = [
  '/security/recovery-codes',
  '/security',
  '/security/log',
  '/security/password',
  '/security/phone',
  '/security/push/new',
  '/orgs',
  '/companion',
  '/admin',
  '/admin/audit',
];

/** Visits and photographs a page; what does not fit, in words (none: ''). */
async function visit(page, size, path) {
  await goto(page, path);
  const { sideways, boxes } = await overflow(page, SIZES[size].viewport.width);
  const slug = path.replace(/^\//, '').replace(/[^a-z0-9]+/gi, '-') || 'home';
  await screenshot(page, `layout-${SIZES[size].viewport.width}-${slug}`);
  if (sideways <= 0 && boxes.length === 0) return '';
  return `${path} scrolls sideways by ${sideways}px: ${boxes.join(' | ')}`;
}

for (const size of Object.keys(SIZES)) {
  s.test(`every page fits a ${size} (${SIZES[size].viewport.width}px)`, async (st) => {
    const page = st.pages[size];
    await page.context().clearCookies();
    const misfits = [];
    for (const path of SIGNED_OUT) misfits.push(await visit(page, size, path));

    const account = newAccount(`layout-${size}`);
    await signUp(page, account);
    // With an authenticator app: the administration pages need one.
    await goto(page, '/security/totp/new');
    await enrolTotp(page, { shot: `layout-${SIZES[size].viewport.width}` });
    assert.match(twostepCli(st.server, 'admin', 'grant', account.email), /is an administrator/);
    for (const path of SIGNED_IN) misfits.push(await visit(page, size, path));
    assert.deepEqual(misfits.filter(Boolean), [], `pages that do not fit a ${size}`);
  });
}
