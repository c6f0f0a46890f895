#!/usr/bin/env bash
# Browser assets from the npm registry (never a CDN, never committed): hls.js for /play
# and the studio, tus-js-client for the studio's resumable uploads.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ ! -f .web/node_modules/hls.js/dist/hls.min.js ] || [ ! -f .web/node_modules/tus-js-client/dist/tus.min.js ]; then
  if ! command -v npm >/dev/null; then
    echo "web: npm is missing; /play and /studio need hls.js and tus-js-client (apt-get install npm)" >&2
    exit 0
  fi
  npm install --silent --no-audit --no-fund --prefix .web hls.js@1 tus-js-client@4 >/dev/null
fi
