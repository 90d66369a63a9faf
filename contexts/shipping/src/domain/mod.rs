//! Shipping's domain: shipments, their state machine and the events they announce, and
//! tracking numbers. Pure: no I/O.

mod shipment;
mod tracking_number;

pub(crate) use shipment::{
    CarrierEvent, Shipment, ShipmentEvent, ShipmentStatus, TrackingEvent, TransitionError,
};
pub(crate) use tracking_number::TrackingNumber;
