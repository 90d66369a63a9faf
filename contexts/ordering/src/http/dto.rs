//! Request and response bodies.

use kernel::address::AddressBody;
use kernel::{Money, Timestamp};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use validator::Validate;

use crate::application::cart::PricedCart;
use crate::domain::{Order, OrderStatus, Payment};

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"product_id": "01a20899-843f-734e-9500-914ec2e156c2", "quantity": 2}))]
pub(crate) struct AddCartItemRequest {
    pub(crate) product_id: uuid::Uuid,
    /// 1..=99 (added to what the cart holds).
    #[schema(minimum = 1, maximum = 99)]
    #[serde(deserialize_with = "kernel::schema::whole_number")]
    pub(crate) quantity: i64,
}

#[derive(Debug, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"quantity": 3}))]
pub(crate) struct SetQuantityRequest {
    /// 1..=99.
    #[schema(minimum = 1, maximum = 99)]
    #[serde(deserialize_with = "kernel::schema::whole_number")]
    pub(crate) quantity: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CartItemResponse {
    pub(crate) product_id: uuid::Uuid,
    pub(crate) quantity: u32,
    pub(crate) sku: Option<String>,
    pub(crate) name: Option<String>,
    /// The current price.
    pub(crate) unit_price: Option<Money>,
    pub(crate) line_total: Option<Money>,
    /// False when the product is archived or unknown: remove it before checking out.
    pub(crate) available: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct CartResponse {
    pub(crate) items: Vec<CartItemResponse>,
    /// Absent when an item is unavailable or currencies are mixed.
    pub(crate) total: Option<Money>,
}

impl From<PricedCart> for CartResponse {
    fn from(cart: PricedCart) -> Self {
        Self {
            items: cart
                .lines
                .into_iter()
                .map(|l| {
                    let p = l.product.as_ref();
                    CartItemResponse {
                        product_id: l.product_id.as_uuid(),
                        quantity: l.quantity,
                        sku: p.map(|p| p.sku.clone()),
                        name: p.map(|p| p.name.clone()),
                        unit_price: p.map(|p| p.price),
                        line_total: p.and_then(|p| p.price.checked_mul(l.quantity).ok()),
                        available: p.is_some_and(|p| p.active),
                    }
                })
                .collect(),
            total: cart.total,
        }
    }
}

#[derive(Debug, Serialize, Deserialize, ToSchema, Validate)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"shipping_address": {"name": "Ada Lovelace", "line1": "12 Market Street", "city": "Berlin", "postal_code": "10115", "country": "DE"}, "payment_token": "tok_visa"}))]
pub(crate) struct CheckoutRequest {
    #[validate(nested)]
    pub(crate) shipping_address: AddressBody,
    /// A payment token; with the simulated gateway `tok_visa`, `tok_declined` or `tok_unavailable`.
    #[validate(custom(function = "payment_token"))]
    #[schema(min_length = 5, max_length = 200, pattern = "^tok_[A-Za-z0-9_]+$")]
    pub(crate) payment_token: String,
}

fn payment_token(token: &str) -> Result<(), validator::ValidationError> {
    crate::application::checkout::check_payment_token(token).map_err(|e| {
        let mut error = validator::ValidationError::new("payment_token");
        error.message = Some(e.message.into());
        error
    })
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrderLineResponse {
    pub(crate) product_id: uuid::Uuid,
    pub(crate) sku: String,
    pub(crate) name: String,
    pub(crate) quantity: u32,
    /// The price when the order was placed.
    pub(crate) unit_price: Money,
    pub(crate) line_total: Option<Money>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct PaymentResponse {
    pub(crate) id: uuid::Uuid,
    /// `charge` or `refund`.
    pub(crate) kind: &'static str,
    /// pending, authorized, declined, failed or refunded.
    pub(crate) status: &'static str,
    pub(crate) amount: Money,
    pub(crate) gateway_reference: Option<String>,
    pub(crate) attempts: i64,
    pub(crate) last_error: Option<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

impl From<&Payment> for PaymentResponse {
    fn from(p: &Payment) -> Self {
        Self {
            id: p.id,
            kind: p.kind.as_str(),
            status: p.status.as_str(),
            amount: p.amount,
            gateway_reference: p.gateway_reference.clone(),
            attempts: p.attempts,
            last_error: p.last_error.clone(),
            created_at: p.created_at,
            updated_at: p.updated_at,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct ShipmentRef {
    pub(crate) id: uuid::Uuid,
    pub(crate) tracking_number: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct StatusEntryResponse {
    pub(crate) status: OrderStatus,
    pub(crate) reason: Option<&'static str>,
    pub(crate) note: Option<String>,
    pub(crate) at: Timestamp,
}

#[derive(Debug, Serialize, ToSchema)]
pub(crate) struct OrderResponse {
    pub(crate) id: uuid::Uuid,
    pub(crate) status: OrderStatus,
    /// out_of_stock, payment_declined, payment_unavailable, customer_cancelled or reservation_expired.
    pub(crate) cancellation_reason: Option<&'static str>,
    pub(crate) lines: Vec<OrderLineResponse>,
    pub(crate) total: Money,
    pub(crate) shipping_address: AddressBody,
    pub(crate) payments: Vec<PaymentResponse>,
    pub(crate) shipment: Option<ShipmentRef>,
    pub(crate) status_history: Vec<StatusEntryResponse>,
    pub(crate) placed_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

impl From<Order> for OrderResponse {
    fn from(o: Order) -> Self {
        Self {
            id: o.id.as_uuid(),
            status: o.status,
            cancellation_reason: o.cancellation_reason.map(|r| r.as_str()),
            lines: o
                .lines
                .iter()
                .map(|l| OrderLineResponse {
                    product_id: l.product_id.as_uuid(),
                    sku: l.sku.clone(),
                    name: l.name.clone(),
                    quantity: l.quantity,
                    unit_price: l.unit_price,
                    line_total: l.unit_price.checked_mul(l.quantity).ok(),
                })
                .collect(),
            total: o.total,
            shipping_address: o.shipping_address.clone().into(),
            payments: o.payments.iter().map(PaymentResponse::from).collect(),
            shipment: o.shipment_id.map(|id| ShipmentRef {
                id: id.as_uuid(),
                tracking_number: o.tracking_number.clone(),
            }),
            status_history: o
                .history
                .iter()
                .map(|h| StatusEntryResponse {
                    status: h.status,
                    reason: h.reason.map(|r| r.as_str()),
                    note: h.note.clone(),
                    at: h.at,
                })
                .collect(),
            placed_at: o.placed_at,
            updated_at: o.updated_at,
        }
    }
}
