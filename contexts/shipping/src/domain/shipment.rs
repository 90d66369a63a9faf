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
