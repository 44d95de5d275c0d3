// A relying party built on openid-client (not ours), driven by
// tests/api/oidc_interop.rs: discovery, the code flow with PKCE (S256),
// the token exchange (client_secret_basic), openid-client's own ID token
// validation (signature by the JWKS key, iss, aud, exp, iat, nonce,
// state), userinfo (its sub checked against the ID token's) and a
// refresh. The browser is played by fetch carrying the session cookie.
// Prints one JSON object.
//
// usage: node openid_client_rp.mjs ISSUER CLIENT_ID SECRET REDIRECT_URI SESSION CLOCK_SKEW

import * as client from 'openid-client';

const [issuer, clientId, secret, redirectUri, session, skew] = process.argv.slice(2);

// The test server runs on the tests' clock, ahead of this one by `skew`
// seconds; plain http is fine on loopback.
const config = await client.discovery(
  new URL(issuer),
  clientId,
  { client_secret: secret, [client.clockSkew]: Number(skew) },
  client.ClientSecretBasic(secret),
  { execute: [client.allowInsecureRequests] },
);
const verifier = client.randomPKCECodeVerifier();
const nonce = client.randomNonce();
const state = client.randomState();
const url = client.buildAuthorizationUrl(config, {
  redirect_uri: redirectUri,
  scope: 'openid email offline_access',
  code_challenge: await client.calculatePKCECodeChallenge(verifier),
  code_challenge_method: 'S256',
  nonce,
  state,
});
const browser = await fetch(url, { redirect: 'manual', headers: { cookie: `twostep_session=${session}` } });
if (browser.status !== 302) {
  throw new Error(`authorization answered ${browser.status}: ${(await browser.text()).slice(0, 300)}`);
}
const tokens = await client.authorizationCodeGrant(config, new URL(browser.headers.get('location')), {
  pkceCodeVerifier: verifier,
  expectedNonce: nonce,
  expectedState: state,
  idTokenExpected: true,
});
const claims = tokens.claims();
const info = await client.fetchUserInfo(config, tokens.access_token, claims.sub);
const refreshed = await client.refreshTokenGrant(config, tokens.refresh_token);
console.log(
  JSON.stringify({
    sub: claims.sub,
    acr: claims.acr,
    amr: claims.amr,
    email: claims.email,
    userinfo_sub: info.sub,
    refreshed: Boolean(refreshed.access_token) && refreshed.refresh_token !== tokens.refresh_token,
  }),
);
