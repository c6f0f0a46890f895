#!/usr/bin/env bash
# Browser assets from the npm registry (never a CDN, never committed): hls.js for /play.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f .web/node_modules/hls.js/dist/hls.min.js ]; then
  if ! command -v npm >/dev/null; then
    echo "web: npm is missing; the /play page needs hls.js (apt-get install npm)" >&2
    exit 0
  fi
  npm install --silent --no-audit --no-fund --prefix .web hls.js@1 >/dev/null
fi
