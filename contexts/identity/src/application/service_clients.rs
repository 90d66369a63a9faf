//! OAuth 2.0 client credentials (RFC 6749 §4.4): services that call other contexts on their
//! own behalf get a short-lived token for one audience (a context).
//!
//! Clients and the SHA-256 of their secrets come from configuration. A client secret is a
//! machine-generated random string (32 bytes or more), so a fast hash is as safe as a slow
//! one and costs an attacker's guesses nothing we have to pay for.

use std::sync::Arc;

use sha2::{Digest, Sha256};

use super::ports::{IssuedAccessToken, ServiceTokenIssuer};

/// A service allowed to ask for tokens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceClient {
    pub id: String,
    /// SHA-256 of the secret.
    pub secret_sha256: [u8; 32],
    /// The contexts it may ask a token for.
    pub audiences: Vec<String>,
}

impl ServiceClient {
    /// A client whose secret is `secret` (for clients a process creates for itself).
    pub fn with_secret(id: &str, secret: &str, audiences: Vec<String>) -> Self {
        Self {
            id: id.to_owned(),
            secret_sha256: Sha256::digest(secret.as_bytes()).into(),
            audiences,
        }
    }

    fn secret_matches(&self, secret: &str) -> bool {
        let presented: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        // Constant time over the digests.
        presented
            .iter()
            .zip(self.secret_sha256.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0
    }
}

/// Why no token was issued, in RFC 6749 §5.2 terms.
#[derive(Debug)]
pub(crate) enum ClientCredentialsError {
    /// Unknown client or wrong secret (never which of the two).
    InvalidClient,
    /// The client may not ask for this audience, or it names no context.
    InvalidTarget(String),
    /// The audience is missing and the client has more than one.
    AudienceRequired,
    Unexpected(anyhow::Error),
}

pub(crate) struct ServiceTokens {
    pub(crate) clients: Vec<ServiceClient>,
    pub(crate) issuer: Arc<dyn ServiceTokenIssuer>,
}

impl ServiceTokens {
    /// A token for `client_id` to call `audience` (optional when the client has only one).
    pub(crate) fn issue(
        &self,
        client_id: &str,
        secret: &str,
        audience: Option<&str>,
    ) -> Result<IssuedAccessToken, ClientCredentialsError> {
        // Every configured client's digest is compared, so timing does not tell which
        // client ids exist.
        let mut found = None;
        for client in &self.clients {
            if client.secret_matches(secret) && client.id == client_id {
                found = Some(client);
            }
        }
        let client = found.ok_or(ClientCredentialsError::InvalidClient)?;
        let audience = match audience {
            Some(a) => a,
            None => match client.audiences.as_slice() {
                [only] => only.as_str(),
                _ => return Err(ClientCredentialsError::AudienceRequired),
            },
        };
        if !client.audiences.iter().any(|a| a == audience) {
            return Err(ClientCredentialsError::InvalidTarget(audience.to_owned()));
        }
        self.issuer
            .issue_service(&client.id, audience)
            .map_err(ClientCredentialsError::Unexpected)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Echo;
    impl ServiceTokenIssuer for Echo {
        fn issue_service(
            &self,
            service: &str,
            audience: &str,
        ) -> anyhow::Result<IssuedAccessToken> {
            Ok(IssuedAccessToken {
                token: format!("{service}->{audience}"),
                expires_in: 300,
            })
        }
    }

    fn tokens() -> ServiceTokens {
        ServiceTokens {
            clients: vec![
                ServiceClient::with_secret(
                    "gateway",
                    "s3cret-gateway",
                    vec!["ordering".into(), "shipping".into()],
                ),
                ServiceClient::with_secret("reports", "s3cret-reports", vec!["ordering".into()]),
            ],
            issuer: Arc::new(Echo),
        }
    }

    #[test]
    fn a_client_gets_a_token_for_an_audience_it_may_call() {
        let t = tokens();
        let issued = t
            .issue("gateway", "s3cret-gateway", Some("shipping"))
            .map_err(|e| format!("{e:?}"));
        assert_eq!(issued.map(|i| i.token), Ok("gateway->shipping".to_owned()));
        let issued = t
            .issue("reports", "s3cret-reports", None)
            .map_err(|e| format!("{e:?}"));
        assert_eq!(issued.map(|i| i.token), Ok("reports->ordering".to_owned()));
    }

    #[test]
    fn wrong_secrets_unknown_clients_and_other_audiences_are_refused() {
        let t = tokens();
        let err = |r: Result<IssuedAccessToken, ClientCredentialsError>| format!("{:?}", r.err());
        let invalid_client = format!("{:?}", Some(ClientCredentialsError::InvalidClient));
        assert_eq!(
            err(t.issue("gateway", "s3cret-reports", Some("ordering"))),
            invalid_client
        );
        assert_eq!(
            err(t.issue("nobody", "s3cret-gateway", Some("ordering"))),
            invalid_client
        );
        assert_eq!(
            err(t.issue("gateway", "", Some("ordering"))),
            invalid_client
        );
        assert_eq!(
            err(t.issue("reports", "s3cret-reports", Some("identity"))),
            format!(
                "{:?}",
                Some(ClientCredentialsError::InvalidTarget("identity".into()))
            )
        );
        assert_eq!(
            err(t.issue("gateway", "s3cret-gateway", None)),
            format!("{:?}", Some(ClientCredentialsError::AudienceRequired))
        );
    }
}
