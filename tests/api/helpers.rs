//! `spawn_app()`: the whole binary's server on port 0 with fresh databases, and typed helpers.

#![allow(dead_code)]

use std::sync::Arc;

use bus::{MemoryBus, SharedBus};
use emporium::config::{Config, ContextName};
use emporium::Application;
use kernel::testing::{fresh_postgres_database, postgres_url, TestBackend};
use serde_json::Value;

pub struct TestApp {
    pub address: String,
    pub port: u16,
    pub client: reqwest::Client,
    pub backend: TestBackend,
    pub config: Config,
    pub handle: actix_web::dev::ServerHandle,
    pub task: tokio::task::JoinHandle<anyhow::Result<()>>,
    pub bus: SharedBus,
    _dir: Arc<tempfile::TempDir>,
}

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
    pub fn assert_problem(&self, status: u16, code: &str) -> &Self {
        self.assert_status(status);
        let content_type = self.header("content-type").unwrap_or_default();
        assert!(
            content_type.starts_with("application/problem+json"),
            "content type {content_type}"
        );
        assert_eq!(self.body["code"], code, "body: {}", self.body);
        assert_eq!(self.body["status"], status);
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
    config.bootstrap_admin = Some((
        "boss@example.com".to_owned(),
        "root-of-all-trust-99".to_owned(),
    ));
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
        handle,
        task,
        bus,
        _dir: Arc::new(dir),
    })
}

impl TestApp {
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
        self.handle.stop(true).await;
        let _ = self.task.await;
    }
}

/// Declares a test that runs on SQLite and on PostgreSQL.
#[macro_export]
macro_rules! both_backends {
    ($name:ident, |$app:ident| $body:block) => {
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn story($app: $crate::helpers::TestApp) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let app = $crate::helpers::spawn_app(kernel::testing::TestBackend::Sqlite).await.expect("sqlite app");
                story(app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                let Some(app) = $crate::helpers::spawn_app(kernel::testing::TestBackend::Postgres).await else {
                    return;
                };
                story(app).await;
            }
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
