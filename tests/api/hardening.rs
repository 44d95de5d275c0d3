//! Bad input never gets a 500; headers; the OpenAPI document.

use serde_json::{Value, json};
use twostep_testkit::{Db, TestApp, both_backends};

both_backends!(malformed_bodies_get_the_contract_error_shape, openapi_lists_every_route, security_headers_are_set);

async fn malformed_bodies_get_the_contract_error_shape(app: TestApp) {
    let url = format!("{}/api/v1/login", app.url);
    let send = |body: &'static str, ct: &'static str| {
        let req = app.http.post(&url).header("content-type", ct).body(body);
        async move { twostep_testkit::Resp::from(req.send().await.expect("send")).await }
    };
    // SEC-65 / SEC-16
    send("{not json", "application/json").await.assert_error(400, "invalid_request");
    send(r#"{"email": "a@example.com"}"#, "application/json").await.assert_error(400, "invalid_request");
    send(r#"{"email": 5, "password": "x"}"#, "application/json").await.assert_error(400, "invalid_request");
    send(r"[1, 2]", "application/json").await.assert_error(400, "invalid_request");
    send("email=a&password=b", "application/x-www-form-urlencoded").await.assert_error(415, "unsupported_media_type");
    send("hello", "text/plain").await.assert_error(415, "unsupported_media_type");
    // SEC-11: a megabyte is refused before any hashing.
    let huge = json!({"email": "a@example.com", "password": "x".repeat(1 << 20)});
    // The server answers 413 as soon as the limit is passed and may close the
    // connection while the client is still sending; both are a refusal.
    // A client of its own, so the closed connection is not reused below.
    match reqwest::Client::new().post(&url).json(&huge).send().await {
        Ok(r) => assert_eq!(r.status().as_u16(), 413),
        Err(e) => assert!(e.is_request(), "{e}"),
    }
    // SEC-65: wrong method.
    let r = app.http.put(&url).json(&json!({})).send().await.expect("send");
    twostep_testkit::Resp::from(r).await.assert_error(405, "method_not_allowed");
    // Unknown API path: JSON 404.
    app.get("/api/v1/nope", None).await.assert_error(404, "not_found");
    // Unknown method name at verify.
    let user = app.user_with_totp().await;
    let login = app.login(&user.email, &user.password).await;
    app.post(
        "/api/v1/login/verify",
        &json!({"login_token": login.str("login_token"), "method": "carrier-pigeon", "code": "1"}),
        None,
    )
    .await
    .assert_error(400, "invalid_request");
}

async fn openapi_lists_every_route(app: TestApp) {
    let doc: Value = app.get("/api/openapi.json", None).await.assert_status(200).body;
    assert!(doc["openapi"].as_str().unwrap_or_default().starts_with("3."));
    let paths = doc["paths"].as_object().expect("paths");
    for (path, method) in [
        ("/healthz", "get"),
        ("/api/v1/accounts", "post"),
        ("/api/v1/login", "post"),
        ("/api/v1/login/verify", "post"),
        ("/api/v1/logout", "post"),
        ("/api/v1/me", "get"),
        ("/api/v1/me/reauth", "post"),
        ("/api/v1/me/totp", "post"),
        ("/api/v1/me/totp/confirm", "post"),
        ("/api/v1/me/totp/{enrollment_id}/qr.png", "get"),
        ("/api/v1/me/authenticators", "get"),
        ("/api/v1/me/authenticators/{id}", "delete"),
        ("/api/v1/me/recovery-codes", "get"),
        ("/api/v1/me/recovery-codes", "post"),
        ("/api/v1/me/two-factor", "delete"),
    ] {
        assert!(paths.get(path).and_then(|p| p.get(method)).is_some(), "{method} {path} missing from OpenAPI");
    }
    // SEC-08: no password hints or security questions anywhere.
    let text = doc.to_string().to_lowercase();
    assert!(!text.contains("hint") && !text.contains("security_question"));
}

async fn security_headers_are_set(app: TestApp) {
    // SEC-64
    for path in ["/login", "/api/v1/me", "/healthz"] {
        let r = app.http.get(format!("{}{path}", app.url)).send().await.expect("send");
        let h = r.headers();
        let csp = h.get("content-security-policy").and_then(|v| v.to_str().ok()).unwrap_or_default();
        assert!(csp.contains("frame-ancestors 'none'") && !csp.contains("unsafe-inline"), "{path}: {csp}");
        assert_eq!(h.get("x-content-type-options").map(reqwest::header::HeaderValue::as_bytes), Some(&b"nosniff"[..]));
        assert_eq!(h.get("x-frame-options").map(reqwest::header::HeaderValue::as_bytes), Some(&b"DENY"[..]));
        assert_eq!(h.get("referrer-policy").map(reqwest::header::HeaderValue::as_bytes), Some(&b"no-referrer"[..]));
        assert!(h.get("x-request-id").is_some(), "{path}: request id");
        assert!(h.get("access-control-allow-origin").is_none());
    }
    if app.db == Db::Sqlite {
        // SEC-56: secrets are never cached.
        let user = app.user().await;
        let r = app.post("/api/v1/me/totp", &json!({}), Some(&user.token)).await;
        assert_eq!(r.headers.get("cache-control").map(reqwest::header::HeaderValue::as_bytes), Some(&b"no-store"[..]));
    }
}

#[tokio::test]
async fn sec07_passwords_are_hashed_with_argon2id_at_owasp_cost() {
    let app = TestApp::spawn_with(Db::Sqlite, |s| {
        s.hash_cost = twostep_domain::accounts::password::HashCost::default();
    })
    .await;
    let a = app.user().await;
    let b = app.user().await;
    let mut raw = app.raw().await;
    let hashes: Vec<String> = sqlx::query_scalar("SELECT password_hash FROM accounts WHERE email IN ($1, $2)")
        .bind(&a.email)
        .bind(&b.email)
        .fetch_all(&mut raw)
        .await
        .expect("rows");
    assert_eq!(hashes.len(), 2);
    for h in &hashes {
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
    }
    // Same password, different salts and hashes.
    assert_ne!(hashes[0], hashes[1]);
}
