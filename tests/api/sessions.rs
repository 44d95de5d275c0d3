//! Sessions: bearer tokens, logout, expiry, and cookie-session CSRF.

use serde_json::json;
use twostep_testkit::{TestApp, both_backends};

both_backends!(
    logout_revokes_the_token,
    tokens_in_query_strings_are_ignored,
    idle_sessions_expire,
    sessions_expire_absolutely,
    each_sign_in_makes_a_new_session,
);

async fn logout_revokes_the_token(app: TestApp) {
    let user = app.user().await;
    app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    let r = app.post("/api/v1/logout", &json!({}), Some(&user.token)).await.assert_status(204);
    assert!(r.headers.get("clear-site-data").is_some(), "SEC-56: Clear-Site-Data at logout");
    app.get("/api/v1/me", Some(&user.token)).await.assert_error(401, "unauthenticated");
    app.post("/api/v1/logout", &json!({}), Some(&user.token)).await.assert_error(401, "unauthenticated");
    app.get("/api/v1/me", None).await.assert_error(401, "unauthenticated");
    app.get("/api/v1/me", Some("made-up-token")).await.assert_error(401, "unauthenticated");
}

async fn tokens_in_query_strings_are_ignored(app: TestApp) {
    // SEC-49
    let user = app.user().await;
    let path = format!("/api/v1/me?access_token={0}&session_token={0}&token={0}", user.token);
    app.get(&path, None).await.assert_error(401, "unauthenticated");
}

async fn idle_sessions_expire(app: TestApp) {
    // SEC-51: 30 minutes idle.
    let user = app.user().await;
    app.clock.advance(29 * 60);
    app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    app.clock.advance(29 * 60);
    app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    app.clock.advance(30 * 60 + 1);
    app.get("/api/v1/me", Some(&user.token)).await.assert_error(401, "unauthenticated");
}

async fn sessions_expire_absolutely(app: TestApp) {
    // SEC-51: 12 hours, however active.
    let user = app.user().await;
    // Used every 20 minutes, it lives until 11 h 40 min...
    for _ in 0..(12 * 60 / 20 - 1) {
        app.clock.advance(20 * 60);
        app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    }
    // ...and ends at 12 h, however active.
    app.clock.advance(20 * 60);
    app.get("/api/v1/me", Some(&user.token)).await.assert_error(401, "unauthenticated");
}

async fn each_sign_in_makes_a_new_session(app: TestApp) {
    // SEC-52: a new session id at every sign-in; the old one is unaffected.
    let user = app.user().await;
    let second = app.login(&user.email, &user.password).await.assert_status(200).str("session_token");
    assert_ne!(second, user.token);
    app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    app.get("/api/v1/me", Some(&second)).await.assert_status(200);
    // A login token is not a session token.
    let totp_user = app.user_with_totp().await;
    let login = app.login(&totp_user.email, &totp_user.password).await;
    app.get("/api/v1/me", Some(&login.str("login_token"))).await.assert_error(401, "unauthenticated");
}

#[tokio::test]
async fn sec55_cookie_sessions_need_the_csrf_token_for_api_changes() {
    let app = TestApp::spawn(twostep_testkit::Db::Sqlite).await;
    let user = app.user().await;
    let cookie = format!("twostep_session={}", user.token);
    // Reading with the cookie works.
    let r = app.http.get(format!("{}/api/v1/me", app.url)).header("cookie", &cookie).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 200);
    // Changing state with the cookie but no CSRF token is refused.
    let r = app
        .http
        .post(format!("{}/api/v1/me/totp", app.url))
        .header("cookie", &cookie)
        .header("origin", "https://evil.example")
        .json(&json!({}))
        .send()
        .await
        .expect("send");
    let resp = twostep_testkit::Resp::from(r).await;
    resp.assert_error(403, "csrf_failed");
}
