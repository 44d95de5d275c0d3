// Forward-auth in a real browser behind a real nginx (Debian nginx-light).
//
// nginx listens on one loopback port for two names under fa.localhost
// (Chromium resolves *.localhost to loopback): auth.fa.localhost is the
// twostep portal, app.fa.localhost a small app protected by `auth_request`.
// A person opens the app, is sent to sign in with password and TOTP, and
// lands back on the app, which received the Remote-* headers; a bypass path
// needs nothing, a deny path is refused, signing out ends access.

import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';

import { launchBrowser, screenshot, startServer, strongPassword, totpNow, uniqueEmail, withDiagnostics } from './lib/index.mjs';

const NGINX = ['/usr/sbin/nginx', '/usr/bin/nginx'].find((p) => existsSync(p));
const STEP_MS = 30_000;

let server;
let browser;
let nginx;
let upstream;
let dir;
let port;

const app = (p) => `http://app.fa.localhost:${port}${p}`;
const portal = (p) => `http://auth.fa.localhost:${port}${p}`;

async function freePort() {
  const s = net.createServer();
  await new Promise((resolve) => s.listen(0, '127.0.0.1', resolve));
  const { port: p } = s.address();
  await new Promise((resolve) => s.close(resolve));
  return p;
}

const RULES = `
[access]
default_policy = "deny"
cookie_domains = ["fa.localhost"]
[[access.rules]]
domain = ["app.fa.localhost"]
path = ["^/public/"]
policy = "bypass"
[[access.rules]]
domain = ["app.fa.localhost"]
path = ["^/admin"]
policy = "deny"
[[access.rules]]
domain = ["app.fa.localhost"]
policy = "two_factor"
`;

function nginxConf(twostepPort, upstreamPort) {
  return `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log info;
events {}
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  server {
    listen 127.0.0.1:${port};
    server_name auth.fa.localhost;
    location / {
      proxy_pass http://127.0.0.1:${twostepPort};
      proxy_set_header Host $http_host;
      proxy_set_header X-Forwarded-For $remote_addr;
    }
  }
  server {
    listen 127.0.0.1:${port};
    server_name app.fa.localhost;
    location = /internal/twostep-authz {
      internal;
      proxy_pass http://127.0.0.1:${twostepPort}/api/authz/auth-request;
      proxy_pass_request_body off;
      proxy_set_header Content-Length "";
      proxy_set_header X-Original-Method $request_method;
      proxy_set_header X-Original-URL $scheme://$http_host$request_uri;
      proxy_set_header X-Forwarded-For $remote_addr;
    }
    location / {
      auth_request /internal/twostep-authz;
      auth_request_set $twostep_user $upstream_http_remote_user;
      auth_request_set $twostep_groups $upstream_http_remote_groups;
      auth_request_set $twostep_location $upstream_http_location;
      error_page 401 = @twostep_sign_in;
      proxy_set_header Remote-User $twostep_user;
      proxy_set_header Remote-Groups $twostep_groups;
      proxy_pass http://127.0.0.1:${upstreamPort};
    }
    location @twostep_sign_in {
      if ($twostep_location) {
        return 302 $twostep_location;
      }
      return 401;
    }
  }
}
`;
}

before(async () => {
  assert.ok(NGINX, 'nginx not found: install nginx-light (apt-get install -y nginx-light); ./scripts/test does this');
  dir = await mkdtemp(path.join(tmpdir(), 'twostep-e2e-nginx-'));
  port = await freePort();
  await writeFile(path.join(dir, 'twostep.toml'), RULES);
  server = await startServer({
    env: {
      TWOSTEP_CONFIG: path.join(dir, 'twostep.toml'),
      TWOSTEP_PUBLIC_URL: portal(''),
      TWOSTEP_TRUSTED_PROXIES: '127.0.0.1',
    },
  });
  // The protected app: a page showing who the proxy said is asking.
  upstream = http.createServer((req, res) => {
    const user = req.headers['remote-user'] ?? '';
    res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
    res.end(`<!doctype html><title>App</title><h1>The app</h1><p id="path">${req.url}</p><p id="user">${user}</p>`);
  });
  await new Promise((resolve) => upstream.listen(0, '127.0.0.1', resolve));
  const conf = path.join(dir, 'nginx.conf');
  await writeFile(conf, nginxConf(server.port, upstream.address().port));
  execFileSync(NGINX, ['-t', '-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf], { stdio: 'pipe' });
  nginx = spawn(NGINX, ['-p', dir, '-e', path.join(dir, 'error.log'), '-c', conf], { stdio: 'ignore' });
  for (let i = 0; ; i++) {
    const up = await new Promise((resolve) => {
      const s = net.connect(port, '127.0.0.1', () => resolve(s.end() && true)).on('error', () => resolve(false));
    });
    if (up) break;
    assert.ok(i < 100, 'nginx did not start listening');
    await sleep(100);
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  nginx?.kill('SIGTERM');
  await new Promise((resolve) => upstream?.close(resolve) ?? resolve());
  await server?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** An account with an authenticator app, set up over the JSON API. */
async function accountWithTotp() {
  const email = uniqueEmail('fa');
  const password = strongPassword();
  const api = async (p, body, token) => {
    const headers = { 'content-type': 'application/json' };
    if (token) headers.authorization = `Bearer ${token}`;
    const r = await fetch(`${server.url}${p}`, { method: 'POST', headers, body: JSON.stringify(body) });
    assert.ok(r.ok, `${p}: ${r.status} ${await r.clone().text()}`);
    return r.json();
  };
  await api('/api/v1/accounts', { email, password });
  const { session_token: token } = await api('/api/v1/login', { email, password });
  const enrol = await api('/api/v1/me/totp', {}, token);
  const confirmedStep = Math.floor(Date.now() / STEP_MS);
  await api('/api/v1/me/totp/confirm', { enrollment_id: enrol.enrollment_id, code: totpNow(enrol.secret) }, token);
  return { email, password, secret: enrol.secret, confirmedStep };
}

test('a person goes through nginx to a protected app: sign-in with password and TOTP, and back', async () => {
  const { page } = browser;
  await withDiagnostics({ name: 'forward-auth-nginx', page, server }, async () => {
    const account = await accountWithTotp();

    // bypass: nothing asked.
    await page.goto(app('/public/about'));
    assert.equal(await page.locator('#path').textContent(), '/public/about');
    assert.equal(await page.locator('#user').textContent(), '');

    // The protected page sends the browser to the portal, with the way back.
    await page.goto(app('/reports?week=12'));
    assert.equal(new URL(page.url()).origin, portal(''));
    assert.equal(new URL(page.url()).pathname, '/login');
    await screenshot(page, 'forward-auth-01-sign-in');
    const form = page.locator('form#login-form');
    await form.locator('#email').fill(account.email);
    await form.locator('#password').fill(account.password);
    await Promise.all([page.waitForURL(/\/login\/verify/), form.getByRole('button', { name: 'Sign in' }).click()]);

    // A code from a step after the one that confirmed the app (codes are good once).
    const waitMs = (account.confirmedStep + 1) * STEP_MS - Date.now() + 1_000;
    if (waitMs > 0) await sleep(waitMs);
    const verify = page.locator('form#verify-form');
    await verify.locator('#code').fill(totpNow(account.secret));
    await Promise.all([page.waitForURL(app('/reports?week=12')), verify.getByRole('button', { name: 'Verify' }).click()]);
    assert.equal(await page.locator('#user').textContent(), account.email);
    assert.equal(await page.locator('#path').textContent(), '/reports?week=12');
    await screenshot(page, 'forward-auth-02-back-on-the-app');

    // deny: refused even signed in.
    const denied = await page.goto(app('/admin/settings'));
    assert.equal(denied.status(), 403);

    // Signing out at the portal ends access to the app.
    await page.goto(portal('/security'));
    await Promise.all([page.waitForURL(/\/login\?signed_out=1/), page.getByRole('button', { name: 'Sign out' }).first().click()]);
    await page.goto(app('/reports'));
    assert.equal(new URL(page.url()).pathname, '/login');
    assert.equal(new URL(page.url()).origin, portal(''));
  });
});
