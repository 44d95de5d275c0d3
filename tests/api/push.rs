//! Push approval (issue 9, security.md §2.9): companion devices pair from a
//! single-use link, sign their requests, and approve or deny sign-ins with
//! number matching; the browser's login token becomes a session once.

use std::time::Duration;

use p256::ecdsa::signature::Signer;
use p256::ecdsa::{Signature, SigningKey};
use serde_json::{Value, json};
use twostep_domain::factors::push::{device_message, pairing_message};
use twostep_testkit::{Db, Receiver, Resp, SmtpSink, TestApp, User, both_backends, each_backend};

const BIN: &str = env!("CARGO_BIN_EXE_twostep");

fn b64(bytes: &[u8]) -> String {
    data_encoding::BASE64URL_NOPAD.encode(bytes)
}

/// A companion device written against the documented protocol.
pub(crate) struct Device {
    key: SigningKey,
    id: String,
}

impl Device {
    fn sign(&self, message: &[u8]) -> String {
        let sig: Signature = self.key.sign(message);
        b64(&sig.to_bytes())
    }

    /// A signed request with this device's key (or another's, for the refusals).
    async fn call_as(
        &self,
        app: &TestApp,
        key: &SigningKey,
        method: reqwest::Method,
        path: &str,
        body: Option<&Value>,
        ts_offset: i64,
    ) -> Resp {
        let bytes = body.map(|b| serde_json::to_vec(b).expect("json")).unwrap_or_default();
        let ts = (app.clock.secs() + ts_offset).to_string();
        let sig: Signature = key.sign(&device_message(method.as_str(), path, &ts, &bytes));
        let mut req = app
            .http
            .request(method, format!("{}{path}", app.url))
            .header("x-twostep-device", &self.id)
            .header("x-twostep-timestamp", ts)
            .header("x-twostep-signature", b64(&sig.to_bytes()));
        if body.is_some() {
            req = req.header("content-type", "application/json").body(bytes);
        }
        Resp::from(req.send().await.expect("request")).await
    }

    async fn call(&self, app: &TestApp, method: reqwest::Method, path: &str, body: Option<&Value>) -> Resp {
        self.call_as(app, &self.key, method, path, body, 0).await
    }

    async fn pending(&self, app: &TestApp) -> Vec<Value> {
        let r = self.call(app, reqwest::Method::GET, "/api/v1/push/challenges", None).await.assert_status(200);
        r.body["challenges"].as_array().expect("challenges").clone()
    }

    pub(crate) async fn answer(&self, app: &TestApp, id: &str, body: &Value) -> Resp {
        self.call(app, reqwest::Method::POST, &format!("/api/v1/push/challenges/{id}/answer"), Some(body)).await
    }
}

/// A pairing link for the signed-in user (recent sign-in counts as re-auth).
async fn pairing_code(app: &TestApp, user: &User) -> String {
    let p = app.post("/api/v1/me/push-devices/pairing", &json!({}), Some(&user.token)).await.assert_status(201);
    let url = p.str("pairing_url");
    assert!(url.starts_with(&format!("{}/companion#pair=", app.url)), "{url}");
    assert!(p.str("qr_svg").contains("<svg"), "{}", p.text);
    assert_eq!(p.body["expires_in"], 600);
    url.split_once("#pair=").expect("code").1.to_owned()
}

async fn register(app: &TestApp, code: &str, key: &SigningKey, extra: Value) -> Resp {
    let public = b64(key.verifying_key().to_encoded_point(false).as_bytes());
    let sig: Signature = key.sign(&pairing_message(code, &public));
    let mut body =
        json!({"pairing_code": code, "name": "Test phone", "public_key": public, "signature": b64(&sig.to_bytes())});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    app.post("/api/v1/push/devices", &body, None).await
}

pub(crate) async fn paired(app: &TestApp, user: &User) -> Device {
    let code = pairing_code(app, user).await;
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let r = register(app, &code, &key, json!({})).await.assert_status(201);
    assert_eq!(r.str("email"), user.email);
    Device { key, id: r.str("device_id") }
}

/// Password step and a push; the login token and the 202's body.
pub(crate) async fn raise_push(app: &TestApp, user: &User) -> (String, Resp) {
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    let methods = login.body["methods"].as_array().expect("methods").clone();
    assert!(methods.contains(&json!("push")), "{methods:?}");
    let token = login.str("login_token");
    let push = app.post("/api/v1/login/challenge", &json!({"login_token": token, "method": "push"}), None).await;
    (token, push)
}

pub(crate) async fn verify_push(app: &TestApp, login_token: &str, challenge: &str) -> Resp {
    app.post("/api/v1/login/verify", &json!({"login_token": login_token, "method": "push", "code": challenge}), None)
        .await
}

async fn status(app: &TestApp, challenge: &str) -> String {
    app.get(&format!("/api/v1/login/challenge/{challenge}"), None).await.assert_status(200).str("status")
}

async fn cli(args: &[&str]) -> (bool, String) {
    let out = tokio::process::Command::new(BIN).args(args).output().await.expect("twostep runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

both_backends!(
    push_is_offered_first_unless_the_account_prefers_another_method,
    cli_companion_enrols_and_its_approval_turns_the_login_token_into_a_session,
    a_wrong_number_denies_the_push_and_counts_as_a_wrong_code,
    bad_signatures_stale_timestamps_and_removed_devices_are_refused,
    answers_are_final_replays_and_late_answers_are_refused,
    pairing_codes_are_single_use_short_lived_and_need_reauth,
    push_fatigue_caps_pending_and_denied_requests,
    a_burst_of_push_raises_leaves_at_most_three_pending,
    at_most_ten_pushes_between_successful_sign_ins,
    a_push_proves_the_second_factor_for_reauth,
    one_approval_yields_one_session_across_instances,
    devices_are_listed_renamed_and_removed_like_authenticators,
    a_long_poll_returns_as_soon_as_a_request_arrives,
    push_needs_a_device_and_a_live_login_token,
);

each_backend!(
    under_policy_the_last_factor_cannot_be_removed_from_the_device_either,
    the_place_header_is_believed_only_from_a_trusted_proxy,
    deny_with_not_me_mails_the_account_and_is_audited,
    web_push_wakes_a_subscribed_page_with_only_the_challenge_id,
    web_push_to_a_private_address_is_refused_at_send_time_and_keeps_the_subscription,
    the_push_webhook_is_signed_and_carries_only_ids
);

/// SEC-43, SEC-45: the CLI companion, as an operator would use it.
async fn cli_companion_enrols_and_its_approval_turns_the_login_token_into_a_session(app: TestApp) {
    let user = app.user_with_totp().await;
    let p = app.post("/api/v1/me/push-devices/pairing", &json!({}), Some(&user.token)).await.assert_status(201);
    let dir = tempfile::tempdir().expect("dir");
    let key = dir.path().join("companion.json");
    let key = key.to_str().expect("utf-8");
    let (ok, out) = cli(&["companion", "enroll", &p.str("pairing_url"), "--key", key, "--name", "CI runner"]).await;
    assert!(ok, "{out}");
    assert!(out.contains(&user.email), "{out}");
    assert!(out.contains(&format!("next: run `twostep companion watch --key {key}`")), "the next step: {out}");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(std::fs::metadata(key).expect("key file").permissions().mode() & 0o777, 0o600);
    }
    let me = app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    assert!(me.body["two_factor"]["methods"].as_array().expect("methods").contains(&json!("push")), "{}", me.text);
    let list = app.get("/api/v1/me/authenticators", Some(&user.token)).await.assert_status(200);
    assert!(list.body.as_array().expect("list").iter().any(|a| a["type"] == "push" && a["name"] == "CI runner"));

    let (login_token, push) = raise_push(&app, &user).await;
    let push = push.assert_status(202);
    assert_eq!(push.str("method"), "push");
    assert_eq!(push.str("sent_to"), "CI runner");
    assert_eq!(push.body["expires_in"], 60);
    let number = push.str("number");
    assert_eq!(number.len(), 2, "{number}");
    let challenge = push.str("challenge_id");
    assert_eq!(status(&app, &challenge).await, "pending");

    let (ok, out) = cli(&["companion", "pending", "--key", key]).await;
    assert!(ok, "{out}");
    let pending: Value = serde_json::from_str(&out).expect("pending JSON");
    let c = &pending["challenges"][0];
    assert_eq!(c["id"], json!(challenge));
    assert_eq!(c["email"], json!(user.email));
    assert_eq!(c["ip"], "127.0.0.1");
    assert!(c.get("number").is_none(), "the device must not be told the number: {c}");

    let (ok, out) = cli(&["companion", "answer", &challenge, "--approve", &number, "--key", key]).await;
    assert!(ok, "{out}");
    assert_eq!(status(&app, &challenge).await, "approved");
    let session = verify_push(&app, &login_token, &challenge).await.assert_status(200);
    assert_eq!(session.str("status"), "authenticated");
    app.get("/api/v1/me", Some(&session.str("session_token"))).await.assert_status(200);
    assert_eq!(status(&app, &challenge).await, "used");
    // Single use: the same approval again is a wrong code.
    verify_push(&app, &login_token, &challenge).await.assert_error(401, "invalid_code");

    // The terminal companion answers at its prompt, too.
    let (login_token, push) = raise_push(&app, &user).await;
    let push = push.assert_status(202);
    let mut watch = tokio::process::Command::new(BIN)
        .args(["companion", "watch", "--once", "--key", key])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("watch");
    {
        use tokio::io::AsyncWriteExt;
        let mut stdin = watch.stdin.take().expect("stdin");
        stdin.write_all(format!("{}\n", push.str("number")).as_bytes()).await.expect("type the number");
        drop(stdin);
    }
    let out = tokio::time::timeout(Duration::from_secs(30), watch.wait_with_output())
        .await
        .expect("watch ends")
        .expect("out");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("approved"), "{text}");
    verify_push(&app, &login_token, &push.str("challenge_id")).await.assert_status(200);

    // Forgetting the device removes it from the account.
    let (ok, out) = cli(&["companion", "forget", "--key", key]).await;
    assert!(ok, "{out}");
    assert!(!std::path::Path::new(key).exists());
    let devices = app.get("/api/v1/me/push-devices", Some(&user.token)).await.assert_status(200);
    assert_eq!(devices.body, json!([]));
}

/// SEC-43: number matching; a wrong number is a wrong code (§2.5).
async fn a_wrong_number_denies_the_push_and_counts_as_a_wrong_code(app: TestApp) {
    let user = app.user_with_totp().await;
    let device = paired(&app, &user).await;
    let (login_token, push) = raise_push(&app, &user).await;
    let push = push.assert_status(202);
    let challenge = push.str("challenge_id");
    let right: i64 = push.str("number").parse().expect("number");
    let wrong = format!("{:02}", (right + 1) % 100);
    device
        .answer(&app, &challenge, &json!({"decision": "approve", "number": wrong}))
        .await
        .assert_error(401, "wrong_number");
    assert_eq!(status(&app, &challenge).await, "denied");
    // Final: the right number no longer helps, and no session comes of it.
    device
        .answer(&app, &challenge, &json!({"decision": "approve", "number": push.str("number")}))
        .await
        .assert_error(409, "push_closed");
    verify_push(&app, &login_token, &challenge).await.assert_error(401, "invalid_code");
    // Approving without a number is a wrong number too.
    let (_, push) = raise_push(&app, &user).await;
    let push = push.assert_status(202);
    device
        .answer(&app, &push.str("challenge_id"), &json!({"decision": "approve"}))
        .await
        .assert_error(401, "wrong_number");
    let mut conn = app.raw().await;
    let n: i64 = sqlx::query_scalar("SELECT failures FROM throttle_counters WHERE scope = $1")
        .bind(format!("second_factor:{}", me_id(&app, &user).await))
        .fetch_one(&mut conn)
        .await
        .expect("second_factor counter");
    assert!(n >= 2, "wrong numbers counted: {n}");
}

async fn me_id(app: &TestApp, user: &User) -> String {
    app.get("/api/v1/me", Some(&user.token)).await.assert_status(200).str("id")
}

/// SEC-43: only the device's key, fresh, over exactly this request.
async fn bad_signatures_stale_timestamps_and_removed_devices_are_refused(app: TestApp) {
    let user = app.user_with_totp().await;
    let device = paired(&app, &user).await;
    let (_, push) = raise_push(&app, &user).await;
    let push = push.assert_status(202);
    let challenge = push.str("challenge_id");
    let path = format!("/api/v1/push/challenges/{challenge}/answer");
    let approve = json!({"decision": "approve", "number": push.str("number")});
    let other = SigningKey::random(&mut rand::rngs::OsRng);
    device
        .call_as(&app, &other, reqwest::Method::POST, &path, Some(&approve), 0)
        .await
        .assert_error(401, "invalid_signature");
    device
        .call_as(&app, &device.key, reqwest::Method::POST, &path, Some(&approve), -301)
        .await
        .assert_error(401, "invalid_signature");
    device
        .call_as(&app, &device.key, reqwest::Method::POST, &path, Some(&approve), 301)
        .await
        .assert_error(401, "invalid_signature");
    // A signature over one body does not cover another.
    let ts = app.clock.secs().to_string();
    let signed = device.sign(&device_message("POST", &path, &ts, br#"{"decision":"deny"}"#));
    app.http
        .post(format!("{}{path}", app.url))
        .header("x-twostep-device", &device.id)
        .header("x-twostep-timestamp", &ts)
        .header("x-twostep-signature", signed)
        .header("content-type", "application/json")
        .body(serde_json::to_vec(&approve).expect("json"))
        .send()
        .await
        .map(|r| assert_eq!(r.status(), 401))
        .expect("request");
    // No headers at all.
    let r = app.post(&path, &approve, None).await;
    r.assert_error(401, "invalid_signature");
    assert_eq!(status(&app, &challenge).await, "pending");

    // Removed (re-auth: the sign-in above is recent), the device is a stranger.
    app.delete(&format!("/api/v1/me/push-devices/{}", device.id), Some(&user.token)).await.assert_status(204);
    device.answer(&app, &challenge, &approve).await.assert_error(401, "invalid_signature");
    device
        .call(&app, reqwest::Method::GET, "/api/v1/push/challenges", None)
        .await
        .assert_error(401, "invalid_signature");
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert!(!login.body["methods"].as_array().expect("methods").contains(&json!("push")), "{}", login.text);
}

/// SEC-37, SEC-43: approve, deny and expiry are final; 60 s.
async fn answers_are_final_replays_and_late_answers_are_refused(app: TestApp) {
    let user = app.user_with_totp().await;
    let device = paired(&app, &user).await;
    let (_, push) = raise_push(&app, &user).await;
    let push = push.assert_status(202);
    let challenge = push.str("challenge_id");
    let path = format!("/api/v1/push/challenges/{challenge}/answer");
    let body = json!({"decision": "approve", "number": push.str("number")});
    // The very same signed request, twice: the second is a replay.
    let bytes = serde_json::to_vec(&body).expect("json");
    let ts = app.clock.secs().to_string();
    let sig = device.sign(&device_message("POST", &path, &ts, &bytes));
    let send = || {
        app.http
            .post(format!("{}{path}", app.url))
            .header("x-twostep-device", &device.id)
            .header("x-twostep-timestamp", &ts)
            .header("x-twostep-signature", &sig)
            .header("content-type", "application/json")
            .body(bytes.clone())
            .send()
    };
    assert_eq!(send().await.expect("first").status(), 204);
    let replay = Resp::from(send().await.expect("replay")).await;
    replay.assert_error(409, "push_closed");
    device.answer(&app, &challenge, &json!({"decision": "deny"})).await.assert_error(409, "push_closed");
    assert_eq!(status(&app, &challenge).await, "approved");

    // 60 s later, a pending push is expired: no answer is taken.
    let (login_token, push) = raise_push(&app, &user).await;
    let push = push.assert_status(202);
    let late = push.str("challenge_id");
    app.clock.advance(59);
    assert_eq!(status(&app, &late).await, "pending");
    assert_eq!(device.pending(&app).await.len(), 1);
    app.clock.advance(2);
    assert_eq!(status(&app, &late).await, "expired");
    assert!(device.pending(&app).await.is_empty());
    device
        .answer(&app, &late, &json!({"decision": "approve", "number": push.str("number")}))
        .await
        .assert_error(409, "push_closed");
    verify_push(&app, &login_token, &late).await.assert_error(401, "invalid_code");
    // Someone else's challenge id is not found for this device.
    device.answer(&app, "no-such-challenge", &json!({"decision": "deny"})).await.assert_error(404, "not_found");
    device.answer(&app, &late, &json!({"decision": "maybe"})).await.assert_error(400, "invalid_request");
}

/// SEC-45: ≥ 112 bits, single use, ≤ 10 min, after re-auth.
async fn pairing_codes_are_single_use_short_lived_and_need_reauth(app: TestApp) {
    let user = app.user_with_totp().await;
    let code = pairing_code(&app, &user).await;
    assert!(data_encoding::BASE64URL_NOPAD.decode(code.as_bytes()).is_ok_and(|b| b.len() >= 14), "{code}");
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    // A proof made with another key, a malformed key, a bad subscription.
    let other = SigningKey::random(&mut rand::rngs::OsRng);
    let public = b64(key.verifying_key().to_encoded_point(false).as_bytes());
    let forged: Signature = other.sign(&pairing_message(&code, &public));
    app.post(
        "/api/v1/push/devices",
        &json!({"pairing_code": code, "public_key": public, "signature": b64(&forged.to_bytes())}),
        None,
    )
    .await
    .assert_error(401, "invalid_signature");
    app.post("/api/v1/push/devices", &json!({"pairing_code": code, "public_key": "AAAA", "signature": "AAAA"}), None)
        .await
        .assert_error(400, "invalid_public_key");
    register(
        &app,
        &code,
        &key,
        json!({"web_push": {"endpoint": "http://10.0.0.1/x", "keys": {"p256dh": "x", "auth": "y"}}}),
    )
    .await
    .assert_error(400, "invalid_subscription");
    register(&app, &code, &key, json!({"name": "x".repeat(65)})).await.assert_error(400, "invalid_name");
    // None of that used the code up; the first good registration does.
    register(&app, &code, &key, json!({})).await.assert_status(201);
    register(&app, &code, &SigningKey::random(&mut rand::rngs::OsRng), json!({}))
        .await
        .assert_error(400, "invalid_token");

    // Ten minutes and a second later, a code is dead.
    let code = pairing_code(&app, &user).await;
    app.clock.advance(601);
    register(&app, &code, &SigningKey::random(&mut rand::rngs::OsRng), json!({}))
        .await
        .assert_error(400, "invalid_token");
    // And the session is no longer recent enough to ask for another.
    app.post("/api/v1/me/push-devices/pairing", &json!({}), Some(&user.token))
        .await
        .assert_error(403, "reauth_required");
    // A new code replaces the previous one.
    app.post(
        "/api/v1/me/reauth",
        &json!({"password": user.password, "method": "totp", "code": app.code(&user.secret, 0)}),
        Some(&user.token),
    )
    .await
    .assert_status(204);
    let first = pairing_code(&app, &user).await;
    let second = pairing_code(&app, &user).await;
    register(&app, &first, &SigningKey::random(&mut rand::rngs::OsRng), json!({}))
        .await
        .assert_error(400, "invalid_token");
    register(&app, &second, &SigningKey::random(&mut rand::rngs::OsRng), json!({})).await.assert_status(201);

    // Without 2FA there is nothing to add push to.
    let plain = app.user().await;
    app.post("/api/v1/me/push-devices/pairing", &json!({}), Some(&plain.token))
        .await
        .assert_error(409, "two_factor_not_enabled");
}

/// SEC-44: ≤ 3 pending-or-denied pushes per 10 minutes; approvals do not count.
/// Issue 14: the fatigue cap is checked and the push stored in one step,
/// so raises fired together on two instances leave no more than three.
async fn a_burst_of_push_raises_leaves_at_most_three_pending(app: TestApp) {
    let user = app.user_with_totp().await;
    let device = paired(&app, &user).await;
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    let token = login.str("login_token");
    let bases = app.instances().await;
    // Three fit; a second, larger burst finds the cap full.
    for (n, accepted) in [(50, 3), (200, 0)] {
        let t = token.clone();
        let rs = crate::burst::burst(&bases, n, move |_, c, base| {
            c.post(format!("{base}/api/v1/login/challenge")).json(&json!({"login_token": t, "method": "push"}))
        })
        .await;
        let tally = crate::burst::tally(&rs);
        assert_eq!(crate::burst::count(&rs, 202), accepted, "{tally:?}");
        assert_eq!(crate::burst::count(&rs, 429), n - accepted, "{tally:?}");
        assert_eq!(device.pending(&app).await.len(), 3);
    }
}

async fn push_fatigue_caps_pending_and_denied_requests(app: TestApp) {
    let user = app.user_with_totp().await;
    let device = paired(&app, &user).await;
    // An approved push does not count.
    let (login_token, push) = raise_push(&app, &user).await;
    let push = push.assert_status(202);
    device
        .answer(&app, &push.str("challenge_id"), &json!({"decision": "approve", "number": push.str("number")}))
        .await
        .assert_status(204);
    verify_push(&app, &login_token, &push.str("challenge_id")).await.assert_status(200);
    // Unanswered, denied, unanswered: three.
    raise_push(&app, &user).await.1.assert_status(202);
    let (_, denied) = raise_push(&app, &user).await;
    device
        .answer(&app, &denied.assert_status(202).str("challenge_id"), &json!({"decision": "deny"}))
        .await
        .assert_status(204);
    app.clock.advance(120);
    raise_push(&app, &user).await.1.assert_status(202);
    let (_, refused) = raise_push(&app, &user).await;
    let refused = refused.assert_error(429, "too_many_requests");
    let retry: i64 = refused.header("retry-after").parse().expect("Retry-After");
    assert!((470..=480).contains(&retry), "the oldest leaves the window in about 8 minutes: {retry}");
    let log = app.get("/api/v1/me/security-log", Some(&user.token)).await.assert_status(200);
    assert!(log.body.as_array().expect("log").iter().any(|e| e["event"] == "throttled" && e["details"] == "push"));
    // The other methods still work meanwhile.
    app.clock.advance(30);
    app.sign_in_with(&user, "totp", &app.code(&user.secret, 0)).await.assert_status(200);
    app.clock.advance(retry);
    raise_push(&app, &user).await.1.assert_status(202);
}

/// SEC-37: 20 parallel second steps with one approval on two instances → one session.
async fn one_approval_yields_one_session_across_instances(app: TestApp) {
    let user = app.user_with_totp().await;
    let device = paired(&app, &user).await;
    let (login_token, push) = raise_push(&app, &user).await;
    let push = push.assert_status(202);
    let challenge = push.str("challenge_id");
    // Twenty answers race; one is taken.
    let approve = json!({"decision": "approve", "number": push.str("number")});
    let answers = futures::future::join_all((0..20).map(|_| device.answer(&app, &challenge, &approve))).await;
    assert_eq!(answers.iter().filter(|r| r.status == 204).count(), 1);
    assert!(answers.iter().all(|r| r.status == 204 || r.status == 409));
    let other = app.second_instance().await;
    let body = json!({"login_token": login_token, "method": "push", "code": challenge});
    let results = futures::future::join_all((0..20).map(|i| {
        let base = if i % 2 == 0 { app.url.clone() } else { other.clone() };
        let req = app.http.post(format!("{base}/api/v1/login/verify")).json(&body);
        async move { req.send().await.expect("verify").status().as_u16() }
    }))
    .await;
    assert_eq!(results.iter().filter(|s| **s == 200).count(), 1, "{results:?}");
}

async fn devices_are_listed_renamed_and_removed_like_authenticators(app: TestApp) {
    let user = app.user_with_totp().await;
    let device = paired(&app, &user).await;
    let list = app.get("/api/v1/me/push-devices", Some(&user.token)).await.assert_status(200);
    assert_eq!(list.body[0]["id"], json!(device.id));
    assert_eq!(list.body[0]["name"], "Test phone");
    assert_eq!(list.body[0]["web_push"], false);
    let path = format!("/api/v1/me/push-devices/{}", device.id);
    let renamed = app
        .http
        .patch(format!("{}{path}", app.url))
        .bearer_auth(&user.token)
        .json(&json!({"name": "  Work phone "}))
        .send()
        .await
        .expect("patch");
    let renamed = Resp::from(renamed).await.assert_status(200);
    assert_eq!(renamed.str("name"), "Work phone");
    let bad =
        app.http.patch(format!("{}{path}", app.url)).bearer_auth(&user.token).json(&json!({"name": "a\u{0}b"})).send();
    Resp::from(bad.await.expect("patch")).await.assert_error(400, "invalid_name");
    let (_, push) = raise_push(&app, &user).await;
    assert_eq!(push.assert_status(202).str("sent_to"), "Work phone");
    // Another account's device is not found; removal needs re-auth.
    let stranger = app.user_with_totp().await;
    app.delete(&path, Some(&stranger.token)).await.assert_error(404, "not_found");
    app.clock.advance(11 * 60);
    app.delete(&path, Some(&user.token)).await.assert_error(403, "reauth_required");
    app.post(
        "/api/v1/me/reauth",
        &json!({"password": user.password, "method": "totp", "code": app.code(&user.secret, 0)}),
        Some(&user.token),
    )
    .await
    .assert_status(204);
    app.delete(&path, Some(&user.token)).await.assert_status(204);
    assert_eq!(app.get("/api/v1/me/push-devices", Some(&user.token)).await.body, json!([]));
}

async fn a_long_poll_returns_as_soon_as_a_request_arrives(app: TestApp) {
    let user = app.user_with_totp().await;
    let device = paired(&app, &user).await;
    let waiting = device.call(&app, reqwest::Method::GET, "/api/v1/push/challenges?wait=20", None);
    let raise = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        raise_push(&app, &user).await.1.assert_status(202)
    };
    let (got, push) = tokio::join!(waiting, raise);
    let got = got.assert_status(200);
    assert_eq!(got.body["challenges"][0]["id"], json!(push.str("challenge_id")), "{}", got.text);
    // The sign-in page's long-poll returns on the answer.
    let challenge = push.str("challenge_id");
    let page_path = format!("/api/v1/login/challenge/{challenge}?wait=20");
    let page = app.get(&page_path, None);
    let approve = async {
        tokio::time::sleep(Duration::from_millis(300)).await;
        device
            .answer(&app, &challenge, &json!({"decision": "approve", "number": push.str("number")}))
            .await
            .assert_status(204)
    };
    let (seen, _) = tokio::join!(page, approve);
    assert_eq!(seen.assert_status(200).str("status"), "approved");
}

async fn push_needs_a_device_and_a_live_login_token(app: TestApp) {
    let user = app.user_with_totp().await;
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert!(!login.body["methods"].as_array().expect("methods").contains(&json!("push")));
    let token = login.str("login_token");
    app.post("/api/v1/login/challenge", &json!({"login_token": token, "method": "push"}), None)
        .await
        .assert_error(400, "method_unavailable");
    paired(&app, &user).await;
    app.post("/api/v1/login/challenge", &json!({"login_token": "nope", "method": "push"}), None)
        .await
        .assert_error(401, "invalid_token");
    app.clock.advance(301);
    app.post("/api/v1/login/challenge", &json!({"login_token": token, "method": "push"}), None)
        .await
        .assert_error(401, "invalid_token");
    app.get("/api/v1/login/challenge/unknown", None).await.assert_error(404, "not_found");
    let doc = app.get("/api/openapi.json", None).await.assert_status(200);
    for path in [
        "/api/v1/me/push-devices",
        "/api/v1/me/push-devices/pairing",
        "/api/v1/push/devices",
        "/api/v1/push/challenges",
        "/api/v1/push/challenges/{id}/answer",
        "/api/v1/login/challenge/{id}",
    ] {
        assert!(doc.body["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
}

/// SEC-44: a denial is audited and mailed; "this wasn't me" says so.
async fn deny_with_not_me_mails_the_account_and_is_audited(db: Db) {
    let (app, sink): (TestApp, SmtpSink) = TestApp::spawn_with_mail(db).await;
    let user = app.verified_user_with_totp(&sink).await;
    let device = paired(&app, &user).await;
    let (login_token, push) = raise_push(&app, &user).await;
    let challenge = push.assert_status(202).str("challenge_id");
    device.answer(&app, &challenge, &json!({"decision": "deny", "not_me": true})).await.assert_status(204);
    assert_eq!(status(&app, &challenge).await, "denied");
    verify_push(&app, &login_token, &challenge).await.assert_error(401, "invalid_code");
    let mail = sink.wait_for_subject("Someone else tried to sign in").await;
    assert_eq!(mail["to"], json!([user.email]));
    let text = mail["text"].as_str().expect("text");
    assert!(text.contains("Test phone") && text.contains("change it"), "{text}");
    let log = app.get("/api/v1/me/security-log", Some(&user.token)).await.assert_status(200);
    let entry =
        log.body.as_array().expect("log").iter().find(|e| e["event"] == "push_denied").cloned().expect("audited");
    assert_eq!(entry["details"], "denied: not me");
    assert_eq!(entry["factor_id"], json!(device.id));
}

/// Web Push (RFC 8030/8291/8292) to a push service on loopback: VAPID-signed,
/// encrypted, and the payload is the challenge id alone. A 410 forgets the
/// subscription. Loopback is reached only because the test's configuration
/// says so (`push.allow_private_endpoints`).
async fn web_push_wakes_a_subscribed_page_with_only_the_challenge_id(db: Db) {
    let app = TestApp::spawn_with_resolved(db, |r| {
        r.settings.webpush_allow_http = true;
        r.push.allow_private_endpoints = true;
    })
    .await;
    let push_service = Receiver::start().await;
    let user = app.user_with_totp().await;
    // The "browser" subscription: a key pair and auth secret the test holds.
    let ua = twostep_delivery::webpush::VapidKey::generate();
    let ua_private = data_encoding::BASE64URL_NOPAD.decode(ua.to_base64url().as_bytes()).expect("key");
    let auth = [7u8; 16];
    let sub = json!({"endpoint": format!("{}/push/abc", push_service.url), "keys": {"p256dh": ua.public_key_base64url(), "auth": b64(&auth)}});
    let code = pairing_code(&app, &user).await;
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let r = register(&app, &code, &key, json!({"web_push": sub})).await.assert_status(201);
    let device = Device { key, id: r.str("device_id") };
    let list = app.get("/api/v1/me/push-devices", Some(&user.token)).await;
    assert_eq!(list.body[0]["web_push"], true);

    let (_, push) = raise_push(&app, &user).await;
    let challenge = push.assert_status(202).str("challenge_id");
    let got = push_service.wait_for(1).await;
    let req = &got[0];
    assert_eq!(req.path, "/push/abc");
    assert_eq!(req.header("content-encoding"), "aes128gcm");
    assert_eq!(req.header("ttl"), "60");
    let vapid = app.get("/api/v1/push/vapid-public-key", None).await.assert_status(200).str("public_key");
    let authz = req.header("authorization");
    let (t, k) = authz
        .strip_prefix("vapid t=")
        .and_then(|rest| rest.split_once(", k="))
        .unwrap_or_else(|| panic!("VAPID header: {authz}"));
    assert_eq!(k, vapid);
    let claims = twostep_delivery::webpush::verify_vapid_jwt(t, &vapid).expect("JWT verifies with the server's key");
    assert_eq!(claims.aud, push_service.url);
    let payload = twostep_delivery::webpush::decrypt(&ua_private, &auth, &req.body).expect("decrypts");
    assert_eq!(serde_json::from_slice::<Value>(&payload).expect("json"), json!({"challenge": challenge}));

    // The device drops its subscription, then sets it again; a dead one is forgotten.
    device
        .call(&app, reqwest::Method::PUT, "/api/v1/push/device/web-push", Some(&json!({"web_push": null})))
        .await
        .assert_status(204);
    assert_eq!(app.get("/api/v1/me/push-devices", Some(&user.token)).await.body[0]["web_push"], false);
    device
        .call(&app, reqwest::Method::PUT, "/api/v1/push/device/web-push", Some(&json!({"web_push": sub})))
        .await
        .assert_status(204);
    push_service.fail_next(&[410]);
    raise_push(&app, &user).await.1.assert_status(202);
    push_service.wait_for(2).await;
    for _ in 0..100 {
        if app.get("/api/v1/me/push-devices", Some(&user.token)).await.body[0]["web_push"] == false {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("a 410 from the push service should forget the subscription");
}

/// Pen-test finding 5 (blind SSRF): a device's endpoint whose name resolves
/// to loopback, or that is a loopback address, is refused when sending, with
/// the server's default configuration. The "push service" there would
/// answer 410; the subscription stays, so a device cannot learn from it
/// whether anything listens on an internal address.
async fn web_push_to_a_private_address_is_refused_at_send_time_and_keeps_the_subscription(db: Db) {
    let relay = Receiver::start().await;
    let hook = (format!("{}/relay", relay.url), "a-push-webhook-secret-of-32-chars!!".to_owned());
    // Plain http is let through registration so the endpoint can point at
    // the local receiver; private addresses are not allowed for sending.
    let app = TestApp::spawn_with_resolved(db, move |r| {
        r.settings.webpush_allow_http = true;
        r.push.webhook = Some(hook);
    })
    .await;
    let push_service = Receiver::start().await;
    push_service.fail_next(&[410, 410, 410]);
    let port = push_service.url.rsplit(':').next().expect("a port").to_owned();
    let user = app.user_with_totp().await;
    let ua = twostep_delivery::webpush::VapidKey::generate();
    let keys = json!({"p256dh": ua.public_key_base64url(), "auth": b64(&[7u8; 16])});
    let code = pairing_code(&app, &user).await;
    let key = SigningKey::random(&mut rand::rngs::OsRng);
    let first = json!({"endpoint": format!("http://localhost:{port}/push/abc"), "keys": keys});
    let r = register(&app, &code, &key, json!({"web_push": first})).await.assert_status(201);
    let device = Device { key, id: r.str("device_id") };

    for (i, host) in ["localhost", "127.0.0.1"].into_iter().enumerate() {
        let sub = json!({"endpoint": format!("http://{host}:{port}/push/abc"), "keys": keys});
        device
            .call(&app, reqwest::Method::PUT, "/api/v1/push/device/web-push", Some(&json!({"web_push": sub})))
            .await
            .assert_status(204);
        raise_push(&app, &user).await.1.assert_status(202);
        // The webhook wakes after Web Push for the same device: once it has
        // arrived, the Web Push attempt is over.
        relay.wait_for(i + 1).await;
        assert!(push_service.requests().is_empty(), "{host}: the server connected to loopback");
        let list = app.get("/api/v1/me/push-devices", Some(&user.token)).await;
        assert_eq!(list.body[0]["web_push"], true, "{host}: a refusal must not forget the subscription");
    }
}

async fn the_push_webhook_is_signed_and_carries_only_ids(db: Db) {
    let relay = Receiver::start().await;
    let secret = "a-push-webhook-secret-of-32-chars!!".to_owned();
    let url = format!("{}/ntfy/topic", relay.url);
    let hook = (url, secret.clone());
    let app = TestApp::spawn_with_resolved(db, move |r| r.push.webhook = Some(hook)).await;
    let user = app.user_with_totp().await;
    let device = paired(&app, &user).await;
    let (_, push) = raise_push(&app, &user).await;
    let challenge = push.assert_status(202).str("challenge_id");
    let got = relay.wait_for(1).await;
    let req = &got[0];
    assert_eq!(req.path, "/ntfy/topic");
    assert_eq!(req.json(), json!({"challenge": challenge, "device": device.id}));
    let ts: i64 = req.header("x-twostep-timestamp").parse().expect("timestamp");
    assert!(twostep_delivery::webhook::verify(
        secret.as_bytes(),
        ts,
        &req.body,
        &req.header("x-twostep-signature"),
        app.clock.secs(),
        300
    ));
}

async fn the_place_header_is_believed_only_from_a_trusted_proxy(db: Db) {
    for (trusted, expected) in [(true, json!("Berlin, DE")), (false, Value::Null)] {
        let app = TestApp::spawn_with_resolved(db, |r| {
            r.push.place_header = Some("x-geo-place".into());
            if trusted {
                r.trusted_proxies = twostep_domain::policy::allowlist::parse_ranges("127.0.0.1").expect("range");
            }
        })
        .await;
        let user = app.user_with_totp().await;
        let device = paired(&app, &user).await;
        let login = app.login(&user.email, &user.password).await.assert_status(200);
        let push = app
            .http
            .post(format!("{}/api/v1/login/challenge", app.url))
            .header("x-geo-place", "Berlin, DE")
            .header("x-forwarded-for", "198.51.100.7")
            .json(&json!({"login_token": login.str("login_token"), "method": "push"}))
            .send()
            .await
            .expect("challenge");
        assert_eq!(push.status(), 202);
        let pending = device.pending(&app).await;
        assert_eq!(pending[0]["place"], expected, "trusted proxy: {trusted}");
        let ip = if trusted { "198.51.100.7" } else { "127.0.0.1" };
        assert_eq!(pending[0]["ip"], ip);
    }
}

/// SEC-44, §2.9: ≤ 10 pushes since the last successful sign-in, however slowly they come.
async fn at_most_ten_pushes_between_successful_sign_ins(app: TestApp) {
    let user = app.user_with_totp().await;
    paired(&app, &user).await;
    for n in 0..10 {
        if n % 3 == 0 {
            app.clock.advance(601);
        }
        raise_push(&app, &user).await.1.assert_status(202);
    }
    app.clock.advance(601);
    raise_push(&app, &user).await.1.assert_error(429, "too_many_requests");
    // A sign-in by another method starts the count again.
    app.sign_in_with(&user, "totp", &app.code(&user.secret, 0)).await.assert_status(200);
    app.clock.advance(1);
    raise_push(&app, &user).await.1.assert_status(202);
}

/// §2.7: re-auth by push; the approval is bound to the session that asked.
async fn a_push_proves_the_second_factor_for_reauth(app: TestApp) {
    let user = app.user_with_totp().await;
    let device = paired(&app, &user).await;
    app.clock.advance(11 * 60);
    app.post("/api/v1/me/recovery-codes", &json!({}), Some(&user.token)).await.assert_error(403, "reauth_required");
    let push = app.post("/api/v1/me/reauth/challenge", &json!({"method": "push"}), Some(&user.token)).await;
    let push = push.assert_status(202);
    let challenge = push.str("challenge_id");
    let pending = device.pending(&app).await;
    assert_eq!(pending[0]["id"], json!(challenge));
    device
        .answer(&app, &challenge, &json!({"decision": "approve", "number": push.str("number")}))
        .await
        .assert_status(204);
    // Another session of the account cannot spend this approval.
    let other = app.login(&user.email, &user.password).await.assert_status(200);
    let other = verify_push(&app, &other.str("login_token"), &challenge).await;
    other.assert_error(401, "invalid_code");
    app.post(
        "/api/v1/me/reauth",
        &json!({"password": user.password, "method": "push", "code": challenge}),
        Some(&user.token),
    )
    .await
    .assert_status(204);
    app.post("/api/v1/me/recovery-codes", &json!({}), Some(&user.token)).await.assert_status(201);
    // Used once.
    app.post("/api/v1/me/reauth", &json!({"method": "push", "code": challenge}), Some(&user.token))
        .await
        .assert_error(401, "invalid_code");
}

/// SEC-47: a device forgetting itself is a factor removal too; policy keeps the last one.
async fn under_policy_the_last_factor_cannot_be_removed_from_the_device_either(db: Db) {
    let app = TestApp::spawn_with(db, |s| s.require_two_factor = true).await;
    let user = app.user_with_totp().await;
    let device = paired(&app, &user).await;
    app.delete(&format!("/api/v1/me/authenticators/{}", user.authenticator_id), Some(&user.token))
        .await
        .assert_status(204);
    device
        .call(&app, reqwest::Method::DELETE, "/api/v1/push/device", None)
        .await
        .assert_error(403, "two_factor_required_by_policy");
    app.delete(&format!("/api/v1/me/push-devices/{}", device.id), Some(&user.token))
        .await
        .assert_error(403, "two_factor_required_by_policy");
    assert_eq!(device.pending(&app).await.len(), 0, "the device still works");
}

/// Push leads the methods when a companion is paired; a chosen method
/// leads instead while the account holds it; a method it lacks is refused.
async fn push_is_offered_first_unless_the_account_prefers_another_method(app: TestApp) {
    let user = app.user_with_totp().await;
    let _device = paired(&app, &user).await;
    assert_eq!(first_methods(&app, &user).await, vec![json!("push"), json!("totp"), json!("recovery_code")]);
    let saved = prefer(&app, &user, json!("totp")).await.assert_status(200);
    assert_eq!(saved.body["method"], "totp");
    assert_eq!(first_methods(&app, &user).await[0], "totp");
    prefer(&app, &user, json!("sms")).await.assert_error(400, "invalid_request");
    prefer(&app, &user, json!("nonsense")).await.assert_error(400, "invalid_request");
    assert_eq!(first_methods(&app, &user).await[0], "totp", "a refused choice changes nothing");
    prefer(&app, &user, Value::Null).await.assert_status(200);
    assert_eq!(first_methods(&app, &user).await[0], "push");
}

async fn first_methods(app: &TestApp, user: &User) -> Vec<Value> {
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    login.body["methods"].as_array().expect("methods").clone()
}

async fn prefer(app: &TestApp, user: &User, method: Value) -> Resp {
    app.put("/api/v1/me/preferred-method", &json!({"method": method}), Some(&user.token)).await
}
