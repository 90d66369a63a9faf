-- Promotion codes. A code takes a percentage (percent_bps) or a fixed amount per currency
-- (promotion_amount, kind 'fixed') off the subtotal, above a minimum per currency (kind
-- 'minimum'), inside an optional window, within total and per-customer limits. `uses` counts
-- the orders it discounts now: checkout takes a use (never past max_uses), a cancelled order
-- gives it back.
create table promotion (
    code text primary key,
    percent_bps bigint check (percent_bps between 1 and 10000),
    starts_at bigint,
    ends_at bigint,
    max_uses bigint,
    max_uses_per_customer bigint,
    uses bigint not null default 0 check (uses >= 0),
    active bigint not null,
    created_at bigint not null,
    updated_at bigint not null
);

create table promotion_amount (
    code text not null references promotion (code),
    kind text not null,
    currency text not null,
    amount bigint not null check (amount >= 0),
    primary key (code, kind, currency)
);

-- Which order used which code: one row per discounted order that is not cancelled.
create table promotion_use (
    order_id text primary key,
    code text not null references promotion (code),
    customer_id text not null,
    used_at bigint not null
);
create index promotion_use_by_customer on promotion_use (code, customer_id);

-- The code a customer applied to their cart.
create table cart_promotion (
    customer_id text primary key,
    code text not null references promotion (code),
    applied_at bigint not null
);

alter table customer_order add column promotion_code text;
