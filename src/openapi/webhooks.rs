//! The document's `webhooks` section (OpenAPI 3.1): what a receiver registered at
//! `/api/v1/webhooks/endpoints` is sent, one entry per event type it can hear.

use serde_json::{json, Value};

/// Adds the `webhooks` section; what every delivery carries is the `WebhookEvent` schema
/// (notifications' fragment, where a delivery's detail shows it too).
pub(super) fn describe(doc: &mut Value) {
    let header = |name: &str, description: &str| json!({"name": name, "in": "header", "required": true, "description": description, "schema": {"type": "string"}});
    let parameters = json!([
        header("webhook-id", "The event's id; the same on every attempt"),
        header("webhook-timestamp", "Unix seconds when this attempt was signed; refuse one far from your clock (a replay)"),
        header("webhook-signature", "`v1,<base64>`: HMAC-SHA256 with the endpoint's secret (the base64 after `whsec_`) over `{webhook-id}.{webhook-timestamp}.{body}` (Standard Webhooks); compare in constant time"),
    ]);
    let mut hooks = serde_json::Map::new();
    for event_type in notifications::webhook_event_types() {
        hooks.insert(
            event_type.to_owned(),
            json!({"post": {
                "operationId": format!("webhook_{}", event_type.replace('.', "_")),
                "tags": ["webhook events"],
                "summary": format!("{event_type}, to each endpoint that hears it"),
                "description": "Sent at least once; retried with exponential backoff and jitter over EMPORIUM_WEBHOOK_RETRY_HOURS (default 24) until a 2xx; redirects are not followed.",
                "security": [],
                "parameters": parameters.clone(),
                "requestBody": {
                    "required": true,
                    // Free-form here, described by name: openapi-generator (7.26) writes no
                    // import for a model a webhook references, and its client fails to compile.
                    "content": {"application/json": {"schema": {
                        "type": "object",
                        "description": "A WebhookEvent (#/components/schemas/WebhookEvent): id, type, version, timestamp, source, correlation_id, and the payload as data"
                    }}}
                },
                "responses": {
                    "2XX": {"description": "Taken: the delivery is done"},
                    "default": {"description": "Anything else (or no answer within 10 s): tried again later"}
                }
            }}),
        );
    }
    doc["webhooks"] = Value::Object(hooks);
    if let Some(tags) = doc["tags"].as_array_mut() {
        tags.push(json!({"name": "webhook events", "description": "What a registered receiver is sent (a tag of its own, so generated clients keep the webhooks admin API whole)"}));
    }
}
