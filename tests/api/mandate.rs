//! 2FA policy as the browser and the mailbox meet it (issue 6): the
//! operator's mandate notice mailed once, enrolment-only web sessions held on
//! set-up, and the organisation pages' guards.

use reqwest::header::COOKIE;
use serde_json::json;
use twostep::config::PhoneProvider;
use twostep_domain::settings::Settings;
use twostep_domain::time::Timestamp;
use twostep_testkit::{Db, TestApp, User, csrf_of, real_now};

const WEEK: i64 = 7 * 24 * 3600;

/// The operator's mandate, in force a week from now.
fn upcoming(s: &mut Settings) {
    s.require_two_factor = true;
    s.two_factor_enforce_from = Some(Timestamp::from_secs(real_now()).plus_secs(WEEK));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mandate_notice_is_mailed_once_before_the_date() {
    let sink = twostep_testkit::SmtpSink::start();
    let app = TestApp::spawn_providers(Db::Sqlite, Some(sink.url.clone()), PhoneProvider::None, upcoming).await;
    let user = app.verified_user(&sink).await;
    let with_totp = app.verified_user_with_totp(&sink).await;
    for _ in 0..3 {
        assert_eq!(app.login(&user.email, &user.password).await.assert_status(200).str("status"), "authenticated");
    }
    let login = app.login(&with_totp.email, &with_totp.password).await.assert_status(200);
    assert_eq!(login.str("status"), "second_factor_required");

    let mail = sink.wait_for_subject("Two-factor authentication will become mandatory").await;
    assert_eq!(mail["to"], json!([user.email]));
    let text = mail["text"].as_str().expect("text");
    let date = Timestamp::from_secs(real_now()).plus_secs(WEEK).rfc3339();
    assert!(text.contains(&date[..10]), "the notice names the date: {text}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(sink.with_subject("Two-factor authentication will become mandatory").len(), 1, "once per account");

    // Once in force, sign-in asks for set-up instead; no further notice.
    app.clock.advance(WEEK);
    assert_eq!(app.login(&user.email, &user.password).await.str("status"), "enrollment_required");
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(sink.with_subject("Two-factor authentication will become mandatory").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pages_show_the_upcoming_mandate_to_accounts_without_two_factor() {
    let app = TestApp::spawn_with(Db::Sqlite, upcoming).await;
    let user = app.user().await;
    let (status, _, html) = app.page("/security", Some(&user.token)).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-testid=\"mandate-banner\"") && html.contains("becomes mandatory on"), "{html}");
    assert!(html.contains("href=\"/two-factor/why\""));
    let (status, _, why) = app.page("/two-factor/why", Some(&user.token)).await;
    assert_eq!(status, 200);
    let date = Timestamp::from_secs(real_now()).plus_secs(WEEK).rfc3339();
    assert!(why.contains(&date[..10]), "{why}");

    let with_totp = app.user_with_totp().await;
    let (_, _, html) = app.page("/security", Some(&with_totp.token)).await;
    assert!(!html.contains("mandate-banner"), "no banner once 2FA is on");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolment_session_reaches_only_factor_set_up_in_the_browser() {
    let app = TestApp::spawn_with(Db::Sqlite, |s| s.require_two_factor = true).await;
    let mut user = app.user().await;
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.str("status"), "enrollment_required");
    user.token = login.str("session_token");

    for held in ["/security", "/orgs", "/orgs/anything", "/security/log", "/security/password", "/"] {
        let (status, location, _) = app.page(held, Some(&user.token)).await;
        if held == "/" {
            assert_eq!((status, location.as_str()), (303, "/security"), "{held}");
            continue;
        }
        assert_eq!((status, location.as_str()), (303, "/security/two-factor/required"), "{held}");
    }
    let (status, _, html) = app.page("/security/two-factor/required", Some(&user.token)).await;
    assert_eq!(status, 200);
    assert!(html.contains("set it up to continue") && html.contains("href=\"/security/totp/new\""), "{html}");
    let (status, _, html) = app.page("/security/totp/new", Some(&user.token)).await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(app.page("/two-factor/why", Some(&user.token)).await.0, 200);

    // A confirmed factor lifts the limit, in a new session (SEC-52).
    let e = app.post("/api/v1/me/totp", &json!({}), Some(&user.token)).await.assert_status(201);
    let secret = twostep_domain::factors::totp::otpauth::base32_decode(&e.str("secret")).expect("secret");
    let c = app
        .post(
            "/api/v1/me/totp/confirm",
            &json!({"enrollment_id": e.str("enrollment_id"), "code": app.code(&secret, 0)}),
            Some(&user.token),
        )
        .await
        .assert_status(201);
    assert_eq!(app.page("/orgs", Some(&user.token)).await.1, "/login", "the enrolment-only cookie has ended");
    user.token = c.str("session_token");
    assert_eq!(app.page("/orgs", Some(&user.token)).await.0, 200);
    assert_eq!(app.page("/security/two-factor/required", Some(&user.token)).await.1, "/security");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn organisation_pages_guard_membership_and_the_switch() {
    let (app, sink) = TestApp::spawn_with_mail(Db::Sqlite).await;
    let owner = app.user().await;
    let member = app.verified_user(&sink).await;
    let stranger = app.user().await;
    let org = app.post("/api/v1/orgs", &json!({"name": "Acme <b>"}), Some(&owner.token)).await.assert_status(201);
    let id = org.str("id");
    crate::orgs::join(&app, &owner, &id, &member, "member").await;

    let (status, _, html) = app.page(&format!("/orgs/{id}"), Some(&owner.token)).await;
    assert_eq!(status, 200);
    assert!(html.contains("Acme &#60;b&#62;") || html.contains("Acme &lt;b&gt;"), "names are escaped: {html}");
    assert!(html.contains("disabled aria-describedby=\"require-blocked\""), "{html}");
    assert!(html.contains(&format!("These owners must turn on 2FA first: {}", owner.email)), "{html}");
    let (_, _, list) = app.page("/orgs", Some(&owner.token)).await;
    assert!(list.contains(&format!("href=\"/orgs/{id}\"")));

    // A stranger gets the same 404 as for no organisation at all.
    assert_eq!(app.page(&format!("/orgs/{id}"), Some(&stranger.token)).await.0, 404);
    assert_eq!(app.page("/orgs/no-such-org", Some(&owner.token)).await.0, 404);

    // A member sees the organisation, without the owners' controls.
    let (status, _, html) = app.page(&format!("/orgs/{id}"), Some(&member.token)).await;
    assert_eq!(status, 200);
    assert!(html.contains(">Leave<") && !html.contains("invite-form") && !html.contains("Require two-factor"));

    // Owner with 2FA, switch on: the member without 2FA is shown the way to set it up.
    let e = app.post("/api/v1/me/totp", &json!({}), Some(&owner.token)).await.assert_status(201);
    let secret = twostep_domain::factors::totp::otpauth::base32_decode(&e.str("secret")).expect("secret");
    app.post(
        "/api/v1/me/totp/confirm",
        &json!({"enrollment_id": e.str("enrollment_id"), "code": app.code(&secret, 0)}),
        Some(&owner.token),
    )
    .await
    .assert_status(201);
    let (_, _, html) = app.page(&format!("/orgs/{id}"), Some(&owner.token)).await;
    assert!(html.contains(">Require two-factor</button>") && !html.contains("require-blocked"), "{html}");
    app.put(&format!("/api/v1/orgs/{id}/two-factor-policy"), &json!({"require_two_factor": true}), Some(&owner.token))
        .await
        .assert_status(200);
    let (status, _, html) = app.page(&format!("/orgs/{id}"), Some(&member.token)).await;
    assert_eq!(status, 403);
    assert!(html.contains("org-requires-two-factor") && html.contains("href=\"/security/totp/new\""), "{html}");
}

twostep_testkit::each_backend!(
    sec52_confirming_the_first_factor_ends_the_enrolment_api_session,
    sec52_confirming_the_first_factor_in_the_browser_sets_a_new_cookie
);
twostep_testkit::both_backends!(turning_two_factor_on_in_a_full_session_keeps_its_token);

/// Signs in under the operator's mandate: an enrolment-only session.
async fn enrolment_session(db: Db) -> (TestApp, User) {
    let app = TestApp::spawn_with(db, |s| s.require_two_factor = true).await;
    let mut user = app.user().await;
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.str("status"), "enrollment_required");
    user.token = login.str("session_token");
    (app, user)
}

async fn sec52_confirming_the_first_factor_ends_the_enrolment_api_session(db: Db) {
    let (app, user) = enrolment_session(db).await;
    let old = user.token.clone();
    let e = app.post("/api/v1/me/totp", &json!({}), Some(&old)).await.assert_status(201);
    let secret = twostep_domain::factors::totp::otpauth::base32_decode(&e.str("secret")).expect("secret");
    let c = app
        .post(
            "/api/v1/me/totp/confirm",
            &json!({"enrollment_id": e.str("enrollment_id"), "code": app.code(&secret, 0)}),
            Some(&old),
        )
        .await
        .assert_status(201);
    // Extended, not changed: what clients read before is still there.
    assert!(c.body["authenticator"]["id"].is_string(), "{}", c.body);
    assert_eq!(c.body["recovery_codes"].as_array().expect("codes").len(), 10);
    let new = c.str("session_token");
    assert_ne!(new, old);
    assert!(c.header("set-cookie").is_empty(), "a bearer caller gets no cookie");
    // The enrolment-only token is gone; the new one is a full session.
    app.get("/api/v1/me", Some(&old)).await.assert_error(401, "unauthenticated");
    app.get("/api/v1/me", Some(&new)).await.assert_status(200);
    app.get("/api/v1/me/sessions", Some(&new)).await.assert_status(200);
    let sessions = app.get("/api/v1/me/sessions", Some(&new)).await;
    assert_eq!(
        sessions.body.as_array().map_or(0, Vec::len),
        2,
        "the signed-up session and this one: {}",
        sessions.body
    );
}

fn session_cookie_of(resp: &reqwest::Response) -> Option<String> {
    resp.headers()
        .get_all(reqwest::header::SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|c| c.strip_prefix("twostep_session="))
        .map(|c| c.split(';').next().unwrap_or_default().to_owned())
}

async fn sec52_confirming_the_first_factor_in_the_browser_sets_a_new_cookie(db: Db) {
    let (app, mut user) = enrolment_session(db).await;
    // The GET shows a button; its POST starts the enrolment (SEC-55).
    let (status, _, button) = app.page("/security/totp/new", Some(&user.token)).await;
    assert_eq!(status, 200, "{button}");
    let r = app
        .http
        .post(format!("{}/security/totp/new", app.url))
        .header(COOKIE, format!("twostep_session={}", user.token))
        .header("origin", &app.url)
        .form(&[("csrf", csrf_of(&button))])
        .send()
        .await
        .expect("start");
    assert_eq!(r.status().as_u16(), 200);
    let html = r.text().await.expect("html");
    let csrf = csrf_of(&html);
    let at =
        html.find("name=\"enrollment_id\" value=\"").expect("enrolment id") + "name=\"enrollment_id\" value=\"".len();
    let enrollment = html[at..].split('"').next().expect("value").to_owned();
    let at = html.find("data-testid=\"totp-secret\">").expect("secret") + "data-testid=\"totp-secret\">".len();
    let grouped = html[at..].split('<').next().expect("secret text");
    let secret =
        twostep_domain::factors::totp::otpauth::base32_decode(&grouped.replace(' ', "")).expect("a base32 secret");
    let r = app
        .http
        .post(format!("{}/security/totp/confirm", app.url))
        .header(COOKIE, format!("twostep_session={}", user.token))
        .form(&[
            ("csrf", csrf.as_str()),
            ("enrollment_id", enrollment.as_str()),
            ("code", app.code(&secret, 0).as_str()),
            ("name", ""),
        ])
        .send()
        .await
        .expect("confirm");
    assert_eq!(r.status().as_u16(), 200);
    let new = session_cookie_of(&r).expect("a new session cookie");
    assert_ne!(new, user.token, "the cookie value changes");
    let codes_page = r.text().await.expect("html");
    assert!(codes_page.contains("Two-factor authentication is on"), "{codes_page}");
    // The old cookie is signed out; the new one is a full session.
    let old = std::mem::replace(&mut user.token, new);
    app.get("/api/v1/me", Some(&old)).await.assert_error(401, "unauthenticated");
    assert_eq!(app.page("/security", Some(&user.token)).await.0, 200);
    // The codes page's forms already carry the new session's CSRF token.
    let out = app
        .http
        .post(format!("{}/logout", app.url))
        .header(COOKIE, format!("twostep_session={}", user.token))
        .form(&[("csrf", csrf_of(&codes_page).as_str())])
        .send()
        .await
        .expect("logout");
    assert_eq!(out.status().as_u16(), 303, "signed out, not refused as a stale form");
    app.get("/api/v1/me", Some(&user.token)).await.assert_error(401, "unauthenticated");
}

/// Turning 2FA on from a full session grants it nothing it lacked (it could
/// already do everything), so the token stays: SEC-52 rotates at privilege
/// changes, and re-auth still rotates the cookie as before.
async fn turning_two_factor_on_in_a_full_session_keeps_its_token(app: TestApp) {
    let user = app.user().await;
    let e = app.post("/api/v1/me/totp", &json!({}), Some(&user.token)).await.assert_status(201);
    let secret = twostep_domain::factors::totp::otpauth::base32_decode(&e.str("secret")).expect("secret");
    let c = app
        .post(
            "/api/v1/me/totp/confirm",
            &json!({"enrollment_id": e.str("enrollment_id"), "code": app.code(&secret, 0)}),
            Some(&user.token),
        )
        .await
        .assert_status(201);
    assert_eq!(c.body["recovery_codes"].as_array().expect("codes").len(), 10);
    assert!(c.body.get("session_token").is_none(), "{}", c.body);
    app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
}

twostep_testkit::each_backend!(sec52_a_cookie_caller_of_the_api_gets_the_new_cookie);

/// The API also takes the web cookie (with `X-CSRF-Token`); such a caller
/// is handed the new session as a cookie too, since its old one has ended.
async fn sec52_a_cookie_caller_of_the_api_gets_the_new_cookie(db: Db) {
    let (app, user) = enrolment_session(db).await;
    let cookie = format!("twostep_session={}", user.token);
    let (_, _, html) = app.page("/security/two-factor/required", Some(&user.token)).await;
    let csrf = csrf_of(&html);
    let call = |path: &str, body: serde_json::Value| {
        app.http
            .post(format!("{}{path}", app.url))
            .header(COOKIE, &cookie)
            .header("x-csrf-token", &csrf)
            .json(&body)
            .send()
    };
    let e = call("/api/v1/me/totp", json!({})).await.expect("enrol");
    assert_eq!(e.status().as_u16(), 201);
    let e: serde_json::Value = e.json().await.expect("json");
    let secret =
        twostep_domain::factors::totp::otpauth::base32_decode(e["secret"].as_str().expect("secret")).expect("base32");
    let body = json!({"enrollment_id": e["enrollment_id"], "code": app.code(&secret, 0)});
    let r = call("/api/v1/me/totp/confirm", body).await.expect("confirm");
    assert_eq!(r.status().as_u16(), 201);
    let new_cookie = session_cookie_of(&r).expect("a new session cookie");
    let c: serde_json::Value = r.json().await.expect("json");
    assert_eq!(c["session_token"].as_str(), Some(new_cookie.as_str()));
    app.get("/api/v1/me", Some(&user.token)).await.assert_error(401, "unauthenticated");
    app.get("/api/v1/me/sessions", Some(&new_cookie)).await.assert_status(200);
}

/// With no mandate, the explanation does not claim the operator requires it.
#[tokio::test]
async fn without_a_mandate_the_why_page_does_not_say_the_operator_requires_it() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let user = app.user().await;
    let (status, _, why) = app.page("/two-factor/why", Some(&user.token)).await;
    assert_eq!(status, 200);
    assert!(why.contains("does not require two-factor authentication of every account"), "{why}");
    assert!(!why.contains("The operator requires it"), "{why}");
}
