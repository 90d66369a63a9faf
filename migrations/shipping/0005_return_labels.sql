-- A prepaid return label per approved return: the carrier and the tracking number the
-- customer sends the parcel back with.
create table return_label (
    return_id text primary key,
    order_id text not null,
    customer_id text not null,
    carrier text not null,
    tracking_number text not null unique,
    created_at bigint not null
);

create index return_label_order on return_label (order_id);
