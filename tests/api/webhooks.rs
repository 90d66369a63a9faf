//! Outbound webhooks, seen by a receiver that checks every signature with the Standard
//! Webhooks reference library (`tests/support/webhook_receiver.py`): signed deliveries of the
//! events an endpoint hears and no others, on every topology; a receiver down for 30 s gets
//! everything once back; one that fails for good ends in failed deliveries, a disabled
//! endpoint, its admin told, and a replay that delivers; internal targets refused at creation
//! and at delivery.

use std::collections::BTreeSet;
use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};
use emporium::config::ContextName;
use platform::testing::TestBackend;

/// The receiver process and what it kept.
pub struct Receiver {
    python: PathBuf,
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl Receiver {
    /// Starts one, or `None` when Python with `standardwebhooks` is not installed (a failure
    /// under `CI=true`).
    pub fn start() -> Option<Self> {
        let python = crate::helpers::test_python("standardwebhooks")?;
        let mut receiver = Self {
            python,
            child: None,
            port: 0,
            dir: tempfile::tempdir().unwrap(),
        };
        receiver.run();
        Some(receiver)
    }

    fn run(&mut self) {
        let script = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/support/webhook_receiver.py"
        );
        let mut child = Command::new(&self.python)
            .arg(script)
            .arg(self.port.to_string())
            .arg(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the webhook receiver: {e}"));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the receiver did not say its port: {line:?}"));
        self.child = Some(child);
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// The secret signatures are checked with.
    pub fn trust(&self, secret: &str) {
        std::fs::write(self.dir.path().join("secret"), secret).unwrap();
    }

    /// The status it answers verified requests with.
    pub fn answer(&self, status: u16) {
        std::fs::write(self.dir.path().join("status"), status.to_string()).unwrap();
    }

    /// Stops it: connections are refused until [`Self::resume`].
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts it again on the same port.
    pub fn resume(&mut self) {
        self.run();
    }

    fn read(&self, forged: bool) -> Vec<Value> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .filter(|p| {
                let forgery = p
                    .file_name()
                    .and_then(|n| n.to_str())
                    .is_some_and(|n| n.starts_with("forged-"));
                forgery == forged
            })
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// Every verified request, oldest first.
    pub fn received(&self) -> Vec<Value> {
        self.read(false)
    }

    /// Requests whose signature did not verify.
    pub fn forged(&self) -> Vec<Value> {
        self.read(true)
    }

    /// The event types received, once per event.
    fn types(&self) -> BTreeSet<String> {
        self.received()
            .iter()
            .map(|r| r["body"]["type"].as_str().unwrap_or_default().to_owned())
            .collect()
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn app(backend: TestBackend, retry_secs: Option<u64>) -> Option<TestApp> {
    spawn_app_with(backend, move |c| {
        c.webhook_allow_private = true;
        if let Some(secs) = retry_secs {
            c.webhook_retry = std::time::Duration::from_secs(secs);
        }
    })
    .await
}

/// Registers an endpoint for `types` and tells the receiver its secret; the endpoint's id.
async fn subscribe(
    app: &TestApp,
    admin: &str,
    receiver: &Receiver,
    path: &str,
    types: &[&str],
) -> String {
    let res = app
        .post(
            "/api/v1/webhooks/endpoints",
            Some(admin),
            &json!({"url": receiver.url(path), "event_types": types, "description": "test receiver"}),
        )
        .await;
    res.assert_status(201);
    let secret = res.body["secret"].as_str().unwrap().to_owned();
    assert!(secret.starts_with("whsec_"), "{}", res.body);
    let id = res.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        res.header("location").as_deref(),
        Some(format!("/api/v1/webhooks/endpoints/{id}").as_str())
    );
    assert_eq!(res.header("cache-control").as_deref(), Some("no-store"));
    receiver.trust(&secret);
    id
}

async fn deliveries(app: &TestApp, admin: &str, query: &str) -> Vec<Value> {
    let res = app
        .get(
            &format!("/api/v1/webhooks/deliveries?limit=100&{query}"),
            Some(admin),
        )
        .await;
    res.assert_status(200);
    res.body["items"].as_array().unwrap().clone()
}

async fn signed_deliveries_story(app: TestApp, receiver: Receiver) {
    let admin = app.admin().await.access_token;
    let types = app.get("/api/v1/webhooks/event-types", Some(&admin)).await;
    types.assert_status(200);
    let offered: Vec<&str> = types.body["event_types"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t.as_str())
        .collect();
    for t in [
        "ordering.order_paid",
        "shipping.shipment_dispatched",
        "catalog.product_created",
    ] {
        assert!(offered.contains(&t), "{t} is offered: {offered:?}");
    }
    for secret in [
        "identity.password_reset_requested",
        "identity.email_verification_requested",
        "ordering.guest_checked_out",
    ] {
        assert!(!offered.contains(&secret), "{secret} carries a secret");
    }
    let endpoint = subscribe(
        &app,
        &admin,
        &receiver,
        "/hooks/orders",
        &[
            "ordering.order_placed",
            "ordering.order_paid",
            "shipping.shipment_created",
        ],
    )
    .await;

    let product = app.sellable(&admin, "HOOK-1", 1250, 10).await;
    let customer = app.customer().await;
    let order = app
        .place_order(&customer.access_token, &product, 2, "tok_visa")
        .await;
    app.order_reaches(&customer.access_token, &order, "confirmed")
        .await;

    let got = app
        .eventually("three signed deliveries", 30, || async {
            let got = receiver.types();
            (got.len() == 3).then_some(got)
        })
        .await;
    assert_eq!(
        got,
        BTreeSet::from([
            "ordering.order_paid".to_owned(),
            "ordering.order_placed".to_owned(),
            "shipping.shipment_created".to_owned()
        ]),
        "only what the endpoint hears"
    );
    assert!(receiver.forged().is_empty(), "{:?}", receiver.forged());
    for r in receiver.received() {
        let body = &r["body"];
        assert_eq!(r["headers"]["webhook-id"], body["id"], "the event's id");
        assert!(r["headers"]["webhook-signature"]
            .as_str()
            .unwrap()
            .starts_with("v1,"));
        assert_eq!(r["headers"]["content-type"], "application/json");
        assert!(body["version"].as_u64().is_some() && body["timestamp"].is_string());
        if body["type"] == "ordering.order_paid" {
            assert_eq!(body["data"]["order_id"], order.as_str(), "{body}");
            assert_eq!(body["source"], "ordering");
        }
    }

    // The receiver keeps a request before the dispatcher records its answer.
    let listed = app
        .eventually("three delivered", 10, || async {
            let listed = deliveries(&app, &admin, &format!("endpoint_id={endpoint}")).await;
            (listed.len() == 3 && listed.iter().all(|d| d["status"] == "delivered"))
                .then_some(listed)
        })
        .await;
    for d in &listed {
        assert_eq!(d["status"], "delivered", "{d}");
        assert_eq!(d["attempts"], 1);
        assert_eq!(d["last_status"], 204);
    }
    let one = app
        .get(
            &format!(
                "/api/v1/webhooks/deliveries/{}",
                listed[0]["id"].as_str().unwrap()
            ),
            Some(&admin),
        )
        .await;
    one.assert_status(200);
    assert_eq!(
        one.body["attempts_made"][0]["status_code"], 204,
        "{}",
        one.body
    );
    assert_eq!(one.body["payload"]["id"], one.body["event_id"]);

    // A delivered one cannot be replayed; a new subscriber hears only what comes after.
    app.post(
        &format!(
            "/api/v1/webhooks/deliveries/{}/replay",
            listed[0]["id"].as_str().unwrap()
        ),
        Some(&admin),
        &json!({}),
    )
    .await
    .assert_problem(409, "webhooks.not_failed");
    let endpoints = app.get("/api/v1/webhooks/endpoints", Some(&admin)).await;
    endpoints.assert_status(200);
    assert_eq!(endpoints.body["items"][0]["id"], endpoint.as_str());
    assert!(
        endpoints.body["items"][0].get("secret").is_none(),
        "shown once"
    );
}

macro_rules! everywhere {
    ($name:ident, $story:path) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let Some(receiver) = Receiver::start() else {
                    return;
                };
                let Some(app) = app(TestBackend::Sqlite, None).await else {
                    return;
                };
                $story(app, receiver).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                let Some(receiver) = Receiver::start() else {
                    return;
                };
                let Some(app) = app(TestBackend::Postgres, None).await else {
                    return;
                };
                $story(app, receiver).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_split() {
                let Some(receiver) = Receiver::start() else {
                    return;
                };
                let Some(app) = crate::split::spawn_split_with(
                    crate::split::Broker::Rabbitmq,
                    &[("EMPORIUM_WEBHOOK_ALLOW_PRIVATE", "true")],
                )
                .await
                else {
                    return;
                };
                $story(app, receiver).await;
            }
        }
    };
}

everywhere!(signed_deliveries, signed_deliveries_story);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_down_for_30_seconds_gets_every_delivery_once_it_is_back() {
    let Some(mut receiver) = Receiver::start() else {
        return;
    };
    let Some(app) = app(TestBackend::Sqlite, None).await else {
        return;
    };
    let admin = app.admin().await.access_token;
    subscribe(&app, &admin, &receiver, "/in", &["ordering.order_placed"]).await;
    let product = app.sellable(&admin, "HOOK-DOWN", 500, 50).await;
    receiver.stop();
    let customer = app.customer().await;
    let mut orders = BTreeSet::new();
    for _ in 0..4 {
        orders.insert(
            app.place_order(&customer.access_token, &product, 1, "tok_visa")
                .await,
        );
    }
    tokio::time::sleep(std::time::Duration::from_secs(30)).await;
    let waiting = deliveries(&app, &admin, "status=pending").await;
    assert_eq!(waiting.len(), 4, "nothing lost while down: {waiting:?}");
    assert!(waiting.iter().all(|d| d["attempts"].as_u64() >= Some(1)));
    receiver.resume();
    let got: BTreeSet<String> = app
        .eventually(
            "every order placed, once the receiver is back",
            90,
            || async {
                let got: BTreeSet<String> = receiver
                    .received()
                    .iter()
                    .filter_map(|r| r["body"]["data"]["order_id"].as_str().map(str::to_owned))
                    .collect();
                (got.len() == orders.len()).then_some(got)
            },
        )
        .await;
    assert_eq!(got, orders);
    app.eventually("all four delivered", 10, || async {
        let delivered = deliveries(&app, &admin, "status=delivered").await;
        (delivered.len() == 4).then_some(())
    })
    .await;
    let endpoint = app.get("/api/v1/webhooks/endpoints", Some(&admin)).await;
    assert_eq!(
        endpoint.body["items"][0]["consecutive_failures"], 0,
        "circuit closed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_receiver_failing_for_good_ends_in_failed_deliveries_a_disabled_endpoint_and_a_replay() {
    let Some(receiver) = Receiver::start() else {
        return;
    };
    // A retry window of 12 s stands for the default 24 h.
    let Some(app) = app(TestBackend::Sqlite, Some(12)).await else {
        return;
    };
    let watcher = app.admin().await;
    let admin = watcher.access_token.clone();
    let disabled = app
        .observe(&["notifications.webhook_endpoint_disabled"])
        .await;
    receiver.answer(500);
    let endpoint = subscribe(
        &app,
        &admin,
        &receiver,
        "/broken",
        &["catalog.product_created"],
    )
    .await;
    app.product(&admin, "HOOK-500", 100, 1).await;
    let failed = app
        .eventually("the delivery fails", 60, || async {
            let failed = deliveries(&app, &admin, "status=failed").await;
            (failed.len() == 1).then_some(failed)
        })
        .await;
    let delivery = failed[0]["id"].as_str().unwrap().to_owned();
    assert!(failed[0]["attempts"].as_u64() > Some(2), "{}", failed[0]);
    assert_eq!(failed[0]["last_status"], 500);
    let detail = app
        .get(
            &format!("/api/v1/webhooks/deliveries/{delivery}"),
            Some(&admin),
        )
        .await;
    let attempts = detail.body["attempts_made"].as_array().unwrap();
    assert!(
        attempts.iter().all(|a| a["status_code"] == 500),
        "{attempts:?}"
    );

    let off = app
        .eventually("the endpoint is turned off", 30, || async {
            let e = app
                .get(
                    &format!("/api/v1/webhooks/endpoints/{endpoint}"),
                    Some(&admin),
                )
                .await;
            (e.body["enabled"] == false).then_some(e.body)
        })
        .await;
    assert!(
        off["disabled_reason"].as_str().unwrap().contains("failed"),
        "{off}"
    );
    app.eventually("the event says so", 10, || async {
        (disabled
            .of_type("notifications.webhook_endpoint_disabled")
            .len()
            == 1)
            .then_some(())
    })
    .await;
    app.eventually("its admin is told by mail", 20, || async {
        let mails = app
            .get("/api/v1/notifications/deliveries?limit=100", Some(&admin))
            .await;
        mails.body["items"]
            .as_array()?
            .iter()
            .any(|m| m["kind"] == "webhook_disabled" && m["customer_id"] == watcher.id.as_str())
            .then_some(())
    })
    .await;
    // While off, new events queue nothing for it.
    app.product(&admin, "HOOK-500-B", 100, 1).await;
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    assert_eq!(
        deliveries(&app, &admin, &format!("endpoint_id={endpoint}"))
            .await
            .len(),
        1
    );

    // The receiver is mended, the endpoint turned on, the delivery replayed.
    receiver.answer(200);
    let on = app
        .patch(
            &format!("/api/v1/webhooks/endpoints/{endpoint}"),
            Some(&admin),
            &json!({"enabled": true}),
        )
        .await;
    on.assert_status(200);
    assert_eq!(on.body["consecutive_failures"], 0);
    assert!(on.body["disabled_reason"].is_null());
    let replayed = app
        .post(
            &format!("/api/v1/webhooks/deliveries/{delivery}/replay"),
            Some(&admin),
            &json!({}),
        )
        .await;
    replayed.assert_status(200);
    assert_eq!(replayed.body["status"], "pending");
    app.eventually("the replay is delivered", 20, || async {
        (receiver.received().len() == 1).then_some(())
    })
    .await;
    assert_eq!(
        receiver.received()[0]["body"]["type"],
        "catalog.product_created"
    );
    assert!(receiver.forged().is_empty());
}

#[tokio::test]
async fn internal_targets_are_refused_when_made_and_when_delivered() {
    let Some(receiver) = Receiver::start() else {
        return;
    };
    let Some(app) = spawn_app_with(TestBackend::Sqlite, |_| {}).await else {
        return;
    };
    let admin = app.admin().await.access_token;
    let customer = app.customer().await.access_token;
    let create = |url: String| {
        let app = &app;
        let admin = admin.clone();
        async move {
            app.post(
                "/api/v1/webhooks/endpoints",
                Some(&admin),
                &json!({"url": url, "event_types": ["catalog.product_created"]}),
            )
            .await
        }
    };
    for url in [
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://10.0.0.1/hook".to_owned(),
        "http://[::1]:8080/".to_owned(),
        "http://[::ffff:192.168.0.1]/".to_owned(),
        // A name is judged by what it resolves to.
        format!("http://localhost:{}/in", receiver.port),
    ] {
        create(url.clone())
            .await
            .assert_problem(422, "webhooks.target_refused");
    }
    create("ftp://hooks.example.com/".to_owned())
        .await
        .assert_problem(422, "webhooks.target_refused");
    let unknown = app
        .post(
            "/api/v1/webhooks/endpoints",
            Some(&admin),
            &json!({"url": "https://hooks.example.com/", "event_types": ["identity.password_reset_requested"]}),
        )
        .await;
    unknown.assert_status(422);
    assert_eq!(unknown.error_fields(), vec!["event_types"]);
    app.post(
        "/api/v1/webhooks/endpoints",
        Some(&customer),
        &json!({"url": "https://hooks.example.com/", "event_types": ["catalog.product_created"]}),
    )
    .await
    .assert_status(403);
    app.get("/api/v1/webhooks/endpoints", None)
        .await
        .assert_status(401);
    let missing = uuid::Uuid::now_v7();
    app.get(
        &format!("/api/v1/webhooks/endpoints/{missing}"),
        Some(&admin),
    )
    .await
    .assert_problem(404, "webhooks.endpoint_not_found");
    app.post(
        &format!("/api/v1/webhooks/deliveries/{missing}/replay"),
        Some(&admin),
        &json!({}),
    )
    .await
    .assert_problem(404, "webhooks.delivery_not_found");

    // A name that pointed elsewhere when the endpoint was made and at loopback now (DNS
    // rebinding), and a literal written around the check: refused when delivered, the
    // receiver never reached.
    let db = app.database(ContextName::Notifications).await;
    let now = kernel::Timestamp::now().as_micros();
    for url in [
        format!("http://localhost:{}/in", receiver.port),
        format!("http://127.0.0.1:{}/in", receiver.port),
    ] {
        sqlx::query(
            "insert into webhook_endpoint (endpoint_id, url, description, event_types, secret, enabled, created_by, created_at, updated_at, consecutive_failures) \
             values ($1, $2, '', '[\"catalog.product_created\"]', 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 1, $3, $4, $4, 0)",
        )
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(url)
        .bind(uuid::Uuid::now_v7().to_string())
        .bind(now)
        .execute(db.pool())
        .await
        .unwrap();
    }
    receiver.trust("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw");
    app.product(&admin, "HOOK-SSRF", 100, 1).await;
    let refused = app
        .eventually("both attempts are refused", 20, || async {
            let list = deliveries(&app, &admin, "").await;
            let refused: Vec<Value> = list
                .into_iter()
                .filter(|d| {
                    d["last_error"]
                        .as_str()
                        .is_some_and(|e| e.starts_with("refused:"))
                })
                .collect();
            (refused.len() == 2).then_some(refused)
        })
        .await;
    assert!(
        refused.iter().all(|d| d["last_status"].is_null()),
        "{refused:?}"
    );
    assert!(
        receiver.received().is_empty() && receiver.forged().is_empty(),
        "never reached"
    );
}
