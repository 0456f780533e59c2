#!/bin/sh
# Validates the published stream contract with the AsyncAPI CLI (@asyncapi/cli from the npm
# registry, the version in package-lock.json, installed here at build time by npm ci and never
# committed): the document's structure, its bindings and the protobuf schema it carries.
# Usage: validate.sh [document] (default: libs/legation-contracts/asyncapi.yaml).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
document="${1:-$root/libs/legation-contracts/asyncapi.yaml}"
if [ ! -x "$here/node_modules/.bin/asyncapi" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.installed" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error && touch node_modules/.installed)
fi
# The CLI sends usage metrics unless its settings file says not to: keep one of our own.
mkdir -p "$root/build"
settings="$root/build/asyncapi-analytics.json"
echo '{"analyticsEnabled":"false","infoMessageShown":"true","userID":"legation"}' > "$settings"
ASYNCAPI_METRICS_CONFIG_PATH="$settings" SUPPRESS_NO_CONFIG_WARNING=1 \
  "$here/node_modules/.bin/asyncapi" validate "$document" --fail-severity=warn
