-- Returns: units of a shipped or delivered order sent back, approved or rejected by an admin,
-- received (restocked or written off per line) and refunded through their own refund payment.
create table order_return (
    return_id text primary key,
    order_id text not null references customer_order (order_id),
    status text not null,
    reason text not null,
    -- 1: shipping is refunded with this return (asked at approval; decided at receipt).
    refund_shipping bigint not null,
    refund_amount bigint,
    refund_id text,
    note text,
    created_at bigint not null,
    updated_at bigint not null
);

create index order_return_order on order_return (order_id, created_at);

create table order_return_line (
    return_id text not null references order_return (return_id),
    seq bigint not null,
    product_id text not null,
    quantity bigint not null,
    -- 1: back on sale when received; 0: written off.
    restock bigint not null,
    primary key (return_id, seq)
);
