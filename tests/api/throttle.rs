//! Brute-force limits of security.md §2.5, on both databases and across
//! two instances sharing one: SEC-31, SEC-32, SEC-33, SEC-34, SEC-15.

use serde_json::json;
use twostep_testkit::{Db, Resp, TestApp, User, both_backends};

both_backends!(
    second_factor_backoff_starts_after_five_failures,
    a_try_refused_unevaluated_is_not_one_of_the_login_tokens_five,
    a_hundred_wrong_codes_lock_totp_across_instances_until_a_recovery_code,
    recovery_codes_back_off_but_never_lock,
    password_backoff_and_lock_look_alike_for_unknown_emails,
    one_address_may_fail_a_hundred_passwords_an_hour,
);

async fn verify_at(app: &TestApp, base: &str, login_token: &str, method: &str, code: &str) -> Resp {
    let r = app
        .http
        .post(format!("{base}/api/v1/login/verify"))
        .json(&json!({"login_token": login_token, "method": method, "code": code}))
        .send()
        .await
        .expect("send");
    Resp::from(r).await
}

async fn login_token(app: &TestApp, user: &User) -> String {
    app.login(&user.email, &user.password).await.assert_status(200).str("login_token")
}

async fn second_factor_backoff_starts_after_five_failures(app: TestApp) {
    let user = app.user_with_totp().await;
    let first = login_token(&app, &user).await;
    for _ in 0..4 {
        verify_at(&app, &app.url, &first, "totp", &app.wrong_code(&user)).await.assert_error(401, "invalid_code");
    }
    let second = login_token(&app, &user).await;
    verify_at(&app, &app.url, &second, "totp", &app.wrong_code(&user)).await.assert_error(401, "invalid_code");
    // Five failures: even the right code waits, unevaluated (SEC-31).
    let r = verify_at(&app, &app.url, &second, "totp", &app.code(&user.secret, 0))
        .await
        .assert_error(429, "too_many_attempts");
    assert_eq!(r.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("1"));
    app.clock.advance(1);
    verify_at(&app, &app.url, &second, "totp", &app.wrong_code(&user)).await.assert_error(401, "invalid_code");
    // Six failures: two seconds.
    let third = login_token(&app, &user).await;
    let r = verify_at(&app, &app.url, &third, "totp", &app.code(&user.secret, 0))
        .await
        .assert_error(429, "too_many_attempts");
    assert_eq!(r.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("2"));
    app.clock.advance(2);
    verify_at(&app, &app.url, &third, "totp", &app.code(&user.secret, 0)).await.assert_status(200);
    // Success reset the counters: a wrong code is just wrong again.
    app.clock.advance(30);
    let fourth = login_token(&app, &user).await;
    verify_at(&app, &app.url, &fourth, "totp", &app.wrong_code(&user)).await.assert_error(401, "invalid_code");
}

/// The login token's try is counted in the same transaction as the
/// throttles' admission (issue 21), so one they refuse rolls back with it.
async fn a_try_refused_unevaluated_is_not_one_of_the_login_tokens_five(app: TestApp) {
    let user = app.user_with_totp().await;
    let waiting = login_token(&app, &user).await;
    let other = login_token(&app, &user).await;
    for _ in 0..5 {
        verify_at(&app, &app.url, &other, "totp", &app.wrong_code(&user)).await.assert_error(401, "invalid_code");
    }
    for _ in 0..10 {
        verify_at(&app, &app.url, &waiting, "totp", &app.code(&user.secret, 0))
            .await
            .assert_error(429, "too_many_attempts");
    }
    app.clock.advance(1);
    verify_at(&app, &app.url, &waiting, "totp", &app.code(&user.secret, 0)).await.assert_status(200);
}

async fn a_hundred_wrong_codes_lock_totp_across_instances_until_a_recovery_code(app: TestApp) {
    let user = app.user_with_totp().await;
    let other = app.second_instance().await;
    for i in 0..100 {
        // Wait out each backoff; guesses alternate between the two instances.
        app.clock.advance(15 * 60 + 1);
        let base = if i % 2 == 0 { app.url.clone() } else { other.clone() };
        let token = login_token(&app, &user).await;
        verify_at(&app, &base, &token, "totp", &app.wrong_code(&user)).await.assert_error(401, "invalid_code");
    }
    app.clock.advance(15 * 60 + 1);
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.body["methods"], json!(["recovery_code"]), "a locked factor leaves the methods");
    let token = login.str("login_token");
    verify_at(&app, &other, &token, "totp", &app.code(&user.secret, 0)).await.assert_error(403, "factor_locked");
    // The owner can always use a recovery code, and it unlocks the codes.
    verify_at(&app, &app.url, &token, "recovery_code", &user.recovery_codes[0]).await.assert_status(200);
    let login = app.login(&user.email, &user.password).await;
    assert_eq!(login.body["methods"], json!(["totp", "recovery_code"]));
    verify_at(&app, &other, &login.str("login_token"), "totp", &app.code(&user.secret, 0)).await.assert_status(200);
    let mut raw = app.raw().await;
    let kinds: Vec<String> = sqlx::query_scalar("SELECT kind FROM audit_log").fetch_all(&mut raw).await.expect("audit");
    assert!(kinds.iter().any(|k| k == "factor_locked") && kinds.iter().any(|k| k == "factor_unlocked"), "{kinds:?}");
}

async fn recovery_codes_back_off_but_never_lock(app: TestApp) {
    // SEC-34: 101 wrong recovery codes, never factor_locked; then a valid one works.
    let user = app.user_with_totp().await;
    for _ in 0..101 {
        app.clock.advance(15 * 60 + 1);
        let token = login_token(&app, &user).await;
        let r = verify_at(&app, &app.url, &token, "recovery_code", "aaaa-bbbb-cccc-dddd").await;
        assert_eq!(r.status.as_u16(), 401, "{}", r.text);
    }
    let token = login_token(&app, &user).await;
    let r = verify_at(&app, &app.url, &token, "recovery_code", &user.recovery_codes[0]).await;
    r.assert_error(429, "too_many_attempts");
    app.clock.advance(15 * 60);
    let token = login_token(&app, &user).await;
    verify_at(&app, &app.url, &token, "recovery_code", &user.recovery_codes[0]).await.assert_status(200);
}

async fn password_backoff_and_lock_look_alike_for_unknown_emails(app: TestApp) {
    // SEC-15: the same 429 sequence for a real account and an unknown e-mail.
    let user = app.user().await;
    let mut seen = Vec::new();
    for email in [user.email.as_str(), "nobody-here@example.com"] {
        let mut statuses = Vec::new();
        for _ in 0..7 {
            let r = app.login(email, "wrong password entirely").await;
            statuses
                .push((r.status.as_u16(), r.headers.get("retry-after").map(|v| v.to_str().unwrap_or("").to_owned())));
        }
        seen.push(statuses);
    }
    assert_eq!(seen[0], seen[1]);
    // Every throttle is audited, the unknown e-mail's too (without an account).
    let mut raw = app.raw().await;
    let throttles: Vec<Option<String>> =
        sqlx::query_scalar("SELECT account_id FROM audit_log WHERE kind = 'throttled'")
            .fetch_all(&mut raw)
            .await
            .expect("audit");
    assert!(throttles.iter().any(Option::is_some) && throttles.iter().any(Option::is_none), "{throttles:?}");
    assert_eq!(seen[0][4].0, 401);
    assert_eq!(seen[0][5], (429, Some("1".into())));
    // SEC-32: after 100 failures the right password is refused, 15 minutes at a time.
    for _ in 0..100 {
        app.clock.advance(15 * 60 + 1);
        app.login(&user.email, "wrong password entirely").await;
    }
    app.clock.advance(2 * 3600);
    let r = app.login(&user.email, &user.password).await.assert_error(429, "too_many_attempts");
    assert_eq!(r.headers.get("retry-after").and_then(|v| v.to_str().ok()), Some("900"));
}

async fn one_address_may_fail_a_hundred_passwords_an_hour(app: TestApp) {
    // Password spraying: many accounts, one address.
    let user = app.user().await;
    for i in 0..100 {
        app.login(&format!("sprayed-{i}@example.com"), "Summer2026!").await.assert_error(401, "invalid_credentials");
    }
    let r = app.login(&user.email, &user.password).await.assert_error(429, "too_many_attempts");
    let wait: i64 =
        r.headers.get("retry-after").and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok()).expect("retry");
    assert!(wait > 0 && wait <= 3600, "{wait}");
    app.clock.advance(wait);
    app.login(&user.email, &user.password).await.assert_status(200);
}

#[tokio::test]
async fn a_lock_is_mailed_to_the_owner() {
    let (app, sink) = TestApp::spawn_with_mail(Db::Sqlite).await;
    let user = app.verified_user_with_totp(&sink).await;
    for _ in 0..100 {
        app.clock.advance(15 * 60 + 1);
        let token = login_token(&app, &user).await;
        verify_at(&app, &app.url, &token, "totp", &app.wrong_code(&user)).await.assert_error(401, "invalid_code");
    }
    let lock = sink.wait_for_subject("locked").await;
    assert_eq!(lock["to"], json!([user.email]));
    assert!(lock["text"].as_str().unwrap_or("").contains("recovery code"));
    assert!(!lock["html"].as_str().unwrap_or("").is_empty(), "an HTML part too");
}
