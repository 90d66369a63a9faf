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
use kernel::db::Database;
use kernel::testing::{test_target, TestBackend};

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

async fn database(backend: TestBackend, dir: &tempfile::TempDir) -> Option<Database> {
    let target = test_target(backend, dir.path(), "conformance").await?;
    let db = Database::connect(&target).await.ok()?;
    conformance::prepare(&db).await.ok()?;
    Some(db)
}

macro_rules! conformance_case {
    ($name:ident) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let dir = tempfile::tempdir().unwrap();
                let db = database(TestBackend::Sqlite, &dir).await.unwrap();
                conformance::$name(&memory(), db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                let dir = tempfile::tempdir().unwrap();
                let Some(db) = database(TestBackend::Postgres, &dir).await else {
                    return;
                };
                conformance::$name(&memory(), db).await;
            }
        }
    };
}

conformance_case!(delivers_to_every_group);
conformance_case!(delivers_at_least_once_across_a_crash);
conformance_case!(a_duplicate_has_one_effect);
conformance_case!(failures_are_dead_lettered_and_replayable);
conformance_case!(broadcast_reaches_all_and_competing_one);
conformance_case!(two_relays_publish_each_event_once);

#[test]
fn every_context_migrates_the_canonical_messaging_schema() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    for context in ["identity", "catalog", "ordering", "shipping"] {
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
