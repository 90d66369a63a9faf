#!/usr/bin/env bash
# A stand-in for kubectl in the release script's tests: appends each call to $FAKE_LOG and
# answers from the environment (FAKE_LIVE: the colour emporium-live selects; FAKE_NOT_READY:
# a deployment whose rollout fails; FAKE_ERRORS: "errors total" its metrics add per scrape).
set -eu
args="$*"
echo "$args" >> "$FAKE_LOG"
case $args in
  *"get service emporium-live"*) printf '%s' "${FAKE_LIVE:-blue}" ;;
  *"get deploy"*"replicas"*) printf '3' ;;
  *"get job"*) printf '{"apiVersion":"batch/v1","kind":"Job","metadata":{"name":"j","uid":"u"},"spec":{"selector":{},"template":{"metadata":{"labels":{"controller-uid":"u"}},"spec":{"containers":[{"name":"migrate","image":"old"}]}}},"status":{}}' ;;
  *"apply -f -"*) cat > "$FAKE_LOG.applied" ;;
  *"rollout status"*)
    if [ -n "${FAKE_NOT_READY:-}" ] && [[ $args == *"$FAKE_NOT_READY"* ]]; then exit 1; fi ;;
  *"exec"*"metrics"*)
    n=$(grep -c "metrics" "$FAKE_LOG" || true)
    read -r e t <<< "${FAKE_ERRORS:-0 100}"
    echo "emporium_http_requests_total{method=\"GET\",route=\"/x\",status=\"200\"} $((n * (t - e)))"
    echo "emporium_http_requests_total{method=\"GET\",route=\"/x\",status=\"500\"} $((n * e))" ;;
esac
exit 0
