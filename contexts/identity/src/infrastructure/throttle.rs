//! Attempt counting over a fixed window per key: failed log-ins per (account, client
//! address) and per client address, sign-ups per client address. In this process's memory
//! ([`MemoryThrottle`]), or in Redis, shared by every instance ([`SharedThrottle`]).

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use platform::shared::SharedState;

use crate::application::ports::{LoginThrottle, ThrottleKey, ThrottleRefusal};

pub(crate) struct Limits {
    pub(crate) window: Duration,
    pub(crate) per_account_and_client: u32,
    pub(crate) per_client: u32,
    /// `None`: sign-ups are not limited (EMPORIUM_RATE_LIMIT=off).
    pub(crate) sign_ups_per_client: Option<u32>,
    /// Password reset requests per address and per client address in the window (`None`:
    /// not limited, with EMPORIUM_RATE_LIMIT=off); the same number of verification links
    /// per account.
    pub(crate) resets_per_address: Option<u32>,
    pub(crate) resets_per_client: Option<u32>,
}

type Counter = Arc<Mutex<(u32, Instant)>>;

pub(crate) struct MemoryThrottle {
    limits: Limits,
    counts: moka::sync::Cache<ThrottleKey, Counter>,
}

impl MemoryThrottle {
    pub(crate) fn new(limits: Limits) -> Self {
        Self {
            counts: moka::sync::Cache::builder()
                .max_capacity(200_000)
                .time_to_live(limits.window)
                .build(),
            limits,
        }
    }

    fn limit(&self, key: &ThrottleKey) -> Option<u32> {
        self.limits.of(key)
    }

    fn counter(&self, key: &ThrottleKey) -> Counter {
        self.counts
            .get_with(key.clone(), || Arc::new(Mutex::new((0, Instant::now()))))
    }
}

fn lock(counter: &Counter) -> MutexGuard<'_, (u32, Instant)> {
    counter
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Limits {
    fn of(&self, key: &ThrottleKey) -> Option<u32> {
        match key {
            ThrottleKey::AccountFrom { .. } => Some(self.per_account_and_client),
            ThrottleKey::Client(_) => Some(self.per_client),
            ThrottleKey::SignUpFrom(_) => self.sign_ups_per_client,
            ThrottleKey::ResetFor(_) => self.resets_per_address,
            ThrottleKey::ResetFrom(_) => self.resets_per_client,
            ThrottleKey::VerifyFor(_) => self.resets_per_address,
        }
    }
}

/// What a key counts, as one string (hashed into the Redis key).
fn material(key: &ThrottleKey) -> (&'static str, String) {
    match key {
        ThrottleKey::AccountFrom { email, client } => {
            ("login-account", format!("{email}|{client}"))
        }
        ThrottleKey::Client(client) => ("login-client", client.clone()),
        ThrottleKey::SignUpFrom(client) => ("sign-up", client.clone()),
        ThrottleKey::ResetFor(email) => ("reset-address", email.clone()),
        ThrottleKey::ResetFrom(client) => ("reset-client", client.clone()),
        ThrottleKey::VerifyFor(user) => ("verify-account", user.clone()),
    }
}

/// The counts in Redis: every instance of identity sees the same ones. Redis unreachable,
/// nothing is let through unchecked (`Unavailable`, answered 503): the throttle is what stops
/// password guessing.
pub(crate) struct SharedThrottle {
    pub(crate) limits: Limits,
    pub(crate) state: Arc<SharedState>,
}

impl SharedThrottle {
    fn key(&self, key: &ThrottleKey) -> String {
        let (purpose, what) = material(key);
        self.state.key(purpose, &what)
    }

    fn failed(&self, what: &str, e: &anyhow::Error) {
        metrics::counter!("emporium_shared_state_failures_total", "use" => "login_throttle")
            .increment(1);
        tracing::warn!(error = %format!("{e:#}"), "log-in throttle: Redis unreachable ({what})");
    }
}

#[async_trait::async_trait]
impl LoginThrottle for SharedThrottle {
    async fn attempt(&self, keys: &[ThrottleKey]) -> Result<(), ThrottleRefusal> {
        let limited: Vec<(String, u32)> = keys
            .iter()
            .filter_map(|k| self.limits.of(k).map(|limit| (self.key(k), limit)))
            .collect();
        if limited.is_empty() {
            return Ok(());
        }
        match self.state.take(&limited, self.limits.window).await {
            Ok(None) => Ok(()),
            Ok(Some(wait)) => Err(ThrottleRefusal::Wait(wait.as_secs().max(1))),
            Err(e) => {
                self.failed("attempt refused", &e);
                Err(ThrottleRefusal::Unavailable)
            }
        }
    }

    async fn give_back(&self, keys: &[ThrottleKey]) {
        let names: Vec<String> = keys.iter().map(|k| self.key(k)).collect();
        if let Err(e) = self.state.give_back(&names).await {
            self.failed("an attempt not given back", &e);
        }
    }

    async fn clear(&self, key: &ThrottleKey) {
        if let Err(e) = self.state.clear(&self.key(key)).await {
            self.failed("a count not cleared", &e);
        }
    }
}

#[async_trait::async_trait]
impl LoginThrottle for MemoryThrottle {
    async fn attempt(&self, keys: &[ThrottleKey]) -> Result<(), ThrottleRefusal> {
        self.attempt_now(keys).map_err(ThrottleRefusal::Wait)
    }

    async fn give_back(&self, keys: &[ThrottleKey]) {
        for key in keys {
            if let Some(counter) = self.counts.get(key) {
                let mut guard = lock(&counter);
                guard.0 = guard.0.saturating_sub(1);
            }
        }
    }

    async fn clear(&self, key: &ThrottleKey) {
        self.counts.invalidate(key);
    }
}

impl MemoryThrottle {
    fn attempt_now(&self, keys: &[ThrottleKey]) -> Result<(), u64> {
        let limited: Vec<(u32, Counter)> = keys
            .iter()
            .filter_map(|k| self.limit(k).map(|limit| (limit, self.counter(k))))
            .collect();
        // Callers pass keys in one order (most specific first), so locks are taken in the
        // same order everywhere and all are held while checking and counting.
        let mut guards: Vec<(u32, MutexGuard<'_, (u32, Instant)>)> =
            limited.iter().map(|(limit, c)| (*limit, lock(c))).collect();
        let window = self.limits.window;
        let mut wait = None;
        for (limit, guard) in &mut guards {
            if guard.1.elapsed() >= window {
                **guard = (0, Instant::now());
            }
            if guard.0 >= *limit {
                let left = window.saturating_sub(guard.1.elapsed()).as_secs().max(1);
                wait = Some(wait.map_or(left, |w: u64| w.max(left)));
            }
        }
        if let Some(wait) = wait {
            return Err(wait);
        }
        for (_, guard) in &mut guards {
            guard.0 += 1;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn throttle() -> MemoryThrottle {
        MemoryThrottle::new(Limits {
            window: Duration::from_secs(60),
            per_account_and_client: 3,
            per_client: 10,
            sign_ups_per_client: Some(2),
            resets_per_address: Some(2),
            resets_per_client: Some(4),
        })
    }

    fn keys(email: &str, client: &str) -> [ThrottleKey; 2] {
        [
            ThrottleKey::AccountFrom {
                email: email.into(),
                client: client.into(),
            },
            ThrottleKey::Client(client.into()),
        ]
    }

    #[test]
    fn an_account_is_limited_per_client_address_not_everywhere() {
        let t = throttle();
        let attacker = keys("a@x.io", "1.2.3.4");
        for _ in 0..3 {
            assert!(t.attempt_now(&attacker).is_ok());
        }
        let wait = t.attempt_now(&attacker).err().unwrap_or_default();
        assert!((1..=60).contains(&wait));
        // The owner, elsewhere, is not locked out.
        let owner = keys("a@x.io", "5.6.7.8");
        assert!(t.attempt_now(&owner).is_ok());
    }

    #[tokio::test]
    async fn a_success_clears_the_account_and_gives_the_client_its_attempt_back() {
        let t = throttle();
        let k = keys("b@x.io", "1.1.1.1");
        for _ in 0..2 {
            assert!(t.attempt_now(&k).is_ok());
        }
        assert!(t.attempt_now(&k).is_ok());
        t.clear(&k[0]).await;
        t.give_back(&k[1..]).await;
        for _ in 0..3 {
            assert!(t.attempt_now(&k).is_ok());
        }
        assert!(t.attempt_now(&k).is_err());
    }

    #[test]
    fn concurrent_attempts_never_exceed_the_limit() {
        let t = Arc::new(throttle());
        let granted = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let threads: Vec<_> = (0..16)
            .map(|_| {
                let (t, granted) = (t.clone(), granted.clone());
                std::thread::spawn(move || {
                    for _ in 0..10 {
                        if t.attempt_now(&keys("c@x.io", "9.9.9.9")).is_ok() {
                            granted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                        }
                    }
                })
            })
            .collect();
        for th in threads {
            assert!(th.join().is_ok());
        }
        assert_eq!(granted.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[test]
    fn sign_ups_are_counted_per_client_and_can_be_off() {
        let t = throttle();
        let k = [ThrottleKey::SignUpFrom("2.2.2.2".into())];
        assert!(t.attempt_now(&k).is_ok());
        assert!(t.attempt_now(&k).is_ok());
        assert!(t.attempt_now(&k).is_err());
        let off = MemoryThrottle::new(Limits {
            window: Duration::from_secs(60),
            per_account_and_client: 1,
            per_client: 1,
            sign_ups_per_client: None,
            resets_per_address: None,
            resets_per_client: None,
        });
        for _ in 0..10 {
            assert!(off.attempt_now(&k).is_ok());
        }
    }
}
