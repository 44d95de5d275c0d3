//! `Hasher`: Argon2id off the async workers, bounded. A narrow service the
//! sign-in and account services share; it holds no store.

use std::sync::Arc;

use crate::accounts::password::{Password, PasswordHashing};
use crate::error::InternalError;
use crate::ports::Rng;

pub(crate) struct Hasher {
    hashing: Arc<PasswordHashing>,
    rng: Arc<dyn Rng>,
    /// Bounds concurrent Argon2id work: 32 parallel sign-ins must not mean
    /// 32 × 19 MiB and 32 threads fighting over two cores (docs/performance.md).
    permits: tokio::sync::Semaphore,
}

impl Hasher {
    pub fn new(hashing: Arc<PasswordHashing>, rng: Arc<dyn Rng>, parallel: usize) -> Self {
        Self { hashing, rng, permits: tokio::sync::Semaphore::new(parallel.max(1)) }
    }

    #[cfg(test)]
    pub fn hashing(&self) -> &Arc<PasswordHashing> {
        &self.hashing
    }

    /// Argon2id takes tens of milliseconds of CPU: keep it off the async
    /// workers so one sign-in cannot stall other requests.
    pub async fn hash(&self, password: Password) -> Result<String, InternalError> {
        let hashing = Arc::clone(&self.hashing);
        let rng = Arc::clone(&self.rng);
        let _permit = self.permit().await?;
        tokio::task::spawn_blocking(move || hashing.hash(&password, rng.as_ref()))
            .await
            .map_err(|e| InternalError(format!("hashing task: {e}")))?
            .map_err(InternalError::from)
    }

    /// Verifies against `stored`, or against the dummy hash when there is no
    /// account, so both cost the same (§2.12).
    pub async fn verify(&self, password: Password, stored: Option<String>) -> Result<bool, InternalError> {
        let hashing = Arc::clone(&self.hashing);
        let _permit = self.permit().await?;
        tokio::task::spawn_blocking(move || hashing.verify(&password, stored.as_deref()))
            .await
            .map_err(|e| InternalError(format!("hashing task: {e}")))
    }

    async fn permit(&self) -> Result<tokio::sync::SemaphorePermit<'_>, InternalError> {
        self.permits.acquire().await.map_err(|e| InternalError(format!("hash permits: {e}")))
    }
}
