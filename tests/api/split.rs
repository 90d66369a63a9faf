//! The split topology: identity, catalog, ordering and shipping as four `emporium serve`
//! processes, each with its own PostgreSQL database, RabbitMQ between them and
//! `emporium gateway` in front. `spawn_split()` returns a `TestApp` aimed at the gateway, so
//! the same stories run against it as against the monolith (`every_topology!`). Needs
//! EMPORIUM_TEST_POSTGRES_URL and EMPORIUM_TEST_AMQP_URL (both required under CI=true).

use sha2::Digest;
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::pkcs8::EncodePrivateKey;
use emporium::config::{Config, ContextName};
use platform::testing::{fresh_postgres_database, postgres_url, TestBackend};

use crate::helpers::{Host, TestApp, BOOTSTRAP_ADMIN};

/// Idle queues of a test deployment disappear after this long.
const QUEUE_EXPIRES_SECS: u64 = 120;

/// The port of the one TCP socket `pid` listens on (`None` with none, or several).
fn only_listening_port(pid: u32) -> Option<u16> {
    let inodes: Vec<String> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .ok()?
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            Some(
                target
                    .strip_prefix("socket:[")?
                    .strip_suffix(']')?
                    .to_owned(),
            )
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local address, state (0A: LISTEN), inode
            if fields.len() > 9 && fields[3] == "0A" && inodes.iter().any(|i| i == fields[9]) {
                let port = fields[1].rsplit(':').next()?;
                ports.push(u16::from_str_radix(port, 16).ok()?);
            }
        }
    }
    match ports.as_slice() {
        [port] => Some(*port),
        _ => None,
    }
}

/// One `emporium` process of the deployment; its output goes to a log file shown on failure.
pub struct Process {
    pub name: String,
    env: BTreeMap<String, String>,
    args: Vec<String>,
    log: PathBuf,
    child: Option<Child>,
}

impl Process {
    pub fn new(name: &str, args: &[&str], env: BTreeMap<String, String>, log: PathBuf) -> Self {
        Self {
            name: name.to_owned(),
            env,
            args: args.iter().map(|a| (*a).to_owned()).collect(),
            log,
            child: None,
        }
    }

    /// A variable this process is started with.
    pub fn env_var(&self, key: &str) -> Option<&str> {
        self.env.get(key).map(String::as_str)
    }

    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Waits for the process to exit by itself; `None` if it is still running after `secs`.
    pub fn wait_exit(&mut self, secs: u64) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        let child = self.child.as_mut()?;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                self.child = None;
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        None
    }

    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn start(&mut self) {
        let open = || {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&self.log)
                .unwrap_or_else(|e| panic!("cannot open {}: {e}", self.log.display()))
        };
        // `EMPORIUM_TEST_BIN` runs another build of the binary (a long fault profile runs
        // from a copy while the tree is rebuilt).
        let bin = std::env::var("EMPORIUM_TEST_BIN")
            .unwrap_or_else(|_| env!("CARGO_BIN_EXE_emporium").to_owned());
        let child = Command::new(bin)
            .args(&self.args)
            .envs(&self.env)
            .env(
                "RUST_LOG",
                self.env.get("RUST_LOG").map_or("warn", String::as_str),
            )
            .stdout(Stdio::from(open()))
            .stderr(Stdio::from(open()))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", self.name));
        self.child = Some(child);
    }

    /// The port from the process's `… listening` log line (JSON logs), once it is bound; or,
    /// when the process has exactly one listening socket, that socket's port from the
    /// kernel's table (a start-up log line can go missing: see `docs/decisions/0043-replicas-are-tested-as-a-topology-of-their.md`).
    pub fn listening_port(&self) -> Option<u16> {
        let logged = self.log_text().lines().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            let fields = &v["fields"];
            fields["message"]
                .as_str()?
                .ends_with("listening")
                .then(|| fields["port"].as_u64())
                .flatten()
                .and_then(|p| u16::try_from(p).ok())
        });
        logged.or_else(|| self.pid().and_then(only_listening_port))
    }

    /// The operations listener's port (`EMPORIUM_OPS_LISTEN`), from its start-up log line.
    pub fn ops_port(&self) -> Option<u16> {
        self.log_text().lines().find_map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            (v["fields"]["message"] == "operations listener bound")
                .then(|| v["fields"]["port"].as_u64())
                .flatten()
                .and_then(|p| u16::try_from(p).ok())
        })
    }

    /// Started and not exited.
    pub fn running(&mut self) -> bool {
        self.child
            .as_mut()
            .is_some_and(|c| matches!(c.try_wait(), Ok(None)))
    }

    /// SIGKILL: no drain, no goodbye.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Process {
    /// A test that fails never leaves its processes running.
    fn drop(&mut self) {
        self.kill();
    }
}

/// The running processes; dropping it kills them all.
pub struct Deployment {
    pub processes: Vec<Process>,
    /// Each process's port, by name (the contexts and `gateway`).
    pub ports: BTreeMap<String, u16>,
}

impl Drop for Deployment {
    fn drop(&mut self) {
        for p in &mut self.processes {
            p.kill();
        }
    }
}

impl Deployment {
    pub fn process(&mut self, name: &str) -> &mut Process {
        self.processes
            .iter_mut()
            .find(|p| p.name == name)
            .unwrap_or_else(|| panic!("no process {name}"))
    }

    /// Waits for the named process to log the port it bound, records it, and pins it in the
    /// process's environment so a restart binds the same one.
    pub async fn settle_port(&mut self, name: &str) -> Result<u16, String> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
        loop {
            let p = self.process(name);
            if let Some(port) = p.listening_port() {
                p.env
                    .insert("EMPORIUM_LISTEN".to_owned(), format!("127.0.0.1:{port}"));
                self.ports.insert(name.to_owned(), port);
                return Ok(port);
            }
            if !p.running() || tokio::time::Instant::now() > deadline {
                return Err(format!("{name} did not start listening\n{}", self.logs()));
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Deliveries of these event types handled so far, summed over the context processes
    /// (from their `/metrics`).
    pub async fn handled(&self, types: &[&str]) -> u64 {
        let mut total = 0;
        for (name, port) in &self.ports {
            if name == "gateway" {
                continue;
            }
            let text = match reqwest::Client::new()
                .get(format!("http://127.0.0.1:{port}/metrics"))
                .bearer_auth(crate::helpers::METRICS_TOKEN)
                .send()
                .await
            {
                Ok(r) => r.text().await.unwrap_or_default(),
                Err(_) => continue,
            };
            for line in text.lines() {
                let Some(rest) = line.strip_prefix("emporium_events_handled_total{") else {
                    continue;
                };
                let counted = rest.contains("outcome=\"handled\"")
                    && types
                        .iter()
                        .any(|t| rest.contains(&format!("type=\"{t}\"")));
                if counted {
                    total += line
                        .rsplit(' ')
                        .next()
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or(0.0) as u64;
                }
            }
        }
        total
    }

    /// Every process's log, for a failure message.
    pub fn logs(&self) -> String {
        self.processes
            .iter()
            .map(|p| {
                format!(
                    "--- {}:\n{}",
                    p.name,
                    std::fs::read_to_string(&p.log).unwrap_or_default()
                )
            })
            .collect::<Vec<_>>()
            .join("\n")
    }
}

async fn wait_ready(url: &str, secs: u64) -> bool {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(secs);
    while tokio::time::Instant::now() < deadline {
        if reqwest::get(url)
            .await
            .is_ok_and(|r| r.status().is_success())
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

/// The broker between the processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Broker {
    Rabbitmq,
    /// SNS + SQS (`--features sqs`), at `EMPORIUM_TEST_SQS_ENDPOINT` (an emulator).
    #[allow(dead_code)]
    Sqs,
}

/// Starts the four contexts and the gateway over RabbitMQ; `None` when PostgreSQL or
/// RabbitMQ is not configured (outside CI).
pub async fn spawn_split() -> Option<TestApp> {
    spawn_split_on(Broker::Rabbitmq).await
}

/// The broker's settings for every process, and the test's own connection to it (for
/// observing and injecting events as the in-process tests do on the memory bus).
async fn broker_env(
    broker: Broker,
    namespace: &str,
) -> Option<(Vec<(&'static str, String)>, bus::SharedBus)> {
    match broker {
        Broker::Rabbitmq => {
            let amqp = platform::testing::amqp_url()?;
            let mut rabbit = bus::rabbitmq::RabbitConfig::new(amqp.clone());
            rabbit.namespace = namespace.to_owned();
            rabbit.queue_expires = Some(Duration::from_secs(QUEUE_EXPIRES_SECS));
            let test_bus: bus::SharedBus = bus::rabbitmq::RabbitBus::connect(rabbit)
                .await
                .unwrap_or_else(|e| panic!("cannot reach RabbitMQ: {e:#}"));
            Some((
                vec![
                    ("EMPORIUM_BUS", "rabbitmq".to_owned()),
                    ("EMPORIUM_AMQP_URL", amqp),
                    ("EMPORIUM_AMQP_NAMESPACE", namespace.to_owned()),
                    (
                        "EMPORIUM_AMQP_QUEUE_EXPIRES_SECS",
                        QUEUE_EXPIRES_SECS.to_string(),
                    ),
                ],
                test_bus,
            ))
        }
        #[cfg(feature = "sqs")]
        Broker::Sqs => {
            let endpoint = platform::testing::sqs_endpoint()?;
            let mut sqs = bus::sqs::SqsConfig::new(namespace);
            sqs.endpoint = Some(endpoint.clone());
            sqs.region = Some("us-east-1".to_owned());
            sqs.static_credentials = Some(("test".to_owned(), "test".to_owned()));
            sqs.wait_time = Duration::from_secs(1);
            let test_bus: bus::SharedBus = bus::sqs::SqsBus::connect(sqs)
                .await
                .unwrap_or_else(|e| panic!("cannot reach SQS: {e:#}"));
            Some((
                vec![
                    ("EMPORIUM_BUS", "sqs".to_owned()),
                    ("EMPORIUM_SQS_ENDPOINT", endpoint),
                    ("EMPORIUM_SQS_REGION", "us-east-1".to_owned()),
                    ("EMPORIUM_SQS_NAMESPACE", namespace.to_owned()),
                    ("AWS_ACCESS_KEY_ID", "test".to_owned()),
                    ("AWS_SECRET_ACCESS_KEY", "test".to_owned()),
                ],
                test_bus,
            ))
        }
        #[cfg(not(feature = "sqs"))]
        Broker::Sqs => None,
    }
}

/// Starts the four contexts and the gateway on `broker`.
pub async fn spawn_split_on(broker: Broker) -> Option<TestApp> {
    spawn_split_with(broker, &[]).await
}

/// The same, with extra variables for every process (the gateway too).
///
/// Ports are picked free before the processes bind them, so a concurrent test can take one in
/// between: the process that loses exits, and the whole deployment is started again.
pub async fn spawn_split_with(broker: Broker, extra: &[(&str, &str)]) -> Option<TestApp> {
    spawn_deployment(broker, extra, &[]).await
}

/// The contexts that run as two instances in [`spawn_replicated`].
pub const REPLICATED: [ContextName; 2] = [ContextName::Catalog, ContextName::Ordering];

/// The split topology with two instances each of catalog and ordering (the second named
/// `catalog-2`, `ordering-2`, on the same database and queues), Redis shared by every
/// process, and the gateway balancing over the instances.
pub async fn spawn_replicated() -> Option<TestApp> {
    let redis = platform::testing::service_url("EMPORIUM_TEST_REDIS_URL")?;
    let namespace = format!("rep{}", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    spawn_deployment(
        Broker::Rabbitmq,
        &[
            ("EMPORIUM_REDIS_URL", redis.as_str()),
            ("EMPORIUM_REDIS_NAMESPACE", namespace.as_str()),
        ],
        &REPLICATED,
    )
    .await
}

async fn spawn_deployment(
    broker: Broker,
    extra: &[(&str, &str)],
    replicated: &[ContextName],
) -> Option<TestApp> {
    let mut failures = Vec::new();
    for _ in 0..3 {
        match try_spawn_split(broker, extra, replicated).await? {
            Ok(app) => return Some(app),
            Err(logs) => failures.push(logs),
        }
    }
    panic!(
        "the split deployment did not start in 3 attempts\n{}",
        failures.join("\n=====\n")
    );
}

/// The gateway's client secret in split deployments.
const GATEWAY_SECRET: &str = "split-gateway-secret-0123456789abcdef0123456789";

async fn try_spawn_split(
    broker: Broker,
    extra: &[(&str, &str)],
    replicated: &[ContextName],
) -> Option<Result<TestApp, String>> {
    let pg_admin = postgres_url()?;
    let namespace = format!("split{}", &uuid::Uuid::new_v4().simple().to_string()[..16]);
    let (broker_env, test_bus) = broker_env(broker, &namespace).await?;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("no temp dir: {e}"));
    let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng)
        .to_pkcs8_pem(ed25519_dalek::pkcs8::spki::der::pem::LineEnding::LF)
        .unwrap_or_else(|e| panic!("cannot encode a key: {e}"))
        .to_string();

    let mut common = BTreeMap::new();
    for (k, v) in broker_env {
        common.insert(k.to_owned(), v);
    }
    for (k, v) in [
        ("EMPORIUM_RATE_LIMIT", "off"),
        ("EMPORIUM_METRICS_TOKEN", crate::helpers::METRICS_TOKEN),
        ("EMPORIUM_SHUTDOWN_TIMEOUT_SECS", "1"),
        (
            "EMPORIUM_PAYMENT_RETRY_SECS",
            crate::helpers::PAYMENT_RETRY_SECS,
        ),
        // The gateway (and, for the gateway, a load balancer) forwards from loopback.
        ("EMPORIUM_TRUSTED_PROXIES", "127.0.0.1"),
        // Every process binds a port of its own choosing and logs it (as JSON).
        ("EMPORIUM_LISTEN", "127.0.0.1:0"),
        ("EMPORIUM_LOG_FORMAT", "json"),
        ("RUST_LOG", "warn,emporium::app=info,emporium::gateway=info"),
        // The gateway is a service client of every context (dead letters, the dashboard).
        ("EMPORIUM_SERVICE_CLIENT_ID", "gateway"),
        ("EMPORIUM_SERVICE_CLIENT_SECRET", GATEWAY_SECRET),
    ] {
        common.insert(k.to_owned(), v.to_owned());
    }
    common.insert(
        "EMPORIUM_SERVICE_CLIENTS".to_owned(),
        format!(
            "gateway:{}:identity|catalog|ordering|shipping|notifications",
            sha2::Sha256::digest(GATEWAY_SECRET.as_bytes())
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        ),
    );
    for (k, v) in extra {
        common.insert((*k).to_owned(), (*v).to_owned());
    }
    let mut deployment = Deployment {
        processes: Vec::new(),
        ports: BTreeMap::new(),
    };
    // Identity first: the others fetch its keys.
    for ctx in ContextName::ALL {
        let mut env = common.clone();
        env.insert("EMPORIUM_CONTEXTS".to_owned(), ctx.as_str().to_owned());
        let db = fresh_postgres_database(&pg_admin)
            .await
            .unwrap_or_else(|e| panic!("cannot create a database: {e:#}"));
        env.insert(
            format!("EMPORIUM_{}_DATABASE_URL", ctx.as_str().to_uppercase()),
            db,
        );
        if ctx == ContextName::Identity {
            env.insert("EMPORIUM_JWT_PRIVATE_KEY".to_owned(), key.clone());
            env.insert(
                "EMPORIUM_BOOTSTRAP_ADMIN_EMAIL".to_owned(),
                BOOTSTRAP_ADMIN.0.to_owned(),
            );
            env.insert(
                "EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD".to_owned(),
                BOOTSTRAP_ADMIN.1.to_owned(),
            );
        } else {
            env.insert(
                "EMPORIUM_JWKS_URL".to_owned(),
                format!(
                    "http://127.0.0.1:{}/.well-known/jwks.json",
                    deployment.ports["identity"]
                ),
            );
        }
        let mut p = Process::new(
            ctx.as_str(),
            &["serve"],
            env,
            dir.path().join(format!("{}.log", ctx.as_str())),
        );
        p.env.insert(
            "EMPORIUM_DATA_DIR".to_owned(),
            dir.path().join(ctx.as_str()).display().to_string(),
        );
        p.start();
        if replicated.contains(&ctx) {
            // The second instance: the same database, queues and data directory layout.
            let mut second = Process::new(
                &format!("{}-2", ctx.as_str()),
                &["serve"],
                p.env.clone(),
                dir.path().join(format!("{}-2.log", ctx.as_str())),
            );
            second.env.insert(
                "EMPORIUM_DATA_DIR".to_owned(),
                dir.path()
                    .join(format!("{}-2", ctx.as_str()))
                    .display()
                    .to_string(),
            );
            second.start();
            deployment.processes.push(second);
        }
        deployment.processes.push(p);
        if ctx == ContextName::Identity {
            if let Err(e) = deployment.settle_port("identity").await {
                return Some(Err(e));
            }
        }
    }
    for ctx in ContextName::ALL.iter().skip(1) {
        if let Err(e) = deployment.settle_port(ctx.as_str()).await {
            return Some(Err(e));
        }
        if replicated.contains(ctx) {
            if let Err(e) = deployment.settle_port(&format!("{}-2", ctx.as_str())).await {
                return Some(Err(e));
            }
        }
    }
    let upstreams: Vec<String> = ContextName::ALL
        .iter()
        .map(|c| {
            let mut instances = format!("http://127.0.0.1:{}", deployment.ports[c.as_str()]);
            if let Some(port) = deployment.ports.get(&format!("{}-2", c.as_str())) {
                instances.push_str(&format!("|http://127.0.0.1:{port}"));
            }
            format!("{}={instances}", c.as_str())
        })
        .collect();
    let mut env = common.clone();
    env.insert("EMPORIUM_GATEWAY_UPSTREAMS".to_owned(), upstreams.join(","));
    let mut gateway = Process::new("gateway", &["gateway"], env, dir.path().join("gateway.log"));
    gateway.start();
    deployment.processes.push(gateway);
    if let Err(e) = deployment.settle_port("gateway").await {
        return Some(Err(e));
    }
    let address = format!("http://127.0.0.1:{}", deployment.ports["gateway"]);
    if !wait_ready(&format!("{address}/health/ready"), 60).await {
        return Some(Err(format!(
            "the gateway and every context did not become ready\n{}",
            deployment.logs()
        )));
    }

    let mut config = Config::local(dir.path().to_path_buf());
    config.bootstrap_admin = Some((BOOTSTRAP_ADMIN.0.to_owned(), BOOTSTRAP_ADMIN.1.to_owned()));
    config.jwt_private_key = Some(key);
    Some(Ok(TestApp {
        address,
        port: deployment.ports["gateway"],
        client: reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_default(),
        backend: TestBackend::Postgres,
        config,
        host: Host::Split(deployment),
        bus: test_bus,
        _dir: Arc::new(dir),
    }))
}

impl TestApp {
    /// The processes behind the gateway (split topology only).
    pub fn deployment(&mut self) -> &mut Deployment {
        match &mut self.host {
            Host::Split(d) => d,
            Host::InProcess { .. } => panic!("not a split deployment"),
        }
    }
}

// Shipping dies mid-flow. Orders keep coming: they are paid and wait for their shipment in
// shipping's durable queue. Shipping comes back and every order completes; nothing is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_order_completes_across_a_shipping_outage() {
    let Some(mut app) = spawn_split().await else {
        return;
    };
    // The gateway serves the merged spec and identity's keys; request ids pass through.
    let spec = app.get("/openapi.json", None).await;
    spec.assert_status(200);
    assert!(spec.body["paths"]["/api/v1/ordering/orders"].is_object());
    let jwks = app.get("/.well-known/jwks.json", None).await;
    jwks.assert_status(200);
    assert_eq!(jwks.body["keys"][0]["kty"], "OKP");
    let echoed = app
        .request(
            reqwest::Method::GET,
            "/api/v1/catalog/categories",
            None,
            None,
            &[("x-request-id", "split-42")],
        )
        .await;
    assert_eq!(echoed.header("x-request-id").as_deref(), Some("split-42"));

    // A context process serves its own routes, health and metrics, and nothing else.
    let catalog = format!("http://127.0.0.1:{}", app.deployment().ports["catalog"]);
    let direct = |path: &str| reqwest::get(format!("{catalog}{path}"));
    assert_eq!(
        direct("/api/v1/catalog/categories")
            .await
            .map(|r| r.status().as_u16())
            .ok(),
        Some(200)
    );
    assert_eq!(
        direct("/api/v1/identity/me")
            .await
            .map(|r| r.status().as_u16())
            .ok(),
        Some(404)
    );
    assert_eq!(
        direct("/api/v1/ordering/cart")
            .await
            .map(|r| r.status().as_u16())
            .ok(),
        Some(404)
    );
    let ready: serde_json::Value = direct("/health/ready")
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(ready["checks"]["catalog_database"], "up", "{ready}");
    assert_eq!(ready["checks"]["bus_rabbitmq"], "up", "{ready}");
    assert!(
        ready["checks"].get("identity_database").is_none(),
        "{ready}"
    );
    let metrics = reqwest::Client::new()
        .get(format!("{catalog}/metrics"))
        .bearer_auth(crate::helpers::METRICS_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .text()
        .await
        .unwrap_or_default();
    assert!(
        metrics.contains("emporium_outbox_unsent{context=\"catalog\"}"),
        "{metrics}"
    );
    assert!(!metrics.contains("context=\"identity\""), "{metrics}");

    let admin = app.admin().await;
    let mug = app.sellable(&admin.access_token, "SPLIT-1", 900, 10).await;
    let first = app.customer().await;
    app.add_to_cart(&first.access_token, &mug, 1)
        .await
        .assert_status(200);
    let order = app.checkout(&first.access_token, "tok_visa", None).await;
    order.assert_status(202);
    let order = order.body["id"].as_str().unwrap_or_default().to_owned();
    app.order_reaches(&first.access_token, &order, "confirmed")
        .await;

    app.deployment().process("shipping").kill();
    let mut waiting = Vec::new();
    for _ in 0..3 {
        let c = app.customer().await;
        app.add_to_cart(&c.access_token, &mug, 1)
            .await
            .assert_status(200);
        let placed = app.checkout(&c.access_token, "tok_visa", None).await;
        placed.assert_status(202);
        let id = placed.body["id"].as_str().unwrap_or_default().to_owned();
        waiting.push((c, id));
    }
    for (c, id) in &waiting {
        app.order_reaches(&c.access_token, id, "paid").await;
    }
    // Shipping's own routes answer 502 through the gateway meanwhile.
    app.get("/api/v1/shipping/shipments", Some(&admin.access_token))
        .await
        .assert_problem(502, "upstream_unavailable");

    app.deployment().process("shipping").start();
    for (c, id) in &waiting {
        app.order_reaches(&c.access_token, id, "confirmed").await;
    }
    assert_eq!(app.stock(&mug).await["reserved"], 4);
    app.eventually("identity's order history catches up", 30, || async {
        let h = app
            .get("/api/v1/identity/me/orders", Some(&first.access_token))
            .await;
        (h.body["items"][0]["status"] == "confirmed").then_some(())
    })
    .await;
    app.stop().await;
}

// Each process keeps its own contexts' dead letters; the gateway lists them all as one page
// and sends a replay to the process that holds the letter.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_lists_and_replays_dead_letters_of_every_process() {
    let Some(app) = spawn_split().await else {
        return;
    };
    let admin = app.admin().await;
    // A poison `order_paid`: catalog, shipping and identity all consume it, and all fail.
    let mut poison = bus::Envelope::wrap(
        &catalog_contracts::StockReleased {
            order_id: kernel::id::OrderId::new(),
            reason: catalog_contracts::ReleaseReason::ReservationExpired,
            lines: vec![],
        },
        kernel::Timestamp::now(),
        &bus::Causation::system(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    poison.event_type = "ordering.order_paid".to_owned();
    poison.payload = serde_json::json!({"not": "an order"});
    app.bus
        .publish(&poison)
        .await
        .unwrap_or_else(|e| panic!("{e}"));

    let letters = app
        .eventually("three processes dead-letter the poison", 30, || async {
            let res = app
                .get("/api/v1/admin/dead-letters", Some(&admin.access_token))
                .await;
            res.assert_status(200);
            let items = res.body["items"].as_array().cloned().unwrap_or_default();
            (items.len() >= 3).then_some(items)
        })
        .await;
    let mut groups: Vec<String> = letters
        .iter()
        .map(|l| l["consumer_group"].as_str().unwrap_or_default().to_owned())
        .collect();
    groups.sort();
    assert_eq!(groups.len(), 3, "{letters:?}");
    assert!(
        groups.iter().any(|g| g.starts_with("catalog")),
        "{groups:?}"
    );
    assert!(
        groups.iter().any(|g| g.starts_with("shipping")),
        "{groups:?}"
    );
    assert!(
        groups.iter().any(|g| g.starts_with("identity")),
        "{groups:?}"
    );
    let ids: Vec<&str> = letters.iter().filter_map(|l| l["id"].as_str()).collect();
    let mut sorted = ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(ids, sorted, "newest first across processes");

    // The console's messaging figures, from every process: each context once.
    let figures = app
        .get("/api/v1/admin/messaging", Some(&admin.access_token))
        .await;
    figures.assert_status(200);
    let open: std::collections::BTreeMap<String, i64> = figures.body["contexts"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", figures.body))
        .iter()
        .map(|c| {
            let name = c["context"].as_str().unwrap_or_default().to_owned();
            (name, c["dead_letters_open"].as_i64().unwrap_or(-1))
        })
        .collect();
    assert_eq!(
        open.keys().map(String::as_str).collect::<Vec<_>>(),
        [
            "catalog",
            "identity",
            "notifications",
            "ordering",
            "shipping"
        ]
    );
    for ctx in ["catalog", "shipping", "identity"] {
        assert_eq!(open[ctx], 1, "{open:?}");
    }
    let customer = app.customer().await;
    app.get("/api/v1/admin/messaging", Some(&customer.access_token))
        .await
        .assert_status(403);
    // The gateway serves the console itself.
    crate::admin_console::assert_console_is_served(&app).await;

    // One page at a time, with one cursor across processes.
    let first = app
        .get(
            "/api/v1/admin/dead-letters?limit=2",
            Some(&admin.access_token),
        )
        .await;
    first.assert_status(200);
    assert_eq!(first.body["items"].as_array().map(Vec::len), Some(2));
    let cursor = first.body["next_cursor"].as_str().unwrap_or_default();
    let second = app
        .get(
            &format!("/api/v1/admin/dead-letters?limit=2&cursor={cursor}"),
            Some(&admin.access_token),
        )
        .await;
    second.assert_status(200);
    assert_eq!(second.body["items"][0]["id"], letters[2]["id"]);
    assert!(second.body["next_cursor"].is_null());

    // A replay reaches the process holding the letter; the poison fails there again.
    for letter in &letters {
        let id = letter["id"].as_str().unwrap_or_default();
        app.post(
            &format!("/api/v1/admin/dead-letters/{id}/replay"),
            Some(&admin.access_token),
            &serde_json::json!({}),
        )
        .await
        .assert_problem(409, "replay_failed");
    }
    app.post(
        &format!("/api/v1/admin/dead-letters/{}/replay", uuid::Uuid::now_v7()),
        Some(&admin.access_token),
        &serde_json::json!({}),
    )
    .await
    .assert_problem(404, "dead_letter_not_found");
    // The gateway asked each process as a service: a process's own service endpoint takes
    // no user's token, an admin's included.
    if let Host::Split(deployment) = &app.host {
        let internal = format!(
            "http://127.0.0.1:{}/internal/v1/operations/dead-letters",
            deployment.ports["catalog"]
        );
        let refused = app
            .client
            .get(&internal)
            .bearer_auth(&admin.access_token)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(refused.status(), 403);
        let anonymous = app
            .client
            .get(&internal)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(anonymous.status(), 401);
    }
    // Customers and bad input are refused as by every process.
    let customer = app.customer().await;
    app.get("/api/v1/admin/dead-letters", Some(&customer.access_token))
        .await
        .assert_problem(403, "forbidden");
    app.get(
        "/api/v1/admin/dead-letters?limit=0",
        Some(&admin.access_token),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.get(
        "/api/v1/admin/dead-letters?cursor=nope",
        Some(&admin.access_token),
    )
    .await
    .assert_problem(400, "invalid_cursor");
    // The gateway counts what it routed.
    let metrics = app
        .get("/metrics", Some(crate::helpers::METRICS_TOKEN))
        .await;
    metrics.assert_status(200);
    assert!(
        metrics
            .body
            .as_str()
            .unwrap_or_default()
            .lines()
            .any(|l| l.starts_with("emporium_http_requests_total{")
                && l.contains("route=\"/api/v1/admin/dead-letters\"")),
        "{}",
        metrics.body
    );
    app.stop().await;
}

// Behind a load balancer and the gateway, identity still limits failed log-ins per client
// address: the chain survives both hops, and one client's failures lock out only that client.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn client_addresses_reach_the_contexts_through_the_gateway() {
    let Some(app) = spawn_split().await else {
        return;
    };
    let c = app.customer().await;
    let log_in = |email: String, password: String, xff: &'static str| {
        let app = &app;
        async move {
            app.request(
                reqwest::Method::POST,
                "/api/v1/identity/tokens",
                None,
                Some(&serde_json::json!({"email": email, "password": password})),
                &[("x-forwarded-for", xff)],
            )
            .await
            .status
        }
    };
    for i in 0..50 {
        let status = log_in(
            format!("ghost-{i}@example.com"),
            "wrong-password-123".to_owned(),
            "203.0.113.7",
        )
        .await;
        assert_eq!(status, 401);
    }
    assert_eq!(
        log_in(c.email.clone(), c.password.clone(), "203.0.113.7").await,
        429
    );
    assert_eq!(
        log_in(c.email.clone(), c.password.clone(), "198.51.100.1").await,
        200
    );
    app.stop().await;
}

// One checkout through the gateway is one trace: the gateway, ordering, catalog, shipping and
// identity all report spans under the caller's trace id, and each context's request span is a
// child of the gateway's.
#[cfg(feature = "otlp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_checkout_is_one_trace_across_the_processes() {
    let collector = crate::collector::Collector::start();
    let Some(app) = spawn_split_with(
        Broker::Rabbitmq,
        &[
            ("EMPORIUM_OTLP_ENDPOINT", collector.endpoint.as_str()),
            // Export batches quickly: processes are killed, not drained, at the end.
            ("OTEL_BSP_SCHEDULE_DELAY", "200"),
        ],
    )
    .await
    else {
        return;
    };
    let admin = app.admin().await;
    let mug = app
        .sellable(&admin.access_token, "TRACE-SPLIT", 700, 5)
        .await;
    let c = app.customer().await;
    app.add_to_cart(&c.access_token, &mug, 1)
        .await
        .assert_status(200);
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let traceparent = format!("00-{trace}-00f067aa0ba902b7-01");
    let body = serde_json::json!({"shipping_address": crate::helpers::address(), "payment_token": "tok_visa"});
    let placed = app
        .request(
            reqwest::Method::POST,
            "/api/v1/ordering/orders",
            Some(&c.access_token),
            Some(&body),
            &[("traceparent", traceparent.as_str())],
        )
        .await;
    placed.assert_status(202);
    let id = placed.body["id"].as_str().unwrap_or_default().to_owned();
    app.order_reaches(&c.access_token, &id, "confirmed").await;

    let services = [
        "emporium-gateway",
        "emporium-ordering",
        "emporium-catalog",
        "emporium-shipping",
        "emporium-identity",
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    let spans = loop {
        let all = collector.spans();
        let spans: Vec<serde_json::Value> = all
            .iter()
            .filter(|s| s["traceId"] == trace.as_str())
            .cloned()
            .collect();
        if services
            .iter()
            .all(|svc| spans.iter().any(|s| s["service"] == *svc))
        {
            break spans;
        }
        if tokio::time::Instant::now() > deadline {
            let seen: std::collections::BTreeSet<String> = all
                .iter()
                .map(|s| {
                    format!(
                        "{} {} {}",
                        s["service"],
                        s["name"],
                        s["traceId"] == trace.as_str()
                    )
                })
                .collect();
            let logs = match &app.host {
                crate::helpers::Host::Split(d) => d.logs(),
                crate::helpers::Host::InProcess { .. } => String::new(),
            };
            panic!("not every process reported spans of trace {trace} to {}; seen (service, name, in trace): {seen:#?}\n{logs}", collector.endpoint);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let gateway = spans
        .iter()
        .find(|s| s["service"] == "emporium-gateway" && s["name"] == "http")
        .unwrap_or_else(|| panic!("no gateway request span: {spans:#?}"));
    assert_eq!(gateway["parentSpanId"], "00f067aa0ba902b7");
    let ordering = spans
        .iter()
        .find(|s| s["service"] == "emporium-ordering" && s["name"] == "http")
        .unwrap_or_else(|| panic!("no ordering request span: {spans:#?}"));
    assert_eq!(ordering["parentSpanId"], gateway["spanId"]);
    assert!(
        spans
            .iter()
            .any(|s| s["service"] == "emporium-catalog" && s["name"] == "handle event"),
        "catalog handled the order in the same trace"
    );
    collector.stop().await;
    app.stop().await;
}
