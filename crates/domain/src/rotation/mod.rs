//! Master key rotation (`twostep key rotate`): every sealed value is opened
//! under whichever key sealed it and sealed again under the current key,
//! online, while servers keep reading both keys.
//!
//! The walk is resumable: its progress (column and last row id) is saved
//! after every batch, and each value is replaced only if it still holds
//! what was read, so a request that rewrote a row meanwhile (under the
//! current key) wins and a killed rotation can be re-run from where it
//! stopped. A last full sweep then catches values an instance that had not
//! yet loaded the new key sealed under the old one behind the cursor; only
//! after it is the rotation recorded as finished and the old key dropped.
//!
//! Keyed hashes are not re-sealed: recovery-code lookups are rebuilt from
//! the sealed code; one-time codes (minutes) and CSRF tokens are checked
//! under every key held until the old one goes; throttle counters, keyed
//! by the current key, start over.

pub mod store;
#[cfg(test)]
mod tests;

use crate::crypto::{CryptoError, HashPurpose, KeyId, Keyring, SealedColumn};
use crate::error::StoreError;
use crate::ports::{Clock, Rng};
use store::{RotationRecord, RotationStore};

/// The server secret holding the Web Push (VAPID) key once a rotation has
/// pinned it.
pub const VAPID_SECRET: &str = "vapid";

#[derive(Debug, thiserror::Error)]
pub enum RotationError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the pinned {0} secret cannot be opened with the keys held: {1}")]
    Secret(&'static str, CryptoError),
}

/// What one run did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub resealed: u64,
    /// Values no key held opens (already unreadable before the rotation):
    /// left as they are, by column and row id.
    pub unreadable: Vec<(SealedColumn, String)>,
    /// A run that found the rotation to this key finished already.
    pub was_finished: bool,
}

/// How many values each key holds, by column.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Census {
    pub rows: Vec<(SealedColumn, Option<KeyId>, u64)>,
}

impl Census {
    /// Values sealed under any key but `key`.
    pub fn not_under(&self, key: KeyId) -> u64 {
        self.rows.iter().filter(|(_, k, _)| *k != Some(key)).map(|(_, _, n)| n).sum()
    }
}

pub struct KeyRotation<'a> {
    store: &'a dyn RotationStore,
    keys: &'a Keyring,
    clock: &'a dyn Clock,
    rng: &'a dyn Rng,
}

impl<'a> KeyRotation<'a> {
    pub fn new(store: &'a dyn RotationStore, keys: &'a Keyring, clock: &'a dyn Clock, rng: &'a dyn Rng) -> Self {
        Self { store, keys, clock, rng }
    }

    /// The VAPID seed companions' subscriptions are bound to, if a rotation
    /// has pinned it (before that it is derived from the original key).
    pub async fn pinned_vapid_seed(&self) -> Result<Option<[u8; 32]>, RotationError> {
        let Some(sealed) = self.store.server_secret(VAPID_SECRET).await? else { return Ok(None) };
        let seed = self
            .keys
            .open(&sealed, SealedColumn::ServerSecret.field(VAPID_SECRET))
            .map_err(|e| RotationError::Secret(VAPID_SECRET, e))?;
        Ok(seed.try_into().ok())
    }

    /// Stores the VAPID seed sealed, before anything moves off the key it is
    /// derived from, so paired companions keep receiving pushes. Every
    /// instance agrees on the first one stored.
    pub async fn pin_vapid_seed(&self, seed: &[u8; 32]) -> Result<bool, RotationError> {
        let sealed = self.keys.seal(seed, SealedColumn::ServerSecret.field(VAPID_SECRET), self.rng);
        Ok(self.store.add_server_secret(VAPID_SECRET, &sealed, self.clock.now()).await?)
    }

    /// Re-seals every value under the current key, `batch` rows at a time,
    /// resuming a rotation to the same key that stopped part-way. `progress`
    /// hears each batch: its column and the values it re-sealed.
    pub async fn run(
        &self,
        batch: i64,
        progress: &mut (dyn FnMut(SealedColumn, u64) + Send),
    ) -> Result<Report, RotationError> {
        let target = self.keys.current_id();
        let mut report = Report::default();
        let mut record = match self.store.rotation().await? {
            Some(r) if r.target == target.to_string() => r,
            _ => RotationRecord {
                target: target.to_string(),
                started_at: self.clock.now(),
                finished_at: None,
                column: SealedColumn::ALL[0].name().to_owned(),
                cursor: String::new(),
                resealed: 0,
            },
        };
        report.was_finished = record.finished_at.is_some();
        if !report.was_finished {
            self.store.save_rotation(&record).await?;
            let start = SealedColumn::from_name(&record.column)
                .and_then(|c| SealedColumn::ALL.iter().position(|x| *x == c))
                .unwrap_or(0);
            for (i, column) in SealedColumn::ALL.into_iter().enumerate().skip(start) {
                if i > start {
                    column.name().clone_into(&mut record.column);
                    record.cursor.clear();
                }
                loop {
                    let (done, last) = self.batch(column, &record.cursor, batch, &mut report).await?;
                    let Some(last) = last else { break };
                    record.cursor = last;
                    record.resealed += i64::try_from(done).unwrap_or(i64::MAX);
                    self.store.save_rotation(&record).await?;
                    progress(column, done);
                }
            }
        }
        // The sweep behind the cursor: values sealed under the old key by an
        // instance that had not loaded the new one yet.
        for column in SealedColumn::ALL {
            let mut cursor = String::new();
            loop {
                let (done, last) = self.batch(column, &cursor, batch, &mut report).await?;
                let Some(last) = last else { break };
                cursor = last;
                if done > 0 {
                    record.resealed += i64::try_from(done).unwrap_or(i64::MAX);
                    progress(column, done);
                }
            }
        }
        if record.finished_at.is_none() {
            record.finished_at = Some(self.clock.now());
            self.store.save_rotation(&record).await?;
        }
        Ok(report)
    }

    /// One batch of a column after `after`: how many values it re-sealed and
    /// the last row id it saw (`None` when the column has no more rows).
    async fn batch(
        &self,
        column: SealedColumn,
        after: &str,
        limit: i64,
        report: &mut Report,
    ) -> Result<(u64, Option<String>), RotationError> {
        let rows = self.store.sealed_rows(column, after, limit.max(1)).await?;
        let target = self.keys.current_id();
        let mut done = 0;
        for row in &rows {
            if KeyId::of_sealed(&row.sealed) == Some(target) {
                continue;
            }
            let field = column.field(&row.id);
            let Ok(plain) = self.keys.open(&row.sealed, field) else {
                if !report.unreadable.iter().any(|(c, id)| *c == column && *id == row.id) {
                    report.unreadable.push((column, row.id.clone()));
                }
                continue;
            };
            let sealed = self.keys.seal(&plain, field, self.rng);
            let lookup = (column == SealedColumn::RecoveryCode)
                .then(|| self.keys.keyed_hash(HashPurpose::RecoveryCodeLookup, &[plain.as_slice()]));
            if self.store.reseal(column, &row.id, &row.sealed, &sealed, lookup.as_ref().map(|l| &l[..])).await? {
                done += 1;
                report.resealed += 1;
            }
        }
        Ok((done, rows.last().map(|r| r.id.clone())))
    }

    /// Counts the values under each key (`None`: too short to name one).
    pub async fn census(&self, batch: i64) -> Result<Census, RotationError> {
        let mut census = Census::default();
        for column in SealedColumn::ALL {
            let mut counts: Vec<(Option<KeyId>, u64)> = Vec::new();
            let mut cursor = String::new();
            loop {
                let rows = self.store.sealed_rows(column, &cursor, batch.max(1)).await?;
                let Some(last) = rows.last() else { break };
                cursor.clone_from(&last.id);
                for row in &rows {
                    let key = KeyId::of_sealed(&row.sealed);
                    match counts.iter_mut().find(|(k, _)| *k == key) {
                        Some((_, n)) => *n += 1,
                        None => counts.push((key, 1)),
                    }
                }
            }
            counts.sort();
            census.rows.extend(counts.into_iter().map(|(k, n)| (column, k, n)));
        }
        Ok(census)
    }

    pub async fn last_rotation(&self) -> Result<Option<RotationRecord>, RotationError> {
        Ok(self.store.rotation().await?)
    }
}
