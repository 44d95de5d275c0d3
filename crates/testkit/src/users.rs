//! Accounts as the tests need them: plain, with a verified address, with an
//! authenticator app; and the codes and sign-ins that go with them.

use serde_json::json;
use twostep_domain::factors::totp::otp::{TotpParams, totp};
use twostep_domain::factors::totp::otpauth::base32_decode;

use crate::app::TestApp;
use crate::client::Resp;
use crate::receiver::link_code;
use crate::smtp::SmtpSink;

pub struct User {
    pub email: String,
    pub password: String,
    pub token: String,
    pub secret: Vec<u8>,
    pub authenticator_id: String,
    pub recovery_codes: Vec<String>,
}

impl TestApp {
    /// A new account, signed in without 2FA.
    pub async fn user(&self) -> User {
        let email = format!("user-{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "correct horse battery staple".to_owned();
        self.post("/api/v1/accounts", &json!({"email": email, "password": password}), None).await.assert_status(201);
        let token = self.login(&email, &password).await.assert_status(200).str("session_token");
        User { email, password, token, secret: Vec::new(), authenticator_id: String::new(), recovery_codes: Vec::new() }
    }

    pub async fn login(&self, email: &str, password: &str) -> Resp {
        self.post("/api/v1/login", &json!({"email": email, "password": password}), None).await
    }

    /// A new account whose e-mail address is verified with the code mailed
    /// at sign-up (security notices go only to verified addresses).
    pub async fn verified_user(&self, sink: &SmtpSink) -> User {
        let user = self.user().await;
        self.verify_email(sink, &user).await;
        user
    }

    /// Verifies the user's address with the code mailed at sign-up.
    pub async fn verify_email(&self, sink: &SmtpSink, user: &User) {
        let mail = loop {
            let found = sink.with_subject("Confirm your e-mail").into_iter().find(|m| m["to"] == json!([user.email]));
            if let Some(m) = found {
                break m;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        };
        let code = link_code(mail["text"].as_str().expect("text"));
        self.post("/api/v1/me/email/confirm", &json!({"code": code}), Some(&user.token)).await.assert_status(204);
    }

    /// A verified account with one confirmed authenticator app.
    pub async fn verified_user_with_totp(&self, sink: &SmtpSink) -> User {
        let user = self.verified_user(sink).await;
        self.enrol_totp(user).await
    }

    /// A new account with one confirmed authenticator app.
    pub async fn user_with_totp(&self) -> User {
        let user = self.user().await;
        self.enrol_totp(user).await
    }

    async fn enrol_totp(&self, mut user: User) -> User {
        let e = self.post("/api/v1/me/totp", &json!({}), Some(&user.token)).await.assert_status(201);
        user.secret = base32_decode(&e.str("secret")).expect("base32");
        let code = self.code(&user.secret, 0);
        let c = self
            .post(
                "/api/v1/me/totp/confirm",
                &json!({"enrollment_id": e.str("enrollment_id"), "code": code}),
                Some(&user.token),
            )
            .await
            .assert_status(201);
        c.body["authenticator"]["id"].as_str().expect("id").clone_into(&mut user.authenticator_id);
        // Confirming ends an enrolment-only session for a new one (SEC-52).
        if let Some(token) = c.body["session_token"].as_str() {
            token.clone_into(&mut user.token);
        }
        user.recovery_codes = c.body["recovery_codes"]
            .as_array()
            .expect("codes")
            .iter()
            .map(|v| v.as_str().expect("str").to_owned())
            .collect();
        // The confirming code's step is spent; later codes must be newer.
        self.clock.advance(30);
        user
    }

    /// The TOTP code for `secret`, `steps` steps from now.
    pub fn code(&self, secret: &[u8], steps: i64) -> String {
        totp(secret, self.clock.secs() + steps * 30, TotpParams::DEFAULT)
    }

    /// A 6-digit code that is none of the three currently valid ones.
    pub fn wrong_code(&self, user: &User) -> String {
        let valid: Vec<String> = (-1..=1).map(|s| self.code(&user.secret, s)).collect();
        (0..4).map(|i| format!("{:06}", 100_000 + i)).find(|c| !valid.contains(c)).expect("a wrong code")
    }

    /// Password step then second factor; returns the verify response.
    pub async fn sign_in_with(&self, user: &User, method: &str, code: &str) -> Resp {
        let login = self.login(&user.email, &user.password).await.assert_status(200);
        assert_eq!(login.str("status"), "second_factor_required");
        self.post(
            "/api/v1/login/verify",
            &json!({"login_token": login.str("login_token"), "method": method, "code": code}),
            None,
        )
        .await
    }
}
