//! `GET /api/v1/dashboard`: the signed-in customer's start page in one request (a
//! backend-for-frontend aggregation). The parts come from the contexts' own APIs, fetched in
//! parallel within a budget (`EMPORIUM_DASHBOARD_BUDGET_MS`, default 300 ms):
//!
//! - `profile`: identity's `/me`, with the customer's token;
//! - `recent_orders`: ordering's five newest orders, with the customer's token, each joined
//!   to its shipment from shipping's list of the customer's shipments;
//! - `counts`: orders per status, from ordering's service-only endpoint, with a
//!   client-credentials token for `ordering`.
//!
//! A part that fails or misses the budget is `null`, and its context is named in
//! `unavailable`: the answer is 200 with what arrived. The gateway serves it in the split
//! topology and the monolith directly, through the same code and the same public APIs (the
//! monolith calls its own listener; the composition root knows nothing of a context's
//! insides).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use platform::auth::AuthUser;
use platform::error::{ApiError, ProblemBody};
use platform::http::RequestContext;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::config::ContextName;
use crate::service_tokens::ServiceTokens;
use crate::upstream::{Call, Caller, Upstream};

/// The dashboard's sources and budget.
pub struct Dashboard {
    upstream: Arc<dyn Upstream>,
    budget: Duration,
    /// For ordering's service-only counts.
    tokens: Arc<ServiceTokens>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DashboardResponse {
    /// Null when identity did not answer in time.
    pub profile: Option<DashboardProfile>,
    /// The five most recent orders, newest first; null when ordering did not answer in time.
    pub recent_orders: Option<Vec<DashboardOrder>>,
    /// Null when ordering did not answer in time.
    pub counts: Option<DashboardCounts>,
    /// The contexts whose part is missing (did not answer within the budget, or failed).
    pub unavailable: Vec<String>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DashboardProfile {
    pub id: uuid::Uuid,
    pub email: String,
    pub name: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DashboardOrder {
    pub id: uuid::Uuid,
    /// The order's status (as ordering reports it).
    pub status: String,
    pub total: kernel::Money,
    #[schema(format = DateTime)]
    pub placed_at: String,
    /// The order's shipment; null before it is created, or when shipping did not answer in
    /// time (then `shipping` is in `unavailable`).
    pub shipment: Option<DashboardShipment>,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DashboardShipment {
    pub id: uuid::Uuid,
    /// pending, dispatched, in_transit, delivered or cancelled.
    pub status: String,
    pub carrier: String,
    pub tracking_number: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema)]
pub struct DashboardCounts {
    /// All the customer's orders.
    pub orders: i64,
    /// Orders per status; statuses without orders are absent.
    pub orders_by_status: BTreeMap<String, i64>,
}

#[derive(Deserialize)]
struct PageOf<T> {
    items: Vec<T>,
}

#[derive(Deserialize)]
struct OrderItem {
    id: uuid::Uuid,
    status: String,
    total: kernel::Money,
    placed_at: String,
}

#[derive(Deserialize)]
struct ShipmentItem {
    id: uuid::Uuid,
    order_id: uuid::Uuid,
    status: String,
    carrier: String,
    tracking_number: String,
}

#[derive(Deserialize)]
struct OrderCounts {
    total: i64,
    by_status: BTreeMap<String, i64>,
}

/// Shipments looked at to find the recent orders' ones (a shipment is created per order, so
/// the newest shipments belong to the newest orders).
const SHIPMENTS_SCANNED: u32 = 20;

impl Dashboard {
    pub fn new(upstream: Arc<dyn Upstream>, budget: Duration, tokens: Arc<ServiceTokens>) -> Self {
        Self {
            upstream,
            budget,
            tokens,
        }
    }

    async fn get<T: serde::de::DeserializeOwned>(
        &self,
        context: ContextName,
        path: String,
        bearer: String,
        ctx: &Caller,
    ) -> anyhow::Result<T> {
        let (status, body) = self
            .upstream
            .call(
                context,
                Call {
                    method: reqwest::Method::GET,
                    path,
                    bearer: Some(bearer),
                    form: None,
                    request_id: ctx.request.request_id.clone(),
                    traceparent: ctx.request.traceparent.clone(),
                    forwarded_for: ctx.forwarded_for.clone(),
                },
            )
            .await?;
        if !(200..300).contains(&status) {
            anyhow::bail!("{} answered {status}", context.as_str());
        }
        Ok(serde_json::from_slice(&body)?)
    }

    /// The dashboard of the customer `user`, whose token is `bearer`.
    pub async fn assemble(
        &self,
        user: uuid::Uuid,
        bearer: &str,
        ctx: &Caller,
    ) -> DashboardResponse {
        let started = Instant::now();
        let profile = tokio::time::timeout(
            self.budget,
            self.get::<DashboardProfile>(
                ContextName::Identity,
                "/api/v1/identity/me".to_owned(),
                bearer.to_owned(),
                ctx,
            ),
        );
        let orders = tokio::time::timeout(
            self.budget,
            self.get::<PageOf<OrderItem>>(
                ContextName::Ordering,
                "/api/v1/ordering/orders?limit=5".to_owned(),
                bearer.to_owned(),
                ctx,
            ),
        );
        let shipments = tokio::time::timeout(
            self.budget,
            self.get::<PageOf<ShipmentItem>>(
                ContextName::Shipping,
                format!("/api/v1/shipping/shipments?limit={SHIPMENTS_SCANNED}"),
                bearer.to_owned(),
                ctx,
            ),
        );
        let counts = tokio::time::timeout(self.budget, async {
            let token = self.tokens.token(ContextName::Ordering, ctx).await?;
            self.get::<OrderCounts>(
                ContextName::Ordering,
                format!("/internal/v1/ordering/customers/{user}/order-counts"),
                token,
                ctx,
            )
            .await
        });
        let (profile, orders, shipments, counts) =
            futures::join!(profile, orders, shipments, counts);

        let mut unavailable = Vec::new();
        let profile = settle(&mut unavailable, ContextName::Identity, "profile", profile);
        let orders = settle(&mut unavailable, ContextName::Ordering, "orders", orders);
        let shipments = settle(
            &mut unavailable,
            ContextName::Shipping,
            "shipments",
            shipments,
        );
        let counts = settle(&mut unavailable, ContextName::Ordering, "counts", counts);
        unavailable.sort_unstable();
        unavailable.dedup();
        let mut shipments: BTreeMap<uuid::Uuid, DashboardShipment> = shipments
            .map(|page| {
                page.items
                    .into_iter()
                    .map(|s| {
                        (
                            s.order_id,
                            DashboardShipment {
                                id: s.id,
                                status: s.status,
                                carrier: s.carrier,
                                tracking_number: s.tracking_number,
                            },
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        let recent_orders = orders.map(|page| {
            page.items
                .into_iter()
                .map(|o| DashboardOrder {
                    shipment: shipments.remove(&o.id),
                    id: o.id,
                    status: o.status,
                    total: o.total,
                    placed_at: o.placed_at,
                })
                .collect()
        });
        metrics::histogram!("emporium_dashboard_seconds").record(started.elapsed().as_secs_f64());
        for context in &unavailable {
            metrics::counter!("emporium_dashboard_parts_unavailable_total", "context" => context.clone())
                .increment(1);
        }
        DashboardResponse {
            profile,
            recent_orders,
            counts: counts.map(|c| DashboardCounts {
                orders: c.total,
                orders_by_status: c.by_status,
            }),
            unavailable,
        }
    }
}

/// The part, or its context named in `unavailable` (failed, or missed the budget).
fn settle<T>(
    unavailable: &mut Vec<String>,
    context: ContextName,
    part: &'static str,
    outcome: Result<anyhow::Result<T>, tokio::time::error::Elapsed>,
) -> Option<T> {
    match outcome {
        Ok(Ok(value)) => Some(value),
        Ok(Err(e)) => {
            tracing::warn!(context = context.as_str(), part, error = %format!("{e:#}"), "dashboard part failed");
            unavailable.push(context.as_str().to_owned());
            None
        }
        Err(_) => {
            tracing::warn!(
                context = context.as_str(),
                part,
                "dashboard part missed its budget"
            );
            unavailable.push(context.as_str().to_owned());
            None
        }
    }
}

/// The signed-in customer's dashboard: profile, five most recent orders with their
/// shipments, and order counts, gathered from the contexts in parallel within a budget.
/// Parts that do not arrive in time are null and named in `unavailable`.
#[utoipa::path(
    get, path = "/api/v1/dashboard", tag = "dashboard", operation_id = "get_dashboard",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "The dashboard (possibly partial: see `unavailable`)", body = DashboardResponse),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub async fn get_dashboard(
    dashboard: web::Data<Dashboard>,
    req: HttpRequest,
    user: AuthUser,
    ctx: RequestContext,
) -> Result<HttpResponse, ApiError> {
    let token = platform::auth::bearer(&req)
        .ok_or_else(|| ApiError::unauthorized("a bearer access token is required"))?;
    let forwarded_for = req
        .app_data::<platform::client_ip::TrustedProxies>()
        .cloned()
        .unwrap_or_default()
        .forward_for(req.peer_addr().map(|a| a.ip()), req.headers());
    let caller = Caller {
        request: ctx,
        forwarded_for,
    };
    let body = dashboard
        .assemble(user.user_id.as_uuid(), &token, &caller)
        .await;
    Ok(HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "private, no-store"))
        .json(body))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(get_dashboard),
    tags((name = "dashboard", description = "The signed-in customer's start page, aggregated from every context"))
)]
pub struct ApiDoc;
