//! The OWASP API Security Top 10 (2023) access matrix, generated from `openapi/openapi.json`:
//! every operation with an id is called as the owner of the resource, as another customer,
//! anonymously and as an admin, and each answer is checked against the expected status. An
//! operation the table below does not classify fails the test (100% coverage). Mass
//! assignment: fields a client must not set (`roles`, `price`, `status`, `customer_id`, …)
//! are refused or have no effect. `docs/security.md` maps each Top 10 item to its defence.

use reqwest::Method;
use serde_json::{json, Value};

use crate::helpers::{address, spawn_app, Customer, TestApp};

const SPEC: &str = include_str!("../../openapi/openapi.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Who {
    /// The customer whose order, shipment and cart are used.
    Owner,
    /// Another signed-in customer.
    Other,
    Anonymous,
    Admin,
}

const EVERYONE: [Who; 4] = [Who::Owner, Who::Other, Who::Anonymous, Who::Admin];

/// The world every cell runs in.
struct World {
    owner: Customer,
    other: Customer,
    admin: Customer,
    product: String,
    /// The owner's confirmed order, and its shipment.
    order: String,
    shipment: String,
    tracking: String,
    /// The owner's welcome message.
    message: String,
}

impl World {
    fn token(&self, who: Who) -> Option<&str> {
        match who {
            Who::Owner => Some(&self.owner.access_token),
            Who::Other => Some(&self.other.access_token),
            Who::Admin => Some(&self.admin.access_token),
            Who::Anonymous => None,
        }
    }

    fn customer(&self, who: Who) -> Option<&Customer> {
        match who {
            Who::Owner => Some(&self.owner),
            Who::Other => Some(&self.other),
            Who::Admin => Some(&self.admin),
            Who::Anonymous => None,
        }
    }
}

/// One call: what to send, and the statuses that are right for it.
struct Cell {
    method: Method,
    path: String,
    body: Option<Value>,
    headers: Vec<(String, String)>,
    /// A form-encoded body, sent instead of `body`.
    form: Option<String>,
    expect: Vec<u16>,
}

fn cell(method: Method, path: impl Into<String>, body: Option<Value>, expect: &[u16]) -> Cell {
    Cell {
        method,
        path: path.into(),
        body,
        headers: Vec::new(),
        form: None,
        expect: expect.to_vec(),
    }
}

/// Signed in: `ok`; anonymous: 401.
fn signed_in(who: Who, ok: &[u16]) -> Vec<u16> {
    if who == Who::Anonymous {
        vec![401]
    } else {
        ok.to_vec()
    }
}

/// Admins: `ok`; customers: 403; anonymous: 401.
fn admin_only(who: Who, ok: &[u16]) -> Vec<u16> {
    match who {
        Who::Admin => ok.to_vec(),
        Who::Anonymous => vec![401],
        Who::Owner | Who::Other => vec![403],
    }
}

/// The owner and admins: `ok`; another customer: 404 (the resource does not exist for
/// them, so its existence does not leak); anonymous: 401.
fn owned(who: Who, ok: &[u16]) -> Vec<u16> {
    match who {
        Who::Owner | Who::Admin => ok.to_vec(),
        Who::Other => vec![404],
        Who::Anonymous => vec![401],
    }
}

/// The caller's own book (an address book): the owner only; even an admin does not reach
/// into a customer's.
fn own_only(who: Who, ok: &[u16]) -> Vec<u16> {
    match who {
        Who::Owner => ok.to_vec(),
        Who::Other | Who::Admin => vec![404],
        Who::Anonymous => vec![401],
    }
}

/// A new address in the owner's address book; its id.
async fn fresh_address(app: &TestApp, w: &World) -> String {
    let saved = app
        .post(
            "/api/v1/identity/me/addresses",
            Some(&w.owner.access_token),
            &json!({"address": address()}),
        )
        .await;
    saved.body["id"].as_str().unwrap_or_default().to_owned()
}

/// A new 1 % promotion code.
async fn new_code(app: &TestApp, w: &World) -> String {
    let code = unique("MX");
    app.post(
        "/api/v1/ordering/promotions",
        Some(&w.admin.access_token),
        &json!({"code": code, "percent_bps": 100}),
    )
    .await
    .assert_status(201);
    code
}

fn unique(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..12]
    )
}

/// A fresh confirmed order of `customer`, for cells that change it.
async fn fresh_order(app: &TestApp, w: &World, customer: &Customer) -> String {
    app.add_to_cart(&customer.access_token, &w.product, 1)
        .await
        .assert_status(200);
    let placed = app.checkout(&customer.access_token, "tok_visa", None).await;
    placed.assert_status(202);
    let id = placed.body["id"].as_str().unwrap_or_default().to_owned();
    app.order_reaches(&customer.access_token, &id, "confirmed")
        .await;
    id
}

async fn plan(app: &TestApp, w: &World, op: &str, who: Who) -> Cell {
    let p = &w.product;
    let me = w.customer(who);
    match op {
        // Public reads and the health checks: the same for everyone.
        "get_jwks" => cell(Method::GET, "/.well-known/jwks.json", None, &[200]),
        "health_live" => cell(Method::GET, "/health/live", None, &[200]),
        "health_ready" => cell(Method::GET, "/health/ready", None, &[200]),
        "list_categories" => cell(Method::GET, "/api/v1/catalog/categories", None, &[200]),
        "list_products" => cell(Method::GET, "/api/v1/catalog/products", None, &[200]),
        // Anyone may open a guest cart (the rate limit bounds how many).
        "create_cart" => cell(Method::POST, "/api/v1/ordering/carts", None, &[201]),
        // Only what Stripe signed is read: unsigned, it is refused whoever calls.
        "stripe_webhook" => cell(
            Method::POST,
            "/api/v1/ordering/webhooks/stripe",
            Some(json!({"id": "evt_1", "type": "charge.refunded"})),
            &[400],
        ),
        "get_product" => cell(
            Method::GET,
            format!("/api/v1/catalog/products/{p}"),
            None,
            &[200],
        ),
        "get_stock" => cell(
            Method::GET,
            format!("/api/v1/catalog/products/{p}/stock"),
            None,
            &[200],
        ),
        // A product without options is its own one variant.
        "get_variant_stock" => cell(
            Method::GET,
            format!("/api/v1/catalog/products/{p}/variants/{p}/stock"),
            None,
            &[200],
        ),
        "track_shipment" => cell(
            Method::GET,
            format!("/api/v1/shipping/tracking/{}", w.tracking),
            None,
            &[200],
        ),
        // Metrics are for operators (their listener or token), never for a user's token.
        "metrics" => cell(Method::GET, "/metrics", None, &[404]),
        // Sessions: what the body says decides, not who asks.
        "sign_up" => cell(
            Method::POST,
            "/api/v1/identity/users",
            Some(
                json!({"email": format!("{}@example.com", unique("m")), "password": "matrix-violet-anchor-7", "name": "Matrix"}),
            ),
            &[201],
        ),
        "log_in" => {
            let c = me.unwrap_or(&w.owner);
            cell(
                Method::POST,
                "/api/v1/identity/tokens",
                Some(json!({"email": c.email, "password": c.password})),
                &[200],
            )
        }
        "refresh_tokens" | "revoke_tokens" => {
            let c = me.unwrap_or(&w.owner);
            let fresh = app.log_in(&c.email, &c.password).await;
            let refresh = fresh.body["refresh_token"].as_str().unwrap_or_default();
            let (path, ok) = if op == "refresh_tokens" {
                ("/api/v1/identity/tokens/refresh", 200)
            } else {
                ("/api/v1/identity/tokens/revoke", 204)
            };
            cell(
                Method::POST,
                path,
                Some(json!({"refresh_token": refresh})),
                &[ok],
            )
        }
        // Password reset: public; a token nobody was mailed is refused alike for everyone.
        "request_password_reset" => {
            let c = me.unwrap_or(&w.owner);
            cell(
                Method::POST,
                "/api/v1/identity/password-resets",
                Some(json!({"email": c.email})),
                &[202],
            )
        }
        "confirm_password_reset" => cell(
            Method::POST,
            "/api/v1/identity/password-resets/confirm",
            Some(json!({"token": "never-issued-token", "password": "matrix-violet-anchor-8"})),
            &[400],
        ),
        // Email verification: a re-send and a change are the caller's own; a token nobody was
        // mailed is refused alike for everyone.
        "resend_email_verification" => cell(
            Method::POST,
            "/api/v1/identity/email-verifications",
            None,
            &signed_in(who, &[202]),
        ),
        "confirm_email_verification" => cell(
            Method::POST,
            "/api/v1/identity/email-verifications/confirm",
            Some(json!({"token": "never-issued-token"})),
            &[400],
        ),
        "change_email" => {
            let c = me.unwrap_or(&w.owner);
            cell(
                Method::POST,
                "/api/v1/identity/me/email",
                Some(
                    json!({"email": format!("{}@example.com", unique("moved")), "password": c.password}),
                ),
                &signed_in(who, &[202]),
            )
        }
        // The address book: each caller's own; another's address does not exist for them.
        "list_addresses" => cell(
            Method::GET,
            "/api/v1/identity/me/addresses",
            None,
            &signed_in(who, &[200]),
        ),
        "add_address" => cell(
            Method::POST,
            "/api/v1/identity/me/addresses",
            Some(json!({"address": address(), "is_default": true})),
            &signed_in(who, &[201]),
        ),
        "change_address" => {
            let id = fresh_address(app, w).await;
            cell(
                Method::PATCH,
                format!("/api/v1/identity/me/addresses/{id}"),
                Some(json!({"is_default": true})),
                &own_only(who, &[200]),
            )
        }
        "remove_address" => {
            let id = fresh_address(app, w).await;
            cell(
                Method::DELETE,
                format!("/api/v1/identity/me/addresses/{id}"),
                None,
                &own_only(who, &[204]),
            )
        }
        // The caller's own data: anyone signed in, nobody else's.
        "get_dashboard" => cell(
            Method::GET,
            "/api/v1/dashboard",
            None,
            &signed_in(who, &[200]),
        ),
        // A user's token (even an admin's) does not stand in for a client's credentials.
        "issue_service_token" => Cell {
            headers: vec![(
                "content-type".to_owned(),
                "application/x-www-form-urlencoded".to_owned(),
            )],
            form: Some("grant_type=client_credentials&audience=ordering".to_owned()),
            ..cell(Method::POST, "/api/v1/identity/oauth/token", None, &[401])
        },
        "get_me" => cell(
            Method::GET,
            "/api/v1/identity/me",
            None,
            &signed_in(who, &[200]),
        ),
        "update_me" => cell(
            Method::PATCH,
            "/api/v1/identity/me",
            Some(json!({"name": "Renamed"})),
            &signed_in(who, &[200]),
        ),
        "list_my_orders" => cell(
            Method::GET,
            "/api/v1/identity/me/orders",
            None,
            &signed_in(who, &[200]),
        ),
        "get_cart" => cell(
            Method::GET,
            "/api/v1/ordering/cart",
            None,
            &signed_in(who, &[200]),
        ),
        "add_cart_item" => cell(
            Method::POST,
            "/api/v1/ordering/cart/items",
            Some(json!({"product_id": p, "quantity": 1})),
            &signed_in(who, &[200]),
        ),
        "set_cart_item_quantity" | "remove_cart_item" => {
            if let Some(c) = me {
                app.add_to_cart(&c.access_token, p, 1)
                    .await
                    .assert_status(200);
            }
            let path = format!("/api/v1/ordering/cart/items/{p}");
            if op == "remove_cart_item" {
                cell(Method::DELETE, path, None, &signed_in(who, &[200]))
            } else {
                cell(
                    Method::PATCH,
                    path,
                    Some(json!({"quantity": 2})),
                    &signed_in(who, &[200]),
                )
            }
        }
        "list_orders" => cell(
            Method::GET,
            "/api/v1/ordering/orders",
            None,
            &signed_in(who, &[200]),
        ),
        "place_order" => {
            if let Some(c) = me {
                app.add_to_cart(&c.access_token, p, 1)
                    .await
                    .assert_status(200);
            }
            cell(
                Method::POST,
                "/api/v1/ordering/orders",
                Some(json!({"shipping_address": address(), "payment_token": "tok_visa"})),
                &signed_in(who, &[202]),
            )
        }
        "quote_cart" => {
            if let Some(c) = me {
                app.add_to_cart(&c.access_token, p, 1)
                    .await
                    .assert_status(200);
            }
            cell(
                Method::GET,
                "/api/v1/ordering/cart/quote?country=DE",
                None,
                &signed_in(who, &[200]),
            )
        }
        "apply_promotion" | "remove_promotion" => {
            let code = new_code(app, w).await;
            if let Some(c) = me {
                app.add_to_cart(&c.access_token, p, 1)
                    .await
                    .assert_status(200);
                if op == "remove_promotion" {
                    app.post(
                        "/api/v1/ordering/cart/promotion",
                        Some(&c.access_token),
                        &json!({"code": code}),
                    )
                    .await
                    .assert_status(200);
                }
            }
            if op == "remove_promotion" {
                cell(
                    Method::DELETE,
                    "/api/v1/ordering/cart/promotion",
                    None,
                    &signed_in(who, &[204]),
                )
            } else {
                cell(
                    Method::POST,
                    "/api/v1/ordering/cart/promotion",
                    Some(json!({"code": code})),
                    &signed_in(who, &[200]),
                )
            }
        }
        "create_promotion" => cell(
            Method::POST,
            "/api/v1/ordering/promotions",
            Some(json!({"code": unique("MX"), "percent_bps": 100})),
            &admin_only(who, &[201]),
        ),
        "list_promotions" => cell(
            Method::GET,
            "/api/v1/ordering/promotions",
            None,
            &admin_only(who, &[200]),
        ),
        "get_promotion" | "withdraw_promotion" => {
            let code = new_code(app, w).await;
            let method = if op == "get_promotion" {
                Method::GET
            } else {
                Method::DELETE
            };
            cell(
                method,
                format!("/api/v1/ordering/promotions/{code}"),
                None,
                &admin_only(who, &[200]),
            )
        }
        // Rates in USD and for countries the world's orders do not ship to: setting them
        // changes no other cell's order.
        "list_tax_rates" => cell(
            Method::GET,
            "/api/v1/ordering/tax-rates",
            None,
            &admin_only(who, &[200]),
        ),
        "put_tax_rates" => cell(
            Method::PUT,
            "/api/v1/ordering/tax-rates/NL",
            Some(json!({"standard_bps": 2100, "reduced_bps": 900})),
            &admin_only(who, &[200]),
        ),
        "delete_tax_rates" => {
            app.put(
                "/api/v1/ordering/tax-rates/BE",
                Some(&w.admin.access_token),
                &json!({"standard_bps": 2100, "reduced_bps": 600}),
            )
            .await
            .assert_status(200);
            cell(
                Method::DELETE,
                "/api/v1/ordering/tax-rates/BE",
                None,
                &admin_only(who, &[204]),
            )
        }
        "list_shipping_rates" => cell(
            Method::GET,
            "/api/v1/ordering/shipping-rates",
            None,
            &admin_only(who, &[200]),
        ),
        "put_shipping_rate" => cell(
            Method::PUT,
            "/api/v1/ordering/shipping-rates/NL/USD",
            Some(json!({"flat": 500})),
            &admin_only(who, &[200]),
        ),
        "delete_shipping_rate" => {
            app.put(
                "/api/v1/ordering/shipping-rates/BE/USD",
                Some(&w.admin.access_token),
                &json!({"flat": 500}),
            )
            .await
            .assert_status(200);
            cell(
                Method::DELETE,
                "/api/v1/ordering/shipping-rates/BE/USD",
                None,
                &admin_only(who, &[204]),
            )
        }
        "list_shipments" => cell(
            Method::GET,
            "/api/v1/shipping/shipments",
            None,
            &signed_in(who, &[200]),
        ),
        // One customer's resources: the owner and admins, nobody else.
        "get_order" => cell(
            Method::GET,
            format!("/api/v1/ordering/orders/{}", w.order),
            None,
            &owned(who, &[200]),
        ),
        "cancel_order" => {
            let id = fresh_order(app, w, &w.owner).await;
            cell(
                Method::POST,
                format!("/api/v1/ordering/orders/{id}/cancel"),
                None,
                &owned(who, &[200]),
            )
        }
        // The world's order is confirmed, not yet shipped: not returnable (409), for those
        // who may see it.
        "request_return" => cell(
            Method::POST,
            format!("/api/v1/ordering/orders/{}/returns", w.order),
            Some(json!({"lines": [{"variant_id": w.product, "quantity": 1}], "reason": "matrix"})),
            &owned(who, &[409]),
        ),
        // Admin steps of a return the order does not have: 404 for admins.
        "approve_return" | "reject_return" | "receive_return" => {
            let step = op.trim_end_matches("_return");
            let body = if step == "reject" {
                json!({"note": "matrix"})
            } else {
                json!({})
            };
            cell(
                Method::POST,
                format!(
                    "/api/v1/ordering/orders/{}/returns/{}/{step}",
                    w.order,
                    uuid::Uuid::now_v7()
                ),
                Some(body),
                &admin_only(who, &[404]),
            )
        }
        // A cent back on the world's confirmed order, for each admin call.
        "refund_order" => cell(
            Method::POST,
            format!("/api/v1/ordering/orders/{}/refunds", w.order),
            Some(json!({"amount": {"amount": 1, "currency": "EUR"}, "reason": "matrix"})),
            &admin_only(who, &[201]),
        ),
        "get_shipment" => cell(
            Method::GET,
            format!("/api/v1/shipping/shipments/{}", w.shipment),
            None,
            &owned(who, &[200]),
        ),
        // Admin operations: customers get 403.
        "list_dead_letters" => cell(
            Method::GET,
            "/api/v1/admin/dead-letters",
            None,
            &admin_only(who, &[200]),
        ),
        "replay_dead_letter" => cell(
            Method::POST,
            format!("/api/v1/admin/dead-letters/{}/replay", uuid::Uuid::now_v7()),
            None,
            &admin_only(who, &[404]),
        ),
        "admin_list_orders" => cell(
            Method::GET,
            "/api/v1/ordering/admin/orders",
            None,
            &admin_only(who, &[200]),
        ),
        "admin_order_summary" => cell(
            Method::GET,
            "/api/v1/ordering/admin/summary",
            None,
            &admin_only(who, &[200]),
        ),
        "admin_messaging" => cell(
            Method::GET,
            "/api/v1/admin/messaging",
            None,
            &admin_only(who, &[200]),
        ),
        "list_users" => cell(
            Method::GET,
            "/api/v1/identity/users",
            None,
            &admin_only(who, &[200]),
        ),
        "set_user_roles" => {
            let target = app.customer().await;
            cell(
                Method::PUT,
                format!("/api/v1/identity/users/{}/roles", target.id),
                Some(json!({"roles": ["customer", "admin"]})),
                &admin_only(who, &[200]),
            )
        }
        "create_category" => {
            let slug = unique("cat");
            cell(
                Method::POST,
                "/api/v1/catalog/categories",
                Some(json!({"name": "Matrix", "slug": slug})),
                &admin_only(who, &[201]),
            )
        }
        "create_product" => cell(
            Method::POST,
            "/api/v1/catalog/products",
            Some(
                json!({"sku": unique("SKU"), "name": "Matrix", "price": {"amount": 100, "currency": "EUR"}}),
            ),
            &admin_only(who, &[201]),
        ),
        "add_variant" => {
            let base = unique("MV");
            let created = app
                .post(
                    "/api/v1/catalog/products",
                    Some(&w.admin.access_token),
                    &json!({"sku": base, "name": "Matrix tee", "price": {"amount": 100, "currency": "EUR"},
                            "options": [{"name": "Size", "values": ["S"]}],
                            "variants": [{"sku": format!("{base}-S"), "options": {"Size": "S"}}]}),
                )
                .await;
            created.assert_status(201);
            cell(
                Method::POST,
                format!(
                    "/api/v1/catalog/products/{}/variants",
                    created.body["id"].as_str().unwrap_or_default()
                ),
                Some(json!({"sku": format!("{base}-M"), "options": {"Size": "M"}})),
                &admin_only(who, &[201]),
            )
        }
        "update_product" | "archive_product" | "set_stock" | "update_variant"
        | "set_variant_stock" => {
            let target = app
                .product(&w.admin.access_token, &unique("MX"), 100, 5)
                .await;
            match op {
                "update_product" => cell(
                    Method::PATCH,
                    format!("/api/v1/catalog/products/{target}"),
                    Some(json!({"name": "Changed"})),
                    &admin_only(who, &[200]),
                ),
                "archive_product" => cell(
                    Method::DELETE,
                    format!("/api/v1/catalog/products/{target}"),
                    None,
                    &admin_only(who, &[200]),
                ),
                "update_variant" => cell(
                    Method::PATCH,
                    format!("/api/v1/catalog/products/{target}/variants/{target}"),
                    Some(json!({"weight_grams": 5})),
                    &admin_only(who, &[200]),
                ),
                "set_variant_stock" => cell(
                    Method::PUT,
                    format!("/api/v1/catalog/products/{target}/variants/{target}/stock"),
                    Some(json!({"on_hand": 9})),
                    &admin_only(who, &[200]),
                ),
                _ => cell(
                    Method::PUT,
                    format!("/api/v1/catalog/products/{target}/stock"),
                    Some(json!({"on_hand": 9})),
                    &admin_only(who, &[200]),
                ),
            }
        }
        "record_carrier_event" => {
            let order = fresh_order(app, w, &w.other).await;
            let o = app
                .get(
                    &format!("/api/v1/ordering/orders/{order}"),
                    Some(&w.other.access_token),
                )
                .await;
            let shipment = o.body["shipment"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned();
            cell(
                Method::POST,
                format!("/api/v1/shipping/shipments/{shipment}/events"),
                Some(json!({"type": "dispatched"})),
                &admin_only(who, &[200]),
            )
        }
        // Notifications: my messages and preferences; deliveries are the admin's.
        "list_my_messages" => cell(
            Method::GET,
            "/api/v1/notifications/me",
            None,
            &signed_in(who, &[200]),
        ),
        "get_my_message" => cell(
            Method::GET,
            format!("/api/v1/notifications/me/{}", w.message),
            None,
            &owned(who, &[200]),
        ),
        "get_notification_preferences" => cell(
            Method::GET,
            "/api/v1/notifications/preferences",
            None,
            &signed_in(who, &[200]),
        ),
        "set_notification_preferences" => cell(
            Method::PUT,
            "/api/v1/notifications/preferences",
            Some(json!({"shipment_updates": true})),
            &signed_in(who, &[200]),
        ),
        "list_deliveries" => cell(
            Method::GET,
            "/api/v1/notifications/deliveries?status=failed",
            None,
            &admin_only(who, &[200]),
        ),
        "retry_delivery" => cell(
            Method::POST,
            format!("/api/v1/notifications/deliveries/{}/retry", w.message),
            None,
            // The welcome was sent: there is nothing to retry.
            &admin_only(who, &[409]),
        ),
        // Webhooks are the admins' alone. An id nobody made is 404 to an admin; a URL on
        // a name that cannot resolve (`.invalid`) is refused when made.
        "create_webhook_endpoint" => cell(
            Method::POST,
            "/api/v1/webhooks/endpoints",
            Some(
                json!({"url": "https://hooks.example.invalid/in", "event_types": ["ordering.order_paid"]}),
            ),
            &admin_only(who, &[422]),
        ),
        "list_webhook_endpoints" => cell(
            Method::GET,
            "/api/v1/webhooks/endpoints",
            None,
            &admin_only(who, &[200]),
        ),
        "get_webhook_endpoint" => cell(
            Method::GET,
            format!("/api/v1/webhooks/endpoints/{}", uuid::Uuid::now_v7()),
            None,
            &admin_only(who, &[404]),
        ),
        "update_webhook_endpoint" => cell(
            Method::PATCH,
            format!("/api/v1/webhooks/endpoints/{}", uuid::Uuid::now_v7()),
            Some(json!({"enabled": false})),
            &admin_only(who, &[404]),
        ),
        "delete_webhook_endpoint" => cell(
            Method::DELETE,
            format!("/api/v1/webhooks/endpoints/{}", uuid::Uuid::now_v7()),
            None,
            &admin_only(who, &[404]),
        ),
        "list_webhook_event_types" => cell(
            Method::GET,
            "/api/v1/webhooks/event-types",
            None,
            &admin_only(who, &[200]),
        ),
        "list_webhook_deliveries" => cell(
            Method::GET,
            "/api/v1/webhooks/deliveries?status=failed",
            None,
            &admin_only(who, &[200]),
        ),
        "get_webhook_delivery" => cell(
            Method::GET,
            format!("/api/v1/webhooks/deliveries/{}", uuid::Uuid::now_v7()),
            None,
            &admin_only(who, &[404]),
        ),
        "replay_webhook_delivery" => cell(
            Method::POST,
            format!(
                "/api/v1/webhooks/deliveries/{}/replay",
                uuid::Uuid::now_v7()
            ),
            None,
            &admin_only(who, &[404]),
        ),
        other => panic!("operation {other} is not in the access matrix: classify it"),
    }
}

fn operations() -> Vec<String> {
    let spec: Value = serde_json::from_str(SPEC).unwrap_or_else(|e| panic!("{e}"));
    let mut ids: Vec<String> = spec["paths"]
        .as_object()
        .map(|paths| {
            paths
                .values()
                .filter_map(Value::as_object)
                .flat_map(|item| item.values())
                .filter_map(|op| op["operationId"].as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_operation_answers_each_kind_of_caller_as_the_matrix_says() {
    let app = spawn_app(platform::testing::TestBackend::Sqlite)
        .await
        .expect("sqlite app");
    let admin = app.admin().await;
    let product = app
        .sellable(&admin.access_token, "MATRIX", 500, 10_000)
        .await;
    let owner = app.customer().await;
    let other = app.customer().await;
    let mut world = World {
        owner,
        other,
        admin,
        product,
        order: String::new(),
        shipment: String::new(),
        tracking: String::new(),
        message: String::new(),
    };
    world.order = fresh_order(&app, &world, &world.owner).await;
    let o = app
        .get(
            &format!("/api/v1/ordering/orders/{}", world.order),
            Some(&world.owner.access_token),
        )
        .await;
    world.shipment = o.body["shipment"]["id"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    world.tracking = o.body["shipment"]["tracking_number"]
        .as_str()
        .unwrap_or_default()
        .to_owned();

    world.message = app
        .eventually("the owner's welcome is sent", 20, || async {
            let list = app
                .get("/api/v1/notifications/me", Some(&world.owner.access_token))
                .await;
            let first = &list.body["items"][0];
            (first["status"] == "sent").then(|| first["id"].as_str().unwrap_or_default().to_owned())
        })
        .await;

    let ops = operations();
    assert!(ops.len() >= 42, "{ops:?}");
    let mut failures = Vec::new();
    let mut cells = 0;
    for op in &ops {
        for who in EVERYONE {
            let c = plan(&app, &world, op, who).await;
            let headers: Vec<(&str, &str)> = c
                .headers
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let res = match &c.form {
                Some(form) => {
                    app.post_raw(
                        &c.path,
                        world.token(who),
                        "application/x-www-form-urlencoded",
                        form.clone().into_bytes(),
                    )
                    .await
                }
                None => {
                    app.request(
                        c.method.clone(),
                        &c.path,
                        world.token(who),
                        c.body.as_ref(),
                        &headers,
                    )
                    .await
                }
            };
            cells += 1;
            if !c.expect.contains(&res.status) {
                failures.push(format!(
                    "{op} as {who:?}: {} {} answered {} (expected {:?}): {}",
                    c.method, c.path, res.status, c.expect, res.body
                ));
            }
        }
    }
    eprintln!(
        "access matrix: {} operations x 4 callers = {cells} cells, {} wrong",
        ops.len(),
        failures.len()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    app.stop().await;
}

// Mass assignment: what only the server or an admin may set cannot be smuggled into a body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fields_a_client_must_not_set_are_refused_or_ignored() {
    let app = spawn_app(platform::testing::TestBackend::Sqlite)
        .await
        .expect("sqlite app");
    let admin = app.admin().await;
    let p = app.sellable(&admin.access_token, "MASS", 500, 100).await;
    let c = app.customer().await;
    let victim = app.customer().await;

    // Sign-up ignores `roles` (and anything else it does not know): a customer is a customer.
    let email = format!("{}@example.com", unique("mass"));
    let created = app
        .post(
            "/api/v1/identity/users",
            None,
            &json!({"email": email, "password": "mass-violet-anchor-7", "name": "M", "roles": ["admin"], "id": victim.id}),
        )
        .await;
    created.assert_status(201);
    assert_eq!(
        created.body["roles"],
        json!(["customer"]),
        "{}",
        created.body
    );
    assert_ne!(created.body["id"], json!(victim.id));

    // A profile change cannot carry roles or an email.
    app.patch(
        "/api/v1/identity/me",
        Some(&c.access_token),
        &json!({"name": "X", "roles": ["admin"]}),
    )
    .await
    .assert_status(422);
    app.patch(
        "/api/v1/identity/me",
        Some(&c.access_token),
        &json!({"email": victim.email}),
    )
    .await
    .assert_status(422);
    let me = app.get("/api/v1/identity/me", Some(&c.access_token)).await;
    assert_eq!(me.body["roles"], json!(["customer"]));
    assert_eq!(me.body["email"], json!(c.email));

    // A cart line cannot set its price; an order cannot set its status, owner or total.
    app.post(
        "/api/v1/ordering/cart/items",
        Some(&c.access_token),
        &json!({"product_id": p, "quantity": 1, "price": {"amount": 1, "currency": "EUR"}}),
    )
    .await
    .assert_status(422);
    app.add_to_cart(&c.access_token, &p, 1)
        .await
        .assert_status(200);
    for extra in [
        json!({"status": "paid"}),
        json!({"customer_id": victim.id}),
        json!({"total": {"amount": 1, "currency": "EUR"}}),
    ] {
        let mut body = json!({"shipping_address": address(), "payment_token": "tok_visa"});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        app.post("/api/v1/ordering/orders", Some(&c.access_token), &body)
            .await
            .assert_status(422);
    }

    // A product change cannot set its id, status or revision; stock cannot set `reserved`.
    for extra in [
        json!({"status": "archived"}),
        json!({"revision": 99}),
        json!({"id": victim.id}),
    ] {
        app.patch(
            &format!("/api/v1/catalog/products/{p}"),
            Some(&admin.access_token),
            &extra,
        )
        .await
        .assert_status(422);
    }
    app.put(
        &format!("/api/v1/catalog/products/{p}/stock"),
        Some(&admin.access_token),
        &json!({"on_hand": 100, "reserved": 0}),
    )
    .await
    .assert_status(422);
    let product = app
        .get(&format!("/api/v1/catalog/products/{p}"), None)
        .await;
    assert_eq!(product.body["status"], "active");
    app.stop().await;
}
