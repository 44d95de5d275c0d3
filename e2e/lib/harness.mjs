// Browser end-to-end harness for twostep: the tools under every story.
//
// Drives Debian's real Chromium (/usr/bin/chromium) with playwright-core and
// runs the real `twostep` binary (TWOSTEP_BIN) on a random loopback port with
// a throw-away data directory. Nothing here downloads a browser.
//
// Every helper fails loudly (throws) when a tool it needs is missing: the
// suite never silently skips.

import { spawn, execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const SCREENSHOT_DIR = path.join(REPO_ROOT, 'target', 'e2e-screenshots');
export const CHROMIUM_PATH = '/usr/bin/chromium';

const SERVER_START_TIMEOUT_MS = 30_000;
const SERVER_STOP_TIMEOUT_MS = 5_000;
const URL_PATTERN = /http:\/\/127\.0\.0\.1:(\d+)/;

// Children still running when the test process exits (e.g. after a crash) are
// killed so that no server outlives its test file.
const liveChildren = new Set();
process.on('exit', () => {
  for (const child of liveChildren) {
    try {
      child.kill('SIGKILL');
    } catch {
      // already gone
    }
  }
});

// Variables meant for the test tooling, not the server: a config loader that
// reads every TWOSTEP_* variable must not see them as settings.
const TEST_ONLY_ENV = /^TWOSTEP_(BIN|REQUIRE_TOOLS|TEST_.*)$/;

function serverBaseEnv() {
  return Object.fromEntries(Object.entries(process.env).filter(([key]) => !TEST_ONLY_ENV.test(key)));
}

function resolveBinary() {
  const bin = process.env.TWOSTEP_BIN;
  if (!bin) {
    throw new Error(
      'TWOSTEP_BIN is not set: point it at the twostep binary, e.g. ' +
        'TWOSTEP_BIN=$PWD/target/debug/twostep (./scripts/test sets it after `cargo build --bin twostep`)',
    );
  }
  const resolved = path.resolve(bin);
  if (!existsSync(resolved)) {
    throw new Error(
      `TWOSTEP_BIN=${bin} does not exist (resolved to ${resolved}); run \`cargo build --bin twostep\` first`,
    );
  }
  return resolved;
}

/**
 * Start `twostep serve --listen 127.0.0.1:0` with a fresh temporary data dir.
 *
 * Resolves once the server prints `http://127.0.0.1:<port>` on stdout.
 * @param {{ env?: Record<string, string> }} [options] extra environment variables
 * @returns {Promise<{ url: string, port: number, dataDir: string, logs: () => string, stop: () => Promise<void> }>}
 */
export async function startServer({ env = {} } = {}) {
  const bin = resolveBinary();
  const dataDir = await mkdtemp(path.join(tmpdir(), 'twostep-e2e-data-'));

  let output = '';
  let stdoutText = '';
  let started = false;
  let stopping = false;
  let exited = false;
  let exitInfo = '';

  const child = spawn(bin, ['serve', '--listen', '127.0.0.1:0'], {
    env: {
      ...serverBaseEnv(),
      TWOSTEP_DATA_DIR: dataDir,
      TWOSTEP_DEV_MODE: 'true',
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  liveChildren.add(child);

  const logs = () => output;

  const exitedPromise = new Promise((resolve) => {
    child.on('exit', (code, signal) => {
      exited = true;
      exitInfo = signal ? `signal ${signal}` : `exit code ${code}`;
      liveChildren.delete(child);
      resolve();
    });
    // A failed spawn may emit 'error' without 'exit'.
    child.on('error', (err) => {
      if (child.exitCode === null && child.pid === undefined) {
        exited = true;
        exitInfo = `spawn error: ${err.message}`;
        liveChildren.delete(child);
        resolve();
      }
    });
  });
  // 'close' comes after 'exit' once stdout/stderr are drained, so the output
  // printed here is complete.
  child.on('close', () => {
    if (started && !stopping) {
      process.stderr.write(
        `\n[e2e] twostep server exited unexpectedly (${exitInfo}). Its output:\n${indent(output || '(nothing)')}\n`,
      );
    }
  });

  const stop = async () => {
    if (stopping) {
      await exitedPromise;
      return;
    }
    stopping = true;
    if (!exited) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => {
        if (!exited) child.kill('SIGKILL');
      }, SERVER_STOP_TIMEOUT_MS);
      await exitedPromise;
      clearTimeout(timer);
    }
    await rm(dataDir, { recursive: true, force: true });
  };

  const url = await new Promise((resolve, reject) => {
    let settled = false;
    const finish = (fn, value) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      fn(value);
    };
    const fail = (message) =>
      finish(
        reject,
        new Error(`${message}\n--- twostep output (stdout+stderr) ---\n${output || '(nothing)'}\n---`),
      );

    const timer = setTimeout(
      () =>
        fail(
          `twostep did not print http://127.0.0.1:<port> on stdout within ${SERVER_START_TIMEOUT_MS / 1000} s ` +
            `(${bin} serve --listen 127.0.0.1:0)`,
        ),
      SERVER_START_TIMEOUT_MS,
    );

    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      output += chunk;
      if (started) return;
      stdoutText += chunk;
      const match = URL_PATTERN.exec(stdoutText);
      if (match) {
        started = true;
        finish(resolve, `http://127.0.0.1:${match[1]}`);
      }
    });
    child.stderr.on('data', (chunk) => {
      output += chunk;
    });
    child.on('error', (err) => fail(`could not start ${bin}: ${err.message}`));
    child.on('close', () => fail(`twostep exited (${exitInfo}) before it printed its URL`));
  }).catch(async (err) => {
    await stop();
    throw err;
  });

  return { url, port: Number(new URL(url).port), dataDir, logs, stop };
}

/**
 * `twostep <args>` on a running test server's data dir (same database and
 * key), as an operator would run it next to the server.
 * @param {{ dataDir: string }} server
 * @param {...string} args
 * @returns {string} its stdout
 */
export function twostepCli(server, ...args) {
  return execFileSync(resolveBinary(), args, {
    encoding: 'utf8',
    env: { ...serverBaseEnv(), TWOSTEP_DATA_DIR: server.dataDir },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

/**
 * Launch Debian's Chromium headless with a fresh profile directory.
 *
 * `options` are Playwright context options (viewport, isMobile, userAgent…);
 * with `baseURL` (a server's url) pages and their requests take paths.
 * @param {import('playwright-core').BrowserContextOptions} [options]
 * @returns {Promise<{ context: import('playwright-core').BrowserContext, page: import('playwright-core').Page, close: () => Promise<void> }>}
 */
export async function launchBrowser(options = {}) {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `${CHROMIUM_PATH} not found: install Debian's chromium ` +
        '(apt-get install -y --no-install-recommends chromium); ./scripts/test does this',
    );
  }
  const userDataDir = await mkdtemp(path.join(tmpdir(), 'twostep-e2e-chromium-'));
  let context;
  try {
    // Playwright refuses --user-data-dir in args, hence launchPersistentContext.
    context = await chromium.launchPersistentContext(userDataDir, {
      ...options,
      executablePath: CHROMIUM_PATH,
      headless: true,
      args: [
        '--headless',
        '--no-sandbox',
        '--disable-gpu',
        '--disable-quic',
        '--no-first-run',
        '--disable-background-networking',
        '--disable-component-update',
        '--disable-sync',
      ],
    });
  } catch (err) {
    await rm(userDataDir, { recursive: true, force: true });
    throw new Error(`could not launch ${CHROMIUM_PATH} with playwright-core: ${err.message}`, { cause: err });
  }
  const page = context.pages()[0] ?? (await context.newPage());
  page.setDefaultTimeout(15_000);
  page.setDefaultNavigationTimeout(30_000);
  let closed = false;
  const close = async () => {
    if (closed) return;
    closed = true;
    try {
      await context.close();
    } finally {
      await rm(userDataDir, { recursive: true, force: true });
    }
  };
  return { context, page, close };
}

/**
 * Full-page PNG to <repo>/target/e2e-screenshots/<name>.png; returns the path.
 * @param {import('playwright-core').Page} page
 * @param {string} name
 */
export async function screenshot(page, name) {
  await mkdir(SCREENSHOT_DIR, { recursive: true });
  const file = path.join(SCREENSHOT_DIR, `${name.replace(/[^A-Za-z0-9._-]+/g, '_')}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Decode the QR code(s) in a PNG (a Buffer, e.g. from locator.screenshot(), or
 * a file path) with zbarimg; returns the decoded texts.
 * @param {Buffer|string} png
 * @returns {Promise<string[]>}
 */
export async function decodeQr(png) {
  let file = png;
  let tmp;
  if (Buffer.isBuffer(png)) {
    tmp = await mkdtemp(path.join(tmpdir(), 'twostep-e2e-qr-'));
    file = path.join(tmp, 'qr.png');
    await writeFile(file, png);
  }
  try {
    const out = execFileSync('zbarimg', ['--quiet', '--raw', file], {
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    return out.split('\n').filter((line) => line.length > 0);
  } catch (err) {
    if (err.code === 'ENOENT') {
      throw new Error('zbarimg not found: install zbar-tools (apt-get install -y zbar-tools); ./scripts/test does this');
    }
    // zbarimg exits 4 when it finds no symbol.
    if (err.status === 4) return [];
    throw new Error(`zbarimg failed: ${err.stderr || err.message}`, { cause: err });
  } finally {
    if (tmp) await rm(tmp, { recursive: true, force: true });
  }
}

/** A unique, valid e-mail address for one test run. */
export function uniqueEmail(prefix = 'e2e') {
  return `${prefix}-${Date.now().toString(36)}-${randomBytes(4).toString('hex')}@example.com`;
}

/** A strong random password (not in any common-password list). */
export function strongPassword() {
  return `Tw0-${randomBytes(15).toString('base64url')}-x!`;
}

/**
 * Run a test body; when it throws, save a screenshot of every page and print
 * the server's output so the failure can be understood from the CI log alone.
 * @param {{ name: string, page?: import('playwright-core').Page, pages?: Record<string, import('playwright-core').Page>, server?: { logs: () => string } }} ctx
 *   `pages` by role (computer, phone, owner…); a single `page` is shot as `FAILED-<name>`
 * @param {() => Promise<void>} fn
 */
export async function withDiagnostics({ name, page, pages = {}, server }, fn) {
  try {
    await fn();
  } catch (err) {
    const lines = [`\n[e2e] test "${name}" failed.`];
    const shots = page ? [[`FAILED-${name}`, page]] : [];
    const roles = Object.entries(pages);
    for (const [role, p] of roles) shots.push([roles.length > 1 ? `FAILED-${name}-${role}` : `FAILED-${name}`, p]);
    for (const [shot, p] of shots) {
      if (p.isClosed()) continue;
      lines.push(`[e2e] page URL at failure${shots.length > 1 ? ` (${shot})` : ''}: ${p.url()}`);
      try {
        const file = await screenshot(p, shot);
        lines.push(`[e2e] screenshot: ${file}`);
      } catch (shotErr) {
        lines.push(`[e2e] (could not take a screenshot: ${shotErr.message})`);
      }
    }
    if (server) {
      lines.push('[e2e] twostep server output:', indent(server.logs() || '(nothing)'));
    }
    process.stderr.write(`${lines.join('\n')}\n`);
    throw err;
  }
}

function indent(text) {
  return text
    .split('\n')
    .map((line) => `    ${line}`)
    .join('\n');
}
