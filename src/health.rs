//! Probes for orchestrators: `/livez` says the process answers (restart it
//! if not), `/readyz` says it should get traffic: the database answers in
//! time, every migration is applied, and it is not shutting down.
//! `/healthz` (the API's, database only) stays as it was.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use twostep_store::SqlStore;

/// How long `/readyz` waits for the database: a probe that hangs is
/// worse for an orchestrator than one that says no.
pub const DATABASE_TIMEOUT: Duration = Duration::from_secs(2);

#[derive(Clone)]
pub struct Health {
    store: SqlStore,
    draining: Arc<AtomicBool>,
}

/// Why the server is, or is not, ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Readiness {
    Ready,
    Draining,
    DatabaseDown,
    SchemaBehind,
}

impl Readiness {
    /// What a probe of the database found, `None` when it timed out; a
    /// draining server is not ready whatever the database says.
    pub fn judge(draining: bool, schema_current: Option<Result<bool, ()>>) -> Self {
        match (draining, schema_current) {
            (true, _) => Self::Draining,
            (false, None | Some(Err(()))) => Self::DatabaseDown,
            (false, Some(Ok(false))) => Self::SchemaBehind,
            (false, Some(Ok(true))) => Self::Ready,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ready => "ok",
            Self::Draining => "draining",
            Self::DatabaseDown => "database_unavailable",
            Self::SchemaBehind => "migrations_pending",
        }
    }
}

impl Health {
    pub fn new(store: SqlStore) -> Self {
        Self { store, draining: Arc::new(AtomicBool::new(false)) }
    }

    pub fn set_draining(&self) {
        self.draining.store(true, Ordering::SeqCst);
    }

    pub async fn readiness(&self) -> Readiness {
        let draining = self.draining.load(Ordering::SeqCst);
        if draining {
            return Readiness::Draining;
        }
        let probe = tokio::time::timeout(DATABASE_TIMEOUT, self.store.schema_is_current()).await;
        let found = probe.ok().map(|r| {
            r.map_err(|e| {
                tracing::warn!(error = %e, "readiness: the database did not answer");
            })
        });
        Readiness::judge(draining, found)
    }
}

pub fn routes(health: Health) -> Router {
    Router::new().route("/livez", get(livez)).route("/readyz", get(readyz)).with_state(health)
}

fn answer(status: StatusCode, word: &str) -> Response {
    let body = format!("{{\"status\":\"{word}\"}}");
    (status, [(header::CONTENT_TYPE, "application/json"), (header::CACHE_CONTROL, "no-store")], body).into_response()
}

async fn livez() -> Response {
    answer(StatusCode::OK, "ok")
}

async fn readyz(State(health): State<Health>) -> Response {
    let r = health.readiness().await;
    let status = if r == Readiness::Ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    answer(status, r.as_str())
}

#[cfg(test)]
mod tests {
    use super::Readiness;

    #[test]
    fn draining_wins_then_the_database_then_the_schema() {
        assert_eq!(Readiness::judge(true, Some(Ok(true))), Readiness::Draining);
        assert_eq!(Readiness::judge(false, None), Readiness::DatabaseDown);
        assert_eq!(Readiness::judge(false, Some(Err(()))), Readiness::DatabaseDown);
        assert_eq!(Readiness::judge(false, Some(Ok(false))), Readiness::SchemaBehind);
        assert_eq!(Readiness::judge(false, Some(Ok(true))), Readiness::Ready);
    }
}
