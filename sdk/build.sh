#!/usr/bin/env bash
# Builds the client packages from openapi/openapi.json into OUT (default target/sdk):
#   OUT/emporium-client-<version>.tgz                      npm install OUT/emporium-client-*.tgz
#   OUT/emporium_client-<version>-py3-none-any.whl          pip install OUT/emporium_client-*.whl
# <version> is the server's (Cargo.toml) and the commit the document came from.
# Needs: node with the tools of sdk/tools/package.json installed in EMPORIUM_NODE_TOOLS (a
# folder with node_modules), and PYTHON with openapi-python-client and pip.
set -euo pipefail
cd "$(dirname "$0")/.."
out=$(mkdir -p "${1:-target/sdk}" && cd "${1:-target/sdk}" && pwd)
tools=${EMPORIUM_NODE_TOOLS:?EMPORIUM_NODE_TOOLS: a folder with the node_modules of sdk/tools/package.json}
python=${PYTHON:-python3}
spec=$PWD/openapi/openapi.json
crate_version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n1)
commit=$(git rev-parse --short=12 HEAD 2>/dev/null || echo unknown)
version="$crate_version+g$commit"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Only this build's packages in OUT: an installer given OUT/emporium*-* takes exactly one.
rm -f "$out"/emporium-client-*.tgz "$out"/emporium_client-*.whl

# TypeScript: the document's types (openapi-typescript) and the thin client in sdk/typescript.
cp -r sdk/typescript "$work/ts"
ln -s "$tools/node_modules" "$work/ts/node_modules"
"$tools/node_modules/.bin/openapi-typescript" "$spec" -o "$work/ts/src/schema.d.ts" >/dev/null
node -e '
  const fs = require("fs"), [dir, version] = process.argv.slice(1);
  const pkg = JSON.parse(fs.readFileSync(dir + "/package.json"));
  pkg.version = version;
  fs.writeFileSync(dir + "/package.json", JSON.stringify(pkg, null, 2) + "\n");
  const index = dir + "/src/index.ts";
  fs.writeFileSync(index, fs.readFileSync(index, "utf8").replace("__VERSION__", version));
' "$work/ts" "$version"
"$tools/node_modules/.bin/tsc" -p "$work/ts"
# The generated declarations are not compiled to .d.ts by tsc: ship them beside index.d.ts.
cp "$work/ts/src/schema.d.ts" "$work/ts/dist/schema.d.ts"
rm "$work/ts/node_modules"
(cd "$work/ts" && npm pack --silent --pack-destination "$out" >/dev/null)

# Python: openapi-python-client's package, built as a wheel.
{ cat sdk/python/config.yml; echo "package_version_override: $version"; } > "$work/python.yml"
"$(dirname "$python")/openapi-python-client" generate --path "$spec" --output-path "$work/py" \
  --meta setup --config "$work/python.yml" > "$work/py.log" 2>&1 || { cat "$work/py.log"; exit 1; }
"$python" -m pip wheel --quiet --no-deps --wheel-dir "$out" "$work/py" > /dev/null
ls "$out"
