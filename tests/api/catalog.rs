//! Catalog through HTTP: validation, categories, browsing and paging, caching and ETags,
//! stock, and reservations driven by ordering and shipping events.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::both_backends;
use crate::helpers::TestApp;

pub(crate) fn envelope<E: kernel::IntegrationEvent>(event: &E) -> bus::Envelope {
    bus::Envelope::wrap(event, kernel::Timestamp::now(), &bus::Causation::system()).unwrap()
}

fn eur(amount: i64) -> kernel::Money {
    serde_json::from_value(json!({"amount": amount, "currency": "EUR"})).unwrap()
}

fn order_placed(lines: &[(&str, u32)]) -> (kernel::id::OrderId, bus::Envelope) {
    order_placed_with(
        lines
            .iter()
            .map(|(p, q)| (kernel::id::ProductId::parse(p).unwrap(), None, *q))
            .collect(),
    )
}

/// `order_placed` for lines of (product, variant, quantity), as ordering publishes it.
pub(crate) fn order_placed_with(
    lines: Vec<(kernel::id::ProductId, Option<kernel::id::ProductId>, u32)>,
) -> (kernel::id::OrderId, bus::Envelope) {
    let order = kernel::id::OrderId::new();
    let event = ordering_contracts::OrderPlaced {
        order_id: order,
        customer_id: kernel::id::UserId::new(),
        lines: lines
            .into_iter()
            .map(
                |(product_id, variant_id, quantity)| ordering_contracts::OrderLine {
                    product_id,
                    variant_id,
                    sku: "X".into(),
                    name: "X".into(),
                    quantity,
                    unit_price: eur(100),
                },
            )
            .collect(),
        total: eur(100),
        totals: None,
        shipping_address: kernel::address::PostalAddress::parse(
            "A", "1 St", None, "Berlin", "10115", "DE",
        )
        .unwrap(),
        placed_at: kernel::Timestamp::now(),
    };
    (order, envelope(&event))
}

/// `order_cancelled` by the customer, as ordering publishes it.
pub(crate) fn cancelled(order: kernel::id::OrderId) -> bus::Envelope {
    envelope(&ordering_contracts::OrderCancelled {
        order_id: order,
        customer_id: kernel::id::UserId::new(),
        reason: ordering_contracts::CancellationReason::CustomerCancelled,
        refunded: false,
        cancelled_at: kernel::Timestamp::now(),
    })
}

both_backends!(product_input_is_validated, |app| {
    let admin = app.admin().await;
    let t = Some(admin.access_token.as_str());
    let cases = [
        (
            json!({"sku": "", "name": "A", "price": {"amount": 100, "currency": "EUR"}}),
            "sku",
        ),
        (
            json!({"sku": "A1", "name": "A", "price": {"amount": -1, "currency": "EUR"}}),
            "price",
        ),
        (
            json!({"sku": "A1", "name": "A", "price": {"amount": 19.99, "currency": "EUR"}}),
            "price.amount",
        ),
        (
            json!({"sku": "A1", "name": "A", "price": {"amount": 100, "currency": "EURO"}}),
            "price",
        ),
        (
            json!({"sku": "A1", "name": "", "price": {"amount": 100, "currency": "EUR"}}),
            "name",
        ),
        (
            json!({"sku": "A1", "name": "A", "price": {"amount": 100, "currency": "EUR"}, "category_id": uuid::Uuid::now_v7()}),
            "category_id",
        ),
        (json!({"sku": "A1", "name": "A"}), "body"),
    ];
    for (body, field) in cases {
        let res = app.post("/api/v1/catalog/products", t, &body).await;
        res.assert_problem(422, "validation_failed");
        assert_eq!(
            res.body["errors"][0]["field"], field,
            "{body} -> {}",
            res.body
        );
    }
    app.product(&admin.access_token, "dup-1", 100, 0).await;
    app.post(
        "/api/v1/catalog/products",
        t,
        &json!({"sku": "DUP-1", "name": "B", "price": {"amount": 1, "currency": "EUR"}}),
    )
    .await
    .assert_problem(409, "catalog.duplicate_sku");
    let customer = app.customer().await;
    app.post(
        "/api/v1/catalog/products",
        Some(&customer.access_token),
        &json!({"sku": "C1", "name": "C", "price": {"amount": 1, "currency": "EUR"}}),
    )
    .await
    .assert_problem(403, "forbidden");
    app.post("/api/v1/catalog/products", None, &json!({}))
        .await
        .assert_problem(401, "unauthorized");
    app.get("/api/v1/catalog/products/not-a-uuid", None)
        .await
        .assert_problem(400, "invalid_path");
    app.get(
        &format!("/api/v1/catalog/products/{}", uuid::Uuid::now_v7()),
        None,
    )
    .await
    .assert_problem(404, "catalog.product_not_found");
    app.stop().await;
});

both_backends!(
    categories_form_a_tree_and_browsing_includes_sub_categories,
    |app| {
        let admin = app.admin().await;
        let t = Some(admin.access_token.as_str());
        let garden = app
            .post(
                "/api/v1/catalog/categories",
                t,
                &json!({"name": "Garden", "slug": "garden"}),
            )
            .await;
        garden.assert_status(201);
        let tools = app
            .post(
                "/api/v1/catalog/categories",
                t,
                &json!({"name": "Tools", "slug": "garden-tools", "parent_id": garden.body["id"]}),
            )
            .await;
        tools.assert_status(201);
        app.post(
            "/api/v1/catalog/categories",
            t,
            &json!({"name": "Again", "slug": "garden"}),
        )
        .await
        .assert_problem(409, "catalog.duplicate_slug");
        app.post(
            "/api/v1/catalog/categories",
            t,
            &json!({"name": "Bad", "slug": "Bad Slug"}),
        )
        .await
        .assert_problem(422, "validation_failed");
        app.post(
            "/api/v1/catalog/categories",
            t,
            &json!({"name": "Orphan", "slug": "orphan", "parent_id": uuid::Uuid::now_v7()}),
        )
        .await
        .assert_problem(422, "validation_failed");
        let in_garden = app
        .post("/api/v1/catalog/products", t, &json!({"sku": "SEEDS", "name": "Seeds", "price": {"amount": 300, "currency": "EUR"}, "category_id": garden.body["id"]}))
        .await;
        let in_tools = app
        .post("/api/v1/catalog/products", t, &json!({"sku": "TROWEL", "name": "Trowel", "description": "Stainless steel", "price": {"amount": 1500, "currency": "EUR"}, "category_id": tools.body["id"]}))
        .await;
        app.product(&admin.access_token, "ELSEWHERE", 100, 0).await;
        let ids = |res: &crate::helpers::Response| -> Vec<String> {
            res.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["id"].as_str().unwrap().to_owned())
                .collect()
        };
        let by_slug = app
            .get("/api/v1/catalog/products?category=garden&sort=price", None)
            .await;
        by_slug.assert_status(200);
        assert_eq!(
            ids(&by_slug),
            vec![
                in_garden.body["id"].as_str().unwrap(),
                in_tools.body["id"].as_str().unwrap()
            ]
        );
        let sub = app
            .get(
                &format!(
                    "/api/v1/catalog/products?category={}",
                    tools.body["id"].as_str().unwrap()
                ),
                None,
            )
            .await;
        assert_eq!(ids(&sub), vec![in_tools.body["id"].as_str().unwrap()]);
        let search = app.get("/api/v1/catalog/products?q=STAINLESS", None).await;
        assert_eq!(ids(&search), vec![in_tools.body["id"].as_str().unwrap()]);
        let wildcard = app.get("/api/v1/catalog/products?q=%25", None).await;
        assert_eq!(
            ids(&wildcard),
            Vec::<String>::new(),
            "a % is searched for, not a wildcard"
        );
        app.get("/api/v1/catalog/products?category=nowhere", None)
            .await
            .assert_problem(422, "validation_failed");
        app.get("/api/v1/catalog/products?sort=sideways", None)
            .await
            .assert_problem(400, "invalid_query");
        let cats = app.get("/api/v1/catalog/categories", None).await;
        assert_eq!(cats.body["items"].as_array().unwrap().len(), 2);
        app.stop().await;
    }
);

both_backends!(
    paging_covers_every_product_exactly_once_in_every_order,
    |app| {
        let admin = app.admin().await;
        let mut created = Vec::new();
        for i in 0..23 {
            // Repeated prices and names test the tie-breaker.
            let id = app
                .product(&admin.access_token, &format!("P-{i:02}"), 100 * (i % 5), 0)
                .await;
            created.push(id);
        }
        for sort in ["newest", "price", "price_desc", "name"] {
            let mut seen: Vec<Value> = Vec::new();
            let mut cursor: Option<String> = None;
            loop {
                let url = match &cursor {
                    Some(c) => format!("/api/v1/catalog/products?sort={sort}&limit=4&cursor={c}"),
                    None => format!("/api/v1/catalog/products?sort={sort}&limit=4"),
                };
                let res = app.get(&url, None).await;
                res.assert_status(200);
                seen.extend(res.body["items"].as_array().unwrap().iter().cloned());
                match res.body["next_cursor"].as_str() {
                    Some(c) => cursor = Some(c.to_owned()),
                    None => break,
                }
            }
            let ids: Vec<&str> = seen.iter().map(|p| p["id"].as_str().unwrap()).collect();
            let unique: HashSet<&str> = ids.iter().copied().collect();
            assert_eq!(ids.len(), 23, "{sort}: every product once");
            assert_eq!(unique.len(), 23, "{sort}: no product twice");
            let prices: Vec<i64> = seen
                .iter()
                .map(|p| p["price"]["amount"].as_i64().unwrap())
                .collect();
            match sort {
                "price" => assert!(prices.windows(2).all(|w| w[0] <= w[1])),
                "price_desc" => assert!(prices.windows(2).all(|w| w[0] >= w[1])),
                "newest" => assert_eq!(ids.first().copied(), created.last().map(String::as_str)),
                _ => {}
            }
        }
        app.get("/api/v1/catalog/products?cursor=bogus", None)
            .await
            .assert_problem(400, "invalid_cursor");
        app.get("/api/v1/catalog/products?limit=101", None)
            .await
            .assert_problem(422, "validation_failed");
        app.stop().await;
    }
);

both_backends!(reads_are_cached_invalidated_and_conditional, |app| {
    let admin = app.admin().await;
    let t = Some(admin.access_token.as_str());
    let id = app.product(&admin.access_token, "CACHE-1", 1000, 5).await;
    let path = format!("/api/v1/catalog/products/{id}");
    let first = app.get(&path, None).await;
    first.assert_status(200);
    let etag = first.header("etag").unwrap();
    let listed = app.get("/api/v1/catalog/products", None).await;
    assert_eq!(listed.body["items"][0]["price"]["amount"], 1000);

    let not_modified = app
        .request(
            reqwest::Method::GET,
            &path,
            None,
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    not_modified.assert_status(304);

    let stale = app
        .request(
            reqwest::Method::PATCH,
            &path,
            t,
            Some(&json!({"price": {"amount": 900, "currency": "EUR"}})),
            &[("if-match", "\"999\"")],
        )
        .await;
    stale.assert_problem(412, "catalog.stale_write");
    let updated = app
        .request(
            reqwest::Method::PATCH,
            &path,
            t,
            Some(&json!({"price": {"amount": 900, "currency": "EUR"}})),
            &[("if-match", &etag)],
        )
        .await;
    updated.assert_status(200);
    let new_etag = updated.header("etag").unwrap();
    assert_ne!(new_etag, etag);
    // The old ETag no longer matches: the write is visible at once, not after a TTL.
    let fresh = app
        .request(
            reqwest::Method::GET,
            &path,
            None,
            None,
            &[("if-none-match", &etag)],
        )
        .await;
    fresh.assert_status(200);
    assert_eq!(fresh.body["price"]["amount"], 900);
    assert_eq!(fresh.header("etag").unwrap(), new_etag);
    let listed = app.get("/api/v1/catalog/products", None).await;
    assert_eq!(listed.body["items"][0]["price"]["amount"], 900);
    // A second write with the first ETag is stale.
    app.request(
        reqwest::Method::PATCH,
        &path,
        t,
        Some(&json!({"name": "Renamed"})),
        &[("if-match", &etag)],
    )
    .await
    .assert_problem(412, "catalog.stale_write");
    app.patch(&path, t, &json!({"description": null, "unknown": 1}))
        .await
        .assert_problem(422, "validation_failed");

    let archived = app.delete(&path, t).await;
    archived.assert_status(200);
    assert_eq!(archived.body["status"], "archived");
    assert_eq!(app.get(&path, None).await.body["status"], "archived");
    let listed = app.get("/api/v1/catalog/products", None).await;
    assert_eq!(
        listed.body["items"],
        json!([]),
        "archived products are not browsed"
    );
    app.stop().await;
});

both_backends!(product_changes_are_published_for_projections, |app| {
    let seen = app
        .observe(&[
            "catalog.product_created",
            "catalog.product_updated",
            "catalog.product_archived",
        ])
        .await;
    let admin = app.admin().await;
    let t = Some(admin.access_token.as_str());
    let id = app.product(&admin.access_token, "EVT-1", 500, 0).await;
    app.patch(
        &format!("/api/v1/catalog/products/{id}"),
        t,
        &json!({"name": "Evented"}),
    )
    .await
    .assert_status(200);
    app.delete(&format!("/api/v1/catalog/products/{id}"), t)
        .await
        .assert_status(200);
    app.eventually("three product events", 10, || async {
        (seen.of_type("catalog.product_archived").len() == 1).then_some(())
    })
    .await;
    let created: catalog_contracts::ProductCreated =
        seen.of_type("catalog.product_created")[0].open().unwrap();
    assert_eq!(created.product.sku, "EVT-1");
    assert_eq!(created.product.price.amount(), 500);
    let updated: catalog_contracts::ProductUpdated =
        seen.of_type("catalog.product_updated")[0].open().unwrap();
    assert_eq!(updated.product.name, "Evented");
    assert_eq!(updated.product.revision, 2);
    app.stop().await;
});

both_backends!(stock_is_set_by_admins_and_never_below_reserved, |app| {
    let admin = app.admin().await;
    let t = Some(admin.access_token.as_str());
    let id = app.product(&admin.access_token, "STK-1", 100, 5).await;
    assert_eq!(
        app.stock(&id).await,
        json!({"product_id": id, "on_hand": 5, "reserved": 0, "available": 5})
    );
    let (_, placed) = order_placed(&[(&id, 3)]);
    app.bus.publish(&placed).await.unwrap();
    app.eventually("reserved", 10, || async {
        (app.stock(&id).await["reserved"] == 3).then_some(())
    })
    .await;
    let path = format!("/api/v1/catalog/products/{id}/stock");
    app.put(&path, t, &json!({"on_hand": 2}))
        .await
        .assert_problem(409, "catalog.below_reserved");
    app.put(&path, t, &json!({"on_hand": -1}))
        .await
        .assert_problem(422, "validation_failed");
    app.put(&path, t, &json!({"on_hand": "ten"}))
        .await
        .assert_problem(422, "validation_failed");
    let set = app.put(&path, t, &json!({"on_hand": 3})).await;
    set.assert_status(200);
    assert_eq!(set.body["available"], 0);
    let customer = app.customer().await;
    app.put(&path, Some(&customer.access_token), &json!({"on_hand": 9}))
        .await
        .assert_problem(403, "forbidden");
    app.stop().await;
});

/// Publishes every order at once and waits until each has its reservation's outcome
/// (`seen` observes `stock_reserved` and `stock_rejected`).
pub(crate) async fn publish_and_await_outcomes(
    app: &TestApp,
    orders: &[bus::Envelope],
    seen: &crate::helpers::Observer,
) {
    let publishes = orders.iter().map(|e| app.bus.publish(e));
    for result in futures::future::join_all(publishes).await {
        result.unwrap();
    }
    app.eventually("every reservation's outcome", 30, || async {
        (seen.of_type("catalog.stock_reserved").len()
            + seen.of_type("catalog.stock_rejected").len()
            == orders.len())
        .then_some(())
    })
    .await;
}

async fn concurrent_reservations(app: &TestApp) {
    let admin = app.admin().await;
    let seen = app
        .observe(&["catalog.stock_reserved", "catalog.stock_rejected"])
        .await;
    let id = app.product(&admin.access_token, "HOT-1", 100, 10).await;
    let orders: Vec<bus::Envelope> = (0..50).map(|_| order_placed(&[(&id, 1)]).1).collect();
    publish_and_await_outcomes(app, &orders, &seen).await;
    assert_eq!(seen.of_type("catalog.stock_reserved").len(), 10);
    assert_eq!(seen.of_type("catalog.stock_rejected").len(), 40);
    assert_eq!(
        app.stock(&id).await,
        json!({"product_id": id, "on_hand": 10, "reserved": 10, "available": 0})
    );
    let rejected: catalog_contracts::StockRejected =
        seen.of_type("catalog.stock_rejected")[0].open().unwrap();
    assert_eq!(rejected.short_lines[0].requested, 1);
    assert_eq!(rejected.short_lines[0].available, 0);
}

both_backends!(
    fifty_concurrent_reservations_of_ten_units_reserve_exactly_ten,
    |app| {
        concurrent_reservations(&app).await;
        app.stop().await;
    }
);

both_backends!(
    reservations_are_all_or_nothing_once_and_released_or_committed,
    |app| {
        let admin = app.admin().await;
        let seen = app
            .observe(&[
                "catalog.stock_reserved",
                "catalog.stock_rejected",
                "catalog.stock_released",
            ])
            .await;
        let a = app.product(&admin.access_token, "A-1", 100, 5).await;
        let b = app.product(&admin.access_token, "B-1", 100, 1).await;

        // B is short: nothing at all is held, A included.
        let (_, too_much) = order_placed(&[(&a, 2), (&b, 2)]);
        app.bus.publish(&too_much).await.unwrap();
        app.eventually("rejection", 10, || async {
            (seen.of_type("catalog.stock_rejected").len() == 1).then_some(())
        })
        .await;
        assert_eq!(app.stock(&a).await["reserved"], 0);
        assert_eq!(app.stock(&b).await["reserved"], 0);

        // A duplicate delivery of order_placed reserves once; lines of one product are summed.
        let (order, placed) = order_placed(&[(&a, 1), (&b, 1), (&a, 1)]);
        app.bus.publish(&placed).await.unwrap();
        app.bus.publish(&placed).await.unwrap();
        app.eventually("reservation", 10, || async {
            (seen.of_type("catalog.stock_reserved").len() == 1).then_some(())
        })
        .await;
        assert_eq!(app.stock(&a).await["reserved"], 2);
        assert_eq!(app.stock(&b).await["reserved"], 1);

        // Cancelled: released once, even if the cancellation arrives twice.
        let cancel = cancelled(order);
        app.bus.publish(&cancel).await.unwrap();
        app.bus.publish(&cancel).await.unwrap();
        app.eventually("release", 10, || async {
            (seen.of_type("catalog.stock_released").len() == 1).then_some(())
        })
        .await;
        assert_eq!(
            app.stock(&a).await,
            json!({"product_id": a, "on_hand": 5, "reserved": 0, "available": 5})
        );
        let released: catalog_contracts::StockReleased =
            seen.of_type("catalog.stock_released")[0].open().unwrap();
        assert_eq!(released.reason, catalog_contracts::ReleaseReason::Cancelled);

        // Cancelled before the reservation request arrived: the late request holds nothing.
        let (late_order, late_placed) = order_placed(&[(&a, 1)]);
        app.bus.publish(&cancelled(late_order)).await.unwrap();
        app.bus.publish(&late_placed).await.unwrap();
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
        assert_eq!(app.stock(&a).await["reserved"], 0);

        // Paid then dispatched: the units leave on_hand.
        let (paid_order, placed) = order_placed(&[(&a, 2)]);
        app.bus.publish(&placed).await.unwrap();
        app.eventually("second reservation", 10, || async {
            (seen.of_type("catalog.stock_reserved").len() == 2).then_some(())
        })
        .await;
        let dispatched = envelope(&shipping_contracts::ShipmentDispatched {
            shipment_id: kernel::id::ShipmentId::new(),
            order_id: paid_order,
            customer_id: kernel::id::UserId::new(),
            tracking_number: "T".into(),
            lines: vec![],
            dispatched_at: kernel::Timestamp::now(),
        });
        app.bus.publish(&dispatched).await.unwrap();
        app.bus.publish(&dispatched).await.unwrap();
        assert_eq!(
            app.stock(&a).await,
            json!({"product_id": a, "on_hand": 3, "reserved": 0, "available": 3})
        );
        app.stop().await;
    }
);

mod reservation_expiry {
    use super::*;

    async fn story(app: TestApp) {
        let admin = app.admin().await;
        let seen = app
            .observe(&["catalog.stock_reserved", "catalog.stock_released"])
            .await;
        let id = app.product(&admin.access_token, "EXP-1", 100, 4).await;
        let (_, unpaid) = order_placed(&[(&id, 3)]);
        let (paid_order, paid) = order_placed(&[(&id, 1)]);
        app.bus.publish(&unpaid).await.unwrap();
        app.bus.publish(&paid).await.unwrap();
        app.bus
            .publish(&envelope(&ordering_contracts::OrderPaid {
                order_id: paid_order,
                customer_id: kernel::id::UserId::new(),
                lines: vec![],
                total: eur(100),
                totals: None,
                shipping_address: kernel::address::PostalAddress::parse(
                    "A", "1 St", None, "Berlin", "10115", "DE",
                )
                .unwrap(),
                paid_at: kernel::Timestamp::now(),
            }))
            .await
            .unwrap();
        app.eventually("the unpaid reservation expires", 20, || async {
            (seen.of_type("catalog.stock_released").len() == 1).then_some(())
        })
        .await;
        let released: catalog_contracts::StockReleased =
            seen.of_type("catalog.stock_released")[0].open().unwrap();
        assert_eq!(
            released.reason,
            catalog_contracts::ReleaseReason::ReservationExpired
        );
        tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
        // The paid order keeps its unit.
        assert_eq!(app.stock(&id).await["reserved"], 1);
        app.stop().await;
    }

    fn short_ttl(c: &mut emporium::Config) {
        c.reservation_ttl = std::time::Duration::from_secs(1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_sqlite() {
        let app = crate::helpers::spawn_app_with(platform::testing::TestBackend::Sqlite, short_ttl)
            .await
            .unwrap();
        story(app).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgres() {
        let Some(app) =
            crate::helpers::spawn_app_with(platform::testing::TestBackend::Postgres, short_ttl)
                .await
        else {
            return;
        };
        story(app).await;
    }
}

both_backends!(
    a_change_on_one_instance_invalidates_the_cache_of_another,
    |app| {
        let other = app.second_instance().await;
        let admin = app.admin().await;
        let id = app.product(&admin.access_token, "TWO-1", 1000, 0).await;
        let path = format!("/api/v1/catalog/products/{id}");
        // Both instances cache the product.
        assert_eq!(other.get(&path, None).await.body["price"]["amount"], 1000);
        assert_eq!(app.get(&path, None).await.body["price"]["amount"], 1000);
        app.patch(
            &path,
            Some(&admin.access_token),
            &json!({"price": {"amount": 700, "currency": "EUR"}}),
        )
        .await
        .assert_status(200);
        other
            .eventually("the other instance sees the new price", 10, || async {
                (other.get(&path, None).await.body["price"]["amount"] == 700).then_some(())
            })
            .await;
        other.stop().await;
        app.stop().await;
    }
);

// What the schema promises holds: a malformed change is 422 even with an ETag that does not
// match (before: 412 first), and an integer written as `2.0` (an integer to JSON Schema) is
// taken (before: 422 "invalid type: floating point").
both_backends!(the_server_takes_what_its_schema_allows, |app| {
    let admin = app.admin().await;
    let p = app.sellable(&admin.access_token, "SCHEMA", 500, 10).await;
    let bad = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/catalog/products/{p}"),
            Some(&admin.access_token),
            Some(&json!({"sku": "no spaces inside"})),
            &[("if-match", "not-an-etag")],
        )
        .await;
    bad.assert_problem(422, "validation_failed");
    let stale = app
        .request(
            reqwest::Method::PATCH,
            &format!("/api/v1/catalog/products/{p}"),
            Some(&admin.access_token),
            Some(&json!({"sku": "GOOD-SKU"})),
            &[("if-match", "not-an-etag")],
        )
        .await;
    stale.assert_status(412);
    app.put(
        &format!("/api/v1/catalog/products/{p}/stock"),
        Some(&admin.access_token),
        &json!({"on_hand": 12.0}),
    )
    .await
    .assert_status(200);
    app.put(
        &format!("/api/v1/catalog/products/{p}/stock"),
        Some(&admin.access_token),
        &json!({"on_hand": 12.5}),
    )
    .await
    .assert_problem(422, "validation_failed");
    let c = app.customer().await;
    app.post(
        "/api/v1/ordering/cart/items",
        Some(&c.access_token),
        &json!({"product_id": p, "quantity": 2.0}),
    )
    .await
    .assert_status(200);
    app.stop().await;
});
