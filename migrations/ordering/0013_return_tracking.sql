-- The return label's tracking number, once shipping has made one.
alter table order_return add column tracking_number text;
