//! What a key rotation needs from storage: every sealed value by column, a
//! compare-and-swap to replace one, its own progress, and the server-wide
//! secrets that are sealed rather than derived.

use async_trait::async_trait;

use crate::crypto::SealedColumn;
use crate::error::StoreError;
use crate::time::Timestamp;

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedRow {
    pub id: String,
    pub sealed: Vec<u8>,
}

/// A rotation towards one key, and how far it got: every column before
/// `column` is done, and `column` up to and including the row `cursor`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RotationRecord {
    /// The key every value is re-sealed under (hex key id).
    pub target: String,
    pub started_at: Timestamp,
    pub finished_at: Option<Timestamp>,
    pub column: String,
    pub cursor: String,
    pub resealed: i64,
}

#[async_trait]
pub trait RotationStore: Send + Sync {
    /// Up to `limit` non-empty sealed values of a column with an id after
    /// `after`, in id order.
    async fn sealed_rows(&self, column: SealedColumn, after: &str, limit: i64) -> Result<Vec<SealedRow>, StoreError>;
    /// Replaces one value if it still holds `old` (a request may have
    /// rewritten or deleted it since it was read); with a recovery code, its
    /// lookup hash in the same statement. True when replaced.
    async fn reseal(
        &self,
        column: SealedColumn,
        id: &str,
        old: &[u8],
        new: &[u8],
        lookup: Option<&[u8]>,
    ) -> Result<bool, StoreError>;
    /// The most recent rotation, finished or not.
    async fn rotation(&self) -> Result<Option<RotationRecord>, StoreError>;
    /// Records a rotation's progress (inserted the first time, by target).
    async fn save_rotation(&self, record: &RotationRecord) -> Result<(), StoreError>;
    async fn server_secret(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError>;
    /// Stores a server-wide secret unless one of that name exists (every
    /// instance must agree on it); true when this call stored it.
    async fn add_server_secret(&self, name: &str, sealed: &[u8], now: Timestamp) -> Result<bool, StoreError>;
}
