"""Beyond one machine: the batch evaluation of a Parquet file split into
row-group ranges, one Celery task a range.

A task reads only its own row groups (and, when its last teacher goes on
into the next range, that teacher's rows there) with the Parquet driver's
range evaluator (``xuefen.batch.parquet``): the range owns every teacher whose
first row lies in it, skips the rows of a teacher who began in the previous
range, and reads on until its own last teacher ends.  So no teacher is
evaluated by two tasks or in two halves, whatever the row groups cut, and
the tasks' results concatenated in range order are the single-process run's
rows, in the same order; ``tests/test_distributed.py`` checks that with two
worker processes, on a generated file and on one re-written with row groups
that cut teachers in two.

A task writes its per-teacher frame to an Arrow IPC file in a directory the
caller and the workers share and returns a summary of a few numbers (the
result backend then holds about 300 bytes a task, not the frame); the
caller reads the files back.  ``transport="inline"`` returns the frame in the
task's result instead (hex-encoded Arrow IPC in JSON), for workers with no
shared directory (figures of both in ``docs/scale.md``).

Broker and result backend: ``XUEFEN_BATCH_BROKER`` (default
``redis://127.0.0.1:6379/15``).  Start one worker process a core with

    celery -A xuefen.batch.distributed worker --pool solo --concurrency 1 -n w1@%h

(``benchmarks/bench_distributed.py`` does, and times 1 worker against 2.)
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import io
import math
import os
import shutil
import socket
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from celery import Celery, signals

from xuefen.errors import InputError, Problem

# Polars and the engine are imported where they are used: a worker sets its
# libraries' thread counts before it loads them (``_warm``)
if TYPE_CHECKING:
    import polars as pl

BROKER = os.environ.get("XUEFEN_BATCH_BROKER", "redis://127.0.0.1:6379/15")
app = Celery("xuefen.batch", broker=BROKER, backend=BROKER)
app.conf.update(
    task_serializer="json", result_serializer="json", accept_content=["json"],
    # a worker takes one task at a time, so an idle worker finds the queue's
    # tasks still there rather than reserved by a busy one
    worker_prefetch_multiplier=1,
    # a task is acknowledged when it has finished: a worker that dies in the
    # middle leaves it on the queue for another (its output file is written
    # under a fixed name, by rename, so a second run of it replaces the first)
    task_acks_late=True, task_reject_on_worker_lost=True,
    # Redis hands an unacknowledged task to another worker after this many
    # seconds: longer than any task (10M rows: 1.4 s of CPU, 2–4 s of wall
    # time on a loaded machine, measured here)
    broker_transport_options={"visibility_timeout": 3600},
    result_expires=3600)

ROWS_PER_TASK = 10_000_000  # about 100k teachers × 100 records: why, in docs/scale.md
BATCH_ROWS = 500_000  # the Parquet driver's piece and read sizes (see evaluate_parquet)
READ_ROWS = 500_000

_warm = False  # whether this process has loaded Numba's kernels and the engine


def _warm_up() -> None:
    """Load what every task needs once, when the worker starts, not in its
    first task: Numba's kernels, pyarrow, Polars, the engine and the policy
    files (about 1.1 s, docs/performance.md).  One thread a library: a worker
    is one process on one core, as the Parquet driver's workers are."""
    global _warm
    import gc

    from xuefen.batch.parquet import worker_env

    if "polars" not in sys.modules:
        # read when Polars and OpenBLAS start; the caller's own setting wins
        for key, value in worker_env().items():
            os.environ.setdefault(key, value)
    import polars  # noqa: F401
    import pyarrow as pa

    from xuefen.batch import columnar, evaluate, kernels  # noqa: F401
    from xuefen.policy.loader import default_registry

    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    kernels.load()
    default_registry()
    # all of it lives as long as the process: the collector need not walk it
    gc.freeze()
    _warm = True


@signals.worker_init.connect  # type: ignore[untyped-decorator]
def _on_worker_init(sender: Any = None, **_: Any) -> None:
    # the solo pool runs tasks in this process; a prefork pool's children
    # warm up in ``worker_process_init`` (a parent that had started Polars'
    # threads would fork them half-alive)
    # (``pool_cls`` is still the name given on the command line here)
    if "solo" in str(getattr(sender, "pool_cls", "")):
        _warm_up()


@signals.worker_process_init.connect  # type: ignore[untyped-decorator]
def _on_worker_process_init(**_: Any) -> None:
    _warm_up()


def _peak_rss() -> int:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@app.task(name="xuefen.batch.evaluate_rows")  # type: ignore[untyped-decorator]
def evaluate_rows(policy_id: str, path: str, as_of: str, start: int, stop: int, last: bool,
                  options: dict[str, str] | None = None, out: str | None = None) -> dict[str, Any]:
    """Evaluate the teachers whose first row lies in row groups
    ``start``…``stop - 1``.  With ``out`` the per-teacher frame goes to that
    Arrow IPC file and the result is its summary; without, the frame is in
    the result (``"teachers"``, hex)."""
    import polars as pl

    from xuefen.batch.parquet import evaluate_range

    t0, c0 = time.perf_counter(), time.process_time()
    try:
        frames = evaluate_range(policy_id, path, dt.date.fromisoformat(as_of), options, list(range(start, stop)),
                                 start == 0, last, BATCH_ROWS, READ_ROWS, threads=False,
                                 compiled=True if _warm else None)
    except InputError as exc:
        # the user's to fix: the problems go back whole, not as a task failure
        # (a retry could not mend the file)
        return {"problems": [dataclasses.asdict(p) for p in exc.problems]}
    teachers = pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()
    report: dict[str, Any] = {
        "worker": f"{socket.gethostname()}:{os.getpid()}", "start": start, "stop": stop,
        "teachers": teachers.height,
        "passed": int(teachers.get_column("passed").sum()) if teachers.height else 0,
        "routed": int(teachers.get_column("routed").sum()) if teachers.height else 0,
        "total_milli": int(teachers.get_column("total_milli").sum()) if teachers.height else 0,
        "evaluate_s": round(time.perf_counter() - t0, 3), "warm": _warm}
    # zstd: a seventh of the bytes (about 11 bytes a teacher instead of 76,
    # measured at 100k teachers) for 8 ms a task; what a shared store or the
    # result backend holds and carries
    if out is not None:
        part = Path(out)
        tmp = part.with_name(part.name + f".{os.getpid()}.tmp")
        teachers.write_ipc(tmp, compression="zstd")
        os.replace(tmp, part)
        report["bytes"] = part.stat().st_size
    else:
        buf = io.BytesIO()
        teachers.write_ipc(buf, compression="zstd")
        report["frame"] = buf.getvalue().hex()
        report["bytes"] = buf.tell()
    report.update(seconds=round(time.perf_counter() - t0, 3), cpu_s=round(time.process_time() - c0, 3),
                  peak_rss=_peak_rss())
    return report


def plan_tasks(path: str | Path, rows_per_task: int = ROWS_PER_TASK, tasks: int | None = None) -> list[tuple[int, int]]:
    """Contiguous row-group ranges ``(start, stop)`` of about equal row counts:
    ``tasks`` of them, or as many as make about ``rows_per_task`` rows each
    (never more than the file has row groups)."""
    import pyarrow.parquet as pq

    from xuefen.batch.parquet import split_row_groups

    pf = pq.ParquetFile(str(path))
    n_groups = pf.metadata.num_row_groups
    if n_groups == 0:
        return []
    want = tasks or math.ceil(pf.metadata.num_rows / max(rows_per_task, 1))
    return [(r[0], r[-1] + 1) for r in split_row_groups(pf, max(1, min(want, n_groups)))]


@dataclasses.dataclass
class Split:
    teachers: pl.DataFrame  # as ``evaluate_parquet`` returns, in the same order
    workers: set[str]  # host:pid of every worker that took a task
    reports: list[dict[str, Any]]  # each task's summary, in range order
    gather_s: float  # reading the tasks' results back and concatenating them


def evaluate_split(policy_id: str, path: str | Path, as_of: dt.date, options: dict[str, str] | None = None,
                   rows_per_task: int = ROWS_PER_TASK, tasks: int | None = None, out_dir: str | Path | None = None,
                   transport: str = "file", queue: str = "celery", timeout: float = 3600) -> Split:
    """Dispatch one task per row-group range and gather the results in range
    order.  ``out_dir``: where the tasks write their frames (a directory the
    workers can write to; by default a temporary one, removed afterwards,
    which serves workers on this machine only).  ``queue``: the workers'
    queue (``celery -Q``), for runs that must not share their workers."""
    import polars as pl

    if transport not in ("file", "inline"):
        raise ValueError(f"transport: file or inline, not {transport!r}")
    path = str(Path(path).resolve())
    ranges = plan_tasks(path, rows_per_task, tasks)
    own_dir = out_dir is None and transport == "file"
    base = Path(tempfile.mkdtemp(prefix="xuefen-split-")) if own_dir else Path(out_dir or ".")
    run = base / uuid.uuid4().hex[:12]
    if transport == "file":
        run.mkdir(parents=True, exist_ok=True)
    try:
        jobs = [evaluate_rows.apply_async(
                    (policy_id, path, as_of.isoformat(), start, stop, k == len(ranges) - 1, options,
                     str(run / f"{k:05d}.arrow") if transport == "file" else None), queue=queue)
                for k, (start, stop) in enumerate(ranges)]
        reports = []
        for job in jobs:
            reports.append(job.get(timeout=timeout))
            job.forget()  # read once: the backend need not keep it for result_expires
        problems = [Problem(**p) for r in reports for p in r.get("problems", [])]
        if problems:
            name = Path(path).name
            raise InputError([dataclasses.replace(p, file=p.file or name) for p in problems])
        t0 = time.perf_counter()
        frames = []
        for k, r in enumerate(reports):
            if transport == "file":
                frames.append(pl.read_ipc(run / f"{k:05d}.arrow"))
            else:
                frames.append(pl.read_ipc(io.BytesIO(bytes.fromhex(r.pop("frame")))))
        frames = [f for f in frames if f.height]
        teachers = pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()
        gather_s = time.perf_counter() - t0
    finally:
        if own_dir:
            shutil.rmtree(base, ignore_errors=True)
        elif transport == "file":
            shutil.rmtree(run, ignore_errors=True)
    return Split(teachers, {r["worker"] for r in reports}, reports, gather_s)
