"""The province benchmark's paired ratio line, which scripts read."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_bench_prints_the_paired_ratio_as_one_readable_line(tmp_path: Path) -> None:
    # the smallest real run: the batch evaluator and DuckDB in turn on the same generated file
    proc = subprocess.run(
        [sys.executable, "-m", "xuefen", "bench", "--sizes", "1k", "--records", "20", "--methods", "batch,duckdb",
         "--policies", "yongji", "--repeat", "1", "--single-runs", "0", "--cache", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("ratio ")]
    # once when the size is done, once in the summary at the end
    assert len(lines) == 2 and lines[0] == lines[1], proc.stdout[-2000:]
    m = re.fullmatch(r"ratio batch/duckdb yongji 1k: (\d+\.\d\d)", lines[0])
    assert m is not None, lines
    assert float(m.group(1)) > 0
