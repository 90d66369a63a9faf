//! Returns under `/api/v1/ordering/orders/{id}/returns`: the customer (or an admin) opens
//! one; an admin approves, rejects or receives it.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use bus::Causation;
use kernel::id::{OrderId, ProductId};
use kernel::{FieldError, Money, Timestamp};
use platform::auth::AdminUser;
use platform::error::{ApiError, ProblemBody};
use platform::http::{RequestContext, ValidJson};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use super::shopper::OrderReader;
use super::{free_text, idempotency_key, State};
use crate::application::returns::NewReturn;
use crate::domain::{Order, OrderReturn, ReturnError};

pub(super) fn return_problem(e: ReturnError) -> ApiError {
    let why = e.to_string();
    match e {
        ReturnError::NotReturnable(_) => ApiError::conflict("ordering.not_returnable", why),
        ReturnError::WindowClosed => ApiError::conflict("ordering.return_window_closed", why),
        ReturnError::UnknownLine(_) => ApiError::validation(vec![FieldError::new("lines", why)]),
        ReturnError::TooMany { .. } => {
            ApiError::unprocessable("ordering.return_exceeds_order", why)
        }
        ReturnError::NotFound => ApiError::not_found("ordering.return_not_found", why),
        ReturnError::WrongStatus(..) => {
            ApiError::conflict("ordering.return_invalid_transition", why)
        }
        ReturnError::KeyReused => ApiError::unprocessable("ordering.idempotency_key_reused", why),
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReturnLineRequest {
    /// The variant sold (an order line's `variant_id`).
    pub(crate) variant_id: uuid::Uuid,
    /// 1..=99, at most what was bought less what other returns hold.
    #[schema(minimum = 1, maximum = 99)]
    #[serde(deserialize_with = "kernel::schema::whole_number")]
    pub(crate) quantity: i64,
}

/// Units to send back, and why.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lines": [{"variant_id": "01a20899-843f-734e-9500-914ec2e156c2", "quantity": 1}], "reason": "too small"}))]
pub(crate) struct ReturnOrderRequest {
    /// 1 to 50 lines, each variant once.
    #[validate(length(min = 1, max = 50))]
    #[schema(min_items = 1, max_items = 50)]
    pub(crate) lines: Vec<ReturnLineRequest>,
    /// 1 to 500 characters, not blank.
    #[validate(custom(function = "free_text"))]
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub(crate) reason: String,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"refund_shipping": true}))]
pub(crate) struct ApproveReturnRequest {
    /// Refund shipping with this return even if not everything comes back (it is refunded
    /// anyway with the return that brings the last unit back).
    #[serde(default)]
    pub(crate) refund_shipping: bool,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"note": "worn, outside the conditions of return"}))]
pub(crate) struct RejectReturnRequest {
    /// Why, for the customer: 1 to 500 characters, not blank.
    #[validate(custom(function = "free_text"))]
    #[schema(min_length = 1, max_length = 500, pattern = "\\S")]
    pub(crate) note: String,
}

#[derive(Debug, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReceivedLineRequest {
    pub(crate) variant_id: uuid::Uuid,
    /// `false`: damaged, written off instead of put back on sale.
    pub(crate) restock: bool,
}

/// What arrived: every line of the return is put back on sale unless listed with
/// `restock: false`.
#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"lines": [{"variant_id": "01a20899-843f-734e-9500-914ec2e156c2", "restock": false}]}))]
pub(crate) struct ReceiveReturnRequest {
    #[serde(default)]
    #[validate(length(max = 50))]
    #[schema(max_items = 50)]
    pub(crate) lines: Vec<ReceivedLineRequest>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReturnLineResponse {
    pub(crate) variant_id: uuid::Uuid,
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) quantity: u32,
    /// Put back on sale when received (`false`: written off).
    pub(crate) restock: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ReturnResponse {
    pub(crate) id: uuid::Uuid,
    pub(crate) order_id: uuid::Uuid,
    /// requested, approved, rejected, received or refunded.
    pub(crate) status: &'static str,
    pub(crate) reason: String,
    pub(crate) lines: Vec<ReturnLineResponse>,
    /// Before receipt: shipping is to be refunded with it; after: its refund includes shipping.
    pub(crate) refund_shipping: bool,
    /// What receiving it refunded (the lines' share of the charge, at most what was left).
    pub(crate) refund_amount: Option<Money>,
    /// Its refund among the order's `payments`.
    pub(crate) refund_id: Option<uuid::Uuid>,
    /// Why it was rejected.
    pub(crate) note: Option<String>,
    /// The prepaid return label's tracking number (the carrier's), once shipping made it
    /// (shortly after approval).
    pub(crate) tracking_number: Option<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

impl ReturnResponse {
    pub(crate) fn of(order: &Order, r: &OrderReturn) -> Self {
        Self {
            id: r.id,
            order_id: order.id.as_uuid(),
            status: r.status.as_str(),
            reason: r.reason.clone(),
            lines: r
                .lines
                .iter()
                .map(|l| {
                    let sold = order.sold(l.product_id);
                    ReturnLineResponse {
                        variant_id: l.product_id.as_uuid(),
                        sku: sold.map(|o| o.sku.clone()).unwrap_or_default(),
                        name: sold.map(|o| o.name.clone()).unwrap_or_default(),
                        quantity: l.quantity,
                        restock: l.restock,
                    }
                })
                .collect(),
            refund_shipping: r.refund_shipping,
            refund_amount: r.refund_amount,
            refund_id: r.refund_id,
            note: r.note.clone(),
            tracking_number: r.tracking_number.clone(),
            created_at: r.created_at,
            updated_at: r.updated_at,
        }
    }
}

fn answer(order: &Order, return_id: uuid::Uuid) -> Result<ReturnResponse, ApiError> {
    order
        .find_return(return_id)
        .map(|r| ReturnResponse::of(order, r))
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "return {return_id} missing from order {}",
                order.id
            ))
        })
}

/// Send units of a shipped or delivered order back (the customer, within
/// `EMPORIUM_RETURN_WINDOW_DAYS` of delivery; an admin at any time). An admin then approves or
/// rejects it, and receives the parcel, which restocks and refunds.
#[utoipa::path(
    post, path = "/api/v1/ordering/orders/{id}/returns", tag = "ordering", operation_id = "request_return",
    security(("bearer" = []), ("order_token" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "Order id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: same key and body, same return; 1 to 200 visible ASCII characters", min_length = 1, max_length = 200, pattern = "^[!-~]+$")
    ),
    request_body = ReturnOrderRequest,
    responses(
        (status = 201, description = "The return, `requested`", body = ReturnResponse, headers(
            ("Location" = String, description = "The order, which lists its returns"),
            ("Idempotent-Replayed" = Option<String>, description = "`true` when an earlier request with this key opened the return")
        )),
        (status = 400, description = "Malformed id or JSON; or `ambiguous_request`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such order (or not yours)", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`ordering.not_returnable` (not shipped or delivered) or `ordering.return_window_closed`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, a variant the order does not have, `ordering.return_exceeds_order` (more than was bought, less what other returns hold) or `ordering.idempotency_key_reused`", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(super) async fn request_return(
    state: web::Data<State>,
    reader: OrderReader,
    req: HttpRequest,
    ctx: RequestContext,
    id: web::Path<uuid::Uuid>,
    body: ValidJson<ReturnOrderRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = OrderId::from_uuid(id.into_inner());
    let body = body.into_inner();
    let mut lines: Vec<(ProductId, u32)> = Vec::with_capacity(body.lines.len());
    let mut errors = Vec::new();
    let client_key = idempotency_key(&req, &mut errors);
    for (i, l) in body.lines.iter().enumerate() {
        let product = ProductId::from_uuid(l.variant_id);
        if lines.iter().any(|(p, _)| *p == product) {
            errors.push(FieldError::new(
                format!("lines[{i}].variant_id"),
                "is listed twice",
            ));
        }
        match crate::domain::Quantity::parse(l.quantity) {
            Ok(q) => lines.push((product, q.get())),
            Err(why) => errors.push(FieldError::new(format!("lines[{i}].quantity"), why)),
        }
    }
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let (caller, admin) = reader.of(&state, id).await?;
    let asked = NewReturn {
        lines,
        reason: body.reason.trim().to_owned(),
        client_key,
    };
    let (order, return_id, replayed) = state
        .checkout
        .request_return(caller, admin, id, asked, &Causation::from(&ctx))
        .await?;
    let mut res = HttpResponse::Created();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/ordering/orders/{id}")) {
        res.insert_header((header::LOCATION, location));
    }
    if replayed {
        res.insert_header(("idempotent-replayed", "true"));
    }
    Ok(res.json(answer(&order, return_id)?))
}

/// Agree to take a requested return back (admin).
#[utoipa::path(
    post, path = "/api/v1/ordering/orders/{id}/returns/{return_id}/approve", tag = "ordering", operation_id = "approve_return",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Order id"), ("return_id" = uuid::Uuid, Path, description = "Return id")),
    request_body = ApproveReturnRequest,
    responses(
        (status = 200, description = "The return, `approved`", body = ReturnResponse),
        (status = 400, description = "Malformed id or JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such order or return", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`ordering.return_invalid_transition`: the return is not `requested`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(super) async fn approve_return(
    state: web::Data<State>,
    _admin: AdminUser,
    ctx: RequestContext,
    path: web::Path<(uuid::Uuid, uuid::Uuid)>,
    body: ValidJson<ApproveReturnRequest>,
) -> Result<web::Json<ReturnResponse>, ApiError> {
    let (id, return_id) = path.into_inner();
    let id = OrderId::from_uuid(id);
    let order = state
        .checkout
        .approve_return(
            id,
            return_id,
            body.into_inner().refund_shipping,
            &Causation::from(&ctx),
        )
        .await?;
    Ok(web::Json(answer(&order, return_id)?))
}

/// Refuse a requested return (admin); its units may be asked for again.
#[utoipa::path(
    post, path = "/api/v1/ordering/orders/{id}/returns/{return_id}/reject", tag = "ordering", operation_id = "reject_return",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Order id"), ("return_id" = uuid::Uuid, Path, description = "Return id")),
    request_body = RejectReturnRequest,
    responses(
        (status = 200, description = "The return, `rejected`", body = ReturnResponse),
        (status = 400, description = "Malformed id or JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such order or return", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`ordering.return_invalid_transition`: the return is not `requested`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(super) async fn reject_return(
    state: web::Data<State>,
    _admin: AdminUser,
    ctx: RequestContext,
    path: web::Path<(uuid::Uuid, uuid::Uuid)>,
    body: ValidJson<RejectReturnRequest>,
) -> Result<web::Json<ReturnResponse>, ApiError> {
    let (id, return_id) = path.into_inner();
    let id = OrderId::from_uuid(id);
    let note = body.into_inner().note.trim().to_owned();
    let order = state
        .checkout
        .reject_return(id, return_id, note, &Causation::from(&ctx))
        .await?;
    Ok(web::Json(answer(&order, return_id)?))
}

/// The returned parcel arrived (admin): its units go back on sale (catalog), except lines
/// marked `restock: false`, and the lines' share of the charge is refunded at once.
#[utoipa::path(
    post, path = "/api/v1/ordering/orders/{id}/returns/{return_id}/receive", tag = "ordering", operation_id = "receive_return",
    security(("bearer" = [])),
    params(("id" = uuid::Uuid, Path, description = "Order id"), ("return_id" = uuid::Uuid, Path, description = "Return id")),
    request_body = ReceiveReturnRequest,
    responses(
        (status = 200, description = "The return, `received` (its refund sent; `refunded` once confirmed, or at once when nothing was left to refund)", body = ReturnResponse),
        (status = 400, description = "Malformed id or JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such order or return", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`ordering.return_invalid_transition`: the return is not `approved`", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, or a variant the return does not hold", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(super) async fn receive_return(
    state: web::Data<State>,
    _admin: AdminUser,
    ctx: RequestContext,
    path: web::Path<(uuid::Uuid, uuid::Uuid)>,
    body: ValidJson<ReceiveReturnRequest>,
) -> Result<web::Json<ReturnResponse>, ApiError> {
    let (id, return_id) = path.into_inner();
    let id = OrderId::from_uuid(id);
    let no_restock: Vec<ProductId> = body
        .into_inner()
        .lines
        .into_iter()
        .filter(|l| !l.restock)
        .map(|l| ProductId::from_uuid(l.variant_id))
        .collect();
    let order = state
        .checkout
        .receive_return(id, return_id, no_restock, &Causation::from(&ctx))
        .await?;
    Ok(web::Json(answer(&order, return_id)?))
}
