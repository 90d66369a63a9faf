//! The process as a service client: client-credentials tokens from identity, one audience
//! each, cached until a minute before they expire. The dashboard uses them for ordering's
//! service-only counts, the gateway for every process's dead letters.

use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;

use crate::config::ContextName;
use crate::upstream::{Call, Caller, Upstream};

pub struct ServiceTokens {
    upstream: Arc<dyn Upstream>,
    /// Client id and secret (`EMPORIUM_SERVICE_CLIENT_ID` / `_SECRET`, or the monolith's own).
    credentials: Option<(String, String)>,
    /// Tokens by audience, with their lifetime.
    tokens: moka::future::Cache<&'static str, (String, u64)>,
}

#[derive(Deserialize)]
struct ServiceToken {
    access_token: String,
    expires_in: u64,
}

impl ServiceTokens {
    pub fn new(upstream: Arc<dyn Upstream>, credentials: Option<(String, String)>) -> Self {
        Self {
            upstream,
            credentials,
            tokens: moka::future::Cache::builder()
                .max_capacity(16)
                .expire_after(TokenExpiry)
                .build(),
        }
    }

    /// A client-credentials token for `audience`, from identity (cached until shortly
    /// before it expires).
    pub async fn token(&self, audience: ContextName, ctx: &Caller) -> anyhow::Result<String> {
        let (id, secret) = self.credentials.as_ref().ok_or_else(|| {
            anyhow::anyhow!("no service credentials (EMPORIUM_SERVICE_CLIENT_ID)")
        })?;
        let key = audience.as_str();
        if let Some((token, _)) = self.tokens.get(key).await {
            return Ok(token);
        }
        let form = format!(
            "grant_type=client_credentials&audience={}&client_id={}&client_secret={}",
            form_escape(key),
            form_escape(id),
            form_escape(secret)
        );
        let (status, body) = self
            .upstream
            .call(
                ContextName::Identity,
                Call {
                    method: reqwest::Method::POST,
                    path: "/api/v1/identity/oauth/token".to_owned(),
                    bearer: None,
                    form: Some(form),
                    request_id: ctx.request.request_id.clone(),
                    traceparent: ctx.request.traceparent.clone(),
                    forwarded_for: ctx.forwarded_for.clone(),
                },
            )
            .await?;
        if status != 200 {
            anyhow::bail!("identity refused a service token for {key}: {status}");
        }
        let token: ServiceToken = serde_json::from_slice(&body)?;
        self.tokens
            .insert(key, (token.access_token.clone(), token.expires_in))
            .await;
        Ok(token.access_token)
    }
}

/// A service token remembered until a minute before it expires (never less than a second).
struct TokenExpiry;

impl moka::Expiry<&'static str, (String, u64)> for TokenExpiry {
    fn expire_after_create(
        &self,
        _key: &&'static str,
        value: &(String, u64),
        _created_at: std::time::Instant,
    ) -> Option<Duration> {
        Some(Duration::from_secs(value.1.saturating_sub(60).max(1)))
    }
}

fn form_escape(raw: &str) -> String {
    raw.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}
