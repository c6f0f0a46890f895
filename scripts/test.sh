#!/usr/bin/env bash
# The test command: everything a fresh machine needs, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-peers.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'
scripts/web.sh
if [ -z "${PG_TEST_URL:-}" ] && [ "$(id -u)" = 0 ]; then
  PG_TEST_URL=$(scripts/postgres.sh | tail -n 1)
  export PG_TEST_URL
fi
exec .venv/bin/python -m pytest "$@"
