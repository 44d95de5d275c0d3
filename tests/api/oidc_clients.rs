//! OpenID Connect clients of every kind: public clients (PKCE only),
//! ES256 and EdDSA ID tokens checked against the JWKS, the operator's
//! commands (`list`, `show`, `rotate-secret`, `remove`, `rotate-key`),
//! `prompt=login`, `max_age`, a declined consent, and RP-initiated logout
//! back to a registered URI with its `state`.

use twostep_testkit::{TestApp, both_backends, csrf_of};

use crate::admin::cli;
use crate::oidc::{Client, authorize_path, code_for, exchange, param, pkce, register, two_factor_session};

async fn verify_with_jwks(app: &TestApp, jwt: &str, aud: &str) -> serde_json::Value {
    let header = jsonwebtoken::decode_header(jwt).expect("header");
    let jwks: jsonwebtoken::jwk::JwkSet =
        app.http.get(format!("{}/oidc/jwks", app.url)).send().await.expect("jwks").json().await.expect("json");
    let jwk = jwks.find(header.kid.as_deref().expect("kid")).expect("published");
    let mut v = jsonwebtoken::Validation::new(header.alg);
    v.set_audience(&[aud]);
    v.validate_exp = false;
    jsonwebtoken::decode::<serde_json::Value>(jwt, &jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key"), &v)
        .expect("signature")
        .claims
}

both_backends!(algorithms_and_public_clients, operator_commands, prompts_consent_and_logout);

async fn algorithms_and_public_clients(app: TestApp) {
    let (_, session) = two_factor_session(&app).await;
    for (alg, flags) in [("ES256", vec!["--public"]), ("EdDSA", vec![])] {
        let mut args = vec!["--skip-consent", "--id-token-alg", alg];
        args.extend(flags.iter().copied());
        let c = register(&app, &args).await;
        assert_eq!(c.secret.is_none(), flags.contains(&"--public"));
        let (verifier, challenge) = pkce();
        let code = code_for(&app, &session, &c, &challenge).await;
        let t = exchange(&app, &c, &code, &verifier).await.assert_status(200);
        let jwt = t.str("id_token");
        assert_eq!(format!("{:?}", jsonwebtoken::decode_header(&jwt).expect("header").alg), alg);
        assert_eq!(verify_with_jwks(&app, &jwt, &c.id).await["aud"], c.id.as_str());
    }
    // RS256 stays published beside them.
    let jwks = app.get("/oidc/jwks", None).await.assert_status(200);
    let algs: Vec<&str> =
        jwks.body["keys"].as_array().expect("keys").iter().filter_map(|k| k["alg"].as_str()).collect();
    for alg in ["RS256", "ES256", "EdDSA"] {
        assert!(algs.contains(&alg), "{algs:?}");
    }
    // A public client that pretends to have a secret is refused.
    let public = register(&app, &["--public", "--skip-consent"]).await;
    let pretend = Client { secret: Some("x".into()), id: public.id.clone(), redirect: public.redirect.clone() };
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &session, &public, &challenge).await;
    exchange(&app, &pretend, &code, &verifier).await.assert_status(401);
}

async fn operator_commands(app: TestApp) {
    let c = register(&app, &["--skip-consent"]).await;
    let (ok, out, err) = cli(&app, &["oidc", "client", "list"]).await;
    assert!(ok && out.contains(&c.id) && out.contains("confidential"), "{out}{err}");
    let (ok, out, err) = cli(&app, &["oidc", "client", "show", &c.id, "--json"]).await;
    assert!(ok, "{out}{err}");
    let shown: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    assert_eq!(shown["redirect_uris"], serde_json::json!([c.redirect]));
    assert!(!out.contains(c.secret.as_deref().expect("secret")), "the secret is never shown again");
    // A new secret: the old one stops at once.
    let (ok, out, err) = cli(&app, &["oidc", "client", "rotate-secret", &c.id, "--json"]).await;
    assert!(ok, "{out}{err}");
    let rotated: serde_json::Value = serde_json::from_str(out.trim()).expect("json");
    let fresh = Client {
        secret: rotated["client_secret"].as_str().map(str::to_owned),
        ..Client { id: c.id.clone(), secret: None, redirect: c.redirect.clone() }
    };
    let (_, session) = two_factor_session(&app).await;
    let (verifier, challenge) = pkce();
    let code = code_for(&app, &session, &c, &challenge).await;
    exchange(&app, &c, &code, &verifier).await.assert_status(401);
    exchange(&app, &fresh, &code, &verifier).await.assert_status(200);
    // rotate-key: a new key signs, the old one stays published.
    let before = app.get("/oidc/jwks", None).await.body["keys"][0]["kid"].as_str().expect("kid").to_owned();
    let (ok, out, err) = cli(&app, &["oidc", "rotate-key"]).await;
    assert!(ok, "{out}{err}");
    let kids: Vec<String> = app.get("/oidc/jwks", None).await.body["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert!(kids.len() >= 2 && kids.contains(&before), "{kids:?}");
    // Bad input is a clear error, never a panic.
    let (ok, _, err) = cli(&app, &["oidc", "client", "add", "Bad", "--redirect-uri", "http://app.example/cb"]).await;
    assert!(!ok && err.contains("https"), "{err}");
    let (ok, _, err) =
        cli(&app, &["oidc", "client", "add", "Bad", "--redirect-uri", "https://a.example/cb", "--org", "nope"]).await;
    assert!(!ok && err.contains("organisation"), "{err}");
    let (ok, out, err) = cli(&app, &["oidc", "client", "remove", &c.id]).await;
    assert!(ok, "{out}{err}");
    let (ok, _, _) = cli(&app, &["oidc", "client", "show", &c.id]).await;
    assert!(!ok);
}

async fn prompts_consent_and_logout(app: TestApp) {
    let redirect_back = "https://app.example/signed-out";
    let c = register(&app, &["--post-logout-redirect-uri", redirect_back]).await;
    let (_, session) = two_factor_session(&app).await;
    let (verifier, challenge) = pkce();
    // prompt=login and a max_age the session is older than: sign in again.
    for extra in [("prompt", "login"), ("max_age", "5")] {
        let (status, location, _) = app.page(&authorize_path(&c, &challenge, &[extra]), Some(&session)).await;
        assert_eq!((status, location.as_str()), (303, "/login"), "{extra:?}");
    }
    // prompt=none before consent: consent_required.
    let (_, location, _) = app.page(&authorize_path(&c, &challenge, &[("prompt", "none")]), Some(&session)).await;
    assert_eq!(param(&location, "error").as_deref(), Some("consent_required"));
    // Declining: access_denied with the state.
    let (status, _, body) = app.page(&authorize_path(&c, &challenge, &[]), Some(&session)).await;
    assert_eq!(status, 200);
    let consent = body.split("id=\"consent-form\"").nth(1).expect("form");
    let mut form: Vec<(String, String)> = consent
        .split("<input type=\"hidden\" name=\"")
        .skip(1)
        .map(|p| {
            let name = p.split('"').next().unwrap_or_default().to_owned();
            let value = p.split("value=\"").nth(1).and_then(|v| v.split('"').next()).unwrap_or_default();
            (name, value.replace("&amp;", "&").replace("&#x2f;", "/").replace("&#x3a;", ":"))
        })
        .collect();
    form.push(("decision".into(), "deny".into()));
    let pairs: Vec<(&str, &str)> = form.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    assert!(!csrf_of(&body).is_empty());
    let (status, location, _) = app.form_post("/oidc/consent", &session, &pairs).await;
    assert_eq!(status, 302);
    assert_eq!(param(&location, "error").as_deref(), Some("access_denied"));
    assert_eq!(param(&location, "state").as_deref(), Some("st-1"));
    // Consent, tokens, then RP-initiated logout back to the registered URI.
    let code = code_for(&app, &session, &c, &challenge).await;
    let t = exchange(&app, &c, &code, &verifier).await.assert_status(200);
    let hint = t.str("id_token");
    let path = format!(
        "/oidc/logout?id_token_hint={hint}&post_logout_redirect_uri={}&state=bye",
        "https%3A%2F%2Fapp.example%2Fsigned-out"
    );
    let (status, location, _) = app.page(&path, Some(&session)).await;
    assert_eq!((status, location.as_str()), (302, "https://app.example/signed-out?state=bye"));
    app.get("/api/v1/me", Some(&session)).await.assert_status(401);
    // A hint we did not sign is refused with a page.
    let forged = format!("{}x", &hint[..hint.len() - 1]);
    let (status, location, _) = app.page(&format!("/oidc/logout?id_token_hint={forged}"), None).await;
    assert_eq!((status, location.as_str()), (400, ""));
}
