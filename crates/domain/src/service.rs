//! `Twostep`: the domain's services, wired from ports.
//!
//! Operations are split by area into `accounts`, `sessions`, `login`,
//! `totp`, `recovery` and `reauth` (each an `impl Twostep` block), so every
//! file reads in one sitting. This file holds what they share.

use std::sync::Arc;

use crate::abuse::throttles::Throttles;
use crate::accounts::hasher::Hasher;
use crate::accounts::password::PasswordHashing;
use crate::accounts::password_guard::PasswordGuard;
use crate::accounts::service::{AccountRules, Accounts};
pub(crate) use crate::audit::AuditEvent;
use crate::audit::{Auditor, RequestContext};
use crate::crypto::Keyring;
use crate::error::InternalError;
use crate::notify::notices::Notices;
use crate::notify::outbox::Outbox;
use crate::policy::administration::Administration;
use crate::policy::allowlists::Allowlists;
use crate::policy::orgs::Orgs;
use crate::ports::{Clock, Rng};
use crate::sessions::service::Sessions;
use crate::settings::Settings;
use crate::storage::Store;
use crate::time::Timestamp;

pub struct Twostep {
    pub(crate) store: Arc<dyn Store>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) rng: Arc<dyn Rng>,
    pub(crate) keys: Arc<Keyring>,
    pub(crate) settings: Settings,
    /// Appends to the audit log, for every other service.
    pub(crate) auditor: Arc<Auditor>,
    /// Sessions and login tokens: liveness, the cache, changes everywhere.
    pub(crate) sessions: Arc<crate::sessions::service::Sessions>,
    /// Sign-up, the operator's account commands, password change and reset.
    pub(crate) accounts: Accounts,
    /// A password checked under the throttles.
    pub(crate) guard: Arc<PasswordGuard>,
    /// The sign-in state machine, carried out.
    pub(crate) signin: crate::signin::service::SignIn,
    /// Every guessing limit (§2.5), over the counters alone.
    pub(crate) throttles: Arc<crate::abuse::throttles::Throttles>,
    /// The operator role: the admin's checks, resets and disables.
    pub(crate) admin: crate::policy::administration::Administration,
    /// IP allow-lists: who may use an account from where.
    pub(crate) allowlists: crate::policy::allowlists::Allowlists,
    /// Organisations, invitations and their rule.
    pub(crate) orgs: crate::policy::orgs::Orgs,
    /// Security notices to an account's own address.
    pub(crate) notices: Arc<crate::notify::notices::Notices>,
    /// Every message, sealed and queued for its provider.
    pub(crate) outbox: Arc<crate::notify::outbox::Outbox>,
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
    /// Who we are to security keys, made once from the settings; why not,
    /// when the public URL cannot name one (keys are then unavailable).
    pub(crate) relying_party: Result<crate::factors::webauthn::RelyingParty, String>,
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
        let hasher = Arc::new(Hasher::new(hashing, Arc::clone(&rng), settings.max_concurrent_hashes));
        let throttles = Arc::new(crate::abuse::throttles::Throttles::new(Arc::clone(&store) as _, Arc::clone(&clock)));
        let auditor = Arc::new(Auditor::new(Arc::clone(&store) as _, Arc::clone(&clock)));
        let session_cache = Arc::new(crate::sessions::cache::SessionCache::new(
            Arc::clone(&clock),
            crate::sessions::cache::CACHE_SECS,
            crate::sessions::cache::CACHE_MAX,
        ));
        let sessions = Arc::new(crate::sessions::service::Sessions::new(
            Arc::clone(&store) as _,
            Arc::clone(&clock),
            Arc::clone(&rng),
            crate::sessions::service::Lifetimes::of(&settings),
            Arc::clone(&session_cache),
        ));
        let keys = Arc::new(keys);
        let draining = tokio::sync::watch::Sender::new(false);
        let outbox = Arc::new(crate::notify::outbox::Outbox::new(
            Arc::clone(&store) as _,
            Arc::clone(&keys),
            Arc::clone(&clock),
            Arc::clone(&rng),
            draining.subscribe(),
        ));
        let notices = Arc::new(crate::notify::notices::Notices::new(
            Arc::clone(&store) as _,
            Arc::clone(&outbox),
            Arc::clone(&clock),
        ));
        let guard = Arc::new(PasswordGuard {
            throttles: Arc::clone(&throttles),
            hasher: Arc::clone(&hasher),
            auditor: Arc::clone(&auditor),
            notices: Arc::clone(&notices),
        });
        let signin = crate::signin::service::SignIn {
            accounts: Arc::clone(&store) as _,
            guard: Arc::clone(&guard),
            notices: Arc::clone(&notices),
            sessions: Arc::clone(&sessions),
            auditor: Arc::clone(&auditor),
            keys: Arc::clone(&keys),
            clock: Arc::clone(&clock),
        };
        let accounts = Accounts {
            store: Arc::clone(&store) as _,
            credentials: Arc::clone(&store) as _,
            factors: Arc::clone(&store) as _,
            allowances: Arc::clone(&store) as _,
            throttles: Arc::clone(&throttles),
            guard: Arc::clone(&guard),
            hasher: Arc::clone(&hasher),
            sessions: Arc::clone(&sessions),
            auditor: Arc::clone(&auditor),
            notices: Arc::clone(&notices),
            keys: Arc::clone(&keys),
            clock: Arc::clone(&clock),
            rng: Arc::clone(&rng),
            rules: AccountRules::of(&settings),
        };
        let (admin, allowlists, orgs) =
            policy_services(&store, &clock, &rng, &settings, &auditor, &throttles, &sessions, &notices, &outbox);
        Ok(Self {
            store,
            clock,
            rng,
            keys,
            auditor,
            sessions,
            signin,
            accounts,
            guard,
            throttles,
            admin,
            allowlists,
            orgs,
            notices,
            outbox,
            push_changed: Arc::new(tokio::sync::Notify::new()),
            wake_queue: None,
            reset_permits: Arc::new(tokio::sync::Semaphore::new(4)),
            draining,
            session_cache,
            relying_party: crate::factors::webauthn::relying_party_of(&settings),
            settings,
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
        Arc::clone(self.outbox.signal())
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
        self.outbox.signal().notify_waiters();
        self.outbox.signal().notify_one();
    }

    pub fn is_draining(&self) -> bool {
        *self.draining.borrow()
    }

    pub async fn healthy(&self) -> bool {
        self.store.ping().await.is_ok()
    }

    /// Appends to the audit log (see `Auditor::record`).
    pub(crate) async fn audit(&self, ev: AuditEvent<'_>, ctx: &RequestContext) {
        self.auditor.record(ev, ctx).await;
    }
}

/// The policy area's services: administration, allow-lists, organisations.
#[allow(clippy::too_many_arguments)]
fn policy_services(
    store: &Arc<dyn Store>,
    clock: &Arc<dyn Clock>,
    rng: &Arc<dyn Rng>,
    settings: &Settings,
    auditor: &Arc<Auditor>,
    throttles: &Arc<Throttles>,
    sessions: &Arc<Sessions>,
    notices: &Arc<Notices>,
    outbox: &Arc<Outbox>,
) -> (Administration, Allowlists, Orgs) {
    let admin = Administration {
        store: Arc::clone(store) as _,
        accounts: Arc::clone(store) as _,
        factors: Arc::clone(store) as _,
        credentials: Arc::clone(store) as _,
        throttles: Arc::clone(throttles),
        sessions: Arc::clone(sessions),
        auditor: Arc::clone(auditor),
        notices: Arc::clone(notices),
        clock: Arc::clone(clock),
    };
    let allowlists = Allowlists {
        store: Arc::clone(store) as _,
        sessions: Arc::clone(sessions),
        auditor: Arc::clone(auditor),
        notices: Arc::clone(notices),
        clock: Arc::clone(clock),
    };
    let orgs = Orgs {
        store: Arc::clone(store) as _,
        factors: Arc::clone(store) as _,
        allowances: Arc::clone(store) as _,
        outbox: Arc::clone(outbox),
        notices: Arc::clone(notices),
        auditor: Arc::clone(auditor),
        clock: Arc::clone(clock),
        rng: Arc::clone(rng),
        public_url: settings.public_url.clone(),
    };
    (admin, allowlists, orgs)
}
