-- Prices in other currencies than price_amount's: a JSON array of {amount, currency}.
alter table product add column other_prices text not null default '[]';
