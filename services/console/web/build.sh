#!/bin/sh
# Builds the console's front-end assets from the npm registry into one folder (default:
# services/console/build/assets, which git ignores): the GOV.UK Frontend stylesheet compiled
# with the console's settings (sass), GOV.UK Frontend's script, htmx and its SSE extension.
# Versions come from package-lock.json (npm ci), so every build serves the same files.
# Used by `make console-assets` and by the console's Dockerfile; nothing here is committed.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-$here/../build/assets}"
cd "$here"
npm ci --no-audit --no-fund --ignore-scripts --loglevel=error
mkdir -p "$out"
./node_modules/.bin/sass --load-path=node_modules --style=compressed --no-source-map \
  styles/console.scss "$out/console.css"
cp node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.js "$out/"
cp node_modules/htmx.org/dist/htmx.min.js "$out/"
cp node_modules/htmx-ext-sse/dist/sse.min.js "$out/"
echo "console assets in $out"
