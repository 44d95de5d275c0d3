//! Pages that must not be turned against their own user: `next=` goes only
//! to this site (pen-test finding 6), and a GET changes nothing (finding
//! 11, SEC-55): a link or an image on another site carries the cookie, so
//! only a POST with the form's token may start an enrolment, make a
//! pairing code or reveal recovery codes.

use std::time::Duration;

use reqwest::header::COOKIE;
use twostep_testkit::{Db, SmtpSink, TestApp, User, both_backends, csrf_of, each_backend};

both_backends!(reauth_next_goes_only_to_a_local_path, cookie_reads_of_the_api_come_only_from_this_origin);
each_backend!(gets_change_nothing_and_the_posts_with_their_token_do_the_work);

/// The `next` hidden field of the re-auth form.
fn next_of(html: &str) -> String {
    let at = html.find("name=\"next\" value=\"").expect("a next field") + "name=\"next\" value=\"".len();
    html[at..].split('"').next().expect("value").to_owned()
}

/// `next` values as they arrive in the query string, percent-encoded.
const HOSTILE_NEXT: &[&str] = &[
    "/%09/evil.example",
    "/%0a",
    "/%0d%0aSet-Cookie:%20a=b",
    "%2f%2fevil.example",
    "//evil.example",
    "///evil.example",
    "/%5cevil.example",
    "%5c%5cevil.example",
    "/%5c/evil.example",
    "%09//evil.example",
    "%20//evil.example",
    "/%20/evil.example",
    "/%00",
    "/%7f",
    "/%C2%85/evil.example",
    "/%252f%252fevil.example",
    "https://evil.example/",
    "https:evil.example",
    "javascript:alert(1)",
    "evil.example",
];

/// Pen-test finding 6: `next=/%09/evil.example` sent Chromium to another
/// origin and `next=/%0a` was a 500.
async fn reauth_next_goes_only_to_a_local_path(app: TestApp) {
    let user = app.user().await;
    // Freshly signed in, `/reauth` has nothing to ask and goes straight on.
    for next in HOSTILE_NEXT {
        let (status, location, _) = app.page(&format!("/reauth?next={next}"), Some(&user.token)).await;
        assert_eq!((status, location.as_str()), (303, "/security"), "next={next}");
    }
    let (status, location, _) = app.page("/reauth?next=%2Fsecurity%2Flog", Some(&user.token)).await;
    assert_eq!((status, location.as_str()), (303, "/security/log"));

    // Stale: the form carries only a safe `next`, and posting a hostile one
    // back lands on the Security page.
    app.clock.advance(11 * 60);
    for next in HOSTILE_NEXT {
        let (status, _, html) = app.page(&format!("/reauth?next={next}"), Some(&user.token)).await;
        assert_eq!(status, 200, "next={next}");
        assert_eq!(next_of(&html), "/security", "next={next}");
    }
    let (_, _, html) = app.page("/reauth", Some(&user.token)).await;
    let csrf = csrf_of(&html);
    for next in ["/\t/evil.example", "/\n", "/\r\n", "//evil.example", "/\\evil.example", "\\\\evil.example", " /x"] {
        // No password: refused without counting towards the throttle.
        let form = [("csrf", csrf.as_str()), ("next", next), ("password", "")];
        let (status, _, html) = app.form_post("/reauth", &user.token, &form).await;
        assert_eq!(status, 401, "{next:?}");
        assert_eq!(next_of(&html), "/security", "{next:?}");
    }
    let form = [("csrf", csrf.as_str()), ("next", "/\t/evil.example"), ("password", user.password.as_str())];
    let (status, location, _) = app.form_post("/reauth", &user.token, &form).await;
    assert_eq!((status, location.as_str()), (303, "/security"));
}

async fn events(app: &TestApp, user: &User, event: &str) -> usize {
    let log = app.get("/api/v1/me/security-log", Some(&user.token)).await.assert_status(200);
    log.body.as_array().expect("log").iter().filter(|e| e["event"] == event).count()
}

/// Pen-test finding 11 (SEC-55): each of these was a GET that did the work.
async fn gets_change_nothing_and_the_posts_with_their_token_do_the_work(db: Db) {
    let (app, sink): (TestApp, SmtpSink) = TestApp::spawn_with_mail(db).await;
    let user = app.verified_user_with_totp(&sink).await;
    let token = user.token.clone();

    // An enrolment in progress survives a GET of the set-up page.
    let pending = app.post("/api/v1/me/totp", &serde_json::json!({}), Some(&token)).await.assert_status(201);
    let started = events(&app, &user, "totp_enrollment_started").await;
    let (status, _, html) = app.page("/security/totp/new", Some(&token)).await;
    assert_eq!(status, 200);
    assert!(html.contains("action=\"/security/totp/new\"") && html.contains("method=\"post\""), "{html}");
    assert!(!html.contains("data-testid=\"totp-qr\""), "a GET shows no new secret: {html}");
    assert_eq!(events(&app, &user, "totp_enrollment_started").await, started);

    // No pairing code, no reveal, no download on a GET.
    for path in ["/security/push/new", "/security/recovery-codes", "/security/recovery-codes.txt"] {
        let (status, _, html) = app.page(path, Some(&token)).await;
        assert_eq!(status, 200, "{path}");
        assert!(html.contains(&format!("action=\"{path}\"")) && html.contains("method=\"post\""), "{path}: {html}");
        assert!(!html.contains("#pair=") && !html.contains("data-testid=\"recovery-code\""), "{path}: {html}");
    }
    assert_eq!(events(&app, &user, "push_pairing_started").await, 0);
    assert_eq!(events(&app, &user, "recovery_codes_revealed").await, 0);

    // A POST without the form's token does nothing either.
    for path in ["/security/totp/new", "/security/push/new", "/security/recovery-codes", "/security/recovery-codes.txt"]
    {
        let (status, _, _) = app.form_post(path, &token, &[("csrf", "forged")]).await;
        assert_eq!(status, 403, "{path}");
    }
    assert_eq!(events(&app, &user, "totp_enrollment_started").await, started);
    assert_eq!(events(&app, &user, "push_pairing_started").await, 0);
    assert_eq!(events(&app, &user, "recovery_codes_revealed").await, 0);
    // The enrolment started before all this still confirms.
    let secret = data_encoding::BASE32_NOPAD.decode(pending.str("secret").as_bytes()).expect("base32");
    app.post(
        "/api/v1/me/totp/confirm",
        &serde_json::json!({"enrollment_id": pending.str("enrollment_id"), "code": app.code(&secret, 0)}),
        Some(&token),
    )
    .await
    .assert_status(201);

    // The POSTs with the token do the work.
    let (_, _, html) = app.page("/security/totp/new", Some(&token)).await;
    let csrf = csrf_of(&html);
    let (status, _, html) = app.form_post("/security/totp/new", &token, &[("csrf", &csrf)]).await;
    assert_eq!(status, 200);
    assert!(html.contains("data-testid=\"totp-qr\""), "{html}");
    assert_eq!(events(&app, &user, "totp_enrollment_started").await, started + 1);

    let (status, _, html) = app.form_post("/security/push/new", &token, &[("csrf", &csrf)]).await;
    assert_eq!(status, 200);
    assert!(html.contains("#pair="), "{html}");
    assert_eq!(events(&app, &user, "push_pairing_started").await, 1);

    let (status, _, html) = app.form_post("/security/recovery-codes", &token, &[("csrf", &csrf)]).await;
    assert_eq!(status, 200);
    assert_eq!(html.matches("data-testid=\"recovery-code\"").count(), 10, "{html}");
    // The page's Download is a form too.
    assert!(html.contains("action=\"/security/recovery-codes.txt\""), "{html}");
    let (status, _, text) = app.form_post("/security/recovery-codes.txt", &token, &[("csrf", &csrf)]).await;
    assert_eq!(status, 200);
    assert!(text.contains("twostep recovery codes for"), "{text}");
    assert_eq!(events(&app, &user, "recovery_codes_revealed").await, 2);

    // Two views by one session (shown, then downloaded), both audited: one
    // mail says so, and none came from the GETs before them.
    sink.wait_for_subject("Your recovery codes were viewed").await;
    tokio::time::sleep(Duration::from_millis(700)).await;
    assert_eq!(sink.with_subject("Your recovery codes were viewed").len(), 1);
}

/// SEC-55 for the JSON API: a read by cookie that has effects (revealing
/// recovery codes is audited and mailed) is refused from another site; by
/// bearer token, or from this origin, it works.
async fn cookie_reads_of_the_api_come_only_from_this_origin(app: TestApp) {
    let user = app.user_with_totp().await;
    let cookie = format!("twostep_session={}", user.token);
    let get = |site: &'static str| {
        app.http
            .get(format!("{}/api/v1/me/recovery-codes", app.url))
            .header(COOKIE, cookie.clone())
            .header("sec-fetch-site", site)
            .send()
    };
    for site in ["cross-site", "same-site"] {
        let r = twostep_testkit::Resp::from(get(site).await.expect("get")).await;
        r.assert_error(403, "csrf_failed");
    }
    assert_eq!(events(&app, &user, "recovery_codes_revealed").await, 0);
    let r = twostep_testkit::Resp::from(get("same-origin").await.expect("get")).await.assert_status(200);
    assert!(r.text.contains(&user.recovery_codes[0][..4]), "{}", r.text);
    app.get("/api/v1/me/recovery-codes", Some(&user.token)).await.assert_status(200);
    assert_eq!(events(&app, &user, "recovery_codes_revealed").await, 2);
}
