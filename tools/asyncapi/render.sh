#!/bin/sh
# Renders the published stream contract with the AsyncAPI generator's HTML template
# (@asyncapi/html-template, from the npm registry like the CLI, see validate.sh) into one
# self-contained page: build/contracts-html/index.html (not committed; publish it where the
# departments read it). The committed libs/legation-contracts/asyncapi.html is the plain page
# rendered by tools/gen_asyncapi.py from the same document (no script needed).
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"
out="${1:-$root/build/contracts-html}"
if [ ! -x "$here/node_modules/.bin/asyncapi" ] || [ "$here/package-lock.json" -nt "$here/node_modules/.installed" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --ignore-scripts --loglevel=error && touch node_modules/.installed)
fi
mkdir -p "$root/build"
settings="$root/build/asyncapi-analytics.json"
echo '{"analyticsEnabled":"false","infoMessageShown":"true","userID":"legation"}' > "$settings"
ASYNCAPI_METRICS_CONFIG_PATH="$settings" SUPPRESS_NO_CONFIG_WARNING=1 \
  "$here/node_modules/.bin/asyncapi" generate fromTemplate \
  "$root/libs/legation-contracts/asyncapi.yaml" "$here/node_modules/@asyncapi/html-template" \
  -o "$out" --force-write --no-interactive -p singleFile=true
echo "contract page: $out/index.html"
