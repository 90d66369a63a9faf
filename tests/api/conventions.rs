//! The HTTP conventions a client's tools rely on: HEAD on every GET route, negotiated
//! compression, rate-limit fields and CORS on every answer (429 included), cache policy,
//! `Link` to the next page, whole numbers written with a fraction, and metrics whose label
//! values come from closed sets.

use std::io::Read;

use serde_json::json;

use platform::testing::TestBackend;

use crate::helpers::{spawn_app, spawn_app_with, METRICS_TOKEN};

async fn raw(
    app: &crate::helpers::TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
) -> (u16, reqwest::header::HeaderMap, Vec<u8>) {
    let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
    let mut req = app.client.request(method, format!("{}{path}", app.address));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let res = req.send().await.unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    (
        status,
        headers,
        res.bytes().await.unwrap_or_default().to_vec(),
    )
}

fn header<'a>(headers: &'a reqwest::header::HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_answers_every_get_route_with_the_gets_headers_and_no_body() {
    let Some(app) = spawn_app(TestBackend::Sqlite).await else {
        return;
    };
    let admin = app.admin().await;
    let product = app.product(&admin.access_token, "HEAD-1", 1200, 3).await;
    let customer = app.customer().await;
    let bearer = format!("Bearer {}", customer.access_token);
    for (path, auth) in [
        ("/health/live", None),
        ("/openapi.json", None),
        ("/api/v1/catalog/products", None),
        (&*format!("/api/v1/catalog/products/{product}"), None),
        (&*format!("/api/v1/catalog/products/{product}/stock"), None),
        ("/api/v1/identity/me", Some(bearer.as_str())),
        ("/api/v1/ordering/cart", Some(bearer.as_str())),
        ("/api/v1/catalog/products/not-an-id", None),
        ("/api/v1/nothing-here", None),
    ] {
        let headers: Vec<(&str, &str)> = auth.map(|a| ("authorization", a)).into_iter().collect();
        let (get_status, get, body) = raw(&app, "GET", path, &headers).await;
        let (head_status, head, empty) = raw(&app, "HEAD", path, &headers).await;
        assert_eq!(head_status, get_status, "{path}");
        assert!(empty.is_empty(), "{path}: HEAD sent a body");
        assert_eq!(
            header(&head, "content-length"),
            body.len().to_string(),
            "{path}: HEAD's length is the GET's"
        );
        for name in ["content-type", "etag", "cache-control"] {
            assert_eq!(header(&head, name), header(&get, name), "{path}: {name}");
        }
        assert!(!header(&head, "x-request-id").is_empty(), "{path}");
    }
    // A route without GET still refuses HEAD.
    let (status, _, _) = raw(&app, "HEAD", "/api/v1/identity/tokens", &[]).await;
    assert_eq!(status, 405);
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_are_compressed_as_negotiated_when_it_is_worth_it() {
    let Some(app) = spawn_app(TestBackend::Sqlite).await else {
        return;
    };
    let (_, plain_headers, plain) = raw(&app, "GET", "/openapi.json", &[]).await;
    assert_eq!(header(&plain_headers, "content-encoding"), "");
    let (status, gzip_headers, gzipped) =
        raw(&app, "GET", "/openapi.json", &[("accept-encoding", "gzip")]).await;
    assert_eq!(status, 200);
    assert_eq!(header(&gzip_headers, "content-encoding"), "gzip");
    let vary: Vec<&str> = gzip_headers
        .get_all("vary")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .collect();
    assert!(
        vary.iter()
            .any(|v| v.eq_ignore_ascii_case("accept-encoding")),
        "{vary:?}"
    );
    let mut unpacked = Vec::new();
    flate2::read::GzDecoder::new(&gzipped[..])
        .read_to_end(&mut unpacked)
        .unwrap_or_else(|e| panic!("not gzip: {e}"));
    assert_eq!(unpacked, plain, "gzip round trip");
    assert!(
        gzipped.len() * 5 < plain.len(),
        "{} of {}",
        gzipped.len(),
        plain.len()
    );
    // The client's preference decides; brotli when it is preferred.
    let (_, br_headers, brotli) = raw(
        &app,
        "GET",
        "/openapi.json",
        &[("accept-encoding", "gzip;q=0.5, br")],
    )
    .await;
    assert_eq!(header(&br_headers, "content-encoding"), "br");
    assert!(brotli.len() < gzipped.len());
    // Not worth it for a tiny body; not for an encoding the client refuses.
    let (_, small, _) = raw(&app, "GET", "/health/live", &[("accept-encoding", "gzip")]).await;
    assert_eq!(header(&small, "content-encoding"), "");
    let (_, refused, _) = raw(
        &app,
        "GET",
        "/openapi.json",
        &[("accept-encoding", "gzip;q=0")],
    )
    .await;
    assert_eq!(header(&refused, "content-encoding"), "");
    // Nothing acceptable at all is a 406 problem, like every other refusal.
    let (status, headers, body) = raw(
        &app,
        "GET",
        "/openapi.json",
        &[("accept-encoding", "identity;q=0, compress")],
    )
    .await;
    assert_eq!(status, 406);
    assert_eq!(header(&headers, "content-type"), "application/problem+json");
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    assert_eq!(problem["code"], "not_acceptable", "{problem}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_carries_the_rate_limit_and_cors_fields_a_429_too() {
    let Some(app) = spawn_app_with(TestBackend::Sqlite, |c| {
        c.rate_limit = true;
        c.rate_limit_per_second = 1;
        c.rate_limit_burst = 3;
        c.cors_origins = vec!["https://shop.example".to_owned()];
    })
    .await
    else {
        return;
    };
    let origin = [("origin", "https://shop.example")];
    let mut left = Vec::new();
    for _ in 0..3 {
        let (status, headers, _) = raw(&app, "GET", "/api/v1/catalog/products", &origin).await;
        assert_eq!(status, 200);
        assert_eq!(header(&headers, "ratelimit-policy"), "\"default\";q=3;w=3");
        assert_eq!(
            header(&headers, "access-control-allow-origin"),
            "https://shop.example"
        );
        left.push(header(&headers, "ratelimit").to_owned());
    }
    // A burst of 3 at one instant: 2, 1, then 0 left (each time a second or so from whole).
    for (seen, r) in left.iter().zip([2, 1, 0]) {
        assert!(
            seen.starts_with(&format!("\"default\";r={r};t=")),
            "{left:?}"
        );
    }
    let (status, headers, body) = raw(&app, "GET", "/api/v1/catalog/products", &origin).await;
    assert_eq!(status, 429);
    let wait = header(&headers, "retry-after").to_owned();
    assert!(wait.parse::<u64>().is_ok_and(|w| w >= 1), "{wait}");
    assert_eq!(
        header(&headers, "ratelimit"),
        format!("\"default\";r=0;t={wait}")
    );
    assert_eq!(
        header(&headers, "access-control-allow-origin"),
        "https://shop.example",
        "a browser must be able to read the 429"
    );
    let exposed = header(&headers, "access-control-expose-headers").to_ascii_lowercase();
    for name in [
        "retry-after",
        "ratelimit",
        "ratelimit-policy",
        "x-request-id",
    ] {
        assert!(exposed.contains(name), "{name} not exposed: {exposed}");
    }
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    assert_eq!(problem["code"], "rate_limited", "{problem}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catalog_reads_may_be_shared_by_caches_and_lists_link_their_next_page() {
    let Some(app) = spawn_app(TestBackend::Sqlite).await else {
        return;
    };
    let admin = app.admin().await;
    for sku in ["LINK-1", "LINK-2", "LINK-3"] {
        app.product(&admin.access_token, sku, 500, 1).await;
    }
    let first = app
        .get("/api/v1/catalog/products?limit=2&q=product", None)
        .await;
    first.assert_status(200);
    let cache = first.header("cache-control").unwrap_or_default();
    assert!(cache.starts_with("public, max-age="), "{cache}");
    assert!(cache.contains("stale-while-revalidate="), "{cache}");
    let cursor = first.body["next_cursor"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(!cursor.is_empty(), "{}", first.body);
    assert_eq!(
        first.header("link").as_deref(),
        Some(&*format!(
            "</api/v1/catalog/products?limit=2&q=product&cursor={cursor}>; rel=\"next\""
        ))
    );
    // Following the link is following the cursor; the last page has no link.
    let link = first.header("link").unwrap_or_default();
    let next = link
        .trim_start_matches('<')
        .split('>')
        .next()
        .unwrap_or_default()
        .to_owned();
    let second = app.get(&next, None).await;
    second.assert_status(200);
    assert_eq!(second.body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(second.header("link"), None);
    // A list that is not cached links the same way; private answers stay private.
    let users = app
        .get("/api/v1/identity/users?limit=1", Some(&admin.access_token))
        .await;
    users.assert_status(200);
    assert!(users
        .header("link")
        .is_some_and(|l| l.starts_with("</api/v1/identity/users?limit=1&cursor=")));
    assert_eq!(
        users.header("cache-control").as_deref(),
        Some("private, no-cache")
    );
    let me = app
        .get("/api/v1/identity/me", Some(&admin.access_token))
        .await;
    assert!(me
        .header("cache-control")
        .is_some_and(|c| c.starts_with("private")));
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whole_numbers_written_with_a_zero_fraction_are_taken_and_fractions_refused() {
    let Some(app) = spawn_app(TestBackend::Sqlite).await else {
        return;
    };
    let admin = app.admin().await;
    let product = app.sellable(&admin.access_token, "WHOLE-1", 700, 10).await;
    app.put(
        &format!("/api/v1/catalog/products/{product}/stock"),
        Some(&admin.access_token),
        &json!({"on_hand": 8.0}),
    )
    .await
    .assert_status(200);
    assert_eq!(app.stock(&product).await["on_hand"], 8);
    let customer = app.customer().await;
    let cart = app
        .post(
            "/api/v1/ordering/cart/items",
            Some(&customer.access_token),
            &json!({"product_id": product, "quantity": 2.0}),
        )
        .await;
    cart.assert_status(200);
    assert_eq!(cart.body["items"][0]["quantity"], 2);
    let refused = app
        .post(
            "/api/v1/ordering/cart/items",
            Some(&customer.access_token),
            &json!({"product_id": product, "quantity": 1.5}),
        )
        .await;
    refused.assert_problem(422, "validation_failed");
    assert_eq!(refused.error_fields(), vec!["quantity"]);
    app.stop().await;
}

/// A tiny deterministic generator (xorshift), seeded per run and printed, so a failure can be
/// replayed with `EMPORIUM_TEST_SEED`.
struct Rng(u64);

impl Rng {
    fn seeded() -> Self {
        let seed = std::env::var("EMPORIUM_TEST_SEED")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| {
                std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(1, |d| d.as_nanos() as u64)
            })
            | 1;
        eprintln!("EMPORIUM_TEST_SEED={seed}");
        Self(seed)
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn word(&mut self, alphabet: &[u8], min: u64, max: u64) -> String {
        let len = min + self.next() % (max - min + 1);
        (0..len)
            .map(|_| char::from(alphabet[(self.next() % alphabet.len() as u64) as usize]))
            .collect()
    }
}

async fn scrape(client: &reqwest::Client, base: &str) -> String {
    let res = client
        .get(format!("{base}/metrics"))
        .bearer_auth(METRICS_TOKEN)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(res.status(), 200);
    res.text().await.unwrap_or_default()
}

// Its own process: the metrics registry is per process, and the tests in this binary share one.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invented_methods_and_paths_do_not_grow_the_metrics_and_every_metric_is_described() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let (_server, base) =
        crate::operations::ready_process(dir.path(), &[("EMPORIUM_METRICS_TOKEN", METRICS_TOKEN)])
            .await;
    let client = reqwest::Client::new();
    let mut rng = Rng::seeded();
    const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    // No dots: the client would resolve `.` and `..` segments before sending.
    const PATH: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789-_~";
    let send = |rng: &mut Rng| {
        let method = format!("X{}", rng.word(UPPER, 2, 12));
        let path = match rng.next() % 4 {
            0 => format!("/{}", rng.word(PATH, 1, 40)),
            1 => format!("/api/v1/catalog/products/{}", rng.word(PATH, 1, 36)),
            2 => format!(
                "/api/v1/{}/{}",
                rng.word(PATH, 1, 12),
                rng.word(PATH, 1, 12)
            ),
            _ => format!("/health/{}", rng.word(PATH, 1, 20)),
        };
        let get = rng.next() % 2 == 0;
        (if get { "GET".to_owned() } else { method }, path)
    };
    // Every series the storm can touch exists once before the first reading.
    for (method, path) in [
        ("XWARM", "/warm"),
        ("GET", "/warm"),
        ("XWARM", "/api/v1/catalog/products/warm"),
        ("GET", "/api/v1/catalog/products/warm"),
        ("XWARM", "/api/v1/warm/warm"),
        ("GET", "/api/v1/warm/warm"),
        ("XWARM", "/health/warm"),
        ("GET", "/health/warm"),
    ] {
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let _ = client.request(method, format!("{base}{path}")).send().await;
    }
    // The first scrape's own series is recorded after it answered.
    scrape(&client, &base).await;
    let before = scrape(&client, &base).await;
    for _ in 0..1000 {
        let (method, path) = send(&mut rng);
        let method = reqwest::Method::from_bytes(method.as_bytes()).unwrap_or(reqwest::Method::GET);
        let res = client
            .request(method, format!("{base}{path}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        assert!(res.status().is_client_error(), "{path}: {}", res.status());
    }
    let after = scrape(&client, &base).await;
    assert!(
        after.len() < before.len() + 1024,
        "/metrics grew from {} to {} bytes; new lines:\n{}",
        before.len(),
        after.len(),
        after
            .lines()
            .filter(|l| !before.contains(l.split(' ').next().unwrap_or_default()))
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        after.contains("method=\"other\""),
        "invented methods are counted as other"
    );
    assert!(
        !after.contains("method=\"X"),
        "an invented method became a label"
    );
    // Every metric has HELP and TYPE; the CPU time is a counter.
    let described = |kind: &str| -> std::collections::BTreeSet<String> {
        after
            .lines()
            .filter_map(|l| l.strip_prefix(kind))
            .filter_map(|l| l.split(' ').next().map(str::to_owned))
            .collect()
    };
    let (help, types) = (described("# HELP "), described("# TYPE "));
    assert!(!types.is_empty());
    assert_eq!(help, types, "every metric is described");
    assert!(after.contains("# TYPE process_cpu_seconds_total counter"));
    // And Prometheus's own linter agrees, where it is installed (CI installs it).
    match std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
    {
        Ok(mut child) => {
            use std::io::Write;
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(after.as_bytes());
            }
            let out = child.wait_with_output().unwrap_or_else(|e| panic!("{e}"));
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            assert!(
                out.status.success() && text.trim().is_empty(),
                "promtool: {text}"
            );
        }
        Err(_) => assert!(
            std::env::var("CI").is_err(),
            "CI: promtool is missing (apt-get install prometheus)"
        ),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_problems_type_is_a_page_about_its_code() {
    let Some(app) = spawn_app(TestBackend::Sqlite).await else {
        return;
    };
    let customer = app.customer().await;
    let problem = app
        .get(
            "/api/v1/ordering/orders/01a24e30-0000-7000-8000-000000000000",
            Some(&customer.access_token),
        )
        .await;
    problem.assert_problem(404, "ordering.order_not_found");
    let page_path = problem.body["type"].as_str().unwrap_or_default().to_owned();
    let (status, headers, page) = raw(&app, "GET", &page_path, &[]).await;
    assert_eq!(status, 200, "{page_path}");
    assert!(header(&headers, "content-type").starts_with("text/html"));
    let page = String::from_utf8_lossy(&page);
    assert!(
        page.contains("ordering.order_not_found") && page.contains("HTTP 404"),
        "{page}"
    );
    // The index links every code; an unknown one is itself a problem.
    let (_, _, index) = raw(&app, "GET", "/problems", &[]).await;
    let index = String::from_utf8_lossy(&index);
    assert!(index.contains("href=\"/problems/rate_limited\""), "{index}");
    app.get("/problems/no_such_code", None)
        .await
        .assert_problem(404, "not_found");
    app.stop().await;
}
