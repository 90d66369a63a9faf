//! A payment gateway simulator with the test tokens: `tok_visa` approves, `tok_declined`
//! declines, `tok_unavailable` fails transiently; any other token is declined. Like a real
//! gateway it remembers idempotency keys (in its own table), so a repeated key replays the
//! first outcome and never charges twice.

use kernel::db::Database;
use kernel::{Money, Timestamp};

use crate::application::ports::{GatewayError, PaymentGateway};

pub(crate) struct SimulatedPaymentGateway {
    pub(crate) db: Database,
}

impl SimulatedPaymentGateway {
    async fn replay(&self, key: &str) -> anyhow::Result<Option<Result<String, GatewayError>>> {
        let row: Option<(String, Option<String>)> = sqlx::query_as(
            "select outcome, reference from simulated_gateway_operation where idempotency_key = $1",
        )
        .bind(key)
        .fetch_optional(self.db.pool())
        .await?;
        Ok(row.map(|(outcome, reference)| match outcome.as_str() {
            "approved" => Ok(reference.unwrap_or_default()),
            other => Err(GatewayError::Declined(other.to_owned())),
        }))
    }

    async fn record(
        &self,
        key: &str,
        operation: &str,
        outcome: &Result<String, GatewayError>,
        amount: Money,
    ) -> anyhow::Result<Result<String, GatewayError>> {
        let (text, reference) = match outcome {
            Ok(r) => ("approved".to_owned(), Some(r.clone())),
            Err(GatewayError::Declined(why)) => (why.clone(), None),
            Err(GatewayError::Unavailable(_)) => return Ok(outcome.clone()),
        };
        sqlx::query(
            "insert into simulated_gateway_operation (idempotency_key, operation, outcome, reference, amount, created_at) \
             values ($1, $2, $3, $4, $5, $6) on conflict (idempotency_key) do nothing",
        )
        .bind(key)
        .bind(operation)
        .bind(text)
        .bind(reference)
        .bind(amount.amount())
        .bind(Timestamp::now().as_micros())
        .execute(self.db.pool())
        .await?;
        // Whoever recorded first decides the outcome.
        Ok(self.replay(key).await?.unwrap_or_else(|| outcome.clone()))
    }

    fn unavailable(e: anyhow::Error) -> GatewayError {
        GatewayError::Unavailable(format!("gateway error: {e}"))
    }
}

#[async_trait::async_trait]
impl PaymentGateway for SimulatedPaymentGateway {
    async fn authorize(
        &self,
        key: &str,
        token: &str,
        amount: Money,
    ) -> Result<String, GatewayError> {
        if let Some(previous) = self.replay(key).await.map_err(Self::unavailable)? {
            return previous;
        }
        let outcome = match token {
            "tok_visa" => Ok(format!("ch_{}", uuid::Uuid::now_v7().simple())),
            "tok_unavailable" => Err(GatewayError::Unavailable(
                "the payment service is not responding".to_owned(),
            )),
            "tok_declined" => Err(GatewayError::Declined("card_declined".to_owned())),
            _ => Err(GatewayError::Declined("unknown_token".to_owned())),
        };
        self.record(key, "authorize", &outcome, amount)
            .await
            .map_err(Self::unavailable)?
    }

    async fn refund(
        &self,
        key: &str,
        charge_reference: &str,
        amount: Money,
    ) -> Result<String, GatewayError> {
        if let Some(previous) = self.replay(key).await.map_err(Self::unavailable)? {
            return previous;
        }
        let outcome = if charge_reference.starts_with("ch_") {
            Ok(format!("re_{}", uuid::Uuid::now_v7().simple()))
        } else {
            Err(GatewayError::Declined("unknown_charge".to_owned()))
        };
        self.record(key, "refund", &outcome, amount)
            .await
            .map_err(Self::unavailable)?
    }
}
