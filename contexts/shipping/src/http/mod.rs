//! Shipping's HTTP surface under `/api/v1/shipping`.

use std::sync::Arc;

use actix_web::{web, HttpResponse};
use bus::Causation;
use kernel::address::AddressBody;
use kernel::id::{OrderId, ShipmentId};
use kernel::Timestamp;
use platform::auth::{AdminUser, AuthUser};
use platform::error::{ApiError, ProblemBody};
use platform::http::{RequestContext, ValidJson};
use platform::pagination::{Page, PageRequest, Part};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use validator::Validate;

use crate::application::ports::{Shipment, TrackingEvent};
use crate::application::shipments::Shipments;
use crate::application::ShippingError;
use crate::domain::CarrierEvent;

pub(crate) struct State {
    pub(crate) shipments: Arc<Shipments>,
}

impl From<ShippingError> for ApiError {
    fn from(e: ShippingError) -> Self {
        match e {
            ShippingError::Invalid(errors) => ApiError::validation(errors),
            ShippingError::NotFound => {
                ApiError::not_found("shipping.shipment_not_found", "no such shipment")
            }
            ShippingError::Transition(t) => {
                ApiError::conflict("shipping.invalid_transition", t.to_string())
            }
            ShippingError::Unexpected(e) => ApiError::internal(e),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TrackingEventResponse {
    /// dispatched, in_transit, delivered or cancelled.
    #[serde(rename = "type")]
    pub(crate) event_type: String,
    pub(crate) location: Option<String>,
    pub(crate) occurred_at: Timestamp,
}

impl From<&TrackingEvent> for TrackingEventResponse {
    fn from(e: &TrackingEvent) -> Self {
        Self {
            event_type: e.event_type.clone(),
            location: e.location.clone(),
            occurred_at: e.occurred_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ShipmentLineResponse {
    pub(crate) product_id: uuid::Uuid,
    pub(crate) quantity: u32,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ShipmentResponse {
    pub(crate) id: uuid::Uuid,
    pub(crate) order_id: uuid::Uuid,
    /// pending, dispatched, in_transit, delivered or cancelled.
    pub(crate) status: &'static str,
    pub(crate) carrier: String,
    pub(crate) tracking_number: String,
    pub(crate) shipping_address: AddressBody,
    pub(crate) lines: Vec<ShipmentLineResponse>,
    /// The parcel's weight in grams.
    pub(crate) weight_grams: u64,
    /// What the customer paid for shipping.
    pub(crate) shipping_charge: Option<kernel::Money>,
    pub(crate) events: Vec<TrackingEventResponse>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

impl From<Shipment> for ShipmentResponse {
    fn from(s: Shipment) -> Self {
        Self {
            id: s.id.as_uuid(),
            order_id: s.order_id.as_uuid(),
            status: s.status.as_str(),
            carrier: s.carrier,
            tracking_number: s.tracking_number,
            shipping_address: s.address.into(),
            lines: s
                .lines
                .iter()
                .map(|l| ShipmentLineResponse {
                    product_id: l.product_id.as_uuid(),
                    quantity: l.quantity,
                })
                .collect(),
            weight_grams: s.weight_grams,
            shipping_charge: s.charge,
            events: s.events.iter().map(TrackingEventResponse::from).collect(),
            created_at: s.created_at,
            updated_at: s.updated_at,
        }
    }
}

/// Public tracking: status and events only, nothing about who or where.
#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct TrackingResponse {
    pub(crate) tracking_number: String,
    pub(crate) carrier: String,
    pub(crate) status: &'static str,
    pub(crate) events: Vec<TrackingEventResponse>,
}

#[derive(Debug, Clone, Copy, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(crate) enum CarrierEventType {
    Dispatched,
    InTransit,
    Delivered,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"type": "dispatched", "location": "Leipzig hub"}))]
pub(crate) struct CarrierEventRequest {
    #[serde(rename = "type")]
    pub(crate) event_type: CarrierEventType,
    /// Blank or `null`: none.
    #[validate(length(max = 200))]
    #[schema(schema_with = kernel::schema::optional_text_200_or_null)]
    pub(crate) location: Option<String>,
    /// When it happened (default: now); not in the future.
    pub(crate) occurred_at: Option<Timestamp>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ShipmentListQuery {
    /// Only the shipment of this order.
    pub(crate) order_id: Option<uuid::Uuid>,
    /// Items per page, 1..=100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub(crate) limit: Option<i64>,
    pub(crate) cursor: Option<String>,
}

pub(crate) fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::scope("/api/v1/shipping")
            .service(web::resource("/shipments").route(web::get().to(list_shipments)))
            .service(web::resource("/shipments/{id}").route(web::get().to(get_shipment)))
            .service(web::resource("/shipments/{id}/events").route(web::post().to(record_event)))
            .service(web::resource("/tracking/{tracking_number}").route(web::get().to(track))),
    );
}

/// Your shipments (admins: all), newest first.
#[utoipa::path(
    get, path = "/api/v1/shipping/shipments", tag = "shipping", operation_id = "list_shipments",
    security(("bearer" = [])),
    params(ShipmentListQuery),
    responses(
        (status = 200, description = "Shipments", body = Page<ShipmentResponse>, links(
            ("GetShipment" = (operation_id = "get_shipment", parameters(("id" = "$response.body#/items/0/id")))),
            ("RecordCarrierEvent" = (operation_id = "record_carrier_event", parameters(("id" = "$response.body#/items/0/id")))),
            ("TrackShipment" = (operation_id = "track_shipment", parameters(("tracking_number" = "$response.body#/items/0/tracking_number"))))
        )),
        (status = 400, description = "Bad cursor or order id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Bad limit", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn list_shipments(
    state: web::Data<State>,
    user: AuthUser,
    query: web::Query<ShipmentListQuery>,
) -> Result<Page<ShipmentResponse>, ApiError> {
    let page = PageRequest::from_query(query.limit, query.cursor.as_deref(), &[Part::Id])?;
    let list = state
        .shipments
        .list(&user, query.order_id.map(OrderId::from_uuid), &page)
        .await?;
    Ok(list.map(ShipmentResponse::from))
}

/// One shipment with its tracking events (yours, or any for admins).
#[utoipa::path(
    get, path = "/api/v1/shipping/shipments/{id}", tag = "shipping", operation_id = "get_shipment",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Shipment id")),
    responses(
        (status = 200, description = "The shipment", body = ShipmentResponse, links(
            ("TrackShipment" = (operation_id = "track_shipment", parameters(("tracking_number" = "$response.body#/tracking_number")))),
            ("RecordCarrierEvent" = (operation_id = "record_carrier_event", parameters(("id" = "$response.body#/id"))))
        )),
        (status = 400, description = "Malformed id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such shipment (or not yours)", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn get_shipment(
    state: web::Data<State>,
    user: AuthUser,
    id: web::Path<uuid::Uuid>,
) -> Result<web::Json<ShipmentResponse>, ApiError> {
    let shipment = state
        .shipments
        .get(&user, ShipmentId::from_uuid(id.into_inner()))
        .await?;
    Ok(web::Json(shipment.into()))
}

/// A carrier update (admin): dispatched, in_transit or delivered.
#[utoipa::path(
    post, path = "/api/v1/shipping/shipments/{id}/events", tag = "shipping", operation_id = "record_carrier_event",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Shipment id")),
    request_body = CarrierEventRequest,
    responses(
        (status = 200, description = "The shipment after the event", body = ShipmentResponse),
        (status = 400, description = "Malformed JSON or id", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such shipment", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "Not possible in the shipment's state", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn record_event(
    state: web::Data<State>,
    _admin: AdminUser,
    ctx: RequestContext,
    id: web::Path<uuid::Uuid>,
    body: ValidJson<CarrierEventRequest>,
) -> Result<web::Json<ShipmentResponse>, ApiError> {
    let body = body.into_inner();
    let event = match body.event_type {
        CarrierEventType::Dispatched => CarrierEvent::Dispatched,
        CarrierEventType::InTransit => CarrierEvent::InTransit,
        CarrierEventType::Delivered => CarrierEvent::Delivered,
    };
    let shipment = state
        .shipments
        .record_carrier_event(
            ShipmentId::from_uuid(id.into_inner()),
            event,
            body.location,
            body.occurred_at,
            &Causation::from(&ctx),
        )
        .await?;
    Ok(web::Json(shipment.into()))
}

/// Public tracking by tracking number: status and events, no personal data.
#[utoipa::path(
    get, path = "/api/v1/shipping/tracking/{tracking_number}", tag = "shipping", operation_id = "track_shipment",
    params(("tracking_number" = String, Path, description = "Carrier code, ten digits and a check digit")),
    responses(
        (status = 200, description = "Tracking", body = TrackingResponse),
        (status = 404, description = "Unknown tracking number", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(crate) async fn track(
    state: web::Data<State>,
    number: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let s = state.shipments.track(&number).await?;
    Ok(HttpResponse::Ok()
        .insert_header(("cache-control", "no-cache"))
        .json(TrackingResponse {
            tracking_number: s.tracking_number.clone(),
            carrier: s.carrier.clone(),
            status: s.status.as_str(),
            events: s.events.iter().map(TrackingEventResponse::from).collect(),
        }))
}

#[derive(utoipa::OpenApi)]
#[openapi(
    paths(list_shipments, get_shipment, record_event, track),
    tags((name = "shipping", description = "Shipments, carriers and tracking"))
)]
pub(crate) struct ApiDoc;
