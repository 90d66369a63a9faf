//! Ordering's use cases and ports.

pub(crate) mod cart;
pub(crate) mod checkout;
pub(crate) mod customers;
#[cfg(test)]
mod fakes;
pub(crate) mod guests;
pub(crate) mod payment_events;
pub(crate) mod ports;
pub(crate) mod projection;
pub(crate) mod promotions;
pub(crate) mod rates;
pub(crate) mod returns;
pub(crate) mod saga;
#[cfg(test)]
mod tests;

use bus::UnitOfWork;
use kernel::{FieldError, Timestamp};

use crate::domain::cart::{Refusal, Unpriced};
use crate::domain::promotion::NotApplicable;
use crate::domain::OrderEvent;

#[derive(Debug, thiserror::Error)]
pub(crate) enum OrderingError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("the cart is empty")]
    CartEmpty,
    #[error("the customer's email address is not verified")]
    EmailUnverified,
    #[error("{0}")]
    ProductUnavailable(String),
    #[error("the item is not in the cart")]
    NotInCart,
    #[error("no such order")]
    OrderNotFound,
    #[error("this Idempotency-Key was used for a different request")]
    IdempotencyMismatch,
    #[error("{0}")]
    CannotCancel(String),
    #[error("{0}")]
    NotShipped(String),
    #[error("no such rate")]
    RateNotFound,
    #[error("{0}")]
    PromotionNotApplicable(String),
    #[error("no such promotion")]
    PromotionNotFound,
    #[error("a promotion with this code exists")]
    DuplicatePromotion,
    #[error(transparent)]
    Refund(crate::domain::RefundError),
    #[error(transparent)]
    Return(crate::domain::ReturnError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

impl From<NotApplicable> for OrderingError {
    fn from(why: NotApplicable) -> Self {
        OrderingError::PromotionNotApplicable(why.to_string())
    }
}

impl From<Unpriced> for OrderingError {
    fn from(u: Unpriced) -> Self {
        match u {
            Unpriced::NotShipped { country, currency } => {
                OrderingError::NotShipped(format!("no shipping to {country} in {currency}"))
            }
            Unpriced::MixedCurrencies => OrderingError::ProductUnavailable(
                "the cart mixes currencies; order them separately".to_owned(),
            ),
            Unpriced::TooLarge => {
                OrderingError::ProductUnavailable("the order's amounts are too large".to_owned())
            }
        }
    }
}

impl From<Refusal> for OrderingError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::Empty => OrderingError::CartEmpty,
            Refusal::Unavailable(why) => OrderingError::ProductUnavailable(why),
            Refusal::Unpriced(u) => u.into(),
            Refusal::Promotion(why) => why.into(),
        }
    }
}

/// Publishes what an order announced, when `work` commits.
pub(crate) fn publish(
    work: &mut UnitOfWork,
    events: Vec<OrderEvent>,
    at: Timestamp,
) -> anyhow::Result<()> {
    for event in events {
        match event {
            OrderEvent::Placed(e) => work.publish(&e, at)?,
            OrderEvent::Paid(e) => work.publish(&e, at)?,
            OrderEvent::Cancelled(e) => work.publish(&e, at)?,
            OrderEvent::StatusChanged(e) => work.publish(&e, at)?,
            OrderEvent::Refunded(e) => work.publish(&e, at)?,
            OrderEvent::ReturnRequested(e) => work.publish(&e, at)?,
            OrderEvent::ReturnApproved(e) => work.publish(&e, at)?,
            OrderEvent::ReturnRejected(e) => work.publish(&e, at)?,
            OrderEvent::ReturnReceived(e) => work.publish(&e, at)?,
        }
    }
    Ok(())
}
