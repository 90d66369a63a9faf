//! Partial refunds (admin): each its own payment record, sent to the gateway at once, never
//! more in all than the charge, whatever arrives at the same time; a cancellation gives back
//! only what is left; identity's order history and the event say what was refunded.

use serde_json::{json, Value};

use crate::checkout::payments;
use crate::every_topology;
use crate::helpers::TestApp;

fn eur(amount: i64) -> Value {
    json!({"amount": amount, "currency": "EUR"})
}

async fn refund(
    app: &TestApp,
    admin: &str,
    order: &str,
    body: &Value,
    key: Option<&str>,
) -> crate::helpers::Response {
    let headers: Vec<(&str, &str)> = key
        .map(|k| vec![("idempotency-key", k)])
        .unwrap_or_default();
    app.request(
        reqwest::Method::POST,
        &format!("/api/v1/ordering/orders/{order}/refunds"),
        Some(admin),
        Some(body),
        &headers,
    )
    .await
}

/// A confirmed order and its total.
async fn confirmed_order(app: &TestApp, admin: &str, customer: &str, sku: &str) -> (String, i64) {
    let mug = app.sellable(admin, sku, 1250, 50).await;
    let id = app.place_order(customer, &mug, 2, "tok_visa").await;
    let order = app.order_reaches(customer, &id, "confirmed").await;
    let total = order["total"]["amount"].as_i64().unwrap();
    assert_eq!(order["refunded"], eur(0));
    assert_eq!(order["refundable"], order["total"]);
    (id, total)
}

every_topology!(
    an_admin_refunds_part_of_an_order_and_a_cancellation_gives_back_the_rest,
    |app| {
        let observer = app.observe(&["ordering.order_refunded"]).await;
        let admin = app.admin().await;
        let c = app.customer().await;
        let (id, total) =
            confirmed_order(&app, &admin.access_token, &c.access_token, "REFUND-MUG").await;

        let chipped = json!({"amount": eur(500), "reason": "mug arrived chipped"});
        // Only an admin gives money back.
        refund(&app, &c.access_token, &id, &chipped, None)
            .await
            .assert_status(403);

        let granted = refund(&app, &admin.access_token, &id, &chipped, Some("refund-1")).await;
        granted.assert_status(201);
        assert!(granted.header("location").unwrap().ends_with(&id));
        assert_eq!(granted.header("idempotent-replayed"), None);
        assert_eq!(granted.body["refund"]["kind"], "refund");
        assert_eq!(granted.body["refund"]["amount"], eur(500));
        assert_eq!(granted.body["refund"]["reason"], "mug arrived chipped");
        assert_eq!(granted.body["refundable"], eur(total - 500));
        let refund_id = granted.body["refund"]["id"].as_str().unwrap().to_owned();

        // The same key and body: the same refund, not a second one.
        let again = refund(&app, &admin.access_token, &id, &chipped, Some("refund-1")).await;
        again.assert_status(201);
        assert_eq!(again.header("idempotent-replayed").as_deref(), Some("true"));
        assert_eq!(again.body["refund"]["id"], refund_id.as_str());
        // The same key for another refund.
        refund(
            &app,
            &admin.access_token,
            &id,
            &json!({"amount": eur(501), "reason": "mug arrived chipped"}),
            Some("refund-1"),
        )
        .await
        .assert_problem(422, "ordering.idempotency_key_reused");
        // More than is left, another currency, nothing, no reason.
        refund(
            &app,
            &admin.access_token,
            &id,
            &json!({"amount": eur(total - 499), "reason": "too much"}),
            None,
        )
        .await
        .assert_problem(422, "ordering.refund_exceeds_charge");
        let usd = refund(
            &app,
            &admin.access_token,
            &id,
            &json!({"amount": {"amount": 100, "currency": "USD"}, "reason": "wrong money"}),
            None,
        )
        .await;
        usd.assert_problem(422, "validation_failed");
        assert_eq!(usd.error_fields(), vec!["amount.currency"]);
        refund(
            &app,
            &admin.access_token,
            &id,
            &json!({"amount": eur(0), "reason": "nothing"}),
            None,
        )
        .await
        .assert_problem(422, "validation_failed");
        let blank = refund(
            &app,
            &admin.access_token,
            &id,
            &json!({"amount": eur(1), "reason": "   "}),
            None,
        )
        .await;
        blank.assert_problem(422, "validation_failed");
        assert_eq!(blank.error_fields(), vec!["reason"]);
        refund(
            &app,
            &admin.access_token,
            &uuid::Uuid::now_v7().to_string(),
            &chipped,
            None,
        )
        .await
        .assert_problem(404, "ordering.order_not_found");

        // The gateway confirms it; the order and the customer's history say so.
        let order = app
            .eventually("the partial refund is confirmed", 30, || async {
                let o = app
                    .get(
                        &format!("/api/v1/ordering/orders/{id}"),
                        Some(&c.access_token),
                    )
                    .await
                    .body;
                (o["refunded"] == eur(500)).then_some(o)
            })
            .await;
        assert_eq!(
            order["status"], "confirmed",
            "a partial refund does not move the order"
        );
        assert_eq!(order["refundable"], eur(total - 500));
        let refunds = payments(&order, "refund");
        assert_eq!(refunds.len(), 1);
        assert_eq!(refunds[0]["status"], "refunded");
        assert!(refunds[0]["gateway_reference"]
            .as_str()
            .unwrap()
            .starts_with("re_"));
        app.eventually("the order history shows the refund", 30, || async {
            let h = app
                .get("/api/v1/identity/me/orders", Some(&c.access_token))
                .await;
            (h.body["items"][0]["refunded"] == eur(500)).then_some(())
        })
        .await;

        // Cancelling gives back only what is left, once.
        app.post(
            &format!("/api/v1/ordering/orders/{id}/cancel"),
            Some(&c.access_token),
            &json!({}),
        )
        .await
        .assert_status(200);
        let order = app
            .eventually("the rest is refunded", 30, || async {
                let o = app
                    .get(
                        &format!("/api/v1/ordering/orders/{id}"),
                        Some(&c.access_token),
                    )
                    .await
                    .body;
                (o["refunded"] == eur(total)).then_some(o)
            })
            .await;
        assert_eq!(order["refundable"], eur(0));
        let refunds = payments(&order, "refund");
        assert_eq!(refunds.len(), 2);
        assert_eq!(refunds[1]["amount"], eur(total - 500));
        refund(
            &app,
            &admin.access_token,
            &id,
            &json!({"amount": eur(1), "reason": "one more"}),
            None,
        )
        .await
        .assert_problem(422, "ordering.refund_exceeds_charge");
        app.eventually("the order history shows the whole refund", 30, || async {
            let h = app
                .get("/api/v1/identity/me/orders", Some(&c.access_token))
                .await;
            (h.body["items"][0]["refunded"] == eur(total)).then_some(())
        })
        .await;

        // One event per refund, with the running total.
        let events = app
            .eventually("two refund events", 30, || async {
                let seen = observer.of_type("ordering.order_refunded");
                (seen.len() >= 2).then_some(seen)
            })
            .await;
        let mut totals: Vec<i64> = events
            .iter()
            .map(|e| e.payload["total_refunded"]["amount"].as_i64().unwrap())
            .collect();
        totals.sort_unstable();
        assert_eq!(totals, vec![500, total]);
        assert!(events.iter().all(|e| e.payload["charged"] == eur(total)));
    }
);

every_topology!(concurrent_refunds_never_exceed_the_charge, |app| {
    let admin = app.admin().await;
    let c = app.customer().await;
    let (id, total) = confirmed_order(&app, &admin.access_token, &c.access_token, "RACE-MUG").await;
    // Twenty refunds of an eighth of the charge each, all at once: eight fit.
    let each = total / 8;
    let body = json!({"amount": eur(each), "reason": "goodwill"});
    let answers = futures::future::join_all(
        (0..20).map(|_| refund(&app, &admin.access_token, &id, &body, None)),
    )
    .await;
    let granted = answers.iter().filter(|a| a.status == 201).count();
    for a in answers.iter().filter(|a| a.status != 201) {
        a.assert_problem(422, "ordering.refund_exceeds_charge");
    }
    assert_eq!(granted as i64, total / each, "as many as fit, no more");
    let order = app
        .eventually("every granted refund is confirmed", 60, || async {
            let o = app
                .get(
                    &format!("/api/v1/ordering/orders/{id}"),
                    Some(&c.access_token),
                )
                .await
                .body;
            payments(&o, "refund")
                .iter()
                .all(|r| r["status"] == "refunded")
                .then_some(o)
        })
        .await;
    let refunds = payments(&order, "refund");
    assert_eq!(refunds.len(), granted);
    let sum: i64 = refunds
        .iter()
        .map(|r| r["amount"]["amount"].as_i64().unwrap())
        .sum();
    assert_eq!(sum, each * granted as i64);
    assert!(sum <= total);
    assert_eq!(order["refunded"], eur(sum));
    assert_eq!(order["refundable"], eur(total - sum));
});

every_topology!(an_order_never_charged_has_nothing_to_refund, |app| {
    let admin = app.admin().await;
    let c = app.customer().await;
    let mug = app
        .sellable(&admin.access_token, "DECLINED-MUG", 900, 5)
        .await;
    let id = app
        .place_order(&c.access_token, &mug, 1, "tok_declined")
        .await;
    app.order_reaches(&c.access_token, &id, "cancelled").await;
    refund(
        &app,
        &admin.access_token,
        &id,
        &json!({"amount": eur(100), "reason": "goodwill"}),
        None,
    )
    .await
    .assert_problem(409, "ordering.not_charged");
});
