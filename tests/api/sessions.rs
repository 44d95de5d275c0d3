//! Sessions: bearer tokens, logout, expiry, and cookie-session CSRF.

use serde_json::json;
use twostep_testkit::{TestApp, both_backends};

both_backends!(
    logout_revokes_the_token,
    tokens_in_query_strings_are_ignored,
    idle_sessions_expire,
    sessions_expire_absolutely,
    each_sign_in_makes_a_new_session,
    a_sensitive_button_completes_after_re_auth,
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

/// Issue 20, item 2: "Sign out everywhere else" with a stale re-auth goes
/// to "Confirm it's you", which comes back to the question, not to the
/// Security page: the action is one click away, and that click does it.
async fn a_sensitive_button_completes_after_re_auth(app: TestApp) {
    use reqwest::header::{COOKIE, LOCATION, SET_COOKIE};
    let user = app.user_with_totp().await;
    let other =
        app.sign_in_with(&user, "totp", &app.code(&user.secret, 0)).await.assert_status(200).str("session_token");
    app.clock.advance(11 * 60);
    let security = app.page("/security", Some(&user.token)).await.2;
    let csrf = twostep_testkit::csrf_of(&security);
    let (status, location, _) =
        app.form_post("/security/sessions/revoke-others", &user.token, &[("csrf", &csrf)]).await;
    assert_eq!((status, location.as_str()), (303, "/reauth?next=%2Fsecurity%2Fsessions%2Frevoke-others"));
    app.get("/api/v1/me", Some(&other)).await.assert_status(200);
    // Confirm it's you: password and a code.
    let reauth = app.page(&location, Some(&user.token)).await.2;
    let code = app.code(&user.secret, 0);
    let form = [
        ("csrf", twostep_testkit::csrf_of(&reauth)),
        ("next", "/security/sessions/revoke-others".to_owned()),
        ("password", user.password.clone()),
        ("method", "totp".to_owned()),
        ("code", code),
    ];
    let r = app
        .http
        .post(format!("{}/reauth", app.url))
        .header(COOKIE, format!("twostep_session={}", user.token))
        .header("origin", &app.url)
        .form(&form)
        .send()
        .await
        .expect("reauth");
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers()[LOCATION], "/security/sessions/revoke-others", "back to the question");
    let renewed = r.headers()[SET_COOKIE].to_str().expect("cookie").split(';').next().expect("pair").to_owned();
    let token = renewed.trim_start_matches("twostep_session=").to_owned();
    let (status, _, asked) = app.page("/security/sessions/revoke-others", Some(&token)).await;
    assert_eq!(status, 200);
    assert!(asked.contains("Sign out everywhere else") && asked.contains("id=\"confirm-form\""), "{asked}");
    let (status, location, _) =
        app.form_post("/security/sessions/revoke-others", &token, &[("csrf", &twostep_testkit::csrf_of(&asked))]).await;
    assert_eq!((status, location.as_str()), (303, "/security?notice=others_revoked"));
    app.get("/api/v1/me", Some(&other)).await.assert_error(401, "unauthenticated");
    app.get("/api/v1/me", Some(&token)).await.assert_status(200);
}
