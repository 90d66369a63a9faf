//! Notifications' HTTP surface under `/api/v1/notifications`, and the webhooks' under
//! `/api/v1/webhooks`.

pub(crate) mod webhooks;

use std::sync::Arc;

use actix_web::web;
use kernel::Timestamp;
use platform::auth::{AdminUser, AuthUser};
use platform::error::{ApiError, ProblemBody};
use platform::http::ValidJson;
use platform::pagination::{Page, PageQuery, PageRequest, Part};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::application::messages::Messages;
use crate::application::NotificationsError;
use crate::domain::{Delivery, DeliveryStatus, Preferences};

pub(crate) struct State {
    pub(crate) messages: Arc<Messages>,
}

impl From<NotificationsError> for ApiError {
    fn from(e: NotificationsError) -> Self {
        match e {
            NotificationsError::NotFound => {
                ApiError::not_found("notifications.message_not_found", "no such message")
            }
            e @ NotificationsError::NotFailed(_) => {
                ApiError::conflict("notifications.not_failed", e.to_string())
            }
            NotificationsError::Unexpected(e) => ApiError::internal(e),
        }
    }
}

/// A message as its customer sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct MessageResponse {
    pub(crate) id: uuid::Uuid,
    /// welcome, order_confirmed, order_cancelled, shipment_dispatched, shipment_delivered or
    /// password_reset (whose text is not kept once sent).
    pub(crate) kind: &'static str,
    /// queued, sent or failed.
    pub(crate) status: &'static str,
    /// The order it is about, if any.
    pub(crate) order_id: Option<String>,
    /// Known once the message has been sent.
    pub(crate) subject: Option<String>,
    /// The plain-text body, once sent.
    pub(crate) body: Option<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) sent_at: Option<Timestamp>,
}

impl From<Delivery> for MessageResponse {
    fn from(d: Delivery) -> Self {
        Self {
            id: d.id,
            kind: d.kind.as_str(),
            status: d.status.as_str(),
            order_id: d.order_id(),
            subject: d.subject,
            body: d.body_text,
            created_at: d.created_at,
            sent_at: d.sent_at,
        }
    }
}

/// A delivery as an admin sees it.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct DeliveryResponse {
    pub(crate) id: uuid::Uuid,
    pub(crate) customer_id: uuid::Uuid,
    pub(crate) kind: &'static str,
    /// queued, sent or failed.
    pub(crate) status: &'static str,
    pub(crate) attempts: u32,
    /// The last refusal (kept after a retry succeeds only until it is sent).
    pub(crate) last_error: Option<String>,
    /// The address it went, or was tried, to.
    pub(crate) recipient: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) order_id: Option<String>,
    /// When the next attempt is due (queued deliveries).
    pub(crate) next_attempt_at: Option<Timestamp>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    pub(crate) sent_at: Option<Timestamp>,
}

impl From<Delivery> for DeliveryResponse {
    fn from(d: Delivery) -> Self {
        let order_id = d.order_id();
        Self {
            id: d.id,
            customer_id: d.customer_id.as_uuid(),
            kind: d.kind.as_str(),
            status: d.status.as_str(),
            attempts: d.attempts,
            last_error: d.last_error,
            recipient: d.recipient,
            subject: d.subject,
            order_id,
            next_attempt_at: (d.status == DeliveryStatus::Queued).then_some(d.next_attempt_at),
            created_at: d.created_at,
            updated_at: d.updated_at,
            sent_at: d.sent_at,
        }
    }
}

/// What a customer receives. Order confirmations and cancellations are always sent.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PreferencesResponse {
    /// Messages when a shipment leaves and when it arrives.
    pub(crate) shipment_updates: bool,
    /// Always true: what was bought, and what was cancelled, is always told.
    pub(crate) order_updates: bool,
}

impl From<Preferences> for PreferencesResponse {
    fn from(p: Preferences) -> Self {
        Self {
            shipment_updates: p.shipment_updates,
            order_updates: true,
        }
    }
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"shipment_updates": false}))]
pub(crate) struct PreferencesRequest {
    pub(crate) shipment_updates: bool,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum StatusFilter {
    Queued,
    Sent,
    Failed,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveryListQuery {
    /// Only deliveries in this status.
    pub(crate) status: Option<StatusFilter>,
    /// Items per page, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<i64>,
    pub(crate) cursor: Option<String>,
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/notifications")
            .service(web::resource("/me").route(web::get().to(my_messages)))
            .service(web::resource("/me/{id}").route(web::get().to(my_message)))
            .service(
                web::resource("/preferences")
                    .route(web::get().to(get_preferences))
                    .route(web::put().to(put_preferences)),
            )
            .service(web::resource("/deliveries").route(web::get().to(list_deliveries)))
            .service(web::resource("/deliveries/{id}/retry").route(web::post().to(retry_delivery))),
    );
}

/// My messages, newest first.
#[utoipa::path(
    get, path = "/api/v1/notifications/me", tag = "notifications", operation_id = "list_my_messages",
    security(("bearer" = [])),
    params(PageQuery),
    responses(
        (status = 200, description = "Messages", body = Page<MessageResponse>, links(
            ("GetMyMessage" = (operation_id = "get_my_message", parameters(("id" = "$response.body#/items/0/id"))))
        )),
        (status = 400, description = "Bad cursor", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn my_messages(
    state: web::Data<State>,
    user: AuthUser,
    query: web::Query<PageQuery>,
) -> Result<Page<MessageResponse>, ApiError> {
    let page = PageRequest::from_query(query.limit, query.cursor.as_deref(), &[Part::Id])?;
    let list = state.messages.mine(user.user_id, &page).await?;
    Ok(list.map(MessageResponse::from))
}

/// One of my messages (admins: anyone's), with its text once sent.
#[utoipa::path(
    get, path = "/api/v1/notifications/me/{id}", tag = "notifications", operation_id = "get_my_message",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Message id")),
    responses(
        (status = 200, description = "The message", body = MessageResponse),
        (status = 400, description = "Malformed id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such message (or not yours)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn my_message(
    state: web::Data<State>,
    user: AuthUser,
    id: web::Path<uuid::Uuid>,
) -> Result<web::Json<MessageResponse>, ApiError> {
    let delivery = state.messages.one(&user, id.into_inner()).await?;
    Ok(web::Json(delivery.into()))
}

/// What I receive.
#[utoipa::path(
    get, path = "/api/v1/notifications/preferences", tag = "notifications", operation_id = "get_notification_preferences",
    security(("bearer" = [])),
    responses(
        (status = 200, description = "Preferences", body = PreferencesResponse),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn get_preferences(
    state: web::Data<State>,
    user: AuthUser,
) -> Result<web::Json<PreferencesResponse>, ApiError> {
    let p = state.messages.preferences(user.user_id).await?;
    Ok(web::Json(p.into()))
}

/// Turns shipment updates on or off (order messages are always sent).
#[utoipa::path(
    put, path = "/api/v1/notifications/preferences", tag = "notifications", operation_id = "set_notification_preferences",
    security(("bearer" = [])),
    request_body = PreferencesRequest,
    responses(
        (status = 200, description = "Preferences now", body = PreferencesResponse),
        (status = 400, description = "Malformed JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn put_preferences(
    state: web::Data<State>,
    user: AuthUser,
    body: ValidJson<PreferencesRequest>,
) -> Result<web::Json<PreferencesResponse>, ApiError> {
    let p = state
        .messages
        .set_preferences(
            user.user_id,
            Preferences {
                shipment_updates: body.into_inner().shipment_updates,
            },
        )
        .await?;
    Ok(web::Json(p.into()))
}

/// Every delivery (admin), newest first; `status=failed` lists those that need a look.
#[utoipa::path(
    get, path = "/api/v1/notifications/deliveries", tag = "notifications", operation_id = "list_deliveries",
    security(("bearer" = [])),
    params(DeliveryListQuery),
    responses(
        (status = 200, description = "Deliveries", body = Page<DeliveryResponse>, links(
            ("RetryDelivery" = (operation_id = "retry_delivery", parameters(("id" = "$response.body#/items/0/id"))))
        )),
        (status = 400, description = "Bad cursor or status", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn list_deliveries(
    state: web::Data<State>,
    _admin: AdminUser,
    query: web::Query<DeliveryListQuery>,
) -> Result<Page<DeliveryResponse>, ApiError> {
    let page = PageRequest::from_query(query.limit, query.cursor.as_deref(), &[Part::Id])?;
    let status = query.status.map(|s| match s {
        StatusFilter::Queued => DeliveryStatus::Queued,
        StatusFilter::Sent => DeliveryStatus::Sent,
        StatusFilter::Failed => DeliveryStatus::Failed,
    });
    let list = state.messages.deliveries(status, &page).await?;
    Ok(list.map(DeliveryResponse::from))
}

/// Queues a failed delivery again (admin), its attempts reset.
#[utoipa::path(
    post, path = "/api/v1/notifications/deliveries/{id}/retry", tag = "notifications", operation_id = "retry_delivery",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Delivery id")),
    responses(
        (status = 200, description = "The delivery, queued", body = DeliveryResponse),
        (status = 400, description = "Malformed id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such delivery", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "The delivery has not failed", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn retry_delivery(
    state: web::Data<State>,
    _admin: AdminUser,
    id: web::Path<uuid::Uuid>,
) -> Result<web::Json<DeliveryResponse>, ApiError> {
    let delivery = state.messages.retry(id.into_inner()).await?;
    Ok(web::Json(delivery.into()))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(my_messages, my_message, get_preferences, put_preferences, list_deliveries, retry_delivery),
    components(schemas(StatusFilter)),
    tags((name = "notifications", description = "Messages to customers and their delivery"))
)]
pub(crate) struct ApiDoc;
