//! The checkout saga end to end through HTTP, with the real catalog, shipping and identity
//! contexts: every path, compensation, duplicates, idempotency, ownership and a stock race.
//! Each story runs on the monolith (memory bus; SQLite and PostgreSQL) and on the split
//! topology (four processes behind the gateway, RabbitMQ, a PostgreSQL database each).

use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::{both_backends, every_topology};

fn statuses(order: &Value) -> Vec<String> {
    order["status_history"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|h| h["note"].is_null())
        .map(|h| h["status"].as_str().unwrap().to_owned())
        .collect()
}

pub(crate) fn payments(order: &Value, kind: &str) -> Vec<Value> {
    order["payments"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["kind"] == kind)
        .cloned()
        .collect()
}

every_topology!(a_paid_order_is_confirmed_shipped_and_delivered, |app| {
    let admin = app.admin().await;
    let mug = app.sellable(&admin.access_token, "MUG", 1250, 5).await;
    let c = app.customer().await;
    let cart = app.add_to_cart(&c.access_token, &mug, 2).await;
    cart.assert_status(200);
    assert_eq!(
        cart.body["total"],
        json!({"amount": 2500, "currency": "EUR"})
    );
    assert_eq!(
        cart.body["items"][0]["line_total"],
        json!({"amount": 2500, "currency": "EUR"})
    );

    let placed = app.checkout(&c.access_token, "tok_visa", Some("k-1")).await;
    placed.assert_status(202);
    assert_eq!(placed.body["status"], "pending");
    assert!(placed
        .header("location")
        .unwrap()
        .ends_with(placed.body["id"].as_str().unwrap()));
    let id = placed.body["id"].as_str().unwrap().to_owned();
    assert_eq!(
        app.get("/api/v1/ordering/cart", Some(&c.access_token))
            .await
            .body["items"],
        json!([])
    );

    let order = app.order_reaches(&c.access_token, &id, "confirmed").await;
    assert_eq!(
        statuses(&order),
        vec!["pending", "stock_reserved", "paid", "confirmed"]
    );
    assert_eq!(order["total"], json!({"amount": 2500, "currency": "EUR"}));
    assert_eq!(
        order["lines"][0]["unit_price"],
        json!({"amount": 1250, "currency": "EUR"})
    );
    let charges = payments(&order, "charge");
    assert_eq!(charges.len(), 1);
    assert_eq!(charges[0]["status"], "authorized");
    assert!(charges[0]["gateway_reference"]
        .as_str()
        .unwrap()
        .starts_with("ch_"));
    let tracking = order["shipment"]["tracking_number"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(app.stock(&mug).await["reserved"], 2);

    // A later price change does not touch the placed order.
    app.patch(
        &format!("/api/v1/catalog/products/{mug}"),
        Some(&admin.access_token),
        &json!({"price": {"amount": 9999, "currency": "EUR"}}),
    )
    .await
    .assert_status(200);

    let shipment_id = order["shipment"]["id"].as_str().unwrap();
    let shipment = app
        .get(
            &format!("/api/v1/shipping/shipments/{shipment_id}"),
            Some(&c.access_token),
        )
        .await;
    shipment.assert_status(200);
    assert_eq!(shipment.body["tracking_number"], tracking.as_str());
    let events = format!("/api/v1/shipping/shipments/{shipment_id}/events");
    app.post(
        &events,
        Some(&admin.access_token),
        &json!({"type": "dispatched"}),
    )
    .await
    .assert_status(200);
    app.order_reaches(&c.access_token, &id, "shipped").await;
    app.eventually("stock leaves with the parcel", 10, || async {
        (app.stock(&mug).await
            == json!({"product_id": mug, "on_hand": 3, "reserved": 0, "available": 3}))
        .then_some(())
    })
    .await;
    app.post(
        &format!("/api/v1/ordering/orders/{id}/cancel"),
        Some(&c.access_token),
        &json!({}),
    )
    .await
    .assert_problem(409, "ordering.cannot_cancel");
    app.post(
        &events,
        Some(&admin.access_token),
        &json!({"type": "delivered"}),
    )
    .await
    .assert_status(200);
    let order = app.order_reaches(&c.access_token, &id, "delivered").await;
    assert_eq!(payments(&order, "charge").len(), 1);
    assert_eq!(order["lines"][0]["unit_price"]["amount"], 1250);

    // Identity's order history caught up from the events.
    app.eventually("order history shows delivery", 10, || async {
        let h = app
            .get("/api/v1/identity/me/orders", Some(&c.access_token))
            .await;
        (h.body["items"][0]["status"] == "delivered"
            && h.body["items"][0]["tracking_number"] == tracking.as_str())
        .then_some(())
    })
    .await;
    app.stop().await;
});

every_topology!(a_declined_payment_cancels_and_releases_stock, |app| {
    let admin = app.admin().await;
    let p = app.sellable(&admin.access_token, "DECL", 500, 3).await;
    let c = app.customer().await;
    let id = app
        .place_order(&c.access_token, &p, 2, "tok_declined")
        .await;
    let order = app.order_reaches(&c.access_token, &id, "cancelled").await;
    assert_eq!(order["cancellation_reason"], "payment_declined");
    assert_eq!(payments(&order, "charge")[0]["status"], "declined");
    assert!(payments(&order, "refund").is_empty());
    app.eventually("stock released", 10, || async {
        (app.stock(&p).await["reserved"] == 0).then_some(())
    })
    .await;
    app.stop().await;
});

every_topology!(an_unavailable_gateway_is_retried_then_cancels, |app| {
    let admin = app.admin().await;
    let p = app.sellable(&admin.access_token, "UNAV", 500, 3).await;
    let c = app.customer().await;
    let id = app
        .place_order(&c.access_token, &p, 1, "tok_unavailable")
        .await;
    let order = app.order_reaches(&c.access_token, &id, "cancelled").await;
    assert_eq!(order["cancellation_reason"], "payment_unavailable");
    let charge = &payments(&order, "charge")[0];
    assert_eq!(charge["status"], "failed");
    // Tried in the call (3 attempts), then again by the sweeper until the retry window ended.
    assert!(charge["attempts"].as_i64().unwrap_or(0) > 3, "{charge}");
    app.eventually("stock released", 10, || async {
        (app.stock(&p).await["reserved"] == 0).then_some(())
    })
    .await;
    app.stop().await;
});

every_topology!(an_order_without_stock_is_cancelled_out_of_stock, |app| {
    let admin = app.admin().await;
    let p = app.sellable(&admin.access_token, "RARE", 500, 1).await;
    let c = app.customer().await;
    let id = app.place_order(&c.access_token, &p, 2, "tok_visa").await;
    let order = app.order_reaches(&c.access_token, &id, "cancelled").await;
    assert_eq!(order["cancellation_reason"], "out_of_stock");
    assert!(
        order["payments"].as_array().unwrap().is_empty(),
        "nothing is charged"
    );
    assert_eq!(app.stock(&p).await["reserved"], 0);
    app.stop().await;
});

every_topology!(
    cancelling_a_confirmed_order_refunds_once_and_undoes_everything,
    |app| {
        let seen = app
            .observe(&["shipping.shipment_cancelled", "catalog.stock_released"])
            .await;
        let admin = app.admin().await;
        let p = app.sellable(&admin.access_token, "CANC", 700, 4).await;
        let c = app.customer().await;
        let id = app.place_order(&c.access_token, &p, 3, "tok_visa").await;
        let confirmed = app.order_reaches(&c.access_token, &id, "confirmed").await;
        let shipment_id = confirmed["shipment"]["id"].as_str().unwrap().to_owned();

        let cancel_path = format!("/api/v1/ordering/orders/{id}/cancel");
        let cancelled = app
            .post(&cancel_path, Some(&c.access_token), &json!({}))
            .await;
        cancelled.assert_status(200);
        assert_eq!(cancelled.body["status"], "cancelled");
        assert_eq!(cancelled.body["cancellation_reason"], "customer_cancelled");
        app.post(&cancel_path, Some(&c.access_token), &json!({}))
            .await
            .assert_problem(409, "ordering.cannot_cancel");

        let order = app
            .eventually("refund settles", 10, || async {
                let o = app
                    .get(
                        &format!("/api/v1/ordering/orders/{id}"),
                        Some(&c.access_token),
                    )
                    .await
                    .body;
                (payments(&o, "refund")
                    .first()
                    .is_some_and(|r| r["status"] == "refunded"))
                .then_some(o)
            })
            .await;
        assert_eq!(payments(&order, "refund").len(), 1);
        assert_eq!(
            payments(&order, "refund")[0]["amount"],
            json!({"amount": 2100, "currency": "EUR"})
        );
        assert!(payments(&order, "refund")[0]["gateway_reference"]
            .as_str()
            .unwrap()
            .starts_with("re_"));
        app.eventually("shipment cancelled and stock released", 10, || async {
            (seen.of_type("shipping.shipment_cancelled").len() == 1
                && seen.of_type("catalog.stock_released").len() == 1)
                .then_some(())
        })
        .await;
        assert_eq!(app.stock(&p).await["reserved"], 0);
        let shipment = app
            .get(
                &format!("/api/v1/shipping/shipments/{shipment_id}"),
                Some(&c.access_token),
            )
            .await;
        assert_eq!(shipment.body["status"], "cancelled");
        app.eventually("history shows cancellation", 10, || async {
            let h = app
                .get("/api/v1/identity/me/orders", Some(&c.access_token))
                .await;
            (h.body["items"][0]["status"] == "cancelled"
                && h.body["items"][0]["cancellation_reason"] == "customer_cancelled")
                .then_some(())
        })
        .await;
        app.stop().await;
    }
);

every_topology!(
    cancelling_right_after_checkout_takes_no_money_and_holds_no_stock,
    |app| {
        let admin = app.admin().await;
        let p = app.sellable(&admin.access_token, "QUICK", 700, 4).await;
        let c = app.customer().await;
        let id = app.place_order(&c.access_token, &p, 1, "tok_visa").await;
        // Whatever stage the saga reached, cancelling before dispatch ends with no charge kept.
        let res = app
            .post(
                &format!("/api/v1/ordering/orders/{id}/cancel"),
                Some(&c.access_token),
                &json!({}),
            )
            .await;
        res.assert_status(200);
        app.eventually("no stock held, any charge refunded", 15, || async {
            let o = app
                .get(
                    &format!("/api/v1/ordering/orders/{id}"),
                    Some(&c.access_token),
                )
                .await
                .body;
            let charged = payments(&o, "charge")
                .iter()
                .any(|p| p["status"] == "authorized");
            let refunded = payments(&o, "refund")
                .iter()
                .any(|p| p["status"] == "refunded");
            let stock = app.stock(&p).await;
            (o["status"] == "cancelled" && charged == refunded && stock["reserved"] == 0)
                .then_some(())
        })
        .await;
        app.stop().await;
    }
);

every_topology!(the_idempotency_key_returns_the_same_order, |app| {
    let admin = app.admin().await;
    let p = app.sellable(&admin.access_token, "IDEM", 300, 10).await;
    let c = app.customer().await;
    app.add_to_cart(&c.access_token, &p, 1)
        .await
        .assert_status(200);
    let first = app
        .checkout(&c.access_token, "tok_visa", Some("checkout-42"))
        .await;
    first.assert_status(202);
    let again = app
        .checkout(&c.access_token, "tok_visa", Some("checkout-42"))
        .await;
    again.assert_status(202);
    assert_eq!(again.body["id"], first.body["id"]);
    assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
    app.checkout(&c.access_token, "tok_declined", Some("checkout-42"))
        .await
        .assert_problem(422, "ordering.idempotency_key_reused");
    // Another customer's identical key is theirs alone.
    let d = app.customer().await;
    app.add_to_cart(&d.access_token, &p, 1)
        .await
        .assert_status(200);
    let theirs = app
        .checkout(&d.access_token, "tok_visa", Some("checkout-42"))
        .await;
    theirs.assert_status(202);
    assert_ne!(theirs.body["id"], first.body["id"]);
    // Without a key, a second checkout finds the cart empty.
    app.checkout(&c.access_token, "tok_visa", None)
        .await
        .assert_problem(422, "ordering.cart_empty");
    let list = app
        .get("/api/v1/ordering/orders", Some(&c.access_token))
        .await;
    assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
    app.stop().await;
});

every_topology!(checkout_and_cart_input_is_validated, |app| {
    let admin = app.admin().await;
    let p = app.sellable(&admin.access_token, "VAL", 300, 10).await;
    let c = app.customer().await;
    let t = Some(c.access_token.as_str());
    app.checkout(&c.access_token, "tok_visa", None)
        .await
        .assert_problem(422, "ordering.cart_empty");
    app.add_to_cart(&c.access_token, &p, 0)
        .await
        .assert_problem(422, "validation_failed");
    app.add_to_cart(&c.access_token, &p, 100)
        .await
        .assert_problem(422, "validation_failed");
    app.add_to_cart(&c.access_token, &uuid::Uuid::now_v7().to_string(), 1)
        .await
        .assert_problem(422, "ordering.product_unavailable");
    app.add_to_cart(&c.access_token, &p, 98)
        .await
        .assert_status(200);
    app.add_to_cart(&c.access_token, &p, 2)
        .await
        .assert_problem(422, "validation_failed");
    let item = format!("/api/v1/ordering/cart/items/{p}");
    app.patch(&item, t, &json!({"quantity": 2}))
        .await
        .assert_status(200);
    app.patch(
        &format!("/api/v1/ordering/cart/items/{}", uuid::Uuid::now_v7()),
        t,
        &json!({"quantity": 2}),
    )
    .await
    .assert_problem(404, "ordering.not_in_cart");
    let bad = app
        .post("/api/v1/ordering/orders", t, &json!({"shipping_address": {"name": "", "line1": "x", "city": "y", "postal_code": "1", "country": "XX"}, "payment_token": "visa"}))
        .await;
    bad.assert_problem(422, "validation_failed");
    let fields = bad.error_fields();
    assert!(fields.contains(&"shipping_address.name"), "{fields:?}");
    assert!(fields.contains(&"payment_token"), "{fields:?}");
    app.post(
        "/api/v1/ordering/orders",
        t,
        &json!({"payment_token": "tok_visa"}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.get("/api/v1/ordering/cart", None)
        .await
        .assert_problem(401, "unauthorized");

    // An archived product cannot be bought, even if it sits in the cart.
    app.delete(
        &format!("/api/v1/catalog/products/{p}"),
        Some(&admin.access_token),
    )
    .await
    .assert_status(200);
    app.eventually("archive reaches ordering", 10, || async {
        let cart = app.get("/api/v1/ordering/cart", t).await;
        (cart.body["items"][0]["available"] == false).then_some(())
    })
    .await;
    app.checkout(&c.access_token, "tok_visa", None)
        .await
        .assert_problem(422, "ordering.product_unavailable");
    assert_eq!(
        app.get("/api/v1/ordering/cart", t).await.body["items"]
            .as_array()
            .unwrap()
            .len(),
        1,
        "a refused checkout keeps the cart"
    );
    app.delete(&item, t).await.assert_status(200);
    app.delete(&item, t)
        .await
        .assert_problem(404, "ordering.not_in_cart");
    app.stop().await;
});

every_topology!(customers_cannot_see_or_cancel_each_others_orders, |app| {
    let admin = app.admin().await;
    let p = app.sellable(&admin.access_token, "OWN", 300, 10).await;
    let ada = app.customer().await;
    let bob = app.customer().await;
    let id = app.place_order(&ada.access_token, &p, 1, "tok_visa").await;
    app.get(
        &format!("/api/v1/ordering/orders/{id}"),
        Some(&bob.access_token),
    )
    .await
    .assert_problem(404, "ordering.order_not_found");
    app.post(
        &format!("/api/v1/ordering/orders/{id}/cancel"),
        Some(&bob.access_token),
        &json!({}),
    )
    .await
    .assert_problem(404, "ordering.order_not_found");
    assert_eq!(
        app.get("/api/v1/ordering/orders", Some(&bob.access_token))
            .await
            .body["items"],
        json!([])
    );
    app.get(
        &format!("/api/v1/ordering/orders/{id}"),
        Some(&ada.access_token),
    )
    .await
    .assert_status(200);
    app.stop().await;
});

every_topology!(
    duplicate_deliveries_of_every_consumed_event_change_nothing,
    |app| {
        let seen = app
            .observe(&[
                "catalog.stock_reserved",
                "shipping.shipment_created",
                "shipping.shipment_dispatched",
                "catalog.product_created",
            ])
            .await;
        let admin = app.admin().await;
        let p = app.sellable(&admin.access_token, "DUP", 300, 10).await;
        let c = app.customer().await;
        let id = app.place_order(&c.access_token, &p, 1, "tok_visa").await;
        let order = app.order_reaches(&c.access_token, &id, "confirmed").await;
        let shipment_id = order["shipment"]["id"].as_str().unwrap();
        app.post(
            &format!("/api/v1/shipping/shipments/{shipment_id}/events"),
            Some(&admin.access_token),
            &json!({"type": "dispatched"}),
        )
        .await
        .assert_status(200);
        let before = app.order_reaches(&c.access_token, &id, "shipped").await;
        // Catalog commits the reservation on the same dispatch, in its own time.
        let stock_before = app
            .eventually("stock leaves with the parcel", 10, || async {
                let stock = app.stock(&p).await;
                (stock["reserved"] == 0).then_some(stock)
            })
            .await;
        assert_eq!(stock_before["on_hand"], 9);
        let all: Vec<bus::Envelope> = [
            "catalog.stock_reserved",
            "shipping.shipment_created",
            "shipping.shipment_dispatched",
            "catalog.product_created",
        ]
        .iter()
        .flat_map(|t| seen.of_type(t))
        .collect();
        assert!(all.len() >= 4);
        app.redeliver(&all).await;
        let after = app
            .get(
                &format!("/api/v1/ordering/orders/{id}"),
                Some(&c.access_token),
            )
            .await
            .body;
        assert_eq!(after, before, "redelivery changed the order");
        assert_eq!(
            app.stock(&p).await,
            stock_before,
            "redelivery changed the stock"
        );
        let list = app
            .get(
                &format!("/api/v1/shipping/shipments?order_id={id}"),
                Some(&admin.access_token),
            )
            .await;
        assert_eq!(list.body["items"].as_array().unwrap().len(), 1);
        app.stop().await;
    }
);

// Catalog reports a reservation expired. An unpaid order is cancelled `reservation_expired`;
// a paid one is not (before: a confirmed order was cancelled and refunded): it notes the
// expiry, and catalog holds its units again when the payment reaches it.
every_topology!(an_expired_reservation_cancels_only_an_unpaid_order, |app| {
    let admin = app.admin().await;
    let p = app.sellable(&admin.access_token, "EXPR", 300, 10).await;
    let c = app.customer().await;
    let expired = |id: &str| {
        bus::Envelope::wrap(
            &catalog_contracts::StockReleased {
                order_id: kernel::id::OrderId::parse(id).unwrap(),
                reason: catalog_contracts::ReleaseReason::ReservationExpired,
                lines: vec![],
            },
            kernel::Timestamp::now(),
            &bus::Causation::system(),
        )
        .unwrap()
    };
    let paid = app.place_order(&c.access_token, &p, 1, "tok_visa").await;
    app.order_reaches(&c.access_token, &paid, "confirmed").await;
    app.bus.publish(&expired(&paid)).await.unwrap();
    let order = app
        .eventually("the paid order notes the expiry", 15, || async {
            let o = app
                .get(
                    &format!("/api/v1/ordering/orders/{paid}"),
                    Some(&c.access_token),
                )
                .await
                .body;
            o["status_history"]
                .as_array()
                .is_some_and(|h| {
                    h.iter()
                        .any(|e| e["note"].as_str().is_some_and(|n| n.contains("expired")))
                })
                .then_some(o)
        })
        .await;
    assert_eq!(order["status"], "confirmed", "{order}");
    assert!(payments(&order, "refund").is_empty(), "{order}");

    // An order still waiting for its payment (the gateway does not answer) is cancelled.
    let unpaid = app
        .place_order(&c.access_token, &p, 1, "tok_unavailable")
        .await;
    app.order_reaches(&c.access_token, &unpaid, "stock_reserved")
        .await;
    app.bus.publish(&expired(&unpaid)).await.unwrap();
    let order = app
        .order_reaches(&c.access_token, &unpaid, "cancelled")
        .await;
    assert_eq!(order["cancellation_reason"], "reservation_expired");
    assert!(payments(&order, "refund").is_empty(), "{order}");
    app.stop().await;
});

async fn stock_race(app: &TestApp) {
    let admin = app.admin().await;
    let p = app.sellable(&admin.access_token, "RACE", 1000, 10).await;
    let mut customers = Vec::new();
    for _ in 0..30 {
        let c = app.customer().await;
        app.add_to_cart(&c.access_token, &p, 1)
            .await
            .assert_status(200);
        customers.push(c);
    }
    let placed = futures::future::join_all(
        customers
            .iter()
            .map(|c| app.checkout(&c.access_token, "tok_visa", None)),
    )
    .await;
    let ids: Vec<String> = placed
        .iter()
        .map(|r| {
            r.assert_status(202);
            r.body["id"].as_str().unwrap().to_owned()
        })
        .collect();
    let finals = app
        .eventually("all 30 orders settle", 60, || async {
            let mut out = Vec::new();
            for (c, id) in customers.iter().zip(&ids) {
                let o = app
                    .get(
                        &format!("/api/v1/ordering/orders/{id}"),
                        Some(&c.access_token),
                    )
                    .await
                    .body;
                if o["status"] != "confirmed" && o["status"] != "cancelled" {
                    return None;
                }
                out.push(o);
            }
            Some(out)
        })
        .await;
    let confirmed = finals.iter().filter(|o| o["status"] == "confirmed").count();
    let out_of_stock = finals
        .iter()
        .filter(|o| o["cancellation_reason"] == "out_of_stock")
        .count();
    assert_eq!(confirmed, 10);
    assert_eq!(out_of_stock, 20);
    assert_eq!(
        app.stock(&p).await,
        json!({"product_id": p, "on_hand": 10, "reserved": 10, "available": 0})
    );
    let charged: usize = finals.iter().map(|o| payments(o, "charge").len()).sum();
    assert_eq!(charged, 10, "only confirmed orders were charged");
}

every_topology!(
    thirty_concurrent_checkouts_for_ten_units_confirm_exactly_ten,
    |app| {
        stock_race(&app).await;
        app.stop().await;
    }
);

// Each instance keeps the orders it read, checked against the row's version on every read:
// what one instance changes, another shows at once, without waiting for any event.
both_backends!(
    an_order_changed_on_one_instance_reads_changed_on_another,
    |app| {
        let other = app.second_instance().await;
        let admin = app.admin().await;
        let p = app
            .sellable(&admin.access_token, "TWO-ORDERS", 300, 10)
            .await;
        let ada = app.customer().await;
        let id = app.place_order(&ada.access_token, &p, 1, "tok_visa").await;
        let path = format!("/api/v1/ordering/orders/{id}");
        let seen = app.order_reaches(&ada.access_token, &id, "confirmed").await;
        // Both instances have read the confirmed order.
        assert_eq!(other.get(&path, Some(&ada.access_token)).await.body, seen);
        app.post(
            &format!("{path}/cancel"),
            Some(&ada.access_token),
            &json!({}),
        )
        .await
        .assert_status(200);
        let there = other.get(&path, Some(&ada.access_token)).await;
        there.assert_status(200);
        assert_eq!(there.body["status"], "cancelled", "{}", there.body);
        other.stop().await;
        app.stop().await;
    }
);
