//! The customer projection: what ordering knows of identity's customers (a verified email
//! address, the address book), from identity's events, never by calling identity.

use std::sync::Arc;

use bus::{Consumer, DeliveryMode, HandlesOnce, UnitOfWork};
use identity_contracts::{AddressBookChanged, EmailVerified};

use super::ports::CustomerBook;

pub(crate) const GROUP: &str = "ordering.customers";

pub(crate) fn consumer() -> Consumer<CustomerFeed> {
    Consumer::new(GROUP, DeliveryMode::Competing)
        .in_batches()
        .once::<EmailVerified>()
        .once::<AddressBookChanged>()
}

pub(crate) struct CustomerFeed {
    pub(crate) customers: Arc<dyn CustomerBook>,
}

#[async_trait::async_trait]
impl HandlesOnce<EmailVerified> for CustomerFeed {
    async fn handle_once(&self, e: EmailVerified, work: &mut UnitOfWork) -> anyhow::Result<()> {
        self.customers
            .record_verified(work, e.user_id, &e.email, e.verified_at)
            .await
    }
}

#[async_trait::async_trait]
impl HandlesOnce<AddressBookChanged> for CustomerFeed {
    async fn handle_once(
        &self,
        e: AddressBookChanged,
        work: &mut UnitOfWork,
    ) -> anyhow::Result<()> {
        let addresses: Vec<_> = e
            .addresses
            .into_iter()
            .map(|a| (a.address_id, a.address, a.is_default))
            .collect();
        self.customers
            .replace_addresses(work, e.user_id, e.revision, &addresses, e.changed_at)
            .await
    }
}
