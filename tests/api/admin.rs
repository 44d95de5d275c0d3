//! Administration (issue 6): the operator role granted on the command line
//! only (SEC-10), admin routes that need 2FA and re-auth (SEC-62), reset
//! 2FA ending the user's sessions, audited with the admin as actor and
//! mailed to the user, the audit log's filters, and the CLI's own
//! `user reset-2fa` and `audit` filters.

use serde_json::{Value, json};
use twostep_domain::time::Timestamp;
use twostep_testkit::{Db, SmtpSink, TestApp, User, both_backends, csrf_of, each_backend, real_now};

use crate::binary::{output, serve_env, twostep};

/// Runs the real binary against the test's database, as an operator would
/// on the server's host, with its database and its master key. Logged at
/// `info`: the assertions print its stderr, and at `debug` a failing
/// command's error sat under hundreds of TLS and pool lines, past the end
/// of what CI keeps of a failed run (oidc_clients::operator_commands,
/// 2026-12-06, whose cause could not be read).
pub(crate) async fn cli(app: &TestApp, args: &[&str]) -> (bool, String, String) {
    let url = app.database_url.clone();
    let key = app.master_key_hex().to_owned();
    let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
    tokio::task::spawn_blocking(move || {
        let data = tempfile::tempdir().expect("dir");
        let mut cmd = twostep(data.path());
        cmd.env("RUST_LOG", "info").env("TWOSTEP_DATABASE_URL", url).env("TWOSTEP_SECRET_KEY", key).args(&args);
        output(&mut cmd, "")
    })
    .await
    .expect("cli task")
}

async fn grant(app: &TestApp, email: &str) {
    let (ok, out, err) = cli(app, &["admin", "grant", email]).await;
    assert!(ok && out.contains("is an administrator"), "{out}{err}");
}

/// An administrator with an authenticator app, freshly signed in.
pub(crate) async fn admin(app: &TestApp) -> (User, String) {
    let admin = app.user_with_totp().await;
    grant(app, &admin.email).await;
    let id = app.get("/api/v1/me", Some(&admin.token)).await.assert_status(200).str("id");
    (admin, id)
}

async fn user_id(app: &TestApp, user: &User) -> String {
    app.get("/api/v1/me", Some(&user.token)).await.assert_status(200).str("id")
}

fn rfc3339(secs: i64) -> String {
    Timestamp::from_secs(secs).rfc3339()
}

/// Percent-encodes a query value.
fn query(s: &str) -> String {
    s.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

each_backend!(an_admin_resets_a_users_two_factor);
async fn an_admin_resets_a_users_two_factor(db: Db) {
    let (app, sink): (TestApp, SmtpSink) = TestApp::spawn_with_mail(db).await;
    let (admin, admin_id) = admin(&app).await;
    let target = app.verified_user_with_totp(&sink).await;
    let target_id = user_id(&app, &target).await;
    // A second session of the target, signed in with the app.
    let code = app.code(&target.secret, 0);
    let other = app.sign_in_with(&target, "totp", &code).await.assert_status(200).str("session_token");

    // The users list shows the target's 2FA, found by a part of the address.
    let part = &target.email[..target.email.find('@').expect("@")];
    let r = app.get(&format!("/api/v1/admin/users?q={}", query(&part.to_uppercase())), Some(&admin.token)).await;
    let users = r.assert_status(200).body;
    assert_eq!(users.as_array().expect("list").len(), 1, "{users}");
    assert_eq!(users[0]["email"], target.email.as_str());
    assert_eq!(users[0]["id"], target_id.as_str());
    assert_eq!(users[0]["two_factor"], json!({"enabled": true, "factors": ["totp"]}));
    assert_eq!(users[0]["disabled"], false);
    assert_eq!(users[0]["admin"], false);
    assert!(users[0]["last_sign_in_at"].is_string(), "{users}");

    let path = format!("/api/v1/admin/users/{target_id}/reset-2fa");
    app.post(&path, &json!({}), Some(&admin.token)).await.assert_status(204);

    // Every session of the target ended.
    for token in [&target.token, &other] {
        app.get("/api/v1/me", Some(token)).await.assert_error(401, "unauthenticated");
    }
    // The password alone signs in now: 2FA is off and the codes are gone.
    let login = app.login(&target.email, &target.password).await.assert_status(200);
    let token = login.str("session_token");
    let me = app.get("/api/v1/me", Some(&token)).await.assert_status(200);
    assert_eq!(me.body["two_factor"]["enabled"], false, "{}", me.text);
    assert_eq!(me.body["recovery_codes_remaining"], 0, "{}", me.text);
    let r = app.get(&format!("/api/v1/admin/users?q={target_id}"), Some(&admin.token)).await.assert_status(200);
    assert_eq!(r.body[0]["two_factor"], json!({"enabled": false, "factors": []}));

    // Audited with the admin as the actor.
    let r = app
        .get(&format!("/api/v1/admin/audit?user={}&event=two_factor_reset", query(&target.email)), Some(&admin.token))
        .await
        .assert_status(200);
    let entries = r.body.as_array().expect("entries");
    assert_eq!(entries.len(), 1, "{}", r.text);
    assert_eq!(entries[0]["actor"], "admin");
    assert_eq!(entries[0]["account_id"], target_id.as_str());
    assert_eq!(entries[0]["email"], target.email.as_str());
    let details = entries[0]["details"].as_str().expect("details");
    assert!(details.contains(&admin_id), "{details}");

    // And the user is told.
    let mail = sink.wait_for_subject("reset by an administrator").await;
    assert_eq!(mail["to"], json!([target.email]));
    let text = mail["text"].as_str().expect("text");
    assert!(text.contains("set up") && text.contains("When:"), "{text}");
}

both_backends!(non_admins_and_admins_without_two_factor_are_refused);
async fn non_admins_and_admins_without_two_factor_are_refused(app: TestApp) {
    let target = app.user().await;
    let target_id = user_id(&app, &target).await;
    let reset = format!("/api/v1/admin/users/{target_id}/reset-2fa");

    // Nobody is an administrator by default (SEC-10), and the area answers
    // "not found" to everyone else.
    let plain = app.user_with_totp().await;
    app.get("/api/v1/admin/users", Some(&plain.token)).await.assert_error(404, "not_found");
    app.get("/api/v1/admin/audit?limit=nonsense", Some(&plain.token)).await.assert_error(404, "not_found");
    app.post(&reset, &json!({}), Some(&plain.token)).await.assert_error(404, "not_found");
    app.post(&format!("/api/v1/admin/users/{target_id}/disable"), &json!({}), Some(&plain.token))
        .await
        .assert_error(404, "not_found");
    app.get("/api/v1/admin/users", None).await.assert_error(401, "unauthenticated");
    app.post(&reset, &json!({}), None).await.assert_error(401, "unauthenticated");

    // An administrator without 2FA is sent to set it up first (SEC-62).
    let bare = app.user().await;
    grant(&app, &bare.email).await;
    app.get("/api/v1/admin/users", Some(&bare.token)).await.assert_error(403, "two_factor_required");
    app.get("/api/v1/admin/audit", Some(&bare.token)).await.assert_error(403, "two_factor_required");
    app.post(&reset, &json!({}), Some(&bare.token)).await.assert_error(403, "two_factor_required");

    // Revoked on the command line: not found again.
    let (ok, out, err) = cli(&app, &["admin", "revoke", &bare.email]).await;
    assert!(ok && out.contains("no longer an administrator"), "{out}{err}");
    app.get("/api/v1/admin/users", Some(&bare.token)).await.assert_error(404, "not_found");

    // Nothing happened to the target.
    app.get("/api/v1/me", Some(&target.token)).await.assert_status(200);
}

both_backends!(admin_changes_need_a_recent_reauth);
async fn admin_changes_need_a_recent_reauth(app: TestApp) {
    let (admin, admin_id) = admin(&app).await;
    let target = app.user_with_totp().await;
    let target_id = user_id(&app, &target).await;
    let reset = format!("/api/v1/admin/users/{target_id}/reset-2fa");

    app.clock.advance(11 * 60);
    // Reading needs no re-auth; changing does.
    app.get("/api/v1/admin/users", Some(&admin.token)).await.assert_status(200);
    app.post(&reset, &json!({}), Some(&admin.token)).await.assert_error(403, "reauth_required");
    app.post(&format!("/api/v1/admin/users/{target_id}/disable"), &json!({}), Some(&admin.token))
        .await
        .assert_error(403, "reauth_required");
    app.get("/api/v1/me", Some(&target.token)).await.assert_status(200);
    let r = app.get(&format!("/api/v1/admin/users?q={target_id}"), Some(&admin.token)).await.assert_status(200);
    assert_eq!(r.body[0]["two_factor"]["enabled"], true, "nothing was reset");

    // The password alone is not enough for an admin with 2FA.
    let pw = json!({"password": admin.password});
    app.post("/api/v1/me/reauth", &pw, Some(&admin.token)).await.assert_status(204);
    app.post(&reset, &json!({}), Some(&admin.token)).await.assert_error(403, "reauth_required");
    let code = json!({"method": "totp", "code": app.code(&admin.secret, 0)});
    app.post("/api/v1/me/reauth", &code, Some(&admin.token)).await.assert_status(204);

    // Refusals that no re-auth changes.
    app.post(&format!("/api/v1/admin/users/{admin_id}/reset-2fa"), &json!({}), Some(&admin.token))
        .await
        .assert_error(409, "own_account");
    app.post("/api/v1/admin/users/no-such-account/reset-2fa", &json!({}), Some(&admin.token))
        .await
        .assert_error(404, "not_found");

    app.post(&reset, &json!({}), Some(&admin.token)).await.assert_status(204);
    app.get("/api/v1/me", Some(&target.token)).await.assert_error(401, "unauthenticated");
}

both_backends!(an_admin_disables_and_enables_an_account);
async fn an_admin_disables_and_enables_an_account(app: TestApp) {
    let (admin, admin_id) = admin(&app).await;
    let target = app.user().await;
    let target_id = user_id(&app, &target).await;

    app.post(&format!("/api/v1/admin/users/{target_id}/disable"), &json!({}), Some(&admin.token))
        .await
        .assert_status(204);
    app.get("/api/v1/me", Some(&target.token)).await.assert_error(401, "unauthenticated");
    app.login(&target.email, &target.password).await.assert_error(401, "invalid_credentials");
    let r = app.get(&format!("/api/v1/admin/users?q={target_id}"), Some(&admin.token)).await.assert_status(200);
    assert_eq!(r.body[0]["disabled"], true);

    app.post(&format!("/api/v1/admin/users/{target_id}/enable"), &json!({}), Some(&admin.token))
        .await
        .assert_status(204);
    app.login(&target.email, &target.password).await.assert_status(200);

    let r = app.get(&format!("/api/v1/admin/audit?user={target_id}"), Some(&admin.token)).await.assert_status(200);
    let entries = r.body.as_array().expect("entries");
    for event in ["account_disabled", "account_enabled"] {
        let e = entries.iter().find(|e| e["event"] == event).unwrap_or_else(|| panic!("{event}: {}", r.text));
        assert_eq!(e["actor"], "admin");
        assert!(e["details"].as_str().expect("details").contains(&admin_id), "{e}");
    }
}

both_backends!(the_audit_log_and_user_list_filter);
async fn the_audit_log_and_user_list_filter(app: TestApp) {
    let (admin, _) = admin(&app).await;
    let start = app.clock.secs();
    let early = app.user().await;
    // Less than the admin session's 30-minute idle limit.
    app.clock.advance(1200);
    let late = app.user().await;
    let middle = rfc3339(start + 600);
    let get = |q: String| {
        let token = admin.token.clone();
        let app = &app;
        async move { app.get(&format!("/api/v1/admin/audit?{q}"), Some(&token)).await.assert_status(200).body }
    };
    let emails = |v: &Value| -> Vec<String> {
        v.as_array().expect("list").iter().map(|e| e["email"].as_str().unwrap_or("-").to_owned()).collect()
    };

    let created = get(format!("event=account_created&since={}", query(&middle))).await;
    assert_eq!(emails(&created), std::slice::from_ref(&late.email), "{created}");
    let created = get(format!("event=account_created&until={}", query(&middle))).await;
    assert!(emails(&created).contains(&early.email) && !emails(&created).contains(&late.email), "{created}");
    let created =
        get(format!("event=account_created&since={}&until={}", query(&middle), query(&rfc3339(start + 1800)))).await;
    assert_eq!(emails(&created), std::slice::from_ref(&late.email));
    // A date covers its whole day.
    let today = &rfc3339(start + 1200)[..10];
    let created = get(format!("event=account_created&since={today}&until={today}")).await;
    assert!(emails(&created).contains(&late.email), "{created}");

    let mine = get(format!("user={}", query(&early.email))).await;
    let entries = mine.as_array().expect("list");
    assert!(!entries.is_empty() && entries.iter().all(|e| e["email"] == early.email.as_str()), "{mine}");
    assert!(entries.iter().any(|e| e["event"] == "sign_in_succeeded"), "{mine}");
    assert_eq!(get("user=nobody%40example.com".into()).await, json!([]));
    assert_eq!(get("limit=1".into()).await.as_array().expect("list").len(), 1);

    app.get("/api/v1/admin/audit?since=yesterday", Some(&admin.token)).await.assert_error(400, "invalid_request");
    app.get("/api/v1/admin/audit?limit=many", Some(&admin.token)).await.assert_error(400, "invalid_request");

    // The user list: by text, and with or without 2FA.
    let list = |q: &str| {
        let token = admin.token.clone();
        let app = &app;
        let q = q.to_owned();
        async move { app.get(&format!("/api/v1/admin/users?{q}"), Some(&token)).await.assert_status(200).body }
    };
    let all = list("limit=500").await;
    for u in [&admin.email, &early.email, &late.email] {
        assert!(emails(&all).contains(u), "{all}");
    }
    let without = list("two_factor=false").await;
    assert!(emails(&without).contains(&early.email) && !emails(&without).contains(&admin.email), "{without}");
    let with = list("two_factor=true").await;
    assert_eq!(emails(&with), std::slice::from_ref(&admin.email), "{with}");
    assert_eq!(with[0]["admin"], true);
    assert_eq!(list("q=no-such-user_%25").await, json!([]));
    assert_eq!(list("limit=1").await.as_array().expect("list").len(), 1);
    app.get("/api/v1/admin/users?two_factor=maybe", Some(&admin.token)).await.assert_error(400, "invalid_request");
}

both_backends!(the_admin_pages_answer_only_to_admins_with_two_factor);
async fn the_admin_pages_answer_only_to_admins_with_two_factor(app: TestApp) {
    let target = app.user_with_totp().await;
    let target_id = user_id(&app, &target).await;
    let confirm = format!("/admin/users/{target_id}/reset-2fa");

    // Signed out: the sign-in page. Not an admin: no such page, no link.
    assert_eq!(app.page("/admin", None).await.1, "/login");
    let (status, _, html) = app.page("/admin", Some(&target.token)).await;
    assert_eq!(status, 404);
    let (_, _, html_security) = app.page("/security", Some(&target.token)).await;
    assert!(!html_security.contains("href=\"/admin\""), "no Admin link for a user");
    assert!(!html.contains(&target.email));
    assert_eq!(app.page(&confirm, Some(&target.token)).await.0, 404);
    assert_eq!(app.page("/admin/audit", Some(&target.token)).await.0, 404);

    // An admin without 2FA is sent to set it up.
    let bare = app.user().await;
    grant(&app, &bare.email).await;
    let (status, _, html) = app.page("/admin", Some(&bare.token)).await;
    assert_eq!(status, 403);
    assert!(html.contains("Two-factor authentication first") && html.contains("href=\"/security\""), "{html}");

    // An admin with 2FA: the list, the search, the confirmation page.
    let (admin, admin_id) = admin(&app).await;
    let (status, _, html) = app.page(&format!("/admin?q={}", query(&target.email)), Some(&admin.token)).await;
    assert_eq!(status, 200);
    assert!(html.contains("href=\"/admin\"") && html.contains(&target.email) && html.contains(&confirm), "{html}");
    assert!(!html.contains(&bare.email), "the search narrows the list");
    let (status, _, html) = app.page(&confirm, Some(&admin.token)).await;
    assert_eq!(status, 200);
    assert!(html.contains(&target.email) && html.contains("Reset two-factor authentication"), "{html}");
    let csrf = csrf_of(&html);
    assert_eq!(app.page(&format!("/admin/users/{admin_id}/reset-2fa"), Some(&admin.token)).await.0, 409);
    assert_eq!(app.page(&format!("/admin/users/{target_id}/explode"), Some(&admin.token)).await.0, 404);
    let (status, _, html) = app.page("/admin/audit?since=someday", Some(&admin.token)).await;
    assert_eq!(status, 400);
    assert!(html.contains("role=\"alert\""), "{html}");

    // Stale: the confirmation page and the form send the admin to re-auth first.
    app.clock.advance(11 * 60);
    let reauth = format!("/reauth?next={}", query(&confirm));
    assert_eq!(app.page(&confirm, Some(&admin.token)).await, (303, reauth.clone(), String::new()));
    let (status, location, _) = app.form_post(&confirm, &admin.token, &[("csrf", &csrf)]).await;
    assert_eq!((status, location), (303, reauth));
    app.get("/api/v1/me", Some(&target.token)).await.assert_status(200);

    // Re-authenticated: a forged form is refused, the real one resets.
    let pw = json!({"password": admin.password});
    app.post("/api/v1/me/reauth", &pw, Some(&admin.token)).await.assert_status(204);
    let code = json!({"method": "totp", "code": app.code(&admin.secret, 0)});
    app.post("/api/v1/me/reauth", &code, Some(&admin.token)).await.assert_status(204);
    assert_eq!(app.form_post(&confirm, &admin.token, &[("csrf", "forged")]).await.0, 403);
    let (status, location, _) = app.form_post(&confirm, &admin.token, &[("csrf", &csrf)]).await;
    assert_eq!(status, 303);
    assert!(location.starts_with("/admin?") && location.contains("done=reset-2fa"), "{location}");
    app.get("/api/v1/me", Some(&target.token)).await.assert_error(401, "unauthenticated");
    let (_, _, html) = app.page(&location, Some(&admin.token)).await;
    assert!(html.contains(&format!("Two-factor authentication of {} was reset", target.email)), "{html}");
    let (_, _, html) =
        app.page(&format!("/admin/audit?user={target_id}&event=two_factor_reset"), Some(&admin.token)).await;
    assert_eq!(html.matches("data-testid=\"audit-entry\"").count(), 1, "{html}");
    assert!(html.contains(&admin_id), "the admin named in the details");
}

#[tokio::test]
async fn the_admin_routes_are_in_the_openapi_document() {
    let app = TestApp::spawn(Db::Sqlite).await;
    let doc = app.get("/api/openapi.json", None).await.assert_status(200).body;
    for (path, method, statuses) in [
        ("/api/v1/admin/users", "get", &["200", "400", "401", "403", "404"][..]),
        ("/api/v1/admin/users/{id}/reset-2fa", "post", &["204", "401", "403", "404", "409"][..]),
        ("/api/v1/admin/users/{id}/disable", "post", &["204", "401", "403", "404", "409"][..]),
        ("/api/v1/admin/users/{id}/enable", "post", &["204", "401", "403", "404", "409"][..]),
        ("/api/v1/admin/audit", "get", &["200", "400", "401", "403", "404"][..]),
    ] {
        let responses = &doc["paths"][path][method]["responses"];
        for status in statuses {
            assert!(responses[*status].is_object(), "{method} {path}: no {status} in {responses}");
        }
    }
}

/// The operator's commands against a running server, as in `binary.rs`:
/// the CLI shares the data dir (database and key), so the server sends the
/// notice the CLI queued.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_resets_two_factor_and_filters_the_audit_log() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().expect("dir");
    let data = dir.path();
    let mut server = serve_env(data, &[("TWOSTEP_SMTP_URL", sink.url.as_str())]);
    let base = server.url.clone();
    let http = reqwest::Client::new();
    let post = |path: &str, body: Value, token: Option<String>| {
        let mut r = http.post(format!("{base}{path}")).json(&body);
        if let Some(t) = token {
            r = r.bearer_auth(t);
        }
        async move {
            let r = r.send().await.expect("send");
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let email = "lost-phone@example.com";
    let password = "a long and secret passphrase";
    assert_eq!(post("/api/v1/accounts", json!({"email": email, "password": password}), None).await.0, 201);
    let (_, login) = post("/api/v1/login", json!({"email": email, "password": password}), None).await;
    let token = login["session_token"].as_str().expect("session").to_owned();
    let mail = sink.wait_for_subject("Confirm your e-mail").await;
    let code = twostep_testkit::link_code(mail["text"].as_str().expect("text"));
    assert_eq!(post("/api/v1/me/email/confirm", json!({"code": code}), Some(token.clone())).await.0, 204);
    let (_, enrol) = post("/api/v1/me/totp", json!({}), Some(token.clone())).await;
    let secret = twostep_domain::factors::totp::otpauth::base32_decode(enrol["secret"].as_str().expect("secret"))
        .expect("base32");
    let code = totp_now(&secret);
    let body = json!({"enrollment_id": enrol["enrollment_id"], "code": code});
    assert_eq!(post("/api/v1/me/totp/confirm", body, Some(token.clone())).await.0, 201);

    let run = |args: &[&str]| output(twostep(data).args(args), "");
    let (ok, out, _) = run(&["admin", "list"]);
    assert!(ok && out.contains("no administrators yet") && out.contains("twostep admin grant EMAIL"), "{out}");
    let (ok, out, err) = run(&["admin", "grant", email]);
    assert!(ok && out.contains("lost-phone@example.com is an administrator"), "{out}{err}");
    let (ok, out, _) = run(&["admin", "list"]);
    assert!(ok && out.contains(email), "{out}");
    let (ok, out, _) = run(&["user", "show", email]);
    assert!(ok && out.contains("administrator:    since"), "{out}");
    let (ok, out, _) = run(&["admin", "revoke", email]);
    assert!(ok && out.contains("no longer"), "{out}");

    let (ok, out, err) = run(&["user", "reset-2fa", email]);
    assert!(ok && out.contains("reset two-factor authentication of lost-phone@example.com"), "{out}{err}");
    let r = http.get(format!("{base}/api/v1/me")).bearer_auth(&token).send().await.expect("me");
    assert_eq!(r.status().as_u16(), 401, "the reset ends every session");
    let (ok, out, _) = run(&["user", "show", email]);
    assert!(ok && out.contains("two-factor:       off") && out.contains("0 left"), "{out}");
    let mail = sink.wait_for_subject("reset by an administrator").await;
    assert_eq!(mail["to"], json!([email]));

    // The audit log, filtered.
    let (ok, out, _) = run(&["audit", "--user", email, "--event", "two_factor_reset"]);
    assert!(ok, "{out}");
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 1, "{out}");
    assert!(lines[0].contains("two_factor_reset") && lines[0].contains(" cli ") && lines[0].contains(email), "{out}");
    let (ok, out, _) = run(&["audit", "--user", email, "--json"]);
    assert!(ok, "{out}");
    let events: Vec<Value> = out.lines().map(|l| serde_json::from_str(l).expect("json line")).collect();
    for kind in ["account_created", "admin_granted", "admin_revoked", "two_factor_reset"] {
        let e = events.iter().find(|e| e["event"] == kind).unwrap_or_else(|| panic!("{kind} missing: {out}"));
        if kind != "account_created" {
            assert_eq!(e["actor"], "cli", "{e}");
        }
    }
    let (ok, out, _) = run(&["audit", "--user", email, "--since", "2000-01-01", "--until", "2000-12-31"]);
    assert!(ok && out.trim().is_empty(), "{out}");
    let (ok, out, _) = run(&["audit", "--event", "admin_granted", "--since", "2000-01-01T00:00:00Z", "--limit", "5"]);
    assert!(ok && out.lines().count() == 1, "{out}");
    let (ok, _, err) = run(&["audit", "--since", "last tuesday"]);
    assert!(!ok && err.contains("--since"), "{err}");

    // Disabling on the command line is audited too.
    let (ok, _, _) = run(&["user", "disable", email]);
    assert!(ok);
    let (ok, out, _) = run(&["audit", "--user", email, "--event", "account_disabled"]);
    assert!(ok && out.lines().count() == 1 && out.contains(" cli "), "{out}");

    server.child.kill().expect("kill");
    server.child.wait().expect("wait");
}

/// The code the spawned server (on the real clock) accepts now.
fn totp_now(secret: &[u8]) -> String {
    twostep_domain::factors::totp::otp::totp(
        secret,
        real_now(),
        twostep_domain::factors::totp::otp::TotpParams::DEFAULT,
    )
}

/// The reset's confirmation says what the user will meet: the password
/// alone, or (an organisation requiring it) setting two-factor up again.
#[tokio::test]
async fn the_reset_confirmation_names_what_follows_for_the_user() {
    let (app, sink) = TestApp::spawn_with_mail(Db::Sqlite).await;
    let (admin, _) = admin(&app).await;
    let owner = app.user_with_totp().await;
    let member = app.verified_user_with_totp(&sink).await;
    let loner = app.user_with_totp().await;
    let org = crate::orgs::create_org(&app, &owner, "Acme").await;
    crate::orgs::join(&app, &owner, &org, &member, "member").await;
    app.put(&format!("/api/v1/orgs/{org}/two-factor-policy"), &json!({"require_two_factor": true}), Some(&owner.token))
        .await
        .assert_status(200);
    let mut pages = Vec::new();
    for user in [&member, &loner] {
        let id = user_id(&app, user).await;
        let (status, _, html) = app.page(&format!("/admin/users/{id}/reset-2fa"), Some(&admin.token)).await;
        assert_eq!(status, 200, "{html}");
        pages.push(html);
    }
    let (required, free) = (&pages[0], &pages[1]);
    assert!(required.contains("must set two-factor up again") && !required.contains("password alone"), "{required}");
    assert!(free.contains("password alone") && !free.contains("must set two-factor up again"), "{free}");
}
