//! The sender: drains the delivery queue through the [`Sender`] port, retrying refusals on
//! the [`RetrySchedule`] and giving up (and saying so on the bus) when it runs out.

use std::sync::Arc;
use std::time::Duration;

use bus::{Causation, Store};
use kernel::Clock;
use notifications_contracts::DeliveryFailed;
use serde_json::json;
use tokio::sync::{watch, Notify};

use super::ports::{Deliveries, Outgoing, Renderer, Sender};
use crate::domain::{AfterRefusal, Customer, Delivery, Refusal, RetrySchedule};

/// Deliveries taken per round.
const BATCH: u32 = 50;

pub(crate) struct Outbound {
    pub(crate) deliveries: Arc<dyn Deliveries>,
    pub(crate) renderer: Arc<dyn Renderer>,
    pub(crate) sender: Arc<dyn Sender>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) store: Store,
    pub(crate) schedule: RetrySchedule,
    pub(crate) wake: Arc<Notify>,
    /// How often the queue is looked at without a wake-up (retries come due by time).
    pub(crate) poll: Duration,
    /// How long a taken delivery stays hidden from other senders (one attempt's bound).
    pub(crate) lease: Duration,
}

/// How one attempt ended.
enum Attempt {
    Sent,
    /// Refused; `server` when the mail server (or the drop) refused, not the message.
    Refused {
        refusal: Refusal,
        recipient: Option<String>,
        server: bool,
    },
}

impl Outbound {
    /// Runs until the stop signal turns true.
    pub(crate) async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        loop {
            if *stop.borrow() {
                return;
            }
            let busy = match self.round(&stop).await {
                Ok(n) => n == BATCH as usize,
                Err(e) => {
                    tracing::warn!(error = %format!("{e:#}"), "notification delivery round failed");
                    false
                }
            };
            if busy {
                continue;
            }
            tokio::select! {
                _ = self.wake.notified() => {}
                _ = tokio::time::sleep(self.poll) => {}
                _ = stop.changed() => return,
            }
        }
    }

    /// One pass over what is due; returns how many deliveries it took.
    pub(crate) async fn round(&self, stop: &watch::Receiver<bool>) -> anyhow::Result<usize> {
        let due = self.deliveries.due(self.clock.now(), BATCH).await?;
        let mut taken = 0;
        for (delivery, customer) in due {
            if *stop.borrow() {
                break;
            }
            let now = self.clock.now();
            if !self
                .deliveries
                .claim(&delivery, now.plus(self.lease))
                .await?
            {
                continue;
            }
            taken += 1;
            let attempts = delivery.attempts + 1;
            match self.attempt(&delivery, customer).await? {
                Attempt::Sent => {
                    metrics::counter!("emporium_notifications_deliveries_total", "outcome" => "sent")
                        .increment(1);
                }
                Attempt::Refused {
                    refusal,
                    recipient,
                    server,
                } => {
                    self.refused(&delivery, attempts, &refusal, recipient.as_deref())
                        .await?;
                    // The server is down or refusing everything for now: the rest of the
                    // round would only be refused too. They stay due, in order.
                    if server && matches!(refusal, Refusal::Transient(_)) {
                        break;
                    }
                }
            }
        }
        Ok(taken)
    }

    async fn attempt(
        &self,
        delivery: &Delivery,
        customer: Option<Customer>,
    ) -> anyhow::Result<Attempt> {
        let Some(customer) = customer else {
            // Identity's registration has not reached this context yet (or the customer
            // registered before it joined): wait for it.
            return Ok(Attempt::Refused {
                refusal: Refusal::Transient("the customer's address is not known yet".into()),
                recipient: None,
                server: false,
            });
        };
        let mut context = delivery.data.clone();
        if let Some(map) = context.as_object_mut() {
            map.insert(
                "customer".into(),
                json!({"name": customer.name, "email": customer.email}),
            );
        }
        let rendered = match self.renderer.render(delivery.kind, &context) {
            Ok(r) => r,
            Err(e) => {
                return Ok(Attempt::Refused {
                    refusal: Refusal::Permanent(format!("cannot render the message: {e:#}")),
                    recipient: Some(customer.email),
                    server: false,
                })
            }
        };
        // A message about an address that is not yet the customer's (a change of address to
        // verify) goes to that address.
        let to_email = delivery
            .data
            .get("send_to")
            .and_then(|v| v.as_str())
            .map_or_else(|| customer.email.clone(), str::to_owned);
        let message = Outgoing {
            delivery_id: delivery.id,
            to_email,
            to_name: customer.name,
            rendered,
        };
        match self.sender.send(&message).await {
            Ok(()) => {
                self.deliveries
                    .mark_sent(
                        delivery.id,
                        &message,
                        delivery.carries_secret(),
                        self.clock.now(),
                    )
                    .await?;
                tracing::info!(delivery_id = %delivery.id, kind = delivery.kind.as_str(), "message sent");
                Ok(Attempt::Sent)
            }
            Err(refusal) => Ok(Attempt::Refused {
                refusal,
                recipient: Some(message.to_email),
                server: true,
            }),
        }
    }

    async fn refused(
        &self,
        delivery: &Delivery,
        attempts: u32,
        refusal: &Refusal,
        recipient: Option<&str>,
    ) -> anyhow::Result<()> {
        let now = self.clock.now();
        match self.schedule.after(delivery, attempts, refusal, now) {
            AfterRefusal::RetryAt(at) => {
                tracing::warn!(delivery_id = %delivery.id, attempts, error = refusal.message(), "message refused; will retry");
                metrics::counter!("emporium_notifications_deliveries_total", "outcome" => "retried")
                    .increment(1);
                self.deliveries
                    .mark_refused(delivery.id, refusal, recipient, at, now)
                    .await
            }
            AfterRefusal::Fail => {
                tracing::error!(delivery_id = %delivery.id, attempts, error = refusal.message(), "message failed; an admin can retry it");
                metrics::counter!("emporium_notifications_deliveries_total", "outcome" => "failed")
                    .increment(1);
                let mut work = self.store.begin(Causation::system()).await?;
                self.deliveries
                    .mark_failed(&mut work, delivery.id, refusal, recipient, now)
                    .await?;
                work.publish(
                    &DeliveryFailed {
                        delivery_id: delivery.id.to_string(),
                        customer_id: delivery.customer_id,
                        kind: delivery.kind.as_str().to_owned(),
                        attempts,
                        error: refusal.message().to_owned(),
                        failed_at: now,
                    },
                    now,
                )?;
                work.commit().await
            }
        }
    }
}
