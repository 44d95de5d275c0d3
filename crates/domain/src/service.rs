//! `Twostep`: the domain's services, wired from ports.
//!
//! Operations are split by area into `accounts`, `sessions`, `login`,
//! `totp`, `recovery` and `reauth` (each an `impl Twostep` block), so every
//! file reads in one sitting. This file holds what they share.

use std::sync::Arc;

use crate::accounts::password::{Password, PasswordHashing};
use crate::audit::{Actor, AuditEntry, AuditKind, RequestContext};
use crate::crypto::Keyring;
use crate::error::InternalError;
use crate::ids::AccountId;
use crate::ports::{Clock, Rng};
use crate::settings::Settings;
use crate::storage::Store;
use crate::time::Timestamp;

pub struct Twostep {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Arc<dyn Rng>,
    pub(crate) keys: Keyring,
    pub(crate) hashing: Arc<PasswordHashing>,
    pub(crate) settings: Settings,
    /// Every guessing limit (§2.5), over the counters alone.
    pub(crate) throttles: crate::abuse::throttles::Throttles,
    /// Wakes the outbox worker when a message is queued.
    pub(crate) outbox_wake: Arc<tokio::sync::Notify>,
    /// Bounds concurrent Argon2id work: 32 parallel sign-ins must not mean
    /// 32 × 19 MiB and 32 threads fighting over two cores (docs/performance.md).
    hash_permits: Arc<tokio::sync::Semaphore>,
    /// Wakes long-polls (devices, sign-in pages) when a push challenge is
    /// raised or answered on this instance; they also re-read every second
    /// for other instances.
    pub(crate) push_changed: Arc<tokio::sync::Notify>,
    /// Where wake-ups for companion devices are queued (Web Push, webhooks
    /// beyond their long-poll), when the server runs a waker worker.
    pub(crate) wake_queue: Option<tokio::sync::mpsc::Sender<crate::factors::push::WakeJob>>,
    /// Bounds the password-reset requests worked on at once off the request
    /// path (see `credentials`), so a flood of them queues instead of
    /// taking every database connection from sign-ins.
    pub(crate) reset_permits: Arc<tokio::sync::Semaphore>,
    /// Set once the server is shutting down: long-polls answer at once and
    /// the outbox worker hands back what it holds and stops.
    draining: tokio::sync::watch::Sender<bool>,
    /// Sessions read recently (`sessions::cache`); off until the wiring
    /// gives it a way to hear changes made elsewhere.
    pub(crate) session_cache: Arc<crate::sessions::cache::SessionCache>,
}

impl Twostep {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
        keys: Keyring,
        settings: Settings,
    ) -> Result<Self, InternalError> {
        let hashing = Arc::new(PasswordHashing::new(settings.hash_cost, rng.as_ref())?);
        let hash_permits = Arc::new(tokio::sync::Semaphore::new(settings.max_concurrent_hashes.max(1)));
        let throttles = crate::abuse::throttles::Throttles::new(Arc::clone(&store) as _, Arc::clone(&clock));
        let session_cache = Arc::new(crate::sessions::cache::SessionCache::new(
            Arc::clone(&clock),
            crate::sessions::cache::CACHE_SECS,
            crate::sessions::cache::CACHE_MAX,
        ));
        Ok(Self {
            store,
            clock,
            rng,
            keys,
            hashing,
            settings,
            throttles,
            outbox_wake: Arc::new(tokio::sync::Notify::new()),
            hash_permits,
            push_changed: Arc::new(tokio::sync::Notify::new()),
            wake_queue: None,
            reset_permits: Arc::new(tokio::sync::Semaphore::new(4)),
            draining: tokio::sync::watch::Sender::new(false),
            session_cache,
        })
    }

    /// Queues wake-ups for companion devices here (see `factors::push`);
    /// the start-up's worker sends them.
    #[must_use]
    pub fn with_wake_queue(mut self, queue: tokio::sync::mpsc::Sender<crate::factors::push::WakeJob>) -> Self {
        self.wake_queue = Some(queue);
        self
    }

    /// Signalled whenever a message is queued in the outbox, so the
    /// delivery worker need not wait for its next poll.
    pub fn outbox_signal(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.outbox_wake)
    }

    /// The instance's session cache: the wiring turns it on
    /// (`SessionCache::watch`) and feeds it other instances' changes.
    pub fn session_cache(&self) -> &Arc<crate::sessions::cache::SessionCache> {
        &self.session_cache
    }

    pub fn settings(&self) -> &Settings {
        &self.settings
    }

    pub fn keys(&self) -> &Keyring {
        &self.keys
    }

    pub fn now(&self) -> Timestamp {
        self.clock.now()
    }

    pub fn rng(&self) -> &dyn Rng {
        self.rng.as_ref()
    }

    /// Starts a graceful stop: waiting long-polls return what they have
    /// (clients poll again, on another instance), and the outbox worker
    /// cuts its pass short and hands back its leases (`deliver_due`), so
    /// another instance sends at once what this one had not.
    pub fn drain(&self) {
        self.draining.send_replace(true);
        self.push_changed.notify_waiters();
        self.outbox_wake.notify_waiters();
        self.outbox_wake.notify_one();
    }

    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Resolves once `drain` has been called (at once if it was).
    pub(crate) fn until_drained(&self) -> impl Future<Output = ()> + Send + 'static {
        let mut draining = self.draining.subscribe();
        async move {
            // An error means the sender is gone with the service: nothing
            // is left to drain for.
            let _ = draining.wait_for(|d| *d).await;
        }
    }

    pub async fn healthy(&self) -> bool {
        self.store.ping().await.is_ok()
    }

    /// Argon2id takes tens of milliseconds of CPU: keep it off the async
    /// workers so one sign-in cannot stall other requests.
    pub(crate) async fn hash_password(&self, password: Password) -> Result<String, InternalError> {
        let hashing = Arc::clone(&self.hashing);
        let rng = Arc::clone(&self.rng);
        let _permit = self.hash_permit().await?;
        tokio::task::spawn_blocking(move || hashing.hash(&password, rng.as_ref()))
            .await
            .map_err(|e| InternalError(format!("hashing task: {e}")))?
            .map_err(InternalError::from)
    }

    async fn hash_permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, InternalError> {
        self.hash_permits.acquire().await.map_err(|e| InternalError(format!("hash permits: {e}")))
    }

    /// Verifies against `stored`, or against the dummy hash when there is no
    /// account, so both cost the same (§2.12).
    pub(crate) async fn verify_password(
        &self,
        password: Password,
        stored: Option<String>,
    ) -> Result<bool, InternalError> {
        let hashing = Arc::clone(&self.hashing);
        let _permit = self.hash_permit().await?;
        tokio::task::spawn_blocking(move || hashing.verify(&password, stored.as_deref()))
            .await
            .map_err(|e| InternalError(format!("hashing task: {e}")))
    }

    /// Appends to the audit log. A failure to audit is logged, not fatal:
    /// refusing a sign-in because the log table hiccuped would lock users
    /// out, while the tracing line still records the event.
    pub(crate) async fn audit(&self, ev: AuditEvent<'_>, ctx: &RequestContext) {
        let entry = AuditEntry {
            at: self.clock.now(),
            kind: ev.kind.as_str().to_owned(),
            account_id: ev.account.cloned(),
            email: None,
            actor: ev.actor.as_str().to_owned(),
            factor_id: ev.factor_id,
            success: ev.success,
            ip: ctx.ip.clone(),
            user_agent: ctx.user_agent.chars().take(512).collect(),
            request_id: ctx.request_id.clone(),
            details: ev.details,
        };
        tracing::info!(
            event = entry.kind,
            account = ev.account.map(AccountId::as_str),
            success = entry.success,
            details = entry.details,
            "audit"
        );
        // The operator's view (issue 19): counts by event and outcome only,
        // never the account.
        metrics::counter!("twostep_audit_events_total", "event" => ev.kind.as_str(), "success" => if entry.success { "true" } else { "false" })
            .increment(1);
        if let Err(e) = self.store.append(&entry).await {
            tracing::error!(error = %e, event = entry.kind, "could not write the audit log");
        }
    }
}

/// An event to audit; see `Twostep::audit`.
pub(crate) struct AuditEvent<'a> {
    pub kind: AuditKind,
    pub account: Option<&'a AccountId>,
    pub actor: Actor,
    pub factor_id: Option<String>,
    pub success: bool,
    pub details: String,
}

impl<'a> AuditEvent<'a> {
    pub fn user(kind: AuditKind, account: &'a AccountId) -> Self {
        Self {
            kind,
            account: Some(account),
            actor: Actor::User,
            factor_id: None,
            success: true,
            details: String::new(),
        }
    }

    /// An event with no account: an attempt on an e-mail that has none.
    pub fn anonymous(kind: AuditKind) -> Self {
        Self { kind, account: None, actor: Actor::User, factor_id: None, success: true, details: String::new() }
    }

    #[must_use]
    pub fn failed(mut self) -> Self {
        self.success = false;
        self
    }

    #[must_use]
    pub fn factor(mut self, id: impl Into<String>) -> Self {
        self.factor_id = Some(id.into());
        self
    }

    #[must_use]
    pub fn details(mut self, d: impl Into<String>) -> Self {
        self.details = d.into();
        self
    }

    #[must_use]
    pub fn actor(mut self, actor: Actor) -> Self {
        self.actor = actor;
        self
    }
}
