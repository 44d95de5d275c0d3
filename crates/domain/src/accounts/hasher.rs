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
    /// A permit goes with the blocking task, not with the request: a client
    /// that hangs up mid-hash ends its request, not the hash, and a flood of
    /// such requests must still run no more hashes at once than permitted.
    permits: Arc<tokio::sync::Semaphore>,
}

impl Hasher {
    pub fn new(hashing: Arc<PasswordHashing>, rng: Arc<dyn Rng>, parallel: usize) -> Self {
        Self { hashing, rng, permits: Arc::new(tokio::sync::Semaphore::new(parallel.max(1))) }
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
        let permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hashing.hash(&password, rng.as_ref())
        })
        .await
        .map_err(|e| InternalError(format!("hashing task: {e}")))?
        .map_err(InternalError::from)
    }

    /// Verifies against `stored`, or against the dummy hash when there is no
    /// account, so both cost the same (§2.12).
    pub async fn verify(&self, password: Password, stored: Option<String>) -> Result<bool, InternalError> {
        let hashing = Arc::clone(&self.hashing);
        let permit = self.permit().await?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            hashing.verify(&password, stored.as_deref())
        })
        .await
        .map_err(|e| InternalError(format!("hashing task: {e}")))
    }

    async fn permit(&self) -> Result<tokio::sync::OwnedSemaphorePermit, InternalError> {
        Arc::clone(&self.permits).acquire_owned().await.map_err(|e| InternalError(format!("hash permits: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::accounts::password::HashCost;
    use crate::ports::OsRng;

    #[tokio::test]
    async fn a_hash_whose_request_went_away_keeps_its_permit_until_it_ends() {
        // Dear enough to still run when the request is dropped.
        let cost = HashCost { memory_kib: 8192, iterations: 40, parallelism: 1 };
        let hashing = Arc::new(PasswordHashing::new(cost, &OsRng).expect("hashing"));
        let hasher = Arc::new(Hasher::new(hashing, Arc::new(OsRng), 1));
        let password = || Password::for_sign_in("correct horse battery").expect("password");

        let running = tokio::spawn({
            let hasher = Arc::clone(&hasher);
            async move { hasher.verify(password(), None).await }
        });
        while hasher.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        running.abort();
        assert!(running.await.expect_err("aborted").is_cancelled());
        assert_eq!(hasher.permits.available_permits(), 0, "the hash still runs and still holds its permit");

        // The next hash waits for it rather than running beside it.
        let next = tokio::time::timeout(Duration::from_secs(60), hasher.verify(password(), None)).await;
        assert!(!next.expect("the permit came back when the first hash ended").expect("verify"));
        assert_eq!(hasher.permits.available_permits(), 1);
    }
}
