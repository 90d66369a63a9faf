//! State shared by every instance through Redis (`EMPORIUM_REDIS_URL`): a client's rate limit
//! and the log-in throttles hold across two instances (N, not 2N), and without Redis each
//! instance counts alone. Redis unreachable: reads keep flowing (the rate limit fails open),
//! log-ins are refused with 503 (the throttle fails closed), and both recover with Redis.
//! Needs `EMPORIUM_TEST_REDIS_URL` (required under `CI=true`).

use serde_json::json;

use crate::fault_proxy::{FaultProxy, Mode};
use crate::helpers::{spawn_app_with, TestApp};
use platform::testing::TestBackend;

fn redis() -> Option<String> {
    platform::testing::service_url("EMPORIUM_TEST_REDIS_URL")
}

/// Two instances of one deployment (same databases), rate limited at 1 a second with bursts
/// of `burst`, sharing Redis at `redis` when given.
async fn two_instances(redis: Option<String>, burst: u32) -> (TestApp, TestApp) {
    let namespace = format!("t{}", uuid::Uuid::new_v4().simple());
    let tweak = move |c: &mut emporium::config::Config| {
        c.rate_limit = true;
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = burst;
        c.redis_url = redis.clone();
        c.redis_namespace = namespace.clone();
    };
    let a = spawn_app_with(TestBackend::Sqlite, tweak.clone())
        .await
        .unwrap();
    let b = a.second_instance_with(tweak).await;
    (a, b)
}

/// Sends `n` reads alternating between the instances; how many were let through.
async fn reads_admitted(a: &TestApp, b: &TestApp, n: usize) -> usize {
    let mut admitted = 0;
    for i in 0..n {
        let app = if i % 2 == 0 { a } else { b };
        let res = app.get("/api/v1/catalog/categories", None).await;
        match res.status {
            200 => admitted += 1,
            429 => {}
            other => panic!("unexpected {other}: {}", res.body),
        }
    }
    admitted
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_holds_across_two_instances_with_redis() {
    let Some(url) = redis() else { return };
    let (a, b) = two_instances(Some(url), 10).await;
    let admitted = reads_admitted(&a, &b, 30).await;
    // A burst of 10, plus what one second at 1 a second refills while the requests run.
    assert!((10..=12).contains(&admitted), "{admitted} of 30 admitted");
    b.stop().await;
    a.stop().await;

    // Without Redis, each instance has a budget of its own: twice as many pass.
    let (a, b) = two_instances(None, 10).await;
    let admitted = reads_admitted(&a, &b, 30).await;
    assert!(admitted >= 20, "{admitted} of 30 admitted without Redis");
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn log_in_throttles_hold_across_instances_with_redis() {
    let Some(url) = redis() else { return };
    let (a, b) = two_instances(Some(url), 10_000).await;
    let customer = a.customer().await;
    let wrong = json!({"email": customer.email, "password": "not-the-password-77"});
    // Five failures per account and client address in 15 minutes, wherever they land.
    for i in 0..5 {
        let app = if i % 2 == 0 { &a } else { &b };
        app.post("/api/v1/identity/tokens", None, &wrong)
            .await
            .assert_status(401);
    }
    for app in [&a, &b] {
        let res = app.post("/api/v1/identity/tokens", None, &wrong).await;
        res.assert_status(429);
        assert!(res.header("retry-after").is_some());
    }
    b.stop().await;
    a.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_unreachable_reads_flow_log_ins_are_refused_and_both_recover() {
    let Some(url) = redis() else { return };
    let target = url
        .trim_start_matches("redis://")
        .split('/')
        .next()
        .unwrap()
        .to_owned();
    let proxy = FaultProxy::start(&target).await;
    let proxied = format!("redis://127.0.0.1:{}", proxy.port);
    let (a, b) = two_instances(Some(proxied), 10_000).await;
    let customer = a.customer().await;
    let right = json!({"email": customer.email, "password": customer.password});

    proxy.set(Mode::Refuse);
    for app in [&a, &b] {
        for _ in 0..20 {
            app.get("/api/v1/catalog/categories", None)
                .await
                .assert_status(200);
        }
        let res = app.post("/api/v1/identity/tokens", None, &right).await;
        res.assert_problem(503, "service_unavailable");
        assert!(res.header("retry-after").is_some());
    }
    // No answer at all is the same as no connection, within the call's time bound.
    proxy.set(Mode::Hold);
    let started = std::time::Instant::now();
    a.get("/api/v1/catalog/categories", None)
        .await
        .assert_status(200);
    assert!(started.elapsed() < std::time::Duration::from_secs(2));

    proxy.set(Mode::Pass);
    a.eventually("log-ins work again", 20, || async {
        (a.post("/api/v1/identity/tokens", None, &right).await.status == 200).then_some(())
    })
    .await;
    b.stop().await;
    a.stop().await;
}
