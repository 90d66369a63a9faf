-- What ordering knows of identity's customers, from identity's events: whether their email
-- address is verified (EMPORIUM_REQUIRE_VERIFIED_EMAIL gates checkout on it), and their
-- address book (checkout takes `shipping_address_id`). Each is replaced only by news at
-- least as new as what is kept: the verification's time, the book's revision.
create table customer (
    customer_id text primary key,
    email text,
    email_verified_at bigint,
    address_revision bigint not null default 0,
    updated_at bigint not null
);

create table customer_address (
    customer_id text not null,
    address_id text not null,
    address text not null,
    is_default bigint not null,
    primary key (customer_id, address_id)
);
