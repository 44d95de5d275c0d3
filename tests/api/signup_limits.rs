//! Sign-up caps (SEC-36, §2.12): `409 email_taken` is the one answer that
//! says an address has an account, so sign-up attempts are capped per
//! source address and per e-mail address, `429` with `Retry-After` beyond.
//! The decision and the count are one statement: a burst from one source,
//! spread over two instances on PostgreSQL, never gets past the cap.

use serde_json::json;
use twostep_testkit::{Db, TestApp, each_backend};

use crate::burst::{burst, count, tally};

const PER_SOURCE: i64 = 10;
const PER_EMAIL: i64 = 5;

async fn app_with_caps(db: Db) -> TestApp {
    TestApp::spawn_with(db, |s| {
        s.signups_per_source_per_hour = PER_SOURCE;
        s.signups_per_email_per_hour = PER_EMAIL;
    })
    .await
}

each_backend!(
    sec36_sign_ups_are_capped_per_source_address,
    sec36_sign_ups_are_capped_per_email_address,
    sec36_a_burst_of_50_sign_ups_never_passes_the_cap,
    sec36_a_burst_of_200_sign_ups_never_passes_the_cap
);

async fn sec36_sign_ups_are_capped_per_source_address(db: Db) {
    let app = app_with_caps(db).await;
    let taken = app.user().await;
    let password = "correct horse battery staple";
    // Taken addresses count as attempts: that is the oracle being capped.
    for _ in 0..3 {
        app.post("/api/v1/accounts", &json!({"email": taken.email, "password": password}), None)
            .await
            .assert_error(409, "email_taken");
    }
    // Malformed attempts reveal nothing and are not counted.
    app.post("/api/v1/accounts", &json!({"email": "not an address", "password": password}), None)
        .await
        .assert_error(400, "invalid_email");
    for i in 4..PER_SOURCE {
        app.post("/api/v1/accounts", &json!({"email": format!("new{i}@example.com"), "password": password}), None)
            .await
            .assert_status(201);
    }
    // The cap is reached: a new address and a taken one are refused alike.
    for email in ["one-more@example.com", taken.email.as_str()] {
        let r = app
            .post("/api/v1/accounts", &json!({"email": email, "password": password}), None)
            .await
            .assert_error(429, "too_many_requests");
        let wait: i64 = r.header("retry-after").parse().expect("Retry-After in seconds");
        assert!((3500..=3600).contains(&wait), "{wait}");
    }
    assert_eq!(app.login("one-more@example.com", password).await.status.as_u16(), 401, "no account was made");
    // The browser's form is capped by the same count.
    let page = app.http.get(format!("{}/signup", app.url)).send().await.expect("page");
    let cookie = page.headers().get("set-cookie").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    let html = page.text().await.expect("html");
    let csrf = twostep_testkit::csrf_of(&html);
    let form = app
        .http
        .post(format!("{}/signup", app.url))
        .header("cookie", cookie.split(';').next().expect("pair"))
        .form(&[("csrf", csrf.as_str()), ("email", "by-form@example.com"), ("password", password)])
        .send()
        .await
        .expect("form");
    assert_eq!(form.status().as_u16(), 429);
    assert!(form.headers().contains_key("retry-after"));
    assert!(form.text().await.expect("html").contains("Too many sign-ups"));
    // An hour later the source may sign up again.
    app.clock.advance(3600);
    app.post("/api/v1/accounts", &json!({"email": "one-more@example.com", "password": password}), None)
        .await
        .assert_status(201);
}

async fn sec36_sign_ups_are_capped_per_email_address(db: Db) {
    let app = TestApp::spawn_with_resolved(db, |r| {
        r.settings.signups_per_source_per_hour = 1000;
        r.settings.signups_per_email_per_hour = PER_EMAIL;
        // Believe X-Forwarded-For from loopback, so attempts come from many addresses.
        r.trusted_proxies = twostep_domain::policy::allowlist::parse_ranges("127.0.0.1").expect("ranges");
    })
    .await;
    let taken = app.user().await;
    let body = json!({"email": taken.email, "password": "correct horse battery staple"});
    let from = |i: i64| {
        app.http.post(format!("{}/api/v1/accounts", app.url)).header("x-forwarded-for", format!("198.51.100.{i}"))
    };
    // The sign-up that made the account counted once already.
    for i in 1..PER_EMAIL {
        let r = from(i).json(&body).send().await.expect("send");
        assert_eq!(r.status().as_u16(), 409);
    }
    let r = from(99).json(&body).send().await.expect("send");
    assert_eq!(r.status().as_u16(), 429, "the address is capped whatever the source");
    assert!(r.headers().contains_key("retry-after"));
    // Other addresses are untouched.
    let other = json!({"email": "someone-else@example.com", "password": "correct horse battery staple"});
    assert_eq!(from(100).json(&other).send().await.expect("send").status().as_u16(), 201);
}

/// `n` sign-ups released at once from one source, half for taken addresses.
async fn burst_of(db: Db, n: usize) {
    let app = app_with_caps(db).await;
    let taken: Vec<String> = vec![app.user().await.email, app.user().await.email];
    // The two accounts above used two of the source's ten.
    let left = usize::try_from(PER_SOURCE).expect("cap") - 2;
    let bases = app.instances().await;
    let resps = burst(&bases, n, move |i, client, base| {
        let email = if i % 2 == 0 { taken[i % 4 / 2].clone() } else { format!("burst-{i}@example.com") };
        client
            .post(format!("{base}/api/v1/accounts"))
            .json(&json!({"email": email, "password": "correct horse battery staple"}))
    })
    .await;
    let t = tally(&resps);
    let attempts = count(&resps, 201) + count(&resps, 409);
    assert!(attempts <= left, "{attempts} attempts got through a cap of {left}: {t:?}");
    assert!(attempts >= 1, "the cap admits some: {t:?}");
    assert_eq!(attempts + count(&resps, 429), n, "only 201, 409 and 429: {t:?}");
    for r in resps.iter().filter(|r| r.status.as_u16() == 429) {
        let wait: i64 = r.header("retry-after").parse().expect("Retry-After in seconds");
        assert!((1..=3600).contains(&wait), "{wait}");
        assert_eq!(r.body["error"]["code"], "too_many_requests");
    }
    // The count held: nothing further from this source this hour.
    app.post(
        "/api/v1/accounts",
        &json!({"email": "after@example.com", "password": "correct horse battery staple"}),
        None,
    )
    .await
    .assert_error(429, "too_many_requests");
}

async fn sec36_a_burst_of_50_sign_ups_never_passes_the_cap(db: Db) {
    burst_of(db, 50).await;
}

async fn sec36_a_burst_of_200_sign_ups_never_passes_the_cap(db: Db) {
    burst_of(db, 200).await;
}
