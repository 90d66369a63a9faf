-- What the customer got back on an order: every confirmed refund so far (ordering's
-- `order_refunded` carries the running total), in the order's currency.
alter table order_history add column refunded_amount bigint;
