//! Shipping and taxes in the order total: admin-managed tax rates (per destination and tax
//! class) and shipping rates (per destination and currency, by weight), the cart's quote, and
//! a checkout that charges the total and refunds exactly that on cancellation.

use serde_json::{json, Value};

use crate::helpers::TestApp;
use crate::{both_backends, every_topology};

fn eur(amount: i64) -> Value {
    json!({"amount": amount, "currency": "EUR"})
}

/// The customer's cart priced for a destination.
async fn quote_for(app: &TestApp, token: &str, country: &str) -> crate::helpers::Response {
    app.get(
        &format!("/api/v1/ordering/cart/quote?country={country}"),
        Some(token),
    )
    .await
}

/// The amount of the order's charge.
fn charged(order: &Value) -> Option<Value> {
    crate::checkout::payments(order, "charge")
        .first()
        .map(|p| p["amount"].clone())
}

/// Cancels the customer's order and waits for its refund to settle; the refund.
async fn cancel_and_refund(app: &TestApp, token: &str, order: &str) -> Value {
    app.post(
        &format!("/api/v1/ordering/orders/{order}/cancel"),
        Some(token),
        &json!({}),
    )
    .await
    .assert_status(200);
    app.eventually("the refund is settled", 20, || async {
        let o = app
            .get(&format!("/api/v1/ordering/orders/{order}"), Some(token))
            .await
            .body;
        crate::checkout::payments(&o, "refund")
            .into_iter()
            .find(|r| r["status"] == "refunded")
    })
    .await
}

/// A product with a weight and tax class, in stock, once ordering's projection has it (with
/// its weight: the quote shows it).
async fn sellable(
    app: &TestApp,
    admin: &str,
    sku: &str,
    amount: i64,
    grams: u32,
    class: &str,
) -> String {
    let res = app
        .post(
            "/api/v1/catalog/products",
            Some(admin),
            &json!({"sku": sku, "name": format!("Product {sku}"), "price": eur(amount),
                    "weight_grams": grams, "tax_class": class}),
        )
        .await;
    res.assert_status(201);
    assert_eq!(res.body["weight_grams"], grams);
    assert_eq!(res.body["tax_class"], class);
    let id = res.body["id"].as_str().unwrap().to_owned();
    app.put(
        &format!("/api/v1/catalog/products/{id}/stock"),
        Some(admin),
        &json!({"on_hand": 50}),
    )
    .await
    .assert_status(200);
    let probe = app.customer().await;
    app.add_to_cart(&probe.access_token, &id, 1)
        .await
        .assert_status(200);
    app.eventually("ordering knows the product's weight", 10, || async {
        let quote = quote_for(app, &probe.access_token, "DE").await;
        (quote.status == 200 && quote.body["weight_grams"] == grams).then_some(())
    })
    .await;
    id
}

async fn germany(app: &TestApp, admin: &str) {
    app.put(
        "/api/v1/ordering/tax-rates/de",
        Some(admin),
        &json!({"standard_bps": 1900, "reduced_bps": 700}),
    )
    .await
    .assert_status(200);
    let rate = app
        .put(
            "/api/v1/ordering/shipping-rates/DE/EUR",
            Some(admin),
            &json!({"flat": 495, "per_kg": 150, "included_grams": 1000}),
        )
        .await;
    rate.assert_status(200);
    assert_eq!(rate.body["flat"], eur(495));
    assert_eq!(rate.body["per_kg"], eur(150));
}

every_topology!(
    an_order_charges_shipping_and_tax_and_a_cancellation_refunds_exactly_that,
    |app| {
        let admin = app.admin().await;
        germany(&app, &admin.access_token).await;
        let mug = sellable(&app, &admin.access_token, "TAX-MUG", 1999, 400, "standard").await;
        let book = sellable(&app, &admin.access_token, "TAX-BOOK", 1000, 1500, "reduced").await;
        let c = app.customer().await;
        app.add_to_cart(&c.access_token, &mug, 2)
            .await
            .assert_status(200);
        app.add_to_cart(&c.access_token, &book, 1)
            .await
            .assert_status(200);

        // 2 × 19.99 at 19 % and 10.00 at 7 %; 2.3 kg ships for 4.95 + 2 × 1.50, taxed at 19 %.
        let quote = quote_for(&app, &c.access_token, "DE").await;
        quote.assert_status(200);
        let (tax_mug, tax_book, tax_shipping) = (760, 70, 151);
        let expected = [
            ("subtotal", 4998),
            ("discount", 0),
            ("shipping", 795),
            ("tax", tax_mug + tax_book + tax_shipping),
            ("total", 4998 + 795 + tax_mug + tax_book + tax_shipping),
        ];
        for (field, amount) in expected {
            assert_eq!(
                quote.body[field],
                eur(amount),
                "quote {field}: {}",
                quote.body
            );
        }
        assert_eq!(quote.body["weight_grams"], 2300);
        assert_eq!(quote.body["prices_include_tax"], false);

        // A destination the currency has no rate for, and one that is not a country.
        quote_for(&app, &c.access_token, "FR")
            .await
            .assert_problem(422, "ordering.no_shipping_rate");
        quote_for(&app, &c.access_token, "XX")
            .await
            .assert_status(422);

        let placed = app
            .checkout(&c.access_token, "tok_visa", Some("tax-1"))
            .await;
        placed.assert_status(202);
        for (field, amount) in expected {
            assert_eq!(
                placed.body[field],
                eur(amount),
                "order {field}: {}",
                placed.body
            );
        }
        let id = placed.body["id"].as_str().unwrap().to_owned();
        let order = app.order_reaches(&c.access_token, &id, "confirmed").await;
        let total = 4998 + 795 + tax_mug + tax_book + tax_shipping;
        let line_taxes: Vec<Value> = order["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["tax"]["amount"].clone())
            .collect();
        let mut line_taxes: Vec<i64> = line_taxes.iter().map(|v| v.as_i64().unwrap()).collect();
        line_taxes.sort_unstable();
        assert_eq!(line_taxes, vec![tax_book, tax_mug]);
        assert_eq!(charged(&order), Some(eur(total)));
        // Shipping learns the parcel's weight and what was paid for it.
        let shipment = order["shipment"]["id"].as_str().unwrap();
        let parcel = app
            .get(
                &format!("/api/v1/shipping/shipments/{shipment}"),
                Some(&c.access_token),
            )
            .await;
        parcel.assert_status(200);
        assert_eq!(parcel.body["weight_grams"], 2300);
        assert_eq!(parcel.body["shipping_charge"], eur(795));

        let refunded = cancel_and_refund(&app, &c.access_token, &id).await;
        assert_eq!(refunded["amount"], eur(total));
    }
);

both_backends!(rates_are_admin_only_and_checked, |app| {
    let admin = app.admin().await;
    let c = app.customer().await;
    let body = json!({"standard_bps": 1900, "reduced_bps": 700});
    app.put("/api/v1/ordering/tax-rates/DE", None, &body)
        .await
        .assert_status(401);
    app.put(
        "/api/v1/ordering/tax-rates/DE",
        Some(&c.access_token),
        &body,
    )
    .await
    .assert_status(403);
    app.get("/api/v1/ordering/shipping-rates", Some(&c.access_token))
        .await
        .assert_status(403);
    let admin = admin.access_token.as_str();
    app.put("/api/v1/ordering/tax-rates/XX", Some(admin), &body)
        .await
        .assert_problem(422, "validation_failed");
    for bad in [
        json!({"standard_bps": 10001, "reduced_bps": 0}),
        json!({"standard_bps": -1, "reduced_bps": 0}),
    ] {
        app.put("/api/v1/ordering/tax-rates/DE", Some(admin), &bad)
            .await
            .assert_problem(422, "validation_failed");
    }
    app.put(
        "/api/v1/ordering/tax-rates/DE",
        Some(admin),
        &json!({"standard_bps": 19.5, "reduced_bps": 0}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.put(
        "/api/v1/ordering/tax-rates/DE",
        Some(admin),
        &json!({"standard_bps": 1900}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.put(
        "/api/v1/ordering/shipping-rates/DE/EURO",
        Some(admin),
        &json!({"flat": 100}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.put(
        "/api/v1/ordering/shipping-rates/DE/EUR",
        Some(admin),
        &json!({"flat": -1}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.put(
        "/api/v1/ordering/shipping-rates/DE/EUR",
        Some(admin),
        &json!({"flat": 100, "per_kg": 10_000_000_001_i64}),
    )
    .await
    .assert_problem(422, "validation_failed");

    // Set, read back, replace, remove.
    app.put("/api/v1/ordering/tax-rates/at", Some(admin), &body)
        .await
        .assert_status(200);
    app.put(
        "/api/v1/ordering/tax-rates/AT",
        Some(admin),
        &json!({"standard_bps": 2000, "reduced_bps": 1000}),
    )
    .await
    .assert_status(200);
    app.put(
        "/api/v1/ordering/shipping-rates/AT/EUR",
        Some(admin),
        &json!({"flat": 700}),
    )
    .await
    .assert_status(200);
    let taxes = app.get("/api/v1/ordering/tax-rates", Some(admin)).await;
    taxes.assert_status(200);
    assert!(taxes.body["next_cursor"].is_null());
    assert_eq!(taxes.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(taxes.body["items"][0]["country"], "AT");
    assert_eq!(taxes.body["items"][0]["standard_bps"], 2000);
    let shipping = app
        .get("/api/v1/ordering/shipping-rates", Some(admin))
        .await;
    assert_eq!(
        shipping.body["items"][0],
        json!({"country": "AT", "flat": eur(700), "per_kg": eur(0), "included_grams": 0,
               "updated_at": shipping.body["items"][0]["updated_at"]})
    );
    app.delete("/api/v1/ordering/tax-rates/AT", Some(admin))
        .await
        .assert_status(204);
    app.delete("/api/v1/ordering/tax-rates/AT", Some(admin))
        .await
        .assert_problem(404, "ordering.rate_not_found");
    app.delete("/api/v1/ordering/shipping-rates/AT/EUR", Some(admin))
        .await
        .assert_status(204);
    app.delete("/api/v1/ordering/shipping-rates/AT/EUR", Some(admin))
        .await
        .assert_problem(404, "ordering.rate_not_found");

    // Without rates: no tax, and a currency without any shipping rate ships free.
    let mug = sellable(&app, admin, "FREE-MUG", 1000, 300, "standard").await;
    app.add_to_cart(&c.access_token, &mug, 3)
        .await
        .assert_status(200);
    let quote = quote_for(&app, &c.access_token, "JP").await;
    quote.assert_status(200);
    assert_eq!(quote.body["total"], eur(3000));
    assert_eq!(quote.body["shipping"], eur(0));
    assert_eq!(quote.body["tax"], eur(0));
    app.get("/api/v1/ordering/cart/quote", Some(&c.access_token))
        .await
        .assert_status(400);
    let empty = app.customer().await;
    quote_for(&app, &empty.access_token, "DE")
        .await
        .assert_problem(422, "ordering.cart_empty");

    // The product's new fields are checked too.
    for (bad, status) in [
        (
            json!({"sku": "W1", "name": "W", "price": eur(1), "weight_grams": 1_000_001}),
            422,
        ),
        (
            json!({"sku": "W2", "name": "W", "price": eur(1), "weight_grams": -1}),
            422,
        ),
        (
            json!({"sku": "W3", "name": "W", "price": eur(1), "tax_class": "luxury"}),
            422,
        ),
        (
            json!({"sku": "W5", "name": "W", "price": eur(1), "other_prices": [eur(2)]}),
            422,
        ),
        (
            json!({"sku": "W6", "name": "W", "price": eur(1),
                   "other_prices": [{"amount": 1, "currency": "USD"}, {"amount": 2, "currency": "USD"}]}),
            422,
        ),
    ] {
        app.post("/api/v1/catalog/products", Some(admin), &bad)
            .await
            .assert_status(status);
    }
    let plain = app
        .post(
            "/api/v1/catalog/products",
            Some(admin),
            &json!({"sku": "W4", "name": "W", "price": eur(1)}),
        )
        .await;
    plain.assert_status(201);
    assert_eq!(plain.body["weight_grams"], 0);
    assert_eq!(plain.body["tax_class"], "standard");
    let id = plain.body["id"].as_str().unwrap();
    let changed = app
        .patch(
            &format!("/api/v1/catalog/products/{id}"),
            Some(admin),
            &json!({"weight_grams": 250, "tax_class": "zero"}),
        )
        .await;
    changed.assert_status(200);
    assert_eq!(changed.body["weight_grams"], 250);
    assert_eq!(changed.body["tax_class"], "zero");
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_prices_including_tax_the_customer_pays_the_listed_prices() {
    let app = crate::helpers::spawn_app_with(platform::testing::TestBackend::Sqlite, |c| {
        c.prices_include_tax = true;
    })
    .await
    .expect("sqlite app");
    let admin = app.admin().await;
    app.put(
        "/api/v1/ordering/tax-rates/DE",
        Some(&admin.access_token),
        &json!({"standard_bps": 1900, "reduced_bps": 700}),
    )
    .await
    .assert_status(200);
    app.put(
        "/api/v1/ordering/shipping-rates/DE/EUR",
        Some(&admin.access_token),
        &json!({"flat": 595}),
    )
    .await
    .assert_status(200);
    let lamp = sellable(
        &app,
        &admin.access_token,
        "GROSS-LAMP",
        11900,
        800,
        "standard",
    )
    .await;
    let c = app.customer().await;
    app.add_to_cart(&c.access_token, &lamp, 1)
        .await
        .assert_status(200);
    // 119.00 and 5.95 as listed, of which 19.00 and 0.95 are tax.
    let placed = app.checkout(&c.access_token, "tok_visa", None).await;
    placed.assert_status(202);
    assert_eq!(placed.body["subtotal"], eur(10000));
    assert_eq!(placed.body["shipping"], eur(500));
    assert_eq!(placed.body["tax"], eur(1995));
    assert_eq!(placed.body["total"], eur(12495));
    assert_eq!(placed.body["lines"][0]["unit_price"], eur(11900));
}

both_backends!(
    the_demo_rates_are_set_once_and_never_over_an_admins,
    |app| {
        let admin = app.admin().await;
        let db = app.database(emporium::config::ContextName::Ordering).await;
        assert_eq!(ordering::seed(db.clone()).await.unwrap(), 11);
        let taxes = app
            .get("/api/v1/ordering/tax-rates", Some(&admin.access_token))
            .await;
        assert_eq!(taxes.body["items"].as_array().unwrap().len(), 5);
        let shipping = app
            .get("/api/v1/ordering/shipping-rates", Some(&admin.access_token))
            .await;
        assert_eq!(shipping.body["items"].as_array().unwrap().len(), 5);
        app.put(
            "/api/v1/ordering/tax-rates/DE",
            Some(&admin.access_token),
            &json!({"standard_bps": 1600, "reduced_bps": 500}),
        )
        .await
        .assert_status(200);
        assert_eq!(ordering::seed(db).await.unwrap(), 0);
        let welcome = app
            .get(
                "/api/v1/ordering/promotions/welcome-10",
                Some(&admin.access_token),
            )
            .await;
        assert_eq!(welcome.body["percent_bps"], 1000);
        assert_eq!(welcome.body["max_uses_per_customer"], 1);
        let taxes = app
            .get("/api/v1/ordering/tax-rates", Some(&admin.access_token))
            .await;
        let de = taxes.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|t| t["country"] == "DE")
            .cloned()
            .unwrap();
        assert_eq!(de["standard_bps"], 1600);
    }
);

async fn promotion(app: &TestApp, admin: &str, body: Value) -> Value {
    let res = app
        .post("/api/v1/ordering/promotions", Some(admin), &body)
        .await;
    res.assert_status(201);
    res.body
}

async fn apply(app: &TestApp, token: &str, code: &str) -> crate::helpers::Response {
    app.post(
        "/api/v1/ordering/cart/promotion",
        Some(token),
        &json!({"code": code}),
    )
    .await
}

every_topology!(
    a_code_limited_to_ten_uses_discounts_exactly_ten_of_thirty_racing_checkouts,
    |app| {
        let admin = app.admin().await;
        let admin = admin.access_token.as_str();
        let mug = sellable(&app, admin, "RACE-MUG", 2000, 300, "standard").await;
        promotion(
            &app,
            admin,
            json!({"code": "race-10", "percent_bps": 1000, "max_uses": 10}),
        )
        .await;
        let mut customers = Vec::new();
        for _ in 0..30 {
            let c = app.customer().await;
            app.add_to_cart(&c.access_token, &mug, 1)
                .await
                .assert_status(200);
            let applied = apply(&app, &c.access_token, "Race-10").await;
            applied.assert_status(200);
            assert_eq!(applied.body["code"], "RACE-10");
            customers.push(c);
        }
        let checkouts = customers
            .iter()
            .map(|c| app.checkout(&c.access_token, "tok_visa", None));
        let answers = futures::future::join_all(checkouts).await;
        let placed: Vec<&Value> = answers
            .iter()
            .filter(|r| r.status == 202)
            .map(|r| &r.body)
            .collect();
        let refused = answers
            .iter()
            .filter(|r| r.status == 422 && r.body["code"] == "ordering.promotion_not_applicable")
            .count();
        assert_eq!(
            placed.len(),
            10,
            "{:?}",
            answers.iter().map(|r| r.status).collect::<Vec<_>>()
        );
        assert_eq!(refused, 20);
        for order in &placed {
            assert_eq!(order["discount"], eur(200));
            assert_eq!(order["total"], eur(1800));
            assert_eq!(order["promotion_code"], "RACE-10");
        }
        let uses = app
            .get("/api/v1/ordering/promotions/race-10", Some(admin))
            .await;
        assert_eq!(uses.body["uses"], 10);

        // A refused customer's cart and code are as they were; a cancelled order gives its use
        // back, and then that customer gets it.
        let refused_customer = customers
            .iter()
            .zip(&answers)
            .find(|(_, r)| r.status == 422)
            .map(|(c, _)| c)
            .unwrap();
        let owner = customers
            .iter()
            .zip(&answers)
            .find(|(_, r)| r.status == 202)
            .map(|(c, r)| (c, r.body["id"].as_str().unwrap().to_owned()))
            .unwrap();
        app.post(
            &format!("/api/v1/ordering/orders/{}/cancel", owner.1),
            Some(&owner.0.access_token),
            &json!({}),
        )
        .await
        .assert_status(200);
        let uses = app
            .get("/api/v1/ordering/promotions/RACE-10", Some(admin))
            .await;
        assert_eq!(uses.body["uses"], 9);
        let again = app
            .checkout(&refused_customer.access_token, "tok_visa", None)
            .await;
        again.assert_status(202);
        assert_eq!(again.body["discount"], eur(200));
        let uses = app
            .get("/api/v1/ordering/promotions/RACE-10", Some(admin))
            .await;
        assert_eq!(uses.body["uses"], 10);
    }
);

both_backends!(
    codes_apply_only_where_their_terms_allow_and_only_admins_manage_them,
    |app| {
        let admin = app.admin().await;
        let admin = admin.access_token.as_str();
        let c = app.customer().await;
        let mug = sellable(&app, admin, "CODE-MUG", 1500, 300, "standard").await;

        // Managing codes: admins only, checked fields, unique codes.
        let body = json!({"code": "FIVE-OFF", "amounts": [eur(500)], "min_subtotal": [eur(2500)], "max_uses_per_customer": 1});
        app.post("/api/v1/ordering/promotions", None, &body)
            .await
            .assert_status(401);
        app.post("/api/v1/ordering/promotions", Some(&c.access_token), &body)
            .await
            .assert_status(403);
        app.get("/api/v1/ordering/promotions", Some(&c.access_token))
            .await
            .assert_status(403);
        for bad in [
            json!({"code": "X", "percent_bps": 1000}),
            json!({"code": "BOTH", "percent_bps": 1000, "amounts": [eur(100)]}),
            json!({"code": "NEITHER"}),
            json!({"code": "ZERO", "percent_bps": 0}),
            json!({"code": "TWICE", "amounts": [eur(100), eur(200)]}),
            json!({"code": "WINDOW", "percent_bps": 10, "starts_at": "2030-01-02T00:00:00Z", "ends_at": "2030-01-01T00:00:00Z"}),
            json!({"code": "NOLIMIT", "percent_bps": 10, "max_uses": 0}),
        ] {
            app.post("/api/v1/ordering/promotions", Some(admin), &bad)
                .await
                .assert_problem(422, "validation_failed");
        }
        let created = promotion(&app, admin, body.clone()).await;
        assert_eq!(created["uses"], 0);
        assert_eq!(created["active"], true);
        app.post("/api/v1/ordering/promotions", Some(admin), &body)
            .await
            .assert_problem(409, "ordering.duplicate_promotion");
        promotion(
            &app,
            admin,
            json!({"code": "OLD", "percent_bps": 5000, "ends_at": "2020-01-01T00:00:00Z"}),
        )
        .await;
        promotion(
            &app,
            admin,
            json!({"code": "LATER", "percent_bps": 5000, "starts_at": "2999-01-01T00:00:00Z"}),
        )
        .await;
        promotion(
            &app,
            admin,
            json!({"code": "DOLLARS", "amounts": [{"amount": 500, "currency": "USD"}]}),
        )
        .await;
        let listed = app
            .get("/api/v1/ordering/promotions?limit=2", Some(admin))
            .await;
        listed.assert_status(200);
        assert_eq!(listed.body["items"][0]["code"], "DOLLARS");
        let next = listed.body["next_cursor"].as_str().unwrap();
        let rest = app
            .get(
                &format!("/api/v1/ordering/promotions?limit=10&cursor={next}"),
                Some(admin),
            )
            .await;
        assert_eq!(rest.body["items"].as_array().unwrap().len(), 2);
        app.get("/api/v1/ordering/promotions/NOPE", Some(admin))
            .await
            .assert_problem(404, "ordering.promotion_not_found");

        // Applying: each refusal says why, and the cart keeps no code.
        apply(&app, &c.access_token, "FIVE-OFF")
            .await
            .assert_problem(422, "ordering.cart_empty");
        app.add_to_cart(&c.access_token, &mug, 1)
            .await
            .assert_status(200);
        for (code, why) in [
            ("FIVE-OFF", "at least"),
            ("OLD", "expired"),
            ("LATER", "valid from"),
            ("DOLLARS", "EUR"),
            ("NO-SUCH-CODE", "does not exist"),
        ] {
            let refused = apply(&app, &c.access_token, code).await;
            refused.assert_problem(422, "ordering.promotion_not_applicable");
            assert!(
                refused.body["detail"].as_str().unwrap().contains(why),
                "{code}: {}",
                refused.body
            );
        }
        apply(&app, &c.access_token, "!!")
            .await
            .assert_problem(422, "validation_failed");
        app.delete("/api/v1/ordering/cart/promotion", Some(&c.access_token))
            .await
            .assert_problem(404, "ordering.promotion_not_found");

        // 2 × 15.00 reaches the minimum: 5.00 off, shown by the quote and charged at checkout.
        app.add_to_cart(&c.access_token, &mug, 1)
            .await
            .assert_status(200);
        apply(&app, &c.access_token, "five-off")
            .await
            .assert_status(200);
        let quote = quote_for(&app, &c.access_token, "DE").await;
        quote.assert_status(200);
        assert_eq!(quote.body["promotion_code"], "FIVE-OFF");
        assert_eq!(quote.body["discount"], eur(500));
        assert_eq!(quote.body["total"], eur(2500));
        let placed = app.checkout(&c.access_token, "tok_visa", None).await;
        placed.assert_status(202);
        assert_eq!(placed.body["discount"], eur(500));
        assert_eq!(placed.body["total"], eur(2500));
        let shares: i64 = placed.body["lines"]
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["discount"]["amount"].as_i64().unwrap())
            .sum();
        assert_eq!(shares, 500);

        // Once per customer: the next cart cannot use it; withdrawn, nobody can.
        app.add_to_cart(&c.access_token, &mug, 2)
            .await
            .assert_status(200);
        let again = apply(&app, &c.access_token, "FIVE-OFF").await;
        again.assert_problem(422, "ordering.promotion_not_applicable");
        let other = app.customer().await;
        app.add_to_cart(&other.access_token, &mug, 2)
            .await
            .assert_status(200);
        apply(&app, &other.access_token, "FIVE-OFF")
            .await
            .assert_status(200);
        let withdrawn = app
            .delete("/api/v1/ordering/promotions/five-off", Some(admin))
            .await;
        withdrawn.assert_status(200);
        assert_eq!(withdrawn.body["active"], false);
        assert_eq!(withdrawn.body["uses"], 1);
        // The code on the cart no longer applies: checkout is refused and the cart kept.
        app.checkout(&other.access_token, "tok_visa", None)
            .await
            .assert_problem(422, "ordering.promotion_not_applicable");
        let cart = app
            .get("/api/v1/ordering/cart", Some(&other.access_token))
            .await;
        assert_eq!(cart.body["items"].as_array().unwrap().len(), 1);
        app.delete("/api/v1/ordering/cart/promotion", Some(&other.access_token))
            .await
            .assert_status(204);
        let full = app.checkout(&other.access_token, "tok_visa", None).await;
        full.assert_status(202);
        assert_eq!(full.body["discount"], eur(0));
        assert_eq!(full.body["total"], eur(3000));
    }
);

async fn add_in(
    app: &TestApp,
    token: &str,
    product: &str,
    quantity: i64,
    currency: &str,
) -> crate::helpers::Response {
    app.post(
        "/api/v1/ordering/cart/items",
        Some(token),
        &json!({"product_id": product, "quantity": quantity, "currency": currency}),
    )
    .await
}

fn usd(amount: i64) -> Value {
    json!({"amount": amount, "currency": "USD"})
}

every_topology!(
    one_product_sells_in_two_currencies_with_a_code_shipping_and_tax,
    |app| {
        let admin = app.admin().await;
        let admin = admin.access_token.as_str();
        let created = app
            .post(
                "/api/v1/catalog/products",
                Some(admin),
                &json!({"sku": "FX-LAMP", "name": "Desk lamp", "price": eur(2000),
                    "other_prices": [usd(2200)], "weight_grams": 500}),
            )
            .await;
        created.assert_status(201);
        assert_eq!(created.body["other_prices"], json!([usd(2200)]));
        let lamp = created.body["id"].as_str().unwrap().to_owned();
        app.put(
            &format!("/api/v1/catalog/products/{lamp}/stock"),
            Some(admin),
            &json!({"on_hand": 20}),
        )
        .await
        .assert_status(200);
        let euro_only = app.product(admin, "FX-EURO-ONLY", 900, 5).await;
        app.put(
            "/api/v1/ordering/tax-rates/DE",
            Some(admin),
            &json!({"standard_bps": 1900, "reduced_bps": 700}),
        )
        .await
        .assert_status(200);
        for (currency, flat) in [("EUR", 495), ("USD", 595)] {
            app.put(
                &format!("/api/v1/ordering/shipping-rates/DE/{currency}"),
                Some(admin),
                &json!({"flat": flat}),
            )
            .await
            .assert_status(200);
        }
        promotion(
            &app,
            admin,
            json!({"code": "FX-OFF", "amounts": [eur(300), usd(350)]}),
        )
        .await;

        // In dollars: the cart's first line chooses its currency.
        let a = app.customer().await;
        app.eventually("ordering knows the dollar price", 10, || async {
            (add_in(&app, &a.access_token, &lamp, 2, "USD").await.status == 200).then_some(())
        })
        .await;
        let cart = app
            .get("/api/v1/ordering/cart", Some(&a.access_token))
            .await;
        assert_eq!(cart.body["currency"], "USD");
        assert_eq!(cart.body["items"][0]["unit_price"], usd(2200));
        assert_eq!(cart.body["total"], usd(4400));
        add_in(&app, &a.access_token, &lamp, 1, "EUR")
            .await
            .assert_problem(422, "validation_failed");
        let refused = app.add_to_cart(&a.access_token, &euro_only, 1).await;
        refused.assert_problem(422, "ordering.product_unavailable");
        assert!(refused.body["detail"]
            .as_str()
            .unwrap()
            .contains("no price in USD"));
        apply(&app, &a.access_token, "FX-OFF")
            .await
            .assert_status(200);
        // 44.00 − 3.50; 40.50 × 19 % = 7.695 → 7.70 (half to even); shipping 5.95 + 1.13 tax.
        let placed = app.checkout(&a.access_token, "tok_visa", None).await;
        placed.assert_status(202);
        let total_usd = 4400 - 350 + 595 + 770 + 113;
        for (field, amount) in [
            ("subtotal", 4400),
            ("discount", 350),
            ("shipping", 595),
            ("tax", 770 + 113),
            ("total", total_usd),
        ] {
            assert_eq!(placed.body[field], usd(amount), "{field}: {}", placed.body);
        }
        let id_usd = placed.body["id"].as_str().unwrap().to_owned();

        // In euros, the same product and code.
        let b = app.customer().await;
        app.add_to_cart(&b.access_token, &lamp, 1)
            .await
            .assert_status(200);
        apply(&app, &b.access_token, "fx-off")
            .await
            .assert_status(200);
        let placed = app.checkout(&b.access_token, "tok_visa", None).await;
        placed.assert_status(202);
        let total_eur = 2000 - 300 + 495 + 323 + 94;
        assert_eq!(placed.body["total"], eur(total_eur), "{}", placed.body);
        let id_eur = placed.body["id"].as_str().unwrap().to_owned();

        // Each is charged its total in its currency; the dollar order, cancelled, is refunded
        // exactly that.
        let order = app
            .order_reaches(&b.access_token, &id_eur, "confirmed")
            .await;
        assert_eq!(charged(&order), Some(eur(total_eur)));
        let order = app
            .order_reaches(&a.access_token, &id_usd, "confirmed")
            .await;
        assert_eq!(charged(&order), Some(usd(total_usd)));
        let refund = cancel_and_refund(&app, &a.access_token, &id_usd).await;
        assert_eq!(refund["amount"], usd(total_usd));
    }
);

both_backends!(
    a_price_change_after_adding_shows_on_the_cart_and_is_what_checkout_charges,
    |app| {
        let admin = app.admin().await;
        let mug = app
            .sellable(&admin.access_token, "CHANGING-MUG", 1000, 5)
            .await;
        let c = app.customer().await;
        app.add_to_cart(&c.access_token, &mug, 2)
            .await
            .assert_status(200);
        let product = app
            .get(&format!("/api/v1/catalog/products/{mug}"), None)
            .await;
        let etag = product.header("etag").unwrap();
        app.request(
            reqwest::Method::PATCH,
            &format!("/api/v1/catalog/products/{mug}"),
            Some(&admin.access_token),
            Some(&json!({"price": eur(1200)})),
            &[("if-match", etag.as_str())],
        )
        .await
        .assert_status(200);
        let cart = app
            .eventually("the cart shows the new price", 10, || async {
                let cart = app
                    .get("/api/v1/ordering/cart", Some(&c.access_token))
                    .await;
                (cart.body["items"][0]["unit_price"] == eur(1200)).then_some(cart)
            })
            .await;
        let item = &cart.body["items"][0];
        assert_eq!(item["price_when_added"], eur(1000));
        assert_eq!(item["price_changed"], true);
        assert_eq!(cart.body["total"], eur(2400));
        let placed = app.checkout(&c.access_token, "tok_visa", None).await;
        placed.assert_status(202);
        assert_eq!(placed.body["total"], eur(2400));
        assert_eq!(placed.body["lines"][0]["unit_price"], eur(1200));
    }
);
