#!/usr/bin/env bash
# Offline checks of the Terraform: every file parses (python-hcl2), is formatted (when the
# terraform binary is installed), and checkov finds no failed check (each skip carries its
# reason next to the resource). Nothing is planned or applied: no provider is downloaded and
# no cloud is reached. HCL_PYTHON: a Python with python-hcl2; CHECKOV: the checkov binary.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
"${HCL_PYTHON:?a Python with python-hcl2}" - "$here" <<'PY'
import pathlib
import sys

import hcl2

files = sorted(pathlib.Path(sys.argv[1]).rglob("*.tf"))
blocks = 0
for path in files:
    with open(path) as f:
        parsed = hcl2.load(f)
    blocks += sum(len(v) for v in parsed.values() if isinstance(v, list))
print(f"terraform: {len(files)} files parse ({blocks} blocks)")
PY
if command -v terraform >/dev/null 2>&1; then
  TF_CLI_CONFIG_FILE=/dev/null terraform fmt -check -recursive "$here" >/dev/null
  echo "terraform: formatted"
fi
result=$("${CHECKOV:?the checkov binary}" -d "$here/aws" --framework terraform --compact --quiet --skip-download 2>&1 || true)
summary=$(printf '%s\n' "$result" | grep -E '^Passed checks' || echo 'no checkov summary')
echo "terraform: checkov: $summary"
case $summary in
  *"Failed checks: 0,"*) ;;
  *) printf '%s\n' "$result" >&2; exit 1 ;;
esac
