//! Security notices by e-mail (security.md §2.7): one mail per event, with
//! when, where and what client — never a code or secret. SEC-23, SEC-41, SEC-48.

use serde_json::json;
use twostep_testkit::{Db, TestApp};

#[tokio::test]
async fn each_security_change_mails_the_owner_without_secrets() {
    let (app, sink) = TestApp::spawn_with_mail(Db::Sqlite).await;
    let user = app.verified_user_with_totp(&sink).await;
    let code = app.code(&user.secret, 0);
    app.sign_in_with(&user, "totp", &code).await.assert_status(200);
    app.sign_in_with(&user, "totp", &code).await.assert_error(401, "invalid_code");
    app.sign_in_with(&user, "recovery_code", &user.recovery_codes[0]).await.assert_status(200);
    app.get("/api/v1/me/recovery-codes", Some(&user.token)).await.assert_status(200);
    let fresh = app.post("/api/v1/me/recovery-codes", &json!({}), Some(&user.token)).await.assert_status(201);
    app.delete("/api/v1/me/two-factor", Some(&user.token)).await.assert_status(204);

    let expected = [
        "Confirm your e-mail address",
        "Two-factor authentication was turned on",
        "A used sign-in code was tried again",
        "A recovery code was used",
        "Your recovery codes were viewed",
        "New recovery codes were made",
        "Two-factor authentication was turned off",
    ];
    let mails = sink.wait_for(expected.len()).await;
    // The outbox sends concurrently, so arrival order is not send order.
    let subjects: Vec<&str> = mails.iter().filter_map(|m| m["subject"].as_str()).collect();
    assert_eq!(subjects.len(), expected.len(), "{subjects:?}");
    for want in expected {
        assert_eq!(subjects.iter().filter(|got| got.starts_with(want)).count(), 1, "{want}: {subjects:?}");
    }
    let mut secrets: Vec<String> = user.recovery_codes.iter().flat_map(|c| [c.clone(), c.replace('-', "")]).collect();
    secrets.extend(fresh.body["codes"].as_array().expect("codes").iter().map(|c| c.as_str().expect("s").to_owned()));
    secrets.push(twostep_domain::factors::totp::otpauth::base32_encode(&user.secret));
    secrets.push(code);
    for m in mails.iter().filter(|m| m["subject"] != "Confirm your e-mail address") {
        assert_eq!(m["to"], json!([user.email]));
        let text = m["text"].as_str().expect("text");
        assert!(text.contains("When:") && text.contains("From address: 127.0.0.1"), "{text}");
        assert!(!m["html"].as_str().unwrap_or("").is_empty());
        for s in &secrets {
            assert!(
                !text.contains(s.as_str()) && !m["html"].as_str().unwrap_or("").contains(s.as_str()),
                "a secret in a notice"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_in_from_a_new_device_is_mailed() {
    let (app, sink) = TestApp::spawn_with_mail(Db::Sqlite).await;
    let user = app.verified_user(&sink).await;
    let firefox = "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";
    for _ in 0..2 {
        let r = app
            .http
            .post(format!("{}/api/v1/login", app.url))
            .header("user-agent", firefox)
            .json(&json!({"email": user.email, "password": user.password}))
            .send()
            .await
            .expect("login");
        assert_eq!(r.status().as_u16(), 200);
    }
    // The same client again is not news.
    app.login(&user.email, &user.password).await.assert_status(200);
    let mail = sink.wait_for_subject("New sign-in").await;
    let text = mail["text"].as_str().expect("text");
    assert!(text.contains("Firefox on Windows"), "{text}");
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(sink.with_subject("New sign-in").len(), 1, "once per new device");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn notices_go_only_to_a_verified_address() {
    let (app, sink) = TestApp::spawn_with_mail(Db::Sqlite).await;
    let user = app.user_with_totp().await;
    app.post("/api/v1/me/recovery-codes", &json!({}), Some(&user.token)).await.assert_status(201);
    let verified = app.verified_user_with_totp(&sink).await;
    app.post("/api/v1/me/recovery-codes", &json!({}), Some(&verified.token)).await.assert_status(201);
    let mail = sink.wait_for_subject("New recovery codes").await;
    assert_eq!(mail["to"], json!([verified.email]));
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let to_unverified: Vec<_> =
        sink.messages().into_iter().filter(|m| m["to"] == json!([user.email])).map(|m| m["subject"].clone()).collect();
    assert_eq!(to_unverified, vec![json!("Confirm your e-mail address")], "only the verification mail");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phone_changes_are_mailed() {
    let (app, rx, sink) = crate::phone::twilio_app_with_mail(Db::Sqlite).await;
    let user = app.verified_user(&sink).await;
    crate::phone::add_phone(&app, &rx, &user, "+14155550123").await;
    let on = sink.wait_for_subject("Two-factor authentication was turned on").await;
    assert!(on["text"].as_str().expect("text").contains("+1 ••• ••• ••23"));
    crate::phone::add_phone(&app, &rx, &user, "+12015550199").await;
    let changed = sink.wait_for_subject("phone number of your account was changed").await;
    let text = changed["text"].as_str().expect("text");
    assert!(text.contains("+1 ••• ••• ••99") && !text.contains("2015550199"), "masked: {text}");
    app.delete("/api/v1/me/phone", Some(&user.token)).await.assert_status(204);
    sink.wait_for_subject("phone number was removed").await;
}

/// A first phone on an account that already has an authenticator app was
/// added, not changed: the mail says so.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_first_phone_beside_an_app_is_mailed_as_added() {
    let (app, rx, sink) = crate::phone::twilio_app_with_mail(Db::Sqlite).await;
    let user = app.verified_user_with_totp(&sink).await;
    crate::phone::add_phone(&app, &rx, &user, "+14155550123").await;
    let added = sink.wait_for_subject("A phone number was added to your account").await;
    assert!(added["text"].as_str().expect("text").contains("+1 ••• ••• ••23"));
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let changed =
        sink.messages().into_iter().filter(|m| m["subject"].as_str().is_some_and(|s| s.contains("was changed")));
    assert_eq!(changed.count(), 0, "nothing was changed");
}

/// Views of the recovery codes by one session mail once, however many
/// arrive together (the once-per-session cap is decided and counted in one
/// statement), on one instance or two sharing PostgreSQL; each is audited.
async fn a_burst_of_views_mails_once(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let user = app.verified_user_with_totp(&sink).await;
    let bases = app.instances().await;
    let token = user.token.clone();
    let rs = crate::burst::burst(&bases, 50, move |_, c, base| {
        c.get(format!("{base}/api/v1/me/recovery-codes")).bearer_auth(&token)
    })
    .await;
    assert_eq!(crate::burst::count(&rs, 200), 50, "{:?}", crate::burst::tally(&rs));
    sink.wait_for_subject("Your recovery codes were viewed").await;
    tokio::time::sleep(std::time::Duration::from_millis(700)).await;
    assert_eq!(sink.with_subject("Your recovery codes were viewed").len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_views_mails_once_sqlite() {
    a_burst_of_views_mails_once(Db::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_burst_of_views_mails_once_postgres() {
    a_burst_of_views_mails_once(Db::Postgres).await;
}
