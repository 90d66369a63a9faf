-- Partial refunds: an order may have many refunds, each its own payment row, and each says
-- why it was made (shown to the customer).
alter table payment add column reason text;
create index payment_refund_open on payment (kind, status, order_id);
