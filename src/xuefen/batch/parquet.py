"""Evaluating a Parquet file on every core.

The file's row groups are split into one contiguous range per worker process
(processes, not threads: the per-row work is many short NumPy calls, and two
threads spent much of their time waiting for each other's interpreter lock).
Each worker reads its range in large batches, cuts them at teacher boundaries
into pieces of about ``batch_rows`` rows, and evaluates the pieces one after
another, so its memory is bounded by the batch sizes, not by the file.

A teacher whose rows straddle two ranges must be evaluated whole: she
belongs to the range where her first row is, whose worker reads on into the
next range until her rows end, and the next worker skips them.  So the parent
evaluates nothing: it starts the workers and concatenates what they return.
The result is the same as one process reading the file from start to end,
which ``tests/test_batch_parquet.py`` checks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pac
import pyarrow.parquet as pq

from xuefen.batch import kernels
from xuefen.errors import InputError, Problem

# Polars, the engine and the rule tables are imported where they are used:
# the parent process starts its workers first (see xuefen.batch)
if TYPE_CHECKING:
    import polars as pl

    from xuefen.batch.columnar import Plan


def _keep_freed_memory() -> None:
    """Ask glibc to serve large arrays from its heap and keep freed memory for
    reuse.  By default every array above a few megabytes is a fresh mapping
    that the kernel zero-fills page by page on first touch and unmaps on free;
    a batch allocates thousands of them, and measured here that page faulting
    took about 40 % of the evaluation time.  Peak memory is unchanged (the
    same arrays are alive at once); only its return to the system waits for
    the end of the process.  No effect on other C libraries."""
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    mallopt(m_mmap_threshold, 1 << 30)
    mallopt(m_trim_threshold, (1 << 31) - 1)


BAD_INPUT = 3  # a worker's exit status when the file has problems (written to problems.json)
DONE = "done"  # what a worker prints once its results are written


def _open(policy_id: str, path: str, as_of: dt.date, options: dict[str, str] | None) -> tuple[Plan, pq.ParquetFile,
                                                                                               list[str]]:
    from xuefen.batch.columnar import Plan
    from xuefen.batch.compile import CompiledPolicy
    from xuefen.policy.loader import default_registry

    plan = Plan(CompiledPolicy(default_registry().get(policy_id), options, as_of))
    schema = pq.read_schema(path)
    columns = plan.columns(schema.names)
    # teacher and record ids as dictionaries: integers to compare, not
    # strings; a teacher's leaves too, the same text on each of her rows
    # (read as a dictionary in half the time, measured here)
    coded = [c for c in ("teacher_id", "record_id", "leaves") if c in columns and
             (pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type))]
    return plan, pq.ParquetFile(path, read_dictionary=coded), columns


def _run(plan: Plan, table: pa.Table, row_offset: int | None = None) -> pl.DataFrame:
    import polars as pl

    from xuefen.batch.columnar import evaluate_table
    from xuefen.batch.evaluate import evaluate_chunk
    from xuefen.batch.stage1 import canonicalise

    done = evaluate_table(plan, table, with_years=False, row_offset=row_offset)
    if done is None:
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        done = evaluate_chunk(plan.comp, canonicalise(frame))
    return done[0]


def _teacher_codes(table: pa.Table) -> np.ndarray:
    ids = table.column("teacher_id").combine_chunks()
    if not pa.types.is_dictionary(ids.type):
        ids = pac.dictionary_encode(ids)
    codes: np.ndarray = ids.indices.to_numpy(zero_copy_only=False)
    return codes


def _first_last(table: pa.Table) -> tuple[Any, Any]:
    ids = table.column("teacher_id")
    return ids[0].as_py(), ids[len(ids) - 1].as_py()


def _last_teacher(pf: pq.ParquetFile, group: int) -> Any:
    ids = pf.read_row_group(group, columns=["teacher_id"]).column("teacher_id")
    return ids[len(ids) - 1].as_py() if len(ids) else None


def _own_batches(pf: pq.ParquetFile, row_groups: list[int], columns: list[str], read_rows: int, first: bool,
                 last: bool, threads: bool) -> Iterator[tuple[pa.Table, int]]:
    """The rows of the teachers this range owns, in read batches with the
    file row of each batch's first row.  A range owns every teacher whose
    first row lies in it: it skips the rows of a teacher who began in the
    previous range, and reads on into the next range until its own last
    teacher ends."""
    at = sum(pf.metadata.row_group(i).num_rows for i in range(row_groups[0])) if row_groups else 0
    skip = None if first or not row_groups else _last_teacher(pf, row_groups[0] - 1)
    last_id = None
    for batch in pf.iter_batches(batch_size=read_rows, row_groups=row_groups, columns=columns, use_threads=threads):
        table = pa.Table.from_batches([batch])
        if skip is not None:
            ids = _teacher_codes_of(table, skip)
            own = int(np.argmax(~ids)) if not ids.all() else table.num_rows
            at += own
            if own == table.num_rows:
                continue
            table = table.slice(own)
            skip = None
        last_id = _first_last(table)[1]
        yield table, at
        at += table.num_rows
    if last or last_id is None or not row_groups:
        return
    rest = list(range(row_groups[-1] + 1, pf.metadata.num_row_groups))
    for batch in pf.iter_batches(batch_size=read_rows, row_groups=rest, columns=columns, use_threads=threads):
        table = pa.Table.from_batches([batch])
        ids = _teacher_codes_of(table, last_id)
        n = int(np.argmax(~ids)) if not ids.all() else table.num_rows
        if n:
            yield table.slice(0, n), at
            at += n
        if n < table.num_rows:
            return


def _teacher_codes_of(table: pa.Table, teacher_id: Any) -> np.ndarray:
    """Which rows belong to ``teacher_id``."""
    mask: np.ndarray = pac.equal(table.column("teacher_id"), pa.scalar(teacher_id)).to_numpy(zero_copy_only=False)
    return mask


# Below this many rows a range is evaluated with the NumPy formulation: loading
# Numba and the compiled kernels costs a process more than they save on a small
# range.  Measured here (bench_scale.py, wall time): 10k teachers × 100 records,
# one process of 1M rows, 0.9 s NumPy against 1.3 s compiled; 100k teachers, two
# workers of 5M rows, 3.2 s against 2.7 s.  Break-even about 3M rows.
KERNEL_MIN_ROWS = 3_000_000


def evaluate_range(policy_id: str, path: str, as_of: dt.date, options: dict[str, str] | None,
                    row_groups: list[int], first: bool, last: bool, batch_rows: int, read_rows: int,
                    threads: bool = True, freeze: bool = False, compiled: bool | None = None) -> list[pl.DataFrame]:
    """Every teacher whose first row lies in ``row_groups``, whole.
    ``freeze``: the process does nothing else (a worker), so what the
    engine, Polars and Numba loaded may be kept from the collector.
    ``compiled``: use the Numba kernels whatever the range's size (a
    long-lived worker that has loaded them already); by default only for
    ranges large enough to pay for loading them."""
    _keep_freed_memory()
    plan, pf, columns = _open(policy_id, path, as_of, options)
    rows = sum(pf.metadata.row_group(i).num_rows for i in row_groups)
    if compiled is None:
        compiled = rows >= KERNEL_MIN_ROWS
    if freeze:
        if compiled:
            kernels.load()
        # everything loaded so far lives as long as the process: the
        # collector need not walk it on every full collection (measured
        # here: 0.045 s a full collection otherwise, one per 10M rows)
        gc.freeze()
    with contextlib.nullcontext() if compiled else kernels.disabled():
        return _evaluate_rows(plan, pf, columns, row_groups, first, last, batch_rows, read_rows, threads)


def _evaluate_rows(plan: Plan, pf: pq.ParquetFile, columns: list[str], row_groups: list[int], first: bool,
                   last: bool, batch_rows: int, read_rows: int, threads: bool) -> list[pl.DataFrame]:
    out: list[pl.DataFrame] = []
    carry: pa.Table | None = None
    carry_at = 0  # the carried rows' place in the file

    def take(table: pa.Table, continues: bool, at: int) -> None:
        """Evaluate a read batch whose first row is file row ``at``;
        ``continues``: its last teacher goes on in the next batch (then her
        rows are carried, not evaluated yet)."""
        nonlocal carry, carry_at
        codes = _teacher_codes(table)
        if carry is not None:
            # the carried teacher's rows and the rest of hers at the head of
            # this batch make a piece of their own: joining the carry to the
            # whole batch would copy every column of it
            # (the previous batch ended with her, so this one begins with her)
            other = codes != codes[0]
            head = int(np.argmax(other)) if other.any() else len(codes)
            if head == len(codes) and continues:
                carry = pa.concat_tables([carry, table]).unify_dictionaries()
                return
            joined = pa.concat_tables([carry, table.slice(0, head)]).unify_dictionaries().combine_chunks()
            out.append(_run(plan, joined, carry_at))
            carry = None
            if head == table.num_rows:
                return
            table, codes, at = table.slice(head), codes[head:], at + head
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        begin = 0
        end_of_body = table.num_rows
        if continues:
            end_of_body = int(starts[-1])
            carry, carry_at = table.slice(end_of_body), at + end_of_body
        cuts = np.append(starts[starts < end_of_body], end_of_body)  # where a piece may end
        while begin < end_of_body:
            want = begin + batch_rows
            end = end_of_body if want >= end_of_body else int(cuts[np.searchsorted(cuts, want)])
            out.append(_run(plan, table.slice(begin, end - begin), at + begin))
            begin = end

    # one batch of lookahead: a batch is cut only where a teacher really ends
    previous: tuple[pa.Table, int] | None = None
    for table, at in _own_batches(pf, row_groups, columns, read_rows, first, last, threads):
        if previous is not None:
            take(previous[0], _first_last(previous[0])[1] == _first_last(table)[0], previous[1])
        previous = (table, at)
    if previous is not None:
        take(previous[0], False, previous[1])
    return out


def split_row_groups(pf: pq.ParquetFile, parts: int) -> list[list[int]]:
    """Contiguous row-group ranges of about equal row counts."""
    rows = [pf.metadata.row_group(i).num_rows for i in range(pf.metadata.num_row_groups)]
    total = sum(rows)
    ranges: list[list[int]] = [[] for _ in range(parts)]
    done = 0
    for i, n in enumerate(rows):
        k = min(parts - 1, (done * parts) // max(total, 1))
        ranges[k].append(i)
        done += n
    return [r for r in ranges if r]


def evaluate_parquet(policy_id: str, path: str | Path, as_of: dt.date, output_path: str | Path | None = None,
                     options: dict[str, str] | None = None, workers: int | None = None, batch_rows: int = 500_000,
                     read_rows: int = 500_000) -> pl.DataFrame:
    """One row per teacher (``teacher_id``, units, ``passed``, ``status``,
    ``total_milli``, ``routed``, ``cat:…``), in file order of each range.

    ``batch_rows``: a piece's size.  Each piece costs about 4 ms however
    small it is (Polars calls over its teachers, the rule tables).  Pieces
    were 250k rows while the NumPy scope stage held a dozen line arrays per
    piece (500k then peaked at 2.0 GB for two workers at 1M teachers, against
    1.7 GB); the compiled scope pass keeps a teacher's lines in small buffers
    instead, so pieces of 500k rows peak at 1.5–1.7 GB for the two workers at
    1M teachers × 100 records (永吉, 山东; ``xuefen bench``), under the 2 GB
    goal, and spend fewer of those 4 ms."""
    path = str(path)
    pf = pq.ParquetFile(path)
    n_workers = workers or min(2, os.cpu_count() or 1)
    ranges = split_row_groups(pf, n_workers)
    args: list[tuple[Any, ...]] = [
        (policy_id, path, as_of, options, rgs, i == 0, i == len(ranges) - 1, batch_rows, read_rows)
        for i, rgs in enumerate(ranges)]
    reapers: list[threading.Thread] = []
    try:
        try:
            if len(ranges) <= 1:
                results = [evaluate_range(*a) for a in args] if ranges else []
            else:
                results = _in_processes(args, reapers)
        except InputError as exc:
            name = Path(path).name
            raise InputError([dataclasses.replace(p, file=p.file or name) for p in exc.problems]) from None
        import polars as pl

        frames = [f for r in results for f in r]
        teachers = pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()
        if output_path is not None:
            teachers.write_parquet(str(output_path))
    finally:
        # the workers have finished by now, or nearly: no process is left
        # behind, and their CPU time counts as this process's children's
        for reaper in reapers:
            reaper.join()
    return teachers


def worker_env() -> dict[str, str]:
    """The environment of a single-threaded evaluation worker (ours, or a
    Celery worker of ``xuefen.batch.distributed``).  One process a core:
    their libraries' own thread pools would only compete.  Polars' allocator
    returns freed pages at once: measured here, about 100 MB less at the peak
    of each worker.  Arrow's allocator (mimalloc) keeps the pages it frees: by
    default it hands them back within milliseconds, and the kernel zeroing
    them again for the next read batch took about 6 % of the time.  NumPy's
    OpenBLAS starts threads of its own: perf showed one of them spinning for
    1.8 % of a worker's samples, time taken from the other worker."""
    return {**os.environ, "POLARS_MAX_THREADS": "1", "OPENBLAS_NUM_THREADS": "1",
            "_RJEM_MALLOC_CONF": os.environ.get("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0"),
            "MIMALLOC_PURGE_DELAY": os.environ.get("MIMALLOC_PURGE_DELAY", "-1")}


def _in_processes(args: list[tuple[Any, ...]], reapers: list[threading.Thread]) -> list[list[pl.DataFrame]]:
    """Run each range in its own interpreter (``python -m xuefen.batch.parquet``)
    and read back what it wrote.  A plain subprocess rather than
    multiprocessing: it neither forks Polars' thread pool nor re-imports the
    caller's main module."""
    with tempfile.TemporaryDirectory(prefix="xuefen-batch-") as tmp:
        procs = []
        for i, a in enumerate(args):
            policy_id, path, as_of, options, rgs, first, last, batch_rows, read_rows = a
            spec = {"policy": policy_id, "path": path, "as_of": as_of.isoformat(), "options": options,
                    "row_groups": rgs, "first": first, "last": last, "batch_rows": batch_rows,
                    "read_rows": read_rows, "out": str(Path(tmp) / str(i))}
            # our own interpreter and module, with arguments we built: no shell, no outside input
            env = worker_env()
            err_path = Path(tmp) / f"{i}.stderr"
            with err_path.open("w", encoding="utf-8") as err:
                procs.append(subprocess.Popen([sys.executable, "-m", "xuefen.batch.parquet", json.dumps(spec)],  # noqa: S603
                                              stdout=subprocess.PIPE, stderr=err, text=True, env=env))
        import polars  # noqa: F401  (loaded while the workers start, for reading their results)

        errors = []
        problems: list[Problem] = []
        for i, proc in enumerate(procs):
            assert proc.stdout is not None
            # a worker says when its results are written, then exits: giving
            # back its memory took about 0.2 s at 1M teachers, and nothing
            # here needs to wait for that: a thread in ``reapers`` waits
            said = ""
            for line in proc.stdout:  # anything a library printed comes first
                said = line.strip()
                if said == DONE:
                    break
            proc.stdout.close()
            if said == DONE:
                reapers.append(threading.Thread(target=proc.wait, daemon=True))
                reapers[-1].start()
                continue
            proc.wait()
            if proc.returncode == BAD_INPUT:
                data = json.loads((Path(tmp) / str(i) / "problems.json").read_text(encoding="utf-8"))
                problems += [Problem(**p) for p in data]
            else:
                err_text = (Path(tmp) / f"{i}.stderr").read_text(encoding="utf-8", errors="replace").strip()
                errors.append(err_text.splitlines()[-1] if err_text else f"exit {proc.returncode}")
        if problems:
            raise InputError(problems)
        if errors:
            raise RuntimeError("批量评估的工作进程失败：" + "；".join(errors))
        return [_load(Path(tmp) / str(i)) for i in range(len(args))]


def _save(frames: list[pl.DataFrame], out: Path) -> None:
    import polars as pl

    out.mkdir(parents=True, exist_ok=True)
    (pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()).write_ipc(out / "teachers.arrow")


def _load(out: Path) -> list[pl.DataFrame]:
    import polars as pl

    teachers = pl.read_ipc(out / "teachers.arrow")
    return [teachers] if teachers.height else []


def _worker(spec_text: str) -> int:
    spec = json.loads(spec_text)
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    out = Path(spec["out"])
    try:
        r = evaluate_range(spec["policy"], spec["path"], dt.date.fromisoformat(spec["as_of"]), spec["options"],
                            spec["row_groups"], spec["first"], spec["last"], spec["batch_rows"], spec["read_rows"],
                            threads=False, freeze=True)
    except InputError as exc:
        # bad input is the user's to fix: hand the problems back whole
        out.mkdir(parents=True, exist_ok=True)
        (out / "problems.json").write_text(json.dumps([dataclasses.asdict(p) for p in exc.problems],
                                                      ensure_ascii=False), encoding="utf-8")
        return BAD_INPUT
    _save(r, out)
    print(DONE, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
