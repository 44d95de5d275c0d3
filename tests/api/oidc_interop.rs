//! Relying-party libraries that are not ours sign people in through
//! twostep: Python's authlib and Node's openid-client, each validating
//! the ID token its own way against our JWKS, from discovery to userinfo
//! and refresh, on both databases.

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

/// Whether node can import `module` from e2e/ (where `npm ci` puts it).
fn node_has(module: &str) -> bool {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e");
    let ok = Command::new("node")
        .current_dir(dir)
        .args(["-e", &format!("import('{module}').catch(() => process.exit(1))")])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok || !std::env::var("TWOSTEP_REQUIRE_TOOLS").is_ok_and(|v| v == "1"),
        "node module {module} is required in e2e/ (TWOSTEP_REQUIRE_TOOLS=1); scripts/test runs npm ci there"
    );
    ok
}

/// Runs a relying party script and reads the JSON it prints.
async fn run_rp(program: &str, args: Vec<String>) -> serde_json::Value {
    let program = program.to_owned();
    let out = tokio::task::spawn_blocking(move || Command::new(program).args(&args).output().expect("relying party"))
        .await
        .expect("task");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

fn assert_two_factor_sign_in(v: &serde_json::Value, email: &str) {
    assert_eq!(v["acr"], "urn:twostep:2fa");
    assert_eq!(v["amr"], serde_json::json!(["pwd", "otp", "mfa"]));
    assert_eq!(v["email"], email);
    assert_eq!(v["userinfo_sub"], v["sub"]);
    assert_eq!(v["refreshed"], true);
}

both_backends!(authlib_signs_in_and_refreshes, openid_client_signs_in_and_refreshes);

async fn openid_client_signs_in_and_refreshes(app: TestApp) {
    if !node_has("openid-client") {
        return;
    }
    let c = register(&app, &["--skip-consent"]).await;
    let (user, session) = two_factor_session(&app).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/e2e/rp/openid_client_rp.mjs");
    let skew = (app.clock.secs() - twostep_testkit::real_now()).to_string();
    let args = [script, &app.url, &c.id, c.secret.as_deref().expect("secret"), &c.redirect, &session, &skew];
    let v = run_rp("node", args.iter().map(|a| (*a).to_owned()).collect()).await;
    assert_two_factor_sign_in(&v, &user.email);
}

async fn authlib_signs_in_and_refreshes(app: TestApp) {
    if !python_has("authlib") {
        return;
    }
    let c = register(&app, &["--skip-consent"]).await;
    let (user, session) = two_factor_session(&app).await;
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/api/rp/authlib_rp.py");
    let args = [script, &app.url, &c.id, c.secret.as_deref().expect("secret"), &c.redirect, &session];
    let v = run_rp("python3", args.iter().map(|a| (*a).to_owned()).collect()).await;
    assert_two_factor_sign_in(&v, &user.email);
}
