//! The in-process adapter (the default). `publish` runs every interested group's handler
//! (with retries and dead-lettering) before it returns, so the relay marks an outbox row sent
//! only once each group has committed its effect or stored a dead letter: a crash at any
//! point leaves the row unsent and it is published again after restart.
//!
//! Several app instances in one process may share one `MemoryBus`: a competing group then
//! hands each event to one of its instances (round robin), a broadcast group to all.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};

use crate::envelope::Envelope;
use crate::handler::{dispatch, dispatch_batch, dispatch_once, DeliveryMode, Subscription};
use crate::{BusError, EventBus};

struct Group {
    mode: DeliveryMode,
    instances: Vec<Arc<Subscription>>,
    next: AtomicUsize,
}

#[derive(Default)]
pub struct MemoryBus {
    groups: RwLock<HashMap<String, Arc<Group>>>,
    closed: AtomicBool,
}

impl MemoryBus {
    pub fn new() -> Self {
        Self::default()
    }

    fn targets(&self, event_type: &str) -> Vec<Arc<Subscription>> {
        let Ok(groups) = self.groups.read() else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for group in groups.values() {
            let wanting: Vec<&Arc<Subscription>> = group
                .instances
                .iter()
                .filter(|s| s.wants(event_type))
                .collect();
            if wanting.is_empty() {
                continue;
            }
            match group.mode {
                DeliveryMode::Broadcast => out.extend(wanting.into_iter().cloned()),
                DeliveryMode::Competing => {
                    let i = group.next.fetch_add(1, Ordering::Relaxed) % wanting.len();
                    out.push(wanting[i].clone());
                }
            }
        }
        out
    }
}

#[async_trait::async_trait]
impl EventBus for MemoryBus {
    async fn publish(&self, envelope: &Envelope) -> Result<(), BusError> {
        if self.closed.load(Ordering::SeqCst) {
            return Err(BusError::Closed);
        }
        let targets = self.targets(&envelope.event_type);
        let results =
            futures::future::join_all(targets.iter().map(|sub| dispatch(sub, envelope))).await;
        for result in results {
            result?;
        }
        Ok(())
    }

    async fn publish_batch(&self, envelopes: &[Envelope]) -> Vec<Result<(), BusError>> {
        if self.closed.load(Ordering::SeqCst) {
            return envelopes.iter().map(|_| Err(BusError::Closed)).collect();
        }
        // Each subscription's share of the batch, in publication order.
        let mut shares: Vec<(Arc<Subscription>, Vec<usize>)> = Vec::new();
        for (i, envelope) in envelopes.iter().enumerate() {
            for sub in self.targets(&envelope.event_type) {
                match shares.iter_mut().find(|(s, _)| Arc::ptr_eq(s, &sub)) {
                    Some((_, share)) => share.push(i),
                    None => shares.push((sub, vec![i])),
                }
            }
        }
        let delivered = futures::future::join_all(shares.iter().map(|(sub, share)| async move {
            let mine: Vec<&Envelope> = share.iter().map(|&i| &envelopes[i]).collect();
            (share, dispatch_batch(sub, &mine).await)
        }))
        .await;
        let mut results: Vec<Result<(), BusError>> = envelopes.iter().map(|_| Ok(())).collect();
        for (share, outcomes) in delivered {
            for (&i, outcome) in share.iter().zip(outcomes) {
                if let Err(e) = outcome {
                    results[i] = Err(e.into());
                }
            }
        }
        results
    }

    async fn subscribe(&self, subscription: Subscription) -> Result<(), BusError> {
        let mut groups = self
            .groups
            .write()
            .map_err(|_| BusError::Other(anyhow::anyhow!("bus lock poisoned")))?;
        let name = subscription.group.clone();
        let mode = subscription.mode;
        let existing = groups
            .get(&name)
            .map(|g| g.instances.clone())
            .unwrap_or_default();
        let mut instances = existing;
        instances.push(Arc::new(subscription));
        groups.insert(
            name,
            Arc::new(Group {
                mode,
                instances,
                next: AtomicUsize::new(0),
            }),
        );
        Ok(())
    }

    async fn redeliver(&self, group: &str, envelope: &Envelope) -> Result<(), BusError> {
        let sub = {
            let groups = self
                .groups
                .read()
                .map_err(|_| BusError::Other(anyhow::anyhow!("bus lock poisoned")))?;
            groups
                .get(group)
                .and_then(|g| g.instances.first().cloned())
                .ok_or_else(|| BusError::UnknownGroup(group.to_owned()))?
        };
        dispatch_once(&sub, envelope).await?;
        Ok(())
    }

    async fn ready(&self) -> bool {
        !self.closed.load(Ordering::SeqCst)
    }

    async fn shutdown(&self) {
        self.closed.store(true, Ordering::SeqCst);
        if let Ok(mut groups) = self.groups.write() {
            groups.clear();
        }
    }

    fn name(&self) -> &'static str {
        "memory"
    }
}
