//! Stripe as the payment gateway (`EMPORIUM_PAYMENTS=stripe`), over its HTTP API: a charge is
//! a PaymentIntent created and confirmed in one call with the customer's payment method
//! (`pm_…`, or a card token `tok_…` wrapped as one), captured at once — the order is confirmed
//! when it is paid, so authorising and capturing apart would only add a call
//! (docs/decisions/0055-stripe-takes-the-payment-in.md).
//! A refund names the intent and the amount. Every call carries Stripe's `Idempotency-Key`
//! (the payment record's key), so a retried charge is the first one, never a second.
//! Card declines are the customer's (`Declined`); rate limits, 5xx and network failures are
//! transient (`Unavailable`, retried by the saga); anything else is logged and treated as
//! unavailable so the saga's give-up time, not a guess, ends the order.

use std::time::Duration;

use kernel::Money;

use crate::application::ports::{GatewayError, PaymentGateway};

pub(crate) struct StripeGateway {
    client: reqwest::Client,
    /// `https://api.stripe.com`, or a test server's address.
    api_base: String,
    secret_key: String,
}

impl StripeGateway {
    pub(crate) fn new(api_base: &str, secret_key: &str) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(20))
            .build()?;
        Ok(Self {
            client,
            api_base: api_base.trim_end_matches('/').to_owned(),
            secret_key: secret_key.to_owned(),
        })
    }

    /// One form-encoded POST; the answer's JSON, or what went wrong as the saga reads it.
    async fn post(
        &self,
        path: &str,
        idempotency_key: &str,
        form: &[(&str, String)],
    ) -> Result<serde_json::Value, GatewayError> {
        let sent = self
            .client
            .post(format!("{}{path}", self.api_base))
            .bearer_auth(&self.secret_key)
            .header("Idempotency-Key", idempotency_key)
            .form(form)
            .send()
            .await;
        let response = match sent {
            Ok(r) => r,
            Err(e) => {
                return Err(GatewayError::Unavailable(format!(
                    "stripe unreachable: {}",
                    e.without_url()
                )))
            }
        };
        let status = response.status();
        let body: serde_json::Value = match response.json().await {
            Ok(body) => body,
            Err(e) => {
                return Err(GatewayError::Unavailable(format!(
                    "stripe answered {status} without JSON: {}",
                    e.without_url()
                )))
            }
        };
        if status.is_success() {
            return Ok(body);
        }
        Err(refusal(status.as_u16(), &body))
    }
}

/// What a Stripe error answer means for the order.
fn refusal(status: u16, body: &serde_json::Value) -> GatewayError {
    let error = &body["error"];
    let code = error["decline_code"]
        .as_str()
        .or_else(|| error["code"].as_str())
        .unwrap_or("unknown");
    match (status, error["type"].as_str()) {
        // The card was refused: the customer's answer, final.
        (402, _) | (_, Some("card_error")) => GatewayError::Declined(code.to_owned()),
        // An unknown or unusable payment method (the only object a charge names): the
        // customer's too.
        (404, _) => GatewayError::Declined("resource_missing".to_owned()),
        (400, Some("invalid_request_error")) if error["param"] == "payment_method" => {
            GatewayError::Declined("invalid_payment_method".to_owned())
        }
        (409 | 429, _) | (500.., _) => {
            GatewayError::Unavailable(format!("stripe answered {status} ({code})"))
        }
        _ => {
            tracing::error!(
                status,
                code,
                kind = error["type"].as_str().unwrap_or_default(),
                "stripe refused a request the shop made: check EMPORIUM_STRIPE_SECRET_KEY and the payment settings"
            );
            GatewayError::Unavailable(format!("stripe refused the request ({status}, {code})"))
        }
    }
}

/// Stripe's currency code (lower case) and amount in minor units.
fn amount_fields(amount: Money) -> [(&'static str, String); 2] {
    [
        ("amount", amount.amount().to_string()),
        ("currency", amount.currency().as_str().to_ascii_lowercase()),
    ]
}

#[async_trait::async_trait]
impl PaymentGateway for StripeGateway {
    async fn authorize(
        &self,
        idempotency_key: &str,
        token: &str,
        amount: Money,
    ) -> Result<String, GatewayError> {
        let mut form = amount_fields(amount).to_vec();
        form.extend([
            ("confirm", "true".to_owned()),
            ("capture_method", "automatic".to_owned()),
            ("payment_method_types[]", "card".to_owned()),
            ("metadata[emporium_payment]", idempotency_key.to_owned()),
        ]);
        if token.starts_with("tok_") {
            form.push(("payment_method_data[type]", "card".to_owned()));
            form.push(("payment_method_data[card][token]", token.to_owned()));
        } else {
            form.push(("payment_method", token.to_owned()));
        }
        let intent = self
            .post("/v1/payment_intents", idempotency_key, &form)
            .await?;
        let id = intent["id"].as_str().unwrap_or_default().to_owned();
        match intent["status"].as_str() {
            Some("succeeded") | Some("processing") if !id.is_empty() => Ok(id),
            // 3-D Secure and other customer actions are not supported at checkout.
            Some("requires_action") => {
                Err(GatewayError::Declined("authentication_required".to_owned()))
            }
            Some("requires_payment_method") => Err(GatewayError::Declined(
                intent["last_payment_error"]["code"]
                    .as_str()
                    .unwrap_or("card_declined")
                    .to_owned(),
            )),
            other => Err(GatewayError::Unavailable(format!(
                "stripe left the payment {}",
                other.unwrap_or("without a status")
            ))),
        }
    }

    async fn refund(
        &self,
        idempotency_key: &str,
        charge_reference: &str,
        amount: Money,
    ) -> Result<String, GatewayError> {
        let form = [
            ("payment_intent", charge_reference.to_owned()),
            ("amount", amount.amount().to_string()),
            ("metadata[emporium_payment]", idempotency_key.to_owned()),
        ];
        let refund = self.post("/v1/refunds", idempotency_key, &form).await?;
        match (refund["id"].as_str(), refund["status"].as_str()) {
            (Some(id), Some("succeeded" | "pending")) => Ok(id.to_owned()),
            (_, status) => Err(GatewayError::Unavailable(format!(
                "stripe left the refund {}",
                status.unwrap_or("without a status")
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn stripe_errors_are_read_as_the_saga_needs_them() {
        // Stripe's codes, not the shop's problem codes.
        let (declined_code, missing_code) = ("card_declined", "resource_missing");
        let declined = json!({"error": {"type": "card_error", "code": declined_code, "decline_code": "insufficient_funds"}});
        assert!(
            matches!(refusal(402, &declined), GatewayError::Declined(c) if c == "insufficient_funds")
        );
        let bad_method = json!({"error": {"type": "invalid_request_error", "code": missing_code, "param": "payment_method"}});
        assert!(matches!(
            refusal(400, &bad_method),
            GatewayError::Declined(_)
        ));
        for status in [409, 429, 500, 503] {
            assert!(matches!(
                refusal(status, &json!({})),
                GatewayError::Unavailable(_)
            ));
        }
        let wrong_key =
            json!({"error": {"type": "invalid_request_error", "message": "Invalid API Key"}});
        assert!(matches!(
            refusal(401, &wrong_key),
            GatewayError::Unavailable(_)
        ));
    }
}
