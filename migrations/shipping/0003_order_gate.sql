-- One row per order that shipping has heard of: creating a shipment and cancelling the order
-- both take this row's lock first, so on PostgreSQL they run one after the other and the
-- second sees what the first committed (a cancelled order never keeps a live shipment).
create table order_gate (
    order_id text primary key
);
