"""A relying party built on authlib (not ours), driven by tests/api/oidc_interop.rs.

Discovery, the authorization code flow with PKCE (S256), the token
exchange with client_secret_basic, the ID token validated by authlib's
own CodeIDToken rules against our JWKS (signature, iss, aud, nonce,
at_hash), userinfo, and a refresh. The browser is played by `requests`
carrying the twostep session cookie. Prints one JSON object.
"""

import json
import sys

import requests
from authlib.integrations.requests_client import OAuth2Session
from authlib.jose import JsonWebKey, jwt
from authlib.oidc.core import CodeIDToken


def main():
    issuer, client_id, secret, redirect_uri, session_cookie = sys.argv[1:6]
    meta = requests.get(issuer + "/.well-known/openid-configuration", timeout=10).json()
    assert meta["issuer"] == issuer, meta
    client = OAuth2Session(
        client_id,
        secret,
        scope="openid email offline_access",
        redirect_uri=redirect_uri,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic",
    )
    verifier = "authlib-" + "x" * 50
    nonce = "authlib-nonce"
    url, state = client.create_authorization_url(meta["authorization_endpoint"], nonce=nonce, code_verifier=verifier)
    browser = requests.get(url, cookies={"twostep_session": session_cookie}, allow_redirects=False, timeout=10)
    assert browser.status_code == 302, (browser.status_code, browser.text[:300])
    callback = browser.headers["Location"]
    token = client.fetch_token(
        meta["token_endpoint"], authorization_response=callback, code_verifier=verifier, state=state
    )
    keys = JsonWebKey.import_key_set(requests.get(meta["jwks_uri"], timeout=10).json())
    claims = jwt.decode(
        token["id_token"],
        keys,
        claims_cls=CodeIDToken,
        claims_options={"iss": {"essential": True, "value": issuer}},
        claims_params={"nonce": nonce, "client_id": client_id, "access_token": token["access_token"]},
    )
    # The server runs on the tests' clock: validate at its time.
    claims.validate(now=claims["iat"])
    info = client.get(meta["userinfo_endpoint"]).json()
    refreshed = client.refresh_token(meta["token_endpoint"], refresh_token=token["refresh_token"])
    print(
        json.dumps(
            {
                "sub": claims["sub"],
                "acr": claims["acr"],
                "amr": claims["amr"],
                "email": claims.get("email"),
                "userinfo_sub": info["sub"],
                "refreshed": bool(refreshed.get("access_token")) and refreshed["refresh_token"] != token["refresh_token"],
            }
        )
    )


if __name__ == "__main__":
    main()
