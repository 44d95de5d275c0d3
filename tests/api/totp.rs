//! Authenticator apps: enrolment, sign-in, replay, drift, re-auth, disable.

use serde_json::json;
use twostep_domain::factors::totp::otpauth::base32_decode;
use twostep_testkit::{TestApp, both_backends};

both_backends!(
    each_enrolment_makes_a_new_secret_and_voids_the_last,
    confirming_turns_two_factor_on_with_ten_recovery_codes,
    enrolments_expire_after_ten_minutes,
    sign_in_asks_for_the_second_factor,
    a_code_works_once_and_the_confirming_code_never_signs_in,
    one_step_of_drift_is_accepted_two_are_not,
    five_wrong_codes_kill_the_login_token,
    login_tokens_expire_after_five_minutes,
    concurrent_requests_with_one_code_succeed_once,
    removing_an_authenticator_needs_reauth,
    disabling_two_factor_needs_reauth_and_removes_everything,
    secrets_are_never_stored_in_the_clear,
    events_are_audited,
);

async fn each_enrolment_makes_a_new_secret_and_voids_the_last(app: TestApp) {
    // SEC-19
    let user = app.user().await;
    let first = app.post("/api/v1/me/totp", &json!({}), Some(&user.token)).await.assert_status(201);
    let second = app.post("/api/v1/me/totp", &json!({}), Some(&user.token)).await.assert_status(201);
    assert_ne!(first.str("secret"), second.str("secret"));
    assert_ne!(first.str("enrollment_id"), second.str("enrollment_id"));
    let secret = base32_decode(&first.str("secret")).expect("base32");
    assert_eq!(secret.len(), 20, "160-bit secret");
    assert!(second.str("qr_svg").starts_with("<svg"));
    assert!(second.str("otpauth_uri").starts_with("otpauth://totp/"));
    // The superseded enrolment is refused even with its own valid code.
    let code = app.code(&secret, 0);
    app.post(
        "/api/v1/me/totp/confirm",
        &json!({"enrollment_id": first.str("enrollment_id"), "code": code}),
        Some(&user.token),
    )
    .await
    .assert_error(401, "invalid_code");
    // Without a session, nothing.
    app.post("/api/v1/me/totp", &json!({}), None).await.assert_error(401, "unauthenticated");
}

async fn confirming_turns_two_factor_on_with_ten_recovery_codes(app: TestApp) {
    let user = app.user().await;
    let e = app.post("/api/v1/me/totp", &json!({}), Some(&user.token)).await.assert_status(201);
    let secret = base32_decode(&e.str("secret")).expect("base32");
    let id = e.str("enrollment_id");
    app.post("/api/v1/me/totp/confirm", &json!({"enrollment_id": id, "code": "000000"}), Some(&user.token))
        .await
        .assert_error(401, "invalid_code");
    let c = app
        .post(
            "/api/v1/me/totp/confirm",
            &json!({"enrollment_id": id, "code": app.code(&secret, 0), "name": "Work phone"}),
            Some(&user.token),
        )
        .await
        .assert_status(201);
    assert_eq!(c.body["authenticator"]["type"], "totp");
    assert_eq!(c.body["authenticator"]["name"], "Work phone");
    let codes = c.body["recovery_codes"].as_array().expect("codes");
    assert_eq!(codes.len(), 10);
    for code in codes {
        let s = code.as_str().expect("str");
        assert_eq!(s.len(), 19, "{s}");
        assert_eq!(s.matches('-').count(), 3, "{s}");
    }
    let me = app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    assert_eq!(me.body["two_factor"], json!({"enabled": true, "methods": ["totp", "recovery_code"]}));
    assert_eq!(me.body["recovery_codes_remaining"], 10);
    // Confirmed once: the enrolment is gone.
    app.post("/api/v1/me/totp/confirm", &json!({"enrollment_id": id, "code": app.code(&secret, 1)}), Some(&user.token))
        .await
        .assert_error(401, "invalid_code");
    // A second authenticator (enrolment counts as recent 2FA) brings no new codes.
    let e2 = app.post("/api/v1/me/totp", &json!({}), Some(&user.token)).await.assert_status(201);
    let s2 = base32_decode(&e2.str("secret")).expect("base32");
    let c2 = app
        .post(
            "/api/v1/me/totp/confirm",
            &json!({"enrollment_id": e2.str("enrollment_id"), "code": app.code(&s2, 0)}),
            Some(&user.token),
        )
        .await
        .assert_status(201);
    assert!(c2.body.get("recovery_codes").is_none(), "{}", c2.text);
    assert_eq!(c2.body["authenticator"]["name"], "Authenticator app");
    let list = app.get("/api/v1/me/authenticators", Some(&user.token)).await.assert_status(200);
    assert_eq!(list.body.as_array().map(Vec::len), Some(2));
    assert!(list.body[0]["created_at"].is_string() && list.body[0].get("last_used_at").is_some());
}

async fn enrolments_expire_after_ten_minutes(app: TestApp) {
    let user = app.user().await;
    let e = app.post("/api/v1/me/totp", &json!({}), Some(&user.token)).await.assert_status(201);
    let secret = base32_decode(&e.str("secret")).expect("base32");
    app.clock.advance(10 * 60);
    // The password proof is stale too; renew it so only the expiry speaks.
    app.post(
        "/api/v1/me/totp/confirm",
        &json!({"enrollment_id": e.str("enrollment_id"), "code": app.code(&secret, 0)}),
        Some(&user.token),
    )
    .await
    .assert_error(403, "reauth_required");
    app.post("/api/v1/me/reauth", &json!({"password": user.password}), Some(&user.token)).await.assert_status(204);
    app.post(
        "/api/v1/me/totp/confirm",
        &json!({"enrollment_id": e.str("enrollment_id"), "code": app.code(&secret, 0)}),
        Some(&user.token),
    )
    .await
    .assert_error(401, "invalid_code");
}

async fn sign_in_asks_for_the_second_factor(app: TestApp) {
    let user = app.user_with_totp().await;
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.str("status"), "second_factor_required");
    assert_eq!(login.body["methods"], json!(["totp", "recovery_code"]));
    assert!(login.body.get("session_token").is_none());
    let ok = app
        .post(
            "/api/v1/login/verify",
            &json!({"login_token": login.str("login_token"), "method": "totp", "code": app.code(&user.secret, 0)}),
            None,
        )
        .await
        .assert_status(200);
    assert_eq!(ok.str("status"), "authenticated");
    app.get("/api/v1/me", Some(&ok.str("session_token"))).await.assert_status(200);
    // The login token died with its success.
    app.clock.advance(30);
    app.post(
        "/api/v1/login/verify",
        &json!({"login_token": login.str("login_token"), "method": "totp", "code": app.code(&user.secret, 0)}),
        None,
    )
    .await
    .assert_error(401, "invalid_code");
}

async fn a_code_works_once_and_the_confirming_code_never_signs_in(app: TestApp) {
    // SEC-21: the step used to confirm is spent; so is each sign-in's step.
    let user = app.user_with_totp().await;
    app.sign_in_with(&user, "totp", &app.code(&user.secret, -1)).await.assert_error(401, "invalid_code");
    let code = app.code(&user.secret, 0);
    app.sign_in_with(&user, "totp", &code).await.assert_status(200);
    app.sign_in_with(&user, "totp", &code).await.assert_error(401, "invalid_code");
    // After a newer step, an older one is refused even inside the window.
    app.clock.advance(30);
    app.sign_in_with(&user, "totp", &app.code(&user.secret, 0)).await.assert_status(200);
    app.sign_in_with(&user, "totp", &app.code(&user.secret, -1)).await.assert_error(401, "invalid_code");
}

async fn one_step_of_drift_is_accepted_two_are_not(app: TestApp) {
    // SEC-22
    let user = app.user_with_totp().await;
    app.clock.advance(120);
    app.sign_in_with(&user, "totp", &app.code(&user.secret, -2)).await.assert_error(401, "invalid_code");
    app.sign_in_with(&user, "totp", &app.code(&user.secret, 2)).await.assert_error(401, "invalid_code");
    app.sign_in_with(&user, "totp", &app.code(&user.secret, -1)).await.assert_status(200);
    app.sign_in_with(&user, "totp", &app.code(&user.secret, 0)).await.assert_status(200);
    app.sign_in_with(&user, "totp", &app.code(&user.secret, 1)).await.assert_status(200);
}

async fn five_wrong_codes_kill_the_login_token(app: TestApp) {
    let user = app.user_with_totp().await;
    let login = app.login(&user.email, &user.password).await;
    let token = login.str("login_token");
    // Each wrong code says how many the token still takes.
    for left in (0..5).rev() {
        let r = app
            .post("/api/v1/login/verify", &json!({"login_token": token, "method": "totp", "code": "000001"}), None)
            .await
            .assert_error(401, "invalid_code");
        assert_eq!(r.body["error"]["tries_left"], json!(left), "{}", r.body);
    }
    let dead = app
        .post(
            "/api/v1/login/verify",
            &json!({"login_token": token, "method": "totp", "code": app.code(&user.secret, 0)}),
            None,
        )
        .await
        .assert_error(401, "invalid_code");
    assert!(dead.body["error"].get("tries_left").is_none(), "a dead token counts nothing: {}", dead.body);
    // A fresh sign-in still works with that very code, once the one-second
    // backoff that five failures earn is over (§2.5).
    app.clock.advance(1);
    app.sign_in_with(&user, "totp", &app.code(&user.secret, 0)).await.assert_status(200);
}

async fn login_tokens_expire_after_five_minutes(app: TestApp) {
    let user = app.user_with_totp().await;
    let login = app.login(&user.email, &user.password).await;
    app.clock.advance(5 * 60);
    app.post(
        "/api/v1/login/verify",
        &json!({"login_token": login.str("login_token"), "method": "totp", "code": app.code(&user.secret, 0)}),
        None,
    )
    .await
    .assert_error(401, "invalid_code");
}

async fn concurrent_requests_with_one_code_succeed_once(app: TestApp) {
    // SEC-37: 20 sign-ins racing with one code; exactly one wins.
    let user = app.user_with_totp().await;
    let mut tokens = Vec::new();
    for _ in 0..20 {
        tokens.push(app.login(&user.email, &user.password).await.str("login_token"));
    }
    let code = app.code(&user.secret, 0);
    let url = format!("{}/api/v1/login/verify", app.url);
    let requests = tokens.iter().map(|t| {
        let req = app.http.post(&url).json(&json!({"login_token": t, "method": "totp", "code": code}));
        async move { req.send().await.expect("send").status().as_u16() }
    });
    let statuses = futures::future::join_all(requests).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
    // Losers are wrong (401) or, once five have failed, held back (429).
    assert!(statuses.iter().all(|s| [200, 401, 429].contains(s)), "{statuses:?}");
    // And one login token cannot mint two sessions from two different codes.
    // Past the backoff the losers earned.
    app.clock.advance(15 * 60 + 1);
    let login = app.login(&user.email, &user.password).await.str("login_token");
    let codes = [app.code(&user.secret, -1), app.code(&user.secret, 0), app.code(&user.secret, 1)];
    let requests = codes.iter().map(|c| {
        let req = app.http.post(&url).json(&json!({"login_token": login, "method": "totp", "code": c}));
        async move { req.send().await.expect("send").status().as_u16() }
    });
    let statuses = futures::future::join_all(requests).await;
    assert_eq!(statuses.iter().filter(|s| **s == 200).count(), 1, "{statuses:?}");
}

async fn removing_an_authenticator_needs_reauth(app: TestApp) {
    // SEC-46
    let user = app.user_with_totp().await;
    let session = app.sign_in_with(&user, "totp", &app.code(&user.secret, 0)).await.str("session_token");
    let path = format!("/api/v1/me/authenticators/{}", user.authenticator_id);
    app.clock.advance(10 * 60);
    app.delete(&path, Some(&session)).await.assert_error(403, "reauth_required");
    // Password alone is not enough on a 2FA account.
    app.post("/api/v1/me/reauth", &json!({"password": user.password}), Some(&session)).await.assert_status(204);
    app.delete(&path, Some(&session)).await.assert_error(403, "reauth_required");
    app.post("/api/v1/me/reauth", &json!({"password": "wrong password here"}), Some(&session))
        .await
        .assert_error(401, "invalid_credentials");
    app.post("/api/v1/me/reauth", &json!({"method": "totp", "code": "123456"}), Some(&session))
        .await
        .assert_error(401, "invalid_code");
    app.post("/api/v1/me/reauth", &json!({}), Some(&session)).await.assert_error(400, "invalid_request");
    app.post("/api/v1/me/reauth", &json!({"method": "totp", "code": app.code(&user.secret, 0)}), Some(&session))
        .await
        .assert_status(204);
    app.delete("/api/v1/me/authenticators/not-an-id", Some(&session)).await.assert_error(404, "not_found");
    app.delete(&path, Some(&session)).await.assert_status(204);
    let me = app.get("/api/v1/me", Some(&session)).await;
    assert_eq!(me.body["two_factor"]["enabled"], false, "the last authenticator gone turns 2FA off");
    assert_eq!(me.body["recovery_codes_remaining"], 0);
}

async fn disabling_two_factor_needs_reauth_and_removes_everything(app: TestApp) {
    let user = app.user_with_totp().await;
    let other = app.sign_in_with(&user, "totp", &app.code(&user.secret, 0)).await.str("session_token");
    app.clock.advance(11 * 60);
    app.delete("/api/v1/me/two-factor", Some(&user.token)).await.assert_error(403, "reauth_required");
    app.post(
        "/api/v1/me/reauth",
        &json!({"password": user.password, "method": "totp", "code": app.code(&user.secret, 0)}),
        Some(&user.token),
    )
    .await
    .assert_status(204);
    app.delete("/api/v1/me/two-factor", Some(&user.token)).await.assert_status(204);
    let me = app.get("/api/v1/me", Some(&user.token)).await.assert_status(200);
    assert_eq!(me.body["two_factor"], json!({"enabled": false, "methods": []}));
    assert_eq!(app.get("/api/v1/me/authenticators", Some(&user.token)).await.body, json!([]));
    // SEC-53: turning 2FA off ends the other sessions.
    app.get("/api/v1/me", Some(&other)).await.assert_error(401, "unauthenticated");
    let login = app.login(&user.email, &user.password).await.assert_status(200);
    assert_eq!(login.str("status"), "authenticated");
    let mut raw = app.raw().await;
    let left: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes").fetch_one(&mut raw).await.expect("count");
    assert_eq!(left, 0);
}

async fn secrets_are_never_stored_in_the_clear(app: TestApp) {
    // SEC-24, SEC-39: no seed, Base32 seed or recovery code in any row.
    let user = app.user_with_totp().await;
    let pending = app.post("/api/v1/me/totp", &json!({}), Some(&user.token)).await.assert_status(201);
    let pending_secret = base32_decode(&pending.str("secret")).expect("base32");
    let mut raw = app.raw().await;
    let mut blobs: Vec<Vec<u8>> = Vec::new();
    for q in [
        "SELECT secret_sealed FROM authenticators",
        "SELECT secret_sealed FROM totp_enrollments",
        "SELECT code_sealed FROM recovery_codes",
        "SELECT lookup FROM recovery_codes",
    ] {
        blobs.extend(sqlx::query_scalar::<_, Vec<u8>>(q).fetch_all(&mut raw).await.expect("rows"));
    }
    assert_eq!(blobs.len(), 1 + 1 + 10 + 10);
    let texts: Vec<String> = sqlx::query_scalar(
        "SELECT kind || ' ' || COALESCE(factor_id, '') || ' ' || details || ' ' || user_agent FROM audit_log",
    )
    .fetch_all(&mut raw)
    .await
    .expect("audit");
    let needles: Vec<Vec<u8>> = [user.secret.clone(), pending_secret.clone()]
        .into_iter()
        .chain([
            twostep_domain::factors::totp::otpauth::base32_encode(&user.secret).into_bytes(),
            pending.str("secret").into_bytes(),
        ])
        .chain(user.recovery_codes.iter().flat_map(|c| [c.clone().into_bytes(), c.replace('-', "").into_bytes()]))
        .collect();
    for needle in &needles {
        for blob in &blobs {
            assert!(!blob.windows(needle.len()).any(|w| w == needle.as_slice()), "a secret is stored in the clear");
        }
        for t in &texts {
            assert!(
                !t.as_bytes().windows(needle.len()).any(|w| w == needle.as_slice()),
                "a secret is in the audit log"
            );
        }
    }
    // A sealed seed moved to another row does not decrypt: swap two seeds and sign-in fails.
    let e2 = app.post("/api/v1/me/totp", &json!({}), Some(&user.token)).await.assert_status(201);
    let s2 = base32_decode(&e2.str("secret")).expect("b32");
    app.post(
        "/api/v1/me/totp/confirm",
        &json!({"enrollment_id": e2.str("enrollment_id"), "code": app.code(&s2, 0)}),
        Some(&user.token),
    )
    .await
    .assert_status(201);
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as("SELECT id, secret_sealed FROM authenticators ORDER BY id")
        .fetch_all(&mut raw)
        .await
        .expect("rows");
    assert_eq!(rows.len(), 2);
    for (to, from) in [(0, 1), (1, 0)] {
        sqlx::query("UPDATE authenticators SET secret_sealed = $1 WHERE id = $2")
            .bind(&rows[from].1)
            .bind(&rows[to].0)
            .execute(&mut raw)
            .await
            .expect("swap");
    }
    let r = app.sign_in_with(&user, "totp", &app.code(&user.secret, 1)).await;
    r.assert_error(401, "invalid_code");
}

async fn events_are_audited(app: TestApp) {
    let user = app.user_with_totp().await;
    app.login(&user.email, "wrong password entirely").await;
    let code = app.code(&user.secret, 0);
    app.sign_in_with(&user, "totp", &code).await.assert_status(200);
    app.sign_in_with(&user, "totp", &code).await.assert_error(401, "invalid_code");
    let mut raw = app.raw().await;
    let rows: Vec<(String, i64, Option<String>)> =
        sqlx::query_as("SELECT kind, success, factor_id FROM audit_log ORDER BY id")
            .fetch_all(&mut raw)
            .await
            .expect("rows");
    let kinds: Vec<&str> = rows.iter().map(|r| r.0.as_str()).collect();
    for k in [
        "account_created",
        "totp_enrollment_started",
        "authenticator_added",
        "sign_in_password",
        "sign_in_succeeded",
        "totp_replay",
        "sign_in_second_factor",
    ] {
        assert!(kinds.contains(&k), "{k} missing from {kinds:?}");
    }
    // The sign-in names the authenticator used (E8).
    assert!(rows.iter().any(|r| r.0 == "sign_in_succeeded" && r.2.as_deref() == Some(user.authenticator_id.as_str())));
    assert!(rows.iter().any(|r| r.0 == "sign_in_password" && r.1 == 0));
    // SEC-63 / §2.13: the log is append-only.
    assert!(sqlx::query("UPDATE audit_log SET details = 'x'").execute(&mut raw).await.is_err());
    assert!(sqlx::query("DELETE FROM audit_log").execute(&mut raw).await.is_err());
}
