//! Relying-party libraries that are not ours sign people in through
//! twostep: Python's authlib (its own ID token validation against our
//! JWKS), from discovery to userinfo and refresh, on both databases.

use std::process::Command;

use twostep_testkit::{TestApp, both_backends};

use crate::oidc::{register, two_factor_session};

/// Whether python3 can import `module`; with TWOSTEP_REQUIRE_TOOLS=1 (CI)
/// a missing one fails the test instead of skipping it.
fn python_has(module: &str) -> bool {
    let ok = Command::new("python3").args(["-c", &format!("import {module}")]).status().is_ok_and(|s| s.success());
    assert!(
        ok || !std::env::var("TWOSTEP_REQUIRE_TOOLS").is_ok_and(|v| v == "1"),
        "python3 module {module} is required (TWOSTEP_REQUIRE_TOOLS=1); scripts/test installs it"
    );
    ok
}

both_backends!(authlib_signs_in_and_refreshes);

async fn authlib_signs_in_and_refreshes(app: TestApp) {
    if !python_has("authlib") {
        return;
    }
    let c = register(&app, &["--skip-consent"]).await;
    let (user, session) = two_factor_session(&app).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/rp/authlib_rp.py");
    let args = [script, &app.url, &c.id, c.secret.as_deref().expect("secret"), &c.redirect, &session];
    let out = tokio::task::spawn_blocking({
        let args: Vec<String> = args.iter().map(|a| (*a).to_owned()).collect();
        move || Command::new("python3").args(&args).output().expect("python3")
    })
    .await
    .expect("task");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let v: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"));
    assert_eq!(v["acr"], "urn:twostep:2fa");
    assert_eq!(v["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(v["email"], user.email.as_str());
    assert_eq!(v["userinfo_sub"], v["sub"]);
    assert_eq!(v["refreshed"], true);
}
