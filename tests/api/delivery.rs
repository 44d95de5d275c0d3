//! The outbox: retries with backoff, survival across a crash, the signed
//! webhook, and e-mail as a verified address and a sign-in fallback.

use std::time::Duration;

use serde_json::json;
use sqlx::Row;
use twostep::config::PhoneProvider;
use twostep_testkit::{Db, Receiver, TestApp, each_backend, link_code, six_digits};

use crate::binary::serve_env;
use crate::phone::twilio_app;

const NUMBER: &str = "+14155550123";

async fn outbox_rows(app: &TestApp) -> Vec<(String, String, i64, Option<String>)> {
    let mut conn = app.raw().await;
    sqlx::query("SELECT channel, status, attempts, provider_id FROM outbox ORDER BY created_at, id")
        .fetch_all(&mut conn)
        .await
        .expect("outbox")
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect()
}

each_backend!(a_delivery_that_fails_twice_then_succeeds_is_delivered_once);
async fn a_delivery_that_fails_twice_then_succeeds_is_delivered_once(db: Db) {
    let (app, rx) = twilio_app(db).await;
    let user = app.user().await;
    rx.fail_next(&[500, 503]);
    // 202 as soon as the message is committed, whatever the provider does.
    app.post("/api/v1/me/phone", &json!({"phone": NUMBER}), Some(&user.token)).await.assert_status(202);
    rx.wait_for(1).await;
    // Backoff runs on the injected clock: move it until the third try.
    for _ in 0..100 {
        if rx.requests().len() >= 3 {
            break;
        }
        app.clock.advance(2);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    let requests = rx.wait_for(3).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.clock.advance(120);
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(rx.requests().len(), 3, "no try after the success");
    let bodies: Vec<_> = requests.iter().map(|r| r.form()["Body"].clone()).collect();
    assert!(bodies.iter().all(|b| b == &bodies[0]), "the same message each time");
    let rows = outbox_rows(&app).await;
    let sms: Vec<_> = rows.iter().filter(|r| r.0 == "sms").collect();
    assert_eq!(sms.len(), 1);
    assert_eq!(sms[0].1, "sent");
    assert_eq!(sms[0].2, 3);
    assert_eq!(sms[0].3.as_deref(), Some("SM00000000000000000000000000000003"), "the provider's id is recorded");
    // The delivered code works.
    let code = rx.code(3).await;
    app.post("/api/v1/me/phone/confirm", &json!({"code": code}), Some(&user.token)).await.assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_message_is_not_retried() {
    let (app, rx) = twilio_app(Db::Sqlite).await;
    let user = app.user().await;
    rx.fail_next(&[400]);
    app.post("/api/v1/me/phone", &json!({"phone": NUMBER}), Some(&user.token)).await.assert_status(202);
    rx.wait_for(1).await;
    for _ in 0..5 {
        app.clock.advance(60);
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
    assert_eq!(rx.requests().len(), 1);
    let rows = outbox_rows(&app).await;
    assert!(rows.iter().any(|r| r.0 == "sms" && r.1 == "failed" && r.2 == 1), "{rows:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_stop_when_the_code_expires() {
    let (app, rx) = twilio_app(Db::Sqlite).await;
    let user = app.user().await;
    rx.fail_next(&[503; 100]);
    app.post("/api/v1/me/phone", &json!({"phone": NUMBER}), Some(&user.token)).await.assert_status(202);
    rx.wait_for(1).await;
    for _ in 0..40 {
        app.clock.advance(60);
        tokio::time::sleep(Duration::from_millis(120)).await;
    }
    let tries = rx.requests().len();
    assert!((2..=12).contains(&tries), "retried with backoff up to the 10-minute expiry: {tries}");
    let rows = outbox_rows(&app).await;
    assert!(rows.iter().any(|r| r.0 == "sms" && r.1 == "failed"), "{rows:?}");
}

/// SEC-27 too: the server's log never shows the code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_queued_when_the_server_dies_are_delivered_after_restart() {
    let data = tempfile::tempdir().expect("dir");
    // First run: the provider is unreachable, so the message stays queued.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_url = format!("http://{}", dead.local_addr().expect("addr"));
    drop(dead);
    let twilio = |base: &str| {
        vec![
            ("TWOSTEP_TWILIO_ACCOUNT_SID", "AC123".to_owned()),
            ("TWOSTEP_TWILIO_AUTH_TOKEN", "token".to_owned()),
            ("TWOSTEP_TWILIO_FROM", "+14155550100".to_owned()),
            ("TWOSTEP_TWILIO_BASE_URL", base.to_owned()),
        ]
    };
    let env = twilio(&dead_url);
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut first = serve_env(data.path(), &env_ref);
    let http = reqwest::Client::new();
    let email = "restart@example.com";
    let password = "a long and secret passphrase";
    let r = http.post(format!("{}/api/v1/accounts", first.url)).json(&json!({"email": email, "password": password}));
    assert_eq!(r.send().await.expect("sign up").status(), 201);
    let login: serde_json::Value = http
        .post(format!("{}/api/v1/login", first.url))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = login["session_token"].as_str().expect("session").to_owned();
    let r = http.post(format!("{}/api/v1/me/phone", first.url)).bearer_auth(&token).json(&json!({"phone": NUMBER}));
    assert_eq!(r.send().await.expect("phone").status(), 202);
    tokio::time::sleep(Duration::from_millis(300)).await;
    first.child.kill().expect("kill -9");
    first.child.wait().expect("reaped");
    let first_logs = first.logs.lock().expect("lock").clone();
    assert!(first_logs.contains("will retry"), "the first run tried and failed: {first_logs}");

    // Second run, provider back: the queued message goes out.
    let rx = Receiver::start().await;
    let env = twilio(&rx.url);
    let env_ref: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let mut second = serve_env(data.path(), &env_ref);
    let requests = rx.wait_for(1).await;
    assert_eq!(requests[0].form()["To"], NUMBER);
    let code = rx.code(1).await;
    let r =
        http.post(format!("{}/api/v1/me/phone/confirm", second.url)).bearer_auth(&token).json(&json!({"code": code}));
    assert_eq!(r.send().await.expect("confirm").status(), 200);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(rx.requests().len(), 1, "delivered once");
    second.child.kill().expect("kill");
    second.child.wait().expect("reaped");
    let logs = format!("{first_logs}{}", second.logs.lock().expect("lock"));
    assert!(!logs.contains(&code), "the code must never reach the log");
}

each_backend!(webhook_requests_are_signed);
async fn webhook_requests_are_signed(db: Db) {
    let rx = Receiver::start().await;
    let secret = "a-webhook-secret-of-at-least-32-chars!";
    let phone = PhoneProvider::Webhook { url: format!("{}/sms", rx.url), secret: secret.into() };
    let app = TestApp::spawn_providers(db, None, phone, |_| {}).await;
    let user = app.user().await;
    app.post("/api/v1/me/phone", &json!({"phone": NUMBER}), Some(&user.token)).await.assert_status(202);
    let req = &rx.wait_for(1).await[0];
    assert_eq!(req.method, "POST");
    assert_eq!(req.path, "/sms");
    assert!(req.header("content-type").starts_with("application/json"));
    let body = req.json();
    assert_eq!(body["channel"], "sms");
    assert_eq!(body["to"], NUMBER);
    let code = six_digits(body["message"].as_str().expect("message")).expect("code");
    let expires = time::OffsetDateTime::parse(
        body["code_expires_at"].as_str().expect("expiry"),
        &time::format_description::well_known::Rfc3339,
    )
    .expect("RFC 3339");
    assert_eq!(expires.unix_timestamp(), app.clock.secs() + 600);
    let ts: i64 = req.header("x-twostep-timestamp").parse().expect("timestamp");
    let sig = req.header("x-twostep-signature");
    let now = app.clock.secs();
    assert!(twostep_delivery::webhook::verify(secret.as_bytes(), ts, &req.body, &sig, now, 300));
    // A receiver refuses a changed body, another key, or a replay later on.
    let mut tampered = req.body.to_vec();
    tampered[5] ^= 1;
    assert!(!twostep_delivery::webhook::verify(secret.as_bytes(), ts, &tampered, &sig, now, 300));
    assert!(!twostep_delivery::webhook::verify(b"another-secret-another-secret-000", ts, &req.body, &sig, now, 300));
    assert!(!twostep_delivery::webhook::verify(secret.as_bytes(), ts, &req.body, &sig, now + 301, 300));
    app.post("/api/v1/me/phone/confirm", &json!({"code": code}), Some(&user.token)).await.assert_status(200);
}

each_backend!(a_verified_email_serves_as_a_fallback_method);
async fn a_verified_email_serves_as_a_fallback_method(db: Db) {
    let (app, sink) = TestApp::spawn_with_mail(db).await;
    let user = app.user_with_totp().await;
    // Sign-up mailed a verification code and link.
    let mail = sink.wait_for_subject("Confirm your e-mail").await;
    assert_eq!(mail["to"][0], user.email);
    let text = mail["text"].as_str().expect("text");
    let code = link_code(text);
    assert!(text.contains("/verify-email?account="), "{text}");
    assert!(mail["html"].as_str().expect("html").contains(&code));
    let me = app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    assert_eq!(me.body["email_verified"], false);
    assert!(!me.body["two_factor"]["methods"].as_array().expect("methods").contains(&json!("email")));
    app.post("/api/v1/me/email/confirm", &json!({"code": "000000"}), Some(&user.token))
        .await
        .assert_error(401, "invalid_code");
    app.post("/api/v1/me/email/confirm", &json!({"code": code}), Some(&user.token)).await.assert_status(204);
    let me = app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    assert_eq!(me.body["email_verified"], true);
    assert_eq!(me.body["two_factor"]["methods"], json!(["totp", "email", "recovery_code"]));
    app.post("/api/v1/me/email/verification", &json!({}), Some(&user.token)).await.assert_status(204);

    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.body["methods"], json!(["totp", "email", "recovery_code"]));
    let t = login.str("login_token");
    let sent = app
        .post("/api/v1/login/challenge", &json!({"login_token": t, "method": "email"}), None)
        .await
        .assert_status(202);
    let masked = sent.str("sent_to");
    assert!(masked.starts_with(&user.email[..1]) && masked.contains("•••@example.com"), "{masked}");
    let mail = sink.wait_for_subject("sign-in code").await;
    assert_eq!(mail["content_type"], "multipart/alternative");
    let code = six_digits(mail["text"].as_str().expect("text")).expect("code");
    app.post("/api/v1/login/verify", &json!({"login_token": t, "method": "email", "code": code}), None)
        .await
        .assert_status(200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_operator_can_turn_the_email_fallback_off() {
    let sink = twostep_testkit::SmtpSink::start();
    let app = TestApp::spawn_providers(Db::Sqlite, Some(sink.url.clone()), PhoneProvider::None, |s| {
        s.email_fallback = false;
    })
    .await;
    let user = app.user_with_totp().await;
    let code = link_code(sink.wait_for_subject("Confirm your e-mail").await["text"].as_str().expect("text"));
    app.post("/api/v1/me/email/confirm", &json!({"code": code}), Some(&user.token)).await.assert_status(204);
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.body["methods"], json!(["totp", "recovery_code"]));
    app.post("/api/v1/login/challenge", &json!({"login_token": login.str("login_token"), "method": "email"}), None)
        .await
        .assert_error(400, "method_unavailable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn email_alone_is_not_a_second_factor() {
    // SEC-30: a verified address without another factor is no 2FA.
    let (app, sink) = TestApp::spawn_with_mail(Db::Sqlite).await;
    let user = app.user().await;
    let code = link_code(sink.wait_for_subject("Confirm your e-mail").await["text"].as_str().expect("text"));
    app.post("/api/v1/me/email/confirm", &json!({"code": code}), Some(&user.token)).await.assert_status(204);
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.str("status"), "authenticated");
    let me = app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    assert_eq!(me.body["two_factor"]["enabled"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn finished_messages_are_swept_after_a_week() {
    let (app, rx) = twilio_app(Db::Sqlite).await;
    let user = app.user().await;
    app.post("/api/v1/me/phone", &json!({"phone": NUMBER}), Some(&user.token)).await.assert_status(202);
    rx.wait_for(1).await;
    let sent = || async {
        let rows = outbox_rows(&app).await;
        !rows.is_empty() && rows.iter().all(|r| r.1 == "sent")
    };
    for _ in 0..100 {
        if sent().await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(sent().await, "{:?}", outbox_rows(&app).await);
    // A message still being retried is never swept (here it ends as
    // expired, finished only now, so it stays a week more).
    rx.fail_next(&[503; 10]);
    app.clock.advance(31);
    app.post("/api/v1/me/phone", &json!({"phone": "+12015550123"}), Some(&user.token)).await.assert_status(202);
    rx.wait_for(2).await;
    app.clock.advance(7 * 24 * 3600 + 3600);
    let mut rows = outbox_rows(&app).await;
    for _ in 0..100 {
        rows = outbox_rows(&app).await;
        if rows.iter().all(|r| r.1 != "sent") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(rows.iter().all(|r| r.1 != "sent"), "finished rows swept: {rows:?}");
    assert_eq!(rows.iter().filter(|r| r.0 == "sms").count(), 1, "{rows:?}");
    let mut conn = app.raw().await;
    let sends: i64 = sqlx::query("SELECT COUNT(*) FROM oob_sends").fetch_one(&mut conn).await.expect("count").get(0);
    assert_eq!(sends, 0, "the send log keeps two days");
}
