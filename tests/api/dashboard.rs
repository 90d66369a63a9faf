//! Service identities, the dashboard and the edge.
//!
//! - Identity issues client-credentials tokens for one audience; an endpoint for services
//!   only takes such a token for its own context and nothing else (401 for another audience,
//!   403 for a user's token).
//! - `GET /api/v1/dashboard` gathers profile, recent orders with shipments, and counts, in
//!   the monolith and through the gateway; a context that does not answer within the budget
//!   is named in `unavailable` and the rest still arrives.
//! - The gateway refuses a bad token itself, before anything is proxied.

use std::time::{Duration, Instant};

use base64::Engine;
use platform::testing::TestBackend;
use serde_json::Value;
use sha2::Digest;

use crate::helpers::{spawn_app_with, TestApp, METRICS_TOKEN};
use crate::split::{spawn_split_with, Broker};

const REPORTS_SECRET: &str = "reports-5f0c1d8e9a7b6c5d4e3f2a1b0c9d8e7f";
const NARROW_SECRET: &str = "narrow-0a1b2c3d4e5f60718293a4b5c6d7e8f9";

/// Posts a form to the token endpoint, with HTTP Basic client authentication if given.
async fn token_request(
    app: &TestApp,
    form: &str,
    basic: Option<(&str, &str)>,
    content_type: &str,
) -> (u16, reqwest::header::HeaderMap, Value) {
    let mut req = app
        .client
        .post(format!("{}/api/v1/identity/oauth/token", app.address))
        .header("content-type", content_type)
        .body(form.to_owned());
    if let Some((id, secret)) = basic {
        req = req.basic_auth(id, Some(secret));
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let body = res.json().await.unwrap_or(Value::Null);
    (status, headers, body)
}

const FORM: &str = "application/x-www-form-urlencoded";

fn claims(token: &str) -> Value {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(
        &base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(payload)
            .unwrap(),
    )
    .unwrap()
}

async fn service_token(app: &TestApp, audience: &str) -> String {
    let (status, _, body) = token_request(
        app,
        &format!("grant_type=client_credentials&audience={audience}&client_id=reports&client_secret={REPORTS_SECRET}"),
        None,
        FORM,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn service_tokens_name_one_audience_and_service_endpoints_take_nothing_else() {
    let app = spawn_app_with(TestBackend::Sqlite, |c| {
        c.service_clients = vec![
            identity::ServiceClient::with_secret(
                "reports",
                REPORTS_SECRET,
                vec!["ordering".into(), "shipping".into()],
            ),
            identity::ServiceClient::with_secret("narrow", NARROW_SECRET, vec!["ordering".into()]),
        ];
    })
    .await
    .unwrap();
    let admin = app.admin().await;
    let customer = app.customer().await;
    let product = app.sellable(&admin.access_token, "SVC-1", 1500, 10).await;
    let order = app
        .place_order(&customer.access_token, &product, 1, "tok_visa")
        .await;
    app.order_reaches(&customer.access_token, &order, "confirmed")
        .await;
    let counts_path = format!(
        "/internal/v1/ordering/customers/{}/order-counts",
        customer.id
    );

    // Form authentication; the token is for one audience, short-lived and not cached.
    let (status, headers, body) = token_request(
        &app,
        &format!("grant_type=client_credentials&audience=ordering&client_id=reports&client_secret={REPORTS_SECRET}"),
        None,
        FORM,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    let expires_in = body["expires_in"].as_u64().unwrap();
    assert!((1..=300).contains(&expires_in), "{body}");
    assert_eq!(headers["cache-control"], "no-store");
    let ordering_token = body["access_token"].as_str().unwrap().to_owned();
    let c = claims(&ordering_token);
    assert_eq!(
        (c["sub"].as_str(), c["aud"].as_str()),
        (Some("reports"), Some("ordering"))
    );

    // HTTP Basic authentication; a client with one audience need not name it.
    let (status, _, body) = token_request(
        &app,
        "grant_type=client_credentials",
        Some(("narrow", NARROW_SECRET)),
        FORM,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        claims(body["access_token"].as_str().unwrap())["aud"],
        "ordering"
    );

    // The service endpoint with the right token.
    let res = app.get(&counts_path, Some(&ordering_token)).await;
    res.assert_status(200);
    assert_eq!(res.body["total"], 1, "{}", res.body);
    assert_eq!(res.body["by_status"]["confirmed"], 1, "{}", res.body);

    // A token for another audience: 401. A user's token, even an admin's: 403. None: 401.
    let shipping_token = service_token(&app, "shipping").await;
    app.get(&counts_path, Some(&shipping_token))
        .await
        .assert_problem(401, "unauthorized");
    app.get(&counts_path, Some(&customer.access_token))
        .await
        .assert_problem(403, "forbidden");
    app.get(&counts_path, Some(&admin.access_token))
        .await
        .assert_problem(403, "forbidden");
    app.get(&counts_path, None)
        .await
        .assert_problem(401, "unauthorized");
    // Dead letters for services: a token for a context this process hosts, nothing else.
    app.get("/api/v1/admin/dead-letters", Some(&ordering_token))
        .await
        .assert_problem(401, "unauthorized");
    app.get(
        "/internal/v1/operations/dead-letters",
        Some(&ordering_token),
    )
    .await
    .assert_status(200);
    app.get(
        "/internal/v1/operations/dead-letters",
        Some(&admin.access_token),
    )
    .await
    .assert_problem(403, "forbidden");
    app.get("/internal/v1/operations/dead-letters", None)
        .await
        .assert_problem(401, "unauthorized");
    // A service token is not a user's: the public API refuses it.
    app.get("/api/v1/identity/me", Some(&ordering_token))
        .await
        .assert_problem(401, "unauthorized");
    app.get("/api/v1/ordering/orders", Some(&ordering_token))
        .await
        .assert_problem(401, "unauthorized");

    // Refusals, in RFC 6749's terms.
    let refusals: [Refusal; 7] = [
        (
            "grant_type=client_credentials&audience=ordering&client_id=reports&client_secret=guess",
            None,
            FORM,
            401,
            "invalid_client",
        ),
        (
            "grant_type=client_credentials&audience=ordering",
            Some(("nobody", REPORTS_SECRET)),
            FORM,
            401,
            "invalid_client",
        ),
        ("grant_type=client_credentials&audience=ordering", None, FORM, 401, "invalid_client"),
        (
            "grant_type=client_credentials&audience=identity",
            Some(("narrow", NARROW_SECRET)),
            FORM,
            400,
            "invalid_target",
        ),
        (
            "grant_type=client_credentials",
            Some(("reports", REPORTS_SECRET)),
            FORM,
            400,
            "invalid_request",
        ),
        (
            "grant_type=password&username=a&password=b",
            Some(("reports", REPORTS_SECRET)),
            FORM,
            400,
            "unsupported_grant_type",
        ),
        (
            &format!("grant_type=client_credentials&audience=ordering&client_id=reports&client_secret={REPORTS_SECRET}"),
            Some(("reports", REPORTS_SECRET)),
            FORM,
            400,
            "invalid_request",
        ),
    ];
    for (form, basic, content_type, status, code) in refusals {
        let (got, headers, body) = token_request(&app, form, basic, content_type).await;
        assert_eq!(
            (got, body["code"].as_str()),
            (status, Some(code)),
            "{form}: {body}"
        );
        // A refused client is told to authenticate with HTTP Basic (RFC 6749 §5.2).
        if got == 401 {
            assert_eq!(
                headers
                    .get("www-authenticate")
                    .and_then(|v| v.to_str().ok()),
                Some("Basic realm=\"emporium\""),
                "{form}"
            );
        }
    }
    // A refused access token is asked for again as a bearer token (RFC 6750 §3).
    let res = app.get("/api/v1/ordering/orders", None).await;
    res.assert_problem(401, "unauthorized");
    assert_eq!(
        res.header("www-authenticate").as_deref(),
        Some("Bearer realm=\"emporium\"")
    );
    let (got, _, _) = token_request(
        &app,
        r#"{"grant_type":"client_credentials"}"#,
        Some(("reports", REPORTS_SECRET)),
        "application/json",
    )
    .await;
    assert_eq!(got, 415);
    app.stop().await;
}

/// A form, its Basic credentials, its content type, and the status and code it gets.
type Refusal<'a> = (&'a str, Option<(&'a str, &'a str)>, &'a str, u16, &'a str);

fn check_dashboard(body: &Value, email: &str, orders: &[&str]) {
    assert_eq!(body["unavailable"], serde_json::json!([]), "{body}");
    assert_eq!(body["profile"]["email"], email, "{body}");
    let recent = body["recent_orders"].as_array().unwrap();
    let ids: Vec<&str> = recent.iter().map(|o| o["id"].as_str().unwrap()).collect();
    assert_eq!(ids, orders, "newest first, five at most: {body}");
    for order in recent {
        assert_eq!(order["status"], "confirmed", "{body}");
        assert_eq!(order["shipment"]["status"], "pending", "{body}");
        assert!(
            order["shipment"]["tracking_number"]
                .as_str()
                .is_some_and(|t| !t.is_empty()),
            "{body}"
        );
    }
}

#[tokio::test]
async fn the_dashboard_gathers_profile_recent_orders_with_shipments_and_counts() {
    let app = spawn_app_with(TestBackend::Sqlite, |_| {}).await.unwrap();
    let admin = app.admin().await;
    let customer = app.customer().await;
    app.get("/api/v1/dashboard", None)
        .await
        .assert_problem(401, "unauthorized");

    let empty = app
        .get("/api/v1/dashboard", Some(&customer.access_token))
        .await;
    empty.assert_status(200);
    assert_eq!(
        empty.header("cache-control").as_deref(),
        Some("private, no-store")
    );
    check_dashboard(&empty.body, &customer.email, &[]);
    assert_eq!(empty.body["counts"]["orders"], 0);

    let product = app.sellable(&admin.access_token, "DASH-1", 990, 50).await;
    let mut placed = Vec::new();
    for _ in 0..6 {
        let order = app
            .place_order(&customer.access_token, &product, 1, "tok_visa")
            .await;
        app.order_reaches(&customer.access_token, &order, "confirmed")
            .await;
        placed.push(order);
    }
    // The shipments exist once the orders are confirmed.
    let newest: Vec<&str> = placed.iter().rev().take(5).map(String::as_str).collect();
    let res = app
        .get("/api/v1/dashboard", Some(&customer.access_token))
        .await;
    res.assert_status(200);
    check_dashboard(&res.body, &customer.email, &newest);
    assert_eq!(res.body["counts"]["orders"], 6, "{}", res.body);
    assert_eq!(
        res.body["counts"]["orders_by_status"]["confirmed"], 6,
        "{}",
        res.body
    );
    assert_eq!(res.body["recent_orders"][0]["total"]["amount"], 990);

    // Another customer sees only their own.
    let other = app.customer().await;
    let theirs = app
        .get("/api/v1/dashboard", Some(&other.access_token))
        .await;
    check_dashboard(&theirs.body, &other.email, &[]);
    assert_eq!(theirs.body["counts"]["orders"], 0);
    app.stop().await;
}

fn sha256_hex(secret: &str) -> String {
    sha2::Sha256::digest(secret.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn gateway_metric(app: &TestApp, name: &str) -> f64 {
    let text = app
        .client
        .get(format!("{}/metrics", app.address))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with(name))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

// Split over RabbitMQ: the gateway serves the same dashboard, with a service identity of its
// own for the counts; identity stopped (SIGSTOP: connections open, nothing answers), the
// dashboard still answers within its budget, naming identity. A forged token stops at the
// gateway.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_serves_the_dashboard_and_names_a_context_that_does_not_answer() {
    let gateway_secret = "gateway-7c1e2d3f4a5b6c7d8e9f0a1b2c3d4e5f";
    let clients = format!("gateway:{}:ordering", sha256_hex(gateway_secret));
    let Some(mut app) = spawn_split_with(
        Broker::Rabbitmq,
        &[
            ("EMPORIUM_SERVICE_CLIENTS", clients.as_str()),
            ("EMPORIUM_SERVICE_CLIENT_ID", "gateway"),
            ("EMPORIUM_SERVICE_CLIENT_SECRET", gateway_secret),
            ("EMPORIUM_DASHBOARD_BUDGET_MS", "300"),
        ],
    )
    .await
    else {
        return;
    };
    let admin = app.admin().await;
    let customer = app.customer().await;
    let product = app
        .sellable(&admin.access_token, "GW-DASH-1", 1200, 10)
        .await;
    let order = app
        .place_order(&customer.access_token, &product, 1, "tok_visa")
        .await;
    app.order_reaches(&customer.access_token, &order, "confirmed")
        .await;
    let res = app
        .get("/api/v1/dashboard", Some(&customer.access_token))
        .await;
    res.assert_status(200);
    check_dashboard(&res.body, &customer.email, &[order.as_str()]);
    assert_eq!(res.body["counts"]["orders"], 1, "{}", res.body);

    // A token signed with another key is refused by the gateway itself.
    let refused_before = gateway_metric(&app, "emporium_gateway_tokens_refused_total").await;
    let forged = {
        let key = ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng);
        let der = ed25519_dalek::pkcs8::EncodePrivateKey::to_pkcs8_der(&key).unwrap();
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.kid = claims_kid(&customer.access_token);
        let mut c = claims(&customer.access_token);
        c["roles"] = serde_json::json!(["customer", "admin"]);
        jsonwebtoken::encode(
            &header,
            &c,
            &jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
        )
        .unwrap()
    };
    app.get("/api/v1/ordering/orders", Some(&forged))
        .await
        .assert_problem(401, "unauthorized");
    let refused_after = gateway_metric(&app, "emporium_gateway_tokens_refused_total").await;
    assert!(
        refused_after >= refused_before + 1.0,
        "{refused_before} -> {refused_after}"
    );

    // Identity stops answering: the rest arrives within the budget.
    let identity = app.deployment().process("identity").pid().unwrap();
    let signal = |sig: &str| {
        std::process::Command::new("kill")
            .args([sig, &identity.to_string()])
            .status()
            .unwrap()
    };
    assert!(signal("-STOP").success());
    let started = Instant::now();
    let res = app
        .get("/api/v1/dashboard", Some(&customer.access_token))
        .await;
    let took = started.elapsed();
    assert!(signal("-CONT").success());
    res.assert_status(200);
    assert_eq!(
        res.body["unavailable"],
        serde_json::json!(["identity"]),
        "{}",
        res.body
    );
    assert_eq!(res.body["profile"], Value::Null, "{}", res.body);
    assert_eq!(
        res.body["recent_orders"][0]["id"],
        order.as_str(),
        "{}",
        res.body
    );
    assert_eq!(
        res.body["counts"]["orders"], 1,
        "the service token was cached: {}",
        res.body
    );
    assert!(
        took < Duration::from_millis(300 + 700),
        "the budget is 300 ms; the dashboard took {took:?}"
    );
}

fn claims_kid(token: &str) -> Option<String> {
    jsonwebtoken::decode_header(token).ok()?.kid
}
