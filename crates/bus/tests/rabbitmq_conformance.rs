//! The bus conformance suite on the RabbitMQ adapter (`EMPORIUM_TEST_AMQP_URL`; required
//! under `CI=true`). Each case runs in its own namespace, with idle queues expiring.

#![cfg(feature = "rabbitmq")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

use std::sync::Arc;
use std::time::Duration;

use bus::conformance::{self, BusFactory};
use bus::rabbitmq::{RabbitBus, RabbitConfig};
use bus::EventBus;
use kernel::db::Database;
use kernel::testing::{test_target, TestBackend};

fn amqp_url() -> Option<String> {
    match std::env::var("EMPORIUM_TEST_AMQP_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("EMPORIUM_TEST_AMQP_URL must be set when CI=true")
        }
        _ => {
            eprintln!("skipping RabbitMQ test: EMPORIUM_TEST_AMQP_URL is not set");
            None
        }
    }
}

/// Instances are new connections to one broker; a crash loses nothing the broker holds.
struct Rabbit {
    config: RabbitConfig,
}

#[async_trait::async_trait]
impl BusFactory for Rabbit {
    async fn instance(&self) -> Arc<dyn EventBus> {
        RabbitBus::connect(self.config.clone()).await.unwrap()
    }

    async fn crash(&self) {}
}

fn rabbit(url: String) -> Rabbit {
    let mut config = RabbitConfig::new(url);
    config.namespace = format!("t{}", uuid::Uuid::new_v4().simple());
    config.queue_expires = Some(Duration::from_secs(60));
    Rabbit { config }
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
                let Some(url) = amqp_url() else { return };
                let dir = tempfile::tempdir().unwrap();
                let db = database(TestBackend::Sqlite, &dir).await.unwrap();
                conformance::$name(&rabbit(url), db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                let Some(url) = amqp_url() else { return };
                let dir = tempfile::tempdir().unwrap();
                let Some(db) = database(TestBackend::Postgres, &dir).await else {
                    return;
                };
                conformance::$name(&rabbit(url), db).await;
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unroutable_event_is_a_failed_publish() {
    let Some(url) = amqp_url() else { return };
    let bus = RabbitBus::connect(rabbit(url).config).await.unwrap();
    let envelope = bus::Envelope::wrap(
        &conformance::Ping { n: 1 },
        kernel::Timestamp::now(),
        &bus::Causation::system(),
    )
    .unwrap();
    // Nobody is bound to this type in this namespace: the broker returns it.
    let err = bus.publish(&envelope).await.expect_err("publish must fail");
    assert!(err.to_string().contains("unroutable"), "{err}");
    bus.shutdown().await;
}
