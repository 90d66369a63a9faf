//! Ordering's use cases and ports.

pub(crate) mod cart;
pub(crate) mod checkout;
pub(crate) mod ports;
pub(crate) mod projection;
pub(crate) mod promotions;
pub(crate) mod rates;
pub(crate) mod saga;

use kernel::FieldError;

#[derive(Debug, thiserror::Error)]
pub(crate) enum OrderingError {
    #[error("invalid input")]
    Invalid(Vec<FieldError>),
    #[error("the cart is empty")]
    CartEmpty,
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
    Unexpected(#[from] anyhow::Error),
}
