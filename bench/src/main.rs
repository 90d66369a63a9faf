//! Load driver for `bench/run.sh`: sets up data through the API, then measures logins and
//! complete checkouts (POST to `confirmed`) against a running Emporium.
//!
//! `emporium-bench setup|logins|checkout|flood` with `BENCH_URL` (default http://127.0.0.1:18080),
//! `BENCH_ADMIN_EMAIL`/`BENCH_ADMIN_PASSWORD`, `BENCH_SECONDS`, `BENCH_CONCURRENCY`.

use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use serde_json::{json, Value};

struct Api {
    base: String,
    http: reqwest::Client,
}

impl Api {
    async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> anyhow::Result<(u16, Value)> {
        let mut req = self.http.request(method, format!("{}{}", self.base, path));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(b);
        }
        let res = req.send().await?;
        let status = res.status().as_u16();
        let bytes = res.bytes().await?;
        Ok((
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        ))
    }

    async fn post(
        &self,
        path: &str,
        token: Option<&str>,
        body: &Value,
    ) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::POST, path, token, Some(body))
            .await
    }

    async fn get(&self, path: &str, token: Option<&str>) -> anyhow::Result<(u16, Value)> {
        self.send(reqwest::Method::GET, path, token, None).await
    }

    async fn login(&self, email: &str, password: &str) -> anyhow::Result<String> {
        let (status, body) = self
            .post(
                "/api/v1/identity/tokens",
                None,
                &json!({"email": email, "password": password}),
            )
            .await?;
        if status != 200 {
            bail!("login failed: {status} {body}");
        }
        Ok(body["access_token"].as_str().unwrap_or_default().to_owned())
    }

    async fn customer(&self) -> anyhow::Result<(String, String)> {
        let email = format!("bench-{}@example.com", uuid::Uuid::new_v4().simple());
        let password = "bench-password-violet-42";
        let (status, body) = self
            .post(
                "/api/v1/identity/users",
                None,
                &json!({"email": email, "password": password, "name": "Bench"}),
            )
            .await?;
        if status != 201 {
            bail!("sign-up failed: {status} {body}");
        }
        Ok((email.clone(), self.login(&email, password).await?))
    }
}

fn env(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_owned())
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

/// Creates a product with plenty of stock and a customer; prints shell assignments.
async fn setup(api: &Api) -> anyhow::Result<()> {
    let admin = api
        .login(
            &env("BENCH_ADMIN_EMAIL", "bench-admin@example.com"),
            &env("BENCH_ADMIN_PASSWORD", "load-test-violet-77"),
        )
        .await?;
    let sku = format!("BENCH-{}", uuid::Uuid::new_v4().simple());
    let (status, product) = api
        .post(
            "/api/v1/catalog/products",
            Some(&admin),
            &json!({"sku": sku, "name": "Bench mug", "price": {"amount": 1000, "currency": "EUR"}}),
        )
        .await?;
    if status != 201 {
        bail!("product: {status} {product}");
    }
    let id = product["id"].as_str().unwrap_or_default().to_owned();
    let (status, _) = api
        .send(
            reqwest::Method::PUT,
            &format!("/api/v1/catalog/products/{id}/stock"),
            Some(&admin),
            Some(&json!({"on_hand": 1_000_000})),
        )
        .await?;
    if status != 200 {
        bail!("stock: {status}");
    }
    let (email, token) = api.customer().await?;
    println!("export PRODUCT_ID={id}");
    println!("export CUSTOMER_EMAIL={email}");
    println!("export CUSTOMER_TOKEN={token}");
    Ok(())
}

async fn logins(api: &Api) -> anyhow::Result<()> {
    let seconds: u64 = env("BENCH_SECONDS", "10").parse()?;
    let concurrency: usize = env("BENCH_CONCURRENCY", "2").parse()?;
    let (email, _) = api.customer().await?;
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let counts = futures::future::join_all((0..concurrency).map(|_| {
        let email = email.clone();
        async move {
            let mut n = 0u64;
            while Instant::now() < deadline {
                if api.login(&email, "bench-password-violet-42").await.is_ok() {
                    n += 1;
                }
            }
            n
        }
    }))
    .await;
    let total: u64 = counts.iter().sum();
    let rate = total as f64 / started.elapsed().as_secs_f64();
    println!(
        "logins: {total} in {:.1}s = {rate:.1}/s (concurrency {concurrency})",
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn checkout(api: &Api) -> anyhow::Result<()> {
    let seconds: u64 = env("BENCH_SECONDS", "20").parse()?;
    let concurrency: usize = env("BENCH_CONCURRENCY", "16").parse()?;
    let product = std::env::var("PRODUCT_ID").context("PRODUCT_ID (from setup)")?;
    let mut customers = Vec::new();
    for _ in 0..concurrency {
        customers.push(api.customer().await?.1);
    }
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let results = futures::future::join_all(customers.iter().map(|token| {
        let product = product.clone();
        async move {
            let mut latencies = Vec::new();
            let mut failures = 0u64;
            while Instant::now() < deadline {
                let add = api.post("/api/v1/ordering/cart/items", Some(token), &json!({"product_id": product, "quantity": 1})).await;
                if !matches!(add, Ok((200, _))) {
                    failures += 1;
                    continue;
                }
                let t0 = Instant::now();
                let body = json!({"shipping_address": {"name": "Bench", "line1": "1 Load St", "city": "Berlin", "postal_code": "10115", "country": "DE"}, "payment_token": "tok_visa"});
                let Ok((202, order)) = api.post("/api/v1/ordering/orders", Some(token), &body).await else {
                    failures += 1;
                    continue;
                };
                let path = format!("/api/v1/ordering/orders/{}", order["id"].as_str().unwrap_or_default());
                loop {
                    match api.get(&path, Some(token)).await {
                        Ok((200, o)) if o["status"] == "confirmed" => {
                            latencies.push(t0.elapsed());
                            break;
                        }
                        Ok((200, o)) if o["status"] == "cancelled" => {
                            failures += 1;
                            break;
                        }
                        _ if t0.elapsed() > Duration::from_secs(30) => {
                            failures += 1;
                            break;
                        }
                        _ => tokio::time::sleep(Duration::from_millis(5)).await,
                    }
                }
            }
            (latencies, failures)
        }
    }))
    .await;
    let elapsed = started.elapsed().as_secs_f64();
    let mut all: Vec<Duration> = results
        .iter()
        .flat_map(|(l, _)| l.iter().copied())
        .collect();
    let failures: u64 = results.iter().map(|(_, f)| f).sum();
    all.sort();
    println!(
        "checkout: {} orders confirmed in {elapsed:.1}s = {:.1} orders/s with {concurrency} customers; POST->confirmed p50 {:.1} ms, p99 {:.1} ms; failures {failures}",
        all.len(),
        all.len() as f64 / elapsed,
        percentile(&all, 0.50).as_secs_f64() * 1000.0,
        percentile(&all, 0.99).as_secs_f64() * 1000.0,
    );
    Ok(())
}

/// `BENCH_CONCURRENCY` (400) sign-ups at once while `/health/live` is probed every 20 ms:
/// how many were created or refused (503), and the probe's p50/p99.
async fn flood(api: &Api) -> anyhow::Result<()> {
    let concurrency: usize = env("BENCH_CONCURRENCY", "400").parse()?;
    let http = reqwest::Client::builder()
        .pool_max_idle_per_host(concurrency)
        .build()?;
    let run = uuid::Uuid::now_v7().simple().to_string();
    let signups = futures::future::join_all((0..concurrency).map(|i| {
        let (http, url, run) = (http.clone(), format!("{}/api/v1/identity/users", api.base), run.clone());
        async move {
            http.post(url)
                .json(&json!({"email": format!("flood-{run}-{i}@example.com"), "password": "bench-password-violet-42", "name": "Flood"}))
                .send()
                .await
                .map(|r| r.status().as_u16())
                .unwrap_or(0)
        }
    }));
    let done = std::sync::atomic::AtomicBool::new(false);
    let probe = async {
        let mut latencies = Vec::new();
        while !done.load(std::sync::atomic::Ordering::SeqCst) {
            let started = Instant::now();
            if api.get("/health/live", None).await.is_ok() {
                latencies.push(started.elapsed());
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        latencies
    };
    let flood = async {
        let statuses = signups.await;
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        statuses
    };
    let (statuses, mut latencies) = tokio::join!(flood, probe);
    latencies.sort();
    let at = |q: f64| {
        latencies
            .get(((latencies.len() as f64 * q) as usize).min(latencies.len().saturating_sub(1)))
            .map_or(0.0, |d| d.as_secs_f64() * 1000.0)
    };
    let created = statuses.iter().filter(|s| **s == 201).count();
    let refused = statuses.iter().filter(|s| **s == 503).count();
    println!(
        "sign-up flood: {concurrency} at once: {created} created, {refused} refused (503), {} other; /health/live during it: p50 {:.1} ms, p99 {:.1} ms ({} probes)",
        concurrency - created - refused,
        at(0.5),
        at(0.99),
        latencies.len()
    );
    Ok(())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let api = Api {
        base: env("BENCH_URL", "http://127.0.0.1:18080"),
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(64)
            .build()?,
    };
    match std::env::args().nth(1).as_deref() {
        Some("setup") => setup(&api).await,
        Some("logins") => logins(&api).await,
        Some("checkout") => checkout(&api).await,
        Some("flood") => flood(&api).await,
        _ => bail!("usage: emporium-bench setup|logins|checkout|flood"),
    }
}
