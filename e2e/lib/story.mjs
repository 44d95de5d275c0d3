// The scaffolding of a story file: its server, its browsers and its tests.

import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { launchBrowser, startServer, withDiagnostics } from './harness.mjs';

/** @typedef {import('playwright-core').Page} Page */
/** @typedef {Awaited<ReturnType<typeof startServer>>} Server */
/** @typedef {Awaited<ReturnType<typeof launchBrowser>>} Browser */

/**
 * Register the hooks of a story file: before its tests, a twostep server
 * and one Chromium (own profile) per entry of `browsers`; after them, all
 * closed and stopped.
 *
 * The returned story gets `server` and, per browser, its page under the
 * browser's name (`story.page` by default) once its tests run; its `test`
 * registers a test that receives the story.
 *
 * @param {object} [options]
 * @param {Record<string, string> | (() => Record<string, string> | Promise<Record<string, string>>)} [options.env]
 *   the server's extra environment; a function is called (and awaited) just before the server
 *   starts, so it can first start what the server is to talk to (Node 20 does not await one
 *   top-level `before` hook before the next)
 * @param {Record<string, import('playwright-core').BrowserContextOptions>} [options.browsers]
 *   name -> context options (viewport, isMobile…)
 * @param {number} [options.timeout] per test, in ms
 * @param {boolean} [options.chained] the tests are steps of one story sharing its state: once one
 *   fails, the later ones fail at once rather than misleadingly
 */
export function story({ env = {}, browsers = { page: {} }, timeout = 120_000, chained = false } = {}) {
  /** @type {Browser[]} */
  const opened = [];
  /** @type {Record<string, Page>} */
  const pages = {};
  let brokenAt;

  const s = {
    /** @type {Server} */
    server: undefined,
    /** @type {Page} the page of the browser named `page` */
    page: undefined,
    pages,

    /**
     * One more browser (own profile) on the server, closed after the tests
     * if the story did not close it.
     * @param {import('playwright-core').BrowserContextOptions} [options]
     */
    async openBrowser(options = {}) {
      const browser = await launchBrowser({ baseURL: s.server.url, ...options });
      opened.push(browser);
      return browser;
    },

    /**
     * A test of this story; on failure a screenshot of every page and the
     * server's output are printed.
     * @param {string} name
     * @param {(story: typeof s) => Promise<void>} fn
     */
    test(name, fn) {
      test(name, { timeout }, async () => {
        if (chained) {
          assert.equal(brokenAt, undefined, `an earlier step failed ("${brokenAt}"), so this one cannot run`);
        }
        try {
          await withDiagnostics({ name, pages, server: s.server }, () => fn(s));
        } catch (err) {
          brokenAt = name;
          throw err;
        }
      });
    },
  };

  before(async () => {
    s.server = await startServer({ env: typeof env === 'function' ? await env() : env });
    for (const [name, options] of Object.entries(browsers)) {
      pages[name] = (await s.openBrowser(options)).page;
      s[name] = pages[name];
    }
  });

  after(async () => {
    try {
      await closeAll(opened);
    } finally {
      await s.server?.stop();
    }
  });

  return s;
}

/**
 * For one test that needs a server of its own (other settings): start it
 * (and a browser on it, unless `browser: false`), run `fn`, stop both.
 * @param {{ name: string, env?: Record<string, string>, browser?: boolean }} options
 * @param {(ctx: { server: Server, page?: Page }) => Promise<void>} fn
 */
export async function withOwnServer({ name, env = {}, browser = true }, fn) {
  const server = await startServer({ env });
  const opened = [];
  try {
    if (browser) opened.push(await launchBrowser({ baseURL: server.url }));
    const page = opened[0]?.page;
    await withDiagnostics({ name, page, server }, () => fn({ server, page }));
  } finally {
    try {
      await closeAll(opened);
    } finally {
      await server.stop();
    }
  }
}

/** Close every browser, even when one fails to; then report the first failure. */
async function closeAll(browsers) {
  const results = await Promise.allSettled(browsers.map((b) => b.close()));
  const failed = results.find((r) => r.status === 'rejected');
  if (failed) throw failed.reason;
}
