//! Security notices by e-mail (security.md §2.7): one mail per event, with
//! when, where and what client — never a code or secret. SEC-23, SEC-41, SEC-48.

use serde_json::json;

use crate::helpers::{Db, TestApp};

#[tokio::test]
async fn each_security_change_mails_the_owner_without_secrets() {
    let (app, sink) = TestApp::spawn_with_mail(Db::Sqlite).await;
    let user = app.user_with_totp().await;
    let code = app.code(&user.secret, 0);
    app.sign_in_with(&user, "totp", &code).await.assert_status(200);
    app.sign_in_with(&user, "totp", &code).await.assert_error(401, "invalid_code");
    app.sign_in_with(&user, "recovery_code", &user.recovery_codes[0]).await.assert_status(200);
    app.get("/api/v1/me/recovery-codes", Some(&user.token)).await.assert_status(200);
    let fresh = app.post("/api/v1/me/recovery-codes", &json!({}), Some(&user.token)).await.assert_status(201);
    app.delete("/api/v1/me/two-factor", Some(&user.token)).await.assert_status(204);

    let expected = [
        "An authenticator was added",
        "A used sign-in code was tried again",
        "A recovery code was used",
        "Your recovery codes were viewed",
        "New recovery codes were made",
        "Two-factor authentication was turned off",
    ];
    let mails = sink.wait_for(expected.len()).await;
    let subjects: Vec<&str> = mails.iter().filter_map(|m| m["subject"].as_str()).collect();
    for (want, got) in expected.iter().zip(&subjects) {
        assert!(got.starts_with(want), "{subjects:?}");
    }
    let mut secrets: Vec<String> = user.recovery_codes.iter().flat_map(|c| [c.clone(), c.replace('-', "")]).collect();
    secrets.extend(fresh.body["codes"].as_array().expect("codes").iter().map(|c| c.as_str().expect("s").to_owned()));
    secrets.push(twostep_domain::factors::otpauth::base32_encode(&user.secret));
    secrets.push(code);
    for m in &mails {
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
