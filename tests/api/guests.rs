//! Guest checkout: a visitor opens a cart with a cart token, checks out with an email
//! address, is mailed the confirmation with a link carrying the order token, reads the order
//! with that token only, and finds the order in their history once they sign up and verify
//! the address.

use serde_json::{json, Value};

use crate::accounts::{mailed, verification_links};
use crate::helpers::{address, Response, TestApp};

async fn open_cart(app: &TestApp) -> String {
    let opened = app.post("/api/v1/ordering/carts", None, &json!({})).await;
    opened.assert_status(201);
    assert_eq!(opened.header("cache-control").as_deref(), Some("no-store"));
    assert!(opened.body["expires_at"].is_string(), "{}", opened.body);
    opened.body["cart_token"]
        .as_str()
        .unwrap_or_else(|| panic!("no cart token: {}", opened.body))
        .to_owned()
}

async fn as_guest(
    app: &TestApp,
    method: reqwest::Method,
    path: &str,
    (header, token): (&str, &str),
    body: Option<&Value>,
) -> Response {
    app.request(method, path, None, body, &[(header, token)])
        .await
}

fn checkout_body(email: Option<&str>) -> Value {
    let mut body = json!({"shipping_address": address(), "payment_token": "tok_visa"});
    if let Some(email) = email {
        body["email"] = json!(email);
    }
    body
}

crate::every_topology!(
    a_guest_buys_reads_the_order_by_its_token_and_claims_it_after_signing_up,
    |app| {
        use reqwest::Method;
        let admin = app.admin().await;
        let product = app.sellable(&admin.access_token, "GUEST-1", 1250, 10).await;
        let cart = open_cart(&app).await;
        let carted = as_guest(
            &app,
            Method::POST,
            "/api/v1/ordering/cart/items",
            ("X-Cart-Token", &cart),
            Some(&json!({"product_id": product, "quantity": 2})),
        )
        .await;
        carted.assert_status(200);
        assert_eq!(carted.body["items"].as_array().map(Vec::len), Some(1));
        let seen = as_guest(
            &app,
            Method::GET,
            "/api/v1/ordering/cart",
            ("X-Cart-Token", &cart),
            None,
        )
        .await;
        seen.assert_status(200);
        assert_eq!(seen.body["items"][0]["quantity"], 2);
        let quoted = as_guest(
            &app,
            Method::GET,
            "/api/v1/ordering/cart/quote?country=DE",
            ("X-Cart-Token", &cart),
            None,
        )
        .await;
        quoted.assert_status(200);

        // A guest must say where to mail them.
        as_guest(
            &app,
            Method::POST,
            "/api/v1/ordering/orders",
            ("X-Cart-Token", &cart),
            Some(&checkout_body(None)),
        )
        .await
        .assert_problem(422, "validation_failed");
        let email = format!("guest-{}@example.com", uuid::Uuid::new_v4().simple());
        let shouted = email.to_uppercase();
        let body = checkout_body(Some(&shouted));
        let headers = [
            ("X-Cart-Token", cart.as_str()),
            ("Idempotency-Key", "guest-1"),
        ];
        let placed = app
            .request(
                Method::POST,
                "/api/v1/ordering/orders",
                None,
                Some(&body),
                &headers,
            )
            .await;
        placed.assert_status(202);
        assert_eq!(placed.header("cache-control").as_deref(), Some("no-store"));
        let order = placed.body["id"].as_str().unwrap_or_default().to_owned();
        let token = placed.body["order_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert_eq!(token.len(), 43, "{}", placed.body);
        // A retry gets the same order and a token that works.
        let again = app
            .request(
                Method::POST,
                "/api/v1/ordering/orders",
                None,
                Some(&body),
                &headers,
            )
            .await;
        again.assert_status(202);
        assert_eq!(again.body["id"], order.as_str());
        assert_eq!(again.body["order_token"], token.as_str());

        // The order token reads the order; nothing else does.
        let path = format!("/api/v1/ordering/orders/{order}");
        let confirmed = app
            .eventually("the guest's order is confirmed", 60, || async {
                let res = as_guest(&app, Method::GET, &path, ("X-Order-Token", &token), None).await;
                (res.status == 200 && res.body["status"] == "confirmed").then_some(res.body)
            })
            .await;
        assert_eq!(confirmed["total"], quoted.body["total"], "{confirmed}");
        assert!(
            confirmed.get("order_token").is_none(),
            "shown once: {confirmed}"
        );
        let mut wrong = token.clone();
        wrong.replace_range(..1, if token.starts_with('A') { "B" } else { "A" });
        as_guest(&app, Method::GET, &path, ("X-Order-Token", &wrong), None)
            .await
            .assert_problem(404, "ordering.order_not_found");
        as_guest(&app, Method::GET, &path, ("X-Order-Token", "junk"), None)
            .await
            .assert_problem(404, "ordering.order_not_found");
        // Another guest order's token does not open this one.
        let other_order = format!("/api/v1/ordering/orders/{}", uuid::Uuid::new_v4());
        as_guest(
            &app,
            Method::GET,
            &other_order,
            ("X-Order-Token", &token),
            None,
        )
        .await
        .assert_problem(404, "ordering.order_not_found");
        // The cart token is not an order token.
        as_guest(&app, Method::GET, &path, ("X-Order-Token", &cart), None)
            .await
            .assert_problem(404, "ordering.order_not_found");
        let stranger = app.customer().await;
        app.get(&path, Some(&stranger.access_token))
            .await
            .assert_problem(404, "ordering.order_not_found");
        app.get(&path, None).await.assert_status(401);
        // A guest who has since signed in as someone else still opens it with its token.
        app.request(
            Method::GET,
            &path,
            Some(&stranger.access_token),
            None,
            &[("X-Order-Token", &token)],
        )
        .await
        .assert_status(200);
        app.get(&path, Some(&admin.access_token))
            .await
            .assert_status(200);

        // The confirmation goes to the address given, with the order's link.
        let links = mailed(&app, &email, "is confirmed", "?token=", 1).await;
        assert_eq!(links.as_slice(), std::slice::from_ref(&token));

        // Signing up with the address and proving it brings the order into the history.
        let password = "a-long-guest-password";
        app.sign_up(&email, password, "Guest Shopper")
            .await
            .assert_status(201);
        let session = app.log_in(&email, password).await;
        session.assert_status(200);
        let access = session.body["access_token"]
            .as_str()
            .unwrap_or_default()
            .to_owned();
        let history = app.get("/api/v1/identity/me/orders", Some(&access)).await;
        history.assert_status(200);
        assert_eq!(
            history.body["items"],
            json!([]),
            "not before the address is proved"
        );
        let verify = verification_links(&app, &email, 1).await;
        app.post(
            "/api/v1/identity/email-verifications/confirm",
            None,
            &json!({"token": verify[0]}),
        )
        .await
        .assert_status(204);
        let claimed = app
            .eventually("the guest order joins the history", 30, || async {
                let res = app.get("/api/v1/identity/me/orders", Some(&access)).await;
                let items = res.body["items"].as_array().cloned().unwrap_or_default();
                (items.len() == 1).then_some(items)
            })
            .await;
        assert_eq!(claimed[0]["order_id"], order.as_str());
        assert_eq!(claimed[0]["status"], "confirmed");
        // Nobody else's history holds it.
        let theirs = app
            .get("/api/v1/identity/me/orders", Some(&stranger.access_token))
            .await;
        assert_eq!(theirs.body["items"], json!([]));
    }
);

crate::both_backends!(
    guest_credentials_are_refused_when_unknown_or_doubled_and_a_bearer_wins,
    |app| {
        use reqwest::Method;
        let customer = app.customer().await;
        let cart = open_cart(&app).await;
        let other = open_cart(&app).await;
        assert_ne!(cart, other, "every cart has its own token");
        // An unknown or malformed cart token is not a cart.
        for bogus in [platform::secret::new_secret(), "short".to_owned()] {
            as_guest(
                &app,
                Method::GET,
                "/api/v1/ordering/cart",
                ("X-Cart-Token", &bogus),
                None,
            )
            .await
            .assert_problem(401, "ordering.cart_token_invalid");
        }
        // A token sent twice could be read two ways: refused.
        app.request(
            Method::GET,
            "/api/v1/ordering/cart",
            None,
            None,
            &[("X-Cart-Token", &cart), ("X-Cart-Token", &other)],
        )
        .await
        .assert_problem(400, "ambiguous_request");
        // A customer's checkout goes to the account's address: an `email` is refused.
        app.request(
            Method::POST,
            "/api/v1/ordering/orders",
            Some(&customer.access_token),
            Some(&checkout_body(Some("someone@example.com"))),
            &[],
        )
        .await
        .assert_problem(422, "validation_failed");
        // A bad address is refused before anything is placed.
        as_guest(
            &app,
            Method::POST,
            "/api/v1/ordering/orders",
            ("X-Cart-Token", &cart),
            Some(&checkout_body(Some("not an address"))),
        )
        .await
        .assert_problem(422, "validation_failed");
        // An empty guest cart is the customer's empty cart.
        as_guest(
            &app,
            Method::POST,
            "/api/v1/ordering/orders",
            ("X-Cart-Token", &cart),
            Some(&checkout_body(Some("guest@example.com"))),
        )
        .await
        .assert_problem(422, "ordering.cart_empty");
        // Two guests' carts are apart.
        let admin = app.admin().await;
        let product = app.sellable(&admin.access_token, "GUEST-2", 500, 5).await;
        as_guest(
            &app,
            Method::POST,
            "/api/v1/ordering/cart/items",
            ("X-Cart-Token", &cart),
            Some(&json!({"product_id": product, "quantity": 1})),
        )
        .await
        .assert_status(200);
        let theirs = as_guest(
            &app,
            Method::GET,
            "/api/v1/ordering/cart",
            ("X-Cart-Token", &other),
            None,
        )
        .await;
        assert_eq!(theirs.body["items"], json!([]));
    }
);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_guest_cart_stops_working_and_is_swept_with_its_lines_on_sqlite() {
    expiry_story(platform::testing::TestBackend::Sqlite).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_guest_cart_stops_working_and_is_swept_with_its_lines_on_postgres() {
    expiry_story(platform::testing::TestBackend::Postgres).await;
}

/// Guest carts living two seconds: the token stops working, and the sweep (twice per
/// lifetime) deletes the cart with its lines and currency.
async fn expiry_story(backend: platform::testing::TestBackend) {
    let Some(app) = crate::helpers::spawn_app_with(backend, |c| {
        c.guest_cart_ttl = std::time::Duration::from_secs(2);
    })
    .await
    else {
        return;
    };
    let admin = app.admin().await;
    let product = app.sellable(&admin.access_token, "GUEST-3", 700, 5).await;
    let cart = open_cart(&app).await;
    let added = as_guest(
        &app,
        reqwest::Method::POST,
        "/api/v1/ordering/cart/items",
        ("X-Cart-Token", &cart),
        Some(&json!({"product_id": product, "quantity": 3})),
    )
    .await;
    added.assert_status(200);
    let db = app.database(emporium::config::ContextName::Ordering).await;
    let rows = |sql: &'static str| {
        let db = db.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sql)
                .fetch_one(db.pool())
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        }
    };
    let guest_lines =
        "select count(*) from cart_item where customer_id in (select guest_id from guest_cart)";
    assert_eq!(rows(guest_lines).await, 1);
    app.eventually("the guest cart expires", 10, || async {
        let res = as_guest(
            &app,
            reqwest::Method::GET,
            "/api/v1/ordering/cart",
            ("X-Cart-Token", &cart),
            None,
        )
        .await;
        (res.status == 401).then_some(())
    })
    .await;
    app.eventually("the expired cart is swept", 10, || async {
        (rows("select count(*) from guest_cart").await == 0).then_some(())
    })
    .await;
    // Its lines went with it; the customers' carts were not touched.
    assert_eq!(rows("select count(*) from cart_currency where customer_id not in (select customer_id from cart_item)").await, 0);
    let left = rows("select count(*) from cart_item").await;
    assert_eq!(
        left, 1,
        "only the probe customer's line of `sellable` is left"
    );
}
