//! How the process calls a context's public API on a customer's or its own behalf (the
//! dashboard's parts, service tokens, the gateway's dead-letter view): one request, the
//! port that reaches an instance, and the customer's request it is made for.

use actix_web::web;
use platform::http::RequestContext;

use crate::config::ContextName;

/// One request to one context.
pub struct Call {
    pub method: reqwest::Method,
    pub path: String,
    pub bearer: Option<String>,
    /// A form-encoded body.
    pub form: Option<String>,
    pub request_id: String,
    pub traceparent: String,
    /// The `X-Forwarded-For` chain of the customer's request (a gateway sends it on, so the
    /// contexts limit the customer, not the gateway).
    pub forwarded_for: Option<String>,
}

impl Call {
    /// The request to `base` (an instance's address), with everything the call carries.
    pub fn request(&self, client: &reqwest::Client, base: &str) -> reqwest::RequestBuilder {
        let mut request = client
            .request(self.method.clone(), format!("{base}{}", self.path))
            .header(platform::http::REQUEST_ID.as_str(), &self.request_id)
            .header("traceparent", &self.traceparent);
        if let Some(chain) = &self.forwarded_for {
            request = request.header(platform::client_ip::FORWARDED_FOR, chain);
        }
        if let Some(token) = &self.bearer {
            request = request.bearer_auth(token);
        }
        if let Some(form) = &self.form {
            request = request
                .header("content-type", "application/x-www-form-urlencoded")
                .body(form.clone());
        }
        request
    }
}

/// Reaches an instance of a context: the gateway's balanced pools, or the monolith itself.
#[async_trait::async_trait]
pub trait Upstream: Send + Sync {
    /// The status and body of the answer.
    async fn call(&self, context: ContextName, call: Call) -> anyhow::Result<(u16, web::Bytes)>;
}

/// The customer's request, as the parts are fetched on its behalf.
pub struct Caller {
    pub request: RequestContext,
    pub forwarded_for: Option<String>,
}
