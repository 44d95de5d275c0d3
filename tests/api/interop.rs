//! Independent clients: codes from oathtool and pyotp are accepted, and the
//! QR code decodes (zbarimg) to the exact otpauth URI. SEC-20.

use std::process::Command;

use serde_json::json;
use twostep_testkit::{Db, TestApp, tool};

fn run(cmd: &mut Command) -> String {
    let out = cmd.output().expect("run tool");
    assert!(out.status.success(), "{cmd:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).expect("utf8").trim().to_owned()
}

#[tokio::test]
async fn oathtool_and_pyotp_codes_are_accepted() {
    let oathtool = tool("oathtool");
    let pyotp = Command::new("python3").args(["-c", "import pyotp"]).status().is_ok_and(|s| s.success());
    assert!(
        pyotp || !std::env::var("TWOSTEP_REQUIRE_TOOLS").is_ok_and(|v| v == "1"),
        "pyotp is required (TWOSTEP_REQUIRE_TOOLS=1)"
    );
    if !oathtool || !pyotp {
        return;
    }
    let app = TestApp::spawn(Db::Sqlite).await;
    let user = app.user().await;
    let e = app.post("/api/v1/me/totp", &json!({}), Some(&user.token)).await.assert_status(201);
    let secret = e.str("secret");
    let at = |t: i64| format!("@{t}");
    let code = run(Command::new("oathtool").args(["--totp", "-b", "--now", &at(app.clock.secs()), &secret]));
    assert_eq!(code.len(), 6);
    app.post(
        "/api/v1/me/totp/confirm",
        &json!({"enrollment_id": e.str("enrollment_id"), "code": code}),
        Some(&user.token),
    )
    .await
    .assert_status(201);
    app.clock.advance(30);
    let py = format!("import pyotp; print(pyotp.TOTP('{secret}').at({}))", app.clock.secs());
    let code = run(Command::new("python3").args(["-c", &py]));
    let login = app.login(&user.email, &user.password).await;
    app.post(
        "/api/v1/login/verify",
        &json!({"login_token": login.str("login_token"), "method": "totp", "code": code}),
        None,
    )
    .await
    .assert_status(200);
    // pyotp also parses our URI to the same secret and issuer.
    let py =
        format!("import pyotp; t = pyotp.parse_uri('{}'); print(t.secret, t.issuer, t.name)", e.str("otpauth_uri"));
    assert_eq!(run(Command::new("python3").args(["-c", &py])), format!("{secret} twostep {}", user.email));
}

#[tokio::test]
async fn the_qr_code_decodes_to_the_exact_uri() {
    if !tool("zbarimg") {
        return;
    }
    let app = TestApp::spawn(Db::Sqlite).await;
    let user = app.user().await;
    let e = app.post("/api/v1/me/totp", &json!({}), Some(&user.token)).await.assert_status(201);
    let uri = e.str("otpauth_uri");
    assert_eq!(uri, format!("otpauth://totp/twostep:{}?secret={}&issuer=twostep", user.email, e.str("secret")));
    let png = app
        .http
        .get(format!("{}/api/v1/me/totp/{}/qr.png", app.url, e.str("enrollment_id")))
        .bearer_auth(&user.token)
        .send()
        .await
        .expect("png");
    assert_eq!(png.headers().get("content-type").map(reqwest::header::HeaderValue::as_bytes), Some(&b"image/png"[..]));
    let bytes = png.bytes().await.expect("bytes");
    let dir = tempfile::tempdir().expect("dir");
    let path = dir.path().join("qr.png");
    std::fs::write(&path, &bytes).expect("write");
    let decoded = run(Command::new("zbarimg").args(["-q", "--raw"]).arg(&path));
    assert_eq!(decoded, uri);
    // Another user's enrolment is not visible.
    let other = app.user().await;
    let r = app.get(&format!("/api/v1/me/totp/{}/qr.png", e.str("enrollment_id")), Some(&other.token)).await;
    assert_eq!(r.status.as_u16(), 404);
}
