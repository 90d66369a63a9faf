-- The link a guest reads their order with (it carries the order token), from ordering's
-- guest_checked_out; the confirmation mail shows it.
create table guest_order_link (
    order_id text primary key,
    customer_id text not null,
    order_url text not null
);
