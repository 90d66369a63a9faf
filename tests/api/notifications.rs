//! Notifications: what customers are told, through a real SMTP server (aiosmtpd, started
//! per test on a free port) or the mail drop; exactly once per fact, through duplicates and
//! an SMTP outage; preferences; privacy; failed deliveries for the admin.

use std::io::BufRead as _;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, Customer, TestApp};
use platform::testing::TestBackend;

/// An SMTP server (`tests/support/smtp_sink.py`) that keeps every accepted message.
pub struct SmtpSink {
    python: PathBuf,
    child: Option<Child>,
    port: u16,
    dir: tempfile::TempDir,
}

impl SmtpSink {
    /// Starts one, or `None` when Python with aiosmtpd is not installed (a failure under
    /// `CI=true`).
    pub fn start() -> Option<Self> {
        let python = crate::helpers::test_python("aiosmtpd")?;
        let mut sink = Self {
            python,
            child: None,
            port: 0,
            dir: tempfile::tempdir().unwrap(),
        };
        sink.run();
        Some(sink)
    }

    fn run(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/support/smtp_sink.py");
        let mut child = Command::new(&self.python)
            .arg(script)
            .arg(self.port.to_string())
            .arg(self.dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start the SMTP sink: {e}"));
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        self.port = line
            .trim()
            .strip_prefix("PORT ")
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("the SMTP sink did not say its port: {line:?}"));
        self.child = Some(child);
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    /// Stops the server: connections are refused until [`Self::resume`].
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

    /// Every accepted message (decoded), oldest first.
    pub fn messages(&self) -> Vec<Value> {
        let mut paths: Vec<PathBuf> = std::fs::read_dir(self.dir.path())
            .unwrap()
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        paths.sort();
        paths
            .iter()
            .map(|p| serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap())
            .collect()
    }

    /// The messages to one address.
    pub fn to(&self, address: &str) -> Vec<Value> {
        self.messages()
            .into_iter()
            .filter(|m| {
                m["rcpt_tos"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|r| r == address)
            })
            .collect()
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where a story runs.
#[derive(Clone, Copy)]
pub enum Topology {
    Sqlite,
    Postgres,
    /// Five processes and the gateway.
    Split(crate::split::Broker),
}

/// The app on `topology`, sending through `sink` (`None`: the topology's services are not
/// configured outside CI). Retries wait at most 8 s, so an outage's end is seen quickly.
async fn with_smtp(topology: Topology, sink: &SmtpSink) -> Option<TestApp> {
    let url = sink.url();
    match topology {
        Topology::Sqlite | Topology::Postgres => {
            let backend = match topology {
                Topology::Sqlite => TestBackend::Sqlite,
                _ => TestBackend::Postgres,
            };
            spawn_app_with(backend, move |c| {
                c.smtp_url = Some(url);
                c.mail_from = "Emporium Test Shop <shop@example.com>".to_owned();
                c.public_url = Some("https://shop.example".to_owned());
                c.mail_retry_max = std::time::Duration::from_secs(8);
            })
            .await
        }
        Topology::Split(broker) => {
            crate::split::spawn_split_with(
                broker,
                &[
                    ("EMPORIUM_SMTP_URL", url.as_str()),
                    (
                        "EMPORIUM_MAIL_FROM",
                        "Emporium Test Shop <shop@example.com>",
                    ),
                    ("EMPORIUM_PUBLIC_URL", "https://shop.example"),
                    ("EMPORIUM_MAIL_RETRY_MAX_SECS", "8"),
                ],
            )
            .await
        }
    }
}

/// Declares a story `async fn story(app: TestApp, sink: SmtpSink)` run against a fresh SMTP
/// server on SQLite, PostgreSQL, the split topology over RabbitMQ and (`--features sqs`)
/// over SNS + SQS.
macro_rules! with_sink_everywhere {
    ($name:ident, $story:path) => {
        mod $name {
            use super::*;

            async fn run(topology: Topology) {
                let Some(sink) = SmtpSink::start() else {
                    return;
                };
                let Some(app) = with_smtp(topology, &sink).await else {
                    return;
                };
                $story(app, sink).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                run(Topology::Sqlite).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                run(Topology::Postgres).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_split() {
                run(Topology::Split(crate::split::Broker::Rabbitmq)).await;
            }

            #[cfg(feature = "sqs")]
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_split_sqs() {
                run(Topology::Split(crate::split::Broker::Sqs)).await;
            }
        }
    };
}

/// The subjects of the messages to `address`, as kinds: which messages arrived.
fn kinds(messages: &[Value]) -> Vec<String> {
    let mut kinds: Vec<String> = messages
        .iter()
        .map(|m| {
            let s = m["subject"].as_str().unwrap();
            let kind = if s.starts_with("Welcome") {
                "welcome"
            } else if s == "Verify your email address" {
                "verify_email"
            } else if s.ends_with("is confirmed") {
                "order_confirmed"
            } else if s.ends_with("was cancelled") {
                "order_cancelled"
            } else if s.ends_with("is on its way") {
                "shipment_dispatched"
            } else if s.ends_with("was delivered") {
                "shipment_delivered"
            } else if s.starts_with("A refund of") {
                "refund_issued"
            } else if s.contains("return") {
                "return_update"
            } else {
                panic!("unexpected subject {s:?}")
            };
            kind.to_owned()
        })
        .collect();
    kinds.sort();
    kinds
}

/// Orders one item, takes it through dispatch and delivery; returns (order id, tracking).
async fn order_dispatched_and_delivered(
    app: &TestApp,
    admin: &Customer,
    customer: &Customer,
    product: &str,
) -> (String, String) {
    let order = app
        .place_order(&customer.access_token, product, 2, "tok_visa")
        .await;
    app.order_reaches(&customer.access_token, &order, "confirmed")
        .await;
    let shipment = app
        .eventually("the shipment exists", 20, || async {
            let list = app
                .get(
                    &format!("/api/v1/shipping/shipments?order_id={order}"),
                    Some(&admin.access_token),
                )
                .await;
            list.body["items"].get(0).cloned()
        })
        .await;
    let path = format!(
        "/api/v1/shipping/shipments/{}/events",
        shipment["id"].as_str().unwrap()
    );
    for event in ["dispatched", "delivered"] {
        app.post(&path, Some(&admin.access_token), &json!({"type": event}))
            .await
            .assert_status(200);
    }
    let tracking = shipment["tracking_number"].as_str().unwrap().to_owned();
    (order, tracking)
}

async fn checkout_story(app: TestApp, sink: SmtpSink) {
    let admin = app.admin().await;
    let product = app.sellable(&admin.access_token, "MAIL-1", 1250, 10).await;
    let customer = app.customer().await;
    let (order, tracking) = order_dispatched_and_delivered(&app, &admin, &customer, &product).await;

    let mine = app
        .eventually("five messages reach the customer", 60, || async {
            let m = sink.to(&customer.email);
            (m.len() >= 5).then_some(m)
        })
        .await;
    assert_eq!(
        kinds(&mine),
        [
            "order_confirmed",
            "shipment_delivered",
            "shipment_dispatched",
            "verify_email",
            "welcome"
        ]
    );
    let by = |kind: &str| {
        mine.iter()
            .find(|m| kinds(std::slice::from_ref(m))[0] == kind)
            .unwrap()
            .clone()
    };
    for m in &mine {
        assert!(m["to"].as_str().unwrap().contains(&customer.email), "{m}");
        assert!(m["from"].as_str().unwrap().contains("shop@example.com"));
        assert!(m["html"].as_str().unwrap().contains("<html>"));
    }
    let confirmed = by("order_confirmed");
    let text = confirmed["text"].as_str().unwrap();
    assert!(text.contains(&order), "{text}");
    assert!(text.contains("2 × "), "{text}");
    assert!(text.contains("EUR 25.00"), "{text}");
    let dispatched = by("shipment_dispatched");
    let text = dispatched["text"].as_str().unwrap();
    assert!(text.contains(&tracking), "{text}");
    assert!(
        text.contains(&format!(
            "https://shop.example/api/v1/shipping/tracking/{tracking}"
        )),
        "{text}"
    );
    assert!(text.contains("with EMP"), "{text}");
    assert!(by("shipment_delivered")["text"]
        .as_str()
        .unwrap()
        .contains(&order));

    // The customer sees the same five, newest first, sent, with their text (a message is
    // marked sent just after the server took it: the list may lag the server by a moment).
    let list = app
        .eventually("the five marked sent", 10, || async {
            let list = app
                .get("/api/v1/notifications/me", Some(&customer.access_token))
                .await;
            let items = list.body["items"].as_array()?;
            (items.len() == 5 && items.iter().all(|i| i["status"] == "sent")).then_some(list)
        })
        .await;
    list.assert_status(200);
    let items = list.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 5, "{}", list.body);
    // Newest first, by when each message was queued. The order's three messages follow the
    // welcome and the verification link (queued together at sign-up); their own order is the order their events reached notifications, which a
    // broker without ordering (SQS) may change: the confirmation travels from ordering, the
    // dispatch and delivery from shipping, and either may arrive first.
    let queued: Vec<&str> = items
        .iter()
        .filter_map(|i| i["created_at"].as_str())
        .collect();
    assert!(queued.windows(2).all(|w| w[0] >= w[1]), "{}", list.body);
    let about_the_order: std::collections::BTreeSet<&str> = items[..3]
        .iter()
        .filter_map(|i| i["kind"].as_str())
        .collect();
    assert_eq!(
        about_the_order,
        [
            "order_confirmed",
            "shipment_delivered",
            "shipment_dispatched"
        ]
        .into(),
        "{}",
        list.body
    );
    let at_sign_up: std::collections::BTreeSet<&str> = items[3..]
        .iter()
        .filter_map(|i| i["kind"].as_str())
        .collect();
    assert_eq!(
        at_sign_up,
        ["verify_email", "welcome"].into(),
        "{}",
        list.body
    );
    assert!(items.iter().all(|i| i["status"] == "sent"));
    assert_eq!(items[1]["order_id"], order.as_str());
    // Paged: two, two, then the last one.
    let first = app
        .get(
            "/api/v1/notifications/me?limit=2",
            Some(&customer.access_token),
        )
        .await;
    let cursor = first.body["next_cursor"].as_str().unwrap();
    let second = app
        .get(
            &format!("/api/v1/notifications/me?limit=2&cursor={cursor}"),
            Some(&customer.access_token),
        )
        .await;
    assert_eq!(second.body["items"][1]["id"], items[3]["id"]);
    let cursor = second.body["next_cursor"].as_str().unwrap();
    let third = app
        .get(
            &format!("/api/v1/notifications/me?limit=2&cursor={cursor}"),
            Some(&customer.access_token),
        )
        .await;
    assert_eq!(third.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(third.body["items"][0]["id"], items[4]["id"]);
    assert!(third.body["next_cursor"].is_null());

    // Nothing more arrives later (no second copy of anything).
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    assert_eq!(sink.to(&customer.email).len(), 5);
    app.stop().await;
}

with_sink_everywhere!(
    the_checkout_story_mails_the_customer_exactly_what_happened,
    checkout_story
);

// Every event notifications consumes, delivered again (same envelopes): nothing is queued
// or sent twice.
async fn duplicates_story(app: TestApp, sink: SmtpSink) {
    let consumed = [
        "identity.user_registered",
        "ordering.order_placed",
        "ordering.order_status_changed",
        "ordering.order_cancelled",
        "ordering.order_refunded",
        "shipping.shipment_created",
        "shipping.shipment_dispatched",
        "shipping.shipment_delivered",
    ];
    let seen = app.observe(&consumed).await;
    let admin = app.admin().await;
    let product = app.sellable(&admin.access_token, "MAIL-2", 500, 10).await;
    let customer = app.customer().await;
    order_dispatched_and_delivered(&app, &admin, &customer, &product).await;
    let cancelled = app
        .place_order(&customer.access_token, &product, 1, "tok_visa")
        .await;
    app.order_reaches(&customer.access_token, &cancelled, "confirmed")
        .await;
    app.post(
        &format!("/api/v1/ordering/orders/{cancelled}/cancel"),
        Some(&customer.access_token),
        &json!({}),
    )
    .await
    .assert_status(200);
    app.eventually("eight messages", 120, || async {
        (sink.to(&customer.email).len() >= 8).then_some(())
    })
    .await;
    let envelopes: Vec<bus::Envelope> = consumed.iter().flat_map(|t| seen.of_type(t)).collect();
    app.redeliver(&envelopes).await;
    app.redeliver(&envelopes).await;
    tokio::time::sleep(std::time::Duration::from_secs(3)).await;
    let mine = sink.to(&customer.email);
    assert_eq!(
        kinds(&mine),
        [
            "order_cancelled",
            "order_confirmed",
            "order_confirmed",
            "refund_issued",
            "shipment_delivered",
            "shipment_dispatched",
            "verify_email",
            "welcome"
        ]
    );
    let cancellation = mine
        .iter()
        .find(|m| m["subject"].as_str().unwrap().ends_with("was cancelled"))
        .unwrap();
    let text = cancellation["text"].as_str().unwrap();
    assert!(
        text.contains(&cancelled) && text.contains("you cancelled it"),
        "{text}"
    );
    assert!(text.contains("your payment was refunded"), "{text}");
    app.stop().await;
}

with_sink_everywhere!(duplicate_delivery_sends_nothing_twice, duplicates_story);

// The SMTP server is down for 30 s while 50 orders are placed: once it is back, every
// message arrives, and none twice.
async fn outage_story(app: TestApp, mut sink: SmtpSink) {
    let admin = app.admin().await;
    let product = app.sellable(&admin.access_token, "MAIL-3", 300, 1000).await;
    let mut customers = Vec::new();
    for _ in 0..5 {
        customers.push(app.customer().await);
    }
    app.eventually(
        "the welcomes and verification links are sent",
        30,
        || async {
            customers
                .iter()
                .all(|c| sink.to(&c.email).len() == 2)
                .then_some(())
        },
    )
    .await;

    sink.stop();
    let down = std::time::Instant::now();
    let orders = futures::future::join_all(customers.iter().map(|c| async {
        let mut placed = Vec::new();
        for _ in 0..10 {
            placed.push(
                app.place_order(&c.access_token, &product, 1, "tok_visa")
                    .await,
            );
        }
        for o in &placed {
            app.order_reaches(&c.access_token, o, "confirmed").await;
        }
        placed
    }))
    .await;
    // Every confirmation waits in the queue while the server is down.
    app.eventually("fifty confirmations queued", 25, || async {
        let queued = app
            .get(
                "/api/v1/notifications/deliveries?status=queued&limit=100",
                Some(&admin.access_token),
            )
            .await;
        // Only the confirmations count: the admin's and the probe customer's sign-up mails
        // may be waiting too.
        let confirmations = queued.body["items"]
            .as_array()?
            .iter()
            .filter(|d| d["kind"] == "order_confirmed")
            .count();
        (confirmations == 50).then_some(())
    })
    .await;
    // The outage lasts 30 s, or longer when a loaded machine took longer to place the orders.
    let rest = std::time::Duration::from_secs(30).saturating_sub(down.elapsed());
    tokio::time::sleep(rest).await;
    sink.resume();

    app.eventually("every confirmation arrives", 90, || async {
        customers
            .iter()
            .all(|c| sink.to(&c.email).len() == 12)
            .then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    for (c, placed) in customers.iter().zip(&orders) {
        let mine = sink.to(&c.email);
        assert_eq!(
            mine.len(),
            12,
            "one welcome, one verification link and ten confirmations"
        );
        for order in placed {
            let copies = mine
                .iter()
                .filter(|m| m["text"].as_str().unwrap().contains(order.as_str()))
                .count();
            assert_eq!(copies, 1, "order {order}");
        }
    }
    let ids: std::collections::BTreeSet<String> = sink
        .messages()
        .iter()
        .map(|m| m["message_id"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids.len(), sink.messages().len(), "no Message-ID twice");
    app.stop().await;
}

with_sink_everywhere!(
    an_smtp_outage_loses_nothing_and_sends_nothing_twice,
    outage_story
);

// A permanent refusal (550) ends the delivery failed after its attempts; the admin sees it,
// with the server's words, can queue it again, and the bus hears of the failure.
async fn rejected_story(app: TestApp, sink: SmtpSink) {
    let seen = app.observe(&["notifications.delivery_failed"]).await;
    let admin = app.admin().await;
    let email = format!("reject-{}@example.com", uuid::Uuid::new_v4().simple());
    let created = app
        .sign_up(&email, "plum-anchor-violet-42", "Rejected Reader")
        .await;
    created.assert_status(201);
    let customer_id = created.body["id"].as_str().unwrap().to_owned();
    let failed = app
        .eventually("the welcome fails", 60, || async {
            let list = app
                .get(
                    "/api/v1/notifications/deliveries?status=failed",
                    Some(&admin.access_token),
                )
                .await;
            list.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .find(|d| d["customer_id"] == customer_id.as_str() && d["kind"] == "welcome")
                .cloned()
        })
        .await;
    assert_eq!(failed["kind"], "welcome");
    assert_eq!(failed["attempts"], 3, "{failed}");
    assert_eq!(failed["recipient"], email.as_str());
    assert!(
        failed["last_error"].as_str().unwrap().contains("550"),
        "{failed}"
    );
    assert!(sink.to(&email).is_empty());
    // The welcome and the verification link both fail, and each failure is published.
    app.eventually("the failures are published", 20, || async {
        (seen.of_type("notifications.delivery_failed").len() == 2).then_some(())
    })
    .await;
    let mut failures: Vec<notifications_contracts::DeliveryFailed> = seen
        .of_type("notifications.delivery_failed")
        .iter()
        .map(|e| e.open().unwrap())
        .collect();
    failures.sort_by(|a, b| a.kind.cmp(&b.kind));
    assert_eq!(failures[0].kind, "verify_email");
    assert_eq!(failures[1].kind, "welcome");
    assert!(failures
        .iter()
        .all(|e| e.customer_id.to_string() == customer_id));

    // Not for customers; retried by an admin, it is queued and fails again.
    let id = failed["id"].as_str().unwrap();
    let retry = format!("/api/v1/notifications/deliveries/{id}/retry");
    let customer = app.customer().await;
    app.get(
        "/api/v1/notifications/deliveries",
        Some(&customer.access_token),
    )
    .await
    .assert_problem(403, "forbidden");
    app.post(&retry, Some(&customer.access_token), &json!({}))
        .await
        .assert_problem(403, "forbidden");
    let queued = app
        .post(&retry, Some(&admin.access_token), &json!({}))
        .await;
    queued.assert_status(200);
    assert_eq!(queued.body["status"], "queued");
    assert_eq!(queued.body["attempts"], 0);
    app.post(&retry, Some(&admin.access_token), &json!({}))
        .await
        .assert_problem(409, "notifications.not_failed");
    app.post(
        &format!(
            "/api/v1/notifications/deliveries/{}/retry",
            uuid::Uuid::now_v7()
        ),
        Some(&admin.access_token),
        &json!({}),
    )
    .await
    .assert_problem(404, "notifications.message_not_found");
    app.get(
        "/api/v1/notifications/deliveries?status=lost",
        Some(&admin.access_token),
    )
    .await
    .assert_status(400);
    app.stop().await;
}

with_sink_everywhere!(
    a_rejected_address_ends_failed_and_is_listed_for_the_admin,
    rejected_story
);

// A customer who turned shipment updates off hears of the order only; a renamed customer is
// greeted by the new name; nobody reads another's messages.
async fn preferences_story(app: TestApp, sink: SmtpSink) {
    let admin = app.admin().await;
    let product = app.sellable(&admin.access_token, "MAIL-4", 800, 10).await;
    let customer = app.customer().await;
    let other = app.customer().await;
    let t = Some(customer.access_token.as_str());

    let prefs = app.get("/api/v1/notifications/preferences", t).await;
    prefs.assert_status(200);
    assert_eq!(
        prefs.body,
        json!({"shipment_updates": true, "order_updates": true})
    );
    let set = app
        .put(
            "/api/v1/notifications/preferences",
            t,
            &json!({"shipment_updates": false}),
        )
        .await;
    set.assert_status(200);
    assert_eq!(set.body["shipment_updates"], false);
    for bad in [
        json!({"shipment_updates": "no"}),
        json!({"shipment_updates": false, "order_updates": false}),
        json!({}),
    ] {
        let res = app.put("/api/v1/notifications/preferences", t, &bad).await;
        assert!(matches!(res.status, 400 | 422), "{bad}: {}", res.status);
    }
    app.get("/api/v1/notifications/preferences", None)
        .await
        .assert_status(401);
    assert_eq!(
        app.get("/api/v1/notifications/preferences", t).await.body["shipment_updates"],
        false
    );
    app.patch("/api/v1/identity/me", t, &json!({"name": "Grace Hopper"}))
        .await
        .assert_status(200);

    let (order, _) = order_dispatched_and_delivered(&app, &admin, &customer, &product).await;
    app.order_reaches(&customer.access_token, &order, "delivered")
        .await;
    app.eventually("the confirmation arrives", 30, || async {
        (sink.to(&customer.email).len() >= 3).then_some(())
    })
    .await;
    tokio::time::sleep(std::time::Duration::from_secs(2)).await;
    let mine = sink.to(&customer.email);
    assert_eq!(kinds(&mine), ["order_confirmed", "verify_email", "welcome"]);
    let confirmation = mine
        .iter()
        .find(|m| m["subject"].as_str().unwrap().ends_with("is confirmed"))
        .unwrap();
    assert!(confirmation["text"]
        .as_str()
        .unwrap()
        .starts_with("Hello Grace Hopper,"));
    assert!(confirmation["to"]
        .as_str()
        .unwrap()
        .contains("Grace Hopper"));

    // Privacy: my messages are mine.
    let list = app.get("/api/v1/notifications/me", t).await;
    let items = list.body["items"].as_array().unwrap().clone();
    assert_eq!(items.len(), 3);
    let id = items[0]["id"].as_str().unwrap();
    app.get(&format!("/api/v1/notifications/me/{id}"), t)
        .await
        .assert_status(200);
    app.get(
        &format!("/api/v1/notifications/me/{id}"),
        Some(&other.access_token),
    )
    .await
    .assert_problem(404, "notifications.message_not_found");
    let theirs = app
        .get("/api/v1/notifications/me", Some(&other.access_token))
        .await;
    assert!(theirs.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(
            |m| ["welcome", "verify_email"].contains(&m["kind"].as_str().unwrap_or_default())
                && m["order_id"].is_null()
        ));
    app.get("/api/v1/notifications/me?cursor=nonsense", t)
        .await
        .assert_problem(400, "invalid_cursor");
    app.get("/api/v1/notifications/me/not-a-uuid", t)
        .await
        .assert_status(400);
    app.stop().await;
}

with_sink_everywhere!(
    preferences_names_and_privacy_are_respected,
    preferences_story
);

// Without an SMTP URL, messages land as `.eml` files under the data directory: a person
// (or a mail client) can open them.
crate::both_backends!(the_mail_drop_writes_readable_eml_files, |app| {
    let customer = app.customer().await;
    let drop = app.config.data_dir.join("mail");
    let text = app
        .eventually("a message in the mail drop", 20, || async {
            let files: Vec<PathBuf> = std::fs::read_dir(&drop)
                .ok()?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|x| x == "eml"))
                .collect();
            files
                .iter()
                .map(|f| std::fs::read_to_string(f).unwrap())
                .find(|t| t.contains(&customer.email) && t.contains("Subject: Welcome"))
        })
        .await;
    assert!(
        text.contains("Subject: Welcome to the shop, Test Customer"),
        "{text}"
    );
    assert!(text.contains("From: Emporium <shop@localhost>"), "{text}");
    assert!(text.contains("multipart/alternative"), "{text}");
    assert!(
        text.contains("text/plain") && text.contains("text/html"),
        "{text}"
    );
    assert!(text.contains("Message-ID: <"), "{text}");
    // Marked sent just after the file is in place.
    let welcome = app
        .eventually("the welcome marked sent", 10, || async {
            let list = app
                .get("/api/v1/notifications/me", Some(&customer.access_token))
                .await;
            let welcome = list.body["items"]
                .as_array()?
                .iter()
                .find(|m| m["kind"] == "welcome" && m["status"] == "sent")?
                .clone();
            Some(welcome)
        })
        .await;
    assert_eq!(welcome["subject"], "Welcome to the shop, Test Customer");
    app.stop().await;
});
