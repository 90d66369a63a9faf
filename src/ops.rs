//! Operations endpoints: liveness, readiness (each context's database, the bus and the token
//! keys), and the dead-letter admin API.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use bus::{DeadLetter, DeadLetterStore, SharedBus, SqlDeadLetters};
use kernel::Timestamp;
use platform::auth::{AdminUser, KeySource};
use platform::db::Database;
use platform::error::{ApiError, PROBLEM_JSON};
use platform::pagination::{Page, PageQuery, PageRequest, Part};
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::ToSchema;

use crate::config::ContextName;

pub struct OpsState {
    pub databases: Vec<(ContextName, Database)>,
    pub bus: SharedBus,
    pub keys: Arc<dyn KeySource>,
}

impl OpsState {
    fn stores(&self) -> Vec<SqlDeadLetters> {
        self.databases
            .iter()
            .map(|(_, db)| SqlDeadLetters::new(db.clone()))
            .collect()
    }
}

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(web::resource("/health/live").route(web::get().to(live)))
        .service(web::resource("/metrics").route(web::get().to(metrics)))
        .service(web::resource("/health/ready").route(web::get().to(ready)))
        .service(web::resource("/api/v1/admin/messaging").route(web::get().to(messaging)))
        .service(
            web::resource("/api/v1/admin/dead-letters").route(web::get().to(list_dead_letters)),
        )
        .service(
            web::resource("/api/v1/admin/dead-letters/{id}/replay")
                .route(web::post().to(replay_dead_letter)),
        )
        // The same for services (the gateway merging every process's dead letters), with a
        // client-credentials token for a context this process hosts; not in the public API,
        // and not routed by the gateway.
        .service(
            web::resource("/internal/v1/operations/messaging")
                .route(web::get().to(service_messaging)),
        )
        .service(
            web::scope("/internal/v1/operations/dead-letters")
                .service(web::resource("").route(web::get().to(service_list_dead_letters)))
                .service(
                    web::resource("/{id}/replay").route(web::post().to(service_replay_dead_letter)),
                ),
        );
}

/// The calling service, whose token must be for one of the contexts this process hosts.
async fn hosted_service(req: &HttpRequest, state: &OpsState) -> Result<String, ApiError> {
    let (verifier, token) =
        platform::auth::verifier_and_token(req, "a service access token is required")?;
    let audiences: Vec<&str> = state.databases.iter().map(|(c, _)| c.as_str()).collect();
    verifier.verify_service_among(&token, &audiences).await
}

pub(crate) async fn service_list_dead_letters(
    req: HttpRequest,
    state: web::Data<OpsState>,
    query: web::Query<PageQuery>,
) -> Result<Page<DeadLetterResponse>, ApiError> {
    let service = hosted_service(&req, &state).await?;
    tracing::debug!(%service, "dead letters listed for a service");
    dead_letter_page(&state, &query).await
}

pub(crate) async fn service_messaging(
    req: HttpRequest,
    state: web::Data<OpsState>,
) -> Result<web::Json<MessagingResponse>, ApiError> {
    hosted_service(&req, &state).await?;
    messaging_figures(&state).await
}

pub(crate) async fn service_replay_dead_letter(
    req: HttpRequest,
    state: web::Data<OpsState>,
    id: web::Path<uuid::Uuid>,
) -> Result<web::Json<DeadLetterResponse>, ApiError> {
    let service = hosted_service(&req, &state).await?;
    tracing::info!(%service, id = %id, "dead letter replayed for a service");
    replay(&state, id.into_inner()).await
}

/// Liveness: the process serves requests.
#[utoipa::path(
    get, path = "/health/live", tag = "operations", operation_id = "health_live",
    responses((status = 200, description = "The process is alive"))
)]
pub(crate) async fn live() -> HttpResponse {
    HttpResponse::Ok().json(json!({"status": "ok"}))
}

/// Prometheus metrics of this process: HTTP, bus deliveries, and each hosted context's
/// outbox backlog and open dead letters (refreshed in the background, never per scrape).
/// Served on the operations listener (`EMPORIUM_OPS_LISTEN`), or on the public one to a
/// caller with the metrics token (`EMPORIUM_METRICS_TOKEN`); to anyone else it does not
/// exist (404).
#[utoipa::path(
    get, path = "/metrics", tag = "operations", operation_id = "metrics",
    security((), ("metrics_token" = [])),
    responses(
        (status = 200, description = "Prometheus text exposition format", content_type = "text/plain", body = String),
        (status = 404, description = "Not on this listener, or without the metrics token", content_type = "application/problem+json", body = platform::error::ProblemBody),
        (status = 503, description = "Metrics are not available in this process", content_type = "application/problem+json", body = platform::error::ProblemBody)
    )
)]
pub(crate) async fn metrics(
    access: web::Data<OpsAccess>,
    req: HttpRequest,
) -> Result<HttpResponse, ApiError> {
    if !access.allows(&req) {
        return Err(ApiError::not_found("not_found", "no such resource"));
    }
    crate::telemetry::metrics_page()
}

/// Refreshes the figures `/metrics` shows that cost a query (outbox backlog, open dead
/// letters) and the state of each dependency (`emporium_dependency_up`, and
/// `emporium_ready`, 1 when all are up), every few seconds, so a scrape does no database
/// work and an alert can see a dependency go down or readiness flap between scrapes.
pub fn figures_task(
    databases: Vec<(ContextName, Database)>,
    bus: SharedBus,
) -> platform::module::BackgroundTask {
    Box::new(move |mut shutdown| {
        Box::pin(async move {
            loop {
                let mut all_up = true;
                for (ctx, db) in &databases {
                    let pinged =
                        tokio::time::timeout(std::time::Duration::from_secs(2), db.ping()).await;
                    let up = matches!(pinged, Ok(Ok(())));
                    all_up &= up;
                    metrics::gauge!("emporium_dependency_up", "dependency" => format!("{}_database", ctx.as_str()))
                        .set(f64::from(u8::from(up)));
                    if !up {
                        continue;
                    }
                    let unsent = bus::outbox::pending(db).await;
                    let open = SqlDeadLetters::new(db.clone()).open().await;
                    if let (Ok(unsent), Ok(open)) = (unsent, open) {
                        metrics::gauge!("emporium_outbox_unsent", "context" => ctx.as_str())
                            .set(unsent as f64);
                        metrics::gauge!("emporium_dead_letters_open", "context" => ctx.as_str())
                            .set(open as f64);
                    }
                }
                let bus_up = bus.ready().await;
                all_up &= bus_up;
                metrics::gauge!("emporium_dependency_up", "dependency" => format!("bus_{}", bus.name()))
                    .set(f64::from(u8::from(bus_up)));
                metrics::gauge!("emporium_ready").set(f64::from(u8::from(all_up)));
                if let Some(resident) = resident_bytes() {
                    metrics::gauge!("process_resident_memory_bytes").set(resident);
                }
                tokio::select! {
                    _ = tokio::time::sleep(FIGURES_EVERY) => {}
                    _ = shutdown.changed() => break,
                }
            }
        })
    })
}

/// This process's resident memory (bytes) and CPU time (seconds), from `/proc` (Linux, whose
/// `/proc/<pid>/stat` counts CPU time in USER_HZ, 100 a second on x86-64 and arm64).
fn resident_bytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let resident_kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()?;
    Some(resident_kib * 1024.0)
}

const FIGURES_EVERY: std::time::Duration = std::time::Duration::from_secs(5);

/// Who may read `/metrics`: anyone connected to the operations listener, or a caller on the
/// public listener presenting the metrics token.
#[derive(Clone, Default)]
pub struct OpsAccess {
    /// The operations listener's bound address, once bound.
    pub ops_addr: Arc<std::sync::OnceLock<std::net::SocketAddr>>,
    pub token: Option<String>,
}

impl OpsAccess {
    pub fn new(token: Option<String>) -> Self {
        Self {
            ops_addr: Arc::default(),
            token,
        }
    }

    /// The request came in through the operations listener.
    pub fn on_ops_listener(&self, req: &HttpRequest) -> bool {
        self.ops_addr
            .get()
            .is_some_and(|ops| *ops == req.app_config().local_addr())
    }

    pub fn allows(&self, req: &HttpRequest) -> bool {
        if self.on_ops_listener(req) {
            return true;
        }
        let Some(token) = &self.token else {
            return false;
        };
        let presented = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        platform::secret::constant_time_eq(presented.as_bytes(), token.as_bytes())
    }
}

/// On the operations listener only the operations endpoints exist.
pub async fn ops_listener_guard(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody + 'static>,
) -> Result<actix_web::dev::ServiceResponse<actix_web::body::BoxBody>, actix_web::Error> {
    let ops_only = req
        .app_data::<web::Data<OpsAccess>>()
        .is_some_and(|a| a.on_ops_listener(req.request()));
    if ops_only && !matches!(req.path(), "/metrics" | "/health/live" | "/health/ready") {
        let problem = ApiError::not_found("not_found", "no such resource");
        return Ok(req.into_response(actix_web::ResponseError::error_response(&problem)));
    }
    Ok(next.call(req).await?.map_into_boxed_body())
}

/// Readiness: every context's database, the bus and the verifying keys answer.
#[utoipa::path(
    get, path = "/health/ready", tag = "operations", operation_id = "health_ready",
    responses(
        (status = 200, description = "Ready to serve"),
        (status = 503, description = "A dependency is down", content_type = "application/problem+json", body = platform::error::ProblemBody)
    )
)]
pub(crate) async fn ready(state: web::Data<OpsState>) -> HttpResponse {
    let mut checks = serde_json::Map::new();
    let mut ok = true;
    for (ctx, db) in &state.databases {
        let result = tokio::time::timeout(std::time::Duration::from_secs(2), db.ping()).await;
        let up = matches!(result, Ok(Ok(())));
        ok &= up;
        checks.insert(
            format!("{}_database", ctx.as_str()),
            json!(if up { "up" } else { "down" }),
        );
    }
    let bus_up = state.bus.ready().await;
    ok &= bus_up;
    checks.insert(
        format!("bus_{}", state.bus.name()),
        json!(if bus_up { "up" } else { "down" }),
    );
    let keys_up = state.keys.ready().await;
    ok &= keys_up;
    checks.insert(
        "token_keys".to_owned(),
        json!(if keys_up { "up" } else { "down" }),
    );
    if ok {
        HttpResponse::Ok().json(json!({"status": "ready", "checks": checks}))
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header((header::CONTENT_TYPE, PROBLEM_JSON))
            .json(json!({
                "type": platform::error::problem_type("not_ready"),
                "title": "Service Unavailable",
                "status": 503,
                "code": "not_ready",
                "detail": "a dependency is not available",
                "checks": checks,
            }))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterResponse {
    pub id: uuid::Uuid,
    pub consumer_group: String,
    pub event_id: uuid::Uuid,
    pub event_type: String,
    pub error: String,
    pub attempts: u32,
    #[schema(value_type = String, format = DateTime)]
    pub failed_at: Timestamp,
    #[schema(value_type = Option<String>, format = DateTime)]
    pub replayed_at: Option<Timestamp>,
    /// The envelope as it was delivered.
    pub envelope: serde_json::Value,
}

impl From<DeadLetter> for DeadLetterResponse {
    fn from(d: DeadLetter) -> Self {
        Self {
            id: d.id,
            consumer_group: d.consumer_group,
            event_id: d.envelope.id,
            event_type: d.envelope.event_type.clone(),
            error: d.error,
            attempts: d.attempts,
            failed_at: d.failed_at,
            replayed_at: d.replayed_at,
            envelope: serde_json::to_value(&d.envelope).unwrap_or_default(),
        }
    }
}

/// One context's messaging, as its database holds it now.
#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct ContextMessaging {
    pub context: String,
    /// Events recorded in the outbox and not yet published.
    pub outbox_unsent: i64,
    /// Dead letters not replayed.
    pub dead_letters_open: i64,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct MessagingResponse {
    /// Every context this process hosts.
    pub contexts: Vec<ContextMessaging>,
}

/// The outbox backlog and open dead letters of each context in this process (admins).
#[utoipa::path(
    get, path = "/api/v1/admin/messaging", tag = "operations", operation_id = "admin_messaging",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Per context", body = MessagingResponse),
        (status = 401, description = "Not signed in", content_type = "application/problem+json", body = platform::error::ProblemBody),
        (status = 403, description = "Not an admin", content_type = "application/problem+json", body = platform::error::ProblemBody),
        (status = 503, description = "A context's database is not available", content_type = "application/problem+json", body = platform::error::ProblemBody)
    )
)]
pub(crate) async fn messaging(
    _admin: AdminUser,
    state: web::Data<OpsState>,
) -> Result<web::Json<MessagingResponse>, ApiError> {
    messaging_figures(&state).await
}

async fn messaging_figures(state: &OpsState) -> Result<web::Json<MessagingResponse>, ApiError> {
    let mut contexts = Vec::with_capacity(state.databases.len());
    for (ctx, db) in &state.databases {
        let unavailable = |e: anyhow::Error| {
            tracing::warn!(context = ctx.as_str(), error = %format!("{e:#}"), "cannot read messaging figures");
            ApiError::unavailable(
                "database_unavailable",
                format!("the {} database is not available", ctx.as_str()),
            )
        };
        let outbox_unsent = bus::outbox::pending(db).await.map_err(unavailable)?;
        let dead_letters_open = SqlDeadLetters::new(db.clone())
            .open()
            .await
            .map_err(unavailable)?;
        contexts.push(ContextMessaging {
            context: ctx.as_str().to_owned(),
            outbox_unsent,
            dead_letters_open,
        });
    }
    Ok(web::Json(MessagingResponse { contexts }))
}

/// Dead letters of every context in this process, newest first.
#[utoipa::path(
    get, path = "/api/v1/admin/dead-letters", tag = "operations", operation_id = "list_dead_letters",
    params(PageQuery),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "A page of dead letters", body = Page<DeadLetterResponse>, links(
            ("ReplayDeadLetter" = (operation_id = "replay_dead_letter", parameters(("id" = "$response.body#/items/0/id"))))
        )),
        (status = 400, description = "Bad cursor", content_type = "application/problem+json", body = platform::error::ProblemBody),
        (status = 401, description = "Not signed in", content_type = "application/problem+json", body = platform::error::ProblemBody),
        (status = 403, description = "Not an admin", content_type = "application/problem+json", body = platform::error::ProblemBody),
        (status = 422, description = "Bad limit", content_type = "application/problem+json", body = platform::error::ProblemBody)
    )
)]
pub(crate) async fn list_dead_letters(
    _admin: AdminUser,
    state: web::Data<OpsState>,
    query: web::Query<PageQuery>,
) -> Result<Page<DeadLetterResponse>, ApiError> {
    dead_letter_page(&state, &query).await
}

async fn dead_letter_page(
    state: &OpsState,
    query: &PageQuery,
) -> Result<Page<DeadLetterResponse>, ApiError> {
    let page = PageRequest::from_query(query.limit, query.cursor.as_deref(), &[Part::Id])?;
    let mut all = Vec::new();
    for store in state.stores() {
        let part = store.list(&page).await.map_err(ApiError::internal)?;
        all.extend(part.items);
    }
    all.sort_by_key(|d| std::cmp::Reverse(d.id));
    let page = page.finish(all, |d| vec![d.id.to_string()]);
    Ok(page.map(DeadLetterResponse::from))
}

/// Delivers a dead letter again to its consumer group.
#[utoipa::path(
    post, path = "/api/v1/admin/dead-letters/{id}/replay", tag = "operations", operation_id = "replay_dead_letter",
    params(("id" = uuid::Uuid, Path, description = "Dead letter id")),
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Replayed", body = DeadLetterResponse),
        (status = 400, description = "Bad id", content_type = "application/problem+json", body = platform::error::ProblemBody),
        (status = 401, description = "Not signed in", content_type = "application/problem+json", body = platform::error::ProblemBody),
        (status = 403, description = "Not an admin", content_type = "application/problem+json", body = platform::error::ProblemBody),
        (status = 404, description = "No such dead letter", content_type = "application/problem+json", body = platform::error::ProblemBody),
        (status = 409, description = "Already replayed, or the handler failed again", content_type = "application/problem+json", body = platform::error::ProblemBody)
    )
)]
pub(crate) async fn replay_dead_letter(
    _admin: AdminUser,
    state: web::Data<OpsState>,
    id: web::Path<uuid::Uuid>,
) -> Result<web::Json<DeadLetterResponse>, ApiError> {
    replay(&state, id.into_inner()).await
}

async fn replay(
    state: &OpsState,
    id: uuid::Uuid,
) -> Result<web::Json<DeadLetterResponse>, ApiError> {
    for store in state.stores() {
        let Some(dead) = store.get(id).await.map_err(ApiError::internal)? else {
            continue;
        };
        if dead.replayed_at.is_some() {
            return Err(ApiError::conflict(
                "already_replayed",
                "this dead letter was replayed already",
            ));
        }
        if let Err(e) = bus::replay(&*state.bus, &dead.consumer_group, &dead.envelope).await {
            return Err(ApiError::conflict(
                "replay_failed",
                format!("the handler failed again: {e}"),
            ));
        }
        let now = Timestamp::now();
        store
            .mark_replayed(id, now)
            .await
            .map_err(ApiError::internal)?;
        let mut dead = dead;
        dead.replayed_at = Some(now);
        return Ok(web::Json(dead.into()));
    }
    Err(ApiError::not_found(
        "dead_letter_not_found",
        "no dead letter with this id",
    ))
}
