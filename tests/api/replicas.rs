//! Two instances each of catalog and ordering behind the gateway (PostgreSQL, RabbitMQ,
//! Redis): the instances of a group share its events (each handled once in all), a change
//! made through one instance reaches the other's cache, and one catalog instance SIGKILLed
//! during a read load costs no request; restarted, it is back in service within 10 s.
//! (The checkout suite runs on this topology too: `on_replicated` in `every_topology!`.)

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::split::spawn_replicated;

/// Each of these happens once per confirmed order.
const ONCE_PER_ORDER: [&str; 4] = [
    "ordering.order_placed",
    "catalog.stock_reserved",
    "ordering.order_paid",
    "shipping.shipment_created",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instances_share_the_work_and_a_killed_one_costs_no_request() {
    let Some(mut app) = spawn_replicated().await else {
        return;
    };
    let admin = app.admin().await;
    let product = app.sellable(&admin.access_token, "REP-1", 700, 100).await;

    // Every event handled once per consumer group, whichever instance took it.
    let per_order: u64 = ONCE_PER_ORDER
        .iter()
        .map(|t| emporium::asyncapi::consumers_of(t).len() as u64)
        .sum();
    let before = app.deployment().handled(&ONCE_PER_ORDER).await;
    let customer = app.customer().await;
    let orders = 6;
    for _ in 0..orders {
        let order = app
            .place_order(&customer.access_token, &product, 1, "tok_visa")
            .await;
        app.order_reaches(&customer.access_token, &order, "confirmed")
            .await;
    }
    let expected = before + orders * per_order;
    let deployment = app.deployment();
    let mut handled = 0;
    for _ in 0..100 {
        handled = deployment.handled(&ONCE_PER_ORDER).await;
        if handled >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    handled = handled.max(deployment.handled(&ONCE_PER_ORDER).await);
    assert_eq!(
        handled, expected,
        "each event once per group across the instances"
    );

    // A price changed through one catalog instance is what every read shows (the other
    // instance's cache hears of it by broadcast).
    let path = format!("/api/v1/catalog/products/{product}");
    for _ in 0..10 {
        app.get(&path, None).await.assert_status(200);
    }
    app.patch(
        &path,
        Some(&admin.access_token),
        &serde_json::json!({"price": {"amount": 750, "currency": "EUR"}}),
    )
    .await
    .assert_status(200);
    app.eventually("both instances show the new price", 10, || async {
        let mut all = true;
        for _ in 0..10 {
            all &= app.get(&path, None).await.body["price"]["amount"] == 750;
        }
        all.then_some(())
    })
    .await;

    // SIGKILL one catalog instance in the middle of 3,000 reads, 16 at a time.
    let total = 3_000;
    let done = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(std::sync::Mutex::new(Vec::new()));
    let url = format!("{}{path}", app.address);
    let client = reqwest::Client::new();
    let readers: Vec<_> = (0..16)
        .map(|_| {
            let (done, failures, url, client) =
                (done.clone(), failures.clone(), url.clone(), client.clone());
            tokio::spawn(async move {
                while done.fetch_add(1, Ordering::Relaxed) < total {
                    match client.get(&url).send().await {
                        Ok(res) if res.status() == 200 => {}
                        Ok(res) => {
                            let status = res.status();
                            let body = res.text().await.unwrap_or_default();
                            failures.lock().unwrap().push(format!("{status}: {body}"));
                        }
                        Err(e) => failures.lock().unwrap().push(e.to_string()),
                    }
                }
            })
        })
        .collect();
    while done.load(Ordering::Relaxed) < total / 3 {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    app.deployment().process("catalog-2").kill();
    for reader in readers {
        reader.await.unwrap();
    }
    let failures = failures.lock().unwrap().clone();
    assert!(
        failures.is_empty(),
        "{} of {total} reads failed: {:?}",
        failures.len(),
        &failures[..failures.len().min(5)]
    );

    // Restarted (same port), it is back in service within 10 s.
    let gateway_ready = format!("{}/health/ready", app.address);
    let out: serde_json::Value = reqwest::get(&gateway_ready)
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let port = app.deployment().ports["catalog-2"];
    assert_eq!(
        out["checks"]["instances_out"],
        serde_json::json!([format!("http://127.0.0.1:{port}")]),
        "{out}"
    );
    app.deployment().process("catalog-2").start();
    let restarted = Instant::now();
    loop {
        let ready: serde_json::Value = reqwest::get(&gateway_ready)
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if ready["checks"]["instances_out"] == serde_json::json!([]) {
            break;
        }
        assert!(
            restarted.elapsed() < Duration::from_secs(10),
            "catalog-2 did not rejoin within 10 s: {ready}\n{}",
            app.deployment().logs()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!(
        "catalog-2 rejoined {:?} after its restart",
        restarted.elapsed()
    );
}
