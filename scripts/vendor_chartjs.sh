#!/usr/bin/env bash
# Vendor Chart.js into the console package (the Production and alert pages draw their
# trends, state timelines and OEE/energy bars with it, loaded from /static, never from a
# CDN: plants are offline). Fetches the package from the npm registry with `npm pack`,
# checks the tarball's integrity against the registry's record, and copies the UMD build
# and its licence. The result is committed; re-run this to upgrade:
#   scripts/vendor_chartjs.sh [VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-4.6.2}"
dest=src/otconduit/console/static/vendor
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

command -v npm >/dev/null || { echo "npm is needed (apt-get install npm)" >&2; exit 1; }
( cd "$tmp" && npm pack --silent "chart.js@${version}" >/dev/null )
tarball="$(ls "$tmp"/chart.js-*.tgz)"
want="$(npm view "chart.js@${version}" dist.integrity)"
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$want" != "$got" ]; then
    echo "integrity mismatch for chart.js@${version}: registry $want, got $got" >&2
    exit 1
fi
tar -xzf "$tarball" -C "$tmp"
mkdir -p "$dest"
build="$tmp/package/dist/chart.umd.min.js"
[ -f "$build" ] || build="$tmp/package/dist/chart.umd.js"
cp "$build" "$dest/chart.umd.min.js"
cp "$tmp/package/LICENSE.md" "$dest/chart.js.LICENSE"
printf 'chart.js %s (MIT)\n%s\n' "$version" "$want" > "$dest/chart.js.VERSION"
echo "vendored chart.js ${version} into ${dest}"
