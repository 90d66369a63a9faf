//! Outbound webhooks' HTTP surface under `/api/v1/webhooks` (admins only): endpoints, the
//! event types they can hear, deliveries with their attempts, and replay.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use kernel::Timestamp;
use platform::auth::AdminUser;
use platform::error::{ApiError, ProblemBody};
use platform::http::ValidJson;
use platform::pagination::{Page, PageQuery, PageRequest, Part};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::application::webhooks::{EndpointChange, NewEndpoint, Webhooks, WebhooksError};
use crate::domain::webhook::{Endpoint, WebhookAttempt, WebhookDelivery, WebhookStatus};

pub(crate) struct WebhookState {
    pub(crate) webhooks: Arc<Webhooks>,
}

impl From<WebhooksError> for ApiError {
    fn from(e: WebhooksError) -> Self {
        match e {
            WebhooksError::EndpointNotFound => {
                ApiError::not_found("webhooks.endpoint_not_found", "no such webhook endpoint")
            }
            WebhooksError::DeliveryNotFound => {
                ApiError::not_found("webhooks.delivery_not_found", "no such webhook delivery")
            }
            WebhooksError::TargetRefused(refused) => {
                ApiError::unprocessable("webhooks.target_refused", refused.to_string())
            }
            e @ WebhooksError::UnknownEventType(_) => ApiError::field("event_types", e.to_string()),
            e @ WebhooksError::NotFailed(_) => {
                ApiError::conflict("webhooks.not_failed", e.to_string())
            }
            WebhooksError::Unexpected(e) => ApiError::internal(e),
        }
    }
}

/// A receiver, as admins see it (its secret is shown only when it is made).
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointResponse {
    pub(crate) id: uuid::Uuid,
    pub(crate) url: String,
    pub(crate) description: String,
    /// The event types it hears.
    pub(crate) event_types: Vec<String>,
    pub(crate) enabled: bool,
    /// Why the server turned it off (it failed for the whole retry window), if it did.
    pub(crate) disabled_reason: Option<String>,
    /// Failed attempts since the last success.
    pub(crate) consecutive_failures: u32,
    pub(crate) failing_since: Option<Timestamp>,
    /// While set and ahead, its deliveries wait: the receiver is failing.
    pub(crate) circuit_open_until: Option<Timestamp>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

impl From<Endpoint> for EndpointResponse {
    fn from(e: Endpoint) -> Self {
        Self {
            id: e.id,
            url: e.url,
            description: e.description,
            event_types: e.event_types,
            enabled: e.enabled,
            disabled_reason: e.health.disabled_reason,
            consecutive_failures: e.health.consecutive_failures,
            failing_since: e.health.failing_since,
            circuit_open_until: e.health.circuit_open_until,
            created_at: e.created_at,
            updated_at: e.updated_at,
        }
    }
}

/// A new receiver, with the secret that signs what it gets.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EndpointCreated {
    #[serde(flatten)]
    pub(crate) endpoint: EndpointResponse,
    /// `whsec_<base64 key>`: verify `webhook-signature` with it (Standard Webhooks). Shown
    /// only now.
    pub(crate) secret: String,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"url": "https://erp.example.com/hooks/emporium", "event_types": ["ordering.order_paid", "shipping.shipment_dispatched"], "description": "ERP"}))]
pub(crate) struct CreateEndpointRequest {
    /// An http or https URL on the public internet.
    #[validate(length(min = 1, max = 2048))]
    #[schema(min_length = 1, max_length = 2048)]
    pub(crate) url: String,
    /// Types from `GET /api/v1/webhooks/event-types`.
    #[validate(length(min = 1, max = 64))]
    #[schema(min_items = 1, max_items = 64)]
    pub(crate) event_types: Vec<String>,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub(crate) description: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"enabled": true}))]
pub(crate) struct UpdateEndpointRequest {
    #[validate(length(min = 1, max = 2048))]
    #[schema(min_length = 1, max_length = 2048)]
    pub(crate) url: Option<String>,
    #[validate(length(min = 1, max = 64))]
    #[schema(min_items = 1, max_items = 64)]
    pub(crate) event_types: Option<Vec<String>>,
    #[validate(length(max = 500))]
    #[schema(max_length = 500)]
    pub(crate) description: Option<String>,
    /// Turning an endpoint on forgives its failures; its waiting deliveries go again.
    pub(crate) enabled: Option<bool>,
}

/// The event types an endpoint can hear.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct EventTypesResponse {
    pub(crate) event_types: Vec<&'static str>,
}

/// One event for one endpoint.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookDeliveryResponse {
    pub(crate) id: uuid::Uuid,
    pub(crate) endpoint_id: uuid::Uuid,
    /// The event's id: the `webhook-id` header of every attempt.
    pub(crate) event_id: uuid::Uuid,
    pub(crate) event_type: String,
    /// pending, delivered or failed.
    pub(crate) status: &'static str,
    pub(crate) attempts: u32,
    /// When the next attempt is due (pending deliveries).
    pub(crate) next_attempt_at: Option<Timestamp>,
    /// The receiver's last status code, when it answered.
    pub(crate) last_status: Option<u16>,
    pub(crate) last_error: Option<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    pub(crate) delivered_at: Option<Timestamp>,
}

impl From<WebhookDelivery> for WebhookDeliveryResponse {
    fn from(d: WebhookDelivery) -> Self {
        Self {
            id: d.id,
            endpoint_id: d.endpoint_id,
            event_id: d.event_id,
            event_type: d.event_type,
            status: d.status.as_str(),
            attempts: d.attempts,
            next_attempt_at: (d.status == WebhookStatus::Pending).then_some(d.next_attempt_at),
            last_status: d.last_status,
            last_error: d.last_error,
            created_at: d.created_at,
            updated_at: d.updated_at,
            delivered_at: d.delivered_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookAttemptResponse {
    pub(crate) attempt: u32,
    pub(crate) at: Timestamp,
    pub(crate) status_code: Option<u16>,
    pub(crate) error: Option<String>,
    pub(crate) duration_ms: u64,
}

impl From<WebhookAttempt> for WebhookAttemptResponse {
    fn from(a: WebhookAttempt) -> Self {
        Self {
            attempt: a.number,
            at: a.at,
            status_code: a.status_code,
            error: a.error,
            duration_ms: a.duration_ms,
        }
    }
}

/// The body of every webhook delivery: an integration event's envelope, with its payload as
/// `data`. Each attempt sends the same bytes. (The document's `webhooks` section names it;
/// the server builds it as JSON, never from this type.)
#[allow(dead_code)]
#[derive(Debug, ToSchema)]
pub(crate) struct WebhookEvent {
    /// The event's id, also the `webhook-id` header: take each event once by it.
    pub(crate) id: uuid::Uuid,
    /// `<context>.<event>`, e.g. `ordering.order_paid`.
    #[schema(rename = "type")]
    pub(crate) event_type: String,
    /// The payload's version.
    #[schema(minimum = 1)]
    pub(crate) version: u32,
    /// When the event happened.
    pub(crate) timestamp: Timestamp,
    /// The context that published it.
    pub(crate) source: String,
    /// The request (or root event) that started the chain.
    pub(crate) correlation_id: String,
    /// The event's payload, as the event catalogue (`/asyncapi.json`) describes it for this
    /// type and version.
    #[schema(value_type = Object)]
    pub(crate) data: serde_json::Value,
}

/// A delivery with what it sends and every attempt.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct WebhookDeliveryDetail {
    #[serde(flatten)]
    pub(crate) delivery: WebhookDeliveryResponse,
    /// The JSON body every attempt sends.
    #[schema(value_type = WebhookEvent)]
    pub(crate) payload: serde_json::Value,
    pub(crate) attempts_made: Vec<WebhookAttemptResponse>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum WebhookStatusFilter {
    Pending,
    Delivered,
    Failed,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct WebhookDeliveryQuery {
    /// Only this endpoint's deliveries.
    pub(crate) endpoint_id: Option<uuid::Uuid>,
    /// Only deliveries in this status.
    pub(crate) status: Option<WebhookStatusFilter>,
    /// Items per page, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<i64>,
    pub(crate) cursor: Option<String>,
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/webhooks")
            .service(
                web::resource("/endpoints")
                    .route(web::get().to(list_endpoints))
                    .route(web::post().to(create_endpoint)),
            )
            .service(
                web::resource("/endpoints/{id}")
                    .route(web::get().to(get_endpoint))
                    .route(web::patch().to(update_endpoint))
                    .route(web::delete().to(delete_endpoint)),
            )
            .service(web::resource("/event-types").route(web::get().to(event_types)))
            .service(web::resource("/deliveries").route(web::get().to(list_webhook_deliveries)))
            .service(web::resource("/deliveries/{id}").route(web::get().to(get_webhook_delivery)))
            .service(
                web::resource("/deliveries/{id}/replay")
                    .route(web::post().to(replay_webhook_delivery)),
            ),
    );
}

/// Registers a receiver for some event types (admin); the answer holds its signing secret.
#[utoipa::path(
    post, path = "/api/v1/webhooks/endpoints", tag = "webhooks", operation_id = "create_webhook_endpoint",
    security(("bearer" = [])),
    request_body = CreateEndpointRequest,
    responses(
        (status = 201, description = "Registered; the secret is shown only now", body = EndpointCreated, headers(("Location" = String, description = "The endpoint")), links(
            ("GetWebhookEndpoint" = (operation_id = "get_webhook_endpoint", parameters(("id" = "$response.body#/id")))),
            ("UpdateWebhookEndpoint" = (operation_id = "update_webhook_endpoint", parameters(("id" = "$response.body#/id")))),
            ("DeleteWebhookEndpoint" = (operation_id = "delete_webhook_endpoint", parameters(("id" = "$response.body#/id"))))
        )),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, an unknown event type, or a URL on an internal address", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn create_endpoint(
    state: web::Data<WebhookState>,
    admin: AdminUser,
    body: ValidJson<CreateEndpointRequest>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner();
    let endpoint = state
        .webhooks
        .create(NewEndpoint {
            url: body.url,
            event_types: body.event_types,
            description: body.description.unwrap_or_default(),
            created_by: admin.0.user_id,
        })
        .await?;
    let secret = endpoint.secret.clone();
    let location = format!("/api/v1/webhooks/endpoints/{}", endpoint.id);
    Ok(HttpResponse::Created()
        .insert_header(("Location", location))
        .insert_header(("Cache-Control", "no-store"))
        .json(EndpointCreated {
            endpoint: endpoint.into(),
            secret,
        }))
}

/// Every receiver (admin), newest first.
#[utoipa::path(
    get, path = "/api/v1/webhooks/endpoints", tag = "webhooks", operation_id = "list_webhook_endpoints",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "Endpoints", body = Page<EndpointResponse>, links(
            ("GetWebhookEndpoint" = (operation_id = "get_webhook_endpoint", parameters(("id" = "$response.body#/items/0/id"))))
        )),
        (status = 400, description = "Bad cursor", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn list_endpoints(
    state: web::Data<WebhookState>,
    _admin: AdminUser,
    query: web::Query<PageQuery>,
) -> Result<Page<EndpointResponse>, ApiError> {
    let page = PageRequest::from_query(query.limit, query.cursor.as_deref(), &[Part::Id])?;
    Ok(state
        .webhooks
        .endpoints(&page)
        .await?
        .map(EndpointResponse::from))
}

/// One receiver (admin), with its health.
#[utoipa::path(
    get, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", operation_id = "get_webhook_endpoint",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 200, description = "The endpoint", body = EndpointResponse),
        (status = 400, description = "Malformed id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn get_endpoint(
    state: web::Data<WebhookState>,
    _admin: AdminUser,
    id: web::Path<uuid::Uuid>,
) -> Result<web::Json<EndpointResponse>, ApiError> {
    Ok(web::Json(
        state.webhooks.endpoint(id.into_inner()).await?.into(),
    ))
}

/// Changes a receiver (admin): its URL, types, description, or turns it on or off.
#[utoipa::path(
    patch, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", operation_id = "update_webhook_endpoint",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Endpoint id")),
    request_body = UpdateEndpointRequest,
    responses(
        (status = 200, description = "The endpoint now", body = EndpointResponse),
        (status = 400, description = "Malformed id or JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, an unknown event type, or a URL on an internal address", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn update_endpoint(
    state: web::Data<WebhookState>,
    _admin: AdminUser,
    id: web::Path<uuid::Uuid>,
    body: ValidJson<UpdateEndpointRequest>,
) -> Result<web::Json<EndpointResponse>, ApiError> {
    let body = body.into_inner();
    let endpoint = state
        .webhooks
        .change(
            id.into_inner(),
            EndpointChange {
                url: body.url,
                event_types: body.event_types,
                description: body.description,
                enabled: body.enabled,
            },
        )
        .await?;
    Ok(web::Json(endpoint.into()))
}

/// Removes a receiver (admin) with its deliveries.
#[utoipa::path(
    delete, path = "/api/v1/webhooks/endpoints/{id}", tag = "webhooks", operation_id = "delete_webhook_endpoint",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Endpoint id")),
    responses(
        (status = 204, description = "Removed"),
        (status = 400, description = "Malformed id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such endpoint", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn delete_endpoint(
    state: web::Data<WebhookState>,
    _admin: AdminUser,
    id: web::Path<uuid::Uuid>,
) -> Result<HttpResponse, ApiError> {
    state.webhooks.delete(id.into_inner()).await?;
    Ok(HttpResponse::NoContent().finish())
}

/// The event types an endpoint can hear (admin): the event catalogue (`/asyncapi.json`)
/// without the events that carry one-time secrets.
#[utoipa::path(
    get, path = "/api/v1/webhooks/event-types", tag = "webhooks", operation_id = "list_webhook_event_types",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Event types", body = EventTypesResponse),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn event_types(
    state: web::Data<WebhookState>,
    _admin: AdminUser,
) -> web::Json<EventTypesResponse> {
    web::Json(EventTypesResponse {
        event_types: state.webhooks.catalogue.clone(),
    })
}

/// Every webhook delivery (admin), newest first; `status=failed` lists what can be replayed.
#[utoipa::path(
    get, path = "/api/v1/webhooks/deliveries", tag = "webhooks", operation_id = "list_webhook_deliveries",
    security(("bearer" = [])),
    params(WebhookDeliveryQuery),
    responses(
        (status = 200, description = "Deliveries", body = Page<WebhookDeliveryResponse>, links(
            ("GetWebhookDelivery" = (operation_id = "get_webhook_delivery", parameters(("id" = "$response.body#/items/0/id")))),
            ("ReplayWebhookDelivery" = (operation_id = "replay_webhook_delivery", parameters(("id" = "$response.body#/items/0/id"))))
        )),
        (status = 400, description = "Bad cursor, status or endpoint id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn list_webhook_deliveries(
    state: web::Data<WebhookState>,
    _admin: AdminUser,
    query: web::Query<WebhookDeliveryQuery>,
) -> Result<Page<WebhookDeliveryResponse>, ApiError> {
    let page = PageRequest::from_query(query.limit, query.cursor.as_deref(), &[Part::Id])?;
    let status = query.status.map(|s| match s {
        WebhookStatusFilter::Pending => WebhookStatus::Pending,
        WebhookStatusFilter::Delivered => WebhookStatus::Delivered,
        WebhookStatusFilter::Failed => WebhookStatus::Failed,
    });
    Ok(state
        .webhooks
        .deliveries(query.endpoint_id, status, &page)
        .await?
        .map(WebhookDeliveryResponse::from))
}

/// One delivery (admin): what it sends and every attempt, with the receiver's answers.
#[utoipa::path(
    get, path = "/api/v1/webhooks/deliveries/{id}", tag = "webhooks", operation_id = "get_webhook_delivery",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "The delivery", body = WebhookDeliveryDetail),
        (status = 400, description = "Malformed id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn get_webhook_delivery(
    state: web::Data<WebhookState>,
    _admin: AdminUser,
    id: web::Path<uuid::Uuid>,
) -> Result<web::Json<WebhookDeliveryDetail>, ApiError> {
    let (delivery, attempts) = state.webhooks.delivery(id.into_inner()).await?;
    let payload = serde_json::from_str(&delivery.body).unwrap_or(serde_json::Value::Null);
    Ok(web::Json(WebhookDeliveryDetail {
        delivery: delivery.into(),
        payload,
        attempts_made: attempts.into_iter().map(Into::into).collect(),
    }))
}

/// Sends a failed delivery again (admin), with a new retry window.
#[utoipa::path(
    post, path = "/api/v1/webhooks/deliveries/{id}/replay", tag = "webhooks", operation_id = "replay_webhook_delivery",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "The delivery, pending again", body = WebhookDeliveryResponse),
        (status = 400, description = "Malformed id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The delivery has not failed", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn replay_webhook_delivery(
    state: web::Data<WebhookState>,
    _admin: AdminUser,
    id: web::Path<uuid::Uuid>,
) -> Result<web::Json<WebhookDeliveryResponse>, ApiError> {
    Ok(web::Json(
        state.webhooks.replay(id.into_inner()).await?.into(),
    ))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(
        create_endpoint,
        list_endpoints,
        get_endpoint,
        update_endpoint,
        delete_endpoint,
        event_types,
        list_webhook_deliveries,
        get_webhook_delivery,
        replay_webhook_delivery
    ),
    components(schemas(WebhookStatusFilter)),
    tags((name = "webhooks", description = "Signed HTTP callbacks to other systems when events happen"))
)]
pub(crate) struct WebhookDoc;
