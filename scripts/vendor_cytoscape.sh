#!/usr/bin/env bash
# Vendor Cytoscape.js into the console package (the map page loads it from /static, never
# from a CDN). Fetches the package from the npm registry with `npm pack`, checks the
# tarball's integrity against the registry's record, and copies the minified build and
# its licence. The result is committed (the console needs it at run time); re-run this
# to upgrade:  scripts/vendor_cytoscape.sh [VERSION]
set -euo pipefail
cd "$(dirname "$0")/.."
version="${1:-3.34.4}"
dest=src/otconduit/console/static/vendor
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

command -v npm >/dev/null || { echo "npm is needed (apt-get install npm)" >&2; exit 1; }
( cd "$tmp" && npm pack --silent "cytoscape@${version}" >/dev/null )
tarball="$(ls "$tmp"/cytoscape-*.tgz)"
want="$(npm view "cytoscape@${version}" dist.integrity)"
got="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
if [ "$want" != "$got" ]; then
    echo "integrity mismatch for cytoscape@${version}: registry $want, got $got" >&2
    exit 1
fi
tar -xzf "$tarball" -C "$tmp"
mkdir -p "$dest"
cp "$tmp/package/dist/cytoscape.min.js" "$dest/cytoscape.min.js"
cp "$tmp/package/LICENSE" "$dest/cytoscape.LICENSE"
printf 'cytoscape %s\n%s\n' "$version" "$want" > "$dest/cytoscape.VERSION"
echo "vendored cytoscape ${version} into ${dest}"
