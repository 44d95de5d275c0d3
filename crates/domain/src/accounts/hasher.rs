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
        let rng = Arc::clone(&self.rng);
        self.blocking(move |hashing| hashing.hash(&password, rng.as_ref())).await?.map_err(InternalError::from)
    }

    /// Verifies against `stored`, or against the dummy hash when there is no
    /// account, so both cost the same (§2.12).
    pub async fn verify(&self, password: Password, stored: Option<String>) -> Result<bool, InternalError> {
        self.blocking(move |hashing| hashing.verify(&password, stored.as_deref())).await
    }

    /// Runs `work` on a blocking thread once a permit is free; the permit
    /// ends with `work`, whatever becomes of the caller.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHashing) -> T + Send + 'static,
    ) -> Result<T, InternalError> {
        let permit =
            Arc::clone(&self.permits).acquire_owned().await.map_err(|e| InternalError(format!("hash permits: {e}")))?;
        let hashing = Arc::clone(&self.hashing);
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            work(&hashing)
        })
        .await
        .map_err(|e| InternalError(format!("hashing task: {e}")))
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

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_burst_that_hangs_up_mid_hash_lets_no_second_hash_run_beside_it() {
        let cost = HashCost { memory_kib: 4096, iterations: 20, parallelism: 1 };
        let hashing = Arc::new(PasswordHashing::new(cost, &OsRng).expect("hashing"));
        let hasher = Arc::new(Hasher::new(Arc::clone(&hashing), Arc::new(OsRng), 1));
        let burst = |n: usize| {
            let barrier = Arc::new(tokio::sync::Barrier::new(n));
            (0..n)
                .map(|_| {
                    let (hasher, barrier) = (Arc::clone(&hasher), Arc::clone(&barrier));
                    tokio::spawn(async move {
                        barrier.wait().await;
                        let password = Password::for_sign_in("correct horse battery").expect("password");
                        hasher.verify(password, None).await
                    })
                })
                .collect::<Vec<_>>()
        };
        // 50 sign-ins released together; all hang up once one hash runs.
        let first = burst(50);
        while hasher.permits.available_permits() > 0 {
            tokio::task::yield_now().await;
        }
        first.iter().for_each(tokio::task::JoinHandle::abort);
        // 20 more arrive while the dropped request's hash still runs.
        for task in burst(20) {
            assert!(!task.await.expect("task").expect("verify"), "nothing matches the dummy");
        }
        for task in first {
            assert!(task.await.is_err(), "every request of the first burst was dropped");
        }
        // One permit: had a hash ever run beside another, the second would
        // have found no spare buffer and allocated its own.
        assert_eq!(hashing.buffers_allocated(), 1, "Argon2id ran beside itself");
    }
}
