//! The saga under the faults a review found: a sweeper pass held up by one bad order, a paid
//! order whose reservation expired before catalog heard of the payment, a dispatch of units
//! already given back, a charge for an order cancelled first, refunds the gateway declines.
//! Each story damages rows the way the fault would have left them, then watches the API.

use std::time::Duration;

use emporium::config::{Config, ContextName};
use platform::testing::TestBackend;
use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};

async fn exec(app: &TestApp, ctx: ContextName, sql: &str, binds: &[&str]) -> u64 {
    let db = app.database(ctx).await;
    let mut q = sqlx::query(sql);
    for b in binds {
        q = q.bind((*b).to_owned());
    }
    let done = q
        .execute(db.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    db.close().await;
    done.rows_affected()
}

async fn scalar(app: &TestApp, ctx: ContextName, sql: &str, bind: &str) -> Option<String> {
    let db = app.database(ctx).await;
    let v: Option<String> = sqlx::query_scalar(sql)
        .bind(bind.to_owned())
        .fetch_optional(db.pool())
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    db.close().await;
    v
}

fn notes(order: &Value) -> Vec<String> {
    order["status_history"]
        .as_array()
        .map(|h| {
            h.iter()
                .filter_map(|e| e["note"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

fn payment(order: &Value, kind: &str) -> Value {
    order["payments"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["kind"] == kind).cloned())
        .unwrap_or(Value::Null)
}

async fn place(app: &TestApp, token: &str, product: &str, qty: i64, payment: &str) -> String {
    app.add_to_cart(token, product, qty)
        .await
        .assert_status(200);
    let res = app.checkout(token, payment, None).await;
    res.assert_status(202);
    res.body["id"].as_str().unwrap_or_default().to_owned()
}

async fn order(app: &TestApp, token: &str, id: &str) -> Value {
    app.get(&format!("/api/v1/ordering/orders/{id}"), Some(token))
        .await
        .body
}

macro_rules! on_both {
    ($name:ident, $story:ident, $tweak:expr) => {
        mod $name {
            use super::*;

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                let app = spawn_app_with(TestBackend::Sqlite, $tweak)
                    .await
                    .expect("sqlite app");
                $story(app).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                let Some(app) = spawn_app_with(TestBackend::Postgres, $tweak).await else {
                    return;
                };
                $story(app).await;
            }
        }
    };
}

// One order the sweeper cannot read (first by deadline) no longer stops its pass: the order
// behind it, whose charge the gateway could not answer, is still retried and settled.
async fn sweeper_skips_a_bad_order(app: TestApp) {
    let admin = app.admin().await;
    let p = app.sellable(&admin.access_token, "SWEEP", 400, 10).await;
    let c = app.customer().await;
    let bad = place(&app, &c.access_token, &p, 1, "tok_visa").await;
    app.order_reaches(&c.access_token, &bad, "confirmed").await;
    let damaged = exec(
        &app,
        ContextName::Ordering,
        "update customer_order set status = 'bogus', deadline_at = 1 where order_id = $1",
        &[&bad],
    )
    .await;
    assert_eq!(damaged, 1);
    let stuck = place(&app, &c.access_token, &p, 1, "tok_unavailable").await;
    let done = app
        .order_reaches(&c.access_token, &stuck, "cancelled")
        .await;
    assert_eq!(done["cancellation_reason"], "payment_unavailable");
    let charge = payment(&done, "charge");
    assert!(
        charge["attempts"].as_i64().unwrap_or(0) > 3,
        "the sweeper never retried the charge: {charge}"
    );
    app.stop().await;
}
on_both!(
    the_sweeper_skips_an_order_it_cannot_read,
    sweeper_skips_a_bad_order,
    |_: &mut Config| {}
);

fn short_reservations(c: &mut Config) {
    c.reservation_ttl = Duration::from_secs(8);
}

// A paid order whose reservation expired before catalog heard of the payment (the payment
// event was delayed by an outage) stays confirmed (before: cancelled and refunded); the late
// payment holds its units again; and a dispatch whose units were given back still takes them
// off stock (before: stock kept them).
async fn paid_orders_keep_their_stock(app: TestApp) {
    let admin = app.admin().await;
    let p = app.sellable(&admin.access_token, "KEEP", 700, 10).await;
    let c = app.customer().await;
    let paid_events = app.observe(&["ordering.order_paid"]).await;
    let late = place(&app, &c.access_token, &p, 2, "tok_visa").await;
    app.order_reaches(&c.access_token, &late, "confirmed").await;
    let gone = place(&app, &c.access_token, &p, 3, "tok_visa").await;
    app.order_reaches(&c.access_token, &gone, "confirmed").await;
    assert_eq!(app.stock(&p).await["reserved"], 5);

    // As if neither payment had reached catalog: both reservations held, and overdue.
    for id in [&late, &gone] {
        let n = exec(
            &app,
            ContextName::Catalog,
            "update reservation set status = 'held', expires_at = 1 where order_id = $1",
            &[id],
        )
        .await;
        assert_eq!(n, 1);
    }
    app.eventually("both reservations expire", 15, || async {
        (app.stock(&p).await["reserved"] == 0).then_some(())
    })
    .await;
    let o = app
        .eventually("ordering hears of the expiry", 10, || async {
            let o = order(&app, &c.access_token, &late).await;
            notes(&o)
                .iter()
                .any(|n| n.contains("expired after payment"))
                .then_some(o)
        })
        .await;
    assert_eq!(o["status"], "confirmed", "{o}");
    assert_eq!(payment(&o, "refund"), Value::Null, "{o}");
    assert_eq!(
        order(&app, &c.access_token, &gone).await["status"],
        "confirmed"
    );

    // The delayed payment of `late` arrives: its units are held again.
    let event: ordering_contracts::OrderPaid = paid_events
        .of_type("ordering.order_paid")
        .iter()
        .filter_map(|e| e.open::<ordering_contracts::OrderPaid>().ok())
        .find(|e| e.order_id.to_string() == late)
        .expect("order_paid of the late order");
    let again = bus::Envelope::wrap(&event, kernel::Timestamp::now(), &bus::Causation::system())
        .expect("envelope");
    app.redeliver(&[again]).await;
    let stock = app.stock(&p).await;
    assert_eq!(stock["reserved"], 2, "{stock}");
    assert_eq!(
        scalar(
            &app,
            ContextName::Catalog,
            "select status from reservation where order_id = $1",
            &late
        )
        .await
        .as_deref(),
        Some("paid")
    );

    // `gone` is dispatched although its units were given back: they leave on_hand anyway.
    let gone_order = order(&app, &c.access_token, &gone).await;
    let gone_shipment = gone_order["shipment"]["id"].as_str().unwrap_or_default();
    app.post(
        &format!("/api/v1/shipping/shipments/{gone_shipment}/events"),
        Some(&admin.access_token),
        &json!({"type": "dispatched"}),
    )
    .await
    .assert_status(200);
    app.eventually("the dispatched units leave stock", 10, || async {
        let s = app.stock(&p).await;
        (s["on_hand"] == 7 && s["reserved"] == 2).then_some(())
    })
    .await;
    app.stop().await;
}
on_both!(
    a_paid_order_keeps_its_stock_through_a_late_payment_event,
    paid_orders_keep_their_stock,
    short_reservations
);

// A charge left pending on an order the customer cancelled first is closed without asking the
// gateway (before: the next attempt authorised it, and a refund followed).
async fn cancelled_first_is_not_charged(app: TestApp) {
    let admin = app.admin().await;
    let p = app.sellable(&admin.access_token, "NOCHARGE", 900, 5).await;
    let c = app.customer().await;
    let id = place(&app, &c.access_token, &p, 1, "tok_unavailable").await;
    // The first round of calls is over; the charge waits, pending, for its next try.
    app.eventually("the first round of charge attempts", 10, || async {
        let o = order(&app, &c.access_token, &id).await;
        let charge = payment(&o, "charge");
        (charge["status"] == "pending" && charge["attempts"] == 3).then_some(())
    })
    .await;
    app.post(
        &format!("/api/v1/ordering/orders/{id}/cancel"),
        Some(&c.access_token),
        &json!({}),
    )
    .await
    .assert_status(200);
    // The gateway would now approve: a charge made after the cancellation would succeed.
    exec(
        &app,
        ContextName::Ordering,
        "update customer_order set payment_token = 'tok_visa' where order_id = $1",
        &[&id],
    )
    .await;
    let o = app
        .eventually("the pending charge is closed", 30, || async {
            let o = order(&app, &c.access_token, &id).await;
            (payment(&o, "charge")["status"] != "pending").then_some(o)
        })
        .await;
    let charge = payment(&o, "charge");
    assert_eq!(charge["status"], "failed", "{o}");
    assert_eq!(payment(&o, "refund"), Value::Null, "{o}");
    let key = format!("{id}:charge:1");
    assert_eq!(
        scalar(
            &app,
            ContextName::Ordering,
            "select outcome from simulated_gateway_operation where idempotency_key = $1",
            &key
        )
        .await,
        None,
        "the gateway was asked to charge a cancelled order"
    );
    app.stop().await;
}
on_both!(
    a_charge_is_never_made_for_an_order_cancelled_first,
    cancelled_first_is_not_charged,
    |c: &mut Config| c.payment_retry = Duration::from_secs(8)
);

// A refund the gateway declines stays owed, is tried again after a growing wait, shows in the
// order's history and is counted in /metrics (before: every 5 s forever, silently).
async fn declined_refunds_back_off(app: TestApp) {
    let admin = app.admin().await;
    let p = app.sellable(&admin.access_token, "NOREFUND", 900, 5).await;
    let c = app.customer().await;
    let id = place(&app, &c.access_token, &p, 1, "tok_visa").await;
    app.order_reaches(&c.access_token, &id, "confirmed").await;
    // A charge reference the gateway does not know: every refund of it is declined.
    exec(
        &app,
        ContextName::Ordering,
        "update payment set gateway_reference = 'unknown-ref' where order_id = $1 and kind = 'charge'",
        &[&id],
    )
    .await;
    app.post(
        &format!("/api/v1/ordering/orders/{id}/cancel"),
        Some(&c.access_token),
        &json!({}),
    )
    .await
    .assert_status(200);
    let o = app
        .eventually("the declined refund is in the history", 10, || async {
            let o = order(&app, &c.access_token, &id).await;
            notes(&o)
                .iter()
                .any(|n| n.starts_with("refund failed (unknown_charge)"))
                .then_some(o)
        })
        .await;
    let refund = payment(&o, "refund");
    assert_eq!(refund["status"], "pending", "{o}");
    let metrics = app
        .get("/metrics", Some(crate::helpers::METRICS_TOKEN))
        .await
        .body;
    let metrics = metrics.as_str().unwrap_or_default();
    assert!(
        metrics.contains("emporium_refund_failures_total{outcome=\"declined\"}"),
        "{metrics}"
    );
    // The second try comes after 5 s, the third only 10 s after that.
    let second = app
        .eventually("a second try", 15, || async {
            let o = order(&app, &c.access_token, &id).await;
            (payment(&o, "refund")["attempts"] == 2).then_some(std::time::Instant::now())
        })
        .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let o = order(&app, &c.access_token, &id).await;
    assert_eq!(
        payment(&o, "refund")["attempts"],
        2,
        "tried again {:?} after the second try",
        second.elapsed()
    );
    app.stop().await;
}
on_both!(
    a_declined_refund_backs_off_and_is_visible,
    declined_refunds_back_off,
    |_: &mut Config| {}
);

// 40% of payment-gateway calls fail (half of them after the gateway acted: the answer is
// lost). Every order is still confirmed, with exactly one authorised charge and no refund
// (before: an order whose three calls in a row failed was cancelled `payment_unavailable`).
async fn flaky_gateway(app: TestApp) {
    let admin = app.admin().await;
    let p = app.sellable(&admin.access_token, "FLAKY", 250, 1000).await;
    let mut orders = Vec::new();
    for _ in 0..4 {
        let c = app.customer().await;
        for _ in 0..10 {
            let id = place(&app, &c.access_token, &p, 1, "tok_visa").await;
            orders.push((c.access_token.clone(), id));
        }
    }
    for (token, id) in &orders {
        let o = app
            .eventually("the order settles", 60, || async {
                let o = order(&app, token, id).await;
                matches!(o["status"].as_str(), Some("confirmed" | "cancelled")).then_some(o)
            })
            .await;
        assert_eq!(o["status"], "confirmed", "{o}");
        let charges: Vec<&Value> = o["payments"]
            .as_array()
            .map(|p| p.iter().filter(|p| p["kind"] == "charge").collect())
            .unwrap_or_default();
        assert_eq!(charges.len(), 1, "{o}");
        assert_eq!(charges[0]["status"], "authorized", "{o}");
    }
    let stock = app.stock(&p).await;
    assert_eq!(stock["reserved"], 40, "{stock}");
    app.stop().await;
}
on_both!(
    every_order_is_confirmed_through_a_flaky_payment_gateway,
    flaky_gateway,
    |c: &mut Config| {
        c.payment_fault_rate = 0.4;
        c.payment_retry = Duration::from_secs(90);
    }
);

// A delivery the broker parked without naming its group (SQS) is recorded for every group
// (`*`): the admin API lists it, and a replay publishes it to every group again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_letter_for_every_group_is_listed_and_replayed_to_all() {
    let app = spawn_app_with(TestBackend::Sqlite, |_| {})
        .await
        .expect("sqlite app");
    let admin = app.admin().await;
    let seen = app.observe(&["catalog.product_created"]).await;
    app.product(&admin.access_token, "PARKED", 300, 1).await;
    let created = seen.of_type("catalog.product_created");
    assert_eq!(created.len(), 1);
    let db = app.database(ContextName::Catalog).await;
    bus::DeadLetterStore::put(
        &bus::SqlDeadLetters::new(db.clone()),
        bus::EVERY_GROUP,
        &created[0],
        "dead-lettered by SQS after its receive limit",
        5,
    )
    .await
    .expect("dead letter");
    db.close().await;
    let list = app
        .get("/api/v1/admin/dead-letters", Some(&admin.access_token))
        .await;
    list.assert_status(200);
    let item = list.body["items"][0].clone();
    assert_eq!(item["consumer_group"], "*", "{}", list.body);
    let id = item["id"].as_str().unwrap_or_default();
    app.post(
        &format!("/api/v1/admin/dead-letters/{id}/replay"),
        Some(&admin.access_token),
        &json!({}),
    )
    .await
    .assert_status(200);
    app.eventually("every group gets it again", 10, || async {
        (seen.of_type("catalog.product_created").len() == 2).then_some(())
    })
    .await;
    app.stop().await;
}

// A change may be decided on the order as this instance last saw it, but it is written only
// where the order is still at that version. Here the order was cancelled elsewhere (its
// version bumped, as another instance's change would); the carrier's dispatch, decided first
// on the kept confirmed copy (confirmed -> shipped), is decided again on the tables: the
// order stays cancelled, with the note that asks for a return.
async fn a_change_decided_on_a_copy_that_is_behind_is_decided_again(app: TestApp) {
    use kernel::id::{OrderId, ShipmentId, UserId};
    let admin = app.admin().await;
    let p = app.sellable(&admin.access_token, "KEPT", 700, 5).await;
    let c = app.customer().await;
    let id = place(&app, &c.access_token, &p, 1, "tok_visa").await;
    let confirmed = app.order_reaches(&c.access_token, &id, "confirmed").await;
    // Shown once more, so this instance keeps the confirmed order at its version.
    assert_eq!(
        order(&app, &c.access_token, &id).await["status"],
        "confirmed"
    );
    let moved = exec(
        &app,
        ContextName::Ordering,
        "update customer_order set status = 'cancelled', cancellation_reason = 'customer_cancelled', \
         deadline_at = null, version = version + 1 where order_id = $1",
        &[&id],
    )
    .await;
    assert_eq!(moved, 1);
    let text = |v: &Value| v.as_str().unwrap_or_default().to_owned();
    let shipment = &confirmed["shipment"];
    let dispatched = shipping_contracts::ShipmentDispatched {
        shipment_id: ShipmentId::parse(&text(&shipment["id"])).unwrap_or_else(|e| panic!("{e}")),
        order_id: OrderId::parse(&id).unwrap_or_else(|e| panic!("{e}")),
        customer_id: UserId::parse(&text(&confirmed["customer_id"]))
            .unwrap_or_else(|e| panic!("{e}")),
        tracking_number: text(&shipment["tracking_number"]),
        lines: vec![],
        dispatched_at: kernel::Timestamp::now(),
    };
    app.bus
        .publish(&crate::catalog::envelope(&dispatched))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let now = order(&app, &c.access_token, &id).await;
    assert_eq!(now["status"], "cancelled", "{now}");
    assert!(
        notes(&now).contains(&"dispatched after cancellation: return needed".to_owned()),
        "{now}"
    );
    app.stop().await;
}
on_both!(
    a_change_decided_on_a_kept_copy_that_is_behind_is_decided_again,
    a_change_decided_on_a_copy_that_is_behind_is_decided_again,
    |_: &mut Config| {}
);
