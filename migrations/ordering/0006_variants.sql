-- Variants. Ordering's product rows are what is sold: one per variant, keyed by the
-- variant's id (a product without options is its own one variant, so its rows and the carts
-- and orders naming it are unchanged). variant_of names the product a variant belongs to;
-- null when the row is the product itself.
alter table product add column variant_of text;
create index product_variant_of on product (variant_of);

alter table order_line add column variant_of text;
