-- Orders placed as a guest (ordering's guest_checked_out), by the email address given. Once
-- an account proves that address, the orders join its history: at the proof, or when the
-- order is heard of later.
create table guest_order (
    order_id text primary key,
    guest_id text not null,
    email text not null
);

create index guest_order_email on guest_order (email);
