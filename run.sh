#!/usr/bin/env bash
# Quick start, part 1: set up and run xuefen on its embedded defaults.
# Lists the shipped policies, then evaluates and explains the demo teachers.
set -euo pipefail
cd "$(dirname "$0")"
scripts/bootstrap.sh
. .venv/bin/activate
echo "== xuefen policies"
xuefen policies
echo
echo "== xuefen evaluate --policy yongji examples/yongji-teacher.json --as-of 2022-12-31"
xuefen evaluate --policy yongji examples/yongji-teacher.json --as-of 2022-12-31 --format text || true
echo "== xuefen plan --policy yongji examples/yongji-teacher.json --as-of 2022-06-30"
xuefen plan --policy yongji examples/yongji-teacher.json --as-of 2022-06-30 || true
echo "== xuefen evaluate --policy yongji examples/teachers.csv --as-of 2022-12-31"
xuefen evaluate --policy yongji examples/teachers.csv --as-of 2022-12-31 --format text || true
