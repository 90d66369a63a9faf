create table shipment (
    shipment_id text primary key,
    order_id text not null unique,
    customer_id text not null,
    carrier text not null,
    tracking_number text not null unique,
    status text not null,
    shipping_address text not null,
    lines text not null,
    created_at bigint not null,
    updated_at bigint not null
);

create index shipment_customer on shipment (customer_id, shipment_id);

create table tracking_event (
    tracking_event_id text primary key,
    shipment_id text not null references shipment (shipment_id),
    event_type text not null,
    location text,
    occurred_at bigint not null,
    recorded_at bigint not null
);

create index tracking_event_shipment on tracking_event (shipment_id, occurred_at);

-- Orders cancelled before (or without) a shipment: a late payment event creates nothing.
create table cancelled_order (
    order_id text primary key,
    cancelled_at bigint not null
);
