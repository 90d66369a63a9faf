-- Shipping and taxes in the order total.

-- What pricing needs of a product (from catalog's snapshots).
alter table product add column weight_grams bigint not null default 0;
alter table product add column tax_class text not null default 'standard';

-- Tax rates per destination country, in basis points (1900 = 19 %); the zero class is 0 %.
create table tax_rate (
    country text primary key,
    standard_bps bigint not null check (standard_bps between 0 and 10000),
    reduced_bps bigint not null check (reduced_bps between 0 and 10000),
    updated_at bigint not null
);

-- Shipping per destination country and currency: flat, plus per started kilogram over the
-- included weight.
create table shipping_rate (
    country text not null,
    currency text not null,
    flat_amount bigint not null check (flat_amount >= 0),
    per_kg_amount bigint not null check (per_kg_amount >= 0),
    included_grams bigint not null check (included_grams >= 0),
    updated_at bigint not null,
    primary key (country, currency)
);

-- The order's breakdown: total = subtotal - discount + shipping + tax. Orders placed before
-- it were the sum of their lines.
alter table customer_order add column subtotal_amount bigint not null default 0;
alter table customer_order add column discount_amount bigint not null default 0;
alter table customer_order add column shipping_amount bigint not null default 0;
alter table customer_order add column tax_amount bigint not null default 0;
alter table customer_order add column weight_grams bigint not null default 0;
update customer_order set subtotal_amount = total_amount;

alter table order_line add column discount_amount bigint not null default 0;
alter table order_line add column tax_amount bigint not null default 0;
