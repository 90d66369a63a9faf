use kernel::{Money, Timestamp};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PaymentKind {
    Charge,
    Refund,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PaymentStatus {
    /// Created; the gateway has not answered yet (or the answer was lost).
    Pending,
    Authorized,
    Declined,
    /// The gateway stayed unavailable through every retry.
    Failed,
    Refunded,
}

impl PaymentKind {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Self::Charge => "charge",
            Self::Refund => "refund",
        }
    }

    pub(crate) fn parse(raw: &str) -> Option<Self> {
        match raw {
            "charge" => Some(Self::Charge),
            "refund" => Some(Self::Refund),
            _ => None,
        }
    }
}

impl PaymentStatus {
    pub(crate) fn as_str(&self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Authorized => "authorized",
            Self::Declined => "declined",
            Self::Failed => "failed",
            Self::Refunded => "refunded",
        }
    }

    pub(crate) fn parse(raw: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Authorized,
            Self::Declined,
            Self::Failed,
            Self::Refunded,
        ]
        .into_iter()
        .find(|s| s.as_str() == raw)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Payment {
    pub(crate) id: uuid::Uuid,
    pub(crate) kind: PaymentKind,
    pub(crate) status: PaymentStatus,
    pub(crate) amount: Money,
    /// Sent to the gateway: the same key never charges twice.
    pub(crate) idempotency_key: String,
    pub(crate) gateway_reference: Option<String>,
    pub(crate) attempts: i64,
    pub(crate) last_error: Option<String>,
    /// The charge's state as the provider's webhooks last told it (none heard: `None`).
    pub(crate) provider_status: Option<String>,
    /// Why a refund was made (a refund only).
    pub(crate) reason: Option<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}

/// One event of the payment provider about a payment, as its adapter read it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ProviderEvent {
    pub(crate) id: String,
    pub(crate) kind: String,
    /// The provider's id of the payment (a PaymentIntent), when the event names one.
    pub(crate) payment_reference: Option<String>,
    /// The charge's state the event implies, for the events that imply one.
    pub(crate) provider_status: Option<&'static str>,
}

/// The wait before the gateway is asked again after `attempts` failed calls: 5 s, doubling
/// each time, never more than an hour apart.
pub(crate) fn retry_delay(attempts: i64) -> std::time::Duration {
    let doublings = u32::try_from(attempts.saturating_sub(1).clamp(0, 20)).unwrap_or(20);
    std::time::Duration::from_secs(5u64.saturating_mul(1u64 << doublings)).min(MAX_RETRY_DELAY)
}

const MAX_RETRY_DELAY: std::time::Duration = std::time::Duration::from_secs(3600);

#[cfg(test)]
mod tests {
    use super::retry_delay;
    use std::time::Duration;

    #[test]
    fn retries_back_off_from_5_s_to_an_hour() {
        assert_eq!(retry_delay(0), Duration::from_secs(5));
        assert_eq!(retry_delay(1), Duration::from_secs(5));
        assert_eq!(retry_delay(2), Duration::from_secs(10));
        assert_eq!(retry_delay(5), Duration::from_secs(80));
        assert_eq!(retry_delay(11), Duration::from_secs(3600));
        assert_eq!(retry_delay(i64::MAX), Duration::from_secs(3600));
    }
}
