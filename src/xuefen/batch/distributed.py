"""Beyond one machine: the batch evaluation split by organisation unit across
Celery workers.

Each task evaluates the teachers of one unit (a district, say) from the shared
Parquet file — workers read only their unit's rows (Parquet filter pushdown) —
and returns its per-teacher results as Arrow IPC bytes.  Teachers never span
units, and a teacher's verdict depends only on her own rows, so the union of
the units' results equals the single-process run; ``tests/test_distributed.py``
checks exactly that with two worker processes.

Broker and result backend: ``XUEFEN_BATCH_BROKER`` (default
``redis://127.0.0.1:6379/15``).  Start workers with

    celery -A xuefen.batch.distributed worker --concurrency 1 -n w1@%h
"""

from __future__ import annotations

import datetime as dt
import io
import os
from pathlib import Path
from typing import Any

import polars as pl
from celery import Celery

BROKER = os.environ.get("XUEFEN_BATCH_BROKER", "redis://127.0.0.1:6379/15")
app = Celery("xuefen.batch", broker=BROKER, backend=BROKER)
app.conf.update(task_serializer="json", result_serializer="json", accept_content=["json"],
                worker_prefetch_multiplier=1, task_acks_late=True, result_expires=3600)


def _frame_bytes(df: pl.DataFrame) -> str:
    buf = io.BytesIO()
    df.write_ipc(buf)
    return buf.getvalue().hex()


def _bytes_frame(data: str) -> pl.DataFrame:
    return pl.read_ipc(io.BytesIO(bytes.fromhex(data)))


@app.task(name="xuefen.batch.evaluate_unit")  # type: ignore[untyped-decorator]
def evaluate_unit(policy_id: str, path: str, as_of: str, level: str, unit: str,
                  options: dict[str, str] | None = None) -> dict[str, Any]:
    """Evaluate one unit's teachers; returns the worker's host name with the
    results so a run can show it was really split."""
    import socket

    from xuefen.batch import evaluate_frame
    from xuefen.policy.loader import default_registry

    frame = pl.read_parquet(path).filter(pl.col(level).cast(pl.Utf8) == unit)
    result = evaluate_frame(default_registry().get(policy_id), frame, dt.date.fromisoformat(as_of), options)
    return {"worker": f"{socket.gethostname()}:{os.getpid()}", "teachers": _frame_bytes(result.teachers)}


def units_of(path: str | Path, level: str) -> list[str]:
    return sorted(v for v in pl.scan_parquet(str(path)).select(pl.col(level).cast(pl.Utf8).unique())
                  .collect().get_column(level).to_list() if v is not None)


def evaluate_split(policy_id: str, path: str | Path, as_of: dt.date, level: str = "district",
                   options: dict[str, str] | None = None, timeout: float = 600) -> tuple[pl.DataFrame, set[str]]:
    """Dispatch one task per unit and gather the results in unit order."""
    jobs = [evaluate_unit.delay(policy_id, str(path), as_of.isoformat(), level, unit, options)
            for unit in units_of(path, level)]
    frames = []
    workers: set[str] = set()
    for job in jobs:
        out = job.get(timeout=timeout)
        workers.add(out["worker"])
        frames.append(_bytes_frame(out["teachers"]))
    return pl.concat(frames, how="vertical_relaxed"), workers
