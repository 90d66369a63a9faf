//! `emporium gateway`: routes `/api/v1/<context>/...` to the process serving that context
//! (`EMPORIUM_GATEWAY_UPSTREAMS`), passes `X-Request-Id`, serves the merged `/openapi.json`,
//! proxies `/.well-known/jwks.json` to identity, and is ready when every upstream is.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use platform::client_ip::{TrustedProxies, FORWARDED_FOR};
use platform::error::ApiError;
use platform::http::{request_middleware, RequestContext, REQUEST_ID};

use crate::app::{bind_ops, with_connection_limits};
use crate::config::{Config, ContextName};
use crate::ops::OpsAccess;

struct Upstreams {
    by_context: BTreeMap<String, String>,
    client: reqwest::Client,
    body_limit: usize,
    body_timeout: Duration,
    openapi: String,
    trusted_proxies: TrustedProxies,
}

/// Hop-by-hop headers are not forwarded (RFC 9110 §7.6.1).
const HOP_BY_HOP: [&str; 8] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

pub async fn run(config: Config) -> anyhow::Result<()> {
    if config.gateway_upstreams.is_empty() {
        anyhow::bail!("EMPORIUM_GATEWAY_UPSTREAMS: name at least one upstream, e.g. identity=http://127.0.0.1:8081");
    }
    let _ = crate::telemetry::metrics();
    let upstreams = web::Data::new(Upstreams {
        by_context: config
            .gateway_upstreams
            .iter()
            .map(|(ctx, url)| (ctx.as_str().to_owned(), url.clone()))
            .collect(),
        client: reqwest::Client::builder()
            .timeout(config.upstream_timeout)
            .connect_timeout(Duration::from_secs(5))
            .redirect(reqwest::redirect::Policy::none())
            .pool_max_idle_per_host(64)
            .build()?,
        body_limit: config.body_limit,
        body_timeout: config.body_timeout,
        trusted_proxies: config.trusted_proxies.clone(),
        openapi: crate::openapi::to_json()?,
    });
    let ops_access = web::Data::new(OpsAccess::new(config.metrics_token.clone()));
    let ops_addr = ops_access.ops_addr.clone();
    let ops_listener = config.ops_listen.is_some();
    let server =
        with_connection_limits!(
            HttpServer::new(move || {
                App::new()
                    .wrap(actix_web::middleware::Condition::new(
                        ops_listener,
                        actix_web::middleware::from_fn(crate::ops::ops_listener_guard),
                    ))
                    .wrap(actix_web::middleware::from_fn(request_middleware))
                    .app_data(ops_access.clone())
                    .app_data(upstreams.clone())
                    .configure(platform::http::configure_extractors)
                    .service(web::resource("/health/live").route(web::get().to(|| async {
                        HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
                    })))
                    .service(web::resource("/health/ready").route(web::get().to(ready)))
                    .service(web::resource("/metrics").route(web::get().to(crate::ops::metrics)))
                    .service(web::resource("/openapi.json").route(web::get().to(openapi)))
                    .service(web::resource("/.well-known/jwks.json").route(web::get().to(jwks)))
                    .service(
                        web::resource("/api/v1/admin/dead-letters")
                            .route(web::get().to(list_dead_letters)),
                    )
                    .service(
                        web::resource("/api/v1/admin/dead-letters/{id}/replay")
                            .route(web::post().to(replay_dead_letter)),
                    )
                    .service(web::resource("/api/v1/{context}/{tail:.*}").to(forward))
                    .default_service(web::to(|| async { HttpResponse::NotFound().finish() }))
            }),
            &config
        )
        .bind(config.listen)
        .map_err(|e| anyhow::anyhow!("EMPORIUM_LISTEN: cannot bind {}: {e}", config.listen))?;
    // The bound port (EMPORIUM_LISTEN may ask for port 0).
    let port = server.addrs().first().map_or(0, |a| a.port());
    let server = bind_ops!(server, config, ops_addr)?;
    let server = server
        .shutdown_timeout(config.shutdown_timeout.as_secs())
        .run();
    tracing::info!(port, upstreams = ?config.gateway_upstreams, "gateway listening");
    server.await?;
    Ok(())
}

async fn openapi(up: web::Data<Upstreams>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(up.openapi.clone())
}

async fn ready(up: web::Data<Upstreams>) -> HttpResponse {
    let checks = futures::future::join_all(up.by_context.iter().map(|(ctx, base)| {
        let client = up.client.clone();
        async move {
            let ok = client
                .get(format!("{base}/health/ready"))
                .timeout(Duration::from_secs(2))
                .send()
                .await
                .is_ok_and(|r| r.status().is_success());
            (ctx.clone(), ok)
        }
    }))
    .await;
    let all = checks.iter().all(|(_, ok)| *ok);
    let body: serde_json::Map<String, serde_json::Value> = checks
        .into_iter()
        .map(|(ctx, ok)| {
            (
                format!("{ctx}_upstream"),
                serde_json::json!(if ok { "up" } else { "down" }),
            )
        })
        .collect();
    if all {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready", "checks": body}))
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type(platform::error::PROBLEM_JSON)
            .json(serde_json::json!({"type": "about:blank", "title": "Service Unavailable", "status": 503, "code": "not_ready", "checks": body}))
    }
}

async fn jwks(
    up: web::Data<Upstreams>,
    req: HttpRequest,
    ctx: RequestContext,
) -> Result<HttpResponse, ApiError> {
    let base = up
        .by_context
        .get(ContextName::Identity.as_str())
        .ok_or_else(|| ApiError::not_found("not_found", "no identity upstream"))?;
    proxy(
        &up,
        &req,
        &ctx,
        format!("{base}/.well-known/jwks.json"),
        web::Bytes::new(),
    )
    .await
}

async fn forward(
    up: web::Data<Upstreams>,
    req: HttpRequest,
    ctx: RequestContext,
    path: web::Path<(String, String)>,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (context, _) = path.into_inner();
    let base = up
        .by_context
        .get(&context)
        .ok_or_else(|| ApiError::not_found("not_found", "no such resource"))?;
    // The upstream URL is built from the raw path; a dot segment (plain or percent-encoded)
    // or an encoded slash would let it resolve outside `/api/v1/<context>/`.
    if escapes_prefix(req.path()) {
        return Err(ApiError::bad_request(
            "invalid_path",
            "the path has dot segments or encoded separators",
        ));
    }
    platform::http::check_declared_length(&req, up.body_limit)?;
    let body = platform::http::read_body(&mut payload, up.body_limit, up.body_timeout).await?;
    let query = req.query_string();
    let url = if query.is_empty() {
        format!("{base}{}", req.path())
    } else {
        format!("{base}{}?{query}", req.path())
    };
    let prefix = format!("/api/v1/{context}/");
    let parsed = reqwest::Url::parse(&url)
        .map_err(|_| ApiError::bad_request("invalid_path", "the path is not a valid URL path"))?;
    if !parsed.path().starts_with(&prefix) {
        return Err(ApiError::bad_request(
            "invalid_path",
            "the path leaves its context's prefix",
        ));
    }
    proxy(&up, &req, &ctx, url, body).await
}

/// True when a raw request path has a `.` or `..` segment, or an encoded `/`, `\` or NUL,
/// in any case or encoding (`%2e%2E`, `.%2e`).
fn escapes_prefix(raw_path: &str) -> bool {
    raw_path.split('/').any(|segment| {
        let decoded = percent_decode(segment);
        decoded == b"."
            || decoded == b".."
            || decoded.contains(&b'/')
            || decoded.contains(&b'\\')
            || decoded.contains(&0)
    })
}

fn percent_decode(raw: &str) -> Vec<u8> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((h * 16 + l) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    out
}

impl Upstreams {
    /// Each upstream process once (several contexts may share one).
    fn processes(&self) -> Vec<&str> {
        let mut bases: Vec<&str> = self.by_context.values().map(String::as_str).collect();
        bases.sort_unstable();
        bases.dedup();
        bases
    }
}

/// Each process keeps the dead letters of its own contexts: the gateway asks every process
/// for the same page and merges them, newest first, into one page with one cursor.
async fn list_dead_letters(
    up: web::Data<Upstreams>,
    req: HttpRequest,
    ctx: RequestContext,
    query: web::Query<platform::pagination::PageQuery>,
) -> Result<HttpResponse, ApiError> {
    let page = platform::pagination::PageRequest::from_query(
        query.limit,
        query.cursor.as_deref(),
        &[platform::pagination::Part::Id],
    )?;
    let calls = up.processes().into_iter().map(|base| {
        let url = format!("{base}{}?{}", req.path(), req.query_string());
        proxy(&up, &req, &ctx, url, web::Bytes::new())
    });
    let mut items = Vec::new();
    let mut more = false;
    for response in futures::future::join_all(calls).await {
        let response = response?;
        if !response.status().is_success() {
            // Unauthorised, forbidden, invalid: every process says the same; pass it on.
            return Ok(response);
        }
        let bytes = actix_web::body::to_bytes(response.into_body())
            .await
            .map_err(|_| ApiError::internal(anyhow::anyhow!("unreadable upstream page")))?;
        let part: platform::pagination::Page<serde_json::Value> = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::internal(anyhow::anyhow!("upstream page: {e}")))?;
        more |= part.next_cursor.is_some();
        items.extend(part.items);
    }
    let id = |v: &serde_json::Value| v["id"].as_str().unwrap_or_default().to_owned();
    items.sort_by(|a, b| b["id"].as_str().cmp(&a["id"].as_str()));
    let limit = page.limit as usize;
    more |= items.len() > limit;
    items.truncate(limit);
    let next_cursor = if more {
        items
            .last()
            .map(|last| platform::pagination::Cursor::new(vec![id(last)]).encode())
    } else {
        None
    };
    Ok(HttpResponse::Ok().json(platform::pagination::Page { items, next_cursor }))
}

/// A dead letter lives in one process: the first that does not answer 404 replays it.
async fn replay_dead_letter(
    up: web::Data<Upstreams>,
    req: HttpRequest,
    ctx: RequestContext,
) -> Result<HttpResponse, ApiError> {
    let mut last = None;
    for base in up.processes() {
        let response = proxy(
            &up,
            &req,
            &ctx,
            format!("{base}{}", req.path()),
            web::Bytes::new(),
        )
        .await?;
        if response.status() != StatusCode::NOT_FOUND {
            return Ok(response);
        }
        last = Some(response);
    }
    last.ok_or_else(|| ApiError::not_found("not_found", "no upstream"))
}

async fn proxy(
    up: &Upstreams,
    req: &HttpRequest,
    ctx: &RequestContext,
    url: String,
    body: web::Bytes,
) -> Result<HttpResponse, ApiError> {
    let method = reqwest::Method::from_bytes(req.method().as_str().as_bytes())
        .map_err(|_| platform::http::status_problem(StatusCode::METHOD_NOT_ALLOWED))?;
    let mut outgoing = up.client.request(method, &url).body(body);
    let named_in_connection = connection_tokens(
        req.headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().ok())),
    );
    for (name, value) in req.headers() {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n)
            || named_in_connection.iter().any(|t| t == n)
            || n == "host"
            || n == "content-length"
            || n == REQUEST_ID.as_str()
            || n == FORWARDED_FOR
            || n == "forwarded"
            || n == "x-forwarded-host"
            || n == "x-forwarded-proto"
            || n == "traceparent"
        {
            continue;
        }
        outgoing = outgoing.header(n, value.as_bytes());
    }
    outgoing = outgoing.header(REQUEST_ID.as_str(), ctx.request_id.as_str());
    // The upstream continues this request's trace (the caller's, or one started here).
    outgoing = outgoing.header("traceparent", ctx.traceparent.as_str());
    // The gateway is the edge: a client's own X-Forwarded-For is dropped unless the client is
    // a trusted proxy itself (a load balancer in front).
    if let Some(chain) = up
        .trusted_proxies
        .forward_for(req.peer_addr().map(|a| a.ip()), req.headers())
    {
        outgoing = outgoing.header(FORWARDED_FOR, chain);
    }
    let response = outgoing
        .send()
        .await
        .map_err(|e| upstream_failed(&e, &url))?;
    let status =
        StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
    let mut builder = HttpResponse::build(status);
    let named_in_connection = connection_tokens(
        response
            .headers()
            .iter()
            .map(|(n, v)| (n.as_str(), v.to_str().ok())),
    );
    for (name, value) in response.headers() {
        let n = name.as_str();
        if HOP_BY_HOP.contains(&n)
            || named_in_connection.iter().any(|t| t == n)
            || n == "content-length"
            || n == REQUEST_ID.as_str()
        {
            continue;
        }
        builder.append_header((n, value.as_bytes()));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| upstream_failed(&e, &url))?;
    Ok(builder.body(bytes))
}

/// 504 when the upstream took too long, 502 when it could not be reached or broke off.
fn upstream_failed(e: &reqwest::Error, url: &str) -> ApiError {
    tracing::warn!(error = %e, url = %url, "upstream failed");
    if e.is_timeout() {
        return ApiError::new(
            StatusCode::GATEWAY_TIMEOUT,
            "upstream_timeout",
            "the service behind this route did not answer in time",
        );
    }
    ApiError::new(
        StatusCode::BAD_GATEWAY,
        "upstream_unavailable",
        "the service behind this route is not reachable",
    )
}

/// Header names listed in `Connection` (hop-by-hop for this connection only, RFC 9110).
fn connection_tokens<'a>(headers: impl Iterator<Item = (&'a str, Option<&'a str>)>) -> Vec<String> {
    headers
        .filter(|(name, _)| *name == "connection")
        .filter_map(|(_, v)| v)
        .flat_map(|v| v.split(','))
        .map(|t| t.trim().to_ascii_lowercase())
        .filter(|t| !t.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dot_segments_in_any_encoding_escape_the_prefix() {
        for path in [
            "/api/v1/catalog/../metrics",
            "/api/v1/catalog/%2e%2e/%2e%2e/metrics",
            "/api/v1/catalog/.%2E/x",
            "/api/v1/catalog/%2E/x",
            "/api/v1/catalog/a%2fb",
            "/api/v1/catalog/a%5Cb",
            "/api/v1/catalog/a%00",
        ] {
            assert!(escapes_prefix(path), "{path}");
        }
        for path in [
            "/api/v1/catalog/products",
            "/api/v1/catalog/products/..x",
            "/api/v1/catalog/products?q=%2e%2e",
            "/api/v1/catalog/a%20b",
        ] {
            assert!(!escapes_prefix(path), "{path}");
        }
    }
}
