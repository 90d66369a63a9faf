//! Health, request ids, problem+json for everything, dead-letter admin.

use serde_json::json;

use crate::both_backends;
use crate::helpers::METRICS_TOKEN;

both_backends!(ready_checks_every_context_database_and_the_bus, |app| {
    let res = app.get("/health/ready", None).await;
    res.assert_status(200);
    for check in [
        "identity_database",
        "catalog_database",
        "ordering_database",
        "shipping_database",
        "bus_memory",
    ] {
        assert_eq!(res.body["checks"][check], "up", "{check}: {}", res.body);
    }
    app.get("/health/live", None).await.assert_status(200);
    app.stop().await;
});

both_backends!(a_request_id_is_echoed_or_generated, |app| {
    let res = app
        .request(
            reqwest::Method::GET,
            "/health/live",
            None,
            None,
            &[("x-request-id", "req-42")],
        )
        .await;
    assert_eq!(res.header("x-request-id").as_deref(), Some("req-42"));
    let res = app.get("/health/live", None).await;
    let generated = res.header("x-request-id").unwrap_or_default();
    assert_eq!(generated.len(), 36, "a UUID is generated: {generated}");
    // An unsafe id (spaces, control characters) is replaced, not echoed.
    let res = app
        .request(
            reqwest::Method::GET,
            "/health/live",
            None,
            None,
            &[("x-request-id", "a b")],
        )
        .await;
    assert_ne!(res.header("x-request-id").as_deref(), Some("a b"));
    app.stop().await;
});

both_backends!(unknown_routes_and_wrong_methods_are_problems, |app| {
    app.get("/api/v1/nothing-here", None)
        .await
        .assert_problem(404, "not_found");
    app.post("/health/live", None, &json!({}))
        .await
        .assert_problem(405, "method_not_allowed");
    app.stop().await;
});

both_backends!(dead_letters_need_an_admin, |app| {
    app.get("/api/v1/admin/dead-letters", None)
        .await
        .assert_problem(401, "unauthorized");
    app.get("/api/v1/admin/dead-letters", Some("not-a-token"))
        .await
        .assert_problem(401, "unauthorized");
    app.stop().await;
});

#[tokio::test]
async fn openapi_is_served_and_matches_the_committed_file() {
    let app = crate::helpers::spawn_app(platform::testing::TestBackend::Sqlite)
        .await
        .unwrap();
    let served = app.get("/openapi.json", None).await;
    served.assert_status(200);
    let generated = emporium::openapi::to_json().unwrap();
    let committed =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/openapi/openapi.json"))
            .unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/openapi.json is stale: run `cargo run -- openapi` and commit the result"
    );
    assert_eq!(
        served.body,
        serde_json::from_str::<serde_json::Value>(&generated).unwrap()
    );
    app.stop().await;
}

#[tokio::test]
async fn the_event_catalogue_is_served_and_matches_the_committed_file() {
    let app = crate::helpers::spawn_app(platform::testing::TestBackend::Sqlite)
        .await
        .unwrap();
    let served = app.get("/asyncapi.json", None).await;
    served.assert_status(200);
    app.stop().await;
    let generated = emporium::asyncapi::to_json().unwrap();
    let committed = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/openapi/asyncapi.json"
    ))
    .unwrap_or_default();
    assert!(
        committed == generated,
        "openapi/asyncapi.json is stale: run `cargo run -- openapi` and commit the result"
    );
    let doc: serde_json::Value = serde_json::from_str(&generated).unwrap();
    assert_eq!(doc["asyncapi"], "3.0.0");
    // Every event of the design's catalogue is described, with its payload schema.
    for event in [
        "identity.user_registered",
        "catalog.product_created",
        "catalog.stock_reserved",
        "catalog.stock_released",
        "ordering.order_placed",
        "ordering.order_cancelled",
        "ordering.order_status_changed",
        "shipping.shipment_created",
        "shipping.shipment_dispatched",
        "shipping.shipment_cancelled",
    ] {
        let channel = &doc["channels"][event];
        assert_eq!(channel["address"], event);
        assert_eq!(channel["bindings"]["amqp"]["is"], "routingKey");
        assert_eq!(channel["bindings"]["sns"]["name"], "{namespace}-events");
        let message = &doc["components"]["messages"][format!("{event}.v1")];
        // The payload is a named schema.
        let reference = message["payload"]["$ref"].as_str().unwrap_or_default();
        let name = reference
            .strip_prefix("#/components/schemas/")
            .unwrap_or_else(|| panic!("{event}: payload {}", message["payload"]));
        assert!(
            doc["components"]["schemas"][name]["properties"].is_object(),
            "{event} has no payload schema"
        );
    }
    assert_eq!(doc["servers"]["rabbitmq"]["protocol"], "amqp");
    assert_eq!(doc["servers"]["sns-sqs"]["protocol"], "sns");
    assert_eq!(served.body, doc);
}

#[tokio::test]
async fn interactive_docs_are_served_offline_from_the_binary() {
    let app = crate::helpers::spawn_app(platform::testing::TestBackend::Sqlite)
        .await
        .unwrap();
    let redirect = app.get("/docs", None).await;
    assert_eq!(redirect.status, 308);
    let page = app
        .client
        .get(format!("{}/docs/", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status().as_u16(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("swagger-ui"), "{html}");
    assert!(
        !html.contains("https://"),
        "the page loads nothing from the internet"
    );
    let bundle = app
        .client
        .get(format!("{}/docs/swagger-ui-bundle.js", app.address))
        .send()
        .await
        .unwrap();
    assert_eq!(bundle.status().as_u16(), 200);
    let init = app
        .client
        .get(format!("{}/docs/swagger-initializer.js", app.address))
        .send()
        .await
        .unwrap();
    assert!(init.text().await.unwrap().contains("/openapi.json"));
    app.stop().await;
}

#[tokio::test]
async fn bodies_over_the_limit_are_413() {
    let app = crate::helpers::spawn_app_with(platform::testing::TestBackend::Sqlite, |c| {
        c.body_limit = 4096
    })
    .await
    .unwrap();
    let big = format!(
        r#"{{"email":"a@b.cd","password":"{}","name":"x"}}"#,
        "x".repeat(10_000)
    );
    app.post_raw(
        "/api/v1/identity/users",
        None,
        "application/json",
        big.into_bytes(),
    )
    .await
    .assert_problem(413, "payload_too_large");
    app.stop().await;
}

#[tokio::test]
async fn each_client_address_is_rate_limited_with_retry_after() {
    let app = crate::helpers::spawn_app_with(platform::testing::TestBackend::Sqlite, |c| {
        c.rate_limit = true;
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = 5;
    })
    .await
    .unwrap();
    let mut limited = None;
    for _ in 0..20 {
        let res = app.get("/api/v1/catalog/categories", None).await;
        if res.status == 429 {
            limited = Some(res);
            break;
        }
    }
    let res = limited.expect("no 429 after 20 quick requests with a burst of 5");
    res.assert_problem(429, "rate_limited");
    let retry: u64 = res.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1);
    app.stop().await;
}

#[tokio::test]
async fn cors_allows_only_configured_origins() {
    let app = crate::helpers::spawn_app_with(platform::testing::TestBackend::Sqlite, |c| {
        c.cors_origins = vec!["https://shop.example".to_owned()];
    })
    .await
    .unwrap();
    let preflight = |origin: &'static str| {
        app.client
            .request(
                reqwest::Method::OPTIONS,
                format!("{}/api/v1/catalog/products", app.address),
            )
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .send()
    };
    let ok = preflight("https://shop.example").await.unwrap();
    assert_eq!(
        ok.headers()
            .get("access-control-allow-origin")
            .and_then(|v| v.to_str().ok()),
        Some("https://shop.example")
    );
    let other = preflight("https://evil.example").await.unwrap();
    assert!(other.headers().get("access-control-allow-origin").is_none());
    app.stop().await;
}

both_backends!(metrics_are_exposed_for_prometheus, |app| {
    let admin = app.admin().await;
    let product = app.product(&admin.access_token, "METRIC", 100, 3).await;
    app.get(&format!("/api/v1/catalog/products/{product}"), None)
        .await
        .assert_status(200);
    app.eventually("ordering handles product_created", 10, || async {
        let text = app.get("/metrics", Some(METRICS_TOKEN)).await.body;
        let text = text.as_str().unwrap_or_default().to_owned();
        text.lines()
            .any(|l| {
                l.starts_with("emporium_events_handled_total{")
                    && l.contains("type=\"catalog.product_created\"")
                    && l.contains("outcome=\"handled\"")
            })
            .then_some(())
    })
    .await;
    // Not public: without the token (or with another) it does not exist.
    app.get("/metrics", None)
        .await
        .assert_problem(404, "not_found");
    app.get("/metrics", Some("test-metrics-token-0123456780"))
        .await
        .assert_problem(404, "not_found");
    let res = app.get("/metrics", Some(METRICS_TOKEN)).await;
    res.assert_status(200);
    assert!(res
        .header("content-type")
        .unwrap_or_default()
        .starts_with("text/plain; version=0.0.4"));
    let text = res.body.as_str().unwrap_or_default();
    // Requests are labelled by route pattern, never by the raw path with its id.
    assert!(
        text.lines()
            .any(|l| l.starts_with("emporium_http_requests_total{")
                && l.contains("route=\"/api/v1/catalog/products/{id}\"")
                && l.contains("status=\"200\"")),
        "{text}"
    );
    assert!(!text.contains(&product), "a raw id leaked into a label");
    assert!(text.contains("emporium_http_request_duration_seconds_bucket{"));
    assert!(text.contains("emporium_events_published_total{type=\"catalog.product_created\"}"));
    for ctx in ["identity", "catalog", "ordering", "shipping"] {
        assert!(
            text.contains(&format!("emporium_outbox_unsent{{context=\"{ctx}\"}}")),
            "{ctx}"
        );
        assert!(
            text.contains(&format!("emporium_dead_letters_open{{context=\"{ctx}\"}}")),
            "{ctx}"
        );
    }
    app.stop().await;
});

// SIGTERM: the server stops accepting, finishes the requests in flight, stops the relays and
// the bus, closes the databases, and exits 0.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_finishes_requests_in_flight_then_exits_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) =
        ready_process(dir.path(), &[("EMPORIUM_SHUTDOWN_TIMEOUT_SECS", "20")]).await;
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(64)
        .build()
        .unwrap();
    // Nine accounts, five log-ins each: the log-in throttle counts attempts before judging
    // them, so at most five per account and client address, and fifty per address, are in
    // flight at once.
    let mut emails = Vec::new();
    for _ in 0..9 {
        let email = format!("drain-{}@example.com", uuid::Uuid::new_v4().simple());
        let signed_up = client
            .post(format!("{base}/api/v1/identity/users"))
            .json(&json!({"email": email, "password": "slow-hash-violet-42", "name": "Drain"}))
            .send()
            .await
            .unwrap();
        assert_eq!(signed_up.status(), 201);
        emails.push(email);
    }

    // Open the connections first, then keep them busy with log-ins (argon2 takes a while).
    futures::future::join_all((0..45).map(|_| client.get(format!("{base}/health/live")).send()))
        .await;
    let log_ins = futures::future::join_all((0..45).map(|i| {
        let sent = client
            .post(format!("{base}/api/v1/identity/tokens"))
            .json(&json!({"email": emails[i % 9], "password": "slow-hash-violet-42"}))
            .send();
        async move { (sent.await, std::time::Instant::now()) }
    }));
    let pid = server.pid().unwrap();
    let terminate = async {
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        let sent = std::process::Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .unwrap();
        assert!(sent.success());
        std::time::Instant::now()
    };
    let (results, terminated) = tokio::join!(log_ins, terminate);
    assert!(
        results.iter().any(|(_, done)| *done > terminated),
        "no request was still in flight at SIGTERM: the test proves nothing"
    );
    for (r, _) in results {
        let r = r.unwrap_or_else(|e| panic!("a request in flight was dropped: {e}"));
        assert_eq!(r.status(), 200);
    }
    let status = tokio::task::spawn_blocking(move || {
        let status = server.wait_exit(20);
        (status, server.log_text())
    })
    .await
    .unwrap();
    let (status, log) = status;
    assert!(
        status.is_some_and(|s| s.success()),
        "exit {status:?}\n{log}"
    );
    assert!(log.contains("shutdown complete"), "{log}");
    assert!(
        reqwest::get(format!("{base}/health/live")).await.is_err(),
        "nothing listens after exit"
    );
}

/// A process of the binary under test, with `env`, that has answered `/health/ready`.
pub(crate) async fn ready_process(
    dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> (crate::split::Process, String) {
    // Port 0: the server picks a free port and logs it.
    let mut env: std::collections::BTreeMap<String, String> = [
        ("EMPORIUM_LISTEN", "127.0.0.1:0"),
        ("EMPORIUM_LOG_FORMAT", "json"),
        ("EMPORIUM_DATA_DIR", &dir.join("data").display().to_string()),
        ("EMPORIUM_RATE_LIMIT", "off"),
        ("RUST_LOG", "info"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    for (k, v) in extra {
        env.insert((*k).to_owned(), (*v).to_owned());
    }
    let mut server = crate::split::Process::new("monolith", &["serve"], env, dir.join("log"));
    server.start();
    for _ in 0..600 {
        if let Some(port) = server.listening_port() {
            let base = format!("http://127.0.0.1:{port}");
            if reqwest::get(format!("{base}/health/ready"))
                .await
                .is_ok_and(|r| r.status().is_success())
            {
                return (server, base);
            }
        }
        if !server.running() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    panic!("the server did not become ready\n{}", server.log_text());
}

/// Without the `otlp` feature, asking for trace export is a configuration error, not a
/// silently ignored setting.
#[cfg(not(feature = "otlp"))]
#[test]
fn an_otlp_endpoint_needs_a_binary_built_with_trace_export() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_emporium"))
        .arg("serve")
        .env("EMPORIUM_DATA_DIR", dir.path())
        .env("EMPORIUM_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("EMPORIUM_OTLP_ENDPOINT"), "{stderr}");
}

// Traces: a request continues the caller's trace, and the event it publishes is handled in a
// span of the same trace, child of the request's span (the envelope carries the context).
#[cfg(feature = "otlp")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_reach_the_collector_and_follow_the_trace_across_the_bus() {
    let collector = crate::collector::Collector::start();
    let dir = tempfile::tempdir().unwrap();
    let (mut server, base) = ready_process(
        dir.path(),
        &[
            ("EMPORIUM_OTLP_ENDPOINT", collector.endpoint.as_str()),
            // Spans are traced whatever the log level.
            ("RUST_LOG", "warn,emporium::app=info"),
            ("EMPORIUM_BOOTSTRAP_ADMIN_EMAIL", "boss@example.com"),
            ("EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD", "root-of-all-trust-99"),
        ],
    )
    .await;
    let client = reqwest::Client::new();
    let token: serde_json::Value = client
        .post(format!("{base}/api/v1/identity/tokens"))
        .json(&json!({"email": "boss@example.com", "password": "root-of-all-trust-99"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let trace = uuid::Uuid::new_v4().simple().to_string();
    let caller_span = "00f067aa0ba902b7";
    let created = client
        .post(format!("{base}/api/v1/catalog/products"))
        .bearer_auth(token["access_token"].as_str().unwrap())
        .header("traceparent", format!("00-{trace}-{caller_span}-01"))
        .json(&json!({"sku": "TRACE-1", "name": "Traced", "price": {"amount": 100, "currency": "EUR"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 201);
    // Ordering handles catalog.product_created through the outbox and the bus.
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let pid = server.pid().unwrap();
    std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    let (status, log) =
        tokio::task::spawn_blocking(move || (server.wait_exit(20), server.log_text()))
            .await
            .unwrap();
    assert!(status.is_some_and(|s| s.success()), "{log}");
    let spans = collector.spans();
    collector.stop().await;
    assert!(
        spans.iter().all(|s| s["service"] == "emporium"),
        "one process, one service name"
    );
    let in_trace: Vec<&serde_json::Value> = spans
        .iter()
        .filter(|s| s["traceId"] == trace.as_str())
        .collect();
    let request = in_trace
        .iter()
        .find(|s| s["name"] == "http" && s["parentSpanId"] == caller_span)
        .unwrap_or_else(|| panic!("no request span continuing the caller's trace in {spans:#?}"));
    let handled = in_trace
        .iter()
        .find(|s| {
            s["name"] == "handle event"
                && s["attributes"].as_array().into_iter().flatten().any(|a| {
                    a["key"] == "event_type"
                        && a["value"]["stringValue"] == "catalog.product_created"
                })
        })
        .unwrap_or_else(|| panic!("the event's handling is not in the trace: {in_trace:#?}"));
    assert_eq!(handled["parentSpanId"], request["spanId"], "{handled:#}");
}

// With EMPORIUM_OPS_LISTEN, /metrics and the health checks are served on their own listener
// to anyone who can reach it; the public listener does not serve /metrics, and the
// operations listener serves nothing else.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_served_on_the_operations_listener_only() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = ready_process(dir.path(), &[("EMPORIUM_OPS_LISTEN", "127.0.0.1:0")]).await;
    let ops_port = server
        .ops_port()
        .unwrap_or_else(|| panic!("no operations listener\n{}", server.log_text()));
    let ops = format!("http://127.0.0.1:{ops_port}");
    let status = |url: String| async move {
        reqwest::get(url)
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(status(format!("{ops}/metrics")).await, 200);
    assert_eq!(status(format!("{ops}/health/ready")).await, 200);
    assert_eq!(status(format!("{ops}/api/v1/catalog/products")).await, 404);
    assert_eq!(status(format!("{base}/metrics")).await, 404);
    assert_eq!(status(format!("{base}/api/v1/catalog/products")).await, 200);
    drop(server);
}
