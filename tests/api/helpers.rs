//! `TestApp`: the real server on a free loopback port with a fresh
//! database (a temporary SQLite file, or a new PostgreSQL schema) and a
//! fake clock, driven over HTTP like any client.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use reqwest::StatusCode;
use serde_json::{Value, json};
use twostep::config::{KeySource, PhoneProvider, Resolved};
use twostep_domain::accounts::password::HashCost;
use twostep_domain::crypto::MasterKey;
use twostep_domain::factors::totp::otp::{TotpParams, totp};
use twostep_domain::factors::totp::otpauth::base32_decode;
use twostep_domain::ports::{Clock, OsRng};
use twostep_domain::settings::Settings;
use twostep_domain::time::Timestamp;

pub use crate::mail::SmtpSink;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

/// Runs each listed test once per backend: `mod name { sqlite, postgres }`.
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::TestApp::spawn($crate::helpers::Db::Sqlite).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::TestApp::spawn($crate::helpers::Db::Postgres).await).await;
            }
        }
    )*};
}

/// Like `both_backends!` for tests that spawn their own server (other
/// providers or settings): each listed `async fn(Db)` runs once per backend.
#[macro_export]
macro_rules! each_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::helpers::Db::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::helpers::Db::Postgres).await;
            }
        }
    )*};
}

/// Time moves only when a test says so.
pub struct FakeClock(AtomicI64);

impl FakeClock {
    pub fn advance(&self, secs: i64) {
        self.0.fetch_add(secs, Ordering::SeqCst);
    }
    pub fn secs(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

impl Clock for FakeClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_secs(self.secs())
    }
}

pub struct TestApp {
    pub url: String,
    pub db: Db,
    pub database_url: String,
    pub clock: Arc<FakeClock>,
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    pg_schema: Option<String>,
    master_hex: String,
    settings: Settings,
    smtp: Option<String>,
    phone: PhoneProvider,
    trusted_proxies: Vec<twostep_domain::policy::allowlist::IpRange>,
    push: twostep::config::PushWaking,
}

/// Web Push on (its subject a placeholder), no push webhook.
pub fn test_push() -> twostep::config::PushWaking {
    twostep::config::PushWaking {
        web_push_subject: Some("mailto:tests@example.com".into()),
        webhook: None,
        place_header: None,
        allow_private_endpoints: false,
    }
}

pub fn postgres_url() -> String {
    std::env::var("TWOSTEP_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

#[expect(
    clippy::disallowed_methods,
    reason = "tests start the fake clock at the real time so external TOTP tools agree"
)]
fn real_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        .try_into()
        .expect("fits")
}

impl TestApp {
    pub async fn spawn(db: Db) -> Self {
        Self::spawn_with(db, |_| {}).await
    }

    pub async fn spawn_with(db: Db, tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_full(db, None, tweak).await
    }

    /// With a real SMTP server on loopback receiving the server's mail.
    pub async fn spawn_with_mail(db: Db) -> (Self, SmtpSink) {
        let sink = SmtpSink::start();
        (Self::spawn_full(db, Some(sink.url.clone()), |_| {}).await, sink)
    }

    async fn spawn_full(db: Db, smtp: Option<String>, tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_providers(db, smtp, PhoneProvider::None, tweak).await
    }

    /// With the given mail server and SMS/voice provider.
    pub async fn spawn_providers(
        db: Db,
        smtp: Option<String>,
        phone: PhoneProvider,
        tweak: impl FnOnce(&mut Settings),
    ) -> Self {
        Self::spawn_configured(db, smtp, phone, tweak, |_| {}).await
    }

    /// With a last say over the whole configuration (`trusted_proxies`,
    /// `settings`…), e.g. trusting loopback as a proxy so a test can send
    /// `X-Forwarded-For` to appear from another address.
    pub async fn spawn_with_resolved(db: Db, tweak: impl FnOnce(&mut Resolved)) -> Self {
        Self::spawn_configured(db, None, PhoneProvider::None, |_| {}, tweak).await
    }

    /// `spawn_with_resolved` with a real SMTP server receiving the mail.
    pub async fn spawn_with_mail_resolved(db: Db, tweak: impl FnOnce(&mut Resolved)) -> (Self, SmtpSink) {
        let sink = SmtpSink::start();
        (Self::spawn_configured(db, Some(sink.url.clone()), PhoneProvider::None, |_| {}, tweak).await, sink)
    }

    async fn spawn_configured(
        db: Db,
        smtp: Option<String>,
        phone: PhoneProvider,
        tweak: impl FnOnce(&mut Settings),
        tweak_resolved: impl FnOnce(&mut Resolved),
    ) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let (database_url, pg_schema) = match db {
            Db::Sqlite => (format!("sqlite://{}", dir.path().join("twostep.db").display()), None),
            Db::Postgres => {
                let schema = format!("t_{}", uuid::Uuid::new_v4().simple());
                let admin = postgres_url();
                sqlx::any::install_default_drivers();
                let mut conn = <sqlx::AnyConnection as sqlx::Connection>::connect(&admin)
                    .await
                    .unwrap_or_else(|e| panic!("PostgreSQL at {admin} is required for the store tests: {e}"));
                sqlx::query(&format!("CREATE SCHEMA {schema}")).execute(&mut conn).await.expect("create schema");
                let sep = if admin.contains('?') { '&' } else { '?' };
                (format!("{admin}{sep}options=-c%20search_path%3D{schema}"), Some(schema))
            }
        };
        // Cheap hashing keeps the suite fast; one test checks the real cost.
        // Tests sign up many accounts from 127.0.0.1; the sign-up caps'
        // own tests set realistic ones.
        let mut settings = Settings {
            hash_cost: HashCost { memory_kib: 1024, iterations: 1, parallelism: 1 },
            signups_per_source_per_hour: 1_000_000,
            signups_per_email_per_hour: 1_000_000,
            ..Settings::default()
        };
        tweak(&mut settings);
        let master_hex = MasterKey::generate(&OsRng).to_hex();
        let mut resolved = Resolved {
            listen: "127.0.0.1:0".parse().expect("addr"),
            database_url: database_url.clone(),
            sqlite_synchronous: twostep_store::Synchronous::Normal,
            public_url: None,
            master_key: MasterKey::from_hex(&master_hex).expect("hex"),
            key_source: KeySource::Config,
            dev_mode: true,
            smtp_url: smtp.clone(),
            smtp_from: "twostep <noreply@example.com>".into(),
            phone_provider: phone.clone(),
            delivery_poll: std::time::Duration::from_millis(100),
            issuer: None,
            trusted_proxies: Vec::new(),
            push: test_push(),
            settings: settings.clone(),
        };
        tweak_resolved(&mut resolved);
        let push = resolved.push.clone();
        let settings = resolved.settings.clone();
        let trusted_proxies = resolved.trusted_proxies.clone();
        let clock = Arc::new(FakeClock(AtomicI64::new(real_now())));
        let server = twostep::startup::build(&resolved, clock.clone(), settings.clone()).await.expect("server starts");
        let url = server.url.clone();
        tokio::spawn(server.run(std::future::pending()));
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Self {
            url,
            db,
            database_url,
            clock,
            http,
            _dir: dir,
            pg_schema,
            master_hex,
            settings,
            smtp,
            phone,
            trusted_proxies,
            push,
        }
    }

    /// Another server on the same database, key and clock: a second
    /// instance behind a load balancer. Returns its URL.
    pub async fn second_instance(&self) -> String {
        let resolved = Resolved {
            listen: "127.0.0.1:0".parse().expect("addr"),
            database_url: self.database_url.clone(),
            sqlite_synchronous: twostep_store::Synchronous::Normal,
            public_url: None,
            master_key: MasterKey::from_hex(&self.master_hex).expect("hex"),
            key_source: KeySource::Config,
            dev_mode: true,
            smtp_url: self.smtp.clone(),
            smtp_from: "twostep <noreply@example.com>".into(),
            phone_provider: self.phone.clone(),
            delivery_poll: std::time::Duration::from_millis(100),
            issuer: None,
            trusted_proxies: self.trusted_proxies.clone(),
            push: self.push.clone(),
            settings: self.settings.clone(),
        };
        let server =
            twostep::startup::build(&resolved, self.clock.clone(), self.settings.clone()).await.expect("second");
        let url = server.url.clone();
        tokio::spawn(server.run(std::future::pending()));
        url
    }

    pub async fn post(&self, path: &str, body: &Value, token: Option<&str>) -> Resp {
        let mut req = self.http.post(format!("{}{path}", self.url)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Resp::from(req.send().await.expect("request")).await
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Resp {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Resp::from(req.send().await.expect("request")).await
    }

    pub async fn put(&self, path: &str, body: &Value, token: Option<&str>) -> Resp {
        let mut req = self.http.put(format!("{}{path}", self.url)).json(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Resp::from(req.send().await.expect("request")).await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Resp {
        let mut req = self.http.delete(format!("{}{path}", self.url));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        Resp::from(req.send().await.expect("request")).await
    }

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
        let code = crate::receiver::link_code(mail["text"].as_str().expect("text"));
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

    /// A raw connection to this test's database.
    pub async fn raw(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        <sqlx::AnyConnection as sqlx::Connection>::connect(&self.database_url).await.expect("raw connection")
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        let Some(schema) = self.pg_schema.take() else {
            return;
        };
        let url = postgres_url();
        // Drop is synchronous; tidy the schema up on a thread of its own.
        let _ = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime");
            rt.block_on(async move {
                if let Ok(mut c) = <sqlx::AnyConnection as sqlx::Connection>::connect(&url).await {
                    let _ = sqlx::query(&format!("DROP SCHEMA {schema} CASCADE")).execute(&mut c).await;
                }
            });
        })
        .join();
    }
}

pub struct User {
    pub email: String,
    pub password: String,
    pub token: String,
    pub secret: Vec<u8>,
    pub authenticator_id: String,
    pub recovery_codes: Vec<String>,
}

#[derive(Debug)]
pub struct Resp {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
    pub text: String,
}

impl Resp {
    pub fn header(&self, name: &str) -> String {
        self.headers.get(name).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned()
    }

    pub async fn from(r: reqwest::Response) -> Self {
        let status = r.status();
        let headers = r.headers().clone();
        let text = r.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or(Value::Null);
        Self { status, headers, body, text }
    }

    #[track_caller]
    pub fn assert_status(self, status: u16) -> Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text);
        self
    }

    /// Asserts the contract's error shape with this status and code.
    #[track_caller]
    pub fn assert_error(self, status: u16, code: &str) -> Self {
        assert_eq!(self.status.as_u16(), status, "unexpected status; body: {}", self.text);
        assert_eq!(self.body["error"]["code"], code, "unexpected error; body: {}", self.text);
        assert!(self.body["error"]["message"].is_string(), "error message missing: {}", self.text);
        self
    }

    #[track_caller]
    pub fn str(&self, key: &str) -> String {
        self.body[key].as_str().unwrap_or_else(|| panic!("no string {key:?} in {}", self.text)).to_owned()
    }
}

/// A required external tool: missing is a failure under CI, a skip elsewhere.
pub fn tool(name: &str) -> bool {
    let found = std::process::Command::new("sh")
        .args(["-c", &format!("command -v {name}")])
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        found || !std::env::var("TWOSTEP_REQUIRE_TOOLS").is_ok_and(|v| v == "1"),
        "{name} is required (TWOSTEP_REQUIRE_TOOLS=1) but was not found"
    );
    if !found {
        eprintln!("SKIPPED: {name} not installed; ./scripts/test installs it");
    }
    found
}

/// The session's CSRF token, read from a page's first form.
pub fn csrf_of(html: &str) -> String {
    let at = html.find("name=\"csrf\" value=\"").expect("a csrf field") + "name=\"csrf\" value=\"".len();
    html[at..].split('"').next().expect("value").to_owned()
}
