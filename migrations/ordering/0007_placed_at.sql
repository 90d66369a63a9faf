-- The admin overview counts the orders placed since a moment, and the admin order list
-- filters by when orders were placed: both read a range of placed_at.
create index customer_order_placed on customer_order (placed_at);
