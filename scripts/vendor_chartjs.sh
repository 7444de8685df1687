#!/usr/bin/env bash
# Re-vendor Chart.js (MIT) from the npm registry into the explorer's assets. The page serves it
# from 127.0.0.1 (live) or inlines it (static file), so no page ever fetches a CDN.
# Usage: bash scripts/vendor_chartjs.sh [version]   (default: the vendored one, 4.6.1)
set -euo pipefail
cd "$(dirname "$0")/.."
version=${1:-4.6.1}
assets=src/ecglatent/explorer/assets
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack "chart.js@${version}" >/dev/null 2>&1 && tar xzf chart.js-*.tgz)
# Drop the source-map comment: the map is not shipped, and browsers would look for it.
sed '/^\/\/# sourceMappingURL=/d' "$tmp/package/dist/chart.umd.min.js" > "$assets/chart.umd.min.js"
cp "$tmp/package/LICENSE.md" "$assets/chart.js.LICENSE.md"
echo "Chart.js ${version} vendored into $assets ($(wc -c < "$assets/chart.umd.min.js") bytes)"
