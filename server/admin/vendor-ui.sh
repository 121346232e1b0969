#!/usr/bin/env bash
# Copies the Socket.IO Admin UI's static build (npm package
# @socket.io/admin-ui, its ui/dist, without source maps) and its licence
# into ui/, which the package embeds, then the web fonts its page links
# from CDNs (npm @fontsource-variable/roboto and @mdi/font, woff2 only,
# with their licences) into ui/fonts/, and points the page at them
# (vendor-fonts.js). The packages come from examples/chat's package.json
# (installed by scripts/setup.sh, npm ci). Run it after changing one of
# those versions; commit the result.
#   vendor-ui.sh [DIR]   DIR (default ui, beside this script) is replaced;
#   compat_test's TestAdminUIVendoredMatchesNpm vendors into a temporary
#   DIR and compares it with ui/.
set -euo pipefail
out=${1:-}
[ -z "$out" ] || out=$(mkdir -p "$out" && cd "$out" && pwd)
cd "$(dirname "$0")"
ui=${out:-ui}
pkg=../../examples/chat/node_modules/@socket.io/admin-ui
[ -d "$pkg/ui/dist" ] || { echo "no $pkg/ui/dist: run npm ci in examples/chat" >&2; exit 1; }
rm -rf "$ui"
mkdir -p "$ui"
(cd "$pkg/ui/dist" && find . -type f ! -name '*.map' -print0) | while IFS= read -r -d '' f; do
  mkdir -p "$ui/$(dirname "$f")"
  cp "$pkg/ui/dist/$f" "$ui/$f"
done
cp "$pkg/LICENSE" "$ui/LICENSE"
node vendor-fonts.js ../../examples/chat/node_modules "$ui"
version=$(node -p "require('$pkg/package.json').version")
fonts=$(cd ../../examples/chat/node_modules && node -p "['@fontsource-variable/roboto', '@mdi/font'].map((p) => p + ' ' + require(p + '/package.json').version).join(', ')")
printf '@socket.io/admin-ui %s: ui/dist without source maps, and LICENSE, copied by ../vendor-ui.sh;\nfonts/: %s, woff2, by ../vendor-fonts.js, which also links them from index.html\n' "$version" "$fonts" > "$ui/VERSION"
du -sb "$ui"
