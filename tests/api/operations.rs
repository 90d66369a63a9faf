//! Health, request ids, problem+json for everything, dead-letter admin.

use serde_json::json;

use crate::both_backends;

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
    let app = crate::helpers::spawn_app(kernel::testing::TestBackend::Sqlite)
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
