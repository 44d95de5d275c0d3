//! twostep's shared test kit, used as a dev-dependency only.
//!
//! Always here, with no dependency beyond the domain: the fake clock
//! ([`FakeClock`], the domain's `Clock` port), local HTTP receivers for
//! Twilio, the signed webhook and Web Push ([`Receiver`]), and the real
//! SMTP sink ([`SmtpSink`]). With the `server` feature: [`TestApp`], the
//! real server on a free port with a fresh SQLite file or PostgreSQL
//! schema, its accounts and HTTP helpers, and the `both_backends!` /
//! `each_backend!` macros that run a test once per database.
//!
//! The domain crate's own unit tests cannot use this kit: it depends on
//! the domain, so its `FakeClock` implements another build of the trait.

mod clock;
pub mod receiver;
mod smtp;

#[cfg(feature = "server")]
mod app;
#[cfg(feature = "server")]
mod client;
#[cfg(feature = "server")]
mod pg;
#[cfg(feature = "server")]
mod users;

pub use clock::{FakeClock, real_now};
pub use receiver::{Receiver, Recorded, closed_port, link_code, six_digits};
pub use smtp::SmtpSink;

#[cfg(feature = "server")]
pub use app::{Db, TestApp, postgres_url, test_push};
#[cfg(feature = "server")]
pub use client::{Page, Resp};
#[cfg(feature = "server")]
pub use pg::PgSchema;
#[cfg(feature = "server")]
pub use users::User;

/// Runs each listed `async fn(TestApp)` once per backend, on a fresh
/// server: `mod name { sqlite, postgres }`.
#[cfg(feature = "server")]
#[macro_export]
macro_rules! both_backends {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::TestApp::spawn($crate::Db::Sqlite).await).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::TestApp::spawn($crate::Db::Postgres).await).await;
            }
        }
    )*};
}

/// Like `both_backends!` for tests that spawn their own server (other
/// providers or settings): each listed `async fn(Db)` runs once per backend.
#[cfg(feature = "server")]
#[macro_export]
macro_rules! each_backend {
    ($($name:ident),* $(,)?) => {$(
        mod $name {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn sqlite() {
                super::$name($crate::Db::Sqlite).await;
            }
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn postgres() {
                super::$name($crate::Db::Postgres).await;
            }
        }
    )*};
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
