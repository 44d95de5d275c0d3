//! 2FA policy as the browser and the mailbox meet it (issue 6): the
//! operator's mandate notice mailed once, enrolment-only web sessions held on
//! set-up, and the organisation pages' guards.

use reqwest::header::{COOKIE, LOCATION};
use serde_json::json;
use twostep::config::PhoneProvider;
use twostep_domain::settings::Settings;
use twostep_domain::time::Timestamp;

use crate::helpers::{Db, TestApp, User};

const WEEK: i64 = 7 * 24 * 3600;

#[expect(clippy::disallowed_methods, reason = "the fake clock starts at the real time")]
fn real_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .try_into()
        .expect("fits")
}

/// The operator's mandate, in force a week from now.
fn upcoming(s: &mut Settings) {
    s.require_two_factor = true;
    s.two_factor_enforce_from = Some(Timestamp::from_secs(real_now()).plus_secs(WEEK));
}

/// A page as a browser with this session cookie gets it: status, `Location`, body.
async fn page(app: &TestApp, user: &User, path: &str) -> (u16, String, String) {
    let r = app
        .http
        .get(format!("{}{path}", app.url))
        .header(COOKIE, format!("twostep_session={}", user.token))
        .send()
        .await
        .expect("page");
    let status = r.status().as_u16();
    let location = r.headers().get(LOCATION).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (status, location, r.text().await.expect("html"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mandate_notice_is_mailed_once_before_the_date() {
    let sink = crate::mail::SmtpSink::start();
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
    let (status, _, html) = page(&app, &user, "/security").await;
    assert_eq!(status, 200);
    assert!(html.contains("data-testid=\"mandate-banner\"") && html.contains("becomes mandatory on"), "{html}");
    assert!(html.contains("href=\"/two-factor/why\""));
    let (status, _, why) = page(&app, &user, "/two-factor/why").await;
    assert_eq!(status, 200);
    let date = Timestamp::from_secs(real_now()).plus_secs(WEEK).rfc3339();
    assert!(why.contains(&date[..10]), "{why}");

    let with_totp = app.user_with_totp().await;
    let (_, _, html) = page(&app, &with_totp, "/security").await;
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
        let (status, location, _) = page(&app, &user, held).await;
        if held == "/" {
            assert_eq!((status, location.as_str()), (303, "/security"), "{held}");
            continue;
        }
        assert_eq!((status, location.as_str()), (303, "/security/two-factor/required"), "{held}");
    }
    let (status, _, html) = page(&app, &user, "/security/two-factor/required").await;
    assert_eq!(status, 200);
    assert!(html.contains("set it up to continue") && html.contains("href=\"/security/totp/new\""), "{html}");
    let (status, _, html) = page(&app, &user, "/security/totp/new").await;
    assert_eq!(status, 200, "{html}");
    assert_eq!(page(&app, &user, "/two-factor/why").await.0, 200);

    // A confirmed factor lifts the limit for the same session.
    let e = app.post("/api/v1/me/totp", &json!({}), Some(&user.token)).await.assert_status(201);
    let secret = twostep_domain::factors::otpauth::base32_decode(&e.str("secret")).expect("secret");
    app.post(
        "/api/v1/me/totp/confirm",
        &json!({"enrollment_id": e.str("enrollment_id"), "code": app.code(&secret, 0)}),
        Some(&user.token),
    )
    .await
    .assert_status(201);
    assert_eq!(page(&app, &user, "/orgs").await.0, 200);
    assert_eq!(page(&app, &user, "/security/two-factor/required").await.1, "/security");
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

    let (status, _, html) = page(&app, &owner, &format!("/orgs/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("Acme &#60;b&#62;") || html.contains("Acme &lt;b&gt;"), "names are escaped: {html}");
    assert!(html.contains("disabled aria-describedby=\"require-blocked\""), "{html}");
    assert!(html.contains(&format!("These owners must turn on 2FA first: {}", owner.email)), "{html}");
    let (_, _, list) = page(&app, &owner, "/orgs").await;
    assert!(list.contains(&format!("href=\"/orgs/{id}\"")));

    // A stranger gets the same 404 as for no organisation at all.
    assert_eq!(page(&app, &stranger, &format!("/orgs/{id}")).await.0, 404);
    assert_eq!(page(&app, &owner, "/orgs/no-such-org").await.0, 404);

    // A member sees the organisation, without the owners' controls.
    let (status, _, html) = page(&app, &member, &format!("/orgs/{id}")).await;
    assert_eq!(status, 200);
    assert!(html.contains(">Leave<") && !html.contains("invite-form") && !html.contains("Require two-factor"));

    // Owner with 2FA, switch on: the member without 2FA is shown the way to set it up.
    let e = app.post("/api/v1/me/totp", &json!({}), Some(&owner.token)).await.assert_status(201);
    let secret = twostep_domain::factors::otpauth::base32_decode(&e.str("secret")).expect("secret");
    app.post(
        "/api/v1/me/totp/confirm",
        &json!({"enrollment_id": e.str("enrollment_id"), "code": app.code(&secret, 0)}),
        Some(&owner.token),
    )
    .await
    .assert_status(201);
    let (_, _, html) = page(&app, &owner, &format!("/orgs/{id}")).await;
    assert!(html.contains(">Require two-factor</button>") && !html.contains("require-blocked"), "{html}");
    app.put(&format!("/api/v1/orgs/{id}/two-factor-policy"), &json!({"require_two_factor": true}), Some(&owner.token))
        .await
        .assert_status(200);
    let (status, _, html) = page(&app, &member, &format!("/orgs/{id}")).await;
    assert_eq!(status, 403);
    assert!(html.contains("org-requires-two-factor") && html.contains("href=\"/security/totp/new\""), "{html}");
}
