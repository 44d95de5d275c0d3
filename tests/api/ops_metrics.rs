//! Operations (issue 19): the metrics listener. Request counts by route,
//! and the counters the rules keep (`twostep_domain::meters`), checked by
//! scraping before and after a scripted sign-in story: every counter moves
//! by exactly the story's steps, and no label holds the story's e-mail,
//! address, codes or tokens. The story runs on the shipped binary, on
//! SQLite and on PostgreSQL.

use std::collections::HashMap;
use std::time::Duration;

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use twostep_domain::factors::push::device_message;
use twostep_domain::factors::totp::otp::{TotpParams, totp};
use twostep_testkit::{Db, PgSchema, Receiver, SmtpSink, link_code, real_now as now};

use crate::binary::{Served, post, serve_env};
use crate::ops::{TotpUser, b64, pair, totp_user};

/// Reads the metrics URL the server logged.
pub(crate) fn metrics_url(served: &Served) -> String {
    for _ in 0..100 {
        let logs = served.logs.lock().expect("lock").clone();
        if let Some(at) = logs.find("/metrics") {
            let start = logs[..at].rfind("http://").expect("metrics url");
            return logs[start..at + "/metrics".len()].to_owned();
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("no metrics listener logged");
}

/// The value of one exact counter line, 0 when absent.
fn series(text: &str, name_and_labels: &str) -> u64 {
    text.lines().find_map(|l| l.strip_prefix(name_and_labels).and_then(|v| v.trim().parse().ok())).unwrap_or(0)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_sign_ins_by_route_and_status_on_their_own_listener() {
    let dir = tempfile::tempdir().expect("dir");
    let mut served = serve_env(dir.path(), &[("TWOSTEP_METRICS_LISTEN", "127.0.0.1:0")]);
    let metrics = metrics_url(&served);
    let base = served.url.clone();
    let http = reqwest::Client::new();
    // Not on the public port.
    assert_eq!(http.get(format!("{base}/metrics")).send().await.expect("public").status(), 404);

    let email = "metered@example.com";
    let body = json!({"email": email, "password": "a long and secret passphrase"});
    assert_eq!(post(&http, format!("{base}/api/v1/accounts"), body.clone(), None).await.0, 201);
    for _ in 0..2 {
        assert_eq!(post(&http, format!("{base}/api/v1/login"), body.clone(), None).await.0, 200);
    }
    let wrong = json!({"email": email, "password": "not the passphrase at all"});
    assert_eq!(post(&http, format!("{base}/api/v1/login"), wrong, None).await.0, 401);
    let _ = http.get(format!("{base}/no/such/{email}")).send().await.expect("404");

    let text = http.get(&metrics).send().await.expect("scrape").text().await.expect("text");
    let login = r#"twostep_http_requests_total{route="/api/v1/login",method="POST","#;
    assert_eq!(series(&text, &format!(r#"{login}status="200"}}"#)), 2, "{text}");
    assert_eq!(series(&text, &format!(r#"{login}status="401"}}"#)), 1, "{text}");
    let signup = r#"twostep_http_requests_total{route="/api/v1/accounts",method="POST",status="201"}"#;
    assert_eq!(series(&text, signup), 1, "{text}");
    assert!(text.contains(r#"route="unmatched""#), "{text}");
    // Sign-ins by outcome, from the audited events.
    let audit = |event: &str, ok: &str| format!(r#"twostep_audit_events_total{{event="{event}",success="{ok}"}}"#);
    assert_eq!(series(&text, &audit("sign_in_succeeded", "true")), 2, "{text}");
    assert_eq!(series(&text, &audit("sign_in_password", "false")), 1, "{text}");
    assert_eq!(series(&text, &audit("account_created", "true")), 1, "{text}");
    assert!(text.contains("twostep_http_request_duration_seconds"), "{text}");
    assert!(text.contains("twostep_build_info{version="), "{text}");
    assert!(text.contains("twostep_outbox_pending "), "{text}");
    assert!(text.contains("twostep_outbox_oldest_age_seconds "), "{text}");
    assert!(!text.contains(email) && !text.contains("metered") && !text.contains("127.0.0.1"), "{text}");
    served.child.kill().expect("kill");
    served.child.wait().expect("wait");
}

/// Every sample of a scrape, by name and labels as printed.
fn samples(text: &str) -> HashMap<String, f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.rsplit_once(' '))
        .filter_map(|(series, value)| Some((series.to_owned(), value.parse().ok()?)))
        .collect()
}

/// Every sample's `{…}`, one a line: where a leaked value would show.
fn label_sets(text: &str) -> String {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| Some(&l[l.find('{')?..=l.rfind('}')?]))
        .collect::<Vec<_>>()
        .join("\n")
}

async fn scrape(http: &reqwest::Client, url: &str) -> String {
    http.get(url).send().await.expect("scrape").text().await.expect("text")
}

/// Scrapes once the outbox is empty: a message is counted as sent before
/// its row leaves `pending`, so nothing is still on its way.
async fn settled_scrape(http: &reqwest::Client, url: &str) -> String {
    for _ in 0..200 {
        let text = scrape(http, url).await;
        if samples(&text).get("twostep_outbox_pending") == Some(&0.0) {
            return text;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the outbox never emptied");
}

/// A device's signed request, as the companion makes it.
async fn device_call(
    http: &reqwest::Client,
    base: &str,
    device: &(String, SigningKey),
    path: &str,
    body: &Value,
) -> u16 {
    let bytes = serde_json::to_vec(body).expect("json");
    let ts = now().to_string();
    let sig: Signature = device.1.sign(&device_message("POST", path, &ts, &bytes));
    let r = http
        .post(format!("{base}{path}"))
        .header("x-twostep-device", &device.0)
        .header("x-twostep-timestamp", ts)
        .header("x-twostep-signature", b64(&sig.to_bytes()))
        .header("content-type", "application/json")
        .body(bytes)
        .send()
        .await
        .expect("device request");
    r.status().as_u16()
}

/// One sign-in up to the second step: its login token.
async fn password_step(http: &reqwest::Client, base: &str, email: &str, password: &str) -> String {
    let body = json!({"email": email, "password": password});
    let (status, r) = post(http, format!("{base}/api/v1/login"), body, None).await;
    assert_eq!(status, 200, "{r}");
    r["login_token"].as_str().expect("a second step").to_owned()
}

async fn verify(http: &reqwest::Client, base: &str, token: &str, method: &str, code: &str) -> (u16, Value) {
    let body = json!({"login_token": token, "method": method, "code": code});
    post(http, format!("{base}/api/v1/login/verify"), body, None).await
}

/// Raises a push for `token` and has the device answer it: the challenge id.
async fn answered_push(
    http: &reqwest::Client,
    base: &str,
    token: &str,
    device: &(String, SigningKey),
    approve: bool,
) -> String {
    let body = json!({"login_token": token, "method": "push"});
    let (status, push) = post(http, format!("{base}/api/v1/login/challenge"), body, None).await;
    assert_eq!(status, 202, "{push}");
    let challenge = push["challenge_id"].as_str().expect("challenge").to_owned();
    let answer =
        if approve { json!({"decision": "approve", "number": push["number"]}) } else { json!({"decision": "deny"}) };
    let path = format!("/api/v1/push/challenges/{challenge}/answer");
    assert_eq!(device_call(http, base, device, &path, &answer).await, 204);
    challenge
}

/// A six-digit code that is none of the ones a ±1-step check would take.
fn wrong_totp(secret: &[u8]) -> String {
    let live: Vec<String> = [-30, 0, 30].iter().map(|d| totp(secret, now() + d, TotpParams::DEFAULT)).collect();
    ["123456", "654321"].iter().find(|c| !live.iter().any(|l| l == *c)).expect("one is wrong").to_string()
}

/// A server with metrics on, mail to the SMTP sink and texts to a
/// Twilio stand-in, on a fresh database of `db`.
struct Stage {
    served: Served,
    metrics: String,
    base: String,
    http: reqwest::Client,
    sink: SmtpSink,
    twilio: Receiver,
    _pg: Option<PgSchema>,
    _dir: tempfile::TempDir,
}

async fn stage(db: Db) -> Stage {
    let dir = tempfile::tempdir().expect("dir");
    let pg = match db {
        Db::Sqlite => None,
        Db::Postgres => Some(PgSchema::create().await),
    };
    let sink = SmtpSink::start();
    let twilio = Receiver::start().await;
    let mut env = vec![
        ("TWOSTEP_METRICS_LISTEN", "127.0.0.1:0"),
        ("TWOSTEP_SMTP_URL", sink.url.as_str()),
        ("TWOSTEP_TWILIO_ACCOUNT_SID", "AC0123456789abcdef"),
        ("TWOSTEP_TWILIO_AUTH_TOKEN", "twilio-secret-token"),
        ("TWOSTEP_TWILIO_FROM", "+14155550100"),
        ("TWOSTEP_TWILIO_BASE_URL", twilio.url.as_str()),
    ];
    if let Some(pg) = &pg {
        env.push(("TWOSTEP_DATABASE_URL", pg.url.as_str()));
    }
    let served = serve_env(dir.path(), &env);
    let metrics = metrics_url(&served);
    let base = served.url.clone();
    Stage { served, metrics, base, http: reqwest::Client::new(), sink, twilio, _pg: pg, _dir: dir }
}

const EMAIL: &str = "story-teller@example.com";
const PHONE: &str = "+14155550123";

/// Before the first scrape: an account with TOTP, a verified address (so
/// the story's notices are sent) and a companion device. Also returns the
/// e-mail code, to look for in the labels.
async fn set_up(s: &Stage) -> (TotpUser, (String, SigningKey), String) {
    let user = totp_user(&s.http, &s.base, EMAIL).await;
    let device = pair(&s.http, &s.base, &user.session).await;
    let confirm = s.sink.wait_for_subject("Confirm your e-mail").await;
    let code = link_code(confirm["text"].as_str().expect("text"));
    let url = format!("{}/api/v1/me/email/confirm", s.base);
    assert_eq!(post(&s.http, url, json!({"code": code}), Some(&user.session)).await.0, 204);
    (user, device, code)
}

/// The story. Returns how many wrong passwords were refused before the
/// backoff, and every token and code it was handed or typed.
async fn play(s: &Stage, user: &TotpUser, device: &(String, SigningKey)) -> (u32, Vec<String>) {
    let (http, base) = (&s.http, s.base.as_str());
    let mut handed = Vec::new();
    // TOTP: a wrong code, then the right one on the same login token.
    let token = password_step(http, base, EMAIL, &user.password).await;
    assert_eq!(verify(http, base, &token, "totp", &wrong_totp(&user.secret)).await.0, 401);
    let right = totp(&user.secret, now() + 30, TotpParams::DEFAULT);
    let (status, signed_in) = verify(http, base, &token, "totp", &right).await;
    assert_eq!(status, 200, "{signed_in}");
    handed.extend([token, right, signed_in["session_token"].as_str().expect("session").to_owned()]);
    // A recovery code at sign-in, another at re-auth, and a wrong TOTP code at re-auth.
    let token = password_step(http, base, EMAIL, &user.password).await;
    assert_eq!(verify(http, base, &token, "recovery_code", &user.codes[0]).await.0, 200);
    let me = |path: &str, body: Value| post(http, format!("{base}/api/v1/me/{path}"), body, Some(&user.session));
    assert_eq!(me("reauth", json!({"method": "recovery_code", "code": user.codes[1]})).await.0, 204);
    assert_eq!(me("reauth", json!({"method": "totp", "code": wrong_totp(&user.secret)})).await.0, 401);
    // A phone, its code sent by Twilio; a sign-in text right after falls
    // in the number's resend cooldown (SEC-35).
    let (status, r) = me("phone", json!({"phone": PHONE})).await;
    assert_eq!(status, 202, "{r}");
    let sms_code = s.twilio.code(1).await;
    let (status, r) = me("phone/confirm", json!({"code": sms_code})).await;
    assert_eq!(status, 200, "{r}");
    let token = password_step(http, base, EMAIL, &user.password).await;
    let body = json!({"login_token": token, "method": "sms"});
    let (status, r) = post(http, format!("{base}/api/v1/login/challenge"), body, None).await;
    assert_eq!(status, 429, "{r}");
    handed.extend([token, sms_code]);
    // A push approved and used; a push denied, then tried all the same.
    let token = password_step(http, base, EMAIL, &user.password).await;
    let approved = answered_push(http, base, &token, device, true).await;
    assert_eq!(verify(http, base, &token, "push", &approved).await.0, 200);
    handed.extend([token, approved]);
    let token = password_step(http, base, EMAIL, &user.password).await;
    let denied = answered_push(http, base, &token, device, false).await;
    assert_eq!(verify(http, base, &token, "push", &denied).await.0, 401);
    handed.extend([token, denied]);
    // An unknown e-mail; then wrong passwords until the account's counter backs off.
    let nobody = json!({"email": "nobody-here@example.com", "password": "whatever it is, it is wrong"});
    assert_eq!(post(http, format!("{base}/api/v1/login"), nobody, None).await.0, 401);
    let wrong = json!({"email": EMAIL, "password": "not the passphrase at all"});
    let mut refused = 0;
    loop {
        match post(http, format!("{base}/api/v1/login"), wrong.clone(), None).await.0 {
            401 => refused += 1,
            429 => break,
            other => panic!("a wrong password answered {other}"),
        }
        assert!(refused < 30, "no backoff after {refused} wrong passwords");
    }
    assert!(refused >= 5, "SEC-31: five tries before the backoff, got {refused}");
    (refused, handed)
}

/// The scripted story, and what it must add to which series.
async fn the_operators_counters_move_by_exactly_the_story(db: Db) {
    let mut s = stage(db).await;
    let (user, device, email_code) = set_up(&s).await;
    let before = samples(&settled_scrape(&s.http, &s.metrics).await);
    let mails_before = s.sink.messages().len();
    let (refused, handed) = play(&s, &user, &device).await;
    let text = settled_scrape(&s.http, &s.metrics).await;
    let after = samples(&text);

    let moved = |series: &str| after.get(series).copied().unwrap_or(0.0) - before.get(series).copied().unwrap_or(0.0);
    let sign_ins = |result: &str, method: &str| {
        moved(&format!(r#"twostep_sign_ins_total{{result="{result}",method="{method}"}}"#))
    };
    let checks = |method: &str, result: &str| {
        moved(&format!(r#"twostep_second_factor_checks_total{{method="{method}",result="{result}"}}"#))
    };
    let pushes = |outcome: &str| moved(&format!(r#"twostep_push_challenges_total{{outcome="{outcome}"}}"#));
    let refusals = |scope: &str| moved(&format!(r#"twostep_throttle_refusals_total{{scope="{scope}"}}"#));
    let mails = s.sink.messages().len() - mails_before;
    assert!(mails >= 2, "the recovery code notices at least (SEC-41), got {mails}");
    let expected = [
        (sign_ins("second_factor_required", "password"), 5.0),
        (sign_ins("bad_code", "totp"), 1.0),
        (sign_ins("success", "totp"), 1.0),
        (sign_ins("success", "recovery_code"), 1.0),
        (sign_ins("success", "push"), 1.0),
        (sign_ins("bad_code", "push"), 1.0),
        (sign_ins("bad_password", "password"), f64::from(refused + 1)),
        (sign_ins("throttled", "password"), 1.0),
        (sign_ins("success", "password"), 0.0),
        (checks("totp", "bad_code"), 2.0),
        (checks("totp", "success"), 1.0),
        (checks("recovery_code", "success"), 2.0),
        (checks("push", "success"), 1.0),
        (checks("push", "bad_code"), 1.0),
        (pushes("raised"), 2.0),
        (pushes("approved"), 1.0),
        (pushes("denied"), 1.0),
        (pushes("used"), 1.0),
        (refusals("password"), 1.0),
        (refusals("address"), 0.0),
        (refusals("second_factor"), 0.0),
        (refusals("code_send"), 1.0),
        // Every mail the sink took and the one text, each counted once.
        (moved(r#"twostep_sends_total{channel="sms",provider="twilio",result="sent"}"#), 1.0),
        (
            moved(r#"twostep_sends_total{channel="email",provider="smtp",result="sent"}"#),
            f64::from(u32::try_from(mails).expect("few")),
        ),
    ];
    for (i, (got, want)) in expected.iter().enumerate() {
        assert!((got - want).abs() < f64::EPSILON, "expectation {i}: moved by {got}, not {want}\n{text}");
    }
    assert!(!text.contains(r#"result="failed""#) && !text.contains(r#"result="retry""#), "{text}");
    assert!(!text.contains("twostep_locks_total{"), "nothing reached a lock\n{text}");

    // No label holds what the story handed out or typed.
    let labels = label_sets(&text);
    assert!(labels.contains("route=") && labels.contains("method=\"totp\""), "{labels}");
    let mut secrets = vec![
        EMAIL.to_owned(),
        "story-teller".to_owned(),
        "nobody-here".to_owned(),
        "127.0.0.1".to_owned(),
        PHONE.to_owned(),
        PHONE[2..].to_owned(),
        user.session.clone(),
        data_encoding::BASE32_NOPAD.encode(&user.secret),
        device.0.clone(),
        email_code,
    ];
    secrets.extend(user.codes.iter().cloned());
    secrets.extend(handed);
    for secret in &secrets {
        assert!(!labels.contains(secret.as_str()), "a label holds {secret:?}");
    }
    assert!(!text.contains(EMAIL) && !text.contains("127.0.0.1") && !text.contains(PHONE), "{text}");
    s.served.child.kill().expect("kill");
    s.served.child.wait().expect("wait");
}

twostep_testkit::each_backend!(the_operators_counters_move_by_exactly_the_story);
