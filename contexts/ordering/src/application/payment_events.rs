//! What the payment provider tells the shop about its payments (Stripe's webhooks, verified by
//! the adapter): each event is taken once, by its id, and the charge it is about records the
//! provider's state of it, so a payment refunded or disputed in the provider's dashboard shows
//! on the order.

use std::sync::Arc;

use bus::{Causation, Units};
use kernel::Clock;

use super::ports::ProviderEventBook;
use super::OrderingError;
pub(crate) use crate::domain::ProviderEvent;

pub(crate) struct PaymentEvents {
    pub(crate) units: Arc<dyn Units>,
    pub(crate) book: Arc<dyn ProviderEventBook>,
    pub(crate) clock: Arc<dyn Clock>,
}

/// What became of an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Taken {
    /// New, and applied to this many charges (0: none of the shop's).
    New { charges: u64 },
    /// Taken before: nothing done again.
    Duplicate,
}

impl PaymentEvents {
    /// Takes `event` once: recorded and applied in one unit of work.
    pub(crate) async fn take(
        &self,
        event: &ProviderEvent,
        cause: &Causation,
    ) -> Result<Taken, OrderingError> {
        let now = self.clock.now();
        let mut work = self.units.begin(cause.clone()).await?;
        if !self.book.record_in(&mut work, "stripe", event, now).await? {
            return Ok(Taken::Duplicate);
        }
        let charges = match (&event.payment_reference, event.provider_status) {
            (Some(reference), Some(status)) => {
                self.book
                    .set_provider_status_in(&mut work, reference, status)
                    .await?
            }
            _ => 0,
        };
        work.commit().await?;
        if charges == 0 && event.payment_reference.is_some() {
            tracing::info!(event_id = %event.id, kind = %event.kind, "provider event about no payment of this shop");
        } else if let Some(status) = event.provider_status {
            tracing::info!(event_id = %event.id, kind = %event.kind, provider_status = status, "provider event applied");
        }
        Ok(Taken::New { charges })
    }
}
