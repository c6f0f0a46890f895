#!/usr/bin/env bash
# The test command: everything a fresh machine needs, then the whole suite.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-peers.sh
[ -x .venv/bin/python ] || python3 -m venv .venv
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e '.[test]'  # also compiles the media hot path (setup.py)
.venv/bin/python -c 'from server import accel; print("media hot path:", accel.describe())'
scripts/web.sh
if [ -z "${PG_TEST_URL:-}" ] && [ "$(id -u)" = 0 ]; then
  PG_TEST_URL=$(scripts/postgres.sh | tail -n 1)
  export PG_TEST_URL
fi
# Most of the suite waits on real time (encoders, players, retries), so it runs on
# TEST_WORKERS processes (one test file per process at a time); tests marked
# `serial` (disk- or CPU-heavy) then run two at a time, and those also marked `solo`
# (latency, stalls, deadlines, CPU measured) run alone, last. Exit 5 (nothing
# collected) only when no phase ran a test.
set +e
.venv/bin/python -m pytest -n "${TEST_WORKERS:-3}" --dist loadfile -m "not serial and not solo" --durations=15 "$@"
parallel=$?
.venv/bin/python -m pytest -n 2 --dist loadfile -m "serial and not solo" --durations=25 "$@"
serial=$?
.venv/bin/python -m pytest -m solo --durations=15 "$@"
solo=$?
set -e
if [ $parallel -eq 5 ] && [ $serial -eq 5 ] && [ $solo -eq 5 ]; then exit 5; fi
for rc in $parallel $serial $solo; do
  if [ "$rc" -ne 0 ] && [ "$rc" -ne 5 ]; then exit "$rc"; fi
done
exit 0
