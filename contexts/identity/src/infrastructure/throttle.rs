//! Failed-login counting in memory, per account and per client IP, over a fixed window.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::application::ports::{LoginThrottle, ThrottleKey};

pub(crate) struct MemoryThrottle {
    window: Duration,
    per_account: u32,
    per_ip: u32,
    counts: moka::sync::Cache<ThrottleKey, std::sync::Arc<Mutex<(u32, Instant)>>>,
}

impl MemoryThrottle {
    pub(crate) fn new(window: Duration, per_account: u32, per_ip: u32) -> Self {
        Self {
            window,
            per_account,
            per_ip,
            counts: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(window)
                .build(),
        }
    }

    fn limit(&self, key: &ThrottleKey) -> u32 {
        match key {
            ThrottleKey::Account(_) => self.per_account,
            ThrottleKey::Ip(_) => self.per_ip,
        }
    }
}

impl LoginThrottle for MemoryThrottle {
    fn check(&self, keys: &[ThrottleKey]) -> Result<(), u64> {
        for key in keys {
            if let Some(entry) = self.counts.get(key) {
                if let Ok(guard) = entry.lock() {
                    let (count, since) = *guard;
                    let elapsed = since.elapsed();
                    if count >= self.limit(key) && elapsed < self.window {
                        return Err((self.window - elapsed).as_secs().max(1));
                    }
                }
            }
        }
        Ok(())
    }

    fn record_failure(&self, keys: &[ThrottleKey]) {
        for key in keys {
            let entry = self.counts.get_with(key.clone(), || {
                std::sync::Arc::new(Mutex::new((0, Instant::now())))
            });
            let mut guard = match entry.lock() {
                Ok(guard) => guard,
                Err(poisoned) => poisoned.into_inner(),
            };
            if guard.1.elapsed() >= self.window {
                *guard = (0, Instant::now());
            }
            guard.0 += 1;
        }
    }

    fn clear(&self, key: &ThrottleKey) {
        self.counts.invalidate(key);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_after_the_limit_and_names_a_wait() {
        let t = MemoryThrottle::new(Duration::from_secs(60), 3, 10);
        let keys = [
            ThrottleKey::Account("a@x.io".into()),
            ThrottleKey::Ip("1.2.3.4".into()),
        ];
        for _ in 0..3 {
            assert!(t.check(&keys).is_ok());
            t.record_failure(&keys);
        }
        let wait = t.check(&keys).err().unwrap_or_default();
        assert!((1..=60).contains(&wait));
        t.clear(&keys[0]);
        assert!(t.check(&keys).is_ok());
    }
}
