//! The bus conformance suite on the SNS + SQS adapter, against an SQS/SNS endpoint from
//! `EMPORIUM_TEST_SQS_ENDPOINT` (CI starts `moto_server`; required under `CI=true`). Each case
//! runs in its own namespace.

#![cfg(feature = "sqs")]
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

use std::sync::Arc;
use std::time::Duration;

use bus::conformance::{self, BusFactory};
use bus::sqs::{resource_name, SqsBus, SqsConfig};
use bus::EventBus;

/// Instances are new clients of one endpoint; a crash loses nothing the queues hold.
struct Sqs {
    config: SqsConfig,
}

#[async_trait::async_trait]
impl BusFactory for Sqs {
    async fn instance(&self) -> Arc<dyn EventBus> {
        SqsBus::connect(self.config.clone()).await.unwrap()
    }

    async fn crash(&self) {}
}

fn config(endpoint: String) -> SqsConfig {
    let mut config = SqsConfig::new(format!(
        "t{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    ));
    config.endpoint = Some(endpoint);
    config.region = Some("us-east-1".to_owned());
    config.static_credentials = Some(("test".to_owned(), "test".to_owned()));
    // Short waits keep the suite quick: a poll ends within a second, and a message whose
    // consumer died is visible again after two.
    config.wait_time = Duration::from_secs(1);
    config.visibility_timeout = Duration::from_secs(2);
    config
}

bus::conformance_suite!(platform::testing::sqs_endpoint().map(|e| Sqs { config: config(e) }));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_published_before_its_consumer_starts_waits_in_its_queue() {
    let Some(endpoint) = platform::testing::sqs_endpoint() else {
        return;
    };
    let mut config = config(endpoint);
    config.topology = vec![(
        "late".to_owned(),
        vec![<conformance::Ping as kernel::event::IntegrationEvent>::NAME.to_owned()],
    )];
    let publisher = SqsBus::connect(config.clone()).await.unwrap();
    let envelope = bus::Envelope::wrap(
        &conformance::Ping { n: 7 },
        kernel::Timestamp::now(),
        &bus::Causation::system(),
    )
    .unwrap();
    publisher.publish(&envelope).await.unwrap();
    assert!(publisher.ready().await);

    let dir = tempfile::tempdir().unwrap();
    let db = conformance::database(platform::testing::TestBackend::Sqlite, dir.path())
        .await
        .unwrap();
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    struct Collect(Arc<std::sync::Mutex<Vec<uuid::Uuid>>>);
    #[async_trait::async_trait]
    impl bus::EventHandler for Collect {
        async fn handle(&self, envelope: &bus::Envelope) -> anyhow::Result<()> {
            self.0.lock().unwrap().push(envelope.id);
            Ok(())
        }
    }
    let consumer = SqsBus::connect(config).await.unwrap();
    consumer
        .subscribe(bus::Subscription::new(
            "late",
            bus::DeliveryMode::Competing,
            &[<conformance::Ping as kernel::event::IntegrationEvent>::NAME],
            Arc::new(Collect(seen.clone())),
            Arc::new(bus::SqlDeadLetters::new(db)),
        ))
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    while seen.lock().unwrap().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the parked event never arrived"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(*seen.lock().unwrap(), vec![envelope.id]);
    publisher.shutdown().await;
    consumer.shutdown().await;
    assert!(!consumer.ready().await, "a shut-down bus is not ready");
}

#[test]
fn resource_names_fit_sqs_rules() {
    assert_eq!(
        resource_name(&["emporium", "shipping.orders"]),
        "emporium-shipping_orders"
    );
    let long = resource_name(&[
        &"n".repeat(64),
        "catalog.cache-invalidation",
        "0123456789ab",
    ]);
    assert_eq!(long.len(), 80);
    assert!(long
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'));
    let other = resource_name(&[
        &"n".repeat(64),
        "catalog.cache-invalidation",
        "0123456789ac",
    ]);
    assert_ne!(long, other, "truncated names stay distinct");
}

// A delivery SQS moved to `<ns>-dead-letter` (its handler failed and even the SQL dead letter
// could not be written) is collected as a dead letter for every group, and replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_sqs_dead_letters_is_collected_and_replayable() {
    let Some(endpoint) = platform::testing::sqs_endpoint() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let Some(db) = conformance::database(platform::testing::TestBackend::Sqlite, dir.path()).await
    else {
        panic!("no SQLite database");
    };
    conformance::broker_dead_letters_are_collected_and_replayable(
        &Sqs {
            config: config(endpoint),
        },
        db,
        bus::EVERY_GROUP,
    )
    .await;
}
