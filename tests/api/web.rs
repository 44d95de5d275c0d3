//! Pages as a browser meets them: CSRF on forms (SEC-55), cookie flags
//! (SEC-50, SEC-52), and the secure settings under an https public URL.

use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use twostep_testkit::{Db, TestApp, csrf_of};

fn cookie_pair(set_cookie: &str) -> String {
    set_cookie.split(';').next().expect("pair").to_owned()
}

#[tokio::test]
async fn forged_form_posts_are_refused() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let user = app.user().await;
    // The sign-in form without its pre-session token: refused.
    let r = app
        .http
        .post(format!("{}/login", app.url))
        .form(&[("email", user.email.as_str()), ("password", user.password.as_str())])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 403);
    // A signed-in browser: a cross-site POST with its cookie but no token is refused.
    let cookie = format!("twostep_session={}", user.token);
    let forged = app
        .http
        .post(format!("{}/security/two-factor/disable", app.url))
        .header(COOKIE, &cookie)
        .header("origin", "https://evil.example")
        .form(&[("csrf", "")])
        .send()
        .await
        .expect("send");
    assert_eq!(forged.status().as_u16(), 403);
    // The right token from a foreign origin: still refused.
    let page = app.http.get(format!("{}/security", app.url)).header(COOKIE, &cookie).send().await.expect("page");
    let token = csrf_of(&page.text().await.expect("html"));
    let foreign = app
        .http
        .post(format!("{}/logout", app.url))
        .header(COOKIE, &cookie)
        .header("origin", "https://evil.example")
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .expect("send");
    assert_eq!(foreign.status().as_u16(), 403);
    app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    // Same origin with the token: signs out, clears the cookie.
    let ok = app
        .http
        .post(format!("{}/logout", app.url))
        .header(COOKIE, &cookie)
        .header("origin", &app.url)
        .form(&[("csrf", token.as_str())])
        .send()
        .await
        .expect("send");
    assert_eq!(ok.status().as_u16(), 303);
    assert!(ok.headers().get("clear-site-data").is_some());
    app.get("/api/v1/me", Some(&user.token)).await.assert_error(401, "unauthenticated");
    // GET never changes anything (SEC-55): no GET route for logout or disable.
    let r = app.http.get(format!("{}/logout", app.url)).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 405);
}

#[tokio::test]
async fn sign_in_through_the_form_sets_a_fresh_http_only_session_cookie() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let user = app.user().await;
    let page = app.http.get(format!("{}/login", app.url)).send().await.expect("page");
    let pre = cookie_pair(page.headers().get(SET_COOKIE).and_then(|v| v.to_str().ok()).expect("pre-session cookie"));
    let token = csrf_of(&page.text().await.expect("html"));
    // SEC-52: a planted session cookie is replaced, never promoted.
    let planted = "twostep_session=planted-by-attacker";
    let r = app
        .http
        .post(format!("{}/login", app.url))
        .header(COOKIE, format!("{pre}; {planted}"))
        .form(&[("csrf", token.as_str()), ("email", user.email.as_str()), ("password", user.password.as_str())])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 303);
    let set = r.headers().get(SET_COOKIE).and_then(|v| v.to_str().ok()).expect("session cookie").to_owned();
    assert!(set.starts_with("twostep_session=") && !set.contains("planted"), "{set}");
    for flag in ["HttpOnly", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(flag), "{flag} missing: {set}");
    }
    assert!(!set.contains("Domain") && !set.contains("Expires") && !set.contains("Max-Age"), "{set}");
}

/// The second step keeps nothing but the login token in the browser: the
/// methods offered are the account's, read from the token on each page, so
/// a cookie naming others changes nothing, and a dead token starts over.
#[tokio::test]
async fn the_second_step_offers_the_accounts_methods_whatever_cookies_say() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let user = app.user_with_totp().await;
    let page = app.http.get(format!("{}/login", app.url)).send().await.expect("page");
    let pre = cookie_pair(page.headers().get(SET_COOKIE).and_then(|v| v.to_str().ok()).expect("pre-session cookie"));
    let token = csrf_of(&page.text().await.expect("html"));
    let r = app
        .http
        .post(format!("{}/login", app.url))
        .header(COOKIE, &pre)
        .form(&[("csrf", token.as_str()), ("email", user.email.as_str()), ("password", user.password.as_str())])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status().as_u16(), 303);
    let set: Vec<String> =
        r.headers().get_all(SET_COOKIE).iter().filter_map(|v| v.to_str().ok()).map(str::to_owned).collect();
    assert_eq!(set.len(), 1, "only the login token is set: {set:?}");
    let login = cookie_pair(&set[0]);
    assert!(login.starts_with("twostep_login="), "{login}");
    // A cookie listing methods the account lacks (the old design's) is ignored.
    let verify = |cookies: String| {
        let req = app.http.get(format!("{}/login/verify?method=sms", app.url)).header(COOKIE, cookies);
        async move { req.send().await.expect("verify page") }
    };
    let r = verify(format!("{pre}; {login}; twostep_methods=sms.voice.email")).await;
    assert_eq!(r.status().as_u16(), 200);
    let html = r.text().await.expect("html");
    assert!(html.contains("from your authenticator app"), "the account's first method: {html}");
    assert!(html.contains("Use a recovery code"), "{html}");
    assert!(!html.contains("Text me a code") && !html.contains("Call me"), "methods the account lacks: {html}");
    // A login token that is not live: the sign-in starts over and its cookie goes.
    let r = verify(format!("{pre}; twostep_login=not-a-live-token")).await;
    assert_eq!(r.status().as_u16(), 303);
    assert_eq!(r.headers().get("location").and_then(|v| v.to_str().ok()), Some("/login?expired=1"));
    let cleared = r.headers().get(SET_COOKIE).and_then(|v| v.to_str().ok()).expect("cleared cookie");
    assert!(cleared.starts_with("twostep_login=;") && cleared.contains("Max-Age=0"), "{cleared}");
}

/// Answers the framework makes itself are pages of ours with a way back
/// (and, under /api/, the API's JSON error shape): a GET on a form's target
/// no longer shows the browser's bare "HTTP ERROR 405".
#[tokio::test]
async fn bare_errors_become_pages_with_a_way_back_and_the_icon_is_served() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let get = |path: &str| app.http.get(format!("{}{path}", app.url)).send();
    for (path, status, words) in [
        ("/login/challenge", 405, "This page cannot be opened directly"),
        ("/security/totp/confirm", 405, "This page cannot be opened directly"),
        ("/no/such/page", 404, "Page not found"),
    ] {
        let r = get(path).await.expect("send");
        assert_eq!(r.status().as_u16(), status, "{path}");
        let kind = r.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
        if status == 405 {
            assert!(r.headers().get("allow").is_some(), "{path}: Allow kept");
        }
        let html = r.text().await.expect("html");
        assert!(kind.starts_with("text/html"), "{path}: {kind}");
        assert!(html.contains(words) && html.contains("href=\"/\""), "{path}: {html}");
        assert!(html.contains("/static/app.css"), "{path}: styled");
    }
    app.get("/api/v1/no-such-route", None).await.assert_error(404, "not_found");
    // Too much, or nothing readable: a page on the web, JSON on the API.
    for body in [vec![b'a'; 200 * 1024], b"x".to_vec()] {
        let r = app.http.post(format!("{}/login", app.url)).body(body.clone()).send().await.expect("send");
        assert!(r.status().is_client_error());
        assert!(r.text().await.expect("html").contains("<h1>"), "a page, not plain text");
        let r = app
            .http
            .post(format!("{}/api/v1/login", app.url))
            .header(CONTENT_TYPE, "application/json")
            .body(body)
            .send()
            .await
            .expect("send");
        assert!(r.status().is_client_error());
        let json: serde_json::Value = r.json().await.expect("json");
        assert!(json["error"]["code"].is_string(), "{json}");
    }
    for path in ["/favicon.ico", "/static/icon.svg"] {
        let r = get(path).await.expect("send");
        assert_eq!(r.status().as_u16(), 200, "{path}");
        assert_eq!(r.headers().get(CONTENT_TYPE).and_then(|v| v.to_str().ok()), Some("image/svg+xml"));
    }
    let page = get("/login").await.expect("send").text().await.expect("html");
    assert!(page.contains(r#"<link rel="icon" href="/static/icon.svg""#), "{page}");
}

/// The recovery codes are the answer to the confirm form, so reloading that
/// page sends the form again: it lands on Security saying the app is set
/// up, not on a new set-up that would replace nothing.
#[tokio::test]
async fn sending_the_confirm_form_again_does_not_start_a_new_set_up() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let user = app.user().await;
    let (_, _, html) = app.page("/security/totp/new", Some(&user.token)).await;
    let csrf = csrf_of(&html);
    let (status, _, html) = app.form_post("/security/totp/new", &user.token, &[("csrf", &csrf)]).await;
    assert_eq!(status, 200);
    let attr = |name: &str| {
        let at = html.find(name).unwrap_or_else(|| panic!("{name} in {html}")) + name.len();
        html[at..].split('"').next().expect("value").to_owned()
    };
    let enrollment = attr("name=\"enrollment_id\" value=\"");
    let secret = twostep_domain::factors::totp::otpauth::base32_decode(&attr("data-copy-value=\"")).expect("key");
    let form = [("csrf", csrf.as_str()), ("enrollment_id", enrollment.as_str()), ("code", &app.code(&secret, 0))];
    let (status, _, codes) = app.form_post("/security/totp/confirm", &user.token, &form).await;
    assert_eq!(status, 200);
    assert_eq!(codes.matches("data-testid=\"recovery-code\"").count(), 10, "{codes}");
    let (status, to, _) = app.form_post("/security/totp/confirm", &user.token, &form).await;
    assert_eq!((status, to.as_str()), (303, "/security?notice=totp_already_added"));
    let (_, _, security) = app.page(&to, Some(&user.token)).await;
    assert!(security.contains("That authenticator app is already set up"), "{security}");
}
