//! The document's `webhooks` section (OpenAPI 3.1): what a receiver registered at
//! `/api/v1/webhooks/endpoints` is sent, one entry per event type it can hear.

use serde_json::{json, Value};

/// Adds the `webhooks` section and the schema of what every delivery carries.
pub(super) fn describe(doc: &mut Value) {
    doc["components"]["schemas"]["WebhookEvent"] = json!({
        "type": "object",
        "description": "The body of every webhook delivery: an integration event's envelope, with its payload as `data`. Each attempt sends the same bytes.",
        "required": ["id", "type", "version", "timestamp", "source", "correlation_id", "data"],
        "properties": {
            "id": {"type": "string", "format": "uuid", "description": "The event's id, also the `webhook-id` header: take each event once by it"},
            "type": {"type": "string", "description": "`<context>.<event>`, e.g. `ordering.order_paid`"},
            "version": {"type": "integer", "minimum": 1, "description": "The payload's version"},
            "timestamp": {"type": "string", "format": "date-time", "description": "When the event happened"},
            "source": {"type": "string", "description": "The context that published it"},
            "correlation_id": {"type": "string", "description": "The request (or root event) that started the chain"},
            "data": {"type": "object", "description": "The event's payload, as the event catalogue (`/asyncapi.json`) describes it for this type and version"}
        }
    });
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
                "tags": ["webhooks"],
                "summary": format!("{event_type}, to each endpoint that hears it"),
                "description": "Sent at least once; retried with exponential backoff and jitter over EMPORIUM_WEBHOOK_RETRY_HOURS (default 24) until a 2xx; redirects are not followed.",
                "security": [],
                "parameters": parameters.clone(),
                "requestBody": {
                    "required": true,
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookEvent"}}}
                },
                "responses": {
                    "2XX": {"description": "Taken: the delivery is done"},
                    "default": {"description": "Anything else (or no answer within 10 s): tried again later"}
                }
            }}),
        );
    }
    doc["webhooks"] = Value::Object(hooks);
}
