//! `spawn_app()`: the whole binary's server on port 0 with fresh databases, and typed helpers.

#![allow(dead_code)]

use std::sync::Arc;

use bus::{MemoryBus, SharedBus};
use emporium::config::{Config, ContextName};
use emporium::Application;
use platform::testing::{fresh_postgres_database, postgres_url, TestBackend};
use serde_json::Value;

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub backend: TestBackend,
    pub config: Config,
    pub host: Host,
    pub bus: SharedBus,
    pub _dir: Arc<tempfile::TempDir>,
}

/// Where the app under test runs.
pub enum Host {
    /// The whole binary's server inside the test process, on the memory bus.
    InProcess {
        handle: actix_web::dev::ServerHandle,
        task: tokio::task::JoinHandle<anyhow::Result<()>>,
    },
    /// Four context processes and the gateway over RabbitMQ (`crate::split`).
    Split(crate::split::Deployment),
}

/// Reads `/metrics` on the public listener in every test deployment.
pub const METRICS_TOKEN: &str = "test-metrics-token-0123456789";

/// How long test deployments retry a charge the gateway cannot answer before cancelling.
pub const PAYMENT_RETRY_SECS: &str = "4";

/// The bootstrap admin every test deployment ensures.
pub const BOOTSTRAP_ADMIN: (&str, &str) = ("boss@example.com", "root-of-all-trust-99");

pub struct Response {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Value,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    }

    #[track_caller]
    pub fn assert_status(&self, expected: u16) -> &Self {
        assert_eq!(
            self.status, expected,
            "unexpected status; body: {}",
            self.body
        );
        self
    }

    /// Asserts a problem+json error with the given status and code.
    #[track_caller]
    /// The fields a validation problem names, in its order.
    pub fn error_fields(&self) -> Vec<&str> {
        self.body["errors"]
            .as_array()
            .map(|errors| errors.iter().filter_map(|e| e["field"].as_str()).collect())
            .unwrap_or_default()
    }

    pub fn assert_problem(&self, status: u16, code: &str) -> &Self {
        self.assert_status(status);
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/problem+json"),
            "content type {content_type}"
        );
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
        // The type names the page about the code, and the code has one (docs/problems.md).
        assert_eq!(
            self.body["type"],
            format!("/problems/{code}"),
            "body: {}",
            self.body
        );
        let documented = emporium::problems::describe(code);
        assert!(
            documented.is_some(),
            "{code} has no row in docs/problems.md"
        );
        self
    }
}

/// Spawns the app on SQLite, or on PostgreSQL (`None` when PostgreSQL is not configured).
pub async fn spawn_app(backend: TestBackend) -> Option<TestApp> {
    spawn_app_with(backend, |_| {}).await
}

pub async fn spawn_app_with(
    backend: TestBackend,
    tweak: impl FnOnce(&mut Config),
) -> Option<TestApp> {
    let dir = tempfile::tempdir().ok()?;
    let mut config = Config::local(dir.path().to_path_buf());
    config.listen = "127.0.0.1:0".parse().ok()?;
    config.rate_limit = false;
    config.shutdown_timeout = std::time::Duration::from_secs(1);
    config.bootstrap_admin = Some((BOOTSTRAP_ADMIN.0.to_owned(), BOOTSTRAP_ADMIN.1.to_owned()));
    config.metrics_token = Some(METRICS_TOKEN.to_owned());
    config.payment_retry = std::time::Duration::from_secs(PAYMENT_RETRY_SECS.parse().unwrap_or(4));
    if backend == TestBackend::Postgres {
        let admin = postgres_url()?;
        let url = fresh_postgres_database(&admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create test database: {e:#}"));
        config.database_url = Some(url);
    }
    tweak(&mut config);
    let bus: SharedBus = Arc::new(MemoryBus::new());
    let app = Application::build_with_bus(config.clone(), bus.clone())
        .await
        .unwrap_or_else(|e| panic!("cannot build app: {e:#}"));
    let port = app.port();
    let handle = app.server_handle();
    let task = tokio::spawn(app.run_until_stopped());
    Some(TestApp {
        address: format!("http://127.0.0.1:{port}"),
        port,
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default(),
        backend,
        config,
        host: Host::InProcess { handle, task },
        bus,
        _dir: Arc::new(dir),
    })
}

impl TestApp {
    /// A pool on one context's own database (in-process deployments), for tests that read
    /// or damage rows directly.
    pub async fn database(&self, ctx: ContextName) -> platform::db::Database {
        // A split deployment: the context's own process knows its database.
        let own = match &self.host {
            Host::Split(d) => d
                .processes
                .iter()
                .find(|p| p.name == ctx.as_str())
                .and_then(|p| {
                    p.env_var(&format!(
                        "EMPORIUM_{}_DATABASE_URL",
                        ctx.as_str().to_uppercase()
                    ))
                })
                .map(str::to_owned),
            Host::InProcess { .. } => None,
        };
        let target = platform::db::DatabaseTarget::resolve(
            ctx.as_str(),
            &self.config.data_dir,
            own.as_deref().or(self.config.database_url_for(ctx)),
        );
        platform::db::Database::connect(&target)
            .await
            .unwrap_or_else(|e| panic!("cannot open {} database: {e:#}", ctx.as_str()))
    }

    pub fn runs(&self, ctx: ContextName) -> bool {
        self.config.runs(ctx)
    }

    pub async fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
        headers: &[(&str, &str)],
    ) -> Response {
        let mut req = self
            .client
            .request(method, format!("{}{}", self.address, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {path} failed: {e}"));
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap_or_default();
        let body = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes)
                .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()))
        };
        Response {
            status,
            headers,
            body,
        }
    }

    pub async fn get(&self, path: &str, token: Option<&str>) -> Response {
        self.request(reqwest::Method::GET, path, token, None, &[])
            .await
    }

    pub async fn post(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.request(reqwest::Method::POST, path, token, Some(body), &[])
            .await
    }

    pub async fn put(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.request(reqwest::Method::PUT, path, token, Some(body), &[])
            .await
    }

    pub async fn patch(&self, path: &str, token: Option<&str>, body: &Value) -> Response {
        self.request(reqwest::Method::PATCH, path, token, Some(body), &[])
            .await
    }

    pub async fn delete(&self, path: &str, token: Option<&str>) -> Response {
        self.request(reqwest::Method::DELETE, path, token, None, &[])
            .await
    }

    /// Sends raw bytes with a content type (for malformed-input tests).
    pub async fn post_raw(
        &self,
        path: &str,
        token: Option<&str>,
        content_type: &str,
        body: Vec<u8>,
    ) -> Response {
        let mut req = self
            .client
            .post(format!("{}{}", self.address, path))
            .header("content-type", content_type)
            .body(body);
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let res = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("request to {path} failed: {e}"));
        let status = res.status().as_u16();
        let headers = res.headers().clone();
        let bytes = res.bytes().await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        Response {
            status,
            headers,
            body,
        }
    }

    /// Polls `check` until it returns `Some`, or panics after `secs`.
    pub async fn eventually<T, F, Fut>(&self, what: &str, secs: u64, mut check: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(secs);
        loop {
            if let Some(v) = check().await {
                return v;
            }
            if tokio::time::Instant::now() > deadline {
                panic!("timed out waiting for {what}");
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }

    pub async fn stop(self) {
        match self.host {
            Host::InProcess { handle, task } => {
                handle.stop(true).await;
                let _ = task.await;
            }
            Host::Split(deployment) => {
                self.bus.shutdown().await;
                drop(deployment);
            }
        }
    }

    /// Publishes the envelopes again and returns once every consumer group has handled them.
    /// The memory bus delivers before `publish` returns; across processes the broker
    /// delivers later, so this waits until the processes' delivery counters (`/metrics`) show
    /// every copy handled: a duplicate must be *handled* before its absence of effect is
    /// checked.
    pub async fn redeliver(&self, envelopes: &[bus::Envelope]) {
        let Host::Split(deployment) = &self.host else {
            for e in envelopes {
                self.bus
                    .publish(e)
                    .await
                    .unwrap_or_else(|err| panic!("{err}"));
            }
            return;
        };
        let types: Vec<&str> = envelopes.iter().map(|e| e.event_type.as_str()).collect();
        let before = deployment.handled(&types).await;
        let expected: usize = types
            .iter()
            .map(|t| emporium::asyncapi::consumers_of(t).len())
            .sum();
        for e in envelopes {
            self.bus
                .publish(e)
                .await
                .unwrap_or_else(|err| panic!("{err}"));
        }
        self.eventually("every consumer handles the redelivery", 30, || async {
            (deployment.handled(&types).await >= before + expected as u64).then_some(())
        })
        .await;
    }
}

/// Declares a test that runs on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$app:ident| $body:block) => {
        $crate::topologies!($name, |$app| $body, []);
    };
}

/// Declares a test that runs on SQLite, on PostgreSQL, on the split topology (a process per
/// context and the gateway over RabbitMQ and PostgreSQL), and on the same with two instances
/// each of catalog and ordering.
#[macro_export]
macro_rules! every_topology {
    ($name:ident, |$app:ident| $body:block) => {
        $crate::topologies!($name, |$app| $body, [on_split]);
    };
}

#[macro_export]
macro_rules! topologies {
    ($name:ident, |$app:ident| $body:block, [$($split:ident)?]) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn story($app: $crate::helpers::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let app = $crate::helpers::spawn_app(platform::testing::TestBackend::Sqlite).await.expect("sqlite app");
                story(app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                let Some(app) = $crate::helpers::spawn_app(platform::testing::TestBackend::Postgres).await else {
                    return;
                };
                story(app).await;
            }

            $(
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $split() {
                let Some(app) = $crate::split::spawn_split().await else {
                    return;
                };
                story(app).await;
            }

            /// The same with two instances each of catalog and ordering behind the gateway,
            /// and Redis.
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_replicated() {
                let Some(app) = $crate::split::spawn_replicated().await else {
                    return;
                };
                story(app).await;
            }

            /// The same on SNS + SQS (`--features sqs`).
            #[cfg(feature = "sqs")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_split_sqs() {
                let Some(app) = $crate::split::spawn_split_on($crate::split::Broker::Sqs).await else {
                    return;
                };
                story(app).await;
            }
            )?
        }
    };
}

/// A signed-up customer with tokens.
pub struct Customer {
    pub id: String,
    pub email: String,
    pub password: String,
    pub access_token: String,
    pub refresh_token: String,
}

impl TestApp {
    pub async fn sign_up(&self, email: &str, password: &str, name: &str) -> Response {
        self.post(
            "/api/v1/identity/users",
            None,
            &serde_json::json!({"email": email, "password": password, "name": name}),
        )
        .await
    }

    pub async fn log_in(&self, email: &str, password: &str) -> Response {
        self.post(
            "/api/v1/identity/tokens",
            None,
            &serde_json::json!({"email": email, "password": password}),
        )
        .await
    }

    /// Signs up a fresh customer and logs in.
    pub async fn customer(&self) -> Customer {
        let email = format!("c-{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "plum-anchor-violet-42".to_owned();
        let created = self.sign_up(&email, &password, "Test Customer").await;
        created.assert_status(201);
        let tokens = self.log_in(&email, &password).await;
        tokens.assert_status(200);
        Customer {
            id: created.body["id"].as_str().unwrap_or_default().to_owned(),
            email,
            password,
            access_token: tokens.body["access_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
            refresh_token: tokens.body["refresh_token"]
                .as_str()
                .unwrap_or_default()
                .to_owned(),
        }
    }

    /// A customer promoted to admin (through the bootstrap admin), with fresh tokens.
    pub async fn admin(&self) -> Customer {
        let boss = self.bootstrap_admin_token().await;
        let mut user = self.customer().await;
        self.put(
            &format!("/api/v1/identity/users/{}/roles", user.id),
            Some(&boss),
            &serde_json::json!({"roles": ["customer", "admin"]}),
        )
        .await
        .assert_status(200);
        let tokens = self.log_in(&user.email, &user.password).await;
        user.access_token = tokens.body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        user.refresh_token = tokens.body["refresh_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        user
    }

    pub async fn bootstrap_admin_token(&self) -> String {
        let (email, password) = self
            .config
            .bootstrap_admin
            .clone()
            .unwrap_or_else(|| panic!("spawn_app sets a bootstrap admin"));
        let res = self.log_in(&email, &password).await;
        res.assert_status(200);
        res.body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// The identity signing key the app generated in its data dir.
    pub fn signing_key_pem(&self) -> String {
        std::fs::read_to_string(self.config.data_dir.join("jwt-ed25519.pem")).unwrap_or_default()
    }
}

/// Records events of the given types as they are published (a test-only consumer group).
pub struct Observer {
    pub seen: std::sync::Arc<std::sync::Mutex<Vec<bus::Envelope>>>,
}

struct Collect(std::sync::Arc<std::sync::Mutex<Vec<bus::Envelope>>>);

#[async_trait::async_trait]
impl bus::EventHandler for Collect {
    async fn handle(&self, envelope: &bus::Envelope) -> anyhow::Result<()> {
        if let Ok(mut seen) = self.0.lock() {
            seen.push(envelope.clone());
        }
        Ok(())
    }
}

struct NoDeadLetters;

#[async_trait::async_trait]
impl bus::DeadLetterStore for NoDeadLetters {
    async fn put(
        &self,
        group: &str,
        envelope: &bus::Envelope,
        error: &str,
        _: u32,
    ) -> anyhow::Result<()> {
        panic!(
            "observer {group} failed on {}: {error}",
            envelope.event_type
        )
    }
    async fn list(
        &self,
        _: &platform::pagination::PageRequest,
    ) -> anyhow::Result<platform::pagination::Page<bus::DeadLetter>> {
        Ok(platform::pagination::Page {
            items: vec![],
            next_cursor: None,
        })
    }
    async fn get(&self, _: uuid::Uuid) -> anyhow::Result<Option<bus::DeadLetter>> {
        Ok(None)
    }
    async fn mark_replayed(&self, _: uuid::Uuid, _: kernel::Timestamp) -> anyhow::Result<()> {
        Ok(())
    }
}

impl Observer {
    pub fn of_type(&self, event_type: &str) -> Vec<bus::Envelope> {
        self.seen
            .lock()
            .map(|s| {
                s.iter()
                    .filter(|e| e.event_type == event_type)
                    .cloned()
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl TestApp {
    pub async fn observe(&self, event_types: &[&str]) -> Observer {
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        self.bus
            .subscribe(bus::Subscription::new(
                format!("test.observer.{}", uuid::Uuid::new_v4().simple()),
                bus::DeliveryMode::Competing,
                event_types,
                std::sync::Arc::new(Collect(seen.clone())),
                std::sync::Arc::new(NoDeadLetters),
            ))
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        Observer { seen }
    }

    /// Creates a product as admin and sets its stock; returns its id.
    pub async fn product(&self, admin: &str, sku: &str, amount: i64, stock: i64) -> String {
        let res = self
            .post(
                "/api/v1/catalog/products",
                Some(admin),
                &serde_json::json!({"sku": sku, "name": format!("Product {sku}"), "price": {"amount": amount, "currency": "EUR"}}),
            )
            .await;
        res.assert_status(201);
        let id = res.body["id"].as_str().unwrap_or_default().to_owned();
        self.put(
            &format!("/api/v1/catalog/products/{id}/stock"),
            Some(admin),
            &serde_json::json!({"on_hand": stock}),
        )
        .await
        .assert_status(200);
        id
    }

    pub async fn stock(&self, product: &str) -> serde_json::Value {
        let res = self
            .get(&format!("/api/v1/catalog/products/{product}/stock"), None)
            .await;
        res.assert_status(200);
        res.body
    }
}

impl TestApp {
    /// A second instance of the same deployment: same databases, same bus.
    pub async fn second_instance(&self) -> TestApp {
        self.second_instance_with(|_| {}).await
    }

    /// A second instance with a changed configuration (same data and bus).
    pub async fn second_instance_with(&self, tweak: impl FnOnce(&mut Config)) -> TestApp {
        let mut config = self.config.clone();
        tweak(&mut config);
        let app = Application::build_with_bus(config.clone(), self.bus.clone())
            .await
            .unwrap_or_else(|e| panic!("cannot build second instance: {e:#}"));
        let port = app.port();
        let handle = app.server_handle();
        let task = tokio::spawn(app.run_until_stopped());
        TestApp {
            address: format!("http://127.0.0.1:{port}"),
            port,
            client: self.client.clone(),
            backend: self.backend,
            config,
            host: Host::InProcess { handle, task },
            bus: self.bus.clone(),
            _dir: self._dir.clone(),
        }
    }
}

pub fn address() -> Value {
    serde_json::json!({"name": "Ada Lovelace", "line1": "12 Market Street", "city": "Berlin", "postal_code": "10115", "country": "DE"})
}

impl TestApp {
    /// A product ordering can sell: created in catalog and seen by ordering's projection.
    pub async fn sellable(&self, admin: &str, sku: &str, amount: i64, stock: i64) -> String {
        let id = self.product(admin, sku, amount, stock).await;
        let probe = self.customer().await;
        self.eventually("ordering knows the product", 10, || async {
            let res = self
                .post(
                    "/api/v1/ordering/cart/items",
                    Some(&probe.access_token),
                    &serde_json::json!({"product_id": id, "quantity": 1}),
                )
                .await;
            (res.status == 200).then_some(())
        })
        .await;
        id
    }

    pub async fn add_to_cart(&self, token: &str, product: &str, quantity: i64) -> Response {
        self.post(
            "/api/v1/ordering/cart/items",
            Some(token),
            &serde_json::json!({"product_id": product, "quantity": quantity}),
        )
        .await
    }

    pub async fn checkout(&self, token: &str, payment_token: &str, key: Option<&str>) -> Response {
        let body =
            serde_json::json!({"shipping_address": address(), "payment_token": payment_token});
        let headers: Vec<(&str, &str)> = key
            .map(|k| vec![("idempotency-key", k)])
            .unwrap_or_default();
        self.request(
            reqwest::Method::POST,
            "/api/v1/ordering/orders",
            Some(token),
            Some(&body),
            &headers,
        )
        .await
    }

    /// Puts `quantity` of `product` in the cart and checks out with `payment_token`; the
    /// new order's id.
    pub async fn place_order(
        &self,
        token: &str,
        product: &str,
        quantity: i64,
        payment_token: &str,
    ) -> String {
        self.add_to_cart(token, product, quantity)
            .await
            .assert_status(200);
        let placed = self.checkout(token, payment_token, None).await;
        placed.assert_status(202);
        placed.body["id"]
            .as_str()
            .unwrap_or_else(|| panic!("no order id: {}", placed.body))
            .to_owned()
    }

    /// Waits until the order reaches `status`; returns it. The wait is generous: over the SQS
    /// emulator, with the whole suite running beside it, fifty orders take tens of seconds to
    /// pass every hop. What is checked here is the status reached; latency is the bench's.
    pub async fn order_reaches(&self, token: &str, order: &str, status: &str) -> Value {
        let path = format!("/api/v1/ordering/orders/{order}");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(60);
        loop {
            let res = self.get(&path, Some(token)).await;
            if res.body["status"] == status {
                return res.body;
            }
            if tokio::time::Instant::now() > deadline {
                panic!(
                    "order {order} did not reach {status}; last seen: {}",
                    res.body
                );
            }
            tokio::time::sleep(std::time::Duration::from_millis(25)).await;
        }
    }
}

/// A Python that can import `module`: `EMPORIUM_TEST_PYTHON`, else the CI virtualenv, else
/// `python3`. `None` (a skip) when there is none, which fails under `CI=true`.
pub fn test_python(module: &str) -> Option<std::path::PathBuf> {
    use std::path::PathBuf;
    let python = std::env::var("EMPORIUM_TEST_PYTHON")
        .map(PathBuf::from)
        .ok()
        .or_else(|| {
            let venv =
                PathBuf::from(std::env::var("HOME").ok()?).join(".cache/emporium-venv/bin/python");
            venv.exists().then_some(venv)
        })
        .unwrap_or_else(|| PathBuf::from("python3"));
    let usable = std::process::Command::new(&python)
        .args(["-c", &format!("import {module}")])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !usable {
        assert!(
            std::env::var("CI").is_err(),
            "CI: {} cannot import {module} (pip install {module})",
            python.display()
        );
        eprintln!("skipping: no Python with {module} (set EMPORIUM_TEST_PYTHON)");
        return None;
    }
    Some(python)
}
