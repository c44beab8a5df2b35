#!/usr/bin/env bash
# Quick start, part 2: set up and run every check and test.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
. .venv/bin/activate
echo "== ruff"
ruff check src tests benchmarks
echo "== mypy"
mypy
echo "== pytest"
python -m pytest "$@"
