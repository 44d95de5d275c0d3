//! The delivery outbox (issue 5): every message is committed to a table
//! with the request that asks for it, then a worker hands it to the
//! channel's provider, retrying transient failures with backoff until the
//! message is pointless (its code expired), and records the outcome.
//!
//! Why a table and not a channel in memory: a request answers 202 only once
//! the message is durable, so a crash or restart between the answer and the
//! provider loses nothing, and several instances share the work through
//! row leases (`claim_outbox`). Payloads hold codes and reset links, so they
//! are sealed like every other secret at rest (§2.2).

use std::collections::HashMap;
use std::sync::Arc;

use crate::crypto::{Keyring, SealedColumn, SealedField};
use crate::error::InternalError;
use crate::ids::AccountId;
use crate::meters::{self, SendResult};
use crate::notify::store::{
    Channel, DeliveryError, Outbound, OutboxFinish, OutboxRecord, OutboxStatus, OutboxStore, Sender,
};
use crate::ports::{Clock, Rng};
use crate::service::Twostep;
use crate::time::Timestamp;

/// How long a worker holds a row before another may take it over (a
/// worker that died mid-send).
pub const LEASE_SECS: i64 = 60;
/// Rows taken per pass.
const BATCH: i64 = 32;
/// Longest wait between two tries of one message.
const MAX_BACKOFF_SECS: i64 = 60;
/// Finished messages are kept this long for the dev page and for an
/// operator's questions ("did my code go out?"), then deleted: even sealed,
/// old codes and reset links are better gone.
const KEEP_FINISHED_SECS: i64 = 7 * 24 * 60 * 60;
/// The send log only feeds caps with windows of a day at most.
const KEEP_SENDS_SECS: i64 = 2 * 24 * 60 * 60;

/// The providers, one per kind of channel. A channel without one fails its
/// messages with a clear log line instead of keeping them forever.
#[derive(Clone, Default)]
pub struct Senders {
    pub email: Option<Arc<dyn Sender>>,
    /// SMS and voice.
    pub phone: Option<Arc<dyn Sender>>,
}

impl Senders {
    fn for_channel(&self, channel: Channel) -> Option<&Arc<dyn Sender>> {
        match channel {
            Channel::Email => self.email.as_ref(),
            Channel::Sms | Channel::Voice => self.phone.as_ref(),
        }
    }
}

fn payload_field(id: &str) -> SealedField<'_> {
    SealedColumn::Outbox.field(id)
}

/// The wait before try `attempts + 1`: 1 s, 2 s, 4 s … capped at a minute.
pub fn backoff_secs(attempts: i64) -> i64 {
    let exp = u32::try_from(attempts.clamp(1, 7) - 1).unwrap_or(0);
    (1_i64 << exp).min(MAX_BACKOFF_SECS)
}

/// Takes a finished send off `held`; one cut short by a drain stays there,
/// its lease to be handed back.
fn settled(
    held: &mut HashMap<tokio::task::Id, String>,
    done: Result<(tokio::task::Id, Result<(), InternalError>), tokio::task::JoinError>,
) {
    match done {
        Ok((task, result)) => {
            held.remove(&task);
            if let Err(e) = result {
                tracing::error!(error = %e, "outbox: could not record a delivery");
            }
        }
        Err(e) if e.is_cancelled() => {}
        Err(e) => {
            held.remove(&e.id());
            tracing::error!(error = %e, "outbox: delivery task failed");
        }
    }
}

/// The narrow service over `OutboxStore`: it seals what is queued and
/// hands due messages to their providers. Several instances share the work
/// through row leases.
pub(crate) struct Outbox {
    store: Arc<dyn OutboxStore>,
    keys: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    rng: Arc<dyn Rng>,
    /// Wakes the delivery worker when a message is queued.
    wake: Arc<tokio::sync::Notify>,
    /// True once the server is stopping: a pass under way hands back what
    /// it holds.
    draining: tokio::sync::watch::Receiver<bool>,
}

impl Outbox {
    pub fn new(
        store: Arc<dyn OutboxStore>,
        keys: Arc<Keyring>,
        clock: Arc<dyn Clock>,
        rng: Arc<dyn Rng>,
        draining: tokio::sync::watch::Receiver<bool>,
    ) -> Self {
        Self { store, keys, clock, rng, wake: Arc::new(tokio::sync::Notify::new()), draining }
    }

    /// Signalled whenever a message is queued.
    pub fn signal(&self) -> &Arc<tokio::sync::Notify> {
        &self.wake
    }

    fn draining(&self) -> bool {
        *self.draining.borrow()
    }

    /// Commits a message to the outbox and wakes the worker. The message is
    /// durable when this returns.
    pub async fn enqueue(
        &self,
        account: Option<&AccountId>,
        message: &Outbound,
        expires_at: Timestamp,
    ) -> Result<String, InternalError> {
        let id = crate::ids::AuthenticatorId::generate(self.rng.as_ref()).to_string();
        let json = serde_json::to_vec(message).map_err(|e| InternalError(format!("outbox payload: {e}")))?;
        let now = self.clock.now();
        self.store
            .insert_outbox(&OutboxRecord {
                payload_sealed: self.keys.seal(&json, payload_field(&id), self.rng.as_ref()),
                id: id.clone(),
                account_id: account.cloned(),
                channel: message.channel,
                status: OutboxStatus::Pending,
                attempts: 0,
                created_at: now,
                next_attempt_at: now,
                expires_at,
                locked_until: None,
                provider: None,
                provider_id: None,
                last_error: None,
                finished_at: None,
            })
            .await?;
        self.wake.notify_one();
        Ok(id)
    }

    /// Opens a row's payload (the worker; the dev outbox page).
    pub fn open(&self, row: &OutboxRecord) -> Result<Outbound, InternalError> {
        let json = self.keys.open(&row.payload_sealed, payload_field(&row.id))?;
        let mut message: Outbound =
            serde_json::from_slice(&json).map_err(|e| InternalError(format!("outbox payload: {e}")))?;
        message.id.clone_from(&row.id);
        message.channel = row.channel;
        message.expires_at = row.expires_at;
        Ok(message)
    }

    /// The latest outbox rows, newest first.
    pub async fn recent(&self, limit: i64) -> Result<Vec<OutboxRecord>, InternalError> {
        Ok(self.store.recent_outbox(limit).await?)
    }

    /// One pass over the due messages; returns how many were tried.
    ///
    /// A drain (`Twostep::drain`) cuts the pass short: the sends still
    /// under way are dropped and their leases handed back in one statement,
    /// so another instance takes the messages on its next poll instead of
    /// waiting out `LEASE_SECS` (issue 19). A message whose provider had
    /// already taken it may then go out twice, with the same content: a
    /// repeated code beats a code that arrives a minute late.
    pub async fn deliver_due(self: &Arc<Self>, senders: &Senders) -> Result<usize, InternalError> {
        let now = self.clock.now();
        // One lease time for the whole pass: with the row id it says which
        // rows are still this pass's, so a hand-back never clears a lease
        // another worker took after ours ran out.
        let lease = now.plus_secs(LEASE_SECS);
        let due = self.store.due_outbox(now, BATCH).await?;
        let mut tasks = tokio::task::JoinSet::new();
        let mut held: HashMap<tokio::task::Id, String> = HashMap::new();
        for row in due {
            if self.draining() {
                break;
            }
            if !self.store.claim_outbox(&row.id, now, lease).await? {
                continue; // another worker has it
            }
            let id = row.id.clone();
            let this = Arc::clone(self);
            let senders = senders.clone();
            // Each message on its own task: one slow provider must not hold
            // up the others.
            let task = tasks.spawn(async move { this.deliver_one(row, &senders).await });
            held.insert(task.id(), id);
        }
        let mut draining = self.draining.clone();
        // An error means the sender is gone with the service: the pass
        // stops as for a drain.
        let drained = async move {
            let _ = draining.wait_for(|d| *d).await;
        };
        tokio::pin!(drained);
        let mut tried = 0;
        loop {
            tokio::select! {
                done = tasks.join_next_with_id() => {
                    let Some(done) = done else { return Ok(tried) };
                    tried += 1;
                    settled(&mut held, done);
                }
                () = &mut drained => break,
            }
        }
        tasks.abort_all();
        while let Some(done) = tasks.join_next_with_id().await {
            settled(&mut held, done);
        }
        let unfinished: Vec<String> = held.into_values().collect();
        if !unfinished.is_empty() {
            match self.store.release_outbox(&unfinished, lease).await {
                Ok(n) => tracing::info!(released = n, "outbox: leases handed back for another instance"),
                // They run out on their own after `LEASE_SECS`.
                Err(e) => tracing::error!(error = %e, "outbox: leases could not be handed back"),
            }
        }
        Ok(tried)
    }

    async fn deliver_one(&self, row: OutboxRecord, senders: &Senders) -> Result<(), InternalError> {
        let attempts = row.attempts + 1;
        let finish = |status, provider: &str, provider_id, error: Option<String>| OutboxFinish {
            status,
            attempts,
            at: self.clock.now(),
            provider: provider.to_owned(),
            provider_id,
            error,
        };
        let Some(sender) = senders.for_channel(row.channel) else {
            tracing::warn!(id = %row.id, channel = row.channel.as_str(), "no provider configured; message not sent");
            meters::send(row.channel, "none", SendResult::NoProvider);
            let f = finish(OutboxStatus::Failed, "none", None, Some("no provider configured".to_owned()));
            return Ok(self.store.finish_outbox(&row.id, &f).await?);
        };
        let provider = sender.provider();
        if self.clock.now() >= row.expires_at {
            tracing::warn!(id = %row.id, provider, "message expired before it could be delivered");
            meters::send(row.channel, provider, SendResult::Expired);
            let f = finish(OutboxStatus::Failed, provider, None, Some("expired before delivery".to_owned()));
            return Ok(self.store.finish_outbox(&row.id, &f).await?);
        }
        let message = match self.open(&row) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(id = %row.id, error = %e, "outbox payload cannot be opened");
                meters::send(row.channel, provider, SendResult::Unreadable);
                let f = finish(OutboxStatus::Failed, provider, None, Some("payload cannot be opened".to_owned()));
                return Ok(self.store.finish_outbox(&row.id, &f).await?);
            }
        };
        let sent = |result| meters::send(row.channel, provider, result);
        match sender.deliver(&message).await {
            Ok(done) => {
                sent(SendResult::Sent);
                tracing::info!(id = %row.id, provider, channel = row.channel.as_str(), attempts, "message delivered");
                let f = finish(OutboxStatus::Sent, provider, done.provider_id, None);
                Ok(self.store.finish_outbox(&row.id, &f).await?)
            }
            Err(DeliveryError::Transient(why)) => {
                let next = self.clock.now().plus_secs(backoff_secs(attempts));
                if next >= row.expires_at {
                    sent(SendResult::Failed);
                    tracing::error!(id = %row.id, provider, attempts, error = %why, "delivery given up: message expired");
                    let f = finish(OutboxStatus::Failed, provider, None, Some(why));
                    return Ok(self.store.finish_outbox(&row.id, &f).await?);
                }
                sent(SendResult::Retry);
                tracing::warn!(id = %row.id, provider, attempts, error = %why, "delivery failed; will retry");
                Ok(self.store.retry_outbox(&row.id, attempts, next, &why).await?)
            }
            Err(DeliveryError::Permanent(why)) => {
                sent(SendResult::Failed);
                tracing::error!(id = %row.id, provider, attempts, error = %why, "delivery refused by the provider");
                let f = finish(OutboxStatus::Failed, provider, None, Some(why));
                Ok(self.store.finish_outbox(&row.id, &f).await?)
            }
        }
    }
}

impl Twostep {
    /// Commits a message to the outbox (see `Outbox::enqueue`).
    pub(crate) async fn enqueue(
        &self,
        account: Option<&AccountId>,
        message: &Outbound,
        expires_at: Timestamp,
    ) -> Result<String, InternalError> {
        self.outbox.enqueue(account, message, expires_at).await
    }

    /// Opens a row's payload (the dev outbox page).
    pub fn open_outbox(&self, row: &OutboxRecord) -> Result<Outbound, InternalError> {
        self.outbox.open(row)
    }

    /// The latest outbox rows, newest first.
    pub async fn recent_outbox(&self, limit: i64) -> Result<Vec<OutboxRecord>, InternalError> {
        self.outbox.recent(limit).await
    }

    /// One pass over the due messages (see `Outbox::deliver_due`).
    pub async fn deliver_due(&self, senders: &Senders) -> Result<usize, InternalError> {
        self.outbox.deliver_due(senders).await
    }

    /// Deletes finished messages, send-log rows, what each factor keeps for
    /// a while (its `sweep`) and organisation invitations past their use
    /// (the sweeper worker calls it).
    pub async fn sweep_expired(&self) {
        let now = self.now();
        match self.store.purge_outbox(now.plus_secs(-KEEP_FINISHED_SECS)).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "outbox: finished messages swept"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "outbox sweep failed"),
        }
        if let Err(e) = self.store.purge_sends(now.plus_secs(-KEEP_SENDS_SECS)).await {
            tracing::error!(error = %e, "send log sweep failed");
        }
        for factor in crate::factors::registry::standard().iter() {
            if let Err(e) = factor.sweep(self, now).await {
                tracing::error!(error = %e, methods = ?factor.methods(), "factor sweep failed");
            }
        }
        match self.store.purge_invitations(now.plus_secs(-crate::policy::orgs::KEEP_EXPIRED_INVITATIONS_SECS)).await {
            Ok(n) if n > 0 => tracing::info!(deleted = n, "expired organisation invitations swept"),
            Ok(_) => {}
            Err(e) => tracing::error!(error = %e, "invitation sweep failed"),
        }
    }
}

#[cfg(test)]
#[path = "tests.rs"]
mod tests;
