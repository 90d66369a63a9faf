-- What shipping and taxes need of a product: the weight of one unit and its tax class.
alter table product add column weight_grams bigint not null default 0 check (weight_grams between 0 and 1000000);
alter table product add column tax_class text not null default 'standard';
