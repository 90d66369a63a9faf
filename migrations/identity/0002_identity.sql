create table user_account (
    user_id text primary key,
    email text not null unique,
    name text not null,
    password_hash text not null,
    roles text not null,
    default_shipping_address text,
    created_at bigint not null,
    updated_at bigint not null
);

create table refresh_token (
    token_hash text primary key,
    family_id text not null,
    user_id text not null references user_account (user_id),
    issued_at bigint not null,
    expires_at bigint not null,
    used_at bigint,
    revoked_at bigint
);

create index refresh_token_family on refresh_token (family_id);

-- Public keys that signed access tokens; retired keys stay published until their tokens expire.
create table signing_key (
    kid text primary key,
    public_jwk text not null,
    created_at bigint not null,
    retired_at bigint
);

-- The customer's order history, fed by ordering and shipping events. A row may exist before
-- the event that carries the order's total (events arrive in any order); such rows are not shown.
create table order_history (
    order_id text primary key,
    customer_id text not null,
    status text not null,
    status_rank bigint not null,
    total_amount bigint,
    currency text,
    placed_at bigint,
    cancellation_reason text,
    tracking_number text,
    updated_at bigint not null
);

create index order_history_customer on order_history (customer_id, placed_at, order_id);
