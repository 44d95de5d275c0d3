//! The OpenID Connect provider (issue 17) over HTTP, on SQLite and
//! PostgreSQL: clients registered with the shipped binary, the code flow
//! with PKCE from discovery to userinfo and refresh, the ID token checked
//! against the JWKS, and each refusal the specs name.

use data_encoding::BASE64URL_NOPAD;
use serde_json::Value;
use sha2::{Digest, Sha256};
use twostep_testkit::{Resp, TestApp, User, both_backends, csrf_of};

use crate::admin::cli;

pub(crate) struct Client {
    pub id: String,
    pub secret: Option<String>,
    pub redirect: String,
}

/// Registers a client with `twostep oidc client add … --json`.
pub(crate) async fn register(app: &TestApp, extra: &[&str]) -> Client {
    let redirect = "http://127.0.0.1:9/callback".to_owned();
    let mut args = vec!["oidc", "client", "add", "Test app", "--redirect-uri", &redirect, "--json"];
    args.extend_from_slice(extra);
    let (ok, out, err) = cli(app, &args).await;
    assert!(ok, "{out}{err}");
    let v: Value = serde_json::from_str(out.trim()).unwrap_or_else(|e| panic!("{e}: {out}"));
    assert_eq!(v.as_object().map(serde_json::Map::len), Some(2), "exactly client_id and client_secret: {out}");
    Client {
        id: v["client_id"].as_str().expect("id").to_owned(),
        secret: v["client_secret"].as_str().map(str::to_owned),
        redirect,
    }
}

pub(crate) fn pkce() -> (String, String) {
    let verifier = format!("v{}", uuid::Uuid::new_v4().simple()).repeat(2);
    let challenge = BASE64URL_NOPAD.encode(&Sha256::digest(verifier.as_bytes()));
    (verifier, challenge)
}

pub(crate) fn authorize_path(c: &Client, challenge: &str, extra: &[(&str, &str)]) -> String {
    let mut q = vec![
        ("response_type", "code"),
        ("client_id", c.id.as_str()),
        ("redirect_uri", c.redirect.as_str()),
        ("scope", "openid email offline_access"),
        ("state", "st-1"),
        ("nonce", "n-1"),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ];
    for (k, v) in extra {
        q.retain(|(qk, _)| qk != k);
        if !v.is_empty() {
            q.push((k, v));
        }
    }
    format!("/oidc/authorize?{}", serde_urlencoded::to_string(q).expect("query"))
}

/// The query parameters of a redirect to the client.
pub(crate) fn params_of(location: &str) -> Vec<(String, String)> {
    let url = url::Url::parse(location).unwrap_or_else(|_| panic!("not a URL: {location:?}"));
    url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect()
}

pub(crate) fn param(location: &str, name: &str) -> Option<String> {
    params_of(location).into_iter().find(|(k, _)| k == name).map(|(_, v)| v)
}

/// A code for `user`'s session through the authorization endpoint,
/// consenting when asked.
pub(crate) async fn code_for(app: &TestApp, token: &str, c: &Client, challenge: &str) -> String {
    let (status, location, body) = app.page(&authorize_path(c, challenge, &[]), Some(token)).await;
    let location = if status == 200 {
        assert!(body.contains("consent-form"), "{body}");
        let mut form: Vec<(String, String)> = Vec::new();
        let consent = body.split("id=\"consent-form\"").nth(1).expect("the consent form");
        for part in consent.split("<input type=\"hidden\" name=\"").skip(1) {
            let name = part.split('"').next().expect("name").to_owned();
            let value = part.split("value=\"").nth(1).and_then(|v| v.split('"').next()).expect("value");
            form.push((name, value.replace("&amp;", "&").replace("&#x2f;", "/").replace("&#x3a;", ":")));
        }
        form.push(("decision".into(), "allow".into()));
        let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        assert!(!csrf_of(&body).is_empty());
        let (status, location, body) = app.form_post("/oidc/consent", token, &pairs).await;
        assert_eq!(status, 302, "{pairs:?} {body}");
        location
    } else {
        assert_eq!(status, 302, "{body}");
        location
    };
    assert!(location.starts_with(&c.redirect), "{location}");
    assert_eq!(param(&location, "state").as_deref(), Some("st-1"));
    assert_eq!(param(&location, "iss").as_deref(), Some(app.url.as_str()));
    param(&location, "code").unwrap_or_else(|| panic!("no code in {location}"))
}

pub(crate) fn token_request(
    http: &reqwest::Client,
    base: &str,
    c: &Client,
    form: &[(&str, &str)],
) -> reqwest::RequestBuilder {
    let mut r = http.post(format!("{base}/oidc/token")).form(form);
    if let Some(secret) = &c.secret {
        r = r.basic_auth(&c.id, Some(secret));
    } else {
        r = r.form(&[form, &[("client_id", c.id.as_str())]].concat());
    }
    r
}

pub(crate) async fn exchange(app: &TestApp, c: &Client, code: &str, verifier: &str) -> Resp {
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", &c.redirect),
        ("code_verifier", verifier),
    ];
    Resp::from(token_request(&app.http, &app.url, c, &form).send().await.expect("token")).await
}

/// A session that proved the password and a TOTP code.
pub(crate) async fn two_factor_session(app: &TestApp) -> (User, String) {
    let user = app.user_with_totp().await;
    let code = app.code(&user.secret, 0);
    let token = app.sign_in_with(&user, "totp", &code).await.assert_status(200).str("session_token");
    app.clock.advance(30);
    (user, token)
}

fn set_cookie(r: &reqwest::Response, name: &str) -> Option<String> {
    r.headers().get_all("set-cookie").iter().filter_map(|v| v.to_str().ok()).find_map(|c| {
        c.strip_prefix(&format!("{name}="))
            .and_then(|rest| rest.split(';').next())
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    })
}

/// A password-only session of an account with 2FA: the browser was
/// remembered at a two-factor sign-in, then signs in again with it.
async fn remembered_session(app: &TestApp, user: &User) -> String {
    let http = reqwest::Client::builder()
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .expect("client");
    let url = |p: &str| format!("{}{p}", app.url);
    let csrf = csrf_of(&http.get(url("/login")).send().await.expect("page").text().await.expect("body"));
    let creds = [("csrf", csrf.as_str()), ("email", &user.email), ("password", &user.password)];
    let r = http.post(url("/login")).header("origin", &app.url).form(&creds).send().await.expect("login");
    assert_eq!(r.status(), 303);
    let code = app.code(&user.secret, 0);
    let verify = [("csrf", csrf.as_str()), ("method", "totp"), ("code", &code), ("remember", "on")];
    let r = http.post(url("/login/verify")).header("origin", &app.url).form(&verify).send().await.expect("verify");
    assert_eq!(r.status(), 303);
    assert!(set_cookie(&r, "twostep_device").is_some(), "remembered");
    app.clock.advance(30);
    let r = http.post(url("/login")).header("origin", &app.url).form(&creds).send().await.expect("login again");
    assert_eq!(r.status(), 303);
    set_cookie(&r, "twostep_session").expect("a session without a code")
}

pub(crate) fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("payload");
    serde_json::from_slice(&BASE64URL_NOPAD.decode(payload.as_bytes()).expect("b64")).expect("json")
}

/// The ID token verified with the key the JWKS publishes under its `kid`.
async fn verified(app: &TestApp, jwt: &str, aud: &str) -> Value {
    let header = jsonwebtoken::decode_header(jwt).expect("header");
    let jwks: jsonwebtoken::jwk::JwkSet =
        app.http.get(format!("{}/oidc/jwks", app.url)).send().await.expect("jwks").json().await.expect("json");
    let jwk = jwks.find(header.kid.as_deref().expect("kid")).expect("the kid is published");
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&[aud]);
    v.set_issuer(&[&app.url]);
    // The server's clock is the test's fake one.
    v.validate_exp = false;
    jsonwebtoken::decode::<Value>(jwt, &jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key"), &v)
        .expect("valid signature")
        .claims
}

both_backends!(
    code_flow_from_discovery_to_refresh,
    refusals_name_the_spec_error,
    organisations_and_two_factor,
    apps_with_access_are_listed_and_revoked,
    tokens_end_with_the_session_and_an_admin_reset,
    set_up_first_then_back_to_the_app,
    discovery_and_cors
);

/// Discovery names every endpoint; a browser-only app may call the token
/// endpoint from its own origin (CORS, without credentials) while the
/// endpoints for servers stay closed.
async fn discovery_and_cors(app: TestApp) {
    let d = app.get("/.well-known/openid-configuration", None).await.assert_status(200);
    assert_eq!(d.str("issuer"), app.url);
    for (k, v) in
        [("token_endpoint", "/oidc/token"), ("jwks_uri", "/oidc/jwks"), ("userinfo_endpoint", "/oidc/userinfo")]
    {
        assert_eq!(d.str(k), format!("{}{v}", app.url));
    }
    assert_eq!(d.body["code_challenge_methods_supported"], serde_json::json!(["S256"]));
    assert!(d.body["id_token_signing_alg_values_supported"].as_array().expect("algs").contains(&"RS256".into()));
    let preflight = |path: &str| {
        app.http
            .request(reqwest::Method::OPTIONS, format!("{}{path}", app.url))
            .header("origin", "https://spa.example")
            .header("access-control-request-method", "POST")
            .header("access-control-request-headers", "content-type")
            .send()
    };
    let open = preflight("/oidc/token").await.expect("preflight");
    assert_eq!(open.headers().get("access-control-allow-origin").map(|v| v.to_str().ok()), Some(Some("*")));
    assert!(open.headers().get("access-control-allow-credentials").is_none());
    let closed = preflight("/oidc/introspect").await.expect("preflight");
    assert!(closed.headers().get("access-control-allow-origin").is_none());
}

async fn code_flow_from_discovery_to_refresh(app: TestApp) {
    let c = register(&app, &[]).await;
    let (user, session) = two_factor_session(&app).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &session, &c, &challenge).await;
    let t = exchange(&app, &c, &code, &verifier).await.assert_status(200);
    assert_eq!(t.header("cache-control"), "no-store");
    assert_eq!(t.str("token_type"), "Bearer");
    let id = verified(&app, &t.str("id_token"), &c.id).await;
    assert_eq!(id["nonce"], "n-1");
    assert_eq!(id["acr"], "urn:twostep:2fa");
    assert_eq!(id["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(id["email"], user.email.as_str());
    assert_ne!(id["sub"], user.email.as_str());
    let at_hash = BASE64URL_NOPAD.encode(&Sha256::digest(t.str("access_token").as_bytes())[..16]);
    assert_eq!(id["at_hash"], at_hash.as_str());
    assert!(id["auth_time"].as_i64().is_some() && id["iat"].as_i64() < id["exp"].as_i64());

    let info = app.get("/oidc/userinfo", Some(&t.str("access_token"))).await.assert_status(200);
    assert_eq!(info.body["sub"], id["sub"]);
    assert_eq!(info.str("email"), user.email);
    let posted = app
        .http
        .post(format!("{}/oidc/userinfo", app.url))
        .form(&[("access_token", t.str("access_token"))])
        .send()
        .await
        .expect("post");
    assert_eq!(posted.status(), 200);

    // A second sign-in at the same app: consent is remembered.
    let (verifier2, challenge2) = pkce();
    let (status, location, _) = app.page(&authorize_path(&c, &challenge2, &[]), Some(&session)).await;
    assert_eq!(status, 302, "consent remembered");
    let code2 = param(&location, "code").expect("code");
    exchange(&app, &c, &code2, &verifier2).await.assert_status(200);

    // Refresh with client_secret_post; the old token then revokes the family.
    let refresh = t.str("refresh_token");
    let secret = c.secret.clone().expect("secret");
    let post = |rt: String| {
        let form = [
            ("grant_type", "refresh_token".to_owned()),
            ("refresh_token", rt),
            ("client_id", c.id.clone()),
            ("client_secret", secret.clone()),
        ];
        app.http.post(format!("{}/oidc/token", app.url)).form(&form).send()
    };
    let r2 = Resp::from(post(refresh.clone()).await.expect("refresh")).await.assert_status(200);
    assert!(claims(&r2.str("id_token")).get("nonce").is_none());
    let reuse = Resp::from(post(refresh).await.expect("reuse")).await.assert_status(400);
    assert_eq!(reuse.body["error"], "invalid_grant");
    let newer = Resp::from(post(r2.str("refresh_token")).await.expect("newer")).await.assert_status(400);
    assert_eq!(newer.body["error"], "invalid_grant", "the whole family is revoked");
    app.get("/oidc/userinfo", Some(&r2.str("access_token"))).await.assert_status(401);

    // Introspection and revocation (RFC 7662, RFC 7009).
    let (verifier3, challenge3) = pkce();
    let code3 = code_for(&app, &session, &c, &challenge3).await;
    let t3 = exchange(&app, &c, &code3, &verifier3).await.assert_status(200);
    let introspect = |tok: String| {
        app.http
            .post(format!("{}/oidc/introspect", app.url))
            .basic_auth(&c.id, Some(&secret))
            .form(&[("token", tok)])
            .send()
    };
    let active = Resp::from(introspect(t3.str("access_token")).await.expect("introspect")).await.assert_status(200);
    assert_eq!(active.body["active"], true);
    assert_eq!(active.body["sub"], id["sub"]);
    let revoke = app
        .http
        .post(format!("{}/oidc/revoke", app.url))
        .basic_auth(&c.id, Some(&secret))
        .form(&[("token", t3.str("refresh_token"))])
        .send()
        .await
        .expect("revoke");
    assert_eq!(revoke.status(), 200);
    let gone = Resp::from(introspect(t3.str("access_token")).await.expect("introspect")).await.assert_status(200);
    assert_eq!(gone.body["active"], false, "revoking the refresh token ends its access tokens");

    // RP-initiated logout with the ID token as hint, back to a registered URI only.
    let (status, _, body) = app
        .page(&format!("/oidc/logout?post_logout_redirect_uri={}", "https%3A%2F%2Fevil.example%2F"), Some(&session))
        .await;
    assert_eq!(status, 400, "{body}");
    let hint = t.str("id_token");
    let (status, location, _) = app.page(&format!("/oidc/logout?id_token_hint={hint}"), Some(&session)).await;
    assert_eq!((status, location.as_str()), (303, "/login?signed_out=1"));
    app.get("/api/v1/me", Some(&session)).await.assert_status(401);
}

async fn refusals_name_the_spec_error(app: TestApp) {
    let c = register(&app, &["--skip-consent"]).await;
    let (_, session) = two_factor_session(&app).await;
    let (verifier, challenge) = pkce();

    // An unregistered redirect URI is never redirected to.
    let path = authorize_path(&c, &challenge, &[("redirect_uri", "http://127.0.0.1:9/other")]);
    let (status, location, body) = app.page(&path, Some(&session)).await;
    assert_eq!((status, location.as_str()), (400, ""), "{body}");
    assert!(body.contains("not registered"));
    // Missing PKCE, and the plain method: invalid_request, with the state.
    for extra in [
        [("code_challenge", ""), ("code_challenge_method", "")],
        [("code_challenge", verifier.as_str()), ("code_challenge_method", "plain")],
    ] {
        let (status, location, _) = app.page(&authorize_path(&c, &challenge, &extra), Some(&session)).await;
        assert_eq!(status, 302);
        assert_eq!(param(&location, "error").as_deref(), Some("invalid_request"), "{location}");
        assert_eq!(param(&location, "state").as_deref(), Some("st-1"));
    }
    // prompt=none without a session.
    let (status, location, _) = app.page(&authorize_path(&c, &challenge, &[("prompt", "none")]), None).await;
    assert_eq!(status, 302);
    assert_eq!(param(&location, "error").as_deref(), Some("login_required"));
    // Without a session and without prompt=none: the sign-in page.
    let (status, location, _) = app.page(&authorize_path(&c, &challenge, &[]), None).await;
    assert_eq!((status, location.as_str()), (303, "/login"));

    // A wrong verifier.
    let code = code_for(&app, &session, &c, &challenge).await;
    let wrong = exchange(&app, &c, &code, &pkce().0).await.assert_status(400);
    assert_eq!(wrong.body["error"], "invalid_grant");
    // A wrong secret.
    let bad = Client { secret: Some("not-the-secret".into()), id: c.id.clone(), redirect: c.redirect.clone() };
    let refused = exchange(&app, &bad, &code, &verifier).await.assert_status(401);
    assert_eq!(refused.body["error"], "invalid_client");
    assert!(refused.header("www-authenticate").starts_with("Basic"));
    // The right one; then the replay, which revokes what the code issued.
    let t = exchange(&app, &c, &code, &verifier).await.assert_status(200);
    app.get("/oidc/userinfo", Some(&t.str("access_token"))).await.assert_status(200);
    let replay = exchange(&app, &c, &code, &verifier).await.assert_status(400);
    assert_eq!(replay.body["error"], "invalid_grant");
    app.get("/oidc/userinfo", Some(&t.str("access_token"))).await.assert_status(401);

    // An expired code (60 s).
    let code = code_for(&app, &session, &c, &challenge).await;
    app.clock.advance(61);
    let late = exchange(&app, &c, &code, &verifier).await.assert_status(400);
    assert_eq!(late.body["error"], "invalid_grant");
    // A grant type we do not offer; a body that is not a form.
    let implicit = app
        .http
        .post(format!("{}/oidc/token", app.url))
        .basic_auth(&c.id, c.secret.as_ref())
        .form(&[("grant_type", "password")])
        .send()
        .await
        .expect("post");
    assert_eq!(Resp::from(implicit).await.assert_status(400).body["error"], "unsupported_grant_type");
    let json =
        app.http.post(format!("{}/oidc/token", app.url)).json(&serde_json::json!({"x": 1})).send().await.expect("post");
    assert_eq!(Resp::from(json).await.assert_status(400).body["error"], "invalid_request");
}

async fn organisations_and_two_factor(app: TestApp) {
    let (owner, owner_session) = two_factor_session(&app).await;
    let org = app
        .post("/api/v1/orgs", &serde_json::json!({"name": "Acme"}), Some(&owner.token))
        .await
        .assert_status(201)
        .str("id");
    let members_only = register(&app, &["--skip-consent", "--org", &org]).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &owner_session, &members_only, &challenge).await;
    exchange(&app, &members_only, &code, &verifier).await.assert_status(200);
    let (_, stranger) = two_factor_session(&app).await;
    let (status, location, _) = app.page(&authorize_path(&members_only, &challenge, &[]), Some(&stranger)).await;
    assert_eq!(status, 302);
    assert_eq!(param(&location, "error").as_deref(), Some("access_denied"));

    // A password-only session (a remembered browser) at a client that
    // demands two factors is sent to prove one (step-up), never given a
    // 1fa token.
    let strict = register(&app, &["--skip-consent", "--require-two-factor"]).await;
    let user = app.user_with_totp().await;
    let one_factor = remembered_session(&app, &user).await;
    let (status, location, _) = app.page(&authorize_path(&strict, &challenge, &[]), Some(&one_factor)).await;
    assert_eq!(status, 303);
    assert!(location.starts_with("/reauth?next=%2Foidc%2Fauthorize"), "{location}");
    let (status, location, _) =
        app.page(&authorize_path(&strict, &challenge, &[("prompt", "none")]), Some(&one_factor)).await;
    assert_eq!(status, 302);
    assert_eq!(param(&location, "error").as_deref(), Some("interaction_required"));
    // acr_values asks the same of an ordinary client.
    let lax = register(&app, &["--skip-consent"]).await;
    let (status, location, _) =
        app.page(&authorize_path(&lax, &challenge, &[("acr_values", "urn:twostep:2fa")]), Some(&one_factor)).await;
    assert_eq!(status, 303, "{location}");
    // An account without 2FA is sent to set it up first.
    let plain = app.user().await;
    let (status, location, _) = app.page(&authorize_path(&strict, &challenge, &[]), Some(&plain.token)).await;
    assert_eq!((status, location.as_str()), (303, "/security?notice=app_requires_2fa"));
    // A 1fa session is given what it proved, truthfully.
    let (status, location, _) = app.page(&authorize_path(&lax, &challenge, &[]), Some(&one_factor)).await;
    assert_eq!(status, 302);
    let t = exchange(&app, &lax, &param(&location, "code").expect("code"), &verifier).await.assert_status(200);
    let id = claims(&t.str("id_token"));
    assert_eq!(id["acr"], "urn:twostep:1fa");
    assert_eq!(id["amr"], serde_json::json!(["pwd"]));
}

/// A client declared in the configuration (`[[oidc.clients]]`) works with
/// the secret whose SHA-256 the file holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_declared_client_signs_in() {
    use twostep_domain::oidc::clients::{DeclaredClient, NewClient};
    let secret = "declared-secret-declared-secret-declared-1";
    let declared = DeclaredClient {
        client: NewClient {
            name: "Grafana".into(),
            id: Some("grafana".into()),
            redirect_uris: vec!["http://127.0.0.1:9/callback".into()],
            skip_consent: true,
            ..NewClient::default()
        },
        secret_sha256: Some(twostep_domain::oidc::rules::sha256_hex(secret)),
    };
    let app = TestApp::spawn_with(twostep_testkit::Db::Sqlite, |s| s.oidc_clients = vec![declared]).await;
    let c =
        Client { id: "grafana".into(), secret: Some(secret.into()), redirect: "http://127.0.0.1:9/callback".into() };
    let (_, session) = two_factor_session(&app).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &session, &c, &challenge).await;
    exchange(&app, &c, &code, &verifier).await.assert_status(200);
    let (ok, out, err) = cli(&app, &["oidc", "client", "list", "--json"]).await;
    assert!(ok && out.contains("\"grafana\""), "{out}{err}");
}

async fn apps_with_access_are_listed_and_revoked(app: TestApp) {
    let c = register(&app, &[]).await;
    let (_, session) = two_factor_session(&app).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &session, &c, &challenge).await;
    let t = exchange(&app, &c, &code, &verifier).await.assert_status(200);
    let (status, _, body) = app.page("/security/apps", Some(&session)).await;
    assert_eq!(status, 200);
    assert!(body.contains("Test app") && body.contains(&format!("/security/apps/{}/revoke", c.id)), "{body}");
    let (status, location, _) =
        app.form_post(&format!("/security/apps/{}/revoke", c.id), &session, &[("csrf", &csrf_of(&body))]).await;
    assert_eq!((status, location.as_str()), (303, "/security/apps?revoked=1"));
    app.get("/oidc/userinfo", Some(&t.str("access_token"))).await.assert_status(401);
    let refresh = t.str("refresh_token");
    let form = [("grant_type", "refresh_token"), ("refresh_token", refresh.as_str())];
    let refused = Resp::from(token_request(&app.http, &app.url, &c, &form).send().await.expect("refresh")).await;
    assert_eq!(refused.body["error"], "invalid_grant");
    // Consent is asked again.
    let (status, _, body) = app.page(&authorize_path(&c, &challenge, &[]), Some(&session)).await;
    assert!(status == 200 && body.contains("consent-form"));

    // The operator's list of apps: administrators only.
    let (status, _, _) = app.page("/admin/oidc", Some(&session)).await;
    assert_eq!(status, 403);
    let (admin, _) = crate::admin::admin(&app).await;
    let code = app.code(&admin.secret, 0);
    let admin_session = app.sign_in_with(&admin, "totp", &code).await.assert_status(200).str("session_token");
    let (status, _, body) = app.page("/admin/oidc", Some(&admin_session)).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains(&c.id) && body.contains("confidential"), "{body}");
}

/// An app's tokens last as long as the twostep session they came from:
/// signing out, or an administrator's 2FA reset (which ends every session),
/// ends the refresh token and the access token, and says so in the log.
async fn tokens_end_with_the_session_and_an_admin_reset(app: TestApp) {
    let c = register(&app, &["--skip-consent"]).await;
    let (user, session) = two_factor_session(&app).await;
    let tokens_of = |session: String| {
        let (app, c) = (&app, &c);
        async move {
            let (verifier, challenge) = pkce();
            let code = code_for(app, &session, c, &challenge).await;
            exchange(app, c, &code, &verifier).await.assert_status(200)
        }
    };
    let refresh = |rt: String| {
        let form = [("grant_type", "refresh_token".to_owned()), ("refresh_token", rt)];
        let form: Vec<(&str, &str)> = form.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let r = token_request(&app.http, &app.url, &c, &form);
        async move { Resp::from(r.send().await.expect("refresh")).await }
    };

    // Signing out.
    let t = tokens_of(session.clone()).await;
    let kept = tokens_of(user.token.clone()).await;
    app.post("/api/v1/logout", &serde_json::json!({}), Some(&session)).await.assert_status(204);
    app.get("/oidc/userinfo", Some(&t.str("access_token"))).await.assert_status(401);
    let ended = refresh(t.str("refresh_token")).await.assert_status(400);
    assert_eq!(ended.body["error"], "invalid_grant", "{}", ended.text);
    // The other session's grant lives on.
    let rotated = refresh(kept.str("refresh_token")).await.assert_status(200);
    app.get("/oidc/userinfo", Some(&rotated.str("access_token"))).await.assert_status(200);
    let log = app.get("/api/v1/me/security-log", Some(&user.token)).await.assert_status(200);
    assert!(log.text.contains("oidc_grant_revoked"), "{}", log.text);

    // An administrator's reset ends every session, so every app's grant.
    let (admin, _) = crate::admin::admin(&app).await;
    let id = app.get("/api/v1/me", Some(&user.token)).await.assert_status(200).str("id");
    app.post(&format!("/api/v1/admin/users/{id}/reset-2fa"), &serde_json::json!({}), Some(&admin.token))
        .await
        .assert_status(204);
    app.get("/oidc/userinfo", Some(&rotated.str("access_token"))).await.assert_status(401);
    refresh(rotated.str("refresh_token")).await.assert_status(400);

    // A disabled account gets nothing more from any app.
    let (other, other_session) = two_factor_session(&app).await;
    let t = tokens_of(other_session).await;
    let other_id = app.get("/api/v1/me", Some(&other.token)).await.assert_status(200).str("id");
    app.post(&format!("/api/v1/admin/users/{other_id}/disable"), &serde_json::json!({}), Some(&admin.token))
        .await
        .assert_status(204);
    app.get("/oidc/userinfo", Some(&t.str("access_token"))).await.assert_status(401);
    assert_eq!(refresh(t.str("refresh_token")).await.assert_status(400).body["error"], "invalid_grant");
}

/// `login_hint` fills the sign-in form; an account without 2FA at an app
/// that demands it sets one up, and saving the recovery codes sends the
/// person back to the app's authorization request.
async fn set_up_first_then_back_to_the_app(app: TestApp) {
    let strict = register(&app, &["--skip-consent", "--require-two-factor"]).await;
    let (verifier, challenge) = pkce();
    let plain = app.user().await;

    let hinted = authorize_path(&strict, &challenge, &[("login_hint", &plain.email)]);
    let (status, location, _) = app.page(&hinted, None).await;
    assert_eq!(status, 303);
    let (status, _, body) = app.page(&location, None).await;
    assert_eq!(status, 200, "{location}");
    assert!(body.contains(&format!("value=\"{}\"", plain.email)), "the e-mail field is filled: {body}");
    let (_, location, _) =
        app.page(&authorize_path(&strict, &challenge, &[("login_hint", "not an address")]), None).await;
    assert_eq!(location, "/login", "a hint that is not an address is ignored");

    let get =
        |path: String, cookies: String| app.http.get(format!("{}{path}", app.url)).header("cookie", cookies).send();
    let session_cookie = format!("twostep_session={}", plain.token);
    let r = get(authorize_path(&strict, &challenge, &[]), session_cookie.clone()).await.expect("authorize");
    assert_eq!(r.status(), 303);
    assert_eq!(r.headers()["location"], "/security?notice=app_requires_2fa");
    let pending = set_cookie(&r, "twostep_oidc").expect("the request waits in a cookie");
    let (_, _, page) = app.page("/security?notice=app_requires_2fa", Some(&plain.token)).await;
    assert!(page.contains("requires two-factor authentication"), "{page}");

    // Set up an authenticator app; the confirmation may rotate the session.
    let e = app.post("/api/v1/me/totp", &serde_json::json!({}), Some(&plain.token)).await.assert_status(201);
    let secret = data_encoding::BASE32_NOPAD.decode(e.str("secret").as_bytes()).expect("base32");
    let code = app.code(&secret, 0);
    let body = serde_json::json!({"enrollment_id": e.str("enrollment_id"), "code": code});
    let c = app.post("/api/v1/me/totp/confirm", &body, Some(&plain.token)).await.assert_status(201);
    let token = c.body["session_token"].as_str().map_or_else(|| plain.token.clone(), str::to_owned);

    let both = format!("twostep_session={token}; twostep_oidc={pending}");
    let r = get("/security?saved=1".into(), both.clone()).await.expect("saved");
    assert_eq!(r.status(), 303);
    let back = r.headers()["location"].to_str().expect("location").to_owned();
    assert!(back.starts_with("/oidc/authorize?"), "{back}");
    let r = get(back, both).await.expect("back at the app");
    assert_eq!(r.status(), 302);
    let location = r.headers()["location"].to_str().expect("location").to_owned();
    let code = param(&location, "code").expect("a code");
    let t = exchange(&app, &strict, &code, &verifier).await.assert_status(200);
    assert_eq!(claims(&t.str("id_token"))["acr"], "urn:twostep:2fa");
    // Without a pending app, the saved step stays on Security.
    let (status, _, _) = app.page("/security?saved=1", Some(&token)).await;
    assert_eq!(status, 200);
}
