-- Messaging tables every context keeps in its own database: the outbox its use cases write
-- to, the inbox its handlers dedupe with, and the dead letters of its consumer groups.
-- The canonical copy lives in crates/bus/sql/messaging.sql; each context's
-- migrations/<context>/0001_messaging.sql must stay identical (a test checks).

create table outbox (
    outbox_id text primary key,
    event_type text not null,
    envelope text not null,
    created_at bigint not null,
    published_at bigint,
    claimed_by text,
    claimed_until bigint,
    attempts bigint not null default 0,
    last_error text
);

create index outbox_unsent on outbox (created_at, outbox_id) where published_at is null;

create table inbox (
    consumer_group text not null,
    envelope_id text not null,
    event_type text not null,
    processed_at bigint not null,
    primary key (consumer_group, envelope_id)
);

create table dead_letter (
    dead_letter_id text primary key,
    consumer_group text not null,
    envelope_id text not null,
    event_type text not null,
    envelope text not null,
    error text not null,
    attempts bigint not null,
    failed_at bigint not null,
    replayed_at bigint
);
