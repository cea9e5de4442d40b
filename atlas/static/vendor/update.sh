#!/usr/bin/env bash
# Re-fetch the vendored front-end files from the npm registry at their pinned versions.
# The files are committed (the app works offline); run this only to upgrade, then commit the result.
set -euo pipefail
cd "$(dirname "$0")/../../.."
HTMX=2.0.11 SSE=2.2.4 SWAGGER=5.35.0 SORTABLE=1.15.7
dest=atlas/static/vendor
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
(cd "$tmp" && npm pack --silent "htmx.org@$HTMX" "htmx-ext-sse@$SSE" "swagger-ui-dist@$SWAGGER" \
  "sortablejs@$SORTABLE" >/dev/null)
for f in "$tmp"/*.tgz; do mkdir -p "${f%.tgz}" && tar -xzf "$f" -C "${f%.tgz}"; done
mkdir -p "$dest/htmx" "$dest/swagger-ui" "$dest/sortablejs"
cp "$tmp/htmx.org-$HTMX/package/dist/htmx.min.js" "$dest/htmx/htmx.min.js"
cp "$tmp/htmx-ext-sse-$SSE/package/dist/sse.min.js" "$dest/htmx/sse.min.js" 2>/dev/null \
  || cp "$tmp/htmx-ext-sse-$SSE/package/sse.js" "$dest/htmx/sse.min.js"
for f in swagger-ui-bundle.js swagger-ui-standalone-preset.js swagger-ui.css; do
  cp "$tmp/swagger-ui-dist-$SWAGGER/package/$f" "$dest/swagger-ui/$f"
done
# SortableJS: the builder's drag and drop (js/builder-move.js); MIT, its licence kept beside it
cp "$tmp/sortablejs-$SORTABLE/package/Sortable.min.js" "$tmp/sortablejs-$SORTABLE/package/LICENSE" "$dest/sortablejs/"
cat > "$dest/VERSIONS" <<V
htmx.org $HTMX (htmx/htmx.min.js)
htmx-ext-sse $SSE (htmx/sse.min.js)
swagger-ui-dist $SWAGGER (swagger-ui/)
sortablejs $SORTABLE (sortablejs/Sortable.min.js; licence MIT, sortablejs/LICENSE)
V
echo "vendored: htmx.org@$HTMX htmx-ext-sse@$SSE swagger-ui-dist@$SWAGGER sortablejs@$SORTABLE"
