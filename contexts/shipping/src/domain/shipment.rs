use kernel::address::PostalAddress;
use kernel::id::{OrderId, ShipmentId, UserId};
use kernel::Timestamp;
use shipping_contracts::{
    ShipmentCancelled, ShipmentCreated, ShipmentDelivered, ShipmentDispatched, ShippedLine,
};

/// Where a shipment is: `pending -> dispatched -> in_transit* -> delivered`, or `cancelled`
/// before dispatch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ShipmentStatus {
    Pending,
    Dispatched,
    InTransit,
    Delivered,
    Cancelled,
}

/// A parcel for one order, with what the carrier reported about it.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Shipment {
    pub(crate) id: ShipmentId,
    pub(crate) order_id: OrderId,
    pub(crate) customer_id: UserId,
    pub(crate) carrier: String,
    pub(crate) tracking_number: String,
    pub(crate) status: ShipmentStatus,
    pub(crate) address: PostalAddress,
    pub(crate) lines: Vec<ShippedLine>,
    /// The parcel's weight (0 for an order placed before orders carried it).
    pub(crate) weight_grams: u64,
    /// What the customer paid for shipping.
    pub(crate) charge: Option<kernel::Money>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    pub(crate) events: Vec<TrackingEvent>,
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct TrackingEvent {
    pub(crate) event_type: String,
    pub(crate) location: Option<String>,
    pub(crate) occurred_at: Timestamp,
}

/// One of the events a shipment publishes.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum ShipmentEvent {
    Created(ShipmentCreated),
    Dispatched(ShipmentDispatched),
    Delivered(ShipmentDelivered),
    Cancelled(ShipmentCancelled),
}

impl Shipment {
    /// What the shipment announces on reaching its status (created, or moved there). In
    /// transit is shown on tracking; nobody else needs to hear of it.
    pub(crate) fn announcement(&self) -> Option<ShipmentEvent> {
        Some(match self.status {
            ShipmentStatus::Pending => ShipmentEvent::Created(ShipmentCreated {
                shipment_id: self.id,
                order_id: self.order_id,
                customer_id: self.customer_id,
                carrier: self.carrier.clone(),
                tracking_number: self.tracking_number.clone(),
                created_at: self.created_at,
            }),
            ShipmentStatus::Dispatched => ShipmentEvent::Dispatched(ShipmentDispatched {
                shipment_id: self.id,
                order_id: self.order_id,
                customer_id: self.customer_id,
                tracking_number: self.tracking_number.clone(),
                lines: self.lines.clone(),
                dispatched_at: self.updated_at,
            }),
            ShipmentStatus::Delivered => ShipmentEvent::Delivered(ShipmentDelivered {
                shipment_id: self.id,
                order_id: self.order_id,
                customer_id: self.customer_id,
                tracking_number: self.tracking_number.clone(),
                delivered_at: self.updated_at,
            }),
            ShipmentStatus::Cancelled => ShipmentEvent::Cancelled(ShipmentCancelled {
                shipment_id: self.id,
                order_id: self.order_id,
                customer_id: self.customer_id,
                cancelled_at: self.updated_at,
            }),
            ShipmentStatus::InTransit => return None,
        })
    }
}

/// What a carrier reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CarrierEvent {
    Dispatched,
    InTransit,
    Delivered,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub(crate) enum TransitionError {
    #[error("a {status} shipment cannot become {event}")]
    Invalid {
        status: &'static str,
        event: &'static str,
    },
}

impl ShipmentStatus {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Dispatched => "dispatched",
            Self::InTransit => "in_transit",
            Self::Delivered => "delivered",
            Self::Cancelled => "cancelled",
        }
    }

    pub(crate) fn parse(raw: &str) -> Option<Self> {
        match raw {
            "pending" => Some(Self::Pending),
            "dispatched" => Some(Self::Dispatched),
            "in_transit" => Some(Self::InTransit),
            "delivered" => Some(Self::Delivered),
            "cancelled" => Some(Self::Cancelled),
            _ => None,
        }
    }

    /// The status after a carrier event, or why it cannot happen.
    pub(crate) fn apply(&self, event: CarrierEvent) -> Result<ShipmentStatus, TransitionError> {
        use CarrierEvent as E;
        use ShipmentStatus as S;
        match (self, event) {
            (S::Pending, E::Dispatched) => Ok(S::Dispatched),
            (S::Dispatched | S::InTransit, E::InTransit) => Ok(S::InTransit),
            (S::Dispatched | S::InTransit, E::Delivered) => Ok(S::Delivered),
            (status, event) => Err(TransitionError::Invalid {
                status: status.as_str(),
                event: event.as_str(),
            }),
        }
    }

    /// Only a shipment that has not left can be cancelled.
    pub(crate) fn cancel(&self) -> Option<ShipmentStatus> {
        (*self == Self::Pending).then_some(Self::Cancelled)
    }
}

impl CarrierEvent {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Self::Dispatched => "dispatched",
            Self::InTransit => "in_transit",
            Self::Delivered => "delivered",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn shipment(status: ShipmentStatus) -> Shipment {
        Shipment {
            id: ShipmentId::new(),
            order_id: OrderId::new(),
            customer_id: UserId::new(),
            carrier: "DHL".into(),
            tracking_number: "DHL0123456789".into(),
            status,
            address: PostalAddress {
                name: "A".into(),
                line1: "1 Road".into(),
                line2: None,
                city: "Town".into(),
                postal_code: "1000".into(),
                country: "BE".into(),
            },
            lines: vec![],
            weight_grams: 0,
            charge: None,
            created_at: Timestamp::from_micros(1_000_000),
            updated_at: Timestamp::from_micros(2_000_000),
            events: vec![],
        }
    }

    #[test]
    fn a_shipment_announces_each_status_others_act_on() {
        let created = shipment(ShipmentStatus::Pending);
        assert!(matches!(created.announcement(),
            Some(ShipmentEvent::Created(e)) if e.order_id == created.order_id
                && e.tracking_number == created.tracking_number
                && e.created_at == created.created_at));
        let dispatched = shipment(ShipmentStatus::Dispatched);
        assert!(matches!(dispatched.announcement(),
            Some(ShipmentEvent::Dispatched(e)) if e.dispatched_at == dispatched.updated_at));
        assert!(matches!(
            shipment(ShipmentStatus::Delivered).announcement(),
            Some(ShipmentEvent::Delivered(_))
        ));
        assert!(matches!(
            shipment(ShipmentStatus::Cancelled).announcement(),
            Some(ShipmentEvent::Cancelled(_))
        ));
        assert_eq!(shipment(ShipmentStatus::InTransit).announcement(), None);
    }

    fn is_final(s: ShipmentStatus) -> bool {
        matches!(s, ShipmentStatus::Delivered | ShipmentStatus::Cancelled)
    }

    #[derive(Debug, Clone, Copy)]
    enum Step {
        Carrier(CarrierEvent),
        Cancel,
    }

    fn step() -> impl Strategy<Value = Step> {
        prop_oneof![
            Just(Step::Carrier(CarrierEvent::Dispatched)),
            Just(Step::Carrier(CarrierEvent::InTransit)),
            Just(Step::Carrier(CarrierEvent::Delivered)),
            Just(Step::Cancel),
        ]
    }

    #[test]
    fn delivered_before_dispatch_is_refused() {
        assert!(ShipmentStatus::Pending
            .apply(CarrierEvent::Delivered)
            .is_err());
        assert!(ShipmentStatus::Pending
            .apply(CarrierEvent::InTransit)
            .is_err());
        assert_eq!(ShipmentStatus::Dispatched.cancel(), None);
    }

    proptest! {
        /// Any sequence of events leaves a reachable state: nothing moves a final shipment,
        /// delivery always follows dispatch, cancellation only happens before dispatch.
        #[test]
        fn random_event_sequences_never_reach_an_invalid_state(steps in prop::collection::vec(step(), 0..20)) {
            let mut status = ShipmentStatus::Pending;
            let mut dispatched = false;
            for s in steps {
                let before = status;
                let next = match s {
                    Step::Carrier(e) => status.apply(e).ok(),
                    Step::Cancel => status.cancel(),
                };
                if let Some(next) = next {
                    prop_assert!(!is_final(before), "{before:?} moved to {next:?}");
                    if next == ShipmentStatus::Cancelled { prop_assert!(!dispatched); }
                    if next == ShipmentStatus::Delivered { prop_assert!(dispatched); }
                    if next == ShipmentStatus::Dispatched { dispatched = true; }
                    status = next;
                }
            }
        }
    }
}
