#!/usr/bin/env bash
# Start Debian's PostgreSQL on 127.0.0.1 when it is not running, with a test role
# and database; prints the SQLAlchemy URL the store tests use.
set -euo pipefail
port=${RELAYCAST_PG_PORT:-5432}
if ! pg_isready -q -h 127.0.0.1 -p "$port" 2>/dev/null; then
  cluster=$(pg_lsclusters -h | awk 'NR==1 {print $1" "$2}')
  if [ -z "$cluster" ]; then
    pg_createcluster 15 main >/dev/null
    cluster="15 main"
  fi
  # shellcheck disable=SC2086
  pg_ctlcluster $cluster start >/dev/null
  for _ in $(seq 1 50); do pg_isready -q -h 127.0.0.1 -p "$port" && break; sleep 0.2; done
fi
su postgres -c "psql -q -p $port -tc \"SELECT 1 FROM pg_roles WHERE rolname='relaycast'\"" | grep -q 1 ||
  su postgres -c "psql -q -p $port -c \"CREATE ROLE relaycast LOGIN PASSWORD 'relaycast' CREATEDB\""
echo "postgresql+asyncpg://relaycast:relaycast@127.0.0.1:$port/postgres"
