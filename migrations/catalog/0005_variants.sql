-- Options and variants. What is sold and stocked is a variant: one combination of a product's
-- option values with its own SKU, prices and weight. A product without options is its own
-- one variant (same id), so the stock rows, reservations and orders from before variants
-- keep naming what they named.

-- The options a product comes in: a JSON array of {name, values}.
alter table product add column options text not null default '[]';

-- The variants of products with options (a product without options has no rows here).
create table variant (
    variant_id text primary key,
    product_id text not null references product (product_id),
    position bigint not null,
    sku text not null unique,
    -- A JSON array of {name, value}, one per product option, in the product's option order.
    options text not null,
    price_amount bigint not null check (price_amount >= 0),
    currency text not null,
    other_prices text not null,
    weight_grams bigint not null check (weight_grams between 0 and 1000000),
    unique (product_id, position)
);

-- Every SKU in use, a product's own or a variant's: one SKU names one thing, whichever table
-- it is in (the unique key makes two writers claiming one SKU at once conflict).
create table sku (
    sku text primary key,
    product_id text not null
);

insert into sku (sku, product_id) select sku, product_id from product;

create index sku_product on sku (product_id);

-- Each variant's option values, lower-cased, for browsing by value.
create table variant_option (
    variant_id text not null references variant (variant_id),
    product_id text not null,
    name_key text not null,
    value_key text not null,
    primary key (variant_id, name_key)
);

create index variant_option_lookup on variant_option (name_key, value_key, product_id);

-- Stock is kept per variant (its product_id column holds the variant's id), so it can no
-- longer reference the product table.
create table variant_stock (
    product_id text primary key,
    on_hand bigint not null check (on_hand >= 0),
    reserved bigint not null check (reserved >= 0),
    updated_at bigint not null,
    check (reserved <= on_hand)
);

insert into variant_stock (product_id, on_hand, reserved, updated_at)
select product_id, on_hand, reserved, updated_at from stock;

drop table stock;

alter table variant_stock rename to stock;
