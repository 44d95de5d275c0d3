//! Pages that must not be turned against their own user: `next=` goes only
//! to this site (pen-test finding 6), and a GET changes nothing (finding
//! 11, SEC-55): a link or an image on another site carries the cookie, so
//! only a POST with the form's token may start an enrolment, make a
//! pairing code or reveal recovery codes.

use reqwest::header::COOKIE;

use crate::both_backends;
use crate::helpers::TestApp;

both_backends!(reauth_next_goes_only_to_a_local_path);

/// A page as a browser with this session's cookie gets it: status, `Location`, body.
async fn page(app: &TestApp, path: &str, token: &str) -> (u16, String, String) {
    let r = app
        .http
        .get(format!("{}{path}", app.url))
        .header(COOKIE, format!("twostep_session={token}"))
        .send()
        .await
        .expect("page");
    let status = r.status().as_u16();
    let location = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (status, location, r.text().await.expect("body"))
}

async fn form_post(app: &TestApp, path: &str, token: &str, form: &[(&str, &str)]) -> (u16, String, String) {
    let r = app
        .http
        .post(format!("{}{path}", app.url))
        .header(COOKIE, format!("twostep_session={token}"))
        .header("origin", &app.url)
        .form(form)
        .send()
        .await
        .expect("post");
    let status = r.status().as_u16();
    let location = r.headers().get("location").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    (status, location, r.text().await.expect("body"))
}

fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().expect("value").to_owned()
}

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
        let (status, location, _) = page(&app, &format!("/reauth?next={next}"), &user.token).await;
        assert_eq!((status, location.as_str()), (303, "/security"), "next={next}");
    }
    let (status, location, _) = page(&app, "/reauth?next=%2Fsecurity%2Flog", &user.token).await;
    assert_eq!((status, location.as_str()), (303, "/security/log"));

    // Stale: the form carries only a safe `next`, and posting a hostile one
    // back lands on the Security page.
    app.clock.advance(11 * 60);
    for next in HOSTILE_NEXT {
        let (status, _, html) = page(&app, &format!("/reauth?next={next}"), &user.token).await;
        assert_eq!(status, 200, "next={next}");
        assert_eq!(next_of(&html), "/security", "next={next}");
    }
    let (_, _, html) = page(&app, "/reauth", &user.token).await;
    let csrf = csrf_of(&html);
    for next in ["/\t/evil.example", "/\n", "/\r\n", "//evil.example", "/\\evil.example", "\\\\evil.example", " /x"] {
        // No password: refused without counting towards the throttle.
        let form = [("csrf", csrf.as_str()), ("next", next), ("password", "")];
        let (status, _, html) = form_post(&app, "/reauth", &user.token, &form).await;
        assert_eq!(status, 401, "{next:?}");
        assert_eq!(next_of(&html), "/security", "{next:?}");
    }
    let form = [("csrf", csrf.as_str()), ("next", "/\t/evil.example"), ("password", user.password.as_str())];
    let (status, location, _) = form_post(&app, "/reauth", &user.token, &form).await;
    assert_eq!((status, location.as_str()), (303, "/security"));
}
