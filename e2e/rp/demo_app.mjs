// A tiny relying party for the browser tests: a web app that signs its
// users in through twostep with openid-client (not ours), and shows what
// the ID token says. One visitor at a time (its state is in memory).

import { createServer } from 'node:http';

import * as client from 'openid-client';

const escape = (s) => String(s).replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]);

/**
 * Starts the app on a free loopback port. `register(redirectUri)` returns
 * `{ client_id, client_secret }` (the test registers it with twostep).
 * @param {{ issuer: string, name: string, register: (redirectUri: string) => { client_id: string, client_secret: string } }} options
 */
export async function startDemoApp({ issuer, name, register }) {
  const server = createServer();
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${server.address().port}`;
  const creds = register(`${url}/callback`);
  const config = await client.discovery(new URL(issuer), creds.client_id, creds.client_secret, undefined, {
    execute: [client.allowInsecureRequests],
  });
  let pending;
  server.on('request', async (req, res) => {
    const here = new URL(req.url, url);
    try {
      if (here.pathname === '/login') {
        pending = {
          verifier: client.randomPKCECodeVerifier(),
          state: client.randomState(),
          nonce: client.randomNonce(),
        };
        const to = client.buildAuthorizationUrl(config, {
          redirect_uri: `${url}/callback`,
          scope: 'openid email',
          code_challenge: await client.calculatePKCECodeChallenge(pending.verifier),
          code_challenge_method: 'S256',
          state: pending.state,
          nonce: pending.nonce,
        });
        res.writeHead(302, { location: to.href }).end();
      } else if (here.pathname === '/callback') {
        const tokens = await client.authorizationCodeGrant(config, here, {
          pkceCodeVerifier: pending.verifier,
          expectedState: pending.state,
          expectedNonce: pending.nonce,
          idTokenExpected: true,
        });
        const c = tokens.claims();
        res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(
          `<!doctype html><title>${escape(name)}</title><main><h1>${escape(name)}</h1>` +
            `<p data-testid="who">${escape(c.email)}</p><p data-testid="acr">${escape(c.acr)}</p>` +
            `<p data-testid="amr">${escape((c.amr ?? []).join(' '))}</p></main>`,
        );
      } else {
        res.writeHead(200, { 'content-type': 'text/html' }).end(`<a href="/login">Sign in to ${escape(name)}</a>`);
      }
    } catch (err) {
      res.writeHead(500, { 'content-type': 'text/plain' }).end(`demo app: ${err.message}`);
    }
  });
  return { url, stop: () => new Promise((resolve) => server.close(resolve)) };
}
