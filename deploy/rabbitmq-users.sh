#!/bin/sh
# One RabbitMQ user per context, through the management API: each may declare, bind and
# consume only this deployment's exchanges and queues (`<namespace>.*`), and may publish to
# the events exchange only the event types of its own context (topic permissions).
# Run once after the broker is up (compose runs it as `rabbitmq-users`); safe to run again.
#
#   RABBITMQ_API                 http://rabbitmq:15672
#   RABBITMQ_ADMIN_USER/_PASS    an administrator (the broker's default user)
#   EMPORIUM_AMQP_NAMESPACE      prefix of the exchanges and queues (default emporium)
#   <CONTEXT>_AMQP_PASSWORD      the password of each context's user (IDENTITY_AMQP_PASSWORD, …)
#   AMQP_USER_PREFIX             prefix of the user names (default none)
set -eu
api=${RABBITMQ_API:?}
ns=${EMPORIUM_AMQP_NAMESPACE:-emporium}
prefix=${AMQP_USER_PREFIX:-}
auth="${RABBITMQ_ADMIN_USER:?}:${RABBITMQ_ADMIN_PASS:?}"
# The management API answers a little after the broker does.
tries=0
until curl -fsS -u "$auth" "$api/api/overview" >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ "$tries" -lt 60 ] || { echo "rabbitmq-users: $api does not answer" >&2; exit 1; }
  sleep 1
done
put() { # path, JSON body
  curl -fsS -u "$auth" -X PUT -H 'content-type: application/json' "$api/api/$1" -d "$2" >/dev/null
}
# Names are matched as regular expressions: escape the dots of the namespace.
ns_re=$(printf '%s' "$ns" | sed 's/\./\\\\./g')
for ctx in identity catalog ordering shipping notifications; do
  var=$(printf '%s_AMQP_PASSWORD' "$ctx" | tr '[:lower:]' '[:upper:]')
  password=$(eval "printf '%s' \"\${$var:?set $var}\"")
  user="$prefix$ctx"
  put "users/$user" "{\"password\":\"$password\",\"tags\":\"\"}"
  put "permissions/%2f/$user" "{\"configure\":\"^$ns_re\\\\.\",\"write\":\"^$ns_re\\\\.\",\"read\":\"^$ns_re\\\\.\"}"
  put "topic-permissions/%2f/$user" "{\"exchange\":\"$ns.events\",\"write\":\"^$ctx\\\\.\",\"read\":\".*\"}"
  echo "rabbitmq-users: $user may publish $ctx.* on $ns.events"
done
