// The authenticator app of a story's user: TOTP codes from oathtool, an
// independent implementation (RFC 6238, SHA-1, 6 digits, 30 s step).
//
// The server refuses any code whose step is not above the last one it
// accepted (enrolment included), so an Authenticator remembers the step of
// the last code it gave out and waits for the next step before another.

import { execFileSync } from 'node:child_process';
import { setTimeout as sleep } from 'node:timers/promises';
import assert from 'node:assert/strict';

export const STEP_MS = 30_000;

const stepOf = (ms) => Math.floor(ms / STEP_MS);

function oathtool(args) {
  try {
    return execFileSync('oathtool', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    if (err.code === 'ENOENT') {
      throw new Error('oathtool not found: install it (apt-get install -y oathtool); ./scripts/test does this');
    }
    throw new Error(`oathtool ${args[0]} … failed: ${err.stderr || err.message}`, { cause: err });
  }
}

/**
 * The current TOTP code for a base32 secret.
 * @param {string} secretBase32
 * @returns {string} six digits
 */
export function totpNow(secretBase32) {
  const secret = String(secretBase32).replace(/\s+/g, '');
  const out = oathtool(['--totp', '-b', secret]);
  const code = out.trim();
  if (!/^\d{6}$/.test(code)) {
    throw new Error(`oathtool printed ${JSON.stringify(out)}, expected a 6-digit code`);
  }
  return code;
}

export class Authenticator {
  /** @param {string} secret Base32, spaces allowed */
  constructor(secret) {
    this.secret = String(secret).replace(/\s+/g, '');
    /** The 30 s step of the last code given out (and so spent). */
    this.lastStep = undefined;
    /** @type {string[]} the recovery codes shown at enrolment, "xxxx-xxxx-xxxx-xxxx" */
    this.recoveryCodes = [];
  }

  /**
   * A code whose step is above the last one given out, waiting for the next
   * step to begin (plus a second of margin) when needed.
   * @returns {Promise<string>}
   */
  async next() {
    for (;;) {
      if (this.lastStep !== undefined && stepOf(Date.now()) <= this.lastStep) {
        const waitMs = (this.lastStep + 1) * STEP_MS - Date.now() + 1_000;
        process.stderr.write(`[e2e] waiting ${(waitMs / 1000).toFixed(1)} s for a new TOTP time step\n`);
        await sleep(waitMs);
      }
      const before = stepOf(Date.now());
      const code = totpNow(this.secret);
      // A step boundary between the two clock reads leaves the code's step unknown: try again.
      if (stepOf(Date.now()) === before) {
        this.lastStep = before;
        return code;
      }
    }
  }

  /** A 6-digit code that matches none of the steps the server could accept now (T-2 .. T+2). */
  certainlyWrong() {
    const start = Math.floor(Date.now() / 1000) - 2 * 30;
    const out = oathtool(['--totp', '-b', '-w', '4', '-N', `@${start}`, this.secret]);
    const nearby = new Set(out.split('\n').filter(Boolean));
    assert.ok(nearby.size >= 5, `oathtool printed ${JSON.stringify(out)}`);
    const wrong = ['000000', '111111', '222222', '333333', '444444', '555555'].find((c) => !nearby.has(c));
    assert.ok(wrong);
    return wrong;
  }
}
