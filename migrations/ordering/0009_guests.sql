-- Guest checkout. A visitor's cart is opened with a cart token (a secret sent back as
-- X-Cart-Token); only its SHA-256 is kept. The cart's lines live in the cart tables under the
-- guest's id, like a customer's. Guest carts expire and are swept with their lines; the
-- orders stay, readable with their order token (again only its hash is kept).
create table guest_cart (
    token_hash text primary key,
    guest_id text not null unique,
    created_at bigint not null,
    expires_at bigint not null
);

create index guest_cart_expiry on guest_cart (expires_at);

create table guest_order (
    order_id text primary key,
    guest_id text not null,
    email text not null,
    token_hash text not null,
    placed_at bigint not null
);
