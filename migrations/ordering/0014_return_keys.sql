-- The Idempotency-Key a return was asked for with: the same key on the same order opens one.
alter table order_return add column client_key text;
