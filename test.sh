#!/usr/bin/env bash
# Quick start, part 2: set up and run every check and test.
#   ruff, mypy, migrations check, then pytest on SQLite (the embedded default),
#   then the database tests again on PostgreSQL when one is reachable
#   (XUEFEN_TEST_POSTGRES, default postgres://postgres@127.0.0.1:5432/test).
# Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
. .venv/bin/activate
export XUEFEN_DATA_DIR="${XUEFEN_DATA_DIR:-$PWD/var/test}"
echo "== ruff"
ruff check src tests benchmarks
echo "== mypy"
mypy
echo "== migrations are up to date"
python manage.py makemigrations --check --dry-run
echo "== pytest (SQLite)"
python -m pytest "$@"
PG_URL="${XUEFEN_TEST_POSTGRES:-postgres://postgres@127.0.0.1:5432/test}"
if python - "$PG_URL" <<'PY'
import sys
import psycopg
try:
    psycopg.connect(sys.argv[1], connect_timeout=3).close()
except Exception as exc:
    print(f"PostgreSQL not reachable ({exc.__class__.__name__}); skipping the PostgreSQL run")
    sys.exit(1)
PY
then
  echo "== pytest (PostgreSQL)"
  DATABASE_URL="$PG_URL" python -m pytest tests/web -m "not browser" "$@"
elif [ "${CI:-}" = "true" ]; then
  echo "CI must run the suite on PostgreSQL, but it is not reachable" >&2
  exit 1
fi
