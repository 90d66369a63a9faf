-- Products as ordering knows them, fed by catalog events (newest revision wins).
create table product (
    product_id text primary key,
    sku text not null,
    name text not null,
    price_amount bigint not null,
    currency text not null,
    status text not null,
    revision bigint not null,
    updated_at bigint not null
);

create table cart_item (
    customer_id text not null,
    product_id text not null,
    quantity bigint not null check (quantity between 1 and 99),
    added_at bigint not null,
    updated_at bigint not null,
    primary key (customer_id, product_id)
);

create table customer_order (
    order_id text primary key,
    customer_id text not null,
    status text not null,
    cancellation_reason text,
    total_amount bigint not null,
    currency text not null,
    shipping_address text not null,
    payment_token text not null,
    idempotency_key text,
    request_hash text,
    shipment_id text,
    tracking_number text,
    placed_at bigint not null,
    updated_at bigint not null,
    -- When the saga next looks at this order if nothing happened (a timeout per waiting state).
    deadline_at bigint,
    version bigint not null
);

create unique index customer_order_idempotency on customer_order (customer_id, idempotency_key) where idempotency_key is not null;
create index customer_order_customer on customer_order (customer_id, order_id);
create index customer_order_deadline on customer_order (status, deadline_at);

create table order_line (
    order_id text not null references customer_order (order_id),
    product_id text not null,
    sku text not null,
    name text not null,
    quantity bigint not null check (quantity > 0),
    unit_price_amount bigint not null,
    currency text not null,
    primary key (order_id, product_id)
);

create table order_status_history (
    order_id text not null references customer_order (order_id),
    seq bigint not null,
    status text not null,
    reason text,
    note text,
    occurred_at bigint not null,
    primary key (order_id, seq)
);

-- Charges and refunds. The gateway idempotency key is unique: one charge per order and
-- attempt, one refund per order, whatever the redeliveries.
create table payment (
    payment_id text primary key,
    order_id text not null references customer_order (order_id),
    kind text not null,
    status text not null,
    amount bigint not null,
    currency text not null,
    idempotency_key text not null unique,
    gateway_reference text,
    attempts bigint not null,
    last_error text,
    created_at bigint not null,
    updated_at bigint not null
);

create index payment_order on payment (order_id);
create index payment_open on payment (status, updated_at);

-- The simulated gateway's own ledger (it stands for an external system that remembers the
-- idempotency keys it has seen).
create table simulated_gateway_operation (
    idempotency_key text primary key,
    operation text not null,
    outcome text not null,
    reference text,
    amount bigint not null,
    created_at bigint not null
);
