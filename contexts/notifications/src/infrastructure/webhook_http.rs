//! Webhooks over HTTP with reqwest, behind an address guard: every host name is resolved by
//! [`GuardedResolver`], which refuses a name when any address it resolves to is internal, and
//! the connection is made to the addresses it checked (a name that changes its answer
//! between the check at creation and a delivery, DNS rebinding, is caught at delivery).
//! Redirects are not followed and no proxy is used.

use std::error::Error as StdError;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::application::webhooks::WebhookTransport;
use crate::domain::webhook::{check_address, check_url, AttemptOutcome, TargetRefused};

/// How long one attempt may take, connection included.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct Refused(TargetRefused);

/// Resolves host names and refuses those that reach an internal address.
struct GuardedResolver {
    allow_private: bool,
}

async fn resolve_checked(
    host: &str,
    allow_private: bool,
) -> Result<Vec<SocketAddr>, TargetRefused> {
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, 0))
        .await
        .map_err(|_| TargetRefused::Unresolved(host.to_owned()))?
        .collect();
    if addrs.is_empty() {
        return Err(TargetRefused::Unresolved(host.to_owned()));
    }
    for addr in &addrs {
        check_address(addr.ip(), allow_private)?;
    }
    Ok(addrs)
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let allow_private = self.allow_private;
        Box::pin(async move {
            match resolve_checked(name.as_str(), allow_private).await {
                Ok(addrs) => Ok(Box::new(addrs.into_iter()) as Addrs),
                Err(refused) => Err(Box::new(Refused(refused)) as Box<dyn StdError + Send + Sync>),
            }
        })
    }
}

pub(crate) struct HttpWebhooks {
    client: reqwest::Client,
    allow_private: bool,
}

impl HttpWebhooks {
    pub(crate) fn new(allow_private: bool) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .dns_resolver(Arc::new(GuardedResolver { allow_private }))
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .timeout(ATTEMPT_TIMEOUT)
            .connect_timeout(CONNECT_TIMEOUT)
            .pool_max_idle_per_host(2)
            .user_agent(concat!("Emporium-Webhooks/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Self {
            client,
            allow_private,
        })
    }
}

/// Why a request got no answer, in words for the delivery's history.
fn unreached(e: &reqwest::Error) -> String {
    let mut source: Option<&(dyn StdError + 'static)> = Some(e);
    while let Some(s) = source {
        if let Some(refused) = s.downcast_ref::<Refused>() {
            return format!("refused: {refused}");
        }
        source = s.source();
    }
    if e.is_timeout() {
        format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())
    } else if e.is_connect() {
        "cannot connect to the receiver".to_owned()
    } else {
        "the request failed before an answer".to_owned()
    }
}

#[async_trait::async_trait]
impl WebhookTransport for HttpWebhooks {
    async fn vet(&self, url: &url::Url) -> Result<(), TargetRefused> {
        match url.host() {
            Some(url::Host::Domain(host)) => {
                resolve_checked(host, self.allow_private).await.map(|_| ())
            }
            // An IP literal was judged with the URL's shape.
            _ => Ok(()),
        }
    }

    async fn post(
        &self,
        url: &str,
        headers: &[(&'static str, String)],
        body: &str,
    ) -> AttemptOutcome {
        // An IP literal is not resolved, so the guard is applied here.
        if let Err(refused) = check_url(url, self.allow_private) {
            return AttemptOutcome::Unreached(format!("refused: {refused}"));
        }
        let mut request = self
            .client
            .post(url)
            .header("content-type", "application/json")
            .body(body.to_owned());
        for (name, value) in headers {
            request = request.header(*name, value);
        }
        match request.send().await {
            Ok(response) => {
                let status = response.status().as_u16();
                // The answer's body is not read: only its status counts.
                drop(response);
                if (200..300).contains(&status) {
                    AttemptOutcome::Accepted(status)
                } else {
                    AttemptOutcome::Rejected(status)
                }
            }
            Err(e) => AttemptOutcome::Unreached(unreached(&e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_unless_private_is_allowed() {
        assert!(matches!(
            resolve_checked("localhost", false).await,
            Err(TargetRefused::Internal(_))
        ));
        assert!(resolve_checked("localhost", true).await.is_ok());
        assert!(matches!(
            resolve_checked("no-such-host.invalid", true).await,
            Err(TargetRefused::Unresolved(_))
        ));
    }

    #[tokio::test]
    async fn a_delivery_to_a_name_on_an_internal_address_never_connects() {
        // A listener on loopback that would answer 200: the guard refuses before connecting.
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let port = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{e}"))
            .port();
        let http = HttpWebhooks::new(false).unwrap_or_else(|e| panic!("{e}"));
        let outcome = http
            .post(&format!("http://localhost:{port}/hook"), &[], "{}")
            .await;
        match outcome {
            AttemptOutcome::Unreached(why) => assert!(why.starts_with("refused:"), "{why}"),
            other => panic!("expected a refusal, got {other:?}"),
        }
        let literal = http
            .post(&format!("http://127.0.0.1:{port}/hook"), &[], "{}")
            .await;
        assert!(
            matches!(literal, AttemptOutcome::Unreached(ref why) if why.starts_with("refused:"))
        );
    }
}
