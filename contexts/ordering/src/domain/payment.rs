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
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
}
