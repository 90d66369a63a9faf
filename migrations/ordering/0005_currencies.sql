-- Prices per currency: a product's prices in other currencies than its default one (a JSON
-- array of {amount, currency}), and the currency each cart is priced in (kept while the cart
-- holds items; the first line chooses it).
alter table product add column other_prices text not null default '[]';

create table cart_currency (
    customer_id text primary key,
    currency text not null,
    updated_at bigint not null
);

-- The price a product had when it was put in the cart, to show a change before checkout.
alter table cart_item add column added_price_amount bigint;
alter table cart_item add column added_price_currency text;
