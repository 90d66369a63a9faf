//! A hostile client: floods, lock-outs, captured bootstrap accounts, undecodable input, slow
//! bodies and headers. Each test measures the resource it defends or the door it keeps shut.

use std::time::{Duration, Instant};

use base64::Engine;
use platform::testing::TestBackend;
use serde_json::json;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::both_backends;
use crate::helpers::{spawn_app_with, TestApp, BOOTSTRAP_ADMIN};

async fn log_in_from(app: &TestApp, email: &str, password: &str, client: &str) -> u16 {
    app.request(
        reqwest::Method::POST,
        "/api/v1/identity/tokens",
        None,
        Some(&json!({"email": email, "password": password})),
        &[("x-forwarded-for", client)],
    )
    .await
    .status
}

/// The app behind a trusted proxy (the test itself), so `X-Forwarded-For` names the client.
async fn behind_proxy(app: &TestApp) -> TestApp {
    app.second_instance_with(|c| {
        c.trusted_proxies =
            platform::client_ip::TrustedProxies::parse("127.0.0.1").unwrap_or_default();
    })
    .await
}

// Wrong passwords from one address slow that address down on that account; the owner,
// elsewhere, still signs in (before: 5 failures locked the account for everyone for 15
// minutes).
both_backends!(an_attacker_elsewhere_cannot_lock_the_owner_out, |app| {
    let proxied = behind_proxy(&app).await;
    let c = proxied.customer().await;
    let attacker = "203.0.113.9";
    for _ in 0..5 {
        assert_eq!(
            log_in_from(&proxied, &c.email, "wrong-password-123", attacker).await,
            401
        );
    }
    for _ in 0..3 {
        assert_eq!(
            log_in_from(&proxied, &c.email, "wrong-password-123", attacker).await,
            429
        );
    }
    // Even the right password from the attacker's address waits.
    assert_eq!(
        log_in_from(&proxied, &c.email, &c.password, attacker).await,
        429
    );
    assert_eq!(
        log_in_from(&proxied, &c.email, &c.password, "198.51.100.7").await,
        200
    );
    proxied.stop().await;
    app.stop().await;
});

// Checking and counting are one step: 30 wrong passwords at once for one account from one
// address get exactly 5 verdicts, the rest wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_wrong_passwords_cannot_exceed_the_limit() {
    let app = spawn_app_with(TestBackend::Sqlite, |_| {}).await.unwrap();
    let c = app.customer().await;
    let statuses =
        futures::future::join_all((0..30).map(|_| app.log_in(&c.email, "wrong-password-123")))
            .await;
    let judged = statuses.iter().filter(|r| r.status == 401).count();
    let waited = statuses.iter().filter(|r| r.status == 429).count();
    assert_eq!((judged, waited), (5, 25));
    app.stop().await;
}

// Sign-ups have their own per-client limit (on with the rate limit): an address cannot mint
// accounts (and argon2 hashes) without end.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sign_ups_are_limited_per_client_address() {
    let app = spawn_app_with(TestBackend::Sqlite, |c| {
        c.rate_limit = true;
        c.rate_limit_burst = 10_000;
        c.rate_limit_per_second = 10_000;
        c.sign_ups_per_client = 3;
    })
    .await
    .unwrap();
    for i in 0..3 {
        app.sign_up(
            &format!("s{i}-{}@example.com", uuid::Uuid::new_v4().simple()),
            "plum-anchor-violet-42",
            "S",
        )
        .await
        .assert_status(201);
    }
    let refused = app
        .sign_up(
            &format!("s4-{}@example.com", uuid::Uuid::new_v4().simple()),
            "plum-anchor-violet-42",
            "S",
        )
        .await;
    refused.assert_problem(429, "identity.too_many_sign_ups");
    assert!(refused.header("retry-after").is_some());
    // A taken email is refused before any hashing or counting.
    app.sign_up(BOOTSTRAP_ADMIN.0, "plum-anchor-violet-42", "S")
        .await
        .assert_problem(409, "identity.email_taken");
    app.stop().await;
}

// The last admin cannot take away its own admin role (stateful API testing did exactly
// that); with a second admin it can.
both_backends!(the_last_admin_keeps_the_admin_role, |app| {
    let boss = app.bootstrap_admin_token().await;
    let me = app.get("/api/v1/identity/me", Some(&boss)).await;
    let boss_id = me.body["id"].as_str().unwrap().to_owned();
    app.put(
        &format!("/api/v1/identity/users/{boss_id}/roles"),
        Some(&boss),
        &json!({"roles": ["customer"]}),
    )
    .await
    .assert_problem(409, "identity.last_admin");
    let other = app.admin().await;
    app.put(
        &format!("/api/v1/identity/users/{boss_id}/roles"),
        Some(&boss),
        &json!({"roles": ["customer"]}),
    )
    .await
    .assert_status(200);
    let other_id = other.id.clone();
    app.put(
        &format!("/api/v1/identity/users/{other_id}/roles"),
        Some(&other.access_token),
        &json!({"roles": ["customer"]}),
    )
    .await
    .assert_problem(409, "identity.last_admin");
    app.stop().await;
});

// Someone registers the address an operator will later name as bootstrap admin: the next
// start refuses to hand that account admin rights unless the configured password is its own.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bootstrap_admin_address_registered_by_someone_else_is_not_captured() {
    let app = spawn_app_with(TestBackend::Sqlite, |_| {}).await.unwrap();
    let email = format!("owner-{}@example.com", uuid::Uuid::new_v4().simple());
    app.sign_up(&email, "squatter-violet-anchor-1", "Squatter")
        .await
        .assert_status(201);
    let mut config = app.config.clone();
    config.bootstrap_admin = Some((email.clone(), "operator-chosen-secret-9".to_owned()));
    let refused = emporium::Application::build_with_bus(config.clone(), app.bus.clone()).await;
    let message = refused.err().map(|e| format!("{e:#}")).unwrap_or_default();
    assert!(
        message.contains("EMPORIUM_BOOTSTRAP_ADMIN_EMAIL"),
        "{message}"
    );
    assert!(message.contains("already exists"), "{message}");
    let tokens = app.log_in(&email, "squatter-violet-anchor-1").await;
    let token = tokens.body["access_token"].as_str().unwrap();
    app.get("/api/v1/identity/users", Some(token))
        .await
        .assert_status(403);
    // The account's own password proves the operator holds it.
    config.bootstrap_admin = Some((email.clone(), "squatter-violet-anchor-1".to_owned()));
    let owned = app.second_instance_with(|c| *c = config).await;
    let tokens = owned.log_in(&email, "squatter-violet-anchor-1").await;
    let token = tokens.body["access_token"].as_str().unwrap();
    owned
        .get("/api/v1/identity/users", Some(token))
        .await
        .assert_status(200);
    owned.stop().await;
    app.stop().await;
}

fn cursor(parts: &[&str]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(parts).unwrap())
}

// Input that does not decode is 400 with a problem, never a 500: cursors of the right
// shape with parts of the wrong kind, NUL characters (PostgreSQL cannot store them), and
// JSON arrays where an object is expected.
both_backends!(undecodable_input_is_400_never_500, |app| {
    let boss = app.bootstrap_admin_token().await;
    let c = app.customer().await;
    let two = cursor(&["x", "y"]);
    let one = cursor(&["x"]);
    let id = uuid::Uuid::now_v7().to_string();
    for path in [
        format!("/api/v1/catalog/products?cursor={two}"),
        format!(
            "/api/v1/catalog/products?sort=price&cursor={}",
            cursor(&["1x", &id])
        ),
        format!(
            "/api/v1/catalog/products?sort=name&cursor={}",
            cursor(&["a\u{0}", &id])
        ),
        format!("/api/v1/catalog/categories?cursor={}", cursor(&["a\u{1}b"])),
        format!("/api/v1/identity/users?cursor={one}"),
        format!("/api/v1/identity/me/orders?cursor={two}"),
        format!("/api/v1/ordering/orders?cursor={one}"),
        format!("/api/v1/shipping/shipments?cursor={one}"),
        format!("/api/v1/admin/dead-letters?cursor={one}"),
    ] {
        app.get(&path, Some(&boss))
            .await
            .assert_problem(400, "invalid_cursor");
    }
    // Well-formed cursors still work.
    app.get(
        &format!(
            "/api/v1/catalog/products?sort=name&cursor={}",
            cursor(&["Mug", &id])
        ),
        None,
    )
    .await
    .assert_status(200);
    app.get("/api/v1/catalog/products?q=mug%00cup", None)
        .await
        .assert_problem(400, "invalid_characters");
    app.post("/api/v1/identity/users", None, &json!({"email": "nul@example.com", "password": "plum-anchor-violet-42", "name": "a\u{0}b"}))
        .await
        .assert_problem(400, "invalid_characters");
    app.post(
        "/api/v1/catalog/categories",
        Some(&boss),
        &json!({"name": "Mugs\u{0}", "slug": "mugs"}),
    )
    .await
    .assert_problem(400, "invalid_characters");
    let array = app
        .request(
            reqwest::Method::PATCH,
            "/api/v1/identity/me",
            Some(&c.access_token),
            Some(&json!([null, null])),
            &[],
        )
        .await;
    array.assert_problem(400, "malformed_json");
    app.stop().await;
});

// 40 clients declare a 1 MB body and trickle it a byte a second; others send headers a
// byte at a time. Each is answered 408 and disconnected after its timeout instead of holding
// a connection (before: all still open after 60 s), and /health/live keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_bodies_and_slow_headers_are_cut_off() {
    let app = spawn_app_with(TestBackend::Sqlite, |c| {
        c.body_timeout = Duration::from_secs(2);
        c.header_timeout = Duration::from_secs(2);
    })
    .await
    .unwrap();
    let addr = format!("127.0.0.1:{}", app.port);
    let started = Instant::now();
    let slow_bodies = (0..40).map(|_| {
        let addr = addr.clone();
        tokio::spawn(async move {
            let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
            let head = "POST /api/v1/identity/users HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\ncontent-length: 1000000\r\n\r\n{";
            s.write_all(head.as_bytes()).await.unwrap();
            let (mut reader, mut writer) = s.into_split();
            let trickle = tokio::spawn(async move {
                for _ in 0..20 {
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    if writer.write_all(b" ").await.is_err() {
                        break;
                    }
                }
            });
            let mut answer = Vec::new();
            let _ = tokio::time::timeout(Duration::from_secs(15), reader.read_to_end(&mut answer)).await;
            trickle.abort();
            (String::from_utf8_lossy(&answer).into_owned(), started.elapsed())
        })
    })
    .collect::<Vec<_>>();
    let slow_headers = (0..10)
        .map(|_| {
            let addr = addr.clone();
            tokio::spawn(async move {
                let mut s = tokio::net::TcpStream::connect(&addr).await.unwrap();
                let head = b"GET /health/live HTTP/1.1\r\nhost: x\r\nx-slow: ";
                s.write_all(head).await.unwrap();
                for _ in 0..3 {
                    tokio::time::sleep(Duration::from_millis(900)).await;
                    let _ = s.write_all(b"a").await;
                }
                let mut answer = Vec::new();
                let _ =
                    tokio::time::timeout(Duration::from_secs(15), s.read_to_end(&mut answer)).await;
                (
                    String::from_utf8_lossy(&answer).into_owned(),
                    started.elapsed(),
                )
            })
        })
        .collect::<Vec<_>>();
    // The server keeps serving while they wait.
    tokio::time::sleep(Duration::from_millis(500)).await;
    app.get("/health/live", None).await.assert_status(200);
    for job in slow_bodies {
        let (answer, at) = job.await.unwrap();
        assert!(
            answer.starts_with("HTTP/1.1 408"),
            "slow body answered: {answer:?}"
        );
        assert!(answer.contains("request_timeout"), "{answer}");
        assert!(at < Duration::from_secs(8), "cut off only after {at:?}");
    }
    for job in slow_headers {
        let (answer, at) = job.await.unwrap();
        assert!(
            answer.is_empty() || answer.starts_with("HTTP/1.1 408"),
            "slow headers answered: {answer:?}"
        );
        assert!(at < Duration::from_secs(8), "cut off only after {at:?}");
    }
    app.stop().await;
}

/// Peak and current resident memory of a process, in MiB (`VmHWM`, `VmRSS`).
/// The process's anonymous resident memory (heap, stacks): what it holds, without the pages of
/// its executable, which depend on the build (a debug build maps some 55 MiB of them).
fn anonymous_mib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("RssAnon:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|kb| kb.parse::<u64>().ok())
        .map_or(0, |kb| kb / 1024)
}

pub(crate) fn resident_mib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<u64>().ok())
            .map_or(0, |kb| kb / 1024)
    };
    (field("VmHWM:"), field("VmRSS:"))
}

// 400 concurrent sign-ups from one client with the rate limit off (as from many addresses):
// hashing runs on a fixed pool with a short queue, the rest is refused with 503 and
// Retry-After, resident memory stays under 256 MiB (before: 7.6 GiB) and /health/live keeps
// answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sign_up_flood_is_bounded_in_memory_and_keeps_liveness_fast() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = crate::operations::ready_process(dir.path(), &[]).await;
    let pid = server.pid().unwrap();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(512)
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let flood = futures::future::join_all((0..400).map(|i| {
        let client = client.clone();
        let url = format!("{base}/api/v1/identity/users");
        async move {
            let res = client
                .post(url)
                .json(&json!({"email": format!("flood-{i}-{}@example.com", uuid::Uuid::new_v4().simple()), "password": "flood-violet-anchor-42", "name": "Flood"}))
                .send()
                .await
                .unwrap_or_else(|e| panic!("sign-up {i} failed: {e}"));
            (res.status().as_u16(), res.headers().contains_key("retry-after"))
        }
    }));
    let probe = async {
        let probe_client = reqwest::Client::new();
        let mut latencies = Vec::new();
        for _ in 0..100 {
            let started = Instant::now();
            let ok = probe_client
                .get(format!("{base}/health/live"))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            assert!(ok, "liveness failed during the flood");
            latencies.push(started.elapsed());
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        latencies
    };
    let (results, mut latencies) = tokio::join!(flood, probe);
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    let refused = results.iter().filter(|(s, _)| *s == 503).count();
    assert_eq!(
        created + refused,
        400,
        "only 201 and 503 expected: {results:?}"
    );
    assert!(created >= 1);
    assert!(results.iter().all(|(s, retry)| *s != 503 || *retry));
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100 - 1];
    let (peak, now) = resident_mib(pid);
    eprintln!("sign-up flood: {created} created, {refused} refused; resident peak {peak} MiB, now {now} MiB; /health/live p99 {p99:?}");
    assert!(peak < 256, "resident memory peaked at {peak} MiB");
    // Latency goals are the benchmark's (`bench/run.sh flood`, on a quiet machine); here the
    // test only shows liveness is never starved while the flood lasts.
    assert!(p99 < Duration::from_secs(1), "/health/live p99 {p99:?}");
}

// A cart holds at most 100 different products: an order's events carry its lines, and a
// broker bounds an event's size.
crate::both_backends!(a_cart_holds_at_most_100_products, |app| {
    let admin = app.admin().await;
    let c = app.customer().await;
    for i in 0..101 {
        let p = app
            .product(&admin.access_token, &format!("LINE-{i}"), 100, 5)
            .await;
        let res = app
            .eventually("ordering knows the product", 10, || async {
                let res = app.add_to_cart(&c.access_token, &p, 1).await;
                (res.status != 422 || res.body["errors"][0]["field"] == "product_id").then_some(res)
            })
            .await;
        if i < 100 {
            res.assert_status(200);
        } else {
            res.assert_problem(422, "validation_failed");
            assert_eq!(res.body["errors"][0]["field"], "product_id", "{}", res.body);
        }
    }
    let cart = app
        .get("/api/v1/ordering/cart", Some(&c.access_token))
        .await;
    assert_eq!(cart.body["items"].as_array().map(Vec::len), Some(100));
    app.stop().await;
});

// Memory at rest: after start, 50 log-ins and a quiet moment (the hashing workers give their
// 19 MiB buffers back after 10 s idle), the memory the process holds (anonymous resident:
// heap and stacks) is under 40 MiB: about 15 MiB in practice, 53 MiB with two kept buffers
// (before the fix: 271 MiB resident in release). The executable's own pages are left out:
// a debug build maps some 55 MiB of them, which say nothing about what the server holds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_at_rest_after_50_log_ins_is_under_40_mib_held() {
    let dir = tempfile::tempdir().unwrap();
    let (server, base) = crate::operations::ready_process(
        dir.path(),
        &[
            (
                "EMPORIUM_BOOTSTRAP_ADMIN_EMAIL",
                "admin-at-rest@example.com",
            ),
            (
                "EMPORIUM_BOOTSTRAP_ADMIN_PASSWORD",
                "resting-violet-anchor-3",
            ),
        ],
    )
    .await;
    let pid = server.pid().unwrap();
    let client = reqwest::Client::new();
    for _ in 0..50 {
        let res = client
            .post(format!("{base}/api/v1/identity/tokens"))
            .json(&json!({"email": "admin-at-rest@example.com", "password": "resting-violet-anchor-3"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
    }
    let busy = anonymous_mib(pid);
    // The buffers go back after 10 s idle; on a machine busy with other tests the release
    // can come a little later, so "at rest" is the lowest figure within 30 s.
    let started = std::time::Instant::now();
    tokio::time::sleep(Duration::from_secs(11)).await;
    let mut resting = anonymous_mib(pid);
    while resting >= 40 && started.elapsed() < Duration::from_secs(30) {
        tokio::time::sleep(Duration::from_secs(1)).await;
        resting = resting.min(anonymous_mib(pid));
    }
    eprintln!(
        "memory at rest: {busy} MiB held right after 50 log-ins, {resting} MiB after {} s ({} MiB resident with the executable's pages)",
        started.elapsed().as_secs(),
        resident_mib(pid).1
    );
    assert!(resting < 40, "{resting} MiB held at rest");
    drop(server);
}
