//! The admin console: its files and their policy, the admin endpoints it reads (every order,
//! filtered; today's summary; messaging per context), and the console itself in Chromium.

use std::path::PathBuf;

use serde_json::{json, Value};

use crate::helpers::{spawn_app_with, TestApp};
use emporium::config::ContextName;
use platform::testing::TestBackend;

/// The console's files, as a browser gets them.
async fn fetch(app: &TestApp, path: &str) -> reqwest::Response {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(format!("{}{path}", app.address))
        .send()
        .await
        .unwrap()
}

/// `/admin/` and its files, each with a policy that keeps every request on this origin.
pub(crate) async fn assert_console_is_served(app: &TestApp) {
    let bare = fetch(app, "/admin").await;
    assert_eq!(bare.status(), 308);
    assert_eq!(bare.headers()["location"], "/admin/");
    for (path, kind) in [
        ("/admin/", "text/html"),
        ("/admin/app.js", "text/javascript"),
        ("/admin/api.js", "text/javascript"),
        ("/admin/style.css", "text/css"),
    ] {
        let res = fetch(app, path).await;
        assert_eq!(res.status(), 200, "{path}");
        let header = |name: &str| {
            res.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned()
        };
        assert!(header("content-type").starts_with(kind), "{path}");
        let policy = header("content-security-policy");
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "connect-src 'self'",
            "frame-ancestors 'none'",
        ] {
            assert!(policy.contains(directive), "{path}: {policy}");
        }
        assert_eq!(header("x-content-type-options"), "nosniff");
        let body = res.text().await.unwrap();
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path} names another origin"
        );
    }
    let missing = fetch(app, "/admin/nope.js").await;
    assert_eq!(missing.status(), 404);
}

#[test]
fn the_console_client_matches_the_openapi_document() {
    let root = env!("CARGO_MANIFEST_DIR");
    let spec = std::fs::read_to_string(format!("{root}/openapi/openapi.json")).unwrap();
    let committed = std::fs::read_to_string(format!("{root}/admin/api.js")).unwrap_or_default();
    assert!(
        committed == emporium::admin::client_js(&spec).unwrap(),
        "admin/api.js is stale: run `cargo run -- openapi` and commit the result"
    );
    // Every operation the console calls exists.
    let app = std::fs::read_to_string(format!("{root}/admin/app.js")).unwrap();
    let called: std::collections::BTreeSet<&str> = app
        .split("call(\"")
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .collect();
    assert!(called.len() > 20, "{called:?}");
    for id in called {
        assert!(
            committed.contains(&format!("\n  \"{id}\": {{")),
            "the console calls {id}, which the API does not have"
        );
    }
}

crate::every_topology!(admins_find_every_order_by_status_customer_and_time, |app| {
    assert_console_is_served(&app).await;
    let admin = app.admin().await;
    let token = admin.access_token.as_str();
    let product = app.sellable(token, "ADMIN-LIST", 700, 10).await;
    let (ada, bob) = (app.customer().await, app.customer().await);
    let first = app
        .place_order(&ada.access_token, &product, 1, "tok_visa")
        .await;
    let second = app
        .place_order(&bob.access_token, &product, 2, "tok_visa")
        .await;
    app.order_reaches(&ada.access_token, &first, "confirmed")
        .await;
    app.order_reaches(&bob.access_token, &second, "confirmed")
        .await;
    let cancelled = app
        .place_order(&bob.access_token, &product, 1, "tok_visa")
        .await;
    app.post(
        &format!("/api/v1/ordering/orders/{cancelled}/cancel"),
        Some(&bob.access_token),
        &json!({}),
    )
    .await
    .assert_status(200);

    let ids = |res: &crate::helpers::Response| -> Vec<String> {
        res.assert_status(200);
        res.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_owned())
            .collect()
    };
    let list = |query: String| {
        let app = &app;
        async move {
            app.get(
                &format!("/api/v1/ordering/admin/orders{query}"),
                Some(token),
            )
            .await
        }
    };
    // Every customer's, newest first, each naming its customer.
    let all = list(String::new()).await;
    assert_eq!(ids(&all), [cancelled.as_str(), &second, &first]);
    assert_eq!(all.body["items"][2]["customer_id"], ada.id.as_str());
    assert_eq!(
        ids(&list(format!("?customer_id={}", bob.id)).await),
        [cancelled.as_str(), &second]
    );
    assert_eq!(
        ids(&list("?status=cancelled".into()).await),
        [cancelled.as_str()]
    );
    assert_eq!(
        ids(&list(format!("?status=confirmed&customer_id={}", ada.id)).await),
        [first.as_str()]
    );
    // Paged with the same filters.
    let page = list("?limit=2".into()).await;
    assert_eq!(ids(&page), [cancelled.as_str(), &second]);
    let cursor = page.body["next_cursor"].as_str().unwrap();
    assert_eq!(
        ids(&list(format!("?limit=2&cursor={cursor}")).await),
        [first.as_str()]
    );
    // By time: placed from a future moment, none; before one, all.
    let later = "2999-01-01T00:00:00Z";
    assert!(ids(&list(format!("?placed_from={later}")).await).is_empty());
    assert_eq!(ids(&list(format!("?placed_to={later}")).await).len(), 3);
    list(format!(
        "?placed_from={later}&placed_to=2000-01-01T00:00:00Z"
    ))
    .await
    .assert_problem(422, "validation_failed");
    list("?status=lost".into()).await.assert_status(400);
    list("?placed_from=yesterday".into())
        .await
        .assert_status(400);
    list("?customer_id=ada".into()).await.assert_status(400);
    // Admins only.
    app.get("/api/v1/ordering/admin/orders", Some(&ada.access_token))
        .await
        .assert_status(403);
    app.get("/api/v1/ordering/admin/orders", None)
        .await
        .assert_status(401);

    // Today's summary: where the three are, how far they got, how long confirmation took.
    let summary = app.get("/api/v1/ordering/admin/summary", Some(token)).await;
    summary.assert_status(200);
    let s = &summary.body;
    assert_eq!(s["placed"], 3, "{s}");
    assert_eq!(s["by_status"]["confirmed"], 2, "{s}");
    assert_eq!(s["by_status"]["cancelled"], 1, "{s}");
    assert_eq!(s["reached"]["pending"], 3, "{s}");
    assert_eq!(s["reached"]["confirmed"], 2, "{s}");
    assert_eq!(s["placed_to_confirmed"]["count"], 2, "{s}");
    let (p50, p95) = (
        s["placed_to_confirmed"]["p50_ms"].as_f64().unwrap(),
        s["placed_to_confirmed"]["p95_ms"].as_f64().unwrap(),
    );
    assert!(p50 > 0.0 && p50 <= p95, "{s}");
    let since = s["since"].as_str().unwrap();
    assert!(
        since.contains("T00:00:00") && since.ends_with('Z'),
        "midnight UTC: {since}"
    );
    let tomorrow = app
        .get(
            "/api/v1/ordering/admin/summary?since=2999-01-01T00:00:00Z",
            Some(token),
        )
        .await;
    assert_eq!(tomorrow.body["placed"], 0);
    assert_eq!(tomorrow.body["placed_to_confirmed"]["p50_ms"], Value::Null);
    app.get("/api/v1/ordering/admin/summary", Some(&ada.access_token))
        .await
        .assert_status(403);
    app.stop().await;
});

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admins_see_each_contexts_backlog_and_open_dead_letters() {
    let app = spawn_app_with(TestBackend::Sqlite, |_| {})
        .await
        .expect("sqlite app");
    let admin = app.admin().await;
    let customer = app.customer().await;
    park_a_dead_letter(&app, &admin.access_token).await;
    let res = app
        .get("/api/v1/admin/messaging", Some(&admin.access_token))
        .await;
    res.assert_status(200);
    let contexts = res.body["contexts"].as_array().unwrap();
    let names: Vec<&str> = contexts
        .iter()
        .map(|c| c["context"].as_str().unwrap())
        .collect();
    for ctx in ContextName::ALL.map(|c| c.as_str()) {
        assert!(names.contains(&ctx), "{names:?}");
    }
    let ordering = contexts
        .iter()
        .find(|c| c["context"] == "ordering")
        .unwrap();
    assert_eq!(ordering["dead_letters_open"], 1, "{}", res.body);
    assert!(ordering["outbox_unsent"].as_i64().unwrap() >= 0);
    app.get("/api/v1/admin/messaging", Some(&customer.access_token))
        .await
        .assert_status(403);
    app.get("/api/v1/admin/messaging", None)
        .await
        .assert_status(401);
    app.stop().await;
}

/// A `catalog.product_created` parked for ordering's product projection, as if its handler
/// had failed: replaying it succeeds.
async fn park_a_dead_letter(app: &TestApp, admin: &str) {
    let seen = app.observe(&["catalog.product_created"]).await;
    app.product(admin, "PARKED-FOR-CONSOLE", 300, 1).await;
    let created = app
        .eventually("the product is announced", 10, || async {
            seen.of_type("catalog.product_created").pop()
        })
        .await;
    let db = app.database(ContextName::Ordering).await;
    bus::DeadLetterStore::put(
        &bus::SqlDeadLetters::new(db.clone()),
        "ordering.products",
        &created,
        "the product projection could not be written",
        5,
    )
    .await
    .expect("dead letter");
    db.close().await;
}

/// Refresh tokens of the user that are neither used (rotated) nor revoked.
async fn live_refresh_tokens(app: &TestApp, user: &str) -> i64 {
    let db = app.database(ContextName::Identity).await;
    let live: i64 = sqlx::query_scalar(
        "select count(*) from refresh_token where user_id = $1 and used_at is null and revoked_at is null",
    )
    .bind(user)
    .fetch_one(db.pool())
    .await
    .unwrap();
    db.close().await;
    live
}

/// Debian's Chromium and its driver, or `None` (a skip; a failure under `CI=true`).
fn chromium() -> Option<(PathBuf, PathBuf)> {
    let path = |var: &str, default: &str| {
        PathBuf::from(std::env::var(var).unwrap_or_else(|_| default.to_owned()))
    };
    let browser = path("EMPORIUM_TEST_CHROMIUM", "/usr/bin/chromium");
    let driver = path("EMPORIUM_TEST_CHROMEDRIVER", "/usr/bin/chromedriver");
    if browser.exists() && driver.exists() {
        return Some((browser, driver));
    }
    assert!(
        std::env::var("CI").is_err(),
        "CI: no Chromium at {} with its driver at {} (apt-get install chromium chromium-driver)",
        browser.display(),
        driver.display()
    );
    eprintln!("skipping: no Chromium (set EMPORIUM_TEST_CHROMIUM and EMPORIUM_TEST_CHROMEDRIVER)");
    None
}

// The console's stories in a real browser (tests/browser/admin_console.py); screenshots of
// each page go to `<target>/tmp/admin-console/`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_runs_the_shop_from_the_console_in_chromium() {
    let Some((browser, driver)) = chromium() else {
        return;
    };
    let Some(python) = crate::helpers::test_python("selenium") else {
        return;
    };
    let app = spawn_app_with(TestBackend::Sqlite, |c| c.rate_limit = false)
        .await
        .expect("sqlite app");
    let admin = app.admin().await;
    park_a_dead_letter(&app, &admin.access_token).await;
    let live_sessions = live_refresh_tokens(&app, &admin.id).await;
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("admin-console");
    let _ = std::fs::remove_dir_all(&shots);
    std::fs::create_dir_all(&shots).unwrap();
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/browser/admin_console.py"
    );
    let address = app.address.clone();
    let (email, password) = (admin.email.clone(), admin.password.clone());
    let shots_arg = shots.clone();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(python)
            .arg(script)
            .args([&address, &email, &password])
            .arg(&shots_arg)
            .arg(crate::helpers::BOOTSTRAP_ADMIN.0)
            .env("EMPORIUM_TEST_CHROMIUM", browser)
            .env("EMPORIUM_TEST_CHROMEDRIVER", driver)
            // Selenium must not look for (or download) a driver of its own.
            .env("SE_OFFLINE", "true")
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the browser test failed (screenshots in {}):\n{said}",
        shots.display()
    );
    println!("{said}");
    // The replay went through: the letter is marked replayed.
    let letters = app
        .get("/api/v1/admin/dead-letters", Some(&admin.access_token))
        .await;
    let parked = letters.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["consumer_group"] == "ordering.products")
        .cloned()
        .unwrap();
    assert!(parked["replayed_at"].is_string(), "{parked}");
    // Each sign-out revoked what its sign-in was given.
    assert_eq!(live_refresh_tokens(&app, &admin.id).await, live_sessions);
    let pages = std::fs::read_dir(&shots).unwrap().count();
    assert!(pages >= 10, "{pages} screenshots in {}", shots.display());
    app.stop().await;
}
