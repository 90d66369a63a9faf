-- What the payment provider says of a payment (Stripe's webhooks): each event once, by its
-- id, and the charge's state as the provider last told it (`provider_status`: succeeded,
-- failed, canceled, refunded, partially_refunded, disputed).
create table provider_event (
    event_id text primary key,
    provider text not null,
    event_type text not null,
    payment_reference text,
    received_at bigint not null
);

alter table payment add column provider_status text;
