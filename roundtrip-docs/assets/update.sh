#!/usr/bin/env bash
# Re-vendor Swagger UI and ReDoc from the npm registry into this folder.
#
#   roundtrip-docs/assets/update.sh [SWAGGER_UI_VERSION] [REDOC_VERSION]
#
# Only the files needed at run time are copied, with their licences. The ReDoc bundle gets
# one patch (see README.md); the script fails if that patch no longer applies, so an update
# can never silently bring back a request to a third-party host.
set -euo pipefail

swagger_version=${1:-5.35.0}
redoc_version=${2:-2.5.4}
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

cd "$tmp"
npm pack --silent "swagger-ui-dist@$swagger_version" "redoc@$redoc_version" >/dev/null
mkdir swagger redoc
tar xzf "swagger-ui-dist-$swagger_version.tgz" -C swagger
tar xzf "redoc-$redoc_version.tgz" -C redoc

s=swagger/package
mkdir -p "$here/swagger-ui" "$here/redoc"
for f in swagger-ui-bundle.js swagger-ui-bundle.js.LICENSE.txt swagger-ui.css \
    oauth2-redirect.js favicon-32x32.png LICENSE NOTICE; do
    cp "$s/$f" "$here/swagger-ui/$f"
done
printf '%s' "$swagger_version" >"$here/swagger-ui/VERSION"

r=redoc/package
cp "$r/LICENSE" "$here/redoc/LICENSE"
cp "$r/bundles/redoc.standalone.js.LICENSE.txt" "$here/redoc/redoc.standalone.js.LICENSE.txt"
# ReDoc's side menu always renders <img src="https://cdn.redoc.ly/redoc/logo-mini.svg">
# (there is no option to turn it off). Point it at an empty data: URL instead: the image
# fails to decode, ReDoc's own onError handler hides it, and nothing leaves the machine.
logo='src:"https://cdn.redoc.ly/redoc/logo-mini.svg"'
count=$(grep -o -F "$logo" "$r/bundles/redoc.standalone.js" | wc -l)
if [ "$count" != 1 ]; then
    echo "update.sh: expected the ReDoc logo URL once in redoc.standalone.js, found $count;" >&2
    echo "  re-check the bundle for network requests and adapt the patch" >&2
    exit 1
fi
sed 's|src:"https://cdn.redoc.ly/redoc/logo-mini.svg"|src:"data:,"|' \
    "$r/bundles/redoc.standalone.js" >"$here/redoc/redoc.standalone.js"
printf '%s' "$redoc_version" >"$here/redoc/VERSION"

echo "vendored swagger-ui-dist $swagger_version and redoc $redoc_version into $here"
echo "now run: cargo test -p roundtrip-docs && scripts/browser-test --all"
