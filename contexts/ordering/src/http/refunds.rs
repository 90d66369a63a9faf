//! Refunds an admin grants on an order: `POST /api/v1/ordering/orders/{id}/refunds`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use bus::Causation;
use kernel::id::OrderId;
use platform::auth::AdminUser;
use platform::error::{ApiError, ProblemBody};
use platform::http::{RequestContext, ValidJson};

use super::{idempotency_key, RefundOrderRequest, RefundResponse, State};
use crate::domain::{RefundError, RefundRequest};

pub(super) fn refund_problem(e: RefundError) -> ApiError {
    let why = e.to_string();
    match e {
        RefundError::NotCharged => ApiError::conflict("ordering.not_charged", why),
        RefundError::ExceedsCharge { .. } => {
            ApiError::unprocessable("ordering.refund_exceeds_charge", why)
        }
        RefundError::CurrencyMismatch { .. } => {
            ApiError::validation(vec![kernel::FieldError::new("amount.currency", why)])
        }
        RefundError::Zero => {
            ApiError::validation(vec![kernel::FieldError::new("amount.amount", why)])
        }
        RefundError::KeyReused => ApiError::unprocessable("ordering.idempotency_key_reused", why),
    }
}

/// Give back part (or the rest) of an order's charge, for goodwill or a damaged item
/// (admin). Each refund is its own payment record, sent to the payment gateway at once;
/// together they never exceed the charge, whatever arrives at the same time. Send an
/// `Idempotency-Key`: retrying with the same key and body grants one refund.
#[utoipa::path(
    post, path = "/api/v1/ordering/orders/{id}/refunds", tag = "ordering", operation_id = "refund_order",
    security(("bearer" = [])),
    params(
        ("id" = uuid::Uuid, Path, description = "Order id"),
        ("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: same key and body, same refund; 1 to 200 visible ASCII characters", min_length = 1, max_length = 200, pattern = "^[!-~]+$")
    ),
    request_body = RefundOrderRequest,
    responses(
        (status = 201, description = "The refund, granted (`pending` until the gateway confirms it, then `refunded`)", body = RefundResponse, headers(
            ("Location" = String, description = "The order, which lists its refunds"),
            ("Idempotent-Replayed" = Option<String>, description = "`true` when an earlier request with this key made the refund")
        )),
        (status = 400, description = "Malformed id or JSON", body = ProblemBody, content_type = "application/problem+json"),
        (status = 401, description = "Not signed in", body = ProblemBody, content_type = "application/problem+json"),
        (status = 403, description = "Not an admin", body = ProblemBody, content_type = "application/problem+json"),
        (status = 404, description = "No such order", body = ProblemBody, content_type = "application/problem+json"),
        (status = 409, description = "`ordering.not_charged`: the order was never charged", body = ProblemBody, content_type = "application/problem+json"),
        (status = 422, description = "Invalid fields, another currency than the charge's, `ordering.refund_exceeds_charge` (more than is still refundable) or `ordering.idempotency_key_reused`", body = ProblemBody, content_type = "application/problem+json")
    )
)]
pub(super) async fn refund_order(
    state: web::Data<State>,
    _admin: AdminUser,
    req: HttpRequest,
    ctx: RequestContext,
    id: web::Path<uuid::Uuid>,
    body: ValidJson<RefundOrderRequest>,
) -> Result<HttpResponse, ApiError> {
    let id = OrderId::from_uuid(id.into_inner());
    let body = body.into_inner();
    let mut errors = Vec::new();
    let client_key = idempotency_key(&req, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation(errors));
    }
    let request = RefundRequest {
        id: uuid::Uuid::now_v7(),
        amount: body.amount,
        reason: body.reason.trim().to_owned(),
        client_key,
    };
    let asked = request.id;
    let (order, refund_id) = state
        .checkout
        .refund(id, request, &Causation::from(&ctx))
        .await?;
    let answer = RefundResponse::of(&order, refund_id).ok_or_else(|| {
        ApiError::internal(anyhow::anyhow!(
            "refund {refund_id} missing from order {id}"
        ))
    })?;
    let mut res = HttpResponse::Created();
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/ordering/orders/{id}")) {
        res.insert_header((header::LOCATION, location));
    }
    if refund_id != asked {
        res.insert_header(("idempotent-replayed", "true"));
    }
    Ok(res.json(answer))
}
