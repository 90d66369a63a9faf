-- A customer's address book (at most 20 addresses, at most one the default). The revision
-- counts the book's changes; each change publishes the whole book with it.
create table saved_address (
    address_id text primary key,
    user_id text not null references user_account (user_id),
    address text not null,
    is_default bigint not null,
    created_at bigint not null
);

create index saved_address_user on saved_address (user_id, created_at);

alter table user_account add column address_book_revision bigint not null default 0;
