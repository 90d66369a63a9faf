-- The parcel's weight and what the customer paid for shipping (from the paid order).
alter table shipment add column weight_grams bigint not null default 0;
alter table shipment add column charge_amount bigint;
alter table shipment add column charge_currency text;
