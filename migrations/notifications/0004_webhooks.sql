-- Outbound webhooks. An endpoint is a receiver an admin registered: its URL, the event types
-- it hears (a JSON array), its signing secret, and its health (the failure streak, the
-- circuit, why the server turned it off).
create table webhook_endpoint (
    endpoint_id text primary key,
    url text not null,
    description text not null,
    event_types text not null,
    secret text not null,
    enabled bigint not null,
    created_by text not null,
    created_at bigint not null,
    updated_at bigint not null,
    consecutive_failures bigint not null,
    failing_since bigint,
    circuit_open_until bigint,
    disabled_reason text
);

-- One event for one endpoint. `event_id` is the envelope's id (the `webhook-id` receivers
-- deduplicate on); an endpoint gets each event once however often the bus redelivers it.
-- A taken delivery's `next_attempt_at` is its lease.
create table webhook_delivery (
    delivery_id text primary key,
    endpoint_id text not null,
    event_id text not null,
    event_type text not null,
    body text not null,
    status text not null,
    attempts bigint not null,
    next_attempt_at bigint not null,
    window_start bigint not null,
    last_status bigint,
    last_error text,
    created_at bigint not null,
    updated_at bigint not null,
    delivered_at bigint,
    unique (endpoint_id, event_id)
);
create index webhook_delivery_due on webhook_delivery (status, next_attempt_at);
create index webhook_delivery_endpoint on webhook_delivery (endpoint_id, delivery_id);

-- Every try at a receiver, as the delivery's history shows it.
create table webhook_attempt (
    delivery_id text not null,
    attempt bigint not null,
    attempted_at bigint not null,
    status_code bigint,
    error text,
    duration_ms bigint not null,
    primary key (delivery_id, attempt)
);
