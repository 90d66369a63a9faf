//! The split topology: identity, catalog, ordering and shipping as four processes, each with
//! its own PostgreSQL database, RabbitMQ between them, and the gateway in front. A checkout
//! runs end to end through the gateway; then shipping is killed mid-flow, orders pile up,
//! shipping comes back, and every order completes. Needs EMPORIUM_TEST_POSTGRES_URL and
//! EMPORIUM_TEST_AMQP_URL (both required under CI=true).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    unreachable_pub
)]

use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use serde_json::{json, Value};

const ADMIN: (&str, &str) = ("ops@example.com", "split-deploy-violet-3");

fn amqp_url() -> Option<String> {
    match std::env::var("EMPORIUM_TEST_AMQP_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ if std::env::var("CI").is_ok_and(|v| v == "true") => {
            panic!("EMPORIUM_TEST_AMQP_URL must be set when CI=true")
        }
        _ => {
            eprintln!("skipping split test: EMPORIUM_TEST_AMQP_URL is not set");
            None
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Process {
    name: String,
    env: BTreeMap<String, String>,
    args: Vec<String>,
    log: std::path::PathBuf,
    child: Option<Child>,
}

impl Process {
    fn start(&mut self) {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_emporium"))
            .args(&self.args)
            .envs(&self.env)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::from(log.try_clone().unwrap()))
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name));
        self.child = Some(child);
    }

    fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

struct Deployment {
    processes: Vec<Process>,
    gateway: String,
    http: reqwest::Client,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for p in &mut self.processes {
            p.kill();
        }
    }
}

impl Deployment {
    fn process(&mut self, name: &str) -> &mut Process {
        self.processes.iter_mut().find(|p| p.name == name).unwrap()
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self.http.request(method, format!("{}{path}", self.gateway));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        match req.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                (status, res.json().await.unwrap_or(Value::Null))
            }
            Err(_) => (0, Value::Null),
        }
    }

    async fn until<T, F, Fut>(&self, what: &str, secs: u64, mut f: F) -> T
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Option<T>>,
    {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(v) = f().await {
                return v;
            }
            if tokio::time::Instant::now() > deadline {
                let logs: Vec<String> = self
                    .processes
                    .iter()
                    .map(|p| {
                        format!(
                            "--- {}:\n{}",
                            p.name,
                            std::fs::read_to_string(&p.log).unwrap_or_default()
                        )
                    })
                    .collect();
                panic!("timed out waiting for {what}\n{}", logs.join("\n"));
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn token(&self, email: &str, password: &str) -> String {
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/identity/tokens",
                None,
                Some(json!({"email": email, "password": password})),
            )
            .await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_owned()
    }

    async fn customer(&self) -> String {
        let email = format!("split-{}@example.com", uuid::Uuid::new_v4().simple());
        let (status, body) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/identity/users",
                None,
                Some(json!({"email": email, "password": "customer-violet-anchor-8", "name": "Split"})),
            )
            .await;
        assert_eq!(status, 201, "{body}");
        self.token(&email, "customer-violet-anchor-8").await
    }

    async fn order(&self, token: &str, product: &str) -> String {
        self.until("the product reaches ordering", 30, || async {
            let (s, _) = self
                .call(
                    reqwest::Method::POST,
                    "/api/v1/ordering/cart/items",
                    Some(token),
                    Some(json!({"product_id": product, "quantity": 1})),
                )
                .await;
            (s == 200).then_some(())
        })
        .await;
        let body = json!({"shipping_address": {"name": "Split", "line1": "1 Queue St", "city": "Berlin", "postal_code": "10115", "country": "DE"}, "payment_token": "tok_visa"});
        let (status, order) = self
            .call(
                reqwest::Method::POST,
                "/api/v1/ordering/orders",
                Some(token),
                Some(body),
            )
            .await;
        assert_eq!(status, 202, "{order}");
        order["id"].as_str().unwrap().to_owned()
    }

    async fn status(&self, token: &str, order: &str) -> String {
        let (_, o) = self
            .call(
                reqwest::Method::GET,
                &format!("/api/v1/ordering/orders/{order}"),
                Some(token),
                None,
            )
            .await;
        o["status"].as_str().unwrap_or_default().to_owned()
    }
}

async fn deploy(dir: &std::path::Path, pg_admin: &str, amqp: &str) -> Deployment {
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng)
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap()
        .to_string();
    let namespace = format!("split{}", uuid::Uuid::new_v4().simple());
    let ports: BTreeMap<&str, u16> = ["identity", "catalog", "ordering", "shipping", "gateway"]
        .into_iter()
        .map(|n| (n, free_port()))
        .collect();
    let mut processes = Vec::new();
    for ctx in ["identity", "catalog", "ordering", "shipping"] {
        let db = kernel::testing::fresh_postgres_database(pg_admin)
            .await
            .unwrap();
        let mut env = BTreeMap::new();
        env.insert("EMPORIUM_CONTEXTS".to_owned(), ctx.to_owned());
        env.insert(format!("EMPORIUM_{}_DATABASE_URL", ctx.to_uppercase()), db);
        env.insert("EMPORIUM_BUS".to_owned(), "rabbitmq".to_owned());
        env.insert("EMPORIUM_AMQP_URL".to_owned(), amqp.to_owned());
        env.insert("EMPORIUM_AMQP_NAMESPACE".to_owned(), namespace.clone());
        env.insert(
            "EMPORIUM_LISTEN".to_owned(),
            format!("127.0.0.1:{}", ports[ctx]),
        );
        env.insert(
            "EMPORIUM_DATA_DIR".to_owned(),
            dir.join(ctx).display().to_string(),
        );
        env.insert("EMPORIUM_RATE_LIMIT".to_owned(), "off".to_owned());
        env.insert("EMPORIUM_SHUTDOWN_TIMEOUT_SECS".to_owned(), "1".to_owned());
        if ctx == "identity" {
            env.insert("EMPORIUM_JWT_PRIVATE_KEY".to_owned(), key.clone());
            env.insert(
                "EMPORIUM_BOOTSTRAP_ADMIN_EMAIL".to_owned(),
                ADMIN.0.to_owned(),
            );
            env.insert(
                "EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD".to_owned(),
                ADMIN.1.to_owned(),
            );
        } else {
            env.insert(
                "EMPORIUM_JWKS_URL".to_owned(),
                format!(
                    "http://127.0.0.1:{}/.well-known/jwks.json",
                    ports["identity"]
                ),
            );
        }
        processes.push(Process {
            name: ctx.to_owned(),
            env,
            args: vec!["serve".to_owned()],
            log: dir.join(format!("{ctx}.log")),
            child: None,
        });
    }
    let upstreams: Vec<String> = ["identity", "catalog", "ordering", "shipping"]
        .iter()
        .map(|c| format!("{c}=http://127.0.0.1:{}", ports[c]))
        .collect();
    let mut env = BTreeMap::new();
    env.insert("EMPORIUM_GATEWAY_UPSTREAMS".to_owned(), upstreams.join(","));
    env.insert(
        "EMPORIUM_LISTEN".to_owned(),
        format!("127.0.0.1:{}", ports["gateway"]),
    );
    processes.push(Process {
        name: "gateway".to_owned(),
        env,
        args: vec!["gateway".to_owned()],
        log: dir.join("gateway.log"),
        child: None,
    });
    // Identity first: the others fetch its keys.
    for p in &mut processes {
        p.start();
        if p.name == "identity" {
            let url = format!("http://127.0.0.1:{}/health/ready", ports["identity"]);
            for _ in 0..300 {
                if reqwest::get(&url)
                    .await
                    .is_ok_and(|r| r.status().is_success())
                {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
    let deployment = Deployment {
        processes,
        gateway: format!("http://127.0.0.1:{}", ports["gateway"]),
        http: reqwest::Client::new(),
    };
    deployment
        .until("the gateway and every context are ready", 60, || async {
            let (s, _) = deployment
                .call(reqwest::Method::GET, "/health/ready", None, None)
                .await;
            (s == 200).then_some(())
        })
        .await;
    deployment
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn four_processes_behind_the_gateway_complete_every_order_across_a_shipping_outage() {
    let Some(pg) = kernel::testing::postgres_url() else {
        return;
    };
    let Some(amqp) = amqp_url() else { return };
    let dir = tempfile::tempdir().unwrap();
    let mut d = deploy(dir.path(), &pg, &amqp).await;

    // The gateway serves the merged spec and identity's keys; ids pass through.
    let (s, spec) = d
        .call(reqwest::Method::GET, "/openapi.json", None, None)
        .await;
    assert_eq!(s, 200);
    assert!(spec["paths"]["/api/v1/ordering/orders"].is_object());
    let (s, jwks) = d
        .call(reqwest::Method::GET, "/.well-known/jwks.json", None, None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(jwks["keys"][0]["kty"], "OKP");
    let echoed = d
        .http
        .get(format!("{}/api/v1/catalog/categories", d.gateway))
        .header("x-request-id", "split-42")
        .send()
        .await
        .unwrap();
    assert_eq!(
        echoed
            .headers()
            .get("x-request-id")
            .and_then(|v| v.to_str().ok()),
        Some("split-42")
    );

    let admin = d.token(ADMIN.0, ADMIN.1).await;
    let (s, product) = d
        .call(
            reqwest::Method::POST,
            "/api/v1/catalog/products",
            Some(&admin),
            Some(json!({"sku": "SPLIT-1", "name": "Split mug", "price": {"amount": 900, "currency": "EUR"}})),
        )
        .await;
    assert_eq!(s, 201, "{product}");
    let product = product["id"].as_str().unwrap().to_owned();
    let (s, _) = d
        .call(
            reqwest::Method::PUT,
            &format!("/api/v1/catalog/products/{product}/stock"),
            Some(&admin),
            Some(json!({"on_hand": 10})),
        )
        .await;
    assert_eq!(s, 200);

    // One order end to end across four processes and the broker.
    let first = d.customer().await;
    let order = d.order(&first, &product).await;
    d.until("the first order is confirmed", 60, || async {
        (d.status(&first, &order).await == "confirmed").then_some(())
    })
    .await;

    // Shipping dies. Orders keep coming: they are paid and wait for their shipment.
    d.process("shipping").kill();
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let c = d.customer().await;
        let o = d.order(&c, &product).await;
        waiting.push((c, o));
    }
    for (c, o) in &waiting {
        d.until("orders are paid while shipping is down", 60, || async {
            (d.status(c, o).await == "paid").then_some(())
        })
        .await;
    }
    // Shipping comes back: every order waiting in its queue gets its shipment.
    d.process("shipping").start();
    for (c, o) in &waiting {
        d.until(
            "every order completes after shipping returns",
            90,
            || async { (d.status(c, o).await == "confirmed").then_some(()) },
        )
        .await;
    }
    let (_, stock) = d
        .call(
            reqwest::Method::GET,
            &format!("/api/v1/catalog/products/{product}/stock"),
            None,
            None,
        )
        .await;
    assert_eq!(stock["reserved"], 4, "{stock}");
    // Identity's order history, fed over the broker, caught up too.
    d.until("order history is confirmed", 60, || async {
        let (_, h) = d
            .call(
                reqwest::Method::GET,
                "/api/v1/identity/me/orders",
                Some(&first),
                None,
            )
            .await;
        (h["items"][0]["status"] == "confirmed").then_some(())
    })
    .await;
}
