//! The server's background work, wired at start-up: delivering the outbox,
//! sweeping what has expired, and waking companion devices. The domain says
//! what one pass does; the loops and their pacing live here, so the domain
//! never spawns a task or sleeps.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use twostep_domain::factors::push::{PushWaker, WakeJob, WakeOutcome};
use twostep_domain::notify::outbox::Senders;
use twostep_domain::service::Twostep;

/// How often expired rows are swept, by the domain's clock.
const SWEEP_EVERY_SECS: i64 = 60 * 60;
/// Wake-ups waiting to be sent; beyond, new ones are dropped (devices still
/// see the challenge on their next long-poll).
const WAKE_QUEUE: usize = 1024;

/// The wake-up queue the domain fills and `spawn` drains, when the operator
/// configured any waker (Web Push, a webhook).
pub fn wake_queue(wakers: &[Arc<dyn PushWaker>]) -> Option<(mpsc::Sender<WakeJob>, mpsc::Receiver<WakeJob>)> {
    (!wakers.is_empty()).then(|| mpsc::channel(WAKE_QUEUE))
}

/// Starts every worker; the outbox worker's handle, which ends soon after
/// `Twostep::drain` is called, its leases handed back.
pub fn spawn(
    twostep: &Arc<Twostep>,
    senders: Senders,
    poll: Duration,
    wakers: Vec<Arc<dyn PushWaker>>,
    wake_jobs: Option<mpsc::Receiver<WakeJob>>,
) -> tokio::task::JoinHandle<()> {
    let outbox = tokio::spawn(deliver(Arc::clone(twostep), senders, poll));
    tokio::spawn(sweep(Arc::clone(twostep), poll));
    if let Some(jobs) = wake_jobs {
        tokio::spawn(wake(Arc::clone(twostep), wakers, jobs));
    }
    outbox
}

/// Delivers until the process ends: a pass whenever a message is queued,
/// and every `poll` for retries, other instances' rows and rows left
/// behind by a restart.
async fn deliver(twostep: Arc<Twostep>, senders: Senders, poll: Duration) {
    let queued = twostep.outbox_signal();
    loop {
        // Registered before the pass, so a message queued during it is not missed.
        let wake = queued.notified();
        // A pass under way when the drain comes hands back the leases it
        // still holds (`deliver_due`); this stops the next one.
        if twostep.is_draining() {
            tracing::info!("outbox worker stopped");
            return;
        }
        match twostep.deliver_due(&senders).await {
            Ok(n) if n > 0 => continue,
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "outbox pass failed"),
        }
        tokio::select! {
            () = wake => {}
            () = tokio::time::sleep(poll) => {}
        }
    }
}

/// Sweeps at start and then hourly by the domain's clock (which tests move
/// forward), looking every `poll`.
async fn sweep(twostep: Arc<Twostep>, poll: Duration) {
    let mut swept: Option<i64> = None;
    let mut cache_swept = 0;
    while !twostep.is_draining() {
        let now = twostep.now().secs();
        if swept.is_none_or(|t| now - t >= SWEEP_EVERY_SECS) {
            swept = Some(now);
            twostep.sweep_expired().await;
        }
        // Sessions nobody asked for again would hold their memory until the
        // cache's bound; a quiet server should hold none.
        if now - cache_swept >= twostep_domain::sessions::cache::CACHE_SECS {
            cache_swept = now;
            twostep.session_cache().sweep();
        }
        tokio::time::sleep(poll).await;
    }
}

/// Sends each queued challenge's wake-ups through every waker; a push
/// service that says a subscription is gone has it forgotten.
async fn wake(twostep: Arc<Twostep>, wakers: Vec<Arc<dyn PushWaker>>, mut jobs: mpsc::Receiver<WakeJob>) {
    while let Some(job) = jobs.recv().await {
        for target in &job.targets {
            for waker in &wakers {
                match waker.wake(target, &job.challenge_id).await {
                    Ok(WakeOutcome::Gone) => {
                        tracing::info!(device = %target.device_id, waker = waker.name(), "push subscription gone; forgetting it");
                        twostep.forget_dead_subscription(&target.device_id).await;
                    }
                    Ok(_) => {}
                    Err(e) => {
                        tracing::warn!(device = %target.device_id, waker = waker.name(), error = %e, "push wake-up failed");
                    }
                }
            }
        }
    }
}

/// Drops the OpenID provider's expired codes and tokens at start and then
/// hourly by the domain's clock, until the server drains.
pub fn spawn_oidc_sweep(twostep: &Arc<Twostep>, oidc: Arc<twostep_domain::oidc::Oidc>, poll: Duration) {
    let twostep = Arc::clone(twostep);
    tokio::spawn(async move {
        let mut swept: Option<i64> = None;
        while !twostep.is_draining() {
            let now = twostep.now().secs();
            if swept.is_none_or(|t| now - t >= SWEEP_EVERY_SECS) {
                swept = Some(now);
                oidc.sweep().await;
            }
            tokio::time::sleep(poll).await;
        }
    });
}
