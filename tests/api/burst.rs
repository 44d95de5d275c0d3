//! Bursts: many requests released at the same instant, the way an attacker
//! fires them. Each request has its own connection, opened (and used once,
//! so it is idle in its client's pool) before a barrier lets them all go,
//! so the server sees them arrive together rather than paced by connects.
//!
//! On PostgreSQL a burst alternates between two instances sharing the
//! database (`TestApp::instances`), so a limit must hold across processes'
//! worth of pools, not only inside one.

use std::sync::Arc;

use reqwest::{Client, RequestBuilder};
use tokio::sync::Barrier;
use twostep_testkit::Resp;

/// Fires `n` requests at once, request `i` built by `build(i, client, base)`
/// against `bases[i % bases.len()]`; returns the answers in order.
pub async fn burst<F>(bases: &[String], n: usize, build: F) -> Vec<Resp>
where
    F: Fn(usize, &Client, &str) -> RequestBuilder + Send + Sync + 'static,
{
    let barrier = Arc::new(Barrier::new(n));
    let build = Arc::new(build);
    let mut tasks = Vec::with_capacity(n);
    for i in 0..n {
        let base = bases[i % bases.len()].clone();
        let barrier = barrier.clone();
        let build = build.clone();
        tasks.push(tokio::spawn(async move {
            // One idle kept-alive connection per client, opened now.
            let client = Client::builder().pool_max_idle_per_host(1).build().expect("client");
            client.get(format!("{base}/healthz")).send().await.expect("warm-up").bytes().await.expect("body");
            barrier.wait().await;
            let resp = build(i, &client, &base).send().await.expect("burst request");
            Resp::from(resp).await
        }));
    }
    let mut out = Vec::with_capacity(n);
    for t in tasks {
        out.push(t.await.expect("burst task"));
    }
    out
}

/// How many answers had each status, for assertion messages.
pub fn tally(resps: &[Resp]) -> std::collections::BTreeMap<u16, usize> {
    let mut m = std::collections::BTreeMap::new();
    for r in resps {
        *m.entry(r.status.as_u16()).or_insert(0) += 1;
    }
    m
}

/// The number of answers with `status`.
pub fn count(resps: &[Resp], status: u16) -> usize {
    resps.iter().filter(|r| r.status.as_u16() == status).count()
}
