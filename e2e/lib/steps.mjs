// Page steps: what every story does with a page, whichever page it is.
//
// Pages come from launchBrowser({ baseURL: server.url }), so paths are
// enough; a full URL (a mailed link, a pairing link) works as well.

import assert from 'node:assert/strict';

import { screenshot } from './harness.mjs';

/** @typedef {import('playwright-core').Page} Page */
/** @typedef {import('playwright-core').Locator} Locator */

/** @param {Page} page */
export const pathname = (page) => new URL(page.url()).pathname;

/**
 * GET a path (or URL) in the page.
 * @param {Page} page
 * @param {string} path
 */
export async function goto(page, path) {
  const response = await page.goto(path);
  assert.ok(response, `no response for GET ${path}`);
  return response;
}

/**
 * Click a submit button (or link) and wait for the page it leads to.
 * @param {Locator} control
 * @returns {Promise<number | undefined>} the status of the navigation's last
 *   response (after redirects: the page shown)
 */
export async function submit(control) {
  const page = control.page();
  let status;
  const onResponse = (r) => {
    if (r.request().isNavigationRequest() && r.frame() === page.mainFrame()) status = r.status();
  };
  page.on('response', onResponse);
  try {
    await Promise.all([page.waitForEvent('load'), control.click()]);
  } finally {
    page.off('response', onResponse);
  }
  return status;
}

/**
 * Wait until the page is at `expected` (a path, no query).
 * @param {Page} page
 * @param {string} expected
 */
export async function expectPath(page, expected) {
  await page.waitForURL((url) => url.pathname === expected);
  assert.equal(pathname(page), expected);
}

/**
 * Fill a form's fields.
 * @param {Locator} form
 * @param {Record<string, string>} fields selector (in the form) -> value
 */
export async function fill(form, fields) {
  await form.waitFor();
  for (const [selector, value] of Object.entries(fields)) await form.locator(selector).fill(value);
}

/** @param {Locator} locator */
export async function text(locator) {
  return (await locator.innerText()).trim();
}

/**
 * Text of the first visible, non-empty [role=alert] (optionally the one matching `match`).
 * @param {Page} page
 * @param {string | RegExp} [match]
 */
export async function alertText(page, match = /\S/) {
  const alert = page.locator('[role=alert]').filter({ hasText: match }).first();
  await alert.waitFor();
  return text(alert);
}

/**
 * Text of the page's notice ([role=status]).
 * @param {Page} page
 */
export async function noticeText(page) {
  const notice = page.locator('[role=status]').first();
  await notice.waitFor();
  return text(notice);
}

/**
 * How far the page reaches past the screen's width, and the first boxes that
 * do. Measured against the device's width, not `innerWidth`: a phone browser
 * widens its layout viewport to fit content that is too wide.
 */
export async function overflow(page, width) {
  return page.evaluate((width) => {
    const sideways = document.documentElement.scrollWidth - width;
    const boxes = [...document.querySelectorAll('body *')]
      .filter((el) => {
        const r = el.getBoundingClientRect();
        if (r.width === 0 || r.height === 0) return false;
        // Visually hidden helpers (table headers on phones) sit off-screen on purpose.
        for (let a = el; a; a = a.parentElement) {
          if (getComputedStyle(a).clip !== 'auto') return false;
        }
        if (r.right <= width + 1) return false;
        // Name the outermost box only, not every descendant inside it.
        const parent = el.parentElement?.getBoundingClientRect();
        return !parent || parent.right <= width + 1;
      })
      .slice(0, 5)
      .map((el) => `<${el.tagName.toLowerCase()} class="${el.className}"> ${el.textContent.trim().slice(0, 50)}`);
    return { sideways, boxes };
  }, width);
}

/**
 * Shows `page` at a phone's width (390 px), photographs it as `name`,
 * asserts nothing reaches past the edge, and restores the old viewport.
 * @param {Page} page
 * @param {string} name
 */
export async function fitsPhone(page, name) {
  const before = page.viewportSize();
  await page.setViewportSize({ width: 390, height: 844 });
  try {
    const { sideways, boxes } = await overflow(page, 390);
    await screenshot(page, name);
    assert.ok(sideways <= 0 && boxes.length === 0, `${name} at 390 px: ${sideways}px sideways, ${boxes.join(' | ')}`);
  } finally {
    if (before) await page.setViewportSize(before);
  }
}
