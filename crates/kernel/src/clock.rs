//! The clock port: code that needs "now" asks a `Clock`, so tests can move time.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::time::Timestamp;

pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;
}

/// Wall-clock time.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::now()
    }
}

/// A clock that only moves when told to (tests, simulations).
#[derive(Debug, Clone)]
pub struct ManualClock {
    micros: Arc<AtomicI64>,
}

impl ManualClock {
    pub fn starting_at(at: Timestamp) -> Self {
        Self {
            micros: Arc::new(AtomicI64::new(at.as_micros())),
        }
    }

    pub fn advance(&self, by: std::time::Duration) {
        let delta = i64::try_from(by.as_micros()).unwrap_or(i64::MAX);
        self.micros.fetch_add(delta, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_micros(self.micros.load(Ordering::SeqCst))
    }
}

pub type SharedClock = Arc<dyn Clock>;
