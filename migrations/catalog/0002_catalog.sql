create table category (
    category_id text primary key,
    name text not null,
    slug text not null unique,
    parent_id text references category (category_id),
    created_at bigint not null
);

create table product (
    product_id text primary key,
    sku text not null unique,
    name text not null,
    description text,
    price_amount bigint not null check (price_amount >= 0),
    currency text not null,
    category_id text references category (category_id),
    status text not null,
    revision bigint not null,
    search_text text not null,
    created_at bigint not null,
    updated_at bigint not null
);

create index product_category on product (category_id);
create index product_by_price on product (status, price_amount, product_id);
create index product_by_name on product (status, name, product_id);
create index product_by_age on product (status, created_at, product_id);

-- Stock per product. Reservations hold units; available = on_hand - reserved, never negative.
create table stock (
    product_id text primary key references product (product_id),
    on_hand bigint not null check (on_hand >= 0),
    reserved bigint not null check (reserved >= 0),
    updated_at bigint not null,
    check (reserved <= on_hand)
);

-- One reservation per order: held (may expire), paid (kept until dispatch), released,
-- expired, committed (stock left with the shipment) or rejected (nothing was held).
create table reservation (
    order_id text primary key,
    status text not null,
    expires_at bigint,
    created_at bigint not null,
    updated_at bigint not null
);

create index reservation_expiry on reservation (status, expires_at);

create table reservation_line (
    order_id text not null references reservation (order_id),
    product_id text not null,
    quantity bigint not null check (quantity > 0),
    primary key (order_id, product_id)
);
