//! argon2id with the OWASP parameters (19 MiB, 2 passes, 1 lane), off the async threads on
//! a fixed pool of worker threads with a short bounded queue: each hash needs 19 MiB, so the
//! number running at once bounds the memory a flood of sign-ups or log-ins can take, and a
//! request beyond the queue is refused at once (503) instead of waiting or allocating.

use std::sync::mpsc::TrySendError;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher as _, PasswordVerifier as _, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::application::ports::{HashingBusy, PasswordHasher};
use crate::domain::Password;

pub(crate) struct Argon2idHasher {
    /// A real hash of a random password: unknown accounts are verified against it.
    dummy: Arc<str>,
    pool: HashPool,
}

type Job = Box<dyn FnOnce() + Send>;

/// `threads` long-lived workers (their allocator arenas keep one hash's memory each, reused)
/// fed through a queue of `queue` waiting jobs.
struct HashPool {
    jobs: std::sync::mpsc::SyncSender<Job>,
}

impl HashPool {
    fn new(threads: usize, queue: usize) -> anyhow::Result<Self> {
        let (jobs, receiver) = std::sync::mpsc::sync_channel::<Job>(queue);
        let receiver = Arc::new(Mutex::new(receiver));
        for i in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || loop {
                    // The pool's sender is dropped with the hasher: the workers then end.
                    let job = match receiver.lock() {
                        Ok(r) => r.recv(),
                        Err(poisoned) => poisoned.into_inner().recv(),
                    };
                    match job {
                        Ok(job) => job(),
                        Err(_) => break,
                    }
                })
                .context("cannot start a password hashing thread")?;
        }
        Ok(Self { jobs })
    }

    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> anyhow::Result<T> {
        let (done, result) = tokio::sync::oneshot::channel();
        self.jobs
            .try_send(Box::new(move || {
                let _ = done.send(work());
            }))
            .map_err(|e| match e {
                TrySendError::Full(_) => anyhow::Error::new(HashingBusy),
                TrySendError::Disconnected(_) => anyhow::anyhow!("password hashing pool stopped"),
            })?;
        result.await.context("password hashing worker stopped")
    }
}

fn argon() -> anyhow::Result<Argon2<'static>> {
    let params =
        Params::new(19 * 1024, 2, 1, None).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let salt = SaltString::generate(&mut OsRng);
    let hash = argon()?
        .hash_password(password.as_bytes(), &salt)
        .map_err(|e| anyhow::anyhow!("argon2 hash: {e}"))?;
    Ok(hash.to_string())
}

impl Argon2idHasher {
    /// `threads` hashes at once, `queue` more waiting; beyond that, [`HashingBusy`].
    pub(crate) fn new(threads: usize, queue: usize) -> anyhow::Result<Self> {
        let random = uuid::Uuid::new_v4().to_string();
        Ok(Self {
            dummy: hash_blocking(&random)?.into(),
            pool: HashPool::new(threads, queue)?,
        })
    }
}

#[async_trait::async_trait]
impl PasswordHasher for Argon2idHasher {
    async fn hash(&self, password: &Password) -> anyhow::Result<String> {
        let password = password.expose().to_owned();
        self.pool.run(move || hash_blocking(&password)).await?
    }

    async fn verify(&self, password: &str, hash: Option<&str>) -> anyhow::Result<bool> {
        let known = hash.is_some();
        let hash: Arc<str> = hash.map_or_else(|| self.dummy.clone(), Arc::from);
        let password = password.to_owned();
        let ok = self
            .pool
            .run(move || -> anyhow::Result<bool> {
                let parsed = PasswordHash::new(&hash)
                    .map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
                Ok(argon()?
                    .verify_password(password.as_bytes(), &parsed)
                    .is_ok())
            })
            .await??;
        Ok(ok && known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn beyond_the_workers_and_the_queue_a_hash_is_refused_not_queued() {
        let pool = Arc::new(HashPool::new(1, 2).unwrap_or_else(|e| panic!("{e}")));
        let (release, wait) = std::sync::mpsc::channel::<()>();
        let wait = Arc::new(Mutex::new(wait));
        let (started, first_started) = std::sync::mpsc::channel::<()>();
        let block = move |wait: Arc<Mutex<std::sync::mpsc::Receiver<()>>>| {
            let started = started.clone();
            move || {
                let _ = started.send(());
                if let Ok(w) = wait.lock() {
                    let _ = w.recv();
                }
            }
        };
        let spawn = |job| {
            let pool = pool.clone();
            tokio::spawn(async move { pool.run(job).await })
        };
        // One running (the worker has taken it), two waiting: the fourth is refused at once.
        let mut running = vec![spawn(block(wait.clone()))];
        assert!(tokio::task::spawn_blocking(move || first_started.recv())
            .await
            .is_ok_and(|r| r.is_ok()));
        running.push(spawn(block(wait.clone())));
        running.push(spawn(block(wait.clone())));
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let refused = pool.run(|| ()).await;
        assert!(refused.is_err_and(|e| e.downcast_ref::<HashingBusy>().is_some()));
        for _ in 0..3 {
            let _ = release.send(());
        }
        for job in running {
            assert!(matches!(job.await, Ok(Ok(()))));
        }
        assert!(pool.run(|| 7).await.is_ok_and(|n| n == 7));
    }
}
