//! The bus conformance suite: one story every adapter must pass (memory, RabbitMQ, ...).
//! Each case is a public async function taking an adapter factory and a fresh database with
//! the messaging tables; an adapter's test file calls every case on every backend.

#![allow(clippy::panic, clippy::unwrap_used, clippy::expect_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Duration;

use kernel::{IntegrationEvent, Timestamp};
use platform::db::Database;
use platform::pagination::PageRequest;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use crate::handler::{DeliveryMode, EventHandler, RetryPolicy, Subscription};
use crate::outbox::{Outbox, Relay, RelayConfig};
use crate::{Causation, DeadLetterStore, Envelope, EventBus, SqlDeadLetters};

/// The messaging schema, as every context's first migration creates it.
pub const MESSAGING_SQL: &str = include_str!("../sql/messaging.sql");

/// Makes adapter instances for the suite.
#[async_trait::async_trait]
pub trait BusFactory: Send + Sync {
    /// A running instance; instances made between two crashes share one broker.
    async fn instance(&self) -> Arc<dyn EventBus>;
    /// Every process dies. A broker keeps what it persisted; the memory adapter keeps nothing.
    async fn crash(&self);
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ping {
    pub n: u32,
}

impl IntegrationEvent for Ping {
    const NAME: &'static str = "conformance.ping";
    const VERSION: u32 = 1;
    const SOURCE: &'static str = "conformance";
}

/// Prepares a database for the suite: messaging tables plus an effect table.
pub async fn prepare(db: &Database) -> anyhow::Result<()> {
    sqlx::raw_sql(MESSAGING_SQL).execute(db.pool()).await?;
    sqlx::raw_sql(
        "create table conformance_effect (consumer_group text not null, envelope_id text not null, instance text not null)",
    )
    .execute(db.pool())
    .await?;
    Ok(())
}

/// A handler whose effect is an inbox-protected row in `conformance_effect`.
struct Recorder {
    db: Database,
    group: String,
    instance: String,
    calls: Arc<AtomicU32>,
    fail_first: u32,
    /// Calls that fail as a database outage would (a pool timeout), before `fail_first`.
    fail_transiently_first: u32,
    block_first: bool,
    started: Option<tokio::sync::mpsc::UnboundedSender<()>>,
}

#[async_trait::async_trait]
impl EventHandler for Recorder {
    async fn handle(&self, envelope: &Envelope) -> anyhow::Result<()> {
        let call = self.calls.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(tx) = &self.started {
            let _ = tx.send(());
        }
        if self.block_first && call == 1 {
            // The process "dies" while handling: this future never completes.
            std::future::pending::<()>().await;
        }
        if call <= self.fail_transiently_first {
            return Err(anyhow::Error::from(sqlx::Error::PoolTimedOut)
                .context(format!("simulated outage {call}")));
        }
        if call <= self.fail_transiently_first + self.fail_first {
            anyhow::bail!("simulated failure {call}");
        }
        let mut tx = self.db.begin().await?;
        if crate::inbox::first_delivery(&mut tx, &self.group, envelope).await? {
            sqlx::query("insert into conformance_effect (consumer_group, envelope_id, instance) values ($1, $2, $3)")
                .bind(&self.group)
                .bind(envelope.id.to_string())
                .bind(&self.instance)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

fn fast_retry() -> RetryPolicy {
    RetryPolicy {
        max_attempts: 3,
        first_backoff: Duration::from_millis(10),
        max_backoff: Duration::from_millis(50),
        transient_for: Some(Duration::from_secs(60)),
        transient_max_backoff: Duration::from_millis(50),
    }
}

#[allow(clippy::too_many_arguments)]
fn recorder(db: &Database, group: &str, instance: &str, calls: &Arc<AtomicU32>) -> Recorder {
    Recorder {
        db: db.clone(),
        group: group.to_owned(),
        instance: instance.to_owned(),
        calls: calls.clone(),
        fail_first: 0,
        fail_transiently_first: 0,
        block_first: false,
        started: None,
    }
}

fn subscription(db: &Database, group: &str, mode: DeliveryMode, handler: Recorder) -> Subscription {
    Subscription::new(
        group,
        mode,
        &[Ping::NAME],
        Arc::new(handler),
        Arc::new(SqlDeadLetters::new(db.clone())),
    )
    .with_retry(fast_retry())
}

async fn effects(db: &Database, group: &str) -> i64 {
    sqlx::query_scalar("select count(*) from conformance_effect where consumer_group = $1")
        .bind(group)
        .fetch_one(db.pool())
        .await
        .unwrap()
}

async fn effects_by(db: &Database, group: &str, instance: &str) -> i64 {
    sqlx::query_scalar(
        "select count(*) from conformance_effect where consumer_group = $1 and instance = $2",
    )
    .bind(group)
    .bind(instance)
    .fetch_one(db.pool())
    .await
    .unwrap()
}

async fn enqueue(db: &Database, outbox: &Outbox, n: u32) -> Vec<Envelope> {
    let envelopes: Vec<Envelope> = (0..n)
        .map(|i| Envelope::wrap(&Ping { n: i }, Timestamp::now(), &Causation::system()).unwrap())
        .collect();
    let mut tx = db.begin().await.unwrap();
    outbox.enqueue(&mut tx, &envelopes).await.unwrap();
    tx.commit().await.unwrap();
    outbox.wake();
    envelopes
}

fn quick_relay(db: &Database, bus: Arc<dyn EventBus>, outbox: &Outbox) -> Relay {
    Relay::new("conformance", db.clone(), bus, outbox.clone()).with_config(RelayConfig {
        batch: 16,
        lease: Duration::from_secs(2),
        idle_poll: Duration::from_millis(50),
        retention: Duration::from_secs(3600),
    })
}

fn spawn_relay(relay: Relay) -> (watch::Sender<bool>, tokio::task::JoinHandle<()>) {
    let (stop, rx) = watch::channel(false);
    (stop, tokio::spawn(relay.run(rx)))
}

/// Polls until `check` holds, or fails the test after `secs`.
async fn eventually<F, Fut>(what: &str, secs: u64, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    loop {
        if check().await {
            return;
        }
        if tokio::time::Instant::now() > deadline {
            panic!("timed out waiting for: {what}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Every subscribed group receives each event once, through outbox and relay.
pub async fn delivers_to_every_group(factory: &dyn BusFactory, db: Database) {
    let bus = factory.instance().await;
    let (a, b) = (Arc::new(AtomicU32::new(0)), Arc::new(AtomicU32::new(0)));
    bus.subscribe(subscription(
        &db,
        "conf-a",
        DeliveryMode::Competing,
        recorder(&db, "conf-a", "i1", &a),
    ))
    .await
    .unwrap();
    bus.subscribe(subscription(
        &db,
        "conf-b",
        DeliveryMode::Competing,
        recorder(&db, "conf-b", "i1", &b),
    ))
    .await
    .unwrap();
    let outbox = Outbox::new();
    let (stop, relay) = spawn_relay(quick_relay(&db, bus.clone(), &outbox));
    enqueue(&db, &outbox, 5).await;
    eventually("both groups handle 5 events", 20, || async {
        effects(&db, "conf-a").await == 5 && effects(&db, "conf-b").await == 5
    })
    .await;
    eventually("outbox drained", 10, || async {
        crate::outbox::pending(&db).await.unwrap() == 0
    })
    .await;
    stop.send(true).unwrap();
    relay.await.unwrap();
    bus.shutdown().await;
}

/// An event committed to the outbox is delivered even though the process died while the
/// event was being handled: the relay task and the bus are killed, a new process starts.
pub async fn delivers_at_least_once_across_a_crash(factory: &dyn BusFactory, db: Database) {
    let calls = Arc::new(AtomicU32::new(0));
    let (started_tx, mut started_rx) = tokio::sync::mpsc::unbounded_channel();
    let bus = factory.instance().await;
    let mut handler = recorder(&db, "conf-crash", "first", &calls);
    handler.block_first = true;
    handler.started = Some(started_tx);
    bus.subscribe(subscription(
        &db,
        "conf-crash",
        DeliveryMode::Competing,
        handler,
    ))
    .await
    .unwrap();
    let outbox = Outbox::new();
    let (_stop, relay) = spawn_relay(quick_relay(&db, bus.clone(), &outbox));
    enqueue(&db, &outbox, 1).await;
    tokio::time::timeout(Duration::from_secs(20), started_rx.recv())
        .await
        .expect("the handler never started");
    // Kill: the relay task is aborted mid-publish and the bus goes away with the process.
    relay.abort();
    let _ = relay.await;
    bus.shutdown().await;
    drop(bus);
    factory.crash().await;
    assert_eq!(
        effects(&db, "conf-crash").await,
        0,
        "nothing was handled before the crash"
    );

    // Restart: a new process with a new bus instance and relay on the same database.
    let bus = factory.instance().await;
    bus.subscribe(subscription(
        &db,
        "conf-crash",
        DeliveryMode::Competing,
        recorder(&db, "conf-crash", "second", &calls),
    ))
    .await
    .unwrap();
    let outbox = Outbox::new();
    let (stop, relay) = spawn_relay(quick_relay(&db, bus.clone(), &outbox));
    eventually("the event is handled after restart", 30, || async {
        effects(&db, "conf-crash").await == 1
    })
    .await;
    eventually("outbox drained", 30, || async {
        crate::outbox::pending(&db).await.unwrap() == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(effects(&db, "conf-crash").await, 1, "exactly one effect");
    stop.send(true).unwrap();
    relay.await.unwrap();
    bus.shutdown().await;
}

/// A duplicate delivery reaches the handler again but has no second effect.
pub async fn a_duplicate_has_one_effect(factory: &dyn BusFactory, db: Database) {
    let bus = factory.instance().await;
    let calls = Arc::new(AtomicU32::new(0));
    bus.subscribe(subscription(
        &db,
        "conf-dup",
        DeliveryMode::Competing,
        recorder(&db, "conf-dup", "i1", &calls),
    ))
    .await
    .unwrap();
    let envelope = Envelope::wrap(&Ping { n: 1 }, Timestamp::now(), &Causation::system()).unwrap();
    bus.publish(&envelope).await.unwrap();
    bus.publish(&envelope).await.unwrap();
    eventually("both copies reach the handler", 20, || async {
        calls.load(Ordering::SeqCst) >= 2
    })
    .await;
    // A copy is counted when the handler is entered, before its transaction commits: wait
    // for the first copy's effect, then make sure no second one follows.
    eventually("the first copy's effect is committed", 20, || async {
        effects(&db, "conf-dup").await >= 1
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(effects(&db, "conf-dup").await, 1);
    bus.shutdown().await;
}

/// A handler failing every attempt lands in dead letters with its error; replay delivers it.
pub async fn failures_are_dead_lettered_and_replayable(factory: &dyn BusFactory, db: Database) {
    let bus = factory.instance().await;
    let calls = Arc::new(AtomicU32::new(0));
    let mut handler = recorder(&db, "conf-dlq", "i1", &calls);
    handler.fail_first = 3;
    bus.subscribe(subscription(
        &db,
        "conf-dlq",
        DeliveryMode::Competing,
        handler,
    ))
    .await
    .unwrap();
    let envelope = Envelope::wrap(&Ping { n: 7 }, Timestamp::now(), &Causation::system()).unwrap();
    bus.publish(&envelope).await.unwrap();
    let store = SqlDeadLetters::new(db.clone());
    eventually("a dead letter appears", 30, || async {
        !store
            .list(&PageRequest::first(10))
            .await
            .unwrap()
            .items
            .is_empty()
    })
    .await;
    let page = store.list(&PageRequest::first(10)).await.unwrap();
    assert_eq!(page.items.len(), 1);
    let dead = &page.items[0];
    assert_eq!(dead.consumer_group, "conf-dlq");
    assert_eq!(dead.envelope.id, envelope.id);
    assert_eq!(dead.attempts, 3);
    assert!(dead.error.contains("simulated failure 3"), "{}", dead.error);
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    assert_eq!(effects(&db, "conf-dlq").await, 0);

    bus.redeliver(&dead.consumer_group, &dead.envelope)
        .await
        .unwrap();
    store
        .mark_replayed(dead.id, Timestamp::now())
        .await
        .unwrap();
    eventually("the replay has its effect", 20, || async {
        effects(&db, "conf-dlq").await == 1
    })
    .await;
    let again = store.get(dead.id).await.unwrap().unwrap();
    assert!(again.replayed_at.is_some());
    bus.shutdown().await;
}

/// A dead-letter store that cannot write (its database is down).
struct BrokenStore;

#[async_trait::async_trait]
impl DeadLetterStore for BrokenStore {
    async fn put(&self, _: &str, _: &Envelope, _: &str, _: u32) -> anyhow::Result<()> {
        anyhow::bail!("the dead-letter database is down")
    }
    async fn list(
        &self,
        _: &PageRequest,
    ) -> anyhow::Result<platform::pagination::Page<crate::DeadLetter>> {
        anyhow::bail!("the dead-letter database is down")
    }
    async fn get(&self, _: uuid::Uuid) -> anyhow::Result<Option<crate::DeadLetter>> {
        anyhow::bail!("the dead-letter database is down")
    }
    async fn mark_replayed(&self, _: uuid::Uuid, _: Timestamp) -> anyhow::Result<()> {
        anyhow::bail!("the dead-letter database is down")
    }
}

/// Broker adapters only: a delivery whose handler keeps failing while even its dead letter
/// cannot be written ends in the broker's dead-letter queue; the process collects it into
/// its SQL dead letters (as `expected_group`: the group, or `EVERY_GROUP` where the broker
/// does not say), and a replay has its effect once.
pub async fn broker_dead_letters_are_collected_and_replayable(
    factory: &dyn BusFactory,
    db: Database,
    expected_group: &str,
) {
    let bus = factory.instance().await;
    let calls = Arc::new(AtomicU32::new(0));
    let mut handler = recorder(&db, "conf-broker-dlq", "i1", &calls);
    // Fails every delivery the broker makes before giving up; the replay then succeeds.
    handler.fail_first = 1000;
    let mut sub = Subscription::new(
        "conf-broker-dlq",
        DeliveryMode::Competing,
        &[Ping::NAME],
        Arc::new(handler),
        Arc::new(BrokenStore),
    );
    sub.retry = fast_retry();
    bus.subscribe(sub).await.unwrap();
    let store = SqlDeadLetters::new(db.clone());
    bus.collect_dead_letters(Arc::new(store.clone()))
        .await
        .unwrap();
    let envelope = Envelope::wrap(&Ping { n: 11 }, Timestamp::now(), &Causation::system()).unwrap();
    bus.publish(&envelope).await.unwrap();
    eventually("the broker's dead letter is recorded", 90, || async {
        store.open().await.unwrap_or(0) > 0
    })
    .await;
    let page = store.list(&PageRequest::first(10)).await.unwrap();
    assert_eq!(page.items.len(), 1, "{:?}", page.items);
    let dead = &page.items[0];
    assert_eq!(dead.consumer_group, expected_group);
    assert_eq!(dead.envelope.id, envelope.id);
    assert!(dead.error.contains("dead-lettered by"), "{}", dead.error);
    assert_eq!(effects(&db, "conf-broker-dlq").await, 0);
    let handled_before = calls.load(Ordering::SeqCst);
    assert!(handled_before >= 3, "{handled_before}");

    calls.store(1000, Ordering::SeqCst);
    crate::replay(&*bus, &dead.consumer_group, &dead.envelope)
        .await
        .unwrap();
    eventually("the replay has its effect", 30, || async {
        effects(&db, "conf-broker-dlq").await == 1
    })
    .await;
    bus.shutdown().await;
}

/// A dependency outage is not a bad event: a handler failing transiently (a pool timeout)
/// far more often than the attempt limit is retried until it succeeds, and nothing is
/// dead-lettered; a deterministic failure after the outage still counts its own attempts.
pub async fn transient_failures_are_retried_not_dead_lettered(
    factory: &dyn BusFactory,
    db: Database,
) {
    let bus = factory.instance().await;
    let calls = Arc::new(AtomicU32::new(0));
    let mut handler = recorder(&db, "conf-transient", "i1", &calls);
    handler.fail_transiently_first = 8;
    handler.fail_first = 2;
    bus.subscribe(subscription(
        &db,
        "conf-transient",
        DeliveryMode::Competing,
        handler,
    ))
    .await
    .unwrap();
    let envelope = Envelope::wrap(&Ping { n: 9 }, Timestamp::now(), &Causation::system()).unwrap();
    bus.publish(&envelope).await.unwrap();
    eventually("the event is handled after the outage", 30, || async {
        effects(&db, "conf-transient").await == 1
    })
    .await;
    assert_eq!(calls.load(Ordering::SeqCst), 11);
    let store = SqlDeadLetters::new(db.clone());
    assert!(store
        .list(&PageRequest::first(10))
        .await
        .unwrap()
        .items
        .is_empty());
    bus.shutdown().await;
}

/// With two running instances, a broadcast group's instances each get every event and a
/// competing group's instances share them, each event handled by exactly one.
pub async fn broadcast_reaches_all_and_competing_one(factory: &dyn BusFactory, db: Database) {
    let first = factory.instance().await;
    let second = factory.instance().await;
    let calls = Arc::new(AtomicU32::new(0));
    for (bus, name) in [(&first, "one"), (&second, "two")] {
        bus.subscribe(subscription(&db, "conf-bc", DeliveryMode::Broadcast, {
            let mut r = recorder(&db, &format!("conf-bc-{name}"), name, &calls);
            r.group = format!("conf-bc-{name}");
            r
        }))
        .await
        .unwrap();
        bus.subscribe(subscription(
            &db,
            "conf-cmp",
            DeliveryMode::Competing,
            recorder(&db, "conf-cmp", name, &calls),
        ))
        .await
        .unwrap();
    }
    for n in 0..10 {
        let envelope = Envelope::wrap(&Ping { n }, Timestamp::now(), &Causation::system()).unwrap();
        first.publish(&envelope).await.unwrap();
    }
    eventually(
        "every instance gets every broadcast; competing shares",
        30,
        || async {
            effects(&db, "conf-bc-one").await == 10
                && effects(&db, "conf-bc-two").await == 10
                && effects(&db, "conf-cmp").await == 10
        },
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(
        effects(&db, "conf-cmp").await,
        10,
        "each event handled once by the group"
    );
    let one = effects_by(&db, "conf-cmp", "one").await;
    let two = effects_by(&db, "conf-cmp", "two").await;
    assert_eq!(one + two, 10);
    first.shutdown().await;
    second.shutdown().await;
}

/// Counts what passes through `publish`, per envelope, and forwards everything to `inner`.
struct CountingBus {
    inner: Arc<dyn EventBus>,
    published: std::sync::Mutex<std::collections::HashMap<uuid::Uuid, u32>>,
}

#[async_trait::async_trait]
impl EventBus for CountingBus {
    async fn publish(&self, envelope: &Envelope) -> Result<(), crate::BusError> {
        self.inner.publish(envelope).await?;
        if let Ok(mut published) = self.published.lock() {
            *published.entry(envelope.id).or_default() += 1;
        }
        Ok(())
    }
    async fn subscribe(&self, subscription: Subscription) -> Result<(), crate::BusError> {
        self.inner.subscribe(subscription).await
    }
    async fn redeliver(&self, group: &str, envelope: &Envelope) -> Result<(), crate::BusError> {
        self.inner.redeliver(group, envelope).await
    }
    async fn ready(&self) -> bool {
        self.inner.ready().await
    }
    async fn shutdown(&self) {
        self.inner.shutdown().await
    }
    fn name(&self) -> &'static str {
        self.inner.name()
    }
}

/// Two relays on one database publish every event, none twice. What is counted is what the
/// relays hand to the bus, not handler calls: a broker may deliver a message again (SQS
/// after its visibility timeout), which the inbox absorbs and other cases cover. The lease
/// is longer than the test, so a slow publish is never taken over (lease take-over is the
/// crash path, covered by `delivers_at_least_once_across_a_crash`).
pub async fn two_relays_publish_each_event_once(factory: &dyn BusFactory, db: Database) {
    let inner = factory.instance().await;
    let calls = Arc::new(AtomicU32::new(0));
    inner
        .subscribe(subscription(
            &db,
            "conf-relays",
            DeliveryMode::Competing,
            recorder(&db, "conf-relays", "i1", &calls),
        ))
        .await
        .unwrap();
    let counting = Arc::new(CountingBus {
        inner: inner.clone(),
        published: std::sync::Mutex::new(std::collections::HashMap::new()),
    });
    let outbox = Outbox::new();
    let envelopes = enqueue(&db, &outbox, 120).await;
    let relay = || {
        Relay::new("conformance", db.clone(), counting.clone(), outbox.clone()).with_config(
            RelayConfig {
                batch: 16,
                lease: Duration::from_secs(600),
                idle_poll: Duration::from_millis(50),
                retention: Duration::from_secs(3600),
            },
        )
    };
    let (stop_a, relay_a) = spawn_relay(relay());
    let (stop_b, relay_b) = spawn_relay(relay());
    eventually("all 120 handled", 60, || async {
        effects(&db, "conf-relays").await == 120
    })
    .await;
    eventually("outbox drained", 30, || async {
        crate::outbox::pending(&db).await.unwrap() == 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let published = counting.published.lock().unwrap().clone();
    for envelope in &envelopes {
        assert_eq!(
            published.get(&envelope.id).copied(),
            Some(1),
            "event {} published once",
            envelope.id
        );
    }
    assert_eq!(published.len(), 120, "nothing else published");
    assert!(calls.load(Ordering::SeqCst) >= 120);
    stop_a.send(true).unwrap();
    stop_b.send(true).unwrap();
    relay_a.await.unwrap();
    relay_b.await.unwrap();
    inner.shutdown().await;
}

/// The suite's database in a test: SQLite in `dir`, or PostgreSQL (`None` when it is not
/// configured outside CI).
pub async fn database(
    backend: platform::testing::TestBackend,
    dir: &std::path::Path,
) -> Option<Database> {
    let target = platform::testing::test_target(backend, dir, "conformance").await?;
    let db = Database::connect(&target).await.ok()?;
    prepare(&db).await.ok()?;
    Some(db)
}

/// Declares every conformance case as a test on SQLite and on PostgreSQL, for the adapter
/// that `$factory` (an `Option<impl BusFactory>`; `None` skips) makes.
#[macro_export]
macro_rules! conformance_suite {
    ($factory:expr) => {
        $crate::conformance_suite!(@cases $factory;
            delivers_to_every_group,
            delivers_at_least_once_across_a_crash,
            a_duplicate_has_one_effect,
            failures_are_dead_lettered_and_replayable,
            transient_failures_are_retried_not_dead_lettered,
            broadcast_reaches_all_and_competing_one,
            two_relays_publish_each_event_once);
    };
    (@cases $factory:expr; $($name:ident),*) => {
        $(
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let Some(factory) = $factory else { return };
                let Ok(dir) = tempfile::tempdir() else { panic!("no temp dir") };
                let Some(db) = $crate::conformance::database(platform::testing::TestBackend::Sqlite, dir.path()).await else {
                    panic!("no SQLite database");
                };
                $crate::conformance::$name(&factory, db).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                let Some(factory) = $factory else { return };
                let Ok(dir) = tempfile::tempdir() else { panic!("no temp dir") };
                let Some(db) = $crate::conformance::database(platform::testing::TestBackend::Postgres, dir.path()).await else {
                    return;
                };
                $crate::conformance::$name(&factory, db).await;
            }
        }
        )*
    };
}
