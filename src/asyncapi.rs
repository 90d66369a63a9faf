//! The event catalogue as AsyncAPI 3: every integration event of the `*-contracts` crates,
//! its channel (the event type), its producer, its consumers and the JSON Schema of its
//! payload. `emporium openapi` writes it to `openapi/asyncapi.json`; a test fails on drift.

use std::collections::BTreeMap;

use kernel::IntegrationEvent;
use serde_json::{json, Map, Value};
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

struct Entry {
    name: &'static str,
    version: u32,
    producer: &'static str,
    title: String,
    /// Consumer groups (`<context>.<purpose>`).
    consumers: &'static [&'static str],
    payload: RefOr<Schema>,
    components: Vec<(String, RefOr<Schema>)>,
}

fn entry<E: IntegrationEvent + ToSchema>(consumers: &'static [&'static str]) -> Entry {
    let mut components = Vec::new();
    E::schemas(&mut components);
    Entry {
        name: E::NAME,
        version: E::VERSION,
        producer: E::SOURCE,
        title: E::name().into_owned(),
        consumers,
        payload: <E as PartialSchema>::schema(),
        components,
    }
}

fn catalogue() -> Vec<Entry> {
    use catalog_contracts as c;
    use identity_contracts as i;
    use ordering_contracts as o;
    use shipping_contracts as s;
    vec![
        entry::<i::UserRegistered>(&[]),
        entry::<c::ProductCreated>(&["ordering.products", "catalog.cache (broadcast)"]),
        entry::<c::ProductUpdated>(&["ordering.products", "catalog.cache (broadcast)"]),
        entry::<c::ProductArchived>(&["ordering.products", "catalog.cache (broadcast)"]),
        entry::<c::StockReserved>(&["ordering.saga"]),
        entry::<c::StockRejected>(&["ordering.saga"]),
        entry::<c::StockReleased>(&["ordering.saga"]),
        entry::<o::OrderPlaced>(&["catalog.inventory", "identity.order_history"]),
        entry::<o::OrderPaid>(&[
            "shipping.shipments",
            "catalog.inventory",
            "identity.order_history",
        ]),
        entry::<o::OrderCancelled>(&[
            "catalog.inventory",
            "shipping.shipments",
            "identity.order_history",
        ]),
        entry::<o::OrderStatusChanged>(&["identity.order_history"]),
        entry::<s::ShipmentCreated>(&["ordering.saga", "identity.order_history"]),
        entry::<s::ShipmentDispatched>(&[
            "ordering.saga",
            "catalog.inventory",
            "identity.order_history",
        ]),
        entry::<s::ShipmentDelivered>(&["ordering.saga", "identity.order_history"]),
        entry::<s::ShipmentCancelled>(&["ordering.saga"]),
    ]
}

fn envelope_headers() -> Value {
    json!({
        "type": "object",
        "description": "Envelope fields around every payload.",
        "required": ["id", "type", "version", "occurred_at", "source", "correlation_id"],
        "properties": {
            "id": {"type": "string", "format": "uuid", "description": "UUIDv7; consumers deduplicate on it"},
            "type": {"type": "string", "description": "<context>.<event>"},
            "version": {"type": "integer", "minimum": 1},
            "occurred_at": {"type": "string", "format": "date-time"},
            "source": {"type": "string", "description": "producing context"},
            "correlation_id": {"type": "string", "description": "X-Request-Id of the request that started the chain"},
            "causation_id": {"type": ["string", "null"], "description": "id of the event that caused this one"},
            "traceparent": {"type": ["string", "null"], "description": "W3C trace context"}
        }
    })
}

pub fn document() -> anyhow::Result<Value> {
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    let mut schemas: BTreeMap<String, Value> = BTreeMap::new();
    for e in catalogue() {
        let message_id = format!("{}.v{}", e.name, e.version);
        let channel_id = e.name.to_owned();
        messages.insert(
            message_id.clone(),
            json!({
                "name": e.name,
                "title": e.title,
                "contentType": "application/json",
                "headers": {"$ref": "#/components/schemas/Envelope"},
                "payload": serde_json::to_value(&e.payload)?,
                "x-version": e.version,
            }),
        );
        channels.insert(
            channel_id.clone(),
            json!({
                "address": e.name,
                "description": format!("Published by {} through its outbox.", e.producer),
                "messages": {e.title.clone(): {"$ref": format!("#/components/messages/{message_id}")}},
            }),
        );
        operations.insert(
            format!("{}.publish", e.name),
            json!({
                "action": "send",
                "channel": {"$ref": format!("#/channels/{channel_id}")},
                "summary": format!("{} publishes {}", e.producer, e.name),
                "x-producer": e.producer,
            }),
        );
        for group in e.consumers {
            let group_name = group.split(' ').next().unwrap_or(group);
            operations.insert(
                format!("{}.receive.{}", e.name, group_name),
                json!({
                    "action": "receive",
                    "channel": {"$ref": format!("#/channels/{channel_id}")},
                    "summary": format!("consumer group {group}"),
                    "x-consumer-group": group,
                }),
            );
        }
        for (name, schema) in e.components {
            schemas.insert(name, serde_json::to_value(&schema)?);
        }
    }
    schemas.insert("Envelope".to_owned(), envelope_headers());
    // utoipa writes OpenAPI references; AsyncAPI uses the same JSON Schema under components.
    let text = serde_json::to_string(&json!({
        "asyncapi": "3.0.0",
        "info": {
            "title": "Emporium integration events",
            "version": "1.0.0",
            "description": "Events the bounded contexts exchange over the bus (at-least-once; consumers deduplicate by envelope id).",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }))?;
    Ok(serde_json::from_str(&text)?)
}

pub fn to_json() -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(&document()?)?;
    text.push('\n');
    Ok(text)
}

/// The consumer groups of an event type, as the catalogue lists them (broadcast groups are
/// marked `(broadcast)`: every running instance of the group receives the event).
pub fn consumers_of(event_type: &str) -> Vec<&'static str> {
    catalogue()
        .into_iter()
        .filter(|e| e.name == event_type)
        .flat_map(|e| e.consumers.iter().copied())
        .collect()
}

/// The group whose queue parks events no context consumes yet.
pub const UNCONSUMED: &str = "unconsumed";
/// Its queue keeps the newest this many events and drops the oldest.
pub const UNCONSUMED_CAP: u32 = 100_000;

/// Competing consumer groups and the event types each consumes, from the catalogue. A broker
/// declares these queues up front, so an event published before its consumer first starts
/// waits for it. Events nobody consumes yet go to the `unconsumed` group's queue.
pub fn topology() -> Vec<(String, Vec<String>)> {
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for e in catalogue() {
        let competing: Vec<&str> = e
            .consumers
            .iter()
            .filter(|g| !g.contains("broadcast"))
            .copied()
            .collect();
        if competing.is_empty() && e.consumers.is_empty() {
            groups
                .entry(UNCONSUMED.to_owned())
                .or_default()
                .push(e.name.to_owned());
        }
        for group in competing {
            groups
                .entry(group.to_owned())
                .or_default()
                .push(e.name.to_owned());
        }
    }
    groups.into_iter().collect()
}
