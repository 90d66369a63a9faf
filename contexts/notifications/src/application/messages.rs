//! What customers and admins read and do: my messages, my preferences, the deliveries.

use std::sync::Arc;

use kernel::id::UserId;
use kernel::Clock;
use platform::auth::AuthUser;
use platform::pagination::{Page, PageRequest};
use tokio::sync::Notify;

use super::ports::{Deliveries, Projections, RetryOutcome};
use super::NotificationsError;
use crate::domain::{Delivery, DeliveryStatus, Preferences};

pub(crate) struct Messages {
    pub(crate) deliveries: Arc<dyn Deliveries>,
    pub(crate) projections: Arc<dyn Projections>,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) wake: Arc<Notify>,
}

impl Messages {
    pub(crate) async fn mine(
        &self,
        caller: UserId,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, NotificationsError> {
        Ok(self.deliveries.list(Some(caller), None, page).await?)
    }

    /// One message: the caller's own, or any for an admin. Others' are "not found".
    pub(crate) async fn one(
        &self,
        caller: &AuthUser,
        id: uuid::Uuid,
    ) -> Result<Delivery, NotificationsError> {
        let delivery = self
            .deliveries
            .get(id)
            .await?
            .ok_or(NotificationsError::NotFound)?;
        if !caller.is_admin() && delivery.customer_id != caller.user_id {
            return Err(NotificationsError::NotFound);
        }
        Ok(delivery)
    }

    pub(crate) async fn preferences(
        &self,
        caller: UserId,
    ) -> Result<Preferences, NotificationsError> {
        Ok(self.projections.preferences(caller).await?)
    }

    pub(crate) async fn set_preferences(
        &self,
        caller: UserId,
        preferences: Preferences,
    ) -> Result<Preferences, NotificationsError> {
        self.projections
            .set_preferences(caller, preferences, self.clock.now())
            .await?;
        Ok(preferences)
    }

    pub(crate) async fn deliveries(
        &self,
        status: Option<DeliveryStatus>,
        page: &PageRequest,
    ) -> Result<Page<Delivery>, NotificationsError> {
        Ok(self.deliveries.list(None, status, page).await?)
    }

    pub(crate) async fn retry(&self, id: uuid::Uuid) -> Result<Delivery, NotificationsError> {
        match self.deliveries.retry(id, self.clock.now()).await? {
            RetryOutcome::Queued(d) => {
                self.wake.notify_one();
                Ok(*d)
            }
            RetryOutcome::NotFailed(status) => Err(NotificationsError::NotFailed(status.as_str())),
            RetryOutcome::NotFound => Err(NotificationsError::NotFound),
        }
    }
}
