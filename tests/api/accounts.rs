//! Sign-up, sign-in and the contract's error shapes.

use serde_json::json;
use twostep_testkit::{TestApp, both_backends};

both_backends!(
    health_answers_when_the_store_does,
    sign_up_creates_an_account,
    duplicate_email_is_refused_case_insensitively,
    invalid_emails_are_refused,
    weak_passwords_are_refused_with_reasons,
    unknown_email_wrong_password_and_disabled_account_look_alike,
    nfc_and_nfd_passwords_sign_in_alike,
    password_is_not_truncated_or_case_folded,
    no_default_accounts_exist,
);

async fn health_answers_when_the_store_does(app: TestApp) {
    let r = app.get("/healthz", None).await.assert_status(200);
    assert_eq!(r.body, json!({"status": "ok"}));
}

async fn sign_up_creates_an_account(app: TestApp) {
    let r = app
        .post("/api/v1/accounts", &json!({"email": "  Alice@Example.COM ", "password": "correct horse battery"}), None)
        .await
        .assert_status(201);
    assert_eq!(r.str("email"), "alice@example.com");
    assert!(!r.str("id").is_empty());
    let login = app.login("alice@example.com", "correct horse battery").await.assert_status(200);
    assert_eq!(login.str("status"), "authenticated");
    let me = app.get("/api/v1/me", Some(&login.str("session_token"))).await.assert_status(200);
    assert_eq!(me.body["email"], "alice@example.com");
    assert_eq!(me.body["id"], r.body["id"]);
    assert_eq!(me.body["two_factor"], json!({"enabled": false, "methods": []}));
    assert_eq!(me.body["recovery_codes_remaining"], 0);
}

async fn duplicate_email_is_refused_case_insensitively(app: TestApp) {
    let body = json!({"email": "bob@example.com", "password": "correct horse battery"});
    app.post("/api/v1/accounts", &body, None).await.assert_status(201);
    let again = json!({"email": "BOB@example.com", "password": "another fine password"});
    app.post("/api/v1/accounts", &again, None).await.assert_error(409, "email_taken");
}

async fn invalid_emails_are_refused(app: TestApp) {
    for email in ["", "bob", "bob@", "@example.com", "bob@example", "bo b@example.com"] {
        app.post("/api/v1/accounts", &json!({"email": email, "password": "correct horse battery"}), None)
            .await
            .assert_error(400, "invalid_email");
    }
}

async fn weak_passwords_are_refused_with_reasons(app: TestApp) {
    // SEC-01, SEC-05: too short, too common, only context words; SEC-02: too long.
    for (password, why) in [
        ("abcdefghijk", "12"),
        ("password1234", "common"),
        ("carol-carol-2024", "e-mail"),
        ("twostep-twostep", "e-mail address or the site name"),
    ] {
        let r = app
            .post("/api/v1/accounts", &json!({"email": "carol@example.com", "password": password}), None)
            .await
            .assert_error(400, "weak_password");
        assert!(r.body["error"]["message"].as_str().unwrap_or_default().contains(why), "{password}: {}", r.text);
    }
    app.post("/api/v1/accounts", &json!({"email": "carol@example.com", "password": "x".repeat(129)}), None)
        .await
        .assert_error(400, "weak_password");
    // SEC-01: twelve emoji are twelve characters; SEC-04: no composition rules.
    app.post("/api/v1/accounts", &json!({"email": "carol@example.com", "password": "🔐".repeat(12)}), None)
        .await
        .assert_status(201);
    app.post("/api/v1/accounts", &json!({"email": "dave@example.com", "password": "lowercaseonlyhere"}), None)
        .await
        .assert_status(201);
}

async fn unknown_email_wrong_password_and_disabled_account_look_alike(app: TestApp) {
    // SEC-12: one 401 body for all three.
    let user = app.user().await;
    let wrong = app.login(&user.email, "not the password at all").await.assert_error(401, "invalid_credentials");
    let unknown =
        app.login("nobody@example.com", "not the password at all").await.assert_error(401, "invalid_credentials");
    let malformed = app.login("not-an-email", "whatever whatever").await.assert_error(401, "invalid_credentials");
    assert_eq!(wrong.text, unknown.text);
    assert_eq!(wrong.text, malformed.text);
    let mut raw = app.raw().await;
    sqlx::query("UPDATE accounts SET disabled_at = 1 WHERE email = $1")
        .bind(&user.email)
        .execute(&mut raw)
        .await
        .expect("disable");
    // A hand edit announces nothing: servers see it once their kept copy
    // of the session is `CACHE_SECS` old.
    app.clock.advance(twostep_domain::sessions::cache::CACHE_SECS);
    let disabled = app.login(&user.email, &user.password).await.assert_error(401, "invalid_credentials");
    assert_eq!(wrong.text, disabled.text);
    // A disabled account's existing session stops working too.
    app.get("/api/v1/me", Some(&user.token)).await.assert_error(401, "unauthenticated");
}

async fn nfc_and_nfd_passwords_sign_in_alike(app: TestApp) {
    // SEC-03
    app.post(
        "/api/v1/accounts",
        &json!({"email": "erin@example.com", "password": "caf\u{e9} au lait s'il vous pla\u{ee}t"}),
        None,
    )
    .await
    .assert_status(201);
    app.login("erin@example.com", "cafe\u{301} au lait s'il vous plai\u{302}t").await.assert_status(200);
}

async fn password_is_not_truncated_or_case_folded(app: TestApp) {
    // SEC-02: 100 characters, all significant.
    let password: String = (0..100).map(|i| char::from(b'a' + u8::try_from(i % 26).expect("small"))).collect();
    app.post("/api/v1/accounts", &json!({"email": "frank@example.com", "password": password}), None)
        .await
        .assert_status(201);
    app.login("frank@example.com", &password[..72]).await.assert_error(401, "invalid_credentials");
    app.login("frank@example.com", &password.to_uppercase()).await.assert_error(401, "invalid_credentials");
    app.login("frank@example.com", &password).await.assert_status(200);
}

async fn no_default_accounts_exist(app: TestApp) {
    // SEC-10
    for (e, p) in [("admin", "admin"), ("root", "root"), ("admin@localhost", "admin"), ("admin@example.com", "admin")] {
        app.login(e, p).await.assert_error(401, "invalid_credentials");
    }
}
