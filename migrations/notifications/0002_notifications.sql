-- What notifications knows of customers: a projection of identity's events.
create table customer (
    customer_id text primary key,
    email text not null,
    name text not null,
    -- When identity said so (registration or last profile change): an older event never
    -- overwrites a newer one.
    as_of bigint not null
);

-- A customer's choices. Order confirmations and cancellations are always sent.
create table preference (
    customer_id text primary key,
    shipment_updates bigint not null,
    updated_at bigint not null
);

-- What an order confirmation lists, from ordering's order_placed.
create table order_summary (
    order_id text primary key,
    customer_id text not null,
    lines text not null,
    total_amount bigint not null,
    currency text not null
);

-- The carrier of each shipment, from shipping's shipment_created.
create table shipment_summary (
    shipment_id text primary key,
    order_id text not null,
    carrier text not null,
    tracking_number text not null
);

-- One row per message: queued until sent, failed when it cannot be. `dedup_key` names the
-- fact and the kind of message (one confirmation per order, one welcome per customer), so a
-- redelivered or re-announced event queues nothing twice.
create table delivery (
    delivery_id text primary key,
    dedup_key text not null unique,
    customer_id text not null,
    kind text not null,
    data text not null,
    status text not null,
    attempts bigint not null,
    next_attempt_at bigint not null,
    last_error text,
    recipient text,
    subject text,
    body_text text,
    created_at bigint not null,
    updated_at bigint not null,
    sent_at bigint
);

create index delivery_due on delivery (next_attempt_at) where status = 'queued';
create index delivery_customer on delivery (customer_id, delivery_id);
create index delivery_status on delivery (status, delivery_id);
