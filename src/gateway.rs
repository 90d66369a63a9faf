//! `emporium gateway`: routes `/api/v1/<context>/...` to an instance of that context
//! (`EMPORIUM_GATEWAY_UPSTREAMS`, several per context separated by `|`), passes
//! `X-Request-Id`, serves the merged `/openapi.json` and `/asyncapi.json`, proxies `/.well-known/jwks.json` to
//! identity, and is ready when every context has an instance in service.
//!
//! The edge: a bearer token on `/api/v1/` is verified here (identity's JWKS) before anything
//! is proxied, and the per-client rate limit and CORS apply here; the contexts verify again.
//! `/api/v1/dashboard` is assembled here from the contexts (`crate::dashboard`).
//!
//! Instances: the one with the fewest requests in flight takes the next; one that refuses a
//! connection, or fails its health check (every 5 s), is out of service for 10 s. A request
//! that could not connect, or a safe one (GET, HEAD, a POST with an `Idempotency-Key`) that
//! got no answer, is tried once more on another instance.
//!
//! A connection is read first by the front door (`front`), which relays plain reads itself
//! under the same rules and hands anything else, with the connection, to the application
//! below (decision 49).

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use actix_web::http::StatusCode;
use actix_web::HttpMessage;
use actix_web::{web, App, HttpRequest, HttpResponse};
use platform::auth::{RemoteJwks, TokenVerifier};
use platform::client_ip::{TrustedProxies, FORWARDED_FOR};
use platform::error::ApiError;
use platform::http::{RequestContext, REQUEST_ID};

use crate::config::{Config, ContextName};
use crate::ops::OpsAccess;
use crate::service_tokens::ServiceTokens;

/// How long an instance stays out of service after a refused connection or a failed check.
const EJECTION: Duration = Duration::from_secs(10);
/// How often every instance's `/health/ready` is checked.
const HEALTH_EVERY: Duration = Duration::from_secs(5);

mod front;

struct Instance {
    base: String,
    in_flight: AtomicUsize,
    out_until: Mutex<Option<Instant>>,
}

impl Instance {
    fn in_service(&self, now: Instant) -> bool {
        self.out_until
            .lock()
            .map_or(true, |until| until.is_none_or(|t| t <= now))
    }

    fn eject(&self, context: &str, why: &'static str) {
        if let Ok(mut until) = self.out_until.lock() {
            if until.is_none_or(|t| t <= Instant::now()) {
                tracing::warn!(context, instance = %self.base, why, "upstream instance out of service");
                metrics::counter!("emporium_gateway_ejections_total", "context" => context.to_owned(), "reason" => why).increment(1);
            }
            *until = Some(Instant::now() + EJECTION);
        }
    }

    fn restore(&self) {
        if let Ok(mut until) = self.out_until.lock() {
            *until = None;
        }
    }
}

/// Counts a request in flight on an instance for as long as it lives.
struct InFlight(Arc<Instance>);

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A configured upstream URL: an address stands for one instance; an `http` URL with a host
/// name stands for every address the name resolves to (a Kubernetes headless Service),
/// resolved again every `EMPORIUM_GATEWAY_RESOLVE_SECS`.
struct Target {
    /// `(host, port)` of a name to resolve.
    name: Option<(String, u16)>,
    /// The instances it stood for at the last successful resolution (at first, itself).
    last: Mutex<Vec<String>>,
}

impl Target {
    fn new(url: &str) -> Self {
        let name = reqwest::Url::parse(url).ok().and_then(|parsed| {
            let host = parsed.host_str()?;
            let named = parsed.scheme() == "http"
                && !host.starts_with('[')
                && host.parse::<std::net::IpAddr>().is_err()
                && parsed.path() == "/"
                && parsed.query().is_none();
            named.then(|| {
                (
                    host.to_owned(),
                    parsed.port_or_known_default().unwrap_or(80),
                )
            })
        });
        Self {
            name,
            last: Mutex::new(vec![url.to_owned()]),
        }
    }
}

/// One context's instances.
struct Pool {
    context: String,
    /// The longest wait for an instance's whole answer (then 504).
    timeout: Duration,
    targets: Vec<Target>,
    instances: std::sync::RwLock<Vec<Arc<Instance>>>,
    /// Every instance is reached over plain HTTP (the front door relays only to those).
    plain_http: bool,
}

fn instance(base: String) -> Arc<Instance> {
    Arc::new(Instance {
        base,
        in_flight: AtomicUsize::new(0),
        out_until: Mutex::new(None),
    })
}

impl Pool {
    fn new(context: &str, bases: &[String], timeout: Duration) -> Self {
        Self {
            context: context.to_owned(),
            timeout,
            targets: bases.iter().map(|b| Target::new(b)).collect(),
            instances: std::sync::RwLock::new(bases.iter().map(|b| instance(b.clone())).collect()),
            plain_http: bases.iter().all(|b| b.starts_with("http://")),
        }
    }

    fn instances(&self) -> Vec<Arc<Instance>> {
        self.instances
            .read()
            .map(|list| list.clone())
            .unwrap_or_default()
    }

    /// Replaces the instances with `bases`, keeping the state (requests in flight, time
    /// out of service) of those that remain.
    fn set_instances(&self, bases: Vec<String>) {
        let Ok(mut list) = self.instances.write() else {
            return;
        };
        let next: Vec<Arc<Instance>> = bases
            .into_iter()
            .map(|base| {
                list.iter()
                    .find(|i| i.base == base)
                    .cloned()
                    .unwrap_or_else(|| instance(base))
            })
            .collect();
        if next
            .iter()
            .map(|i| &i.base)
            .ne(list.iter().map(|i| &i.base))
        {
            tracing::info!(context = %self.context, instances = ?next.iter().map(|i| i.base.as_str()).collect::<Vec<_>>(), "upstream instances");
        }
        *list = next;
    }

    /// Resolves the named targets: each address is an instance. A name that does not
    /// resolve keeps the instances it had (a DNS hiccup does not empty a pool), or at first
    /// stands for itself (the HTTP client resolves it per connection).
    async fn resolve(&self, resolver: &dyn Resolver) {
        if self.targets.iter().all(|t| t.name.is_none()) {
            return;
        }
        let mut bases = Vec::new();
        for target in &self.targets {
            if let Some((host, port)) = &target.name {
                match resolver.resolve(host, *port).await {
                    Ok(mut addrs) if !addrs.is_empty() => {
                        addrs.sort_unstable();
                        addrs.dedup();
                        if let Ok(mut last) = target.last.lock() {
                            *last = addrs.into_iter().map(|a| format!("http://{a}")).collect();
                        }
                    }
                    Ok(_) => {
                        tracing::warn!(context = %self.context, host = %host, "upstream name resolves to nothing; keeping its instances");
                    }
                    Err(e) => {
                        tracing::warn!(context = %self.context, host = %host, error = %e, "cannot resolve upstream name; keeping its instances");
                    }
                }
            }
            if let Ok(last) = target.last.lock() {
                bases.extend(
                    last.iter()
                        .filter(|b| !bases.contains(*b))
                        .cloned()
                        .collect::<Vec<_>>(),
                );
            }
        }
        self.set_instances(bases);
    }

    /// The instance with the fewest requests in flight, in service first; never `other`.
    fn pick(&self, other: Option<&Arc<Instance>>) -> Option<InFlight> {
        let now = Instant::now();
        let list = self.instances.read().ok()?;
        let candidates = list
            .iter()
            .filter(|i| other.is_none_or(|o| !Arc::ptr_eq(i, o)));
        let chosen = candidates
            .min_by_key(|i| (!i.in_service(now), i.in_flight.load(Ordering::Relaxed)))?
            .clone();
        chosen.in_flight.fetch_add(1, Ordering::Relaxed);
        Some(InFlight(chosen))
    }

    fn out_of_service(&self) -> Vec<String> {
        let now = Instant::now();
        self.instances()
            .iter()
            .filter(|i| !i.in_service(now))
            .map(|i| i.base.clone())
            .collect()
    }
}

/// Turns a host name into addresses (the system resolver; a fixed table in tests).
#[async_trait::async_trait]
trait Resolver: Send + Sync {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<std::net::SocketAddr>>;
}

struct SystemResolver;

#[async_trait::async_trait]
impl Resolver for SystemResolver {
    async fn resolve(&self, host: &str, port: u16) -> std::io::Result<Vec<std::net::SocketAddr>> {
        let lookup = tokio::net::lookup_host((host, port));
        match tokio::time::timeout(Duration::from_secs(5), lookup).await {
            Ok(addrs) => Ok(addrs?.collect()),
            Err(_) => Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "DNS lookup timed out",
            )),
        }
    }
}

/// Resolves every pool's names now and then every `every`.
async fn resolve_names(up: Arc<Upstreams>, every: Duration) {
    loop {
        tokio::time::sleep(every).await;
        for pool in up.by_context.values() {
            pool.resolve(&SystemResolver).await;
        }
    }
}

/// The upstream client of one worker thread: its pooled connections are driven by that
/// worker's runtime, so a proxied request never hops threads (one client shared by every
/// worker would hand requests to connections another thread drives).
struct WorkerClient(ProxyClient);

/// The proxy path's client: hyper's pooled HTTP/1.1 client, without reqwest's URL parsing,
/// redirect and retry layers (the hop's cost is most of what the gateway adds to a request).
type ProxyClient =
    hyper_util::client::legacy::Client<HttpConnector, http_body_util::Full<web::Bytes>>;
type HttpConnector = hyper_util::client::legacy::connect::HttpConnector;

fn proxy_client() -> ProxyClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    connector.set_connect_timeout(Some(Duration::from_secs(5)));
    hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .pool_max_idle_per_host(64)
        .build(connector)
}

fn upstream_client(config: &Config) -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(config.upstream_timeout)
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .pool_max_idle_per_host(64)
        .tcp_nodelay(true)
        .build()
        .unwrap_or_default()
}

struct Upstreams {
    by_context: BTreeMap<String, Pool>,
    /// For work outside a worker's requests (health checks, the dashboard).
    client: reqwest::Client,
    /// The proxy path's client where a worker has none of its own.
    proxy: ProxyClient,
    /// The longest wait for an upstream's whole answer (`EMPORIUM_UPSTREAM_TIMEOUT_SECS`)
    /// where a call is not one context's (dead letters); each pool has its own.
    timeout: Duration,
    body_limit: usize,
    body_timeout: Duration,
    openapi: String,
    asyncapi: String,
    trusted_proxies: TrustedProxies,
}

/// Hop-by-hop headers are not forwarded (RFC 9110 §7.6.1), nor the non-standard
/// `Proxy-Connection` some clients still send.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// A request the edge and a context could read two ways is refused before either reads it:
/// two `Authorization` fields (the edge would check one, the context might use the other), or
/// an HTTP/1.1 request without exactly one `Host` (RFC 9112 §3.2).
fn ambiguity(req: &actix_web::dev::ServiceRequest) -> Option<&'static str> {
    let headers = req.headers();
    if headers
        .get_all(actix_web::http::header::AUTHORIZATION)
        .count()
        > 1
    {
        return Some("send exactly one Authorization field");
    }
    let hosts = headers.get_all(actix_web::http::header::HOST).count();
    if req.version() == actix_web::http::Version::HTTP_11 && hosts != 1 {
        return Some("an HTTP/1.1 request carries exactly one Host field");
    }
    None
}

/// A listening socket as the HTTP server makes one (address reuse, a backlog of 1024).
fn bind_listener(addr: std::net::SocketAddr) -> std::io::Result<std::net::TcpListener> {
    let socket = socket2::Socket::new(
        socket2::Domain::for_address(addr),
        socket2::Type::STREAM,
        Some(socket2::Protocol::TCP),
    )?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(1024)?;
    Ok(socket.into())
}

/// The application served on a connection as `HttpServer` serves it (its keep-alive and
/// header timeouts, idle connections closed when the server stops, the listener's address in
/// its `AppConfig`).
macro_rules! h1_service {
    ($app:expr, $addr:expr, $keep_alive:expr, $header_timeout:expr, $shutdown:expr) => {{
        let addr: std::net::SocketAddr = $addr;
        let shutdown: actix_server::GracefulShutdownSignal = $shutdown.clone();
        actix_http::HttpService::build()
            .graceful_shutdown_signal(move || {
                let shutdown = shutdown.clone();
                async move { shutdown.notified().await }
            })
            .keep_alive($keep_alive)
            .client_request_timeout($header_timeout)
            .client_disconnect_timeout(Duration::from_secs(1))
            .local_addr(addr)
            .h1(actix_service::map_config(
                actix_service::ServiceFactoryExt::map_err(
                    actix_service::IntoServiceFactory::into_factory($app),
                    |err: actix_web::Error| {
                        actix_web::ResponseError::error_response(err.as_response_error())
                    },
                ),
                // The connection's listener, so that the ops listener's requests are told apart
                // (`AppConfig`'s constructor is crate-private; this is the one actix-test uses).
                move |()| actix_web::dev::AppConfig::__priv_test_new(false, addr.to_string(), addr),
            ))
    }};
}

pub async fn run(config: Config) -> anyhow::Result<()> {
    if config.gateway_upstreams.is_empty() {
        anyhow::bail!("EMPORIUM_GATEWAY_UPSTREAMS: name at least one upstream, e.g. identity=http://127.0.0.1:8081");
    }
    let _ = crate::telemetry::metrics();
    let shared = match &config.redis_url {
        Some(url) => Some(Arc::new(
            platform::shared::SharedState::connect(url, &config.redis_namespace).await?,
        )),
        None => None,
    };
    let rate_limit = web::Data::new(crate::limits::RateLimit::new(&config, shared)?);
    let rate_limited = config.rate_limit;
    let cors_origins = config.cors_origins.clone();
    // Tokens are checked with identity's keys: EMPORIUM_JWKS_URL, or identity's first instance.
    let jwks_url = config.jwks_url.clone().or_else(|| {
        config
            .gateway_upstreams
            .get(&ContextName::Identity)
            .and_then(|urls| urls.first())
            .map(|base| format!("{base}/.well-known/jwks.json"))
    });
    let verifier = match &jwks_url {
        Some(url) => Some(web::Data::new(TokenVerifier::new(Arc::new(
            RemoteJwks::new(url.clone()),
        )))),
        None => {
            tracing::warn!("no identity upstream and no EMPORIUM_JWKS_URL: tokens pass the gateway unverified, and there is no dashboard");
            None
        }
    };
    let upstreams = web::Data::new(Upstreams {
        by_context: config
            .gateway_upstreams
            .iter()
            .map(|(ctx, urls)| {
                let timeout = config
                    .upstream_timeouts
                    .get(ctx)
                    .copied()
                    .unwrap_or(config.upstream_timeout);
                (
                    ctx.as_str().to_owned(),
                    Pool::new(ctx.as_str(), urls, timeout),
                )
            })
            .collect(),
        client: upstream_client(&config),
        proxy: proxy_client(),
        timeout: config.upstream_timeout,
        body_limit: config.body_limit,
        body_timeout: config.body_timeout,
        trusted_proxies: config.trusted_proxies.clone(),
        openapi: crate::openapi::to_json()?,
        asyncapi: crate::asyncapi::to_json()?,
    });
    for pool in upstreams.by_context.values() {
        pool.resolve(&SystemResolver).await;
    }
    tokio::spawn(resolve_names(
        upstreams.clone().into_inner(),
        config.gateway_resolve_every,
    ));
    tokio::spawn(health_checks(upstreams.clone().into_inner()));
    let serves_dashboard = verifier.is_some()
        && [
            ContextName::Identity,
            ContextName::Ordering,
            ContextName::Shipping,
        ]
        .iter()
        .all(|c| config.gateway_upstreams.contains_key(c));
    if config.service_credentials.is_none() {
        tracing::warn!(
            "EMPORIUM_SERVICE_CLIENT_ID is not set: the dead-letter merge and the dashboard's order counts are unavailable"
        );
    }
    let pools = Arc::new(Pools(upstreams.clone().into_inner()));
    let service_tokens = Arc::new(ServiceTokens::new(
        pools.clone(),
        config.service_credentials.clone(),
    ));
    let dashboard = web::Data::new(crate::dashboard::Dashboard::new(
        pools,
        config.dashboard_budget,
        service_tokens.clone(),
    ));
    let service_tokens = web::Data::from(service_tokens);
    let trusted_proxies = config.trusted_proxies.clone();
    let ops_access = web::Data::new(OpsAccess::new(config.metrics_token.clone()));
    let ops_addr = ops_access.ops_addr.clone();
    let ops_listener = config.ops_listen.is_some();
    let builder = actix_server::Server::build();
    let shutdown = builder.graceful_shutdown_signal();
    let front = Arc::new(front::Front {
        up: upstreams.clone().into_inner(),
        verifier: verifier.clone(),
        rate_limit: rate_limit.clone(),
        header_timeout: config.header_timeout,
        keep_alive: config.keep_alive,
        enabled: config.otlp_endpoint.is_none(),
        shutdown: shutdown.clone(),
    });
    // The application: everything the front door does not relay itself.
    let make_app = move || {
        let worker_client = web::Data::new(WorkerClient(proxy_client()));
        let app = App::new().wrap(actix_web::middleware::from_fn(edge_auth));
        let mut app = crate::app::edge_middleware!(app, &cors_origins, rate_limited, ops_listener)
            .app_data(ops_access.clone())
            .app_data(upstreams.clone())
            .app_data(worker_client)
            .app_data(rate_limit.clone())
            .app_data(dashboard.clone())
            .app_data(service_tokens.clone())
            .app_data(trusted_proxies.clone())
            .configure(platform::http::configure_extractors);
        if let Some(verifier) = &verifier {
            app = app.app_data(verifier.clone());
        }
        if serves_dashboard {
            app = app.service(
                web::resource("/api/v1/dashboard")
                    .route(web::get().to(crate::dashboard::get_dashboard)),
            );
        }
        app.service(
            web::resource("/health/live").route(
                web::get()
                    .to(|| async { HttpResponse::Ok().json(serde_json::json!({"status": "ok"})) }),
            ),
        )
        .service(web::resource("/health/ready").route(web::get().to(ready)))
        .service(web::resource("/metrics").route(web::get().to(crate::ops::metrics)))
        .service(web::resource("/openapi.json").route(web::get().to(openapi)))
        .service(web::resource("/asyncapi.json").route(web::get().to(asyncapi)))
        .configure(crate::problems::configure)
        .configure(crate::admin::configure)
        .service(web::resource("/.well-known/jwks.json").route(web::get().to(jwks)))
        .service(web::resource("/api/v1/admin/messaging").route(web::get().to(messaging)))
        .service(
            web::scope("/api/v1/admin/dead-letters")
                .service(web::resource("").route(web::get().to(list_dead_letters)))
                .service(web::resource("/{id}/replay").route(web::post().to(replay_dead_letter))),
        )
        // Everything else under `/api/v1/<context>/` is proxied. Matched by hand rather
        // than by a `{tail:.*}` pattern: the router would run a regex on every request.
        .default_service(web::to(forward))
    };
    let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
    let listener = bind_listener(config.listen)
        .map_err(|e| anyhow::anyhow!("EMPORIUM_LISTEN: cannot bind {}: {e}", config.listen))?;
    // The bound port (EMPORIUM_LISTEN may ask for port 0).
    let addr = listener.local_addr()?;
    let port = addr.port();
    let (keep_alive, header_timeout) = (config.keep_alive, config.header_timeout);
    let mut builder = builder
        .workers(workers)
        .max_concurrent_connections((config.max_connections / workers).max(1))
        .shutdown_timeout(config.shutdown_timeout.as_secs());
    {
        let make_app = make_app.clone();
        let shutdown = shutdown.clone();
        builder = builder.listen("gateway", listener, move || {
            let h1 = h1_service!(make_app(), addr, keep_alive, header_timeout, shutdown);
            let front = front.clone();
            actix_service::fn_factory(move || {
                let pending = actix_service::ServiceFactory::new_service(&h1, ());
                let front = front.clone();
                async move {
                    let h1 = std::rc::Rc::new(pending.await.map_err(|_| ())?);
                    let worker = std::rc::Rc::new(front::Worker::new(front));
                    Ok::<_, ()>(actix_service::fn_service(
                        move |stream: tokio::net::TcpStream| {
                            let (worker, h1) = (worker.clone(), h1.clone());
                            async move {
                                front::serve(worker, stream, h1).await;
                                Ok::<_, ()>(())
                            }
                        },
                    ))
                }
            })
        })?;
    }
    if let Some(listen) = config.ops_listen {
        let listener = bind_listener(listen)
            .map_err(|e| anyhow::anyhow!("EMPORIUM_OPS_LISTEN: cannot bind {listen}: {e}"))?;
        let bound = listener.local_addr()?;
        let _ = ops_addr.set(bound);
        tracing::info!(port = bound.port(), "operations listener bound");
        builder = builder.listen("ops", listener, move || {
            h1_service!(make_app(), bound, keep_alive, header_timeout, shutdown).tcp()
        })?;
    }
    let server = builder.run();
    tracing::info!(port, upstreams = ?config.gateway_upstreams, "gateway listening");
    server.await?;
    Ok(())
}

/// The edge's token check: a bearer token on `/api/v1/` must be a valid access token, or the
/// request stops here with 401 (503 when identity's keys cannot be had at all). Requests
/// without one pass: the contexts decide what is public.
async fn edge_auth(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    use actix_web::ResponseError;
    if let Some(why) = ambiguity(&req) {
        let response = ApiError::bad_request("ambiguous_request", why).error_response();
        return Ok(req.into_response(response));
    }
    let token = req
        .path()
        .starts_with("/api/v1/")
        .then(|| platform::auth::bearer(req.request()))
        .flatten();
    let verifier = req.app_data::<web::Data<TokenVerifier>>().cloned();
    if let (Some(token), Some(verifier)) = (token, verifier) {
        if let Err(refused) = verifier.verify(&token).await {
            metrics::counter!("emporium_gateway_tokens_refused_total").increment(1);
            let response = if verifier.keys().ready().await {
                refused.error_response()
            } else {
                ApiError::unavailable(
                    "service_unavailable",
                    "access tokens cannot be checked right now; try again shortly",
                )
                .with_retry_after(platform::error::UNAVAILABLE_RETRY_AFTER_SECS)
                .error_response()
            };
            return Ok(req.into_response(response));
        }
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// The dashboard's upstream: the same pools and balancing as proxied requests, one retry on
/// another instance when the first cannot be reached.
struct Pools(Arc<Upstreams>);

#[async_trait::async_trait]
impl crate::upstream::Upstream for Pools {
    async fn call(
        &self,
        context: ContextName,
        call: crate::upstream::Call,
    ) -> anyhow::Result<(u16, web::Bytes)> {
        let pool = self
            .0
            .by_context
            .get(context.as_str())
            .ok_or_else(|| anyhow::anyhow!("no {} upstream", context.as_str()))?;
        let mut tried: Option<InFlight> = None;
        loop {
            let instance = pool
                .pick(tried.as_ref().map(|t| &t.0))
                .ok_or_else(|| anyhow::anyhow!("no {} instance", context.as_str()))?;
            let request = call.request(&self.0.client, &instance.0.base);
            match request.send().await {
                Ok(response) => {
                    let status = response.status().as_u16();
                    return Ok((status, response.bytes().await?));
                }
                Err(e) if e.is_connect() && tried.is_none() => {
                    instance.0.eject(&pool.context, "connect");
                    tried = Some(instance);
                }
                Err(e) => return Err(e.into()),
            }
        }
    }
}

async fn openapi(up: web::Data<Upstreams>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(up.openapi.clone())
}

async fn asyncapi(up: web::Data<Upstreams>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(up.asyncapi.clone())
}

/// Checks every instance's `/health/ready`; an instance that fails is out of service for
/// a while, one that answers is back.
async fn check_instances(up: &Upstreams) -> Vec<(String, bool)> {
    let checks = up.by_context.values().flat_map(|pool| {
        pool.instances().into_iter().map(|instance| {
            let client = up.client.clone();
            let context = pool.context.clone();
            let instance = instance.clone();
            async move {
                let ok = client
                    .get(format!("{}/health/ready", instance.base))
                    .timeout(Duration::from_secs(2))
                    .send()
                    .await
                    .is_ok_and(|r| r.status().is_success());
                if ok {
                    instance.restore();
                } else {
                    instance.eject(&context, "health_check");
                }
                (context, ok)
            }
        })
    });
    futures::future::join_all(checks).await
}

async fn health_checks(up: Arc<Upstreams>) {
    loop {
        check_instances(&up).await;
        for pool in up.by_context.values() {
            metrics::gauge!("emporium_gateway_instances_out", "context" => pool.context.clone())
                .set(pool.out_of_service().len() as f64);
        }
        tokio::time::sleep(HEALTH_EVERY).await;
    }
}

/// Ready when every context has an instance in service; says which instances are out.
async fn ready(up: web::Data<Upstreams>) -> HttpResponse {
    let checks = check_instances(&up).await;
    let mut body = serde_json::Map::new();
    let mut all = true;
    for pool in up.by_context.values() {
        let up_here = checks.iter().any(|(c, ok)| *c == pool.context && *ok);
        all &= up_here;
        body.insert(
            format!("{}_upstream", pool.context),
            serde_json::json!(if up_here { "up" } else { "down" }),
        );
    }
    let out: Vec<String> = up
        .by_context
        .values()
        .flat_map(Pool::out_of_service)
        .collect();
    body.insert("instances_out".to_owned(), serde_json::json!(out));
    if all {
        HttpResponse::Ok().json(serde_json::json!({"status": "ready", "checks": body}))
    } else {
        HttpResponse::ServiceUnavailable()
            .content_type(platform::error::PROBLEM_JSON)
            .json(serde_json::json!({"type": platform::error::problem_type("not_ready"), "title": "Service Unavailable", "status": 503, "code": "not_ready", "checks": body}))
    }
}

async fn jwks(
    up: web::Data<Upstreams>,
    req: HttpRequest,
    ctx: RequestContext,
) -> Result<HttpResponse, ApiError> {
    let pool = up
        .by_context
        .get(ContextName::Identity.as_str())
        .ok_or_else(|| ApiError::not_found("not_found", "no identity upstream"))?;
    send(
        &up,
        pool,
        &req,
        &ctx,
        "/.well-known/jwks.json",
        web::Bytes::new(),
        true,
    )
    .await
}

/// Sends to one instance of `pool`, and once more to another when the first could not be
/// reached, or (a `safe` request) did not answer.
async fn send(
    up: &Upstreams,
    pool: &Pool,
    req: &HttpRequest,
    ctx: &RequestContext,
    path_and_query: &str,
    body: web::Bytes,
    safe: bool,
) -> Result<HttpResponse, ApiError> {
    let first = pool
        .pick(None)
        .ok_or_else(|| ApiError::not_found("not_found", "no upstream"))?;
    let url = format!("{}{path_and_query}", first.0.base);
    let failure = match proxy(up, req, ctx, url, body.clone(), pool.timeout, None).await {
        Ok(response) => return Ok(response),
        Err(failure) => failure,
    };
    let retry = match &failure {
        ProxyError::Unreached(_) => {
            first.0.eject(&pool.context, "connect");
            true
        }
        ProxyError::NoAnswer(_) => safe,
        ProxyError::Refused(_) => false,
    };
    let Some(second) = retry.then(|| pool.pick(Some(&first.0))).flatten() else {
        return Err(failure.into());
    };
    drop(first);
    metrics::counter!("emporium_gateway_retries_total", "context" => pool.context.clone())
        .increment(1);
    let url = format!("{}{path_and_query}", second.0.base);
    match proxy(up, req, ctx, url, body, pool.timeout, None).await {
        Ok(response) => Ok(response),
        Err(failure) => {
            if matches!(failure, ProxyError::Unreached(_)) {
                second.0.eject(&pool.context, "connect");
            }
            Err(failure.into())
        }
    }
}

async fn forward(
    up: web::Data<Upstreams>,
    req: HttpRequest,
    ctx: RequestContext,
    mut payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let not_found = || ApiError::not_found("not_found", "no such resource");
    let context = req
        .path()
        .strip_prefix("/api/v1/")
        .and_then(|rest| rest.split_once('/'))
        .map(|(context, _)| context)
        .ok_or_else(not_found)?;
    let owner = ContextName::serving(context).ok_or_else(not_found)?;
    let pool = up.by_context.get(owner.as_str()).ok_or_else(not_found)?;
    req.extensions_mut()
        .insert(platform::http::RouteLabel("/api/v1/{context}/{tail}"));
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
    let path_and_query = if query.is_empty() {
        req.path().to_owned()
    } else {
        format!("{}?{query}", req.path())
    };
    // A path of plain characters, without dot segments, is what a URL parser leaves as it is;
    // anything else is parsed as the upstream will see it, and must stay under the prefix.
    if !is_plain_path(req.path()) {
        let prefix = format!("/api/v1/{context}/");
        let parsed =
            reqwest::Url::parse(&format!("http://127.0.0.1{path_and_query}")).map_err(|_| {
                ApiError::bad_request("invalid_path", "the path is not a valid URL path")
            })?;
        if !parsed.path().starts_with(&prefix) {
            return Err(ApiError::bad_request(
                "invalid_path",
                "the path leaves its context's prefix",
            ));
        }
    }
    // Safe to send twice: reads, and writes the upstream deduplicates by key.
    let method = req.method();
    let safe = method == actix_web::http::Method::GET
        || method == actix_web::http::Method::HEAD
        || (method == actix_web::http::Method::POST
            && req.headers().contains_key("idempotency-key"));
    send(&up, pool, &req, &ctx, &path_and_query, body, safe).await
}

/// Letters, digits and the URL path characters that no parser rewrites, and no segment that
/// starts with a dot.
fn is_plain_path(path: &str) -> bool {
    !path.contains("/.")
        && path.bytes().all(|b| {
            b.is_ascii_alphanumeric()
                || matches!(
                    b,
                    b'/' | b'-'
                        | b'.'
                        | b'_'
                        | b'~'
                        | b'!'
                        | b'$'
                        | b'&'
                        | b'\''
                        | b'('
                        | b')'
                        | b'*'
                        | b'+'
                        | b','
                        | b';'
                        | b'='
                        | b':'
                        | b'@'
                )
        })
}

/// True when a raw request path has a `.` or `..` segment, or an encoded `/`, `\` or NUL,
/// in any case or encoding (`%2e%2E`, `.%2e`).
fn escapes_prefix(raw_path: &str) -> bool {
    if !raw_path.contains('%') && !raw_path.contains("/.") && !raw_path.contains('\\') {
        return false;
    }
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
    /// One instance of each context's process, each process once (several contexts may
    /// share one; the instances of a context share its database, so one answers for all),
    /// with a context it hosts.
    fn processes(&self) -> Vec<(String, ContextName)> {
        let now = Instant::now();
        let mut bases: Vec<(String, ContextName)> = self
            .by_context
            .values()
            .filter_map(|pool| {
                let instances = pool.instances();
                let context = ContextName::parse(&pool.context)?;
                instances
                    .iter()
                    .find(|i| i.in_service(now))
                    .or_else(|| instances.first())
                    .map(|i| (i.base.clone(), context))
            })
            .collect();
        bases.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        bases.dedup_by(|a, b| a.0 == b.0);
        bases
    }
}

/// Dead letters are an admin's to see, checked here: the processes are asked with the
/// gateway's own service token, not the admin's.
async fn admin_at_edge(req: &HttpRequest) -> Result<(), ApiError> {
    let verifier = req.app_data::<web::Data<TokenVerifier>>().ok_or_else(|| {
        ApiError::unavailable(
            "service_unavailable",
            "tokens cannot be checked: the gateway has no identity upstream or EMPORIUM_JWKS_URL",
        )
    })?;
    let token = platform::auth::bearer(req)
        .ok_or_else(|| ApiError::unauthorized("an access token is required"))?;
    if !verifier.verify(&token).await?.is_admin() {
        return Err(ApiError::forbidden("this needs the admin role"));
    }
    Ok(())
}

/// A service token for a process, by a context it hosts (503 when the gateway has no
/// service credentials or identity gives none).
async fn process_token(
    tokens: &ServiceTokens,
    req: &HttpRequest,
    ctx: &RequestContext,
    up: &Upstreams,
    context: ContextName,
) -> Result<String, ApiError> {
    let caller = crate::upstream::Caller {
        request: ctx.clone(),
        forwarded_for: up
            .trusted_proxies
            .forward_for(req.peer_addr().map(|a| a.ip()), req.headers()),
    };
    tokens
        .token(context, &caller)
        .await
        .map_err(|e| {
            tracing::warn!(error = %e, "no service token for the dead-letter merge");
            ApiError::unavailable(
                "service_unavailable",
                "the gateway cannot act as a service (EMPORIUM_SERVICE_CLIENT_ID and a client for it at identity)",
            )
        })
}

/// Each process keeps the dead letters of its own contexts: the gateway asks every process
/// for the same page and merges them, newest first, into one page with one cursor.
async fn list_dead_letters(
    up: web::Data<Upstreams>,
    tokens: web::Data<ServiceTokens>,
    req: HttpRequest,
    ctx: RequestContext,
    query: web::Query<platform::pagination::PageQuery>,
) -> Result<HttpResponse, ApiError> {
    admin_at_edge(&req).await?;
    let page = platform::pagination::PageRequest::from_query(
        query.limit,
        query.cursor.as_deref(),
        &[platform::pagination::Part::Id],
    )?;
    let path = format!("{DEAD_LETTERS}?{}", req.query_string());
    let pages: Vec<platform::pagination::Page<serde_json::Value>> =
        match from_every_process(&up, &tokens, &req, &ctx, &path).await? {
            Ok(pages) => pages,
            Err(refused) => return Ok(refused),
        };
    let mut items = Vec::new();
    let mut more = false;
    for part in pages {
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

/// Asks every process for `path` as a service (its own token per process), in parallel:
/// each answer's body as `T`, or the first refusal as it came (an unauthorised or invalid
/// request is refused alike by every process), to pass on.
async fn from_every_process<T: serde::de::DeserializeOwned>(
    up: &Upstreams,
    tokens: &ServiceTokens,
    req: &HttpRequest,
    ctx: &RequestContext,
    path: &str,
) -> Result<Result<Vec<T>, HttpResponse>, ApiError> {
    let calls = up
        .processes()
        .into_iter()
        .map(|(base, context)| async move {
            let token = process_token(tokens, req, ctx, up, context).await?;
            let url = format!("{base}{path}");
            proxy(
                up,
                req,
                ctx,
                url,
                web::Bytes::new(),
                up.timeout,
                Some(&token),
            )
            .await
            .map_err(ApiError::from)
        });
    let mut answers = Vec::new();
    for response in futures::future::join_all(calls).await {
        let response = response?;
        if !response.status().is_success() {
            return Ok(Err(response));
        }
        let bytes = actix_web::body::to_bytes(response.into_body())
            .await
            .map_err(|_| ApiError::internal(anyhow::anyhow!("unreadable upstream answer")))?;
        let answer = serde_json::from_slice(&bytes)
            .map_err(|e| ApiError::internal(anyhow::anyhow!("upstream answer {path}: {e}")))?;
        answers.push(answer);
    }
    Ok(Ok(answers))
}

/// Each process counts its own contexts' outbox and dead letters: the gateway asks every
/// process and lists each context once (instances of one context share its database).
async fn messaging(
    up: web::Data<Upstreams>,
    tokens: web::Data<ServiceTokens>,
    req: HttpRequest,
    ctx: RequestContext,
) -> Result<HttpResponse, ApiError> {
    admin_at_edge(&req).await?;
    let path = "/internal/v1/operations/messaging";
    let answers: Vec<crate::ops::MessagingResponse> =
        match from_every_process(&up, &tokens, &req, &ctx, path).await? {
            Ok(answers) => answers,
            Err(refused) => return Ok(refused),
        };
    let contexts: std::collections::BTreeMap<_, _> = answers
        .into_iter()
        .flat_map(|a| a.contexts)
        .map(|c| (c.context.clone(), c))
        .collect();
    Ok(HttpResponse::Ok().json(crate::ops::MessagingResponse {
        contexts: contexts.into_values().collect(),
    }))
}

/// Where each process serves its dead letters to services.
const DEAD_LETTERS: &str = "/internal/v1/operations/dead-letters";

/// A dead letter lives in one process: the first that does not answer 404 replays it.
async fn replay_dead_letter(
    up: web::Data<Upstreams>,
    tokens: web::Data<ServiceTokens>,
    req: HttpRequest,
    ctx: RequestContext,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    admin_at_edge(&req).await?;
    let id = id.into_inner();
    let mut last = None;
    for (base, context) in up.processes() {
        let token = process_token(&tokens, &req, &ctx, &up, context).await?;
        let response = proxy(
            &up,
            &req,
            &ctx,
            format!("{base}{DEAD_LETTERS}/{id}/replay"),
            web::Bytes::new(),
            up.timeout,
            Some(&token),
        )
        .await?;
        if response.status() != StatusCode::NOT_FOUND {
            return Ok(response);
        }
        last = Some(response);
    }
    last.ok_or_else(|| ApiError::not_found("not_found", "no upstream"))
}

/// Why a request did not come back from an upstream.
enum ProxyError {
    /// No connection: the request never reached the instance (always safe to send again).
    Unreached(ApiError),
    /// Sent, but no (whole) answer came back: it may or may not have been carried out.
    NoAnswer(ApiError),
    /// Not sendable at all.
    Refused(ApiError),
}

impl From<ProxyError> for ApiError {
    fn from(e: ProxyError) -> Self {
        match e {
            ProxyError::Unreached(e) | ProxyError::NoAnswer(e) | ProxyError::Refused(e) => e,
        }
    }
}

async fn proxy(
    up: &Upstreams,
    req: &HttpRequest,
    ctx: &RequestContext,
    url: String,
    body: web::Bytes,
    timeout: Duration,
    bearer: Option<&str>,
) -> Result<HttpResponse, ProxyError> {
    let invalid = || {
        ProxyError::Refused(ApiError::bad_request(
            "invalid_path",
            "the path is not a valid URL path",
        ))
    };
    let method = hyper::Method::from_bytes(req.method().as_str().as_bytes()).map_err(|_| {
        ProxyError::Refused(platform::http::status_problem(
            StatusCode::METHOD_NOT_ALLOWED,
        ))
    })?;
    let uri: hyper::Uri = url.parse().map_err(|_| invalid())?;
    let mut outgoing = hyper::Request::new(http_body_util::Full::new(body));
    *outgoing.method_mut() = method;
    *outgoing.uri_mut() = uri;
    let headers = outgoing.headers_mut();
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
            || (bearer.is_some() && n == "authorization")
        {
            continue;
        }
        if let (Ok(n), Ok(v)) = (
            hyper::header::HeaderName::from_bytes(n.as_bytes()),
            hyper::header::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(n, v);
        }
    }
    let mut put = |name: &'static str, value: &str| {
        if let Ok(v) = hyper::header::HeaderValue::from_str(value) {
            headers.insert(name, v);
        }
    };
    put("x-request-id", ctx.request_id.as_str());
    if let Some(token) = bearer {
        put("authorization", &format!("Bearer {token}"));
    }
    // The upstream continues this request's trace (the caller's, or one started here).
    put("traceparent", ctx.traceparent.as_str());
    // The gateway is the edge: a client's own X-Forwarded-For is dropped unless the client is
    // a trusted proxy itself (a load balancer in front).
    if let Some(chain) = up
        .trusted_proxies
        .forward_for(req.peer_addr().map(|a| a.ip()), req.headers())
    {
        put(FORWARDED_FOR, &chain);
    }
    let client = req
        .app_data::<web::Data<WorkerClient>>()
        .map_or(&up.proxy, |c| &c.0);
    // One deadline for the whole answer, head and body, as before the body streams.
    let deadline = tokio::time::Instant::now() + timeout;
    let response = match tokio::time::timeout_at(deadline, client.request(outgoing)).await {
        Err(_) => {
            return Err(ProxyError::NoAnswer(upstream_failed(
                Failure::Timeout,
                &"no answer in time",
                &url,
            )))
        }
        Ok(Err(e)) if e.is_connect() => {
            return Err(ProxyError::Unreached(upstream_failed(
                Failure::Unreachable,
                &e,
                &url,
            )))
        }
        Ok(Err(e)) => {
            return Err(ProxyError::NoAnswer(upstream_failed(
                Failure::Broken,
                &e,
                &url,
            )))
        }
        Ok(Ok(response)) => response,
    };
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
    // The body streams through as it arrives, with its length when the upstream gave one.
    let body = response.into_body();
    if let Some(length) = hyper::body::Body::size_hint(&body).exact() {
        builder.no_chunking(length);
    }
    let stream = futures::StreamExt::take_until(
        http_body_util::BodyDataStream::new(body),
        tokio::time::sleep_until(deadline),
    );
    Ok(builder.streaming(stream))
}

enum Failure {
    Timeout,
    Unreachable,
    Broken,
}

/// 504 when the upstream took too long, 502 when it could not be reached or broke off.
fn upstream_failed(kind: Failure, e: &dyn std::fmt::Display, url: &str) -> ApiError {
    tracing::warn!(error = %e, url = %url, "upstream failed");
    if let Failure::Timeout = kind {
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

    /// Answers from a table that the test changes.
    struct Table(
        Mutex<std::collections::HashMap<String, std::io::Result<Vec<std::net::SocketAddr>>>>,
    );

    #[async_trait::async_trait]
    impl Resolver for Table {
        async fn resolve(
            &self,
            host: &str,
            port: u16,
        ) -> std::io::Result<Vec<std::net::SocketAddr>> {
            let table = self.0.lock().unwrap_or_else(|p| p.into_inner());
            match table.get(host) {
                Some(Ok(addrs)) => Ok(addrs
                    .iter()
                    .map(|a| std::net::SocketAddr::new(a.ip(), port))
                    .collect()),
                Some(Err(e)) => Err(std::io::Error::new(e.kind(), e.to_string())),
                None => Err(std::io::Error::other("no such host")),
            }
        }
    }

    fn addrs(list: &[&str]) -> std::io::Result<Vec<std::net::SocketAddr>> {
        Ok(list
            .iter()
            .map(|a| {
                std::net::SocketAddr::new(
                    a.parse().unwrap_or(std::net::Ipv4Addr::UNSPECIFIED.into()),
                    0,
                )
            })
            .collect())
    }

    fn bases(pool: &Pool) -> Vec<String> {
        pool.instances().iter().map(|i| i.base.clone()).collect()
    }

    #[tokio::test]
    async fn a_name_stands_for_every_address_it_resolves_to_and_follows_changes() {
        let table = Table(Mutex::new(
            [(
                "catalog.shop.svc".to_owned(),
                addrs(&["10.0.0.6", "10.0.0.5"]),
            )]
            .into(),
        ));
        let pool = Pool::new(
            "catalog",
            &[
                "http://catalog.shop.svc:8080".to_owned(),
                "http://10.0.1.1:8080".to_owned(),
            ],
            Duration::from_secs(30),
        );
        pool.resolve(&table).await;
        assert_eq!(
            bases(&pool),
            [
                "http://10.0.0.5:8080",
                "http://10.0.0.6:8080",
                "http://10.0.1.1:8080"
            ]
        );
        // An instance keeps its state across resolutions while its address stays.
        let kept = pool.instances()[1].clone();
        kept.eject("catalog", "connect");

        // Scaled: one address gone, one new.
        table.0.lock().unwrap_or_else(|p| p.into_inner()).insert(
            "catalog.shop.svc".to_owned(),
            addrs(&["10.0.0.6", "10.0.0.7"]),
        );
        pool.resolve(&table).await;
        assert_eq!(
            bases(&pool),
            [
                "http://10.0.0.6:8080",
                "http://10.0.0.7:8080",
                "http://10.0.1.1:8080"
            ]
        );
        assert!(Arc::ptr_eq(&pool.instances()[0], &kept));
        assert_eq!(pool.out_of_service(), ["http://10.0.0.6:8080"]);

        // DNS fails, or answers nothing: the instances stay as they were.
        table.0.lock().unwrap_or_else(|p| p.into_inner()).insert(
            "catalog.shop.svc".to_owned(),
            Err(std::io::Error::other("SERVFAIL")),
        );
        pool.resolve(&table).await;
        assert_eq!(bases(&pool).len(), 3);
        table
            .0
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .insert("catalog.shop.svc".to_owned(), addrs(&[]));
        pool.resolve(&table).await;
        assert_eq!(bases(&pool).len(), 3);
    }

    #[tokio::test]
    async fn a_name_that_never_resolved_stands_for_itself_and_addresses_and_https_are_not_resolved()
    {
        let table = Table(Mutex::new(Default::default()));
        let pool = Pool::new(
            "ordering",
            &[
                "http://nowhere.invalid:8080".to_owned(),
                "https://ordering.example.com".to_owned(),
                "http://[::1]:8081".to_owned(),
            ],
            Duration::from_secs(30),
        );
        pool.resolve(&table).await;
        assert_eq!(
            bases(&pool),
            [
                "http://nowhere.invalid:8080",
                "https://ordering.example.com",
                "http://[::1]:8081"
            ]
        );
        assert!(pool.targets[0].name.is_some());
        assert!(pool.targets[1].name.is_none(), "TLS needs the name");
        assert!(pool.targets[2].name.is_none());
    }

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
