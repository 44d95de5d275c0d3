//! Recovery codes: sign-in once each, reveal and regenerate behind re-auth.

use serde_json::json;
use twostep_testkit::{TestApp, both_backends};

both_backends!(
    recovery_codes_sign_in_once_each_in_any_form,
    reveal_and_regenerate_need_fresh_reauth,
    recovery_code_counts_as_reauth_second_factor
);

async fn recovery_codes_sign_in_once_each_in_any_form(app: TestApp) {
    // SEC-40
    let user = app.user_with_totp().await;
    let first = user.recovery_codes[0].clone();
    let r = app.sign_in_with(&user, "recovery_code", &first.to_uppercase().replace('-', "")).await.assert_status(200);
    assert_eq!(r.body["recovery_codes_remaining"], 9);
    app.sign_in_with(&user, "recovery_code", &first).await.assert_error(401, "invalid_code");
    app.sign_in_with(&user, "recovery_code", " ").await.assert_error(401, "invalid_code");
    app.sign_in_with(&user, "recovery_code", "aaaa-bbbb-cccc-dddd").await.assert_error(401, "invalid_code");
    let second = format!("  {}  ", user.recovery_codes[1]);
    app.sign_in_with(&user, "recovery_code", &second).await.assert_status(200);
    let me = app.get("/api/v1/me", Some(&user.token)).await;
    assert_eq!(me.body["recovery_codes_remaining"], 8);
    // A recovery code is no TOTP code and vice versa.
    app.sign_in_with(&user, "totp", &user.recovery_codes[2]).await.assert_error(401, "invalid_code");
}

async fn reveal_and_regenerate_need_fresh_reauth(app: TestApp) {
    // SEC-39
    let user = app.user_with_totp().await;
    // Just enrolled: password at sign-in and the confirming code are recent.
    let shown = app.get("/api/v1/me/recovery-codes", Some(&user.token)).await.assert_status(200);
    let codes: Vec<String> = shown.body["codes"]
        .as_array()
        .expect("codes")
        .iter()
        .map(|c| c["code"].as_str().expect("s").to_owned())
        .collect();
    assert_eq!(codes, user.recovery_codes);
    app.clock.advance(10 * 60);
    app.get("/api/v1/me/recovery-codes", Some(&user.token)).await.assert_error(403, "reauth_required");
    app.post("/api/v1/me/recovery-codes", &json!({}), Some(&user.token)).await.assert_error(403, "reauth_required");
    app.post(
        "/api/v1/me/reauth",
        &json!({"password": user.password, "method": "totp", "code": app.code(&user.secret, 0)}),
        Some(&user.token),
    )
    .await
    .assert_status(204);
    app.sign_in_with(&user, "recovery_code", &user.recovery_codes[0]).await.assert_status(200);
    let shown = app.get("/api/v1/me/recovery-codes", Some(&user.token)).await.assert_status(200);
    assert_eq!(shown.body["codes"][0]["used"], true);
    assert_eq!(shown.body["codes"][1]["used"], false);
    let fresh = app.post("/api/v1/me/recovery-codes", &json!({}), Some(&user.token)).await.assert_status(201);
    let new_codes: Vec<String> =
        fresh.body["codes"].as_array().expect("codes").iter().map(|c| c.as_str().expect("s").to_owned()).collect();
    assert_eq!(new_codes.len(), 10);
    assert!(new_codes.iter().all(|c| !user.recovery_codes.contains(c)));
    // The old set is dead; the new one works.
    app.sign_in_with(&user, "recovery_code", &user.recovery_codes[1]).await.assert_error(401, "invalid_code");
    app.sign_in_with(&user, "recovery_code", &new_codes[0]).await.assert_status(200);
    assert_eq!(app.get("/api/v1/me", Some(&user.token)).await.body["recovery_codes_remaining"], 9);
    // Without 2FA there is nothing to reveal or regenerate.
    let plain = app.user().await;
    app.get("/api/v1/me/recovery-codes", Some(&plain.token)).await.assert_error(409, "two_factor_not_enabled");
    app.delete("/api/v1/me/two-factor", Some(&plain.token)).await.assert_error(409, "two_factor_not_enabled");
    app.post("/api/v1/me/recovery-codes", &json!({}), Some(&plain.token))
        .await
        .assert_error(409, "two_factor_not_enabled");
}

async fn recovery_code_counts_as_reauth_second_factor(app: TestApp) {
    let user = app.user_with_totp().await;
    app.clock.advance(11 * 60);
    app.post(
        "/api/v1/me/reauth",
        &json!({"password": user.password, "method": "recovery_code", "code": user.recovery_codes[3]}),
        Some(&user.token),
    )
    .await
    .assert_status(204);
    app.get("/api/v1/me/recovery-codes", Some(&user.token)).await.assert_status(200);
    // Spent by the re-auth.
    app.sign_in_with(&user, "recovery_code", &user.recovery_codes[3]).await.assert_error(401, "invalid_code");
}
