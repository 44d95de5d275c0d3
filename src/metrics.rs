//! Prometheus metrics on their own listener (`metrics_listen`, off by
//! default), so the public port never shows them.
//!
//! Labels are route templates (`/api/v1/orgs/{id}`, never the id), methods
//! and status codes: nothing names an account, an address or an e-mail.
//! What the rules decide (sign-ins, second-factor checks, throttles, locks,
//! sends, pushes) is counted in the domain, `twostep_domain::meters`.

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::Instant;

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use tokio::net::TcpListener;
use twostep_store::SqlStore;

/// The route label of a request no route matched: the path itself could
/// carry anything a client typed.
const UNMATCHED: &str = "unmatched";

/// Counts and times every request by matched route, method and status.
/// Without an installed recorder the macros do nothing.
pub async fn track(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map_or(UNMATCHED, MatchedPath::as_str).to_owned();
    let method = req.method().as_str().to_owned();
    let started = Instant::now();
    let res = next.run(req).await;
    let status = res.status().as_u16().to_string();
    let seconds = started.elapsed().as_secs_f64();
    // By route; `twostep_throttle_refusals_total` (the domain's) says which
    // throttle refused.
    if res.status() == StatusCode::TOO_MANY_REQUESTS {
        metrics::counter!("twostep_http_throttled_total", "route" => route.clone()).increment(1);
    }
    metrics::histogram!("twostep_http_request_duration_seconds", "route" => route.clone(), "method" => method.clone())
        .record(seconds);
    metrics::counter!("twostep_http_requests_total", "route" => route, "method" => method, "status" => status)
        .increment(1);
    res
}

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// Installs the process-wide recorder once; later calls reuse it.
fn recorder() -> Result<PrometheusHandle, String> {
    if let Some(h) = HANDLE.get() {
        return Ok(h.clone());
    }
    let handle = PrometheusBuilder::new().install_recorder().map_err(|e| e.to_string())?;
    metrics::gauge!("twostep_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    for (name, help) in twostep_domain::meters::DESCRIPTIONS {
        metrics::describe_counter!(*name, *help);
    }
    Ok(HANDLE.get_or_init(|| handle).clone())
}

#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    store: SqlStore,
}

/// Binds `addr` and serves `GET /metrics` there until the process ends.
/// Returns the bound address.
pub async fn serve(addr: SocketAddr, store: SqlStore) -> Result<SocketAddr, Box<dyn std::error::Error>> {
    let handle = recorder()?;
    let listener = TcpListener::bind(addr).await.map_err(|e| format!("metrics_listen {addr}: {e}"))?;
    let bound = listener.local_addr()?;
    let app = Router::new().route("/metrics", get(scrape)).with_state(Scrape { handle, store });
    tokio::spawn(async move {
        if let Err(e) = axum::serve(listener, app).await {
            tracing::error!(error = %e, "metrics listener failed");
        }
    });
    Ok(bound)
}

/// Unix seconds on the real clock, for the age of the oldest message.
#[expect(clippy::disallowed_methods, reason = "metrics report wall-clock ages")]
fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

#[expect(clippy::cast_precision_loss, reason = "gauges are floats; these counts are far below 2^52")]
async fn scrape(State(s): State<Scrape>) -> Response {
    // Read at scrape time: the backlog is the database's, shared by every
    // instance, not something one process could count.
    match tokio::time::timeout(crate::health::DATABASE_TIMEOUT, s.store.outbox_backlog()).await {
        Ok(Ok(b)) => {
            metrics::gauge!("twostep_outbox_pending").set(b.pending as f64);
            let age = b.oldest_created_at.map_or(0, |t| (unix_now() - t).max(0));
            metrics::gauge!("twostep_outbox_oldest_age_seconds").set(age as f64);
        }
        Ok(Err(e)) => tracing::warn!(error = %e, "metrics: outbox backlog unreadable"),
        Err(_) => tracing::warn!("metrics: outbox backlog timed out"),
    }
    let (size, idle) = s.store.pool_use();
    metrics::gauge!("twostep_db_pool_connections", "state" => "open").set(f64::from(size));
    metrics::gauge!("twostep_db_pool_connections", "state" => "idle").set(idle as f64);
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.handle.render()).into_response()
}
