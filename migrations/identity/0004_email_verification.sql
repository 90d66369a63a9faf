-- When the account's address was last proved (null: never). An email change takes effect
-- only when the new address is proved, so a verified account's address always is.
alter table user_account add column email_verified_at bigint;

-- Email verification tokens, stored only as their SHA-256 (base64url), with the address they
-- prove: the account's own, or the one it asked to move to. Issuing one deletes the account's
-- earlier ones; confirming deletes it.
create table email_verification (
    token_hash text primary key,
    user_id text not null references user_account (user_id),
    email text not null,
    expires_at bigint not null,
    created_at bigint not null
);

create index email_verification_user on email_verification (user_id);
