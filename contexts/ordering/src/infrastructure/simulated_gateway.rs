//! A payment gateway simulator with the test tokens: `tok_visa` approves, `tok_declined`
//! declines, `tok_unavailable` fails transiently; any other token is declined. Like a real
//! gateway it remembers idempotency keys (in its own table), so a repeated key replays the
//! first outcome and never charges twice.

use kernel::{Money, Timestamp};
use platform::db::Database;

use crate::application::ports::{GatewayError, PaymentGateway};

pub(crate) struct SimulatedPaymentGateway {
    pub(crate) db: Database,
    /// Share of calls that fail as if the gateway were unreachable (fault injection): half
    /// before it acts, half after it acted and recorded the outcome (the answer is lost).
    pub(crate) fault_rate: f64,
}

/// Where an injected fault strikes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Fault {
    None,
    Before,
    AnswerLost,
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
        let recorded = sqlx::query(
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
        if recorded.rows_affected() == 1 {
            return Ok(outcome.clone());
        }
        // Recorded first by a concurrent call with the key: its outcome is the answer.
        Ok(self.replay(key).await?.unwrap_or_else(|| outcome.clone()))
    }

    fn unavailable(e: anyhow::Error) -> GatewayError {
        GatewayError::Unavailable(format!("gateway error: {e}"))
    }

    fn draw_fault(&self) -> Fault {
        if self.fault_rate <= 0.0 {
            return Fault::None;
        }
        let roll: f64 = rand::random();
        if roll >= self.fault_rate {
            Fault::None
        } else if roll < self.fault_rate / 2.0 {
            Fault::Before
        } else {
            Fault::AnswerLost
        }
    }

    fn injected() -> GatewayError {
        GatewayError::Unavailable(
            "injected fault: the payment service is not responding".to_owned(),
        )
    }

    /// Decides and records a new outcome, or replays the one a known key has, with fault
    /// injection.
    async fn operate(
        &self,
        key: &str,
        operation: &str,
        amount: Money,
        decide: impl FnOnce() -> Result<String, GatewayError>,
    ) -> Result<String, GatewayError> {
        let fault = self.draw_fault();
        if fault == Fault::Before {
            return Err(Self::injected());
        }
        // Recorded first by this key's first call; a repeated key is answered from there.
        let outcome = self
            .record(key, operation, &decide(), amount)
            .await
            .map_err(Self::unavailable)?;
        if fault == Fault::AnswerLost {
            return Err(Self::injected());
        }
        outcome
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
        self.operate(key, "authorize", amount, || match token {
            "tok_visa" => Ok(format!("ch_{}", uuid::Uuid::now_v7().simple())),
            "tok_unavailable" => Err(GatewayError::Unavailable(
                "the payment service is not responding".to_owned(),
            )),
            "tok_declined" => Err(GatewayError::Declined("card_declined".to_owned())),
            _ => Err(GatewayError::Declined("unknown_token".to_owned())),
        })
        .await
    }

    async fn refund(
        &self,
        key: &str,
        charge_reference: &str,
        amount: Money,
    ) -> Result<String, GatewayError> {
        self.operate(key, "refund", amount, || {
            if charge_reference.starts_with("ch_") {
                Ok(format!("re_{}", uuid::Uuid::now_v7().simple()))
            } else {
                Err(GatewayError::Declined("unknown_charge".to_owned()))
            }
        })
        .await
    }
}
