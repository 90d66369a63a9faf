#!/bin/sh
# One database and one role per context; each role owns its database and nothing else, and
# nobody else may connect to it. Runs once, as the PostgreSQL superuser, when the data
# volume is first initialised (docker-entrypoint-initdb.d). Passwords:
# IDENTITY_DB_PASSWORD, CATALOG_DB_PASSWORD, ORDERING_DB_PASSWORD, SHIPPING_DB_PASSWORD,
# NOTIFICATIONS_DB_PASSWORD.
set -eu
for ctx in identity catalog ordering shipping notifications; do
  var=$(printf '%s_DB_PASSWORD' "$ctx" | tr '[:lower:]' '[:upper:]')
  password=$(eval "printf '%s' \"\${$var:?set $var}\"")
  psql -v ON_ERROR_STOP=1 -v password="$password" --username "${POSTGRES_USER:-postgres}" <<SQL
create role $ctx login password :'password';
-- On RDS the administrator is not a superuser: it must be a member of a role to give it a database.
grant $ctx to current_user;
create database $ctx owner $ctx;
revoke all on database $ctx from public;
SQL
done
