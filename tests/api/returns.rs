//! Returns end to end: a customer asks to send units back, an admin rejects or approves, the
//! parcel is received (catalog restocks what can be sold again, the written-off line stays
//! off), and the lines' share of the charge is refunded: everything back refunds exactly the
//! charge. An approved return gets a prepaid label from shipping. The return window binds
//! customers, not admins.

use serde_json::{json, Value};

use crate::checkout::payments;
use crate::every_topology;
use crate::helpers::{spawn_app_with, TestApp};

fn eur(amount: i64) -> Value {
    json!({"amount": amount, "currency": "EUR"})
}

/// An order of two mugs and a cup, confirmed, dispatched and delivered; its id and total.
async fn delivered_order(
    app: &TestApp,
    admin: &str,
    customer: &str,
    mug: &str,
    cup: &str,
) -> (String, i64) {
    app.add_to_cart(customer, mug, 2).await.assert_status(200);
    app.add_to_cart(customer, cup, 1).await.assert_status(200);
    let placed = app.checkout(customer, "tok_visa", None).await;
    placed.assert_status(202);
    let id = placed.body["id"].as_str().unwrap().to_owned();
    let order = app.order_reaches(customer, &id, "confirmed").await;
    let early = app
        .post(
            &format!("/api/v1/ordering/orders/{id}/returns"),
            Some(customer),
            &json!({"lines": [{"variant_id": mug, "quantity": 1}], "reason": "changed my mind"}),
        )
        .await;
    early.assert_problem(409, "ordering.not_returnable");
    let shipment = order["shipment"]["id"].as_str().unwrap().to_owned();
    for event in ["dispatched", "delivered"] {
        app.post(
            &format!("/api/v1/shipping/shipments/{shipment}/events"),
            Some(admin),
            &json!({"type": event}),
        )
        .await
        .assert_status(200);
    }
    let order = app.order_reaches(customer, &id, "delivered").await;
    (id, order["total"]["amount"].as_i64().unwrap())
}

async fn on_hand(app: &TestApp, product: &str) -> i64 {
    app.stock(product).await["on_hand"].as_i64().unwrap()
}

every_topology!(
    a_return_is_approved_received_restocked_and_refunded_to_the_cent,
    |app| {
        let observer = app
            .observe(&[
                "ordering.return_requested",
                "ordering.return_approved",
                "ordering.return_rejected",
                "ordering.return_received",
                "shipping.return_label_created",
            ])
            .await;
        let admin = app.admin().await;
        let c = app.customer().await;
        let mug = app.sellable(&admin.access_token, "RET-MUG", 1250, 10).await;
        let cup = app.sellable(&admin.access_token, "RET-CUP", 800, 10).await;
        let (id, total) =
            delivered_order(&app, &admin.access_token, &c.access_token, &mug, &cup).await;
        app.eventually("the parcel's units left the stock", 20, || async {
            (on_hand(&app, &mug).await == 8 && on_hand(&app, &cup).await == 9).then_some(())
        })
        .await;
        let returns = format!("/api/v1/ordering/orders/{id}/returns");

        // A first request, rejected: its units may be asked for again.
        let first = app
        .post(&returns, Some(&c.access_token), &json!({"lines": [{"variant_id": mug, "quantity": 1}], "reason": "changed my mind"}))
        .await;
        first.assert_status(201);
        assert_eq!(first.body["status"], "requested");
        assert_eq!(first.body["lines"][0]["sku"], "RET-MUG");
        let first_id = first.body["id"].as_str().unwrap().to_owned();
        // Only one mug is left to ask for while the first request is open.
        app.post(
            &returns,
            Some(&c.access_token),
            &json!({"lines": [{"variant_id": mug, "quantity": 2}], "reason": "both"}),
        )
        .await
        .assert_problem(422, "ordering.return_exceeds_order");
        let stranger = uuid::Uuid::now_v7().to_string();
        app.post(
            &returns,
            Some(&c.access_token),
            &json!({"lines": [{"variant_id": stranger, "quantity": 1}], "reason": "?"}),
        )
        .await
        .assert_problem(422, "validation_failed");
        app.post(
            &returns,
            Some(&c.access_token),
            &json!({"lines": [], "reason": "nothing"}),
        )
        .await
        .assert_problem(422, "validation_failed");
        // Another customer's order does not exist for them.
        let other = app.customer().await;
        app.post(
            &returns,
            Some(&other.access_token),
            &json!({"lines": [{"variant_id": mug, "quantity": 1}], "reason": "mine?"}),
        )
        .await
        .assert_problem(404, "ordering.order_not_found");
        let reject = format!("{returns}/{first_id}/reject");
        app.post(&reject, Some(&c.access_token), &json!({"note": "no"}))
            .await
            .assert_status(403);
        let rejected = app
            .post(
                &reject,
                Some(&admin.access_token),
                &json!({"note": "outside the conditions of return"}),
            )
            .await;
        rejected.assert_status(200);
        assert_eq!(rejected.body["status"], "rejected");
        app.post(
            &format!("{returns}/{first_id}/approve"),
            Some(&admin.access_token),
            &json!({}),
        )
        .await
        .assert_problem(409, "ordering.return_invalid_transition");
        app.post(
            &format!("{returns}/{}/approve", uuid::Uuid::now_v7()),
            Some(&admin.access_token),
            &json!({}),
        )
        .await
        .assert_problem(404, "ordering.return_not_found");

        // Everything comes back; the cup is damaged and written off.
        let all = app
        .post(
            &returns,
            Some(&c.access_token),
            &json!({"lines": [{"variant_id": mug, "quantity": 2}, {"variant_id": cup, "quantity": 1}], "reason": "wrong colour"}),
        )
        .await;
        all.assert_status(201);
        let all_id = all.body["id"].as_str().unwrap().to_owned();
        // Not received before it is approved.
        app.post(
            &format!("{returns}/{all_id}/receive"),
            Some(&admin.access_token),
            &json!({}),
        )
        .await
        .assert_problem(409, "ordering.return_invalid_transition");
        app.post(
            &format!("{returns}/{all_id}/approve"),
            Some(&admin.access_token),
            &json!({"refund_shipping": false}),
        )
        .await
        .assert_status(200);
        // Shipping makes the prepaid return label; the return shows its tracking number.
        let tracking = app
            .eventually("the return label", 30, || async {
                let o = app
                    .get(
                        &format!("/api/v1/ordering/orders/{id}"),
                        Some(&c.access_token),
                    )
                    .await
                    .body;
                o["returns"][1]["tracking_number"]
                    .as_str()
                    .map(str::to_owned)
            })
            .await;
        assert!(
            tracking.len() > 11 && tracking.chars().rev().take(11).all(|c| c.is_ascii_digit()),
            "{tracking}"
        );
        let received = app
            .post(
                &format!("{returns}/{all_id}/receive"),
                Some(&admin.access_token),
                &json!({"lines": [{"variant_id": cup, "restock": false}]}),
            )
            .await;
        received.assert_status(200);
        assert_eq!(
            received.body["refund_amount"],
            eur(total),
            "everything back: exactly the charge"
        );
        assert_eq!(received.body["refund_shipping"], true);
        let order = app
            .eventually("the return is refunded", 30, || async {
                let o = app
                    .get(
                        &format!("/api/v1/ordering/orders/{id}"),
                        Some(&c.access_token),
                    )
                    .await
                    .body;
                (o["returns"][1]["status"] == "refunded").then_some(o)
            })
            .await;
        assert_eq!(order["status"], "delivered");
        assert_eq!(order["returns"][0]["status"], "rejected");
        assert_eq!(
            order["returns"][0]["note"],
            "outside the conditions of return"
        );
        assert_eq!(order["refunded"], eur(total));
        assert_eq!(order["refundable"], eur(0));
        let refunds = payments(&order, "refund");
        assert_eq!(refunds.len(), 1);
        assert_eq!(refunds[0]["id"], order["returns"][1]["refund_id"]);
        // The mugs are on sale again; the damaged cup is not.
        app.eventually("the mugs are restocked", 30, || async {
            (on_hand(&app, &mug).await == 10).then_some(())
        })
        .await;
        assert_eq!(on_hand(&app, &cup).await, 9);
        // Nothing more can be returned.
        app.post(
            &returns,
            Some(&c.access_token),
            &json!({"lines": [{"variant_id": mug, "quantity": 1}], "reason": "again"}),
        )
        .await
        .assert_problem(422, "ordering.return_exceeds_order");

        let count = |t: &str| observer.of_type(t).len();
        app.eventually("each step announced", 30, || async {
            (count("ordering.return_requested") == 2
                && count("ordering.return_rejected") == 1
                && count("ordering.return_approved") == 1
                && count("ordering.return_received") == 1
                && count("shipping.return_label_created") == 1)
                .then_some(())
        })
        .await;
        let receipt = &observer.of_type("ordering.return_received")[0];
        assert_eq!(receipt.payload["refund"], eur(total));
        let restocked: Vec<bool> = receipt.payload["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["restock"].as_bool().unwrap())
            .collect();
        assert_eq!(restocked, vec![true, false]);
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_return_window_binds_customers_not_admins() {
    let Some(app) = spawn_app_with(platform::testing::TestBackend::Sqlite, |c| {
        c.return_window = std::time::Duration::ZERO;
    })
    .await
    else {
        return;
    };
    let admin = app.admin().await;
    let c = app.customer().await;
    let mug = app.sellable(&admin.access_token, "WIN-MUG", 1250, 10).await;
    let cup = app.sellable(&admin.access_token, "WIN-CUP", 800, 10).await;
    let (id, _) = delivered_order(&app, &admin.access_token, &c.access_token, &mug, &cup).await;
    let returns = format!("/api/v1/ordering/orders/{id}/returns");
    let body = json!({"lines": [{"variant_id": cup, "quantity": 1}], "reason": "late"});
    app.post(&returns, Some(&c.access_token), &body)
        .await
        .assert_problem(409, "ordering.return_window_closed");
    let keyed = |body: Value| {
        let (app, returns, token) = (&app, returns.clone(), admin.access_token.clone());
        async move {
            app.request(
                reqwest::Method::POST,
                &returns,
                Some(&token),
                Some(&body),
                &[("idempotency-key", "return-1")],
            )
            .await
        }
    };
    let opened = keyed(body.clone()).await;
    opened.assert_status(201);
    assert_eq!(opened.header("idempotent-replayed"), None);
    // The same key and body: the same return, not a second one.
    let again = keyed(body.clone()).await;
    again.assert_status(201);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    assert_eq!(again.body["id"], opened.body["id"]);
    keyed(json!({"lines": [{"variant_id": cup, "quantity": 1}], "reason": "another"}))
        .await
        .assert_problem(422, "ordering.idempotency_key_reused");
    // A single cup of three units: its share, no shipping (not everything comes back).
    let rid = opened.body["id"].as_str().unwrap();
    app.post(
        &format!("{returns}/{rid}/approve"),
        Some(&admin.access_token),
        &json!({}),
    )
    .await
    .assert_status(200);
    let received = app
        .post(
            &format!("{returns}/{rid}/receive"),
            Some(&admin.access_token),
            &json!({}),
        )
        .await;
    received.assert_status(200);
    assert_eq!(received.body["refund_amount"], eur(800));
    assert_eq!(received.body["refund_shipping"], false);
    app.stop().await;
}
