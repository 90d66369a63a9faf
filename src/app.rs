//! Server assembly: bus, contexts, middleware, routes, and an orderly shutdown (the server
//! drains in-flight requests, then background tasks stop, then pools close).

use std::sync::Arc;
use std::time::Duration;

use actix_web::{web, App, HttpResponse, HttpServer};
use bus::{MemoryBus, SharedBus};
use platform::db::Database;
use platform::http::{configure_extractors, BodyLimit, BodyTimeout};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::config::{BusKind, Config, ContextName};
use crate::contexts;
use crate::ops::{self, OpsAccess, OpsState};

pub struct Application {
    port: u16,
    server: actix_web::dev::Server,
    shutdown: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    databases: Vec<(ContextName, Database)>,
    bus: SharedBus,
}

pub async fn connect_bus(config: &Config) -> anyhow::Result<SharedBus> {
    match config.bus {
        BusKind::Memory => Ok(Arc::new(MemoryBus::new())),
        BusKind::Rabbitmq => {
            let url = config.amqp_url.clone().ok_or_else(|| {
                anyhow::anyhow!("EMPORIUM_AMQP_URL: required with EMPORIUM_BUS=rabbitmq")
            })?;
            let mut rabbit = bus::rabbitmq::RabbitConfig::new(url);
            rabbit.namespace = config.amqp_namespace.clone();
            rabbit.topology = crate::asyncapi::topology();
            rabbit.queue_expires = config.amqp_queue_expires;
            rabbit.capped = vec![(
                crate::asyncapi::UNCONSUMED.to_owned(),
                crate::asyncapi::UNCONSUMED_CAP,
            )];
            Ok(bus::rabbitmq::RabbitBus::connect(rabbit).await?)
        }
        #[cfg(feature = "sqs")]
        BusKind::Sqs => {
            let mut sqs = bus::sqs::SqsConfig::new(config.sqs_namespace.clone());
            sqs.endpoint = config.sqs_endpoint.clone();
            sqs.region = config.sqs_region.clone();
            sqs.topology = crate::asyncapi::topology();
            Ok(bus::sqs::SqsBus::connect(sqs)
                .await
                .map_err(|e| e.context("EMPORIUM_BUS=sqs: cannot reach SNS/SQS"))?)
        }
        #[cfg(not(feature = "sqs"))]
        BusKind::Sqs => {
            anyhow::bail!(
                "EMPORIUM_BUS: this binary was built without the sqs adapter (cargo feature `sqs`); use memory or rabbitmq"
            )
        }
    }
}

impl Application {
    pub async fn build(config: Config) -> anyhow::Result<Self> {
        let bus = connect_bus(&config).await?;
        Self::build_with_bus(config, bus).await
    }

    /// Builds on a given bus (tests run several instances on one memory bus).
    pub async fn build_with_bus(mut config: Config, bus: SharedBus) -> anyhow::Result<Self> {
        let _ = crate::telemetry::metrics();
        // The dashboard calls this process's own listener: with identity here, it is a
        // service client of its own (a secret made now, known to nothing else).
        let serves_dashboard = [
            ContextName::Identity,
            ContextName::Ordering,
            ContextName::Shipping,
        ]
        .iter()
        .all(|c| config.runs(*c));
        let own_client = if serves_dashboard && config.service_credentials.is_none() {
            let secret = hex::encode(rand::random::<[u8; 32]>());
            config
                .service_clients
                .push(identity::ServiceClient::with_secret(
                    LOCAL_CLIENT,
                    &secret,
                    vec![ContextName::Ordering.as_str().to_owned()],
                ));
            Some((LOCAL_CLIENT.to_owned(), secret))
        } else {
            config.service_credentials.clone()
        };
        let internal_key = hex::encode(rand::random::<[u8; 32]>());
        let local = Arc::new(LocalUpstream::new(internal_key.clone()));
        let dashboard = web::Data::new(crate::dashboard::Dashboard::new(
            local.clone(),
            config.dashboard_budget,
            Arc::new(crate::service_tokens::ServiceTokens::new(
                local.clone(),
                own_client,
            )),
        ));
        bus::handler::set_transient_retry_limit(config.transient_retry);
        let shared = match &config.redis_url {
            Some(url) => {
                let state =
                    platform::shared::SharedState::connect(url, &config.redis_namespace).await?;
                tracing::info!(namespace = %config.redis_namespace, "rate limits and log-in throttles shared in Redis");
                Some(Arc::new(state))
            }
            None => None,
        };
        let wired = contexts::wire(&config, bus.clone(), shared.clone()).await?;
        let (shutdown, shutdown_rx) = watch::channel(false);
        let mut tasks = Vec::new();
        let mut configures = Vec::new();
        for module in wired.modules {
            for task in module.tasks {
                tasks.push(tokio::spawn(task(shutdown_rx.clone())));
            }
            configures.push(module.configure);
        }
        // What the broker itself dead-lettered is recorded beside the SQL dead letters of the
        // first context this process hosts, so the admin API lists and replays it.
        if let Some((_, db)) = wired.databases.first() {
            bus.collect_dead_letters(Arc::new(bus::SqlDeadLetters::new(db.clone())))
                .await?;
        }
        let ops_state = web::Data::new(OpsState {
            databases: wired.databases.clone(),
            bus: bus.clone(),
            keys: wired.verifier.keys().clone(),
        });
        tasks.push(tokio::spawn(ops::figures_task(
            wired.databases.clone(),
            bus.clone(),
        )(shutdown_rx.clone())));
        let ops_access = web::Data::new(OpsAccess::new(config.metrics_token.clone()));
        let verifier = web::Data::new(wired.verifier);
        let openapi_json = web::Data::new(crate::openapi::to_json()?);
        let asyncapi_json = web::Data::new(AsyncApiJson(crate::asyncapi::to_json()?));
        let body_limit = config.body_limit;
        let body_timeout = config.body_timeout;
        let rate_limit = web::Data::new(
            crate::limits::RateLimit::new(&config, shared.clone())?.exempting(internal_key),
        );
        let cors_origins = config.cors_origins.clone();
        let (rate_limited, ops_listener) = (config.rate_limit, config.ops_listen.is_some());

        let trusted_proxies = config.trusted_proxies.clone();
        let ops_addr = ops_access.ops_addr.clone();
        let server = with_connection_limits!(
            HttpServer::new(move || {
                let app =
                    App::new().wrap(actix_web::middleware::from_fn(platform::http::head_as_get));
                let mut app = edge_middleware!(app, &cors_origins, rate_limited, ops_listener)
                    .app_data(ops_access.clone())
                    .app_data(rate_limit.clone())
                    .app_data(verifier.clone())
                    .app_data(ops_state.clone())
                    .app_data(openapi_json.clone())
                    .app_data(asyncapi_json.clone())
                    .app_data(dashboard.clone())
                    .app_data(BodyLimit(body_limit))
                    .app_data(BodyTimeout(body_timeout))
                    .app_data(trusted_proxies.clone())
                    .configure(configure_extractors)
                    .configure(ops::configure)
                    .service(web::resource("/openapi.json").route(web::get().to(serve_openapi)))
                    .service(web::resource("/asyncapi.json").route(web::get().to(serve_asyncapi)))
                    .service(web::resource("/docs").route(web::get().to(docs_redirect)))
                    .service(crate::openapi::swagger_ui())
                    .configure(crate::admin::configure)
                    .configure(crate::problems::configure);
                if serves_dashboard {
                    app = app.service(
                        web::resource("/api/v1/dashboard")
                            .route(web::get().to(crate::dashboard::get_dashboard)),
                    );
                }
                for configure in &configures {
                    let configure = configure.clone();
                    app = app.configure(move |cfg| configure(cfg));
                }
                app.default_service(web::to(|| async { HttpResponse::NotFound().finish() }))
            }),
            &config
        )
        // actix binds with SO_REUSEADDR, so a restart does not wait for TIME_WAIT sockets.
        .bind(config.listen)
        .map_err(|e| anyhow::anyhow!("EMPORIUM_LISTEN: cannot bind {}: {e}", config.listen))?;
        let port = server
            .addrs()
            .first()
            .map(|a| a.port())
            .ok_or_else(|| anyhow::anyhow!("EMPORIUM_LISTEN: nothing bound"))?;
        let server = bind_ops!(server, config, ops_addr)?;
        local.set_base(config.listen, port);
        let server = server
            .shutdown_timeout(config.shutdown_timeout.as_secs())
            .run();
        tracing::info!(port, contexts = ?config.contexts.iter().map(|c| c.as_str()).collect::<Vec<_>>(), bus = bus.name(), "emporium listening");
        Ok(Self {
            port,
            server,
            shutdown,
            tasks,
            databases: wired.databases,
            bus,
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn server_handle(&self) -> actix_web::dev::ServerHandle {
        self.server.handle()
    }

    /// Serves until SIGTERM/SIGINT (or the handle stops it), then shuts down in order.
    pub async fn run_until_stopped(self) -> anyhow::Result<()> {
        let result = self.server.await;
        tracing::info!("server stopped; stopping background tasks");
        let _ = self.shutdown.send(true);
        for task in self.tasks {
            if tokio::time::timeout(Duration::from_secs(10), task)
                .await
                .is_err()
            {
                tracing::warn!("a background task did not stop in time");
            }
        }
        self.bus.shutdown().await;
        for (_, db) in &self.databases {
            db.close().await;
        }
        tracing::info!("shutdown complete");
        result.map_err(Into::into)
    }
}

/// The service client a process that hosts identity makes for its own dashboard.
const LOCAL_CLIENT: &str = "emporium-dashboard";

/// The monolith's own listener, on loopback, as the dashboard's upstream for every context.
/// Its requests carry a key only this process knows, which spares them the rate limit (the
/// customer's request was counted once, where it came in).
struct LocalUpstream {
    /// Made at the first dashboard request: a process nobody asks for one spends nothing.
    client: std::sync::OnceLock<reqwest::Client>,
    base: std::sync::OnceLock<String>,
    internal_key: String,
}

impl LocalUpstream {
    fn new(internal_key: String) -> Self {
        Self {
            client: std::sync::OnceLock::new(),
            base: std::sync::OnceLock::new(),
            internal_key,
        }
    }

    /// The bound port, reached on loopback when the listener is on every address.
    fn set_base(&self, listen: std::net::SocketAddr, port: u16) {
        let ip = match listen.ip() {
            std::net::IpAddr::V4(v4) if v4.is_unspecified() => std::net::Ipv4Addr::LOCALHOST.into(),
            std::net::IpAddr::V6(v6) if v6.is_unspecified() => std::net::Ipv6Addr::LOCALHOST.into(),
            ip => ip,
        };
        let _ = self
            .base
            .set(format!("http://{}", std::net::SocketAddr::new(ip, port)));
    }
}

#[async_trait::async_trait]
impl crate::upstream::Upstream for LocalUpstream {
    async fn call(
        &self,
        _context: ContextName,
        call: crate::upstream::Call,
    ) -> anyhow::Result<(u16, web::Bytes)> {
        let base = self
            .base
            .get()
            .ok_or_else(|| anyhow::anyhow!("the listener is not bound yet"))?;
        let client = self.client.get_or_init(|| {
            reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .timeout(Duration::from_secs(10))
                .build()
                .unwrap_or_default()
        });
        let request = call
            .request(client, base)
            .header(crate::limits::INTERNAL_HEADER, &self.internal_key);
        let response = request.send().await?;
        let status = response.status().as_u16();
        Ok((status, response.bytes().await?))
    }
}

async fn docs_redirect() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("location", "/docs/"))
        .finish()
}

async fn serve_openapi(doc: web::Data<String>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.get_ref().clone())
}

/// The event catalogue (AsyncAPI 3), as `emporium openapi` writes `openapi/asyncapi.json`.
async fn serve_asyncapi(doc: web::Data<AsyncApiJson>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(doc.0.clone())
}

/// The AsyncAPI document's text, made once at start-up.
pub(crate) struct AsyncApiJson(pub(crate) String);

/// The layers every HTTP answer of a process or the gateway passes, from the inside out: the
/// rate limit (with its `RateLimit` fields, on 429 too), the operations-listener guard, CORS
/// (so a browser may read every answer, 429 and 503 included), request ids, access log,
/// metrics and problem+json, then compression. Each conditional one costs nothing when off.
macro_rules! edge_middleware {
    ($app:expr, $cors_origins:expr, $rate_limited:expr, $ops_listener:expr) => {
        $app.wrap(actix_web::middleware::Condition::new(
            $rate_limited,
            actix_web::middleware::from_fn($crate::limits::rate_limit_middleware),
        ))
        .wrap(actix_web::middleware::Condition::new(
            $ops_listener,
            actix_web::middleware::from_fn($crate::ops::ops_listener_guard),
        ))
        .wrap($crate::limits::cors($cors_origins))
        .wrap(actix_web::middleware::from_fn(
            platform::http::request_middleware,
        ))
        .wrap(actix_web::middleware::from_fn(
            $crate::compression::leave_alone,
        ))
        .wrap(actix_web::middleware::Compress::default())
        .wrap(actix_web::middleware::from_fn($crate::compression::unmark))
    };
}
pub(crate) use edge_middleware;

/// Connection limits every listener applies (the processes and the gateway): headers must
/// arrive within the header timeout (else 408), idle keep-alive connections close, the
/// number of open connections is bounded, and a closing connection gets a second to go.
/// A body's own deadline is applied where it is read (`platform::http::BodyTimeout`).
macro_rules! with_connection_limits {
    ($server:expr, $config:expr) => {{
        let config: &$crate::config::Config = $config;
        let workers = std::thread::available_parallelism().map_or(2, |n| n.get());
        $server
            .workers(workers)
            .max_connections((config.max_connections / workers).max(1))
            .backlog(1024)
            .keep_alive(config.keep_alive)
            .client_request_timeout(config.header_timeout)
            .client_disconnect_timeout(std::time::Duration::from_secs(1))
    }};
}
pub(crate) use with_connection_limits;

/// Binds the operations listener (`EMPORIUM_OPS_LISTEN`), if configured, on `$server` and
/// records its bound address in `$ops_addr` so the app can tell its requests apart.
macro_rules! bind_ops {
    ($server:expr, $config:expr, $ops_addr:expr) => {{
        let server = $server;
        match $config.ops_listen {
            None => Ok::<_, anyhow::Error>(server),
            Some(listen) => {
                let before = server.addrs().len();
                let server = server.bind(listen).map_err(|e| {
                    anyhow::anyhow!("EMPORIUM_OPS_LISTEN: cannot bind {listen}: {e}")
                })?;
                let bound = server
                    .addrs()
                    .get(before)
                    .copied()
                    .ok_or_else(|| anyhow::anyhow!("EMPORIUM_OPS_LISTEN: nothing bound"))?;
                let _ = $ops_addr.set(bound);
                tracing::info!(port = bound.port(), "operations listener bound");
                Ok(server)
            }
        }
    }};
}
pub(crate) use bind_ops;
