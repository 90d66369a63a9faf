//! Shipping's use cases and ports.

pub(crate) mod ports;
pub(crate) mod shipments;

#[derive(Debug, thiserror::Error)]
pub(crate) enum ShippingError {
    #[error("invalid input")]
    Invalid(Vec<kernel::FieldError>),
    #[error("no such shipment")]
    NotFound,
    #[error("{0}")]
    Transition(#[from] crate::domain::TransitionError),
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}
