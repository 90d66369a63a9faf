//! R9: partial refunds while the monolith is SIGKILLed. Admins grant refunds the way a careful
//! client does (each with its `Idempotency-Key`, retried with the same key after a lost answer
//! or a refused connection) while the process is killed at random moments and restarted on the
//! same data. Once it settles: one refund per key on each order, every one confirmed, and the
//! payment gateway's own ledger holds exactly those refunds: none sent twice, none lost, never
//! more than the charge. `EMPORIUM_CHAOS=full` runs more orders and kills.

use std::time::{Duration, Instant};

use emporium::config::ContextName;
use platform::testing::TestBackend;
use rand::Rng;
use serde_json::{json, Value};

use crate::chaos::{count, full, kill_and_restart, spawn_monolith};

/// Asks for one refund until it is granted (201) or refused for good (422), retrying lost
/// answers and refused connections with the same key; the final status.
async fn refund_with_retries(
    http: reqwest::Client,
    url: String,
    token: String,
    key: String,
    body: Value,
    after: Duration,
) -> (u16, u32) {
    // Spread over the kills, so that some land mid-refund.
    tokio::time::sleep(after).await;
    let give_up = Instant::now() + Duration::from_secs(90);
    let mut retries = 0;
    loop {
        let sent = http
            .post(&url)
            .bearer_auth(&token)
            .header("idempotency-key", &key)
            .json(&body)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        match sent.map(|r| r.status().as_u16()) {
            Ok(status @ (201 | 422)) => return (status, retries),
            Ok(other) if other < 500 && other != 429 => panic!("refund {key}: unexpected {other}"),
            _ if Instant::now() > give_up => panic!("refund {key}: never answered"),
            _ => {
                retries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await
            }
        }
    }
}

async fn refunds_survive_sigkills(backend: TestBackend) {
    let Some(mut app) = spawn_monolith(backend, &[]).await else {
        return;
    };
    let (orders, refunds_each, kills) = if full() { (30, 4, 20) } else { (6, 3, 5) };
    let admin = app.bootstrap_admin_token().await;
    let product = app.sellable(&admin, "CRASH-REFUND", 1_000, 1_000).await;
    let c = app.customer().await;
    let mut ids = Vec::new();
    for _ in 0..orders {
        ids.push(
            app.place_order(&c.access_token, &product, 2, "tok_visa")
                .await,
        );
    }
    for id in &ids {
        app.order_reaches(&c.access_token, id, "confirmed").await;
    }
    // Each order: `refunds_each` refunds of a quarter of its 20.00, spread over the time the
    // process is killed again and again.
    let body = json!({"amount": {"amount": 500, "currency": "EUR"}, "reason": "crash test"});
    let mut asks = Vec::new();
    for id in &ids {
        for k in 0..refunds_each {
            let url = format!("{}/api/v1/ordering/orders/{id}/refunds", app.address);
            let key = format!("crash-{id}-{k}");
            asks.push(tokio::spawn(refund_with_retries(
                app.client.clone(),
                url,
                admin.clone(),
                key,
                body.clone(),
                Duration::from_millis(rand::thread_rng().gen_range(0..400 * kills as u64)),
            )));
        }
    }
    for _ in 0..kills {
        tokio::time::sleep(Duration::from_millis(
            rand::thread_rng().gen_range(100..700),
        ))
        .await;
        kill_and_restart(&mut app).await;
    }
    let mut retried = 0;
    for ask in asks {
        let (status, retries) = ask.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(status, 201, "every refund fits the charge");
        retried += retries;
    }
    // Settle: pending refunds are sent again by the sweeper after a restart.
    for id in &ids {
        app.eventually("every refund is confirmed", 120, || async {
            let o = app
                .get(&format!("/api/v1/ordering/orders/{id}"), Some(&admin))
                .await
                .body;
            let refunds: Vec<&Value> = o["payments"]
                .as_array()?
                .iter()
                .filter(|p| p["kind"] == "refund")
                .collect();
            (refunds.len() == refunds_each && refunds.iter().all(|r| r["status"] == "refunded"))
                .then_some(())
        })
        .await;
    }
    let granted = count(
        &app,
        ContextName::Ordering,
        "select count(*) from payment where kind = 'refund'",
    )
    .await;
    let ledger = count(
        &app,
        ContextName::Ordering,
        "select count(*) from simulated_gateway_operation where operation = 'refund'",
    )
    .await;
    let ledger_sum = count(
        &app,
        ContextName::Ordering,
        "select cast(coalesce(sum(amount), 0) as bigint) from simulated_gateway_operation where operation = 'refund'",
    )
    .await;
    let expected = i64::try_from(orders * refunds_each).unwrap_or(0);
    eprintln!(
        "chaos figures | R9 refunds under {kills} SIGKILLs: {expected} asked for, {retried} calls retried after a kill, {granted} refunds granted, {ledger} in the gateway's ledger ({ledger_sum} cents)"
    );
    assert_eq!(granted, expected, "one refund per key, none granted twice");
    assert_eq!(ledger, expected, "each refund sent to the gateway once");
    assert_eq!(ledger_sum, expected * 500);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r9_refunds_survive_sigkills_on_sqlite() {
    refunds_survive_sigkills(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn r9_refunds_survive_sigkills_on_postgres() {
    refunds_survive_sigkills(TestBackend::Postgres).await;
}
