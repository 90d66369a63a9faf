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
    payload: RefOr<Schema>,
    components: Vec<(String, RefOr<Schema>)>,
}

fn entry<E: IntegrationEvent + ToSchema>() -> Entry {
    let mut components = Vec::new();
    E::schemas(&mut components);
    Entry {
        name: E::NAME,
        version: E::VERSION,
        producer: E::SOURCE,
        title: E::name().into_owned(),
        payload: <E as PartialSchema>::schema(),
        components,
    }
}

/// Every event the contexts publish, as each `*-contracts` crate lists its own.
fn catalogue() -> Vec<Entry> {
    let mut entries = Vec::new();
    macro_rules! add {
        ($event:path) => {
            entries.push(entry::<$event>())
        };
    }
    identity_contracts::for_each_event!(add);
    catalog_contracts::for_each_event!(add);
    ordering_contracts::for_each_event!(add);
    shipping_contracts::for_each_event!(add);
    notifications_contracts::for_each_event!(add);
    entries
}

/// Every consumer group of every context, as each declares it (`bus::Consumer`): the same
/// declarations the contexts subscribe with.
pub fn consumers() -> Vec<bus::Declaration> {
    [
        identity::consumers(),
        catalog::consumers(),
        ordering::consumers(),
        shipping::consumers(),
        notifications::consumers(),
    ]
    .concat()
}

/// Events published for consumers outside these contexts, which none of them consumes.
/// (None today: the webhooks group hears every public event, `notifications.delivery_failed`
/// included.)
pub const FOR_OUTSIDE_CONSUMERS: &[&str] = &[];

fn delivery(mode: bus::DeliveryMode) -> &'static str {
    match mode {
        bus::DeliveryMode::Competing => "competing",
        bus::DeliveryMode::Broadcast => "broadcast",
    }
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
    let declarations = consumers();
    for e in catalogue() {
        let message_id = format!("{}.v{}", e.name, e.version);
        let channel_id = e.name.to_owned();
        // The payload is a named schema, so generators make one type per event.
        let payload_name = format!("{}V{}", e.title, e.version);
        schemas.insert(payload_name.clone(), serde_json::to_value(&e.payload)?);
        messages.insert(
            message_id.clone(),
            json!({
                "name": e.name,
                "title": e.title,
                "contentType": "application/json",
                "headers": {"$ref": "#/components/schemas/Envelope"},
                "payload": {"$ref": format!("#/components/schemas/{payload_name}")},
                "x-version": e.version,
            }),
        );
        channels.insert(
            channel_id.clone(),
            json!({
                "address": e.name,
                "description": format!("Published by {} through its outbox.", e.producer),
                "messages": {e.title.clone(): {"$ref": format!("#/components/messages/{message_id}")}},
                "bindings": {
                    // RabbitMQ: the event type is the routing key on the one topic exchange.
                    "amqp": {
                        "is": "routingKey",
                        "exchange": {"name": "{namespace}.events", "type": "topic", "durable": true, "autoDelete": false, "vhost": "/"},
                        "bindingVersion": "0.3.0"
                    },
                    // SNS: one topic; subscriptions filter on the `type` message attribute.
                    "sns": {
                        "name": "{namespace}-events",
                        "bindingVersion": "0.1.0"
                    }
                },
            }),
        );
        operations.insert(
            format!("{}.publish", e.name),
            json!({
                "action": "send",
                "channel": {"$ref": format!("#/channels/{channel_id}")},
                "summary": format!("{} publishes {}", e.producer, e.name),
                "x-producer": e.producer,
                "bindings": {
                    "amqp": {"deliveryMode": 2, "mandatory": false, "bindingVersion": "0.3.0"}
                },
            }),
        );
        for consumer in declarations.iter().filter(|d| d.consumes(e.name)) {
            let mode = delivery(consumer.mode);
            operations.insert(
                format!("{}.receive.{}", e.name, consumer.group),
                json!({
                    "action": "receive",
                    "channel": {"$ref": format!("#/channels/{channel_id}")},
                    "summary": format!("consumer group {} ({mode})", consumer.group),
                    "x-consumer-group": consumer.group,
                    "x-delivery": mode,
                    "bindings": receive_bindings(consumer.group, consumer.mode),
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
        "servers": servers(),
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages, "schemas": schemas},
    }))?;
    Ok(serde_json::from_str(&text)?)
}

/// The brokers the bus runs on (`EMPORIUM_BUS`); names carry the deployment's namespace.
fn servers() -> Value {
    let namespace = json!({
        "default": "emporium",
        "description": "EMPORIUM_AMQP_NAMESPACE or EMPORIUM_SQS_NAMESPACE: the prefix of every exchange, topic and queue"
    });
    json!({
        "rabbitmq": {
            "host": "{host}",
            "protocol": "amqp",
            "protocolVersion": "0.9.1",
            "description": "EMPORIUM_BUS=rabbitmq, at EMPORIUM_AMQP_URL: a durable topic exchange `{namespace}.events`, a durable queue per consumer group (`{namespace}.{group}`; broadcast groups one per instance), publisher confirms, manual acknowledgements and the dead-letter exchange `{namespace}.dead-letter`.",
            "variables": {
                "host": {"default": "127.0.0.1:5672", "description": "The broker, as in EMPORIUM_AMQP_URL"},
                "namespace": namespace.clone()
            }
        },
        "sns-sqs": {
            "host": "{region}",
            "protocol": "sns",
            "description": "EMPORIUM_BUS=sqs (cargo feature `sqs`), in EMPORIUM_SQS_REGION: one SNS topic `{namespace}-events` fanned out to an SQS queue per consumer group (`{namespace}-{group}`) with a filter policy on `type` and a redrive policy to `{namespace}-dead-letter`.",
            "variables": {
                "region": {"default": "eu-central-1", "description": "The AWS region (EMPORIUM_SQS_REGION), or EMPORIUM_SQS_ENDPOINT"},
                "namespace": namespace
            }
        }
    })
}

/// Where a consumer group receives from, on each broker.
fn receive_bindings(group: &str, mode: bus::DeliveryMode) -> Value {
    let (amqp_queue, sqs_queue) = match mode {
        bus::DeliveryMode::Competing => (
            format!("{{namespace}}.{group}"),
            format!("{{namespace}}-{group}"),
        ),
        bus::DeliveryMode::Broadcast => (
            format!("{{namespace}}.{group}.{{instance}}"),
            format!("{{namespace}}-{group}-{{instance}}"),
        ),
    };
    json!({
        "amqp": {"ack": true, "bindingVersion": "0.3.0", "x-queue": amqp_queue},
        "sqs": {
            "queues": [{
                "name": sqs_queue,
                "redrivePolicy": {"deadLetterQueue": {"name": "{namespace}-dead-letter"}}
            }],
            "bindingVersion": "0.2.0"
        }
    })
}

pub fn to_json() -> anyhow::Result<String> {
    let mut text = serde_json::to_string_pretty(&document()?)?;
    text.push('\n');
    Ok(text)
}

/// The consumer groups of an event type, competing and broadcast.
pub fn consumers_of(event_type: &str) -> Vec<&'static str> {
    consumers()
        .into_iter()
        .filter(|d| d.consumes(event_type))
        .map(|d| d.group)
        .collect()
}

/// The group whose queue parks events no context consumes yet.
pub const UNCONSUMED: &str = "unconsumed";
/// Its queue keeps the newest this many events and drops the oldest.
pub const UNCONSUMED_CAP: u32 = 100_000;

/// Competing consumer groups and the event types each consumes, from the contexts'
/// declarations. A broker declares these queues up front, so an event published before its
/// consumer first starts waits for it. Events nobody consumes yet go to the `unconsumed`
/// group's queue. Broadcast groups get a queue per running instance when it subscribes.
pub fn topology() -> Vec<(String, Vec<String>)> {
    let declarations = consumers();
    let mut groups: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for d in declarations
        .iter()
        .filter(|d| d.mode == bus::DeliveryMode::Competing)
    {
        groups
            .entry(d.group.to_owned())
            .or_default()
            .extend(d.events.iter().map(|e| e.name.to_owned()));
    }
    for e in catalogue() {
        if !declarations.iter().any(|d| d.consumes(e.name)) {
            groups
                .entry(UNCONSUMED.to_owned())
                .or_default()
                .push(e.name.to_owned());
        }
    }
    groups.into_iter().collect()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// The catalogue check: what is consumed is published (same version, same producer), and
    /// what is published is consumed unless it is declared as being for outside consumers.
    #[test]
    fn every_consumed_type_is_published_and_every_published_type_consumed() {
        let published: Vec<(&str, u32, &str)> = catalogue()
            .iter()
            .map(|e| (e.name, e.version, e.producer))
            .collect();
        let declarations = consumers();
        for d in &declarations {
            for e in &d.events {
                assert!(
                    published.contains(&(e.name, e.version, e.source)),
                    "{} consumes {} v{}, which no contracts crate publishes",
                    d.group,
                    e.name,
                    e.version
                );
            }
        }
        for (name, _, _) in &published {
            let consumed = declarations.iter().any(|d| d.consumes(name));
            let outside = FOR_OUTSIDE_CONSUMERS.contains(name);
            assert!(
                consumed != outside,
                "{name}: {}",
                if outside {
                    "listed for outside consumers but consumed here; take it off the list"
                } else {
                    "published but no consumer group declares it"
                }
            );
        }
    }

    /// The event types a contracts crate's source declares: each `event!(Type, ...)` line
    /// and each hand-written `impl IntegrationEvent for Type`.
    fn declared_in(source: &str) -> BTreeSet<String> {
        source
            .lines()
            .filter_map(|l| {
                let l = l.trim();
                l.strip_prefix("event!(")
                    .and_then(|rest| rest.split(',').next())
                    .or_else(|| {
                        l.strip_prefix("impl IntegrationEvent for ")
                            .and_then(|rest| rest.split_whitespace().next())
                    })
                    // The `event!` macro's own `impl ... for $ty` is not a declaration.
                    .filter(|name| !name.starts_with('$'))
                    .map(str::to_owned)
            })
            .collect()
    }

    /// Every event type a contracts crate declares is in its `for_each_event!` list, so none
    /// is left out of the catalogue (and the broker topology) by omission.
    #[test]
    fn every_declared_event_is_in_the_catalogue() {
        let sources = [
            include_str!("../contexts/identity/contracts/src/lib.rs"),
            include_str!("../contexts/catalog/contracts/src/lib.rs"),
            include_str!("../contexts/ordering/contracts/src/lib.rs"),
            include_str!("../contexts/shipping/contracts/src/lib.rs"),
            include_str!("../contexts/notifications/contracts/src/lib.rs"),
        ];
        let declared: BTreeSet<String> = sources.iter().flat_map(|s| declared_in(s)).collect();
        let listed: BTreeSet<String> = catalogue().iter().map(|e| e.title.clone()).collect();
        assert_eq!(declared, listed);
    }

    #[test]
    fn the_declaration_scan_finds_both_forms() {
        let source = "event!(ProductCreated, \"catalog.product_created\");\nimpl IntegrationEvent for UserRegistered {\n        impl IntegrationEvent for $ty {\n// event!(Commented, \"x\")\n";
        let found: Vec<String> = declared_in(source).into_iter().collect();
        assert_eq!(found, vec!["ProductCreated", "UserRegistered"]);
    }

    #[test]
    fn groups_and_event_types_are_unique() {
        let declarations = consumers();
        let groups: BTreeSet<&str> = declarations.iter().map(|d| d.group).collect();
        assert_eq!(groups.len(), declarations.len(), "a group declared twice");
        let names: BTreeSet<&str> = catalogue().iter().map(|e| e.name).collect();
        assert_eq!(names.len(), catalogue().len(), "an event listed twice");
        for d in &declarations {
            let mine: BTreeSet<&str> = d.events.iter().map(|e| e.name).collect();
            assert_eq!(
                mine.len(),
                d.events.len(),
                "{} declares a type twice",
                d.group
            );
        }
    }

    #[test]
    fn the_broker_topology_is_the_competing_declarations() {
        let topology = topology();
        let competing: Vec<_> = consumers()
            .into_iter()
            .filter(|d| d.mode == bus::DeliveryMode::Competing)
            .collect();
        for d in &competing {
            let (_, types) = topology.iter().find(|(g, _)| g == d.group).unwrap();
            let declared: Vec<String> = d.events.iter().map(|e| e.name.to_owned()).collect();
            assert_eq!(types, &declared, "{}", d.group);
        }
        // Broadcast groups are not pre-declared; unconsumed events are parked.
        assert!(!topology.iter().any(|(g, _)| g == catalog_cache_group()));
        let parked: Vec<&str> = topology
            .iter()
            .find(|(g, _)| g == UNCONSUMED)
            .map(|(_, parked)| parked.iter().map(String::as_str).collect())
            .unwrap_or_default();
        assert_eq!(parked, FOR_OUTSIDE_CONSUMERS);
    }

    fn catalog_cache_group() -> &'static str {
        consumers()
            .into_iter()
            .find(|d| d.mode == bus::DeliveryMode::Broadcast)
            .map(|d| d.group)
            .unwrap()
    }
}
