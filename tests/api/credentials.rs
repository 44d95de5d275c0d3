//! Password reset by e-mail, password change, signed-in devices and the
//! security log: SEC-06, SEC-14, SEC-36, SEC-42, SEC-53, SEC-54.

use serde_json::{Value, json};
use twostep_testkit::{Db, SmtpSink, TestApp, both_backends};

fn reset_token(mail: &Value) -> String {
    let text = mail["text"].as_str().expect("text part");
    let start = text.find("/reset-password?token=").expect("a reset link") + "/reset-password?token=".len();
    text[start..].split_whitespace().next().expect("token").to_owned()
}

async fn password_reset_flow(db: Db) {
    let (app, sink): (TestApp, SmtpSink) = TestApp::spawn_with_mail(db).await;
    let user = app.user_with_totp().await;
    // Same answer whether or not the address exists; mail only for a real one.
    app.post("/api/v1/password/forgot", &json!({"email": "nobody@example.com"}), None).await.assert_status(202);
    let r = app
        .http
        .post(format!("{}/api/v1/password/forgot", app.url))
        .header("host", "evil.example")
        .json(&json!({"email": user.email.to_uppercase()}))
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 202);
    let link = sink.wait_for_subject("Reset your password").await;
    assert_eq!(sink.with_subject("Reset your password").len(), 1, "no mail for an unknown address");
    assert_eq!(link["to"], json!([user.email]));
    let text = link["text"].as_str().unwrap_or_default();
    // SEC-42: the link is built from configuration, never from the Host header.
    assert!(text.contains(&format!("{}/reset-password?token=", app.url)), "{text}");
    assert!(text.contains("you will still need it to sign in"), "{text}");
    assert!(!text.contains("evil.example"));
    let token = reset_token(&link);
    // A weak password is refused without spending the link.
    app.post("/api/v1/password/reset", &json!({"token": token, "password": "password1234"}), None)
        .await
        .assert_error(400, "weak_password");
    app.post("/api/v1/password/reset", &json!({"token": token, "password": "a brand new passphrase"}), None)
        .await
        .assert_status(204);
    // Single use; the old password and every session are gone.
    app.post("/api/v1/password/reset", &json!({"token": token, "password": "yet another passphrase"}), None)
        .await
        .assert_error(400, "invalid_token");
    app.get("/api/v1/me", Some(&user.token)).await.assert_error(401, "unauthenticated");
    app.login(&user.email, &user.password).await.assert_error(401, "invalid_credentials");
    // A reset never skips the second factor.
    let login = app.login(&user.email, "a brand new passphrase").await.assert_status(200);
    assert_eq!(login.str("status"), "second_factor_required");
    // A notice of the reset follows the link.
    sink.wait_for_subject("Your password was reset").await;
    // Links expire after 30 minutes.
    app.post("/api/v1/password/forgot", &json!({"email": user.email}), None).await.assert_status(202);
    while sink.with_subject("Reset your password").len() < 2 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let late = reset_token(&sink.with_subject("Reset your password")[1]);
    app.clock.advance(30 * 60);
    app.post("/api/v1/password/reset", &json!({"token": late, "password": "too late passphrase"}), None)
        .await
        .assert_error(400, "invalid_token");
    // SEC-36: fifty requests in a minute mail at most five times an hour.
    for _ in 0..50 {
        app.post("/api/v1/password/forgot", &json!({"email": user.email}), None).await.assert_status(202);
    }
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let links = sink.with_subject("Reset your password").len();
    assert!(links <= 2 + 5, "{links} reset mails");
}

#[tokio::test]
async fn password_reset_by_email_sqlite() {
    password_reset_flow(Db::Sqlite).await;
}

#[tokio::test]
async fn password_reset_by_email_postgres() {
    password_reset_flow(Db::Postgres).await;
}

both_backends!(
    password_change_needs_the_current_password_and_ends_other_sessions,
    signed_in_devices_can_be_listed_and_revoked
);

async fn password_change_needs_the_current_password_and_ends_other_sessions(app: TestApp) {
    // SEC-06
    let user = app.user().await;
    let other = app.login(&user.email, &user.password).await.str("session_token");
    let change = |current: &str, new: &str| json!({"current_password": current, "new_password": new});
    app.post("/api/v1/me/password", &change("not my password", "a fresh passphrase"), Some(&user.token))
        .await
        .assert_error(401, "invalid_credentials");
    app.post("/api/v1/me/password", &change(&user.password, "short"), Some(&user.token))
        .await
        .assert_error(400, "weak_password");
    app.clock.advance(11 * 60);
    app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    app.post("/api/v1/me/password", &change(&user.password, "a fresh passphrase"), Some(&user.token))
        .await
        .assert_error(403, "reauth_required");
    app.post("/api/v1/me/reauth", &json!({"password": user.password}), Some(&user.token)).await.assert_status(204);
    app.post("/api/v1/me/password", &change(&user.password, "a fresh passphrase"), Some(&user.token))
        .await
        .assert_status(204);
    app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    app.get("/api/v1/me", Some(&other)).await.assert_error(401, "unauthenticated");
    app.login(&user.email, &user.password).await.assert_error(401, "invalid_credentials");
    app.login(&user.email, "a fresh passphrase").await.assert_status(200);
}

async fn signed_in_devices_can_be_listed_and_revoked(app: TestApp) {
    // SEC-54
    let user = app.user().await;
    let phone = app
        .http
        .post(format!("{}/api/v1/login", app.url))
        .header("user-agent", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) Safari/604.1")
        .json(&json!({"email": user.email, "password": user.password}))
        .send()
        .await
        .expect("send");
    let phone: Value = phone.json().await.expect("json");
    let phone = phone["session_token"].as_str().expect("token").to_owned();
    let third = app.login(&user.email, &user.password).await.str("session_token");
    let list = app.get("/api/v1/me/sessions", Some(&user.token)).await.assert_status(200);
    let sessions = list.body.as_array().expect("list");
    assert_eq!(sessions.len(), 3);
    assert_eq!(sessions[0]["current"], true);
    assert!(sessions.iter().any(|s| s["device"] == "Safari on iOS"), "{}", list.text);
    let phone_id = sessions.iter().find(|s| s["device"] == "Safari on iOS").and_then(|s| s["id"].as_str()).expect("id");
    // Stale re-auth: refused.
    app.clock.advance(11 * 60);
    app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    app.delete(&format!("/api/v1/me/sessions/{phone_id}"), Some(&user.token))
        .await
        .assert_error(403, "reauth_required");
    app.post("/api/v1/me/reauth", &json!({"password": user.password}), Some(&user.token)).await.assert_status(204);
    app.delete(&format!("/api/v1/me/sessions/{phone_id}"), Some(&user.token)).await.assert_status(204);
    app.get("/api/v1/me", Some(&phone)).await.assert_error(401, "unauthenticated");
    app.delete("/api/v1/me/sessions/0000000000000000", Some(&user.token)).await.assert_error(404, "not_found");
    app.post("/api/v1/me/sessions/revoke-others", &json!({}), Some(&user.token)).await.assert_status(204);
    app.get("/api/v1/me", Some(&third)).await.assert_error(401, "unauthenticated");
    app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    // The security log shows the account's own events.
    let log = app.get("/api/v1/me/security-log?limit=50", Some(&user.token)).await.assert_status(200);
    let events: Vec<&str> = log.body.as_array().expect("log").iter().filter_map(|e| e["event"].as_str()).collect();
    for e in ["account_created", "sign_in_succeeded", "session_revoked", "reauth"] {
        assert!(events.contains(&e), "{e} missing from {events:?}");
    }
    app.get("/api/v1/me/security-log?limit=x", Some(&user.token)).await.assert_error(400, "invalid_request");
}

/// The reset mail promises a second factor only to accounts that have one.
#[tokio::test]
async fn the_reset_mail_mentions_a_second_factor_only_when_there_is_one() {
    let (app, sink): (TestApp, SmtpSink) = TestApp::spawn_with_mail(Db::Sqlite).await;
    let user = app.user().await;
    app.post("/api/v1/password/forgot", &json!({"email": user.email}), None).await.assert_status(202);
    let link = sink.wait_for_subject("Reset your password").await;
    let text = link["text"].as_str().unwrap_or_default();
    assert!(text.contains("/reset-password?token=") && !text.contains("second factor"), "{text}");
}
