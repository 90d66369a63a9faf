//! Faults: a dependency that goes away is a 503 the client may retry, never a 500 or a hang,
//! and the process recovers by itself when it returns.

use std::time::{Duration, Instant};

use platform::testing::{postgres_url, TestBackend};
use serde_json::json;

use crate::fault_proxy::{FaultProxy, Mode};
use crate::helpers::{address, spawn_app_with, Response};

/// `host:port` of a service URL (`default_port` when it names none).
pub fn authority(url: &str, default_port: u16) -> String {
    let parsed = reqwest::Url::parse(url).unwrap_or_else(|e| panic!("{url}: {e}"));
    format!(
        "{}:{}",
        parsed.host_str().unwrap_or("127.0.0.1"),
        parsed.port().unwrap_or(default_port)
    )
}

/// Every answer during an outage is either a success (served from a cache) or a 503
/// problem with `Retry-After`; none is a 500, and none takes longer than `budget`.
fn assert_unavailable_or_ok(what: &str, res: &Response, took: Duration, budget: Duration) {
    assert!(
        took <= budget,
        "{what}: took {took:?}, more than {budget:?} (a hang, not an answer)"
    );
    if res.status < 400 {
        return;
    }
    res.assert_problem(503, "service_unavailable");
    let retry: u64 = res
        .header("retry-after")
        .unwrap_or_default()
        .parse()
        .unwrap_or(0);
    assert!(retry >= 1, "{what}: 503 without Retry-After");
}

async fn timed(f: impl std::future::Future<Output = Response>) -> (Response, Duration) {
    let started = Instant::now();
    let res = f.await;
    (res, started.elapsed())
}

// PostgreSQL cut off under a monolith: reads and writes answer 503 problem+json with
// Retry-After (before the fix, pool timeouts were 500 `internal_error`), readiness says
// which database is down, and within 10 s of its return everything works again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_503_with_retry_after_and_recovers_within_10_s() {
    let Some(admin) = postgres_url() else { return };
    let proxy = FaultProxy::start(&authority(&admin, 5432)).await;
    let real = authority(&admin, 5432);
    let proxied = format!("127.0.0.1:{}", proxy.port);
    let Some(app) = spawn_app_with(TestBackend::Postgres, |c| {
        c.database_url = c.database_url.as_ref().map(|u| u.replace(&real, &proxied));
    })
    .await
    else {
        return;
    };
    let boss = app.bootstrap_admin_token().await;
    let product = app.sellable(&boss, "FAULT-1", 1500, 100).await;
    let c = app.customer().await;
    app.add_to_cart(&c.access_token, &product, 1)
        .await
        .assert_status(200);

    proxy.set(Mode::Refuse);
    let budget = Duration::from_secs(8);
    let mut unavailable = 0;
    for round in 0..3 {
        let email = format!(
            "outage-{round}-{}@example.com",
            uuid::Uuid::new_v4().simple()
        );
        let calls = [
            (
                "sign up",
                timed(app.sign_up(&email, "outage-violet-anchor-7", "Out Age")).await,
            ),
            (
                "cart",
                timed(app.get("/api/v1/ordering/cart", Some(&c.access_token))).await,
            ),
            (
                "orders",
                timed(app.get("/api/v1/ordering/orders", Some(&c.access_token))).await,
            ),
            (
                "stock",
                timed(app.get(&format!("/api/v1/catalog/products/{product}/stock"), None)).await,
            ),
            (
                "checkout",
                timed(app.request(
                    reqwest::Method::POST,
                    "/api/v1/ordering/orders",
                    Some(&c.access_token),
                    Some(&json!({"shipping_address": address(), "payment_token": "tok_visa"})),
                    &[("idempotency-key", "outage-checkout-1")],
                ))
                .await,
            ),
        ];
        for (what, (res, took)) in &calls {
            assert_unavailable_or_ok(what, res, *took, budget);
            if res.status == 503 {
                unavailable += 1;
            }
        }
    }
    assert!(
        unavailable >= 10,
        "the outage was not felt: {unavailable} answers were 503"
    );
    let ready = app.get("/health/ready", None).await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert_eq!(ready.body["checks"]["ordering_database"], "down");

    proxy.set(Mode::Pass);
    let back = Instant::now();
    app.eventually("readiness after the database returns", 10, || async {
        (app.get("/health/ready", None).await.status == 200).then_some(())
    })
    .await;
    app.eventually("a sign-up after the database returns", 10, || async {
        let email = format!("back-{}@example.com", uuid::Uuid::new_v4().simple());
        (app.sign_up(&email, "outage-violet-anchor-7", "Back")
            .await
            .status
            == 201)
            .then_some(())
    })
    .await;
    assert!(back.elapsed() <= Duration::from_secs(10));
    // The checkout the client retried with its key goes through exactly once.
    let order = app
        .request(
            reqwest::Method::POST,
            "/api/v1/ordering/orders",
            Some(&c.access_token),
            Some(&json!({"shipping_address": address(), "payment_token": "tok_visa"})),
            &[("idempotency-key", "outage-checkout-1")],
        )
        .await;
    assert!(matches!(order.status, 201 | 202), "{}", order.body);
    let id = order.body["id"].as_str().unwrap_or_default().to_owned();
    app.order_reaches(&c.access_token, &id, "confirmed").await;
    app.stop().await;
}

// Eight checkouts at once with one Idempotency-Key all answer with the same order (before,
// on PostgreSQL, the ones that waited on the cart's rows found it emptied and got 422).
crate::both_backends!(
    concurrent_checkouts_with_one_key_get_the_same_order,
    |app| {
        let admin = app.admin().await;
        let p = app.sellable(&admin.access_token, "RACE-KEY", 300, 10).await;
        let c = app.customer().await;
        app.add_to_cart(&c.access_token, &p, 2)
            .await
            .assert_status(200);
        let results = futures::future::join_all(
            (0..8).map(|_| app.checkout(&c.access_token, "tok_visa", Some("one-key-for-all"))),
        )
        .await;
        let mut ids = std::collections::BTreeSet::new();
        for r in &results {
            r.assert_status(202);
            ids.insert(r.body["id"].as_str().unwrap_or_default().to_owned());
        }
        assert_eq!(ids.len(), 1, "{ids:?}");
        let list = app
            .get("/api/v1/ordering/orders", Some(&c.access_token))
            .await;
        assert_eq!(list.body["items"].as_array().map(Vec::len), Some(1));
        app.stop().await;
    }
);
