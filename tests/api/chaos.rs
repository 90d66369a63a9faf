//! The fault-injection suite: real processes on loopback, clients that retry the way a
//! careful client does (same `Idempotency-Key`), faults injected while they shop, then an
//! invariant checker through the API and SQL.
//!
//! - R1: the monolith (`emporium serve`, SQLite and PostgreSQL) SIGKILLed at random moments
//!   during placement and settlement, restarted on the same port and data.
//! - R6: PostgreSQL unreachable for 15 s under checkout load (a TCP proxy cuts it): every
//!   answer is a success or a 503 problem with `Retry-After`, none a 500 or a hang; readiness
//!   goes false and comes back within 10 s of the database's return.
//! - R8: a fifth of the payment gateway's calls fail (half after it acted).
//! - R2: the split topology (four processes, the gateway, RabbitMQ) with the broker
//!   unreachable for 10 s in every 30 s while shoppers check out (a TCP proxy in front of
//!   RabbitMQ resets every connection and refuses new ones).
//! - R3: the split topology with catalog and shipping SIGKILLed at random moments while they
//!   consume (between a handler's commit and its ack, among others) and restarted.
//!
//! `EMPORIUM_CHAOS=full` runs the full profile (1,000 checkouts and 24 kills per backend);
//! without it, a short one for CI. Each scenario prints its figures (`--nocapture`).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use emporium::config::{Config, ContextName};
use platform::testing::{fresh_postgres_database, postgres_url, TestBackend};
use rand::Rng;
use reqwest::Method;
use serde_json::{json, Value};

use crate::fault_proxy::{FaultProxy, Mode};
use crate::faults::authority;
use crate::helpers::{address, spawn_app_with, Host, Response, TestApp, BOOTSTRAP_ADMIN};
use crate::split::{spawn_split_with, Broker, Deployment, Process};

struct Profile {
    orders: usize,
    clients: usize,
    kills: usize,
}

pub(crate) fn full() -> bool {
    std::env::var("EMPORIUM_CHAOS").is_ok_and(|v| v == "full")
}

fn profile() -> Profile {
    if full() {
        Profile {
            orders: 1000,
            clients: 8,
            kills: 24,
        }
    } else {
        Profile {
            orders: 60,
            clients: 4,
            kills: 5,
        }
    }
}

/// What the clients saw.
#[derive(Default)]
struct Seen {
    /// Requests that got no answer (connection refused or reset: the process was down).
    unanswered: AtomicU64,
    /// Answers by class.
    ok: AtomicU64,
    unavailable: AtomicU64,
    unavailable_without_retry_after: AtomicU64,
    server_errors: AtomicU64,
    /// The slowest answer, in milliseconds.
    slowest_ms: AtomicU64,
    /// Checkout requests sent again with the same key.
    retried_checkouts: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Seen {
    fn record(&self, res: &Result<Response, String>, took: Duration) {
        self.slowest_ms.fetch_max(
            u64::try_from(took.as_millis()).unwrap_or(u64::MAX),
            Ordering::Relaxed,
        );
        match res {
            Err(_) => {
                self.unanswered.fetch_add(1, Ordering::Relaxed);
            }
            Ok(r) if r.status == 503 => {
                self.unavailable.fetch_add(1, Ordering::Relaxed);
                if r.header("retry-after").is_none() {
                    self.unavailable_without_retry_after
                        .fetch_add(1, Ordering::Relaxed);
                }
            }
            Ok(r) if r.status >= 500 => {
                self.server_errors.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut s) = self.samples.lock() {
                    if s.len() < 5 {
                        s.push(format!("{} {}", r.status, r.body));
                    }
                }
            }
            Ok(_) => {
                self.ok.fetch_add(1, Ordering::Relaxed);
            }
        }
    }
}

/// A shopper's HTTP client that never panics on a lost connection.
#[derive(Clone)]
struct Shopper {
    address: String,
    http: reqwest::Client,
    token: String,
    seen: Arc<Seen>,
}

impl Shopper {
    async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<&Value>,
        key: Option<&str>,
    ) -> Result<Response, String> {
        let started = Instant::now();
        let mut req = self
            .http
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(&self.token)
            .timeout(Duration::from_secs(30));
        if let Some(b) = body {
            req = req.json(b);
        }
        if let Some(k) = key {
            req = req.header("idempotency-key", k);
        }
        let res = async {
            let res = req.send().await.map_err(|e| e.to_string())?;
            let status = res.status().as_u16();
            let headers = res.headers().clone();
            let bytes = res.bytes().await.map_err(|e| e.to_string())?;
            let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
            Ok(Response {
                status,
                headers,
                body,
            })
        }
        .await;
        self.seen.record(&res, started.elapsed());
        res
    }

    /// Exactly one unit of `product` in the cart, whatever earlier attempts left there.
    async fn one_in_cart(&self, product: &str) -> Result<(), String> {
        let cart = self
            .call(Method::GET, "/api/v1/ordering/cart", None, None)
            .await?;
        if cart.status != 200 {
            return Err(format!("cart: {}", cart.status));
        }
        let quantity = cart.body["items"]
            .as_array()
            .and_then(|items| items.iter().find(|i| i["product_id"] == product))
            .and_then(|i| i["quantity"].as_u64());
        let res = match quantity {
            Some(1) => return Ok(()),
            Some(_) => {
                self.call(
                    Method::PATCH,
                    &format!("/api/v1/ordering/cart/items/{product}"),
                    Some(&json!({"quantity": 1})),
                    None,
                )
                .await?
            }
            None => {
                self.call(
                    Method::POST,
                    "/api/v1/ordering/cart/items",
                    Some(&json!({"product_id": product, "quantity": 1})),
                    None,
                )
                .await?
            }
        };
        if res.status == 200 {
            Ok(())
        } else {
            Err(format!("cart item: {} {}", res.status, res.body))
        }
    }

    /// Places one order under `key`, retrying every failure with the same key until it is
    /// accepted; returns its id.
    async fn place(&self, product: &str, key: &str, give_up: Instant) -> String {
        let body = json!({"shipping_address": address(), "payment_token": "tok_visa"});
        let mut first = true;
        loop {
            assert!(Instant::now() < give_up, "checkout {key} never accepted");
            if self.one_in_cart(product).await.is_ok() {
                if !first {
                    self.seen.retried_checkouts.fetch_add(1, Ordering::Relaxed);
                }
                first = false;
                match self
                    .call(
                        Method::POST,
                        "/api/v1/ordering/orders",
                        Some(&body),
                        Some(key),
                    )
                    .await
                {
                    Ok(r) if matches!(r.status, 201 | 202) => {
                        return r.body["id"].as_str().unwrap_or_default().to_owned();
                    }
                    Ok(r) if r.status < 500 && r.status != 422 && r.status != 408 => {
                        panic!("checkout {key}: {} {}", r.status, r.body)
                    }
                    _ => {}
                }
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// The shop every scenario sells from: one product with enough stock for every order.
struct Shop {
    admin: String,
    product: String,
    stock: i64,
}

async fn open_shop(app: &TestApp, orders: usize) -> Shop {
    let admin = app.admin().await;
    let stock = i64::try_from(orders).unwrap_or(0) * 2 + 10;
    let product = app
        .sellable(&admin.access_token, "CHAOS", 1500, stock)
        .await;
    Shop {
        admin: admin.access_token,
        product,
        stock,
    }
}

/// Signs up the shoppers (before any fault) and has them place `orders` orders between
/// them, each under its own key. Returns the accepted order ids.
async fn shop(
    app: &TestApp,
    shop: &Shop,
    clients: usize,
    orders: usize,
    seen: &Arc<Seen>,
) -> Vec<tokio::task::JoinHandle<Vec<String>>> {
    let mut workers = Vec::new();
    let per_client = orders.div_ceil(clients);
    let give_up = Instant::now() + Duration::from_secs(if full() { 1800 } else { 300 });
    for w in 0..clients {
        let c = app.customer().await;
        let shopper = Shopper {
            address: app.address.clone(),
            http: app.client.clone(),
            token: c.access_token,
            seen: seen.clone(),
        };
        let product = shop.product.clone();
        let count = per_client.min(orders.saturating_sub(w * per_client));
        workers.push(tokio::spawn(async move {
            let mut ids = Vec::new();
            for i in 0..count {
                let key = format!("chaos-{w}-{i}");
                ids.push(shopper.place(&product, &key, give_up).await);
            }
            ids
        }));
    }
    workers
}

/// What the invariant checker found.
#[derive(Debug, Default)]
struct Verdict {
    placed: usize,
    confirmed: usize,
    cancelled: Vec<String>,
    lost: usize,
    duplicate_orders: i64,
    oversold: i64,
    double_charges: usize,
    missing_refunds: usize,
    shipments_wrong: usize,
    unpublished_outbox: i64,
    open_dead_letters: usize,
    settled_in: Duration,
}

pub(crate) async fn count(app: &TestApp, ctx: ContextName, sql: &str) -> i64 {
    let db = app.database(ctx).await;
    let n: i64 = sqlx::query_scalar(sql)
        .fetch_one(db.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    db.close().await;
    n
}

/// Waits (up to `settle`) for every order to end, then checks the promises: no order lost or
/// placed twice, none cancelled for a reason the fault caused, no oversell, one charge and one
/// shipment per confirmed order, a refund per cancelled paid order, nothing left unpublished
/// and no open dead letter.
async fn check(app: &TestApp, shop: &Shop, ids: &[String], settle: Duration) -> Verdict {
    let started = Instant::now();
    let mut v = Verdict {
        placed: ids.len(),
        ..Verdict::default()
    };
    let mut orders = Vec::new();
    for id in ids {
        let order = loop {
            let o = app
                .get(&format!("/api/v1/ordering/orders/{id}"), Some(&shop.admin))
                .await;
            let done = matches!(o.body["status"].as_str(), Some("confirmed" | "cancelled"));
            if done || o.status == 404 || started.elapsed() > settle {
                break o;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        orders.push(order);
    }
    for o in &orders {
        if o.status == 404 {
            v.lost += 1;
            continue;
        }
        let payments = o.body["payments"].as_array().cloned().unwrap_or_default();
        let charges = payments
            .iter()
            .filter(|p| p["kind"] == "charge" && p["status"] == "authorized")
            .count();
        let refunds = payments.iter().filter(|p| p["kind"] == "refund").count();
        match o.body["status"].as_str() {
            Some("confirmed") => {
                v.confirmed += 1;
                if charges != 1 || refunds != 0 {
                    v.double_charges += usize::from(charges > 1);
                }
                if o.body["shipment"]["id"].as_str().is_none() {
                    v.shipments_wrong += 1;
                }
            }
            Some("cancelled") => {
                v.cancelled.push(
                    o.body["cancellation_reason"]
                        .as_str()
                        .unwrap_or("?")
                        .to_owned(),
                );
                if charges == 1 && refunds != 1 {
                    v.missing_refunds += 1;
                }
            }
            other => v.cancelled.push(format!("unsettled: {other:?}")),
        }
    }
    let in_db = count(
        app,
        ContextName::Ordering,
        "select count(*) from customer_order",
    )
    .await;
    v.duplicate_orders = in_db - i64::try_from(ids.len()).unwrap_or(0);
    let stock = app.stock(&shop.product).await;
    let on_hand = stock["on_hand"].as_i64().unwrap_or(-1);
    let reserved = stock["reserved"].as_i64().unwrap_or(-1);
    assert_eq!(
        stock["available"].as_i64(),
        Some(on_hand - reserved),
        "{stock}"
    );
    assert_eq!(on_hand, shop.stock, "nothing was dispatched: {stock}");
    let confirmed_units = i64::try_from(v.confirmed).unwrap_or(0);
    assert_eq!(
        reserved, confirmed_units,
        "units held = units confirmed: {stock}"
    );
    v.oversold = (confirmed_units - shop.stock).max(0);
    let shipments = count(app, ContextName::Shipping, "select count(*) from shipment").await;
    v.shipments_wrong += usize::try_from((shipments - confirmed_units).abs()).unwrap_or(0);
    // Everything settles: outboxes drain, no delivery is parked.
    loop {
        let mut unpublished = 0;
        for ctx in ContextName::ALL {
            unpublished += count(
                app,
                ctx,
                "select count(*) from outbox where published_at is null",
            )
            .await;
        }
        v.unpublished_outbox = unpublished;
        if unpublished == 0 || started.elapsed() > settle {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dead = app
        .get("/api/v1/admin/dead-letters", Some(&shop.admin))
        .await;
    v.open_dead_letters = dead.body["items"]
        .as_array()
        .map(|d| d.iter().filter(|d| d["replayed_at"].is_null()).count())
        .unwrap_or(0);
    v.settled_in = started.elapsed();
    v
}

/// A business cancellation (the shopper's card, no stock): never one caused by a fault.
fn wrong_cancellations(v: &Verdict) -> usize {
    v.cancelled
        .iter()
        .filter(|r| !matches!(r.as_str(), "out_of_stock" | "payment_declined"))
        .count()
}

fn assert_kept_promises(scenario: &str, v: &Verdict, seen: &Seen) {
    let figures = format!(
        "{scenario}: placed {}, confirmed {}, cancelled {:?}, lost {}, duplicates {}, oversold {}, \
         double charges {}, missing refunds {}, shipment mismatches {}, unpublished {}, open dead letters {}, \
         settled in {:.1?}; answers: ok {}, 503 {}, unanswered {}, 5xx other than 503 {}, slowest {} ms, \
         checkouts retried {}",
        v.placed,
        v.confirmed,
        v.cancelled,
        v.lost,
        v.duplicate_orders,
        v.oversold,
        v.double_charges,
        v.missing_refunds,
        v.shipments_wrong,
        v.unpublished_outbox,
        v.open_dead_letters,
        v.settled_in,
        seen.ok.load(Ordering::Relaxed),
        seen.unavailable.load(Ordering::Relaxed),
        seen.unanswered.load(Ordering::Relaxed),
        seen.server_errors.load(Ordering::Relaxed),
        seen.slowest_ms.load(Ordering::Relaxed),
        seen.retried_checkouts.load(Ordering::Relaxed),
    );
    eprintln!("chaos figures | {figures}");
    assert_eq!(v.lost, 0, "{figures}");
    assert_eq!(v.duplicate_orders, 0, "{figures}");
    assert_eq!(v.oversold, 0, "{figures}");
    assert_eq!(v.double_charges, 0, "{figures}");
    assert_eq!(v.missing_refunds, 0, "{figures}");
    assert_eq!(v.shipments_wrong, 0, "{figures}");
    assert_eq!(wrong_cancellations(v), 0, "{figures}");
    assert_eq!(v.confirmed, v.placed, "{figures}");
    assert_eq!(v.unpublished_outbox, 0, "{figures}");
    assert_eq!(v.open_dead_letters, 0, "{figures}");
    assert_eq!(
        seen.server_errors.load(Ordering::Relaxed),
        0,
        "{figures}\n{:?}",
        seen.samples.lock().map(|s| s.clone()).unwrap_or_default()
    );
    assert_eq!(
        seen.unavailable_without_retry_after.load(Ordering::Relaxed),
        0,
        "{figures}"
    );
}

/// `emporium serve` as its own process (all four contexts), restartable on the same port and
/// data, behind a `TestApp` for the helpers.
pub(crate) async fn spawn_monolith(
    backend: TestBackend,
    extra: &[(&str, &str)],
) -> Option<TestApp> {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
    let mut config = Config::local(dir.path().join("data"));
    if backend == TestBackend::Postgres {
        let admin = postgres_url()?;
        let url = fresh_postgres_database(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create a database: {e:#}"));
        config.database_url = Some(url);
    }
    let key = {
        use ed25519_dalek::pkcs8::EncodePrivateKey;
        ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng)
            .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
            .unwrap_or_else(|e| panic!("cannot encode a key: {e}"))
            .to_string()
    };
    let mut env: std::collections::BTreeMap<String, String> = [
        ("EMPORIUM_DATA_DIR", config.data_dir.display().to_string()),
        ("EMPORIUM_LISTEN", "127.0.0.1:0".to_owned()),
        ("EMPORIUM_LOG_FORMAT", "json".to_owned()),
        ("RUST_LOG", "warn,emporium::app=info".to_owned()),
        ("EMPORIUM_RATE_LIMIT", "off".to_owned()),
        (
            "EMPORIUM_METRICS_TOKEN",
            crate::helpers::METRICS_TOKEN.to_owned(),
        ),
        ("EMPORIUM_SHUTDOWN_TIMEOUT_SECS", "1".to_owned()),
        ("EMPORIUM_JWT_PRIVATE_KEY", key.clone()),
        (
            "EMPORIUM_BOOTSTRAP_ADMIN_EMAIL",
            BOOTSTRAP_ADMIN.0.to_owned(),
        ),
        (
            "EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD",
            BOOTSTRAP_ADMIN.1.to_owned(),
        ),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    if let Some(url) = &config.database_url {
        env.insert("EMPORIUM_DATABASE_URL".to_owned(), url.clone());
    }
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let mut process = Process::new("monolith", &["serve"], env, dir.path().join("monolith.log"));
    process.start();
    let mut deployment = Deployment {
        processes: vec![process],
        ports: std::collections::BTreeMap::new(),
    };
    let port = deployment
        .settle_port("monolith")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let address = format!("http://127.0.0.1:{port}");
    config.bootstrap_admin = Some((BOOTSTRAP_ADMIN.0.to_owned(), BOOTSTRAP_ADMIN.1.to_owned()));
    config.jwt_private_key = Some(key);
    let app = TestApp {
        address,
        port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(0)
            .build()
            .unwrap_or_default(),
        backend,
        config,
        host: Host::Split(deployment),
        bus: Arc::new(bus::MemoryBus::new()),
        _dir: Arc::new(dir),
    };
    wait_ready(&app, 60).await;
    Some(app)
}

async fn wait_ready(app: &TestApp, secs: u64) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        let ok = app
            .client
            .get(format!("{}/health/ready", app.address))
            .timeout(Duration::from_secs(2))
            .send()
            .await
            .is_ok_and(|r| r.status().is_success());
        if ok {
            return;
        }
        assert!(Instant::now() < deadline, "not ready after {secs} s");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Polls `/health/ready` in the background, remembering whether it ever said 503.
struct ReadinessWatch {
    went_down: Arc<AtomicBool>,
    watching: Arc<AtomicBool>,
    task: tokio::task::JoinHandle<()>,
}

impl ReadinessWatch {
    fn start(app: &TestApp) -> Self {
        let went_down = Arc::new(AtomicBool::new(false));
        let watching = Arc::new(AtomicBool::new(true));
        let (down, on) = (went_down.clone(), watching.clone());
        let (http, url) = (app.client.clone(), format!("{}/health/ready", app.address));
        let task = tokio::spawn(async move {
            while on.load(Ordering::Relaxed) {
                if let Ok(r) = http.get(&url).timeout(Duration::from_secs(10)).send().await {
                    if r.status().as_u16() == 503 {
                        down.store(true, Ordering::Relaxed);
                    }
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        });
        Self {
            went_down,
            watching,
            task,
        }
    }

    /// Stops watching; whether readiness went down meanwhile.
    async fn stop(self) -> bool {
        self.watching.store(false, Ordering::Relaxed);
        let _ = self.task.await;
        self.went_down.load(Ordering::Relaxed)
    }
}

/// SIGKILL, then start again on the same port and data; returns how long it took to be
/// ready again.
pub(crate) async fn kill_and_restart(app: &mut TestApp) -> Duration {
    let p = app.deployment().process("monolith");
    p.kill();
    let started = Instant::now();
    p.start();
    wait_ready(app, 60).await;
    started.elapsed()
}

// R1: SIGKILLs at random moments while shoppers check out, and while the orders settle.
async fn kills(backend: TestBackend, scenario: &str) {
    let Some(mut app) = spawn_monolith(backend, &[]).await else {
        return;
    };
    let p = profile();
    let shop_ = open_shop(&app, p.orders).await;
    let seen = Arc::new(Seen::default());
    let workers = shop(&app, &shop_, p.clients, p.orders, &seen).await;
    let mut kills = 0;
    let mut slowest_restart = Duration::ZERO;
    let placing_kills = p.kills.saturating_sub(2).max(1);
    while kills < placing_kills && workers.iter().any(|w| !w.is_finished()) {
        let wait = rand::thread_rng().gen_range(300..1500);
        tokio::time::sleep(Duration::from_millis(wait)).await;
        slowest_restart = slowest_restart.max(kill_and_restart(&mut app).await);
        kills += 1;
    }
    let mut ids = Vec::new();
    for w in workers {
        ids.extend(w.await.unwrap_or_else(|e| panic!("a shopper failed: {e}")));
    }
    // Settlement: kill while the saga finishes the last orders.
    while kills < p.kills {
        tokio::time::sleep(Duration::from_millis(rand::thread_rng().gen_range(50..400))).await;
        slowest_restart = slowest_restart.max(kill_and_restart(&mut app).await);
        kills += 1;
    }
    let v = check(&app, &shop_, &ids, Duration::from_secs(120)).await;
    eprintln!("chaos figures | {scenario}: slowest restart to ready {slowest_restart:.1?}");
    assert!(
        slowest_restart <= Duration::from_secs(10),
        "{slowest_restart:?}"
    );
    assert_kept_promises(&format!("{scenario}, {kills} SIGKILLs"), &v, &seen);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_checkouts_survive_sigkills_on_sqlite() {
    kills(TestBackend::Sqlite, "R1 monolith on SQLite").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r1_checkouts_survive_sigkills_on_postgres() {
    kills(TestBackend::Postgres, "R1 monolith on PostgreSQL").await;
}

// R6: PostgreSQL cut off for 15 s while shoppers check out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r6_a_database_outage_under_load_is_503_and_recovers() {
    let Some(admin) = postgres_url() else { return };
    let real = authority(&admin, 5432);
    let proxy = FaultProxy::start(&real).await;
    let proxied = format!("127.0.0.1:{}", proxy.port);
    let Some(app) = spawn_app_with(TestBackend::Postgres, |c| {
        c.database_url = c.database_url.as_ref().map(|u| u.replace(&real, &proxied));
    })
    .await
    else {
        return;
    };
    let orders = if full() { 300 } else { 40 };
    let shop_ = open_shop(&app, orders).await;
    let seen = Arc::new(Seen::default());
    let workers = shop(&app, &shop_, 4, orders, &seen).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;

    let readiness = ReadinessWatch::start(&app);
    // Shoppers may be done before the cut on a fast machine: a reader keeps asking for its
    // orders (a database read) throughout, so the outage is always met by requests.
    let probing = Arc::new(AtomicBool::new(true));
    let prober = {
        let c = app.customer().await;
        let reader = Shopper {
            address: app.address.clone(),
            http: app.client.clone(),
            token: c.access_token,
            seen: seen.clone(),
        };
        let probing = probing.clone();
        tokio::spawn(async move {
            while probing.load(Ordering::Relaxed) {
                let _ = reader
                    .call(Method::GET, "/api/v1/ordering/orders", None, None)
                    .await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    proxy.set(Mode::Refuse);
    tokio::time::sleep(Duration::from_secs(15)).await;
    proxy.set(Mode::Pass);
    probing.store(false, Ordering::Relaxed);
    let _ = prober.await;
    let back = Instant::now();
    wait_ready(&app, 10).await;
    let recovered_in = back.elapsed();
    assert!(
        readiness.stop().await,
        "readiness never said the database was down"
    );

    let mut ids = Vec::new();
    for w in workers {
        ids.extend(w.await.unwrap_or_else(|e| panic!("a shopper failed: {e}")));
    }
    let v = check(&app, &shop_, &ids, Duration::from_secs(120)).await;
    eprintln!("chaos figures | R6 readiness back {recovered_in:.1?} after the database");
    assert!(recovered_in <= Duration::from_secs(10));
    assert_kept_promises("R6 PostgreSQL unreachable 15 s under load", &v, &seen);
    assert!(
        seen.unavailable.load(Ordering::Relaxed) > 0,
        "the outage was never seen as a 503"
    );
    assert!(
        seen.slowest_ms.load(Ordering::Relaxed) <= 10_000,
        "an answer took over 10 s (a hang)"
    );
    app.stop().await;
}

// R8: a fifth of the payment gateway's calls fail, half of them after it acted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r8_checkouts_survive_a_failing_payment_gateway() {
    let Some(app) = spawn_monolith(
        TestBackend::Sqlite,
        &[
            ("EMPORIUM_PAYMENT_FAULT_RATE", "0.2"),
            ("EMPORIUM_PAYMENT_RETRY_SECS", "120"),
        ],
    )
    .await
    else {
        return;
    };
    let orders = if full() { 500 } else { 40 };
    let shop_ = open_shop(&app, orders).await;
    let seen = Arc::new(Seen::default());
    let workers = shop(&app, &shop_, 4, orders, &seen).await;
    let mut ids = Vec::new();
    for w in workers {
        ids.extend(w.await.unwrap_or_else(|e| panic!("a shopper failed: {e}")));
    }
    let v = check(&app, &shop_, &ids, Duration::from_secs(150)).await;
    let db = app.database(ContextName::Ordering).await;
    let (charges, refunds): (i64, i64) = sqlx::query_as(
        "select (select count(*) from simulated_gateway_operation where operation = 'authorize' and outcome = 'approved'), \
                (select count(*) from simulated_gateway_operation where operation = 'refund')",
    )
    .fetch_one(db.pool())
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    db.close().await;
    eprintln!("chaos figures | R8 gateway ledger: {charges} approved charges, {refunds} refunds");
    assert_eq!(charges, i64::try_from(ids.len()).unwrap_or(0));
    assert_eq!(refunds, 0);
    assert_kept_promises("R8 20% payment-gateway failures", &v, &seen);
    app.stop().await;
}

// R2: RabbitMQ unreachable 10 s in every 30 s while shoppers check out across the processes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r2_the_split_checkout_survives_broker_outages() {
    let Some(url) = platform::testing::amqp_url() else {
        return;
    };
    let real = authority(&url, 5672);
    let proxy = FaultProxy::start(&real).await;
    let proxied = url.replacen(&real, &format!("127.0.0.1:{}", proxy.port), 1);
    let Some(app) = spawn_split_with(Broker::Rabbitmq, &[("EMPORIUM_AMQP_URL", &proxied)]).await
    else {
        return;
    };
    let (orders, cycles) = if full() { (600, 6) } else { (60, 1) };
    let shop_ = open_shop(&app, orders).await;
    let seen = Arc::new(Seen::default());
    let workers = shop(&app, &shop_, 4, orders, &seen).await;
    let mut outages = 0;
    let mut slowest_recovery = Duration::ZERO;
    let readiness = ReadinessWatch::start(&app);
    for _ in 0..cycles {
        tokio::time::sleep(Duration::from_secs(if full() { 20 } else { 1 })).await;
        proxy.set(Mode::Refuse);
        outages += 1;
        tokio::time::sleep(Duration::from_secs(10)).await;
        proxy.set(Mode::Pass);
        let back = Instant::now();
        wait_ready(&app, 30).await;
        slowest_recovery = slowest_recovery.max(back.elapsed());
    }
    assert!(
        readiness.stop().await,
        "readiness never said the broker was down"
    );
    let mut ids = Vec::new();
    for w in workers {
        ids.extend(w.await.unwrap_or_else(|e| panic!("a shopper failed: {e}")));
    }
    let v = check(&app, &shop_, &ids, Duration::from_secs(180)).await;
    eprintln!("chaos figures | R2 readiness back at most {slowest_recovery:.1?} after the broker");
    assert!(
        slowest_recovery <= Duration::from_secs(10),
        "{slowest_recovery:?}"
    );
    assert_kept_promises(
        &format!("R2 split, RabbitMQ cut 10 s x{outages}"),
        &v,
        &seen,
    );
    app.stop().await;
}

// R3: catalog and shipping SIGKILLed while they consume, and restarted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r3_the_split_checkout_survives_consumers_killed_mid_delivery() {
    let Some(mut app) = spawn_split_with(Broker::Rabbitmq, &[]).await else {
        return;
    };
    let (orders, target) = if full() { (600, 100) } else { (40, 6) };
    let shop_ = open_shop(&app, orders).await;
    let seen = Arc::new(Seen::default());
    let workers = shop(&app, &shop_, 4, orders, &seen).await;
    let mut kills = 0;
    let mut slowest_restart = Duration::ZERO;
    while kills < target {
        tokio::time::sleep(Duration::from_millis(
            rand::thread_rng().gen_range(100..800),
        ))
        .await;
        let name = if kills % 2 == 0 {
            "catalog"
        } else {
            "shipping"
        };
        let p = app.deployment().process(name);
        p.kill();
        let started = Instant::now();
        p.start();
        wait_ready(&app, 60).await;
        slowest_restart = slowest_restart.max(started.elapsed());
        kills += 1;
    }
    let mut ids = Vec::new();
    for w in workers {
        ids.extend(w.await.unwrap_or_else(|e| panic!("a shopper failed: {e}")));
    }
    let v = check(&app, &shop_, &ids, Duration::from_secs(180)).await;
    eprintln!("chaos figures | R3 slowest consumer restart to ready {slowest_restart:.1?}");
    assert_kept_promises(&format!("R3 split, {kills} consumer SIGKILLs"), &v, &seen);
    app.stop().await;
}
