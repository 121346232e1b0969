#!/usr/bin/env bash
# Copies the Socket.IO Admin UI's static build (npm package
# @socket.io/admin-ui, its ui/dist, without source maps) and its licence
# into ui/, which the package embeds. The package comes from
# examples/chat's package.json (installed by scripts/setup.sh, npm ci).
# Run it after changing that version; commit the result.
set -euo pipefail
cd "$(dirname "$0")"
pkg=../../examples/chat/node_modules/@socket.io/admin-ui
[ -d "$pkg/ui/dist" ] || { echo "no $pkg/ui/dist: run npm ci in examples/chat" >&2; exit 1; }
rm -rf ui
mkdir ui
(cd "$pkg/ui/dist" && find . -type f ! -name '*.map' -print0) | while IFS= read -r -d '' f; do
  mkdir -p "ui/$(dirname "$f")"
  cp "$pkg/ui/dist/$f" "ui/$f"
done
cp "$pkg/LICENSE" ui/LICENSE
version=$(node -p "require('$pkg/package.json').version")
printf '@socket.io/admin-ui %s: ui/dist without source maps, and LICENSE, copied by ../vendor-ui.sh\n' "$version" > ui/VERSION
du -sb ui
