//! `TestApp`: the real server on a free loopback port with a fresh
//! database (a temporary SQLite file, or a new PostgreSQL schema) and a
//! fake clock, driven over HTTP like any client.

use std::sync::Arc;

use twostep::config::{KeySource, PhoneProvider, PushWaking, Resolved};
use twostep_domain::accounts::password::HashCost;
use twostep_domain::crypto::MasterKey;
use twostep_domain::policy::allowlist::IpRange;
use twostep_domain::ports::OsRng;
use twostep_domain::settings::Settings;

use crate::clock::FakeClock;
use crate::pg::PgSchema;
use crate::smtp::SmtpSink;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Db {
    Sqlite,
    Postgres,
}

pub struct TestApp {
    pub url: String,
    pub db: Db,
    pub database_url: String,
    pub clock: Arc<FakeClock>,
    /// Follows no redirects, so tests see each `Location`.
    pub http: reqwest::Client,
    _dir: tempfile::TempDir,
    /// Dropped with the app, after the fields above.
    _pg_schema: Option<PgSchema>,
    /// What a second instance needs to join this one.
    shape: Shape,
}

/// The parts of the configuration a second instance shares with the first.
/// The key travels as hex because `MasterKey` is deliberately not `Clone`.
struct Shape {
    database_url: String,
    master_hex: String,
    settings: Settings,
    smtp: Option<String>,
    phone: PhoneProvider,
    trusted_proxies: Vec<IpRange>,
    push: PushWaking,
}

impl Shape {
    fn resolved(&self) -> Resolved {
        Resolved {
            listen: "127.0.0.1:0".parse().expect("addr"),
            database_url: self.database_url.clone(),
            sqlite_synchronous: twostep_store::Synchronous::Normal,
            public_url: None,
            master_key: MasterKey::from_hex(&self.master_hex).expect("hex"),
            retiring_keys: Vec::new(),
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
        }
    }
}

/// Web Push on (its subject a placeholder), no push webhook.
pub fn test_push() -> PushWaking {
    PushWaking {
        web_push_subject: Some("mailto:tests@example.com".into()),
        webhook: None,
        place_header: None,
        allow_private_endpoints: false,
    }
}

pub fn postgres_url() -> String {
    std::env::var("TWOSTEP_TEST_POSTGRES_URL").unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".into())
}

impl TestApp {
    /// The master key, as `secret_key` for a CLI run against this app's
    /// database.
    pub fn master_key_hex(&self) -> &str {
        &self.shape.master_hex
    }

    pub async fn spawn(db: Db) -> Self {
        Self::spawn_with(db, |_| {}).await
    }

    pub async fn spawn_with(db: Db, tweak: impl FnOnce(&mut Settings)) -> Self {
        Self::spawn_providers(db, None, PhoneProvider::None, tweak).await
    }

    /// With a real SMTP server on loopback receiving the server's mail.
    pub async fn spawn_with_mail(db: Db) -> (Self, SmtpSink) {
        let sink = SmtpSink::start();
        (Self::spawn_providers(db, Some(sink.url.clone()), PhoneProvider::None, |_| {}).await, sink)
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
                let schema = PgSchema::create().await;
                (schema.url.clone(), Some(schema))
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
        let shape = Shape {
            database_url: database_url.clone(),
            master_hex,
            settings,
            smtp,
            phone,
            trusted_proxies: Vec::new(),
            push: test_push(),
        };
        let mut resolved = shape.resolved();
        tweak_resolved(&mut resolved);
        let shape = Shape {
            settings: resolved.settings.clone(),
            trusted_proxies: resolved.trusted_proxies.clone(),
            push: resolved.push.clone(),
            ..shape
        };
        let clock = Arc::new(FakeClock::starting_now());
        let server =
            twostep::startup::build(&resolved, clock.clone(), shape.settings.clone()).await.expect("server starts");
        let url = server.url.clone();
        tokio::spawn(server.run(std::future::pending()));
        let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().expect("client");
        Self { url, db, database_url, clock, http, _dir: dir, _pg_schema: pg_schema, shape }
    }

    /// Another server on the same database, key and clock: a second
    /// instance behind a load balancer. Returns its URL.
    pub async fn second_instance(&self) -> String {
        let server = twostep::startup::build(&self.shape.resolved(), self.clock.clone(), self.shape.settings.clone())
            .await
            .expect("second");
        let url = server.url.clone();
        tokio::spawn(server.run(std::future::pending()));
        url
    }

    /// The servers a burst is spread over: this one, and on PostgreSQL a
    /// second instance on the same database, key and clock.
    pub async fn instances(&self) -> Vec<String> {
        match self.db {
            Db::Sqlite => vec![self.url.clone()],
            Db::Postgres => vec![self.url.clone(), self.second_instance().await],
        }
    }

    /// A raw connection to this test's database.
    pub async fn raw(&self) -> sqlx::AnyConnection {
        sqlx::any::install_default_drivers();
        <sqlx::AnyConnection as sqlx::Connection>::connect(&self.database_url).await.expect("raw connection")
    }
}
