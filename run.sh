#!/usr/bin/env bash
# Quick start, part 1: set up and run xuefen on its embedded defaults.
# Creates .venv, installs the pinned dependencies, migrates an SQLite database
# under ./var, loads the demo jurisdiction (first run only), prints one login
# per role and serves the platform on http://127.0.0.1:8000/ (Ctrl+C stops).
# No other server is needed: no PostgreSQL, no Redis, no broker.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
. .venv/bin/activate
exec xuefen serve --host 127.0.0.1 --port "${PORT:-8000}"
