//! `Hasher`: Argon2id off the async workers, bounded. A narrow service the
//! sign-in and account services share; it holds no store.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};

use crate::accounts::password::{Password, PasswordHashing};
use crate::error::InternalError;
use crate::ports::Rng;

/// One hash to run, with where its answer goes.
type Job = Box<dyn FnOnce(&PasswordHashing) + Send>;

pub(crate) struct Hasher {
    hashing: Arc<PasswordHashing>,
    rng: Arc<dyn Rng>,
    /// Argon2id runs on `parallel` threads of its own, fed from one queue:
    /// 32 parallel sign-ins must not mean 32 × 19 MiB and 32 threads
    /// fighting over two cores (docs/performance.md). A thread that ends a
    /// hash takes the next one from the queue at once; with a semaphore in
    /// front of `spawn_blocking`, each hash waited for an async worker to
    /// be woken and for a pool thread to be woken after it, and the cores
    /// sat idle 7% of a sign-in load. A hash that has started runs to its
    /// end whatever becomes of its request, so a flood of requests that
    /// hang up still runs no more hashes at once than there are threads;
    /// one still queued when its request went away is skipped.
    parallel: usize,
    /// Started on first use: a process that never hashes has no threads.
    /// The threads end once the `Hasher` is dropped.
    queue: Mutex<Option<mpsc::Sender<Job>>>,
    running: Arc<AtomicUsize>,
}

impl Hasher {
    pub fn new(hashing: Arc<PasswordHashing>, rng: Arc<dyn Rng>, parallel: usize) -> Self {
        Self { hashing, rng, parallel: parallel.max(1), queue: Mutex::new(None), running: Arc::default() }
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

    /// Runs `work` on a hashing thread once one is free.
    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce(&PasswordHashing) -> T + Send + 'static,
    ) -> Result<T, InternalError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |hashing| {
            if !tx.is_closed() {
                let _ = tx.send(work(hashing));
            }
        });
        self.submit(job)?;
        rx.await.map_err(|_| InternalError("a hashing thread ended before its hash".to_owned()))
    }

    fn submit(&self, job: Job) -> Result<(), InternalError> {
        let mut queue = self.queue.lock().unwrap_or_else(PoisonError::into_inner);
        let sender = match queue.as_ref() {
            Some(sender) => sender,
            None => queue.insert(self.start()?),
        };
        sender.send(job).map_err(|_| InternalError("the hashing threads have ended".to_owned()))
    }

    fn start(&self) -> Result<mpsc::Sender<Job>, InternalError> {
        let (sender, jobs) = mpsc::channel::<Job>();
        let jobs = Arc::new(Mutex::new(jobs));
        for n in 0..self.parallel {
            let (jobs, hashing, running) = (Arc::clone(&jobs), Arc::clone(&self.hashing), Arc::clone(&self.running));
            std::thread::Builder::new()
                .name(format!("argon2id-{n}"))
                .spawn(move || {
                    loop {
                        // The lock is held only while waiting for a job, not while hashing.
                        let next = jobs.lock().unwrap_or_else(PoisonError::into_inner).recv();
                        let Ok(job) = next else { break };
                        running.fetch_add(1, Ordering::SeqCst);
                        // A hash that panics answers its request with an error (its
                        // sender is dropped) and leaves the thread to the next.
                        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| job(&hashing)));
                        running.fetch_sub(1, Ordering::SeqCst);
                    }
                })
                .map_err(|e| InternalError(format!("hashing thread: {e}")))?;
        }
        Ok(sender)
    }

    /// Hashes running now (tests).
    #[cfg(test)]
    fn running(&self) -> usize {
        self.running.load(Ordering::SeqCst)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::accounts::password::HashCost;
    use crate::ports::OsRng;

    #[tokio::test]
    async fn a_hash_whose_request_went_away_keeps_its_thread_until_it_ends() {
        // Dear enough to still run when the request is dropped.
        let cost = HashCost { memory_kib: 8192, iterations: 40, parallelism: 1 };
        let hashing = Arc::new(PasswordHashing::new(cost, &OsRng).expect("hashing"));
        let hasher = Arc::new(Hasher::new(hashing, Arc::new(OsRng), 1));
        let password = || Password::for_sign_in("correct horse battery").expect("password");

        let running = tokio::spawn({
            let hasher = Arc::clone(&hasher);
            async move { hasher.verify(password(), None).await }
        });
        while hasher.running() == 0 {
            tokio::task::yield_now().await;
        }
        running.abort();
        assert!(running.await.expect_err("aborted").is_cancelled());
        assert_eq!(hasher.running(), 1, "the hash still runs and still holds its thread");

        // The next hash waits for it rather than running beside it.
        let next = tokio::time::timeout(Duration::from_secs(60), hasher.verify(password(), None)).await;
        assert!(!next.expect("the thread came back when the first hash ended").expect("verify"));
        // The thread counts itself idle right after it has answered.
        let idle = async {
            while hasher.running() > 0 {
                tokio::task::yield_now().await;
            }
        };
        tokio::time::timeout(Duration::from_secs(10), idle).await.expect("no hash runs once both have answered");
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
        while hasher.running() == 0 {
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
        // One thread: had a hash ever run beside another, the second would
        // have found no spare buffer and allocated its own.
        assert_eq!(hashing.buffers_allocated(), 1, "Argon2id ran beside itself");
    }
}
