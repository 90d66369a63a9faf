//! The bus conformance suite on the memory adapter, on SQLite and PostgreSQL.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

use std::sync::{Arc, Mutex};

use bus::conformance::{self, BusFactory};
use bus::{EventBus, MemoryBus};

/// One process's broker: instances share it until a crash replaces it.
struct Memory(Mutex<Arc<MemoryBus>>);

#[async_trait::async_trait]
impl BusFactory for Memory {
    async fn instance(&self) -> Arc<dyn EventBus> {
        self.0.lock().map(|b| b.clone()).unwrap_or_default()
    }

    async fn crash(&self) {
        if let Ok(mut bus) = self.0.lock() {
            *bus = Arc::new(MemoryBus::new());
        }
    }
}

fn memory() -> Memory {
    Memory(Mutex::new(Arc::new(MemoryBus::new())))
}

bus::conformance_suite!(Some(memory()));

#[test]
fn every_context_migrates_the_canonical_messaging_schema() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for context in [
        "identity",
        "catalog",
        "ordering",
        "shipping",
        "notifications",
    ] {
        let path = root.join(format!("migrations/{context}/0001_messaging.sql"));
        let copy = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            copy,
            conformance::MESSAGING_SQL,
            "{} drifted from crates/bus/sql/messaging.sql",
            path.display()
        );
    }
}
