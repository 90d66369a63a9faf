//! argon2id with the OWASP parameters (19 MiB, 2 passes, 1 lane), off the async threads on
//! a fixed pool of worker threads with a short bounded queue: each hash needs 19 MiB, so the
//! number running at once bounds the memory a flood of sign-ups or log-ins can take, and a
//! request beyond the queue is refused at once (503) instead of waiting or allocating.
//! Each worker hashes into one block buffer it keeps for its life: no hash allocates, so the
//! allocator has nothing to hold on to (per-hash buffers were kept by glibc, 19 MiB a hash,
//! until hundreds of MiB).

use std::sync::Arc;

use anyhow::Context as _;
use std::cell::RefCell;

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{Output, ParamsString, PasswordHash, SaltString};
use argon2::{Algorithm, Argon2, Block, Params, Version};

use crate::application::ports::{HashingBusy, PasswordHasher};
use crate::domain::Password;

pub(crate) struct Argon2idHasher {
    /// A real hash of a random password: unknown accounts are verified against it.
    dummy: Arc<str>,
    pool: HashPool,
}

type Job = Box<dyn FnOnce() + Send>;

/// `threads` long-lived workers fed through a queue of `queue` waiting jobs. A worker idle
/// for [`IDLE_RELEASE`] gives its hash buffer back, so a quiet process does not keep
/// `threads` x 19 MiB.
struct HashPool {
    jobs: crossbeam_channel::Sender<Job>,
}

const IDLE_RELEASE: std::time::Duration = std::time::Duration::from_secs(10);

impl HashPool {
    fn new(threads: usize, queue: usize) -> anyhow::Result<Self> {
        let (jobs, receiver) = crossbeam_channel::bounded::<Job>(queue);
        for i in 0..threads.max(1) {
            let receiver = receiver.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{i}"))
                .spawn(move || loop {
                    match receiver.recv_timeout(IDLE_RELEASE) {
                        Ok(job) => job(),
                        Err(crossbeam_channel::RecvTimeoutError::Timeout) => release_blocks(),
                        // The pool's sender is dropped with the hasher: the workers then end.
                        Err(crossbeam_channel::RecvTimeoutError::Disconnected) => break,
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
                crossbeam_channel::TrySendError::Full(_) => anyhow::Error::new(HashingBusy),
                crossbeam_channel::TrySendError::Disconnected(_) => {
                    anyhow::anyhow!("password hashing pool stopped")
                }
            })?;
        result.await.context("password hashing worker stopped")
    }
}

/// 19 MiB of memory per hash (OWASP).
const M_COST: u32 = 19 * 1024;

fn params() -> anyhow::Result<Params> {
    Params::new(M_COST, 2, 1, None).map_err(|e| anyhow::anyhow!("argon2 params: {e}"))
}

thread_local! {
    /// This worker's argon2 memory, sized for [`params`], reused by every hash it computes
    /// until the worker is idle.
    static BLOCKS: RefCell<Vec<Block>> = const { RefCell::new(Vec::new()) };
}

/// A buffer of `count` blocks whose allocation is larger than glibc's largest dynamic mmap
/// threshold (32 MiB on 64-bit): glibc then always maps it on its own and unmaps it when
/// freed, so an idle worker's release really returns the memory (a 19 MiB allocation is
/// served from an arena after the first one, and an arena rarely shrinks). Only the `count`
/// blocks used are ever touched, so only they are resident.
fn mapped_blocks(count: usize) -> Vec<Block> {
    const RESERVE: usize = 33 * 1024 * 1024 / std::mem::size_of::<Block>();
    let mut blocks = Vec::with_capacity(RESERVE.max(count));
    blocks.resize(count, Block::default());
    blocks
}

fn release_blocks() {
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        if !blocks.is_empty() {
            *blocks = Vec::new();
        }
    });
}

/// Runs argon2id with `params` over `password` and `salt` into `out`, in this thread's
/// buffer when the parameters are the standard ones (a hash stored with others gets a
/// buffer of its own, once).
fn compute(params: &Params, password: &[u8], salt: &[u8], out: &mut [u8]) -> anyhow::Result<()> {
    let argon = Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone());
    let fail = |e: argon2::Error| anyhow::anyhow!("argon2: {e}");
    if params.m_cost() != M_COST {
        return argon.hash_password_into(password, salt, out).map_err(fail);
    }
    BLOCKS.with(|blocks| {
        let mut blocks = blocks.borrow_mut();
        if blocks.len() != params.block_count() {
            *blocks = mapped_blocks(params.block_count());
        }
        argon
            .hash_password_into_with_memory(password, salt, out, &mut blocks[..])
            .map_err(fail)
    })
}

fn hash_blocking(password: &str) -> anyhow::Result<String> {
    let params = params()?;
    let salt = SaltString::generate(&mut OsRng);
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("salt: {e}"))?;
    let mut out = [0u8; Params::DEFAULT_OUTPUT_LEN];
    compute(&params, password.as_bytes(), salt_bytes, &mut out)?;
    let phc = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(&params).map_err(|e| anyhow::anyhow!("params: {e}"))?,
        salt: Some(salt.as_salt()),
        hash: Some(Output::new(&out).map_err(|e| anyhow::anyhow!("output: {e}"))?),
    };
    Ok(phc.to_string())
}

/// Checks `password` against a stored PHC string, comparing in constant time.
fn verify_blocking(password: &str, stored: &str) -> anyhow::Result<bool> {
    let parsed =
        PasswordHash::new(stored).map_err(|e| anyhow::anyhow!("stored hash unreadable: {e}"))?;
    let (Some(salt), Some(expected)) = (parsed.salt, parsed.hash) else {
        anyhow::bail!("stored hash has no salt or output");
    };
    let params = Params::try_from(&parsed).map_err(|e| anyhow::anyhow!("stored params: {e}"))?;
    let mut salt_bytes = [0u8; 64];
    let salt_bytes = salt
        .decode_b64(&mut salt_bytes)
        .map_err(|e| anyhow::anyhow!("stored salt: {e}"))?;
    let mut out = vec![0u8; expected.len()];
    compute(&params, password.as_bytes(), salt_bytes, &mut out)?;
    let actual = Output::new(&out).map_err(|e| anyhow::anyhow!("output: {e}"))?;
    // `Output`'s equality is constant-time.
    Ok(actual == expected)
}

impl Argon2idHasher {
    /// `threads` hashes at once, `queue` more waiting; beyond that, [`HashingBusy`].
    pub(crate) fn new(threads: usize, queue: usize) -> anyhow::Result<Self> {
        let pool = HashPool::new(threads, queue)?;
        // Computed on a worker, so its memory is a worker's buffer too.
        let (done, dummy) = std::sync::mpsc::channel();
        pool.jobs
            .send(Box::new(move || {
                let random = uuid::Uuid::new_v4().to_string();
                let _ = done.send(hash_blocking(&random));
            }))
            .map_err(|_| anyhow::anyhow!("password hashing pool stopped"))?;
        let dummy = dummy
            .recv()
            .map_err(|_| anyhow::anyhow!("password hashing pool stopped"))??;
        Ok(Self {
            dummy: dummy.into(),
            pool,
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
            .run(move || verify_blocking(&password, &hash))
            .await??;
        Ok(ok && known)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn hashes_are_standard_phc_strings_that_the_reference_verifier_accepts() {
        use argon2::password_hash::PasswordVerifier as _;
        let stored = hash_blocking("correct horse battery").unwrap_or_default();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );
        let parsed = PasswordHash::new(&stored).unwrap_or_else(|e| panic!("{e}"));
        assert!(Argon2::default()
            .verify_password(b"correct horse battery", &parsed)
            .is_ok());
        assert!(verify_blocking("correct horse battery", &stored).unwrap_or(false));
        assert!(!verify_blocking("correct horse batterx", &stored).unwrap_or(true));
        // A hash made elsewhere with other parameters still verifies.
        let other = argon2::password_hash::PasswordHasher::hash_password(
            &Argon2::new(
                Algorithm::Argon2id,
                Version::V0x13,
                Params::new(8 * 1024, 1, 1, None).unwrap_or_else(|e| panic!("{e}")),
            ),
            b"pw-elsewhere",
            &SaltString::generate(&mut OsRng),
        )
        .map(|h| h.to_string())
        .unwrap_or_default();
        assert!(verify_blocking("pw-elsewhere", &other).unwrap_or(false));
    }

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
