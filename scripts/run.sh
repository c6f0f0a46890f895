#!/usr/bin/env bash
# The run command: a venv with relaycast in it, then `relaycast serve` with any arguments.
set -euo pipefail
cd "$(dirname "$0")/.."
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e .
scripts/web.sh
exec .venv/bin/relaycast serve "$@"
