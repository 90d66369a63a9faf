//! Notifications' domain: the kinds of message, a delivery's life (queued, sent, failed) and
//! the retry schedule. No I/O.

pub(crate) mod webhook;

use std::time::Duration;

use kernel::id::UserId;
use kernel::Timestamp;

/// What a message is about. Each kind has its templates (`templates/<kind>.*`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum MessageKind {
    Welcome,
    OrderConfirmed,
    OrderCancelled,
    /// A refund reached the customer's card (a partial one, or what a cancellation gave back).
    RefundIssued,
    /// A return moved: requested, approved, rejected or received (`step` says which).
    ReturnUpdate,
    ShipmentDispatched,
    ShipmentDelivered,
    PasswordReset,
    VerifyEmail,
    /// To an account's previous address: the account moved to another one.
    EmailChanged,
    /// To the admin who made a webhook endpoint: it failed for the whole retry window and
    /// was turned off.
    WebhookDisabled,
}

impl MessageKind {
    pub(crate) const ALL: [MessageKind; 11] = [
        Self::Welcome,
        Self::OrderConfirmed,
        Self::OrderCancelled,
        Self::RefundIssued,
        Self::ReturnUpdate,
        Self::ShipmentDispatched,
        Self::ShipmentDelivered,
        Self::PasswordReset,
        Self::VerifyEmail,
        Self::EmailChanged,
        Self::WebhookDisabled,
    ];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Welcome => "welcome",
            Self::OrderConfirmed => "order_confirmed",
            Self::OrderCancelled => "order_cancelled",
            Self::RefundIssued => "refund_issued",
            Self::ReturnUpdate => "return_update",
            Self::ShipmentDispatched => "shipment_dispatched",
            Self::ShipmentDelivered => "shipment_delivered",
            Self::PasswordReset => "password_reset",
            Self::VerifyEmail => "verify_email",
            Self::EmailChanged => "email_changed",
            Self::WebhookDisabled => "webhook_disabled",
        }
    }

    pub(crate) fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == raw)
    }

    /// Shipment updates can be turned off; what a customer bought or lost cannot.
    pub(crate) fn wanted_by(self, preferences: &Preferences) -> bool {
        match self {
            Self::ShipmentDispatched | Self::ShipmentDelivered => preferences.shipment_updates,
            Self::Welcome
            | Self::OrderConfirmed
            | Self::OrderCancelled
            | Self::RefundIssued
            | Self::ReturnUpdate
            | Self::PasswordReset
            | Self::VerifyEmail
            | Self::EmailChanged
            | Self::WebhookDisabled => true,
        }
    }

    /// The message carries a secret (a one-time link): once sent, neither its facts nor its
    /// text are kept, so no reader of the deliveries or the customer's messages sees it.
    pub(crate) fn carries_secret(self) -> bool {
        matches!(self, Self::PasswordReset | Self::VerifyEmail)
    }

    /// Sent whatever the customer's preferences say (wanted with every preference off), so
    /// queueing one need not read them.
    pub(crate) fn always_sent(self) -> bool {
        self.wanted_by(&Preferences {
            shipment_updates: false,
        })
    }

    /// The key that makes a message unique: one of this kind per subject (a customer, an
    /// order, a shipment), however often the event that asks for it arrives.
    pub(crate) fn dedup_key(self, subject: &str) -> String {
        format!("{}:{subject}", self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Preferences {
    pub(crate) shipment_updates: bool,
}

impl Default for Preferences {
    fn default() -> Self {
        Self {
            shipment_updates: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DeliveryStatus {
    Queued,
    Sent,
    Failed,
}

impl DeliveryStatus {
    pub(crate) const ALL: [DeliveryStatus; 3] = [Self::Queued, Self::Sent, Self::Failed];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sent => "sent",
            Self::Failed => "failed",
        }
    }

    pub(crate) fn parse(raw: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|s| s.as_str() == raw)
    }
}

/// A customer as notifications knows them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Customer {
    pub(crate) id: UserId,
    pub(crate) email: String,
    pub(crate) name: String,
    /// When identity stated this.
    pub(crate) as_of: Timestamp,
}

/// One message to one customer and its delivery state.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Delivery {
    pub(crate) id: uuid::Uuid,
    pub(crate) customer_id: UserId,
    pub(crate) kind: MessageKind,
    /// The facts the templates render (order id, lines, tracking number...).
    pub(crate) data: serde_json::Value,
    pub(crate) status: DeliveryStatus,
    pub(crate) attempts: u32,
    pub(crate) next_attempt_at: Timestamp,
    pub(crate) last_error: Option<String>,
    pub(crate) recipient: Option<String>,
    pub(crate) subject: Option<String>,
    pub(crate) body_text: Option<String>,
    pub(crate) created_at: Timestamp,
    pub(crate) updated_at: Timestamp,
    pub(crate) sent_at: Option<Timestamp>,
}

impl Delivery {
    /// The message carries a secret: a one-time link of its kind, or a guest order's link
    /// (`order_url`, with the order token that reads the order). Once sent, it is forgotten.
    pub(crate) fn carries_secret(&self) -> bool {
        self.kind.carries_secret() || self.data.get("order_url").is_some_and(|u| !u.is_null())
    }

    /// The order the message is about, if any.
    pub(crate) fn order_id(&self) -> Option<String> {
        self.data
            .get("order_id")
            .and_then(|v| v.as_str())
            .map(str::to_owned)
    }

    pub(crate) fn queued(
        customer_id: UserId,
        kind: MessageKind,
        data: serde_json::Value,
        now: Timestamp,
    ) -> Self {
        Self {
            id: uuid::Uuid::now_v7(),
            customer_id,
            kind,
            data,
            status: DeliveryStatus::Queued,
            attempts: 0,
            next_attempt_at: now,
            last_error: None,
            recipient: None,
            subject: None,
            body_text: None,
            created_at: now,
            updated_at: now,
            sent_at: None,
        }
    }
}

/// Why an attempt did not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// Worth trying again: the server is down or busy (4xx), the network failed, the
    /// customer is not known here yet.
    Transient(String),
    /// The server refused the message for good (5xx: no such mailbox, policy).
    Permanent(String),
}

impl Refusal {
    pub(crate) fn message(&self) -> &str {
        match self {
            Self::Transient(m) | Self::Permanent(m) => m,
        }
    }
}

/// When to try again, and when to stop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct RetrySchedule {
    /// The first retry's delay; each next one doubles, up to `max_delay`.
    pub(crate) first_delay: Duration,
    pub(crate) max_delay: Duration,
    /// Permanent refusals allowed before the delivery fails.
    pub(crate) permanent_attempts: u32,
    /// Transient refusals are retried while the delivery is younger than this: an outage of
    /// minutes or hours loses nothing.
    pub(crate) give_up_after: Duration,
}

impl Default for RetrySchedule {
    fn default() -> Self {
        Self {
            first_delay: Duration::from_secs(2),
            max_delay: Duration::from_secs(300),
            permanent_attempts: 3,
            give_up_after: Duration::from_secs(48 * 3600),
        }
    }
}

/// What to do after a refused attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum AfterRefusal {
    RetryAt(Timestamp),
    Fail,
}

impl RetrySchedule {
    /// The delay before attempt `attempts + 1`, `attempts` having been made.
    pub(crate) fn delay(&self, attempts: u32) -> Duration {
        let doublings = attempts.saturating_sub(1).min(30);
        self.first_delay
            .saturating_mul(1u32 << doublings)
            .min(self.max_delay)
    }

    pub(crate) fn after(
        &self,
        delivery: &Delivery,
        attempts: u32,
        refusal: &Refusal,
        now: Timestamp,
    ) -> AfterRefusal {
        let exhausted = match refusal {
            Refusal::Permanent(_) => attempts >= self.permanent_attempts,
            Refusal::Transient(_) => now >= delivery.created_at.plus(self.give_up_after),
        };
        if exhausted {
            AfterRefusal::Fail
        } else {
            AfterRefusal::RetryAt(now.plus(self.delay(attempts)))
        }
    }
}

/// `EUR 12.30` from minor units, with the currency's ISO 4217 number of decimals.
pub(crate) fn format_amount(amount: i64, currency: &str) -> String {
    const NONE: &[&str] = &[
        "BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG", "RWF", "UGX", "VND", "VUV",
        "XAF", "XOF", "XPF",
    ];
    const THREE: &[&str] = &["BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"];
    let sign = if amount < 0 { "-" } else { "" };
    let abs = amount.unsigned_abs();
    if NONE.contains(&currency) {
        format!("{currency} {sign}{abs}")
    } else if THREE.contains(&currency) {
        format!("{currency} {sign}{}.{:03}", abs / 1000, abs % 1000)
    } else {
        format!("{currency} {sign}{}.{:02}", abs / 100, abs % 100)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn delivery(now: Timestamp) -> Delivery {
        Delivery::queued(
            UserId::new(),
            MessageKind::OrderConfirmed,
            serde_json::json!({}),
            now,
        )
    }

    #[test]
    fn kinds_and_statuses_read_back_as_written() {
        for k in MessageKind::ALL {
            assert_eq!(MessageKind::parse(k.as_str()), Some(k));
        }
        for s in DeliveryStatus::ALL {
            assert_eq!(DeliveryStatus::parse(s.as_str()), Some(s));
        }
        assert_eq!(MessageKind::parse("spam"), None);
    }

    #[test]
    fn only_shipment_updates_can_be_turned_off() {
        let off = Preferences {
            shipment_updates: false,
        };
        assert!(!MessageKind::ShipmentDispatched.wanted_by(&off));
        assert!(!MessageKind::ShipmentDelivered.wanted_by(&off));
        assert!(MessageKind::OrderConfirmed.wanted_by(&off));
        assert!(MessageKind::OrderCancelled.wanted_by(&off));
        assert!(MessageKind::Welcome.wanted_by(&off));
        let always: Vec<_> = MessageKind::ALL
            .into_iter()
            .filter(|k| k.always_sent())
            .collect();
        assert_eq!(
            always,
            vec![
                MessageKind::Welcome,
                MessageKind::OrderConfirmed,
                MessageKind::OrderCancelled,
                MessageKind::RefundIssued,
                MessageKind::ReturnUpdate,
                MessageKind::PasswordReset,
                MessageKind::VerifyEmail,
                MessageKind::EmailChanged,
                MessageKind::WebhookDisabled
            ]
        );
        // Only the one-time links are secrets, forgotten once sent.
        let secret: Vec<_> = MessageKind::ALL
            .into_iter()
            .filter(|k| k.carries_secret())
            .collect();
        assert_eq!(
            secret,
            vec![MessageKind::PasswordReset, MessageKind::VerifyEmail]
        );
    }

    #[test]
    fn a_guest_order_link_makes_its_confirmation_a_secret() {
        let now = Timestamp::from_micros(0);
        assert!(!delivery(now).carries_secret());
        let linked = |url: serde_json::Value| {
            Delivery::queued(
                UserId::new(),
                MessageKind::OrderConfirmed,
                serde_json::json!({"order_id": "o", "order_url": url}),
                now,
            )
        };
        assert!(!linked(serde_json::Value::Null).carries_secret());
        assert!(linked(serde_json::json!("https://shop/orders/o?token=t")).carries_secret());
    }

    #[test]
    fn delays_double_up_to_the_cap() {
        let s = RetrySchedule {
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(10),
            ..RetrySchedule::default()
        };
        let delays: Vec<u64> = (1..=6).map(|n| s.delay(n).as_secs()).collect();
        assert_eq!(delays, vec![1, 2, 4, 8, 10, 10]);
        assert_eq!(s.delay(u32::MAX), Duration::from_secs(10));
    }

    #[test]
    fn a_permanent_refusal_fails_after_its_attempts_and_a_transient_one_only_when_old() {
        let now = Timestamp::now();
        let s = RetrySchedule::default();
        let d = delivery(now);
        let permanent = Refusal::Permanent("550 no such user".into());
        assert!(matches!(
            s.after(&d, 1, &permanent, now),
            AfterRefusal::RetryAt(_)
        ));
        assert_eq!(s.after(&d, 3, &permanent, now), AfterRefusal::Fail);
        let transient = Refusal::Transient("connection refused".into());
        assert!(matches!(
            s.after(&d, 500, &transient, now),
            AfterRefusal::RetryAt(_)
        ));
        let later = now.plus(s.give_up_after);
        assert_eq!(s.after(&d, 2, &transient, later), AfterRefusal::Fail);
    }

    #[test]
    fn amounts_have_two_decimals() {
        assert_eq!(format_amount(1230, "EUR"), "EUR 12.30");
        assert_eq!(format_amount(5, "USD"), "USD 0.05");
        assert_eq!(format_amount(0, "EUR"), "EUR 0.00");
        assert_eq!(format_amount(1200, "JPY"), "JPY 1200");
        assert_eq!(format_amount(1234, "KWD"), "KWD 1.234");
    }
}
