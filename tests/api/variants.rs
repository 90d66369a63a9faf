//! Options and variants: a product sold in sizes and colours, each variant with its own SKU,
//! price, stock and weight; browsing by option value; reservations, releases and dispatch
//! per variant; and a variant bought end to end.

use serde_json::{json, Value};

use crate::catalog::{cancelled, envelope, publish_and_await_outcomes};
use crate::helpers::TestApp;
use crate::{both_backends, every_topology};

fn eur(amount: i64) -> Value {
    json!({"amount": amount, "currency": "EUR"})
}

/// A tee in S, M and L (navy), and S in green; L is dearer and heavier. The product, and
/// its variants' ids by SKU suffix (`S`, `M`, `L`, `S-GREEN`).
async fn tee(app: &TestApp, admin: &str, base: &str) -> (Value, Vec<(String, String)>) {
    let variant = |size: &str, colour: &str, suffix: &str| json!({"sku": format!("{base}-{suffix}"), "options": {"size": size, "Colour": colour}});
    let mut large = variant("L", "Navy", "L");
    large["price"] = eur(2100);
    large["weight_grams"] = json!(260);
    let res = app
        .post(
            "/api/v1/catalog/products",
            Some(admin),
            &json!({
                "sku": base, "name": "Organic tee", "price": eur(1900), "weight_grams": 220,
                "other_prices": [{"amount": 2090, "currency": "USD"}],
                "options": [
                    {"name": "Size", "values": ["S", "M", "L"]},
                    {"name": "Colour", "values": ["Navy", "Green"]}
                ],
                "variants": [
                    variant("s", "navy", "S"),
                    variant("M", "Navy", "M"),
                    large,
                    variant("S", "Green", "S-GREEN")
                ]
            }),
        )
        .await;
    res.assert_status(201);
    let ids = res.body["variants"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            let sku = v["sku"].as_str().unwrap();
            (
                sku.trim_start_matches(&format!("{base}-")).to_owned(),
                v["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    (res.body, ids)
}

fn id_of<'a>(ids: &'a [(String, String)], suffix: &str) -> &'a str {
    &ids.iter().find(|(s, _)| s == suffix).unwrap().1
}

async fn set_variant_stock(app: &TestApp, admin: &str, product: &str, variant: &str, n: i64) {
    app.put(
        &format!("/api/v1/catalog/products/{product}/variants/{variant}/stock"),
        Some(admin),
        &json!({"on_hand": n}),
    )
    .await
    .assert_status(200);
}

async fn variant_stock(app: &TestApp, product: &str, variant: &str) -> Value {
    let res = app
        .get(
            &format!("/api/v1/catalog/products/{product}/variants/{variant}/stock"),
            None,
        )
        .await;
    res.assert_status(200);
    res.body
}

/// `order_placed` for lines of (product, variant, quantity).
fn order_placed(lines: &[(&str, &str, u32)]) -> (kernel::id::OrderId, bus::Envelope) {
    crate::catalog::order_placed_with(
        lines
            .iter()
            .map(|(p, v, q)| {
                let id = |raw: &str| kernel::id::ProductId::parse(raw).unwrap();
                (id(p), Some(id(v)), *q)
            })
            .collect(),
    )
}

both_backends!(variants_are_created_priced_stocked_and_browsed, |app| {
    let admin = app.admin().await;
    let t = Some(admin.access_token.as_str());
    let (product, ids) = tee(&app, &admin.access_token, "VTEE").await;
    let id = product["id"].as_str().unwrap().to_owned();

    // Values are matched ignoring case and kept as declared; prices and weight default to
    // the product's; the product's price is the lowest variant price.
    assert_eq!(product["variants"].as_array().unwrap().len(), 4);
    let small = &product["variants"][0];
    assert_eq!(small["options"], json!({"Size": "S", "Colour": "Navy"}));
    assert_eq!(small["title"], "S / Navy");
    assert_eq!(small["price"], eur(1900));
    assert_eq!(
        small["other_prices"],
        json!([{"amount": 2090, "currency": "USD"}])
    );
    assert_eq!(small["weight_grams"], 220);
    assert_eq!(product["variants"][2]["weight_grams"], 260);
    assert_eq!(
        product["price_range"],
        json!({"min": eur(1900), "max": eur(2100)})
    );
    assert_eq!(product["price"], eur(1900));

    // Stock is per variant; the product's own stock path says so.
    set_variant_stock(&app, &admin.access_token, &id, id_of(&ids, "M"), 7).await;
    assert_eq!(
        variant_stock(&app, &id, id_of(&ids, "M")).await,
        json!({"product_id": id_of(&ids, "M"), "on_hand": 7, "reserved": 0, "available": 7})
    );
    assert_eq!(
        variant_stock(&app, &id, id_of(&ids, "L")).await["on_hand"],
        0
    );
    app.get(&format!("/api/v1/catalog/products/{id}/stock"), None)
        .await
        .assert_problem(409, "catalog.has_variants");
    let other = app.product(&admin.access_token, "VPLAIN", 500, 3).await;
    app.get(
        &format!(
            "/api/v1/catalog/products/{other}/variants/{}/stock",
            id_of(&ids, "M")
        ),
        None,
    )
    .await
    .assert_problem(404, "catalog.variant_not_found");
    // A product without options is its own one variant.
    assert_eq!(variant_stock(&app, &other, &other).await["on_hand"], 3);
    let plain = app
        .get(&format!("/api/v1/catalog/products/{other}"), None)
        .await;
    assert_eq!(plain.body["options"], json!([]));
    assert_eq!(plain.body["variants"][0]["id"], other.as_str());
    assert_eq!(plain.body["variants"][0]["sku"], "VPLAIN");

    // Browse by option value (ignoring case); all pairs must hold.
    let browse = |q: &'static str| {
        let app = &app;
        async move {
            let res = app
                .get(&format!("/api/v1/catalog/products?{q}"), None)
                .await;
            res.assert_status(200);
            res.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["sku"].as_str().unwrap().to_owned())
                .collect::<Vec<_>>()
        }
    };
    assert_eq!(browse("option=size:l").await, ["VTEE"]);
    assert_eq!(browse("option=SIZE:s,colour:green").await, ["VTEE"]);
    assert!(browse("option=size:xl").await.is_empty());
    assert!(browse("q=tee&option=colour:green,size:l").await.is_empty());
    for bad in ["option=size", "option=a:1,b:2,c:3,d:4", "option=:m"] {
        app.get(&format!("/api/v1/catalog/products?{bad}"), None)
            .await
            .assert_problem(422, "validation_failed");
    }

    // A variant's price changes the range; the product's own price is per variant now.
    let etag = app
        .get(&format!("/api/v1/catalog/products/{id}"), None)
        .await
        .header("etag")
        .unwrap();
    let changed = app
        .request(
            reqwest::Method::PATCH,
            &format!(
                "/api/v1/catalog/products/{id}/variants/{}",
                id_of(&ids, "S")
            ),
            t,
            Some(&json!({"price": eur(1500)})),
            &[("if-match", etag.as_str())],
        )
        .await;
    changed.assert_status(200);
    assert_eq!(changed.body["price"], eur(1500));
    assert_eq!(changed.body["price_range"]["max"], eur(2100));
    // The same ETag again is stale.
    app.request(
        reqwest::Method::PATCH,
        &format!(
            "/api/v1/catalog/products/{id}/variants/{}",
            id_of(&ids, "S")
        ),
        t,
        Some(&json!({"weight_grams": 10})),
        &[("if-match", etag.as_str())],
    )
    .await
    .assert_problem(412, "catalog.stale_write");
    app.patch(
        &format!("/api/v1/catalog/products/{id}"),
        t,
        &json!({"price": eur(999)}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.patch(
        &format!(
            "/api/v1/catalog/products/{id}/variants/{}",
            id_of(&ids, "S")
        ),
        t,
        &json!({"price": {"amount": 1500, "currency": "USD"}}),
    )
    .await
    .assert_problem(422, "validation_failed");

    // A new variant; its new value joins the option.
    let added = app
        .post(
            &format!("/api/v1/catalog/products/{id}/variants"),
            t,
            &json!({"sku": "VTEE-XL", "options": {"Size": "XL", "Colour": "Navy"}, "price": eur(2300)}),
        )
        .await;
    added.assert_status(201);
    assert_eq!(
        added.body["options"][0]["values"],
        json!(["S", "M", "L", "XL"])
    );
    assert_eq!(added.body["price_range"]["max"], eur(2300));
    assert_eq!(browse("option=size:xl").await, ["VTEE"]);
    // The same combination again, or a SKU in use, is refused.
    app.post(
        &format!("/api/v1/catalog/products/{id}/variants"),
        t,
        &json!({"sku": "VTEE-XL2", "options": {"Size": "xl", "Colour": "navy"}}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.post(
        &format!("/api/v1/catalog/products/{id}/variants"),
        t,
        &json!({"sku": "VPLAIN", "options": {"Size": "XS", "Colour": "Navy"}}),
    )
    .await
    .assert_problem(409, "catalog.duplicate_sku");
    app.post(
        &format!("/api/v1/catalog/products/{other}/variants"),
        t,
        &json!({"sku": "VPLAIN-2", "options": {"Size": "M"}}),
    )
    .await
    .assert_problem(422, "validation_failed");
    app.stop().await;
});

both_backends!(variant_input_is_validated, |app| {
    let admin = app.admin().await;
    let t = Some(admin.access_token.as_str());
    let base = json!({"sku": "VAL", "name": "Tee", "price": eur(1900)});
    let with = |extra: Value| {
        let mut body = base.clone();
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    };
    let size = json!([{"name": "Size", "values": ["S", "M"]}]);
    let cases = [
        (
            with(json!({"variants": [{"sku": "VAL-S", "options": {"Size": "S"}}]})),
            "variants",
        ),
        (
            with(
                json!({"options": size, "variants": [{"sku": "VAL-X", "options": {"Size": "XL"}}]}),
            ),
            "variants[0].options.Size",
        ),
        (
            with(
                json!({"options": size, "variants": [{"sku": "VAL-S", "options": {"Size": "S", "Fit": "Slim"}}]}),
            ),
            "variants[0].options",
        ),
        (
            with(json!({"options": size, "variants": [
                {"sku": "VAL-S", "options": {"Size": "S"}},
                {"sku": "VAL-S", "options": {"Size": "M"}}
            ]})),
            "variants[1].sku",
        ),
        (with(json!({"options": size, "variants": []})), "variants"),
        (
            with(json!({"options": [{"name": "Size", "values": []}], "variants": []})),
            "options[0].values",
        ),
        (
            with(json!({"options": [{"name": "Size", "values": ["S", "s"]}], "variants": []})),
            "options[0].values[1]",
        ),
    ];
    for (body, field) in cases {
        let res = app.post("/api/v1/catalog/products", t, &body).await;
        res.assert_problem(422, "validation_failed");
        let fields = res.error_fields();
        assert!(fields.contains(&field), "{body}: {fields:?}");
    }
    // Nothing was stored.
    app.get("/api/v1/catalog/products?q=tee", None).await.body["items"]
        .as_array()
        .map(|a| assert!(a.is_empty()))
        .unwrap();
    app.stop().await;
});

both_backends!(
    fifty_concurrent_reservations_of_one_variant_reserve_exactly_ten,
    |app| {
        let admin = app.admin().await;
        let (product, ids) = tee(&app, &admin.access_token, "RTEE").await;
        let id = product["id"].as_str().unwrap().to_owned();
        let (m, s) = (id_of(&ids, "M"), id_of(&ids, "S"));
        set_variant_stock(&app, &admin.access_token, &id, m, 10).await;
        set_variant_stock(&app, &admin.access_token, &id, s, 10).await;
        let seen = app
            .observe(&["catalog.stock_reserved", "catalog.stock_rejected"])
            .await;
        let orders: Vec<bus::Envelope> = (0..50).map(|_| order_placed(&[(&id, m, 1)]).1).collect();
        publish_and_await_outcomes(&app, &orders, &seen).await;
        assert_eq!(seen.of_type("catalog.stock_reserved").len(), 10);
        assert_eq!(
            variant_stock(&app, &id, m).await,
            json!({"product_id": m, "on_hand": 10, "reserved": 10, "available": 0})
        );
        // The other size was not touched.
        assert_eq!(variant_stock(&app, &id, s).await["reserved"], 0);
        let rejected: catalog_contracts::StockRejected =
            seen.of_type("catalog.stock_rejected")[0].open().unwrap();
        assert_eq!(rejected.short_lines[0].product_id.to_string(), m);
        app.stop().await;
    }
);

both_backends!(variants_are_released_and_dispatched_one_by_one, |app| {
    let admin = app.admin().await;
    let (product, ids) = tee(&app, &admin.access_token, "DTEE").await;
    let id = product["id"].as_str().unwrap().to_owned();
    let (m, s, l) = (id_of(&ids, "M"), id_of(&ids, "S"), id_of(&ids, "L"));
    for v in [m, s, l] {
        set_variant_stock(&app, &admin.access_token, &id, v, 5).await;
    }
    let seen = app
        .observe(&["catalog.stock_reserved", "catalog.stock_released"])
        .await;

    // Two sizes held, then released on cancellation: each gets its own units back.
    let (order, placed) = order_placed(&[(&id, m, 2), (&id, s, 1)]);
    app.bus.publish(&placed).await.unwrap();
    app.eventually("reservation", 10, || async {
        (seen.of_type("catalog.stock_reserved").len() == 1).then_some(())
    })
    .await;
    assert_eq!(variant_stock(&app, &id, m).await["reserved"], 2);
    assert_eq!(variant_stock(&app, &id, s).await["reserved"], 1);
    assert_eq!(variant_stock(&app, &id, l).await["reserved"], 0);
    app.bus.publish(&cancelled(order)).await.unwrap();
    app.eventually("release", 10, || async {
        (seen.of_type("catalog.stock_released").len() == 1).then_some(())
    })
    .await;
    let released: catalog_contracts::StockReleased =
        seen.of_type("catalog.stock_released")[0].open().unwrap();
    let mut lines: Vec<(String, u32)> = released
        .lines
        .iter()
        .map(|l| (l.product_id.to_string(), l.quantity))
        .collect();
    lines.sort();
    let mut expected = vec![(m.to_owned(), 2), (s.to_owned(), 1)];
    expected.sort();
    assert_eq!(lines, expected);
    assert_eq!(variant_stock(&app, &id, m).await["reserved"], 0);

    // Dispatched: the large ones leave on_hand, the others stay.
    let (shipped, placed) = order_placed(&[(&id, l, 3)]);
    app.bus.publish(&placed).await.unwrap();
    app.eventually("second reservation", 10, || async {
        (seen.of_type("catalog.stock_reserved").len() == 2).then_some(())
    })
    .await;
    app.bus
        .publish(&envelope(&shipping_contracts::ShipmentDispatched {
            shipment_id: kernel::id::ShipmentId::new(),
            order_id: shipped,
            customer_id: kernel::id::UserId::new(),
            tracking_number: "T".into(),
            lines: vec![],
            dispatched_at: kernel::Timestamp::now(),
        }))
        .await
        .unwrap();
    app.eventually("dispatch", 10, || async {
        (variant_stock(&app, &id, l).await["on_hand"] == 2).then_some(())
    })
    .await;
    assert_eq!(
        variant_stock(&app, &id, l).await,
        json!({"product_id": l, "on_hand": 2, "reserved": 0, "available": 2})
    );
    assert_eq!(variant_stock(&app, &id, m).await["on_hand"], 5);
    assert_eq!(variant_stock(&app, &id, s).await["on_hand"], 5);
    app.stop().await;
});

every_topology!(a_variant_is_chosen_bought_and_shipped, |app| {
    let admin = app.admin().await;
    let (product, ids) = tee(&app, &admin.access_token, "BTEE").await;
    let id = product["id"].as_str().unwrap().to_owned();
    let (m, l) = (id_of(&ids, "M"), id_of(&ids, "L"));
    set_variant_stock(&app, &admin.access_token, &id, l, 4).await;
    let other = app.product(&admin.access_token, "BPLAIN", 500, 3).await;
    let seen = app.observe(&["ordering.order_placed"]).await;
    let c = app.customer().await;
    let add = |body: Value| {
        let (app, token) = (&app, c.access_token.clone());
        async move {
            app.post("/api/v1/ordering/cart/items", Some(&token), &body)
                .await
        }
    };
    // Ordering learns the variants from catalog's event.
    let line = app
        .eventually("ordering knows the variants", 10, || async {
            let res = add(json!({"product_id": id, "variant_id": l, "quantity": 2})).await;
            (res.status == 200).then_some(res.body)
        })
        .await;
    let item = &line["items"][0];
    assert_eq!(item["product_id"], id.as_str());
    assert_eq!(item["variant_id"], l);
    assert_eq!(item["sku"], "BTEE-L");
    assert_eq!(item["name"], "Organic tee (L / Navy)");
    assert_eq!(item["unit_price"], eur(2100));
    // The product itself is not sold: a variant must be chosen, and of this product.
    add(json!({"product_id": id, "quantity": 1}))
        .await
        .assert_problem(422, "validation_failed");
    add(json!({"product_id": other, "variant_id": m, "quantity": 1}))
        .await
        .assert_problem(422, "validation_failed");

    let placed = app.checkout(&c.access_token, "tok_visa", None).await;
    placed.assert_status(202);
    let order_id = placed.body["id"].as_str().unwrap().to_owned();
    let order = app
        .order_reaches(&c.access_token, &order_id, "confirmed")
        .await;
    let line = &order["lines"][0];
    assert_eq!(line["product_id"], id.as_str());
    assert_eq!(line["variant_id"], l);
    assert_eq!(line["unit_price"], eur(2100));
    assert_eq!(order["subtotal"], eur(4200));
    // Paid: the variant's units are held until dispatch, the others untouched.
    assert_eq!(
        variant_stock(&app, &id, l).await,
        json!({"product_id": l, "on_hand": 4, "reserved": 2, "available": 2})
    );
    assert_eq!(variant_stock(&app, &id, m).await["reserved"], 0);
    // The published line names the product and its variant.
    let event: ordering_contracts::OrderPlaced =
        seen.of_type("ordering.order_placed")[0].open().unwrap();
    assert_eq!(event.lines[0].product_id.to_string(), id);
    assert_eq!(
        event.lines[0].variant_id.map(|v| v.to_string()).as_deref(),
        Some(l)
    );
    app.stop().await;
});

/// A catalog database as the release before variants left it: a product with stock, three
/// units held for an order.
async fn before_variants(
    backend: platform::testing::TestBackend,
) -> Option<(
    tempfile::TempDir,
    Option<String>,
    String,
    kernel::id::OrderId,
)> {
    use emporium::config::{Config, ContextName};
    let dir = tempfile::tempdir().ok()?;
    let mut config = Config::local(dir.path().to_path_buf());
    if backend == platform::testing::TestBackend::Postgres {
        let admin = platform::testing::postgres_url()?;
        config.database_url = Some(
            platform::testing::fresh_postgres_database(&admin)
                .await
                .unwrap(),
        );
    }
    let db =
        platform::db::Database::connect(&emporium::contexts::target(&config, ContextName::Catalog))
            .await
            .unwrap();
    let early = tempfile::tempdir().unwrap();
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("migrations/catalog");
    for entry in std::fs::read_dir(&source).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name.as_str() < "0005" {
            std::fs::copy(&path, early.path().join(name)).unwrap();
        }
    }
    db.migrate(&sqlx::migrate::Migrator::new(early.path()).await.unwrap())
        .await
        .unwrap();
    let product = kernel::id::ProductId::new().to_string();
    let order = kernel::id::OrderId::new();
    let now = kernel::Timestamp::now().as_micros();
    let far = now + 3_600_000_000;
    for (sql, binds) in [
        (
            "insert into product (product_id, sku, name, description, price_amount, currency, category_id, status, revision, search_text, created_at, updated_at) \
             values ($1, 'OLD-MUG', 'Old mug', null, 1299, 'EUR', null, 'active', 1, 'old mug', $2, $2)",
            vec![product.clone()],
        ),
        (
            "insert into stock (product_id, on_hand, reserved, updated_at) values ($1, 10, 3, $2)",
            vec![product.clone()],
        ),
        (
            "insert into reservation (order_id, status, expires_at, created_at, updated_at) values ($1, 'held', $3, $2, $2)",
            vec![order.to_string()],
        ),
        (
            "insert into reservation_line (order_id, product_id, quantity) values ($1, $3, 3)",
            vec![order.to_string()],
        ),
    ] {
        let mut q = sqlx::query(sql).bind(binds[0].clone()).bind(now);
        if sql.contains("$3") {
            q = if sql.contains("reservation_line") {
                q.bind(product.clone())
            } else {
                q.bind(far)
            };
        }
        q.execute(db.pool()).await.unwrap();
    }
    Some((dir, config.database_url, product, order))
}

async fn products_from_before_variants_are_their_own_variant(
    backend: platform::testing::TestBackend,
) {
    let Some((dir, url, product, order)) = before_variants(backend).await else {
        return;
    };
    let app = crate::helpers::spawn_app_with(backend, |c| {
        c.data_dir = dir.path().to_path_buf();
        c.database_url = url;
    })
    .await
    .unwrap();
    let res = app
        .get(&format!("/api/v1/catalog/products/{product}"), None)
        .await;
    res.assert_status(200);
    assert_eq!(res.body["options"], json!([]));
    assert_eq!(
        res.body["variants"],
        json!([{"id": product, "sku": "OLD-MUG", "options": {}, "title": "", "price": eur(1299),
                "other_prices": [], "weight_grams": 0}])
    );
    let held = json!({"product_id": product, "on_hand": 10, "reserved": 3, "available": 7});
    assert_eq!(app.stock(&product).await, held);
    assert_eq!(variant_stock(&app, &product, &product).await, held);
    // The reservation made before the migration is released as it was held.
    app.bus.publish(&cancelled(order)).await.unwrap();
    app.eventually("the old reservation is released", 10, || async {
        (app.stock(&product).await["reserved"] == 0).then_some(())
    })
    .await;
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_from_before_variants_are_their_own_variant_on_sqlite() {
    products_from_before_variants_are_their_own_variant(platform::testing::TestBackend::Sqlite)
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn products_from_before_variants_are_their_own_variant_on_postgres() {
    products_from_before_variants_are_their_own_variant(platform::testing::TestBackend::Postgres)
        .await;
}

both_backends!(one_sku_names_one_thing_under_concurrent_writes, |app| {
    let admin = app.admin().await;
    let t = Some(admin.access_token.as_str());
    // Products and variants of other products all claim the same SKU at once.
    let attempts = (0..12).map(|i| {
        let body = if i % 2 == 0 {
            json!({"sku": "RACE-1", "name": "Plain", "price": eur(100)})
        } else {
            json!({"sku": format!("RACE-BASE-{i}"), "name": "Tee", "price": eur(100),
                   "options": [{"name": "Size", "values": ["M"]}],
                   "variants": [{"sku": "race-1", "options": {"Size": "M"}}]})
        };
        let app = &app;
        async move { app.post("/api/v1/catalog/products", t, &body).await }
    });
    let answers = futures::future::join_all(attempts).await;
    let created = answers.iter().filter(|r| r.status == 201).count();
    assert_eq!(
        created,
        1,
        "{:?}",
        answers.iter().map(|r| r.status).collect::<Vec<_>>()
    );
    for r in answers.iter().filter(|r| r.status != 201) {
        r.assert_problem(409, "catalog.duplicate_sku");
    }
    app.stop().await;
});
