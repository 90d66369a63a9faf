#!/usr/bin/env bash
# What the API's users' tools make of openapi/openapi.json, against a running server:
#   the linters (Redocly recommended, Spectral's OpenAPI rules) at 0 errors, and the
#   AsyncAPI document (served at /asyncapi.json) through the AsyncAPI parser;
#   the packages of sdk/build.sh, installed from the build output as a user would, each
#   driving the shopping flow to `confirmed` (Python: every operation has its function);
#   openapi-generator's typescript-fetch client, compiled with tsc --strict, the same flow.
# Usage: clients.sh BASE_URL ADMIN_EMAIL ADMIN_PASSWORD OUT_DIR
# Needs EMPORIUM_NODE_TOOLS (node_modules of sdk/tools/package.json), PYTHON (a virtualenv's
# python with openapi-python-client and openapi-generator-cli), java.
set -euo pipefail
cd "$(dirname "$0")/../.."
base=$1 admin_email=$2 admin_password=$3 out=$4
tools=${EMPORIUM_NODE_TOOLS:?}
python=${PYTHON:?}
bin="$tools/node_modules/.bin"
spec=openapi/openapi.json
mkdir -p "$out"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

echo "clients: Redocly (recommended rules)"
"$bin/redocly" lint "$spec" --config sdk/tools/redocly.yaml --format=summary > "$work/redocly.log" 2>&1 \
  || { cat "$work/redocly.log"; exit 1; }
grep -E "valid|error|warning" "$work/redocly.log" | grep -v -i "node.js" | tail -n 3
echo "clients: Spectral (spectral:oas)"
"$bin/spectral" lint "$spec" --ruleset sdk/tools/.spectral.yaml --fail-severity error > "$work/spectral.log" 2>&1 \
  || { cat "$work/spectral.log"; exit 1; }
tail -n 2 "$work/spectral.log"

echo "clients: AsyncAPI (the AsyncAPI parser: schema, bindings, references)"
curl -fs "$base/asyncapi.json" -o "$work/asyncapi.json"
cmp -s "$work/asyncapi.json" openapi/asyncapi.json || { echo "/asyncapi.json is not openapi/asyncapi.json" >&2; exit 1; }
NODE_PATH="$tools/node_modules" node sdk/tools/validate-asyncapi.cjs openapi/asyncapi.json

echo "clients: building the TypeScript and Python packages"
EMPORIUM_NODE_TOOLS="$tools" PYTHON="$python" bash sdk/build.sh "$out"

echo "clients: Python package (openapi-python-client)"
"$python" -m pip install --quiet --force-reinstall --no-deps "$out"/emporium_client-*.whl
"$python" - "$spec" <<'PY'
import importlib, json, sys
spec = json.load(open(sys.argv[1]))
methods = {"get", "put", "post", "delete", "patch", "head", "options", "trace"}
missing = []
operations = 0
for path, item in spec["paths"].items():
    for method, op in item.items():
        if method not in methods:
            continue
        operations += 1
        tag = op["tags"][0]
        try:
            module = importlib.import_module(f"emporium_client.api.{tag}.{op['operationId']}")
            if not hasattr(module, "sync_detailed"):
                missing.append(op["operationId"])
        except ImportError:
            missing.append(op["operationId"])
if missing:
    sys.exit(f"the Python client has no function for {len(missing)} of {operations} operations: {missing}")
print(f"clients: the Python client has a function for each of the {operations} operations")
PY
"$python" tests/client/flow.py "$base" "$admin_email" "$admin_password"

echo "clients: TypeScript package (openapi-typescript + openapi-fetch), tsc --strict"
mkdir -p "$work/ts"
cp tests/sdk/flow.ts sdk/typescript/tsconfig.json "$work/ts/"
(cd "$work/ts" && echo '{"private": true}' > package.json \
  && npm install --silent --no-audit --no-fund --no-package-lock "$out"/emporium-client-*.tgz >/dev/null)
ln -s "$tools/node_modules/typescript" "$work/ts/node_modules/typescript"
"$bin/tsc" --strict --target es2022 --module node16 --moduleResolution node16 --lib es2022,dom \
  --types node --typeRoots "$tools/node_modules/@types" --skipLibCheck --outDir "$work/ts/out" "$work/ts/flow.ts"
node "$work/ts/out/flow.js" "$base" "$admin_email" "$admin_password"

echo "clients: openapi-generator typescript-fetch, tsc --strict"
mkdir -p "$work/gen"
"$(dirname "$python")/openapi-generator-cli" generate -i "$spec" -g typescript-fetch \
  -o "$work/gen/generated" > "$work/generator.log" 2>&1 || { cat "$work/generator.log"; exit 1; }
cp tests/sdk/generator_flow.ts "$work/gen/"
"$bin/tsc" --strict --target es2022 --module node16 --moduleResolution node16 --lib es2022,dom \
  --types node --typeRoots "$tools/node_modules/@types" --skipLibCheck --outDir "$work/gen/out" "$work/gen/generator_flow.ts"
node "$work/gen/out/generator_flow.js" "$base" "$admin_email" "$admin_password"
