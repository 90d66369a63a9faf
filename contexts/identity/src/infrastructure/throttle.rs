//! Attempt counting in memory over a fixed window per key: failed log-ins per (account,
//! client address) and per client address, sign-ups per client address.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use crate::application::ports::{LoginThrottle, ThrottleKey};

pub(crate) struct Limits {
    pub(crate) window: Duration,
    pub(crate) per_account_and_client: u32,
    pub(crate) per_client: u32,
    /// `None`: sign-ups are not limited (EMPORIUM_RATE_LIMIT=off).
    pub(crate) sign_ups_per_client: Option<u32>,
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
        match key {
            ThrottleKey::AccountFrom { .. } => Some(self.limits.per_account_and_client),
            ThrottleKey::Client(_) => Some(self.limits.per_client),
            ThrottleKey::SignUpFrom(_) => self.limits.sign_ups_per_client,
        }
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

impl LoginThrottle for MemoryThrottle {
    fn attempt(&self, keys: &[ThrottleKey]) -> Result<(), u64> {
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

    fn give_back(&self, keys: &[ThrottleKey]) {
        for key in keys {
            if let Some(counter) = self.counts.get(key) {
                let mut guard = lock(&counter);
                guard.0 = guard.0.saturating_sub(1);
            }
        }
    }

    fn clear(&self, key: &ThrottleKey) {
        self.counts.invalidate(key);
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
            assert!(t.attempt(&attacker).is_ok());
        }
        let wait = t.attempt(&attacker).err().unwrap_or_default();
        assert!((1..=60).contains(&wait));
        // The owner, elsewhere, is not locked out.
        let owner = keys("a@x.io", "5.6.7.8");
        assert!(t.attempt(&owner).is_ok());
    }

    #[test]
    fn a_success_clears_the_account_and_gives_the_client_its_attempt_back() {
        let t = throttle();
        let k = keys("b@x.io", "1.1.1.1");
        for _ in 0..2 {
            assert!(t.attempt(&k).is_ok());
        }
        assert!(t.attempt(&k).is_ok());
        t.clear(&k[0]);
        t.give_back(&k[1..]);
        for _ in 0..3 {
            assert!(t.attempt(&k).is_ok());
        }
        assert!(t.attempt(&k).is_err());
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
                        if t.attempt(&keys("c@x.io", "9.9.9.9")).is_ok() {
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
        assert!(t.attempt(&k).is_ok());
        assert!(t.attempt(&k).is_ok());
        assert!(t.attempt(&k).is_err());
        let off = MemoryThrottle::new(Limits {
            window: Duration::from_secs(60),
            per_account_and_client: 1,
            per_client: 1,
            sign_ups_per_client: None,
        });
        for _ in 0..10 {
            assert!(off.attempt(&k).is_ok());
        }
    }
}
