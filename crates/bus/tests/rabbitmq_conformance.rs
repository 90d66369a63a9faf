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
use platform::db::Database;
use platform::testing::TestBackend;

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
    conformance::database(backend, dir.path()).await
}

bus::conformance_suite!(platform::testing::amqp_url().map(rabbit));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unroutable_event_is_a_failed_publish() {
    let Some(url) = platform::testing::amqp_url() else {
        return;
    };
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

/// Collects the `n` of every ping it handles.
struct Collect(Arc<std::sync::Mutex<Vec<u32>>>);

#[async_trait::async_trait]
impl bus::EventHandler for Collect {
    async fn handle(&self, envelope: &bus::Envelope) -> anyhow::Result<()> {
        let ping: conformance::Ping = serde_json::from_value(envelope.payload.clone())?;
        self.0.lock().unwrap().push(ping.n);
        Ok(())
    }
}

async fn collecting(
    bus: &RabbitBus,
    group: &str,
    db: &Database,
) -> Arc<std::sync::Mutex<Vec<u32>>> {
    let seen = Arc::new(std::sync::Mutex::new(Vec::new()));
    bus.subscribe(bus::Subscription::new(
        group,
        bus::DeliveryMode::Competing,
        &[<conformance::Ping as kernel::event::IntegrationEvent>::NAME],
        Arc::new(Collect(seen.clone())),
        Arc::new(bus::SqlDeadLetters::new(db.clone())),
    ))
    .await
    .unwrap();
    seen
}

fn ping(n: u32) -> bus::Envelope {
    bus::Envelope::wrap(
        &conformance::Ping { n },
        kernel::Timestamp::now(),
        &bus::Causation::system(),
    )
    .unwrap()
}

async fn wait_for(what: &str, secs: u64, check: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_capped_parking_queue_keeps_the_newest_events() {
    let Some(url) = platform::testing::amqp_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = database(TestBackend::Sqlite, &dir).await.unwrap();
    let mut config = rabbit(url).config;
    config.topology = vec![(
        "parked".to_owned(),
        vec![<conformance::Ping as kernel::event::IntegrationEvent>::NAME.to_owned()],
    )];
    config.capped = vec![("parked".to_owned(), 3)];
    let publisher = RabbitBus::connect(config.clone()).await.unwrap();
    for n in 1..=5 {
        // Past the cap the oldest is dropped; the publish itself still succeeds.
        publisher.publish(&ping(n)).await.unwrap();
    }
    let consumer = RabbitBus::connect(config).await.unwrap();
    let seen = collecting(&consumer, "parked", &db).await;
    wait_for("the parked events", 10, || seen.lock().unwrap().len() >= 3).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    // Deliveries are handled concurrently, so only the set is certain.
    let mut kept = seen.lock().unwrap().clone();
    kept.sort_unstable();
    assert_eq!(kept, vec![3, 4, 5]);
    publisher.shutdown().await;
    consumer.shutdown().await;
}

/// A TCP proxy in front of the broker that can drop every connection and refuse new ones,
/// as a broker restart does.
struct Outage {
    port: u16,
    down: Arc<std::sync::atomic::AtomicBool>,
    links: Arc<std::sync::Mutex<Vec<tokio::task::JoinHandle<()>>>>,
}

impl Outage {
    async fn start(upstream: std::net::SocketAddr) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let down = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let links = Arc::new(std::sync::Mutex::new(Vec::new()));
        let (d, l) = (down.clone(), links.clone());
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if d.load(std::sync::atomic::Ordering::SeqCst) {
                    continue; // dropped: the broker is "down"
                }
                let link = tokio::spawn(async move {
                    if let Ok(mut server) = tokio::net::TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                l.lock().unwrap().push(link);
            }
        });
        Self { port, down, links }
    }

    fn go_down(&self) {
        self.down.store(true, std::sync::atomic::Ordering::SeqCst);
        for link in self.links.lock().unwrap().drain(..) {
            link.abort();
        }
    }

    fn come_back(&self) {
        self.down.store(false, std::sync::atomic::Ordering::SeqCst);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_bus_reconnects_and_resumes_consuming_after_the_broker_goes_away() {
    let Some(url) = platform::testing::amqp_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = database(TestBackend::Sqlite, &dir).await.unwrap();
    let parsed = split_amqp_url(&url);
    let outage = Outage::start(parsed.0).await;
    let direct = rabbit(url.clone()).config;
    let mut proxied = direct.clone();
    proxied.url = format!("amqp://{}@127.0.0.1:{}/{}", parsed.1, outage.port, parsed.2);

    let bus = RabbitBus::connect(proxied).await.unwrap();
    let seen = collecting(&bus, "survivor", &db).await;
    bus.publish(&ping(1)).await.unwrap();
    wait_for("the first event", 10, || seen.lock().unwrap().contains(&1)).await;

    outage.go_down();
    wait_for_ready(&bus, false).await;
    assert!(
        bus.publish(&ping(99)).await.is_err(),
        "a publish without a broker must fail, not vanish"
    );
    // Events published elsewhere meanwhile wait in the durable queue.
    let other = RabbitBus::connect(direct).await.unwrap();
    other.publish(&ping(2)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(!seen.lock().unwrap().contains(&2));

    outage.come_back();
    wait_for_ready(&bus, true).await;
    wait_for("the event published during the outage", 30, || {
        seen.lock().unwrap().contains(&2)
    })
    .await;
    bus.publish(&ping(3)).await.unwrap();
    wait_for("an event published after reconnecting", 10, || {
        seen.lock().unwrap().contains(&3)
    })
    .await;
    bus.shutdown().await;
    other.shutdown().await;
}

async fn wait_for_ready(bus: &RabbitBus, ready: bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while bus.ready().await != ready {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the bus never became {}",
            if ready { "ready" } else { "not ready" }
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `amqp://user:pass@host:port/vhost` → (broker address, `user:pass`, vhost).
fn split_amqp_url(url: &str) -> (std::net::SocketAddr, String, String) {
    let rest = url.strip_prefix("amqp://").expect("an amqp:// URL");
    let (auth, rest) = rest.split_once('@').unwrap_or(("guest:guest", rest));
    let (host, vhost) = rest.split_once('/').unwrap_or((rest, "%2f"));
    let host = if host.contains(':') {
        host.to_owned()
    } else {
        format!("{host}:5672")
    };
    let addr = std::net::ToSocketAddrs::to_socket_addrs(&host)
        .unwrap()
        .next()
        .unwrap();
    (addr, auth.to_owned(), vhost.to_owned())
}

/// Runs `deploy/rabbitmq-users.sh` (the deployment's own script) against the test broker's
/// management API; `None` when the API is not configured outside CI.
fn context_users(namespace: &str, prefix: &str) -> Option<()> {
    let api = platform::testing::service_url("EMPORIUM_TEST_RABBITMQ_API")?;
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../deploy/rabbitmq-users.sh"
    );
    let status = std::process::Command::new("sh")
        .arg(script)
        .env("RABBITMQ_API", api)
        .env("RABBITMQ_ADMIN_USER", "guest")
        .env("RABBITMQ_ADMIN_PASS", "guest")
        .env("EMPORIUM_AMQP_NAMESPACE", namespace)
        .env("AMQP_USER_PREFIX", prefix)
        .env("IDENTITY_AMQP_PASSWORD", "identity-secret")
        .env("CATALOG_AMQP_PASSWORD", "catalog-secret")
        .env("ORDERING_AMQP_PASSWORD", "ordering-secret")
        .env("SHIPPING_AMQP_PASSWORD", "shipping-secret")
        .env("NOTIFICATIONS_AMQP_PASSWORD", "notifications-secret")
        .status()
        .unwrap();
    assert!(status.success(), "rabbitmq-users.sh failed");
    Some(())
}

fn remove_users(prefix: &str) {
    let Ok(api) = std::env::var("EMPORIUM_TEST_RABBITMQ_API") else {
        return;
    };
    for ctx in [
        "identity",
        "catalog",
        "ordering",
        "shipping",
        "notifications",
    ] {
        let _ = std::process::Command::new("curl")
            .args(["-fsS", "-u", "guest:guest", "-X", "DELETE"])
            .arg(format!("{api}/api/users/{prefix}{ctx}"))
            .status();
    }
}

// Least privilege as deployed: the identity context's broker user publishes identity's
// events and is refused (a failed publish, not a silent drop) when it publishes another
// context's, even to a bound queue.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_context_user_may_publish_only_its_own_event_types() {
    let Some(url) = platform::testing::amqp_url() else {
        return;
    };
    let namespace = format!("t{}", uuid::Uuid::new_v4().simple());
    let prefix = format!("{}-", &namespace[..9]);
    if context_users(&namespace, &prefix).is_none() {
        return;
    }
    let (scheme, rest) = url.split_once("://").unwrap();
    let host = rest.rsplit_once('@').map_or(rest, |(_, h)| h);
    let mut config = RabbitConfig::new(format!(
        "{scheme}://{prefix}identity:identity-secret@{host}"
    ));
    config.namespace = namespace;
    config.queue_expires = Some(Duration::from_secs(60));
    config.topology = vec![(
        "audit".to_owned(),
        vec![
            "identity.user_registered".to_owned(),
            "catalog.product_created".to_owned(),
        ],
    )];
    let bus = RabbitBus::connect(config).await.unwrap();
    let event = |event_type: &str| {
        let mut e = bus::Envelope::wrap(
            &conformance::Ping { n: 1 },
            kernel::Timestamp::now(),
            &bus::Causation::system(),
        )
        .unwrap();
        e.event_type = event_type.to_owned();
        e
    };
    let own = bus.publish(&event("identity.user_registered")).await;
    let foreign = bus.publish(&event("catalog.product_created")).await;
    bus.shutdown().await;
    remove_users(&prefix);
    assert!(own.is_ok(), "{own:?}");
    assert!(foreign.is_err(), "identity published a catalog event");
}

// A delivery the broker gave up on (its handler failed and even the SQL dead letter could not
// be written) is collected from `<ns>.dead-letter` as a dead letter of its group, and replays.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_broker_dead_letters_is_collected_and_replayable() {
    let Some(url) = platform::testing::amqp_url() else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let db = database(TestBackend::Sqlite, &dir).await.unwrap();
    conformance::broker_dead_letters_are_collected_and_replayable(
        &rabbit(url),
        db,
        "conf-broker-dlq",
    )
    .await;
}
