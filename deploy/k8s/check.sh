#!/usr/bin/env bash
# Offline checks of the Kubernetes manifests: every overlay rendered with kustomize,
# validated against the Kubernetes 1.30 schemas and scanned with checkov (no failed check;
# a skip carries its reason in the manifest). Needs kubectl (for kustomize) and a Python
# environment with kubernetes-validate and checkov: PYTHON_BIN, a directory with both.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=${PYTHON_BIN:?a directory with kubernetes-validate and checkov}
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
for overlay in "$here"/overlays/*/; do
  name=$(basename "$overlay")
  # Per-context pieces of the split overlay are checked as part of it.
  [ -f "$overlay/kustomization.yaml" ] || continue
  kubectl kustomize "$overlay" > "$out/$name.yaml"
  "$bin/kubernetes-validate" -k 1.30.0 --strict --quiet "$out/$name.yaml"
  result=$("$bin/checkov" -f "$out/$name.yaml" --framework kubernetes --compact --quiet --skip-download 2>&1 || true)
  summary=$(printf '%s\n' "$result" | grep -E '^Passed checks' || echo 'no checkov summary')
  echo "k8s: $name: $(grep -c '^kind:' "$out/$name.yaml") resources valid; checkov: $summary"
  case $summary in
    *"Failed checks: 0,"*) ;;
    *) printf '%s\n' "$result" >&2; exit 1 ;;
  esac
done
