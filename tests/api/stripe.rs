//! Payments through Stripe (`EMPORIUM_PAYMENTS=stripe`) against localstripe, a stateful fake of
//! Stripe's API (`EMPORIUM_TEST_STRIPE_URL`, started by `.ci/run`): a charge is a succeeded
//! PaymentIntent of the order's total, a declined card cancels the order `payment_declined`,
//! a partial refund reaches Stripe with its amount, and a cancelled paid order gets the rest.

use serde_json::Value;

use crate::helpers::{spawn_app_with, TestApp};
use platform::testing::TestBackend;

/// localstripe's address; `None` (a skip) without one, which fails under `CI=true`.
fn stripe_url() -> Option<String> {
    match std::env::var("EMPORIUM_TEST_STRIPE_URL") {
        Ok(url) => Some(url),
        Err(_) => {
            assert!(
                std::env::var("CI").is_err(),
                "CI: EMPORIUM_TEST_STRIPE_URL is not set (localstripe, started by .ci/run)"
            );
            eprintln!("skipping: no localstripe (set EMPORIUM_TEST_STRIPE_URL)");
            None
        }
    }
}

const KEY: &str = "sk_test_emporium";

async fn stripe_get(base: &str, path: &str) -> Value {
    let res = reqwest::Client::new()
        .get(format!("{base}{path}"))
        .bearer_auth(KEY)
        .send()
        .await
        .unwrap_or_else(|e| panic!("localstripe {path}: {e}"));
    res.json()
        .await
        .unwrap_or_else(|e| panic!("localstripe {path}: {e}"))
}

async fn shop(backend: TestBackend) -> Option<(TestApp, String)> {
    let base = stripe_url()?;
    let api_base = base.clone();
    let app = spawn_app_with(backend, move |c| {
        c.payments = ordering::Payments::Stripe {
            api_base,
            secret_key: KEY.to_owned(),
        };
    })
    .await?;
    Some((app, base))
}

fn charge_reference(order: &Value) -> String {
    order["payments"]
        .as_array()
        .and_then(|p| p.iter().find(|p| p["kind"] == "charge"))
        .and_then(|p| p["gateway_reference"].as_str())
        .unwrap_or_else(|| panic!("no charge reference: {order}"))
        .to_owned()
}

async fn stripe_story(backend: TestBackend) {
    let Some((app, stripe)) = shop(backend).await else {
        return;
    };
    let admin = app.admin().await;
    let product = app
        .sellable(&admin.access_token, "STRIPE-1", 2350, 10)
        .await;
    let customer = app.customer().await;

    // A card that pays: the order is confirmed and Stripe holds a payment of its total.
    let paid = app
        .place_order(&customer.access_token, &product, 2, "pm_card_visa")
        .await;
    let order = app
        .order_reaches(&customer.access_token, &paid, "confirmed")
        .await;
    let intent = charge_reference(&order);
    assert!(intent.starts_with("pi_"), "{intent}");
    let on_stripe = stripe_get(&stripe, &format!("/v1/payment_intents/{intent}")).await;
    assert_eq!(on_stripe["status"], "succeeded", "{on_stripe}");
    assert_eq!(on_stripe["amount"], order["total"]["amount"]);
    assert_eq!(
        on_stripe["currency"]
            .as_str()
            .map(str::to_uppercase)
            .as_deref(),
        order["total"]["currency"].as_str()
    );

    // A partial refund an admin grants reaches Stripe with its amount; cancelling then
    // refunds the rest, once.
    let total = order["total"]["amount"].as_i64().unwrap_or_default();
    app.post(
        &format!("/api/v1/ordering/orders/{paid}/refunds"),
        Some(&admin.access_token),
        &serde_json::json!({"amount": {"amount": 350, "currency": "EUR"}, "reason": "late delivery"}),
    )
    .await
    .assert_status(201);
    let cancelled = app
        .post(
            &format!("/api/v1/ordering/orders/{paid}/cancel"),
            Some(&customer.access_token),
            &serde_json::json!({}),
        )
        .await;
    cancelled.assert_status(200);
    app.eventually("both refunds are recorded", 30, || async {
        let order = app
            .get(
                &format!("/api/v1/ordering/orders/{paid}"),
                Some(&customer.access_token),
            )
            .await;
        (order.body["refunded"]["amount"] == total).then_some(())
    })
    .await;
    let refunds = stripe_get(&stripe, &format!("/v1/refunds?payment_intent={intent}")).await;
    let refunds = refunds["data"].as_array().cloned().unwrap_or_default();
    let mut amounts: Vec<i64> = refunds
        .iter()
        .filter_map(|r| r["amount"].as_i64())
        .collect();
    amounts.sort_unstable();
    assert_eq!(amounts, vec![350, total - 350], "{refunds:?}");

    // A card Stripe declines cancels the order, and nothing is charged.
    let declined = app
        .place_order(
            &customer.access_token,
            &product,
            1,
            "pm_card_chargeCustomerFail",
        )
        .await;
    let order = app
        .order_reaches(&customer.access_token, &declined, "cancelled")
        .await;
    assert_eq!(order["cancellation_reason"], "payment_declined", "{order}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_charges_refunds_and_declines_on_sqlite() {
    stripe_story(TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_charges_refunds_and_declines_on_postgres() {
    stripe_story(TestBackend::Postgres).await;
}

/// Signs `body` as Stripe does with `secret` at unix time `t`.
fn stripe_signature(secret: &str, t: i64, body: &str) -> String {
    let mac = platform::secret::hmac_sha256(secret.as_bytes(), format!("{t}.{body}").as_bytes());
    let hex: String = mac.iter().map(|b| format!("{b:02x}")).collect();
    format!("t={t},v1={hex}")
}

async fn webhook(app: &TestApp, signature: Option<&str>, body: &str) -> crate::helpers::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{}/api/v1/ordering/webhooks/stripe", app.address))
        .header("content-type", "application/json")
        .body(body.to_owned());
    if let Some(s) = signature {
        req = req.header("stripe-signature", s);
    }
    let res = req.send().await.unwrap_or_else(|e| panic!("webhook: {e}"));
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.json().await.unwrap_or(Value::Null);
    crate::helpers::Response {
        status,
        headers,
        body,
    }
}

/// Stripe's webhook: a refund made in Stripe's dashboard shows on the order's charge; forged,
/// stale and unsigned requests change nothing; an event is taken once; either of two secrets
/// (a rotation) is accepted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stripe_webhooks_are_verified_taken_once_and_reflected_on_the_charge() {
    let Some(base) = stripe_url() else {
        return;
    };
    let Some(app) = spawn_app_with(TestBackend::Sqlite, move |c| {
        c.payments = ordering::Payments::Stripe {
            api_base: base,
            secret_key: KEY.to_owned(),
        };
        c.stripe_webhook_secrets = vec!["whsec_old".to_owned(), "whsec_new".to_owned()];
    })
    .await
    else {
        return;
    };
    let admin = app.admin().await;
    let product = app.sellable(&admin.access_token, "STRIPE-2", 1800, 5).await;
    let customer = app.customer().await;
    let id = app
        .place_order(&customer.access_token, &product, 1, "pm_card_visa")
        .await;
    let order = app
        .order_reaches(&customer.access_token, &id, "confirmed")
        .await;
    let intent = charge_reference(&order);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64);
    let event_id = format!("evt_{}", uuid::Uuid::new_v4().simple());
    let body = serde_json::json!({
        "id": event_id,
        "type": "charge.refunded",
        "data": {"object": {"object": "charge", "id": "ch_1", "payment_intent": intent, "refunded": false, "amount_refunded": 500}}
    })
    .to_string();
    let provider_status = || async {
        let order = app
            .get(
                &format!("/api/v1/ordering/orders/{id}"),
                Some(&customer.access_token),
            )
            .await;
        order.body["payments"]
            .as_array()
            .and_then(|p| p.iter().find(|p| p["kind"] == "charge").cloned())
            .map(|c| c["provider_status"].clone())
            .unwrap_or(Value::Null)
    };

    // Refused: unsigned, forged, signed with a secret not configured, too old.
    let unconfigured = spawn_app_with(TestBackend::Sqlite, |_| {})
        .await
        .unwrap_or_else(|| panic!("a second app"));
    webhook(
        &unconfigured,
        Some(&stripe_signature("whsec_new", now, &body)),
        &body,
    )
    .await
    .assert_problem(404, "ordering.webhooks_not_configured");
    webhook(&unconfigured, None, &body)
        .await
        .assert_problem(400, "ordering.webhook_signature_invalid");
    unconfigured.stop().await;
    webhook(&app, None, &body)
        .await
        .assert_problem(400, "ordering.webhook_signature_invalid");
    webhook(&app, Some(&format!("t={now},v1={}", "0".repeat(64))), &body)
        .await
        .assert_problem(400, "ordering.webhook_signature_invalid");
    webhook(
        &app,
        Some(&stripe_signature("whsec_other", now, &body)),
        &body,
    )
    .await
    .assert_problem(400, "ordering.webhook_signature_invalid");
    webhook(
        &app,
        Some(&stripe_signature("whsec_new", now - 400, &body)),
        &body,
    )
    .await
    .assert_problem(400, "ordering.webhook_signature_invalid");
    let tampered = body.replace("false", "true");
    webhook(
        &app,
        Some(&stripe_signature("whsec_new", now, &body)),
        &tampered,
    )
    .await
    .assert_problem(400, "ordering.webhook_signature_invalid");
    assert_eq!(provider_status().await, Value::Null, "nothing changed");

    // Taken once, under the old secret as under the new.
    let taken = webhook(
        &app,
        Some(&stripe_signature("whsec_old", now, &body)),
        &body,
    )
    .await;
    taken.assert_status(200);
    assert_eq!(taken.body["duplicate"], false);
    assert_eq!(provider_status().await, "partially_refunded");
    let again = webhook(
        &app,
        Some(&stripe_signature("whsec_new", now, &body)),
        &body,
    )
    .await;
    again.assert_status(200);
    assert_eq!(again.body["duplicate"], true);

    // A signed body that is not an event is refused as such.
    let junk = "[1,2]";
    webhook(&app, Some(&stripe_signature("whsec_new", now, junk)), junk)
        .await
        .assert_problem(400, "malformed_json");
    app.stop().await;
}
