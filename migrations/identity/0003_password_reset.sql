-- Password reset tokens, stored only as their SHA-256 (base64url). A token is spent by
-- deleting its row; asking again deletes the account's earlier ones.
create table password_reset (
    token_hash text primary key,
    user_id text not null references user_account (user_id),
    expires_at bigint not null,
    created_at bigint not null
);

create index password_reset_user on password_reset (user_id);
