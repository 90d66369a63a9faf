//! Shipping's domain: the shipment state machine and tracking numbers. Pure: no I/O.

mod shipment;
mod tracking_number;

pub(crate) use shipment::{CarrierEvent, ShipmentStatus, TransitionError};
pub(crate) use tracking_number::TrackingNumber;
