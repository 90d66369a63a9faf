#!/usr/bin/env bash
# Releases on Kubernetes (kubectl and a cluster context; NAMESPACE, default emporium).
#
#   release.sh migrate JOB IMAGE          run a migration Job (e.g. emporium-migrate-monolith) on IMAGE, wait
#   release.sh blue-green IMAGE           bring the idle colour up on IMAGE, check it, switch emporium-live to it
#   release.sh blue-green-rollback        switch emporium-live back to the other colour
#   release.sh canary IMAGE               canary by weight (CANARY_STEPS, default "5 25 50 100", CANARY_PAUSE
#                                         seconds per step, default 120), then promote IMAGE to the stable Deployment
#   release.sh canary-abort               weight 0: every request to the stable Deployment again
#
# IMAGE should be a digest (registry/emporium@sha256:…): what was checked is what runs.
# Both kinds of release run two versions side by side: docs/decisions/0037-two-versions-side-by-side-events-are-read.md (events) and
# the expand-then-contract migrations are what make that safe.
set -euo pipefail
ns=${NAMESPACE:-emporium}
k() { kubectl --namespace "$ns" "$@"; }
say() { echo "release: $*"; }

# The 5xx share of a Deployment's answers since `before` (a scrape of its /metrics).
server_errors() { # deployment
  k exec "deploy/$1" -c emporium -- sh -c \
    'curl -fsS -H "authorization: Bearer $(cat /run/secrets/emporium/metrics-token)" http://127.0.0.1:9090/metrics' \
    | awk '/^emporium_http_requests_total/ { n += $NF; if ($0 ~ /status="5/) e += $NF } END { printf "%d %d\n", e, n }'
}

ready() { # deployment: rolled out, every replica ready, and the process says it is ready
  k rollout status "deploy/$1" --timeout="${ROLLOUT_TIMEOUT:-300s}" &&
    k exec "deploy/$1" -c emporium -- curl -fsS http://127.0.0.1:9090/health/ready >/dev/null
}

migrate() { # job image
  local job=$1 image=$2 manifest
  manifest=$(k get job "$job" -o json)
  k delete job "$job" --ignore-not-found --wait=true
  printf '%s' "$manifest" \
    | python3 -c 'import json,sys
j=json.load(sys.stdin); image=sys.argv[1]
for key in ("uid","resourceVersion","creationTimestamp","managedFields"): j["metadata"].pop(key, None)
j.pop("status", None)
for key in ("selector",): j["spec"].pop(key, None)
j["spec"]["template"]["metadata"].get("labels", {}).pop("controller-uid", None)
j["spec"]["template"]["metadata"].get("labels", {}).pop("batch.kubernetes.io/controller-uid", None)
j["spec"]["template"]["spec"]["containers"][0]["image"] = image
print(json.dumps(j))' "$image" \
    | k apply -f -
  k wait --for=condition=complete "job/$job" --timeout="${MIGRATE_TIMEOUT:-600s}"
  say "migrations of $job applied ($image)"
}

blue_green() { # image
  local image=$1 live idle
  live=$(k get service emporium-live -o jsonpath='{.spec.selector.release}')
  case $live in blue) idle=green ;; green) idle=blue ;; *) echo "emporium-live selects release=$live" >&2; exit 1 ;; esac
  say "live: $live; bringing up $idle on $image"
  migrate "emporium-migrate-monolith-$idle" "$image"
  k set image "deploy/emporium-monolith-$idle" "emporium=$image"
  k scale "deploy/emporium-monolith-$idle" --replicas="$(k get deploy "emporium-monolith-$live" -o jsonpath='{.spec.replicas}')"
  if ! ready "emporium-monolith-$idle"; then
    say "$idle is not ready; emporium-live still selects $live"
    exit 1
  fi
  k patch service emporium-live --type merge -p "{\"spec\":{\"selector\":{\"release\":\"$idle\"}}}"
  say "emporium-live now selects $idle; $live stays up for a rollback (release.sh blue-green-rollback)"
}

blue_green_rollback() {
  local live back
  live=$(k get service emporium-live -o jsonpath='{.spec.selector.release}')
  case $live in blue) back=green ;; green) back=blue ;; *) exit 1 ;; esac
  ready "emporium-monolith-$back"
  k patch service emporium-live --type merge -p "{\"spec\":{\"selector\":{\"release\":\"$back\"}}}"
  say "emporium-live selects $back again"
}

weight() { # percent
  k annotate ingress emporium-monolith-canary --overwrite "nginx.ingress.kubernetes.io/canary-weight=$1"
}

canary() { # image
  local image=$1 step errors total before_e before_n
  migrate emporium-migrate-monolith "$image"
  k set image deploy/emporium-monolith-canary "emporium=$image"
  ready emporium-monolith-canary || { say "the canary is not ready; no traffic was sent to it"; weight 0; exit 1; }
  for step in ${CANARY_STEPS:-5 25 50 100}; do
    read -r before_e before_n < <(server_errors emporium-monolith-canary)
    weight "$step"
    say "canary at $step%"
    sleep "${CANARY_PAUSE:-120}"
    read -r errors total < <(server_errors emporium-monolith-canary)
    errors=$((errors - before_e)); total=$((total - before_n))
    # More than 1% of its answers 5xx, or not ready: back to 0% and stop.
    if ! ready emporium-monolith-canary || [ $((errors * 100)) -gt "$total" ]; then
      weight 0
      say "canary failed at $step% ($errors of $total answers 5xx); all traffic is on the stable Deployment"
      exit 1
    fi
  done
  k set image deploy/emporium-monolith "emporium=$image"
  ready emporium-monolith
  weight 0
  say "promoted $image to the stable Deployment; the canary takes no traffic"
}

case ${1:-} in
  migrate) migrate "${2:?job}" "${3:?image}" ;;
  blue-green) blue_green "${2:?image}" ;;
  blue-green-rollback) blue_green_rollback ;;
  canary) canary "${2:?image}" ;;
  canary-abort) weight 0 ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
