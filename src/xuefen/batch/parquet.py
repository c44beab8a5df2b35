"""Evaluating a Parquet file on every core.

The file's row groups are split into one contiguous range per worker process
(processes, not threads: the per-row work is many short NumPy calls, and two
threads spent much of their time waiting for each other's interpreter lock).
Each worker reads its range in large batches, cuts them at teacher boundaries
into pieces of about ``batch_rows`` rows, and evaluates the pieces one after
another, so its memory is bounded by the batch sizes, not by the file.

A teacher whose rows straddle two ranges must be evaluated whole: each worker
hands back, unevaluated, the rows of its first teacher (who may have begun in
the previous range) and of its last one (who may go on in the next); the
parent joins the pieces of one teacher and evaluates them.  The result is the
same as one process reading the file from start to end, which
``tests/test_batch_parquet.py`` checks.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import polars as pl
import pyarrow as pa
import pyarrow.compute as pac
import pyarrow.parquet as pq

from xuefen.batch import kernels
from xuefen.batch.columnar import Plan, evaluate_table
from xuefen.batch.evaluate import _Compiled, _evaluate_chunk, canonicalise
from xuefen.errors import InputError, Problem


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


@dataclass
class _Range:
    """What one worker hands back."""

    teachers: list[pl.DataFrame]
    head: pa.Table | None  # rows of its first teacher, unevaluated (None for the first range)
    tail: pa.Table | None  # rows of its last teacher, unevaluated (None for the last range)


def _open(policy_id: str, path: str, as_of: dt.date, options: dict[str, str] | None) -> tuple[Plan, pq.ParquetFile,
                                                                                               list[str]]:
    from xuefen.policy.loader import default_registry

    plan = Plan(_Compiled(default_registry().get(policy_id), options, as_of))
    schema = pq.read_schema(path)
    columns = plan.columns(schema.names)
    # teacher and record ids as dictionaries: integers to compare, not strings
    ids = [c for c in ("teacher_id", "record_id") if c in columns and
           (pa.types.is_string(schema.field(c).type) or pa.types.is_large_string(schema.field(c).type))]
    return plan, pq.ParquetFile(path, read_dictionary=ids), columns


def _run(plan: Plan, table: pa.Table, row_offset: int | None = None) -> pl.DataFrame:
    done = evaluate_table(plan, table, with_years=False, row_offset=row_offset)
    if done is None:
        frame = pl.from_arrow(table)
        assert isinstance(frame, pl.DataFrame)
        done = _evaluate_chunk(plan.comp, canonicalise(frame))
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


def _evaluate_range(policy_id: str, path: str, as_of: dt.date, options: dict[str, str] | None,
                    row_groups: list[int], first: bool, last: bool, batch_rows: int, read_rows: int,
                    threads: bool = True) -> _Range:
    _keep_freed_memory()
    plan, pf, columns = _open(policy_id, path, as_of, options)
    out: list[pl.DataFrame] = []
    head: pa.Table | None = None
    carry: pa.Table | None = None
    carry_at = 0  # the carried rows' place in the file
    # the file row of the range's first row, for error messages
    read_at = sum(pf.metadata.row_group(i).num_rows for i in range(row_groups[0])) if row_groups else 0

    def take(table: pa.Table, continues: bool, at: int) -> None:
        """Evaluate a read batch whose first row is file row ``at``;
        ``continues``: its last teacher goes on in the next batch (then her
        rows are carried, not evaluated yet)."""
        nonlocal head, carry, carry_at
        if carry is not None:
            table = pa.concat_tables([carry, table]).unify_dictionaries().combine_chunks()
            at = carry_at
            carry = None
        codes = _teacher_codes(table)
        starts = np.flatnonzero(np.r_[True, codes[1:] != codes[:-1]])
        begin = 0
        if not first and head is None:
            # the first teacher may have begun in the previous range
            if len(starts) == 1:
                carry, carry_at = table, at
                return
            head = table.slice(0, int(starts[1]))
            begin = int(starts[1])
            starts = starts[1:]
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
    previous: pa.Table | None = None
    for batch in pf.iter_batches(batch_size=read_rows, row_groups=row_groups, columns=columns, use_threads=threads):
        table = pa.Table.from_batches([batch])
        if previous is not None:
            take(previous, _first_last(previous)[1] == _first_last(table)[0], read_at)
            read_at += previous.num_rows
        previous = table
    if previous is not None:
        take(previous, not last, read_at)
    if not first and head is None:
        head, carry = carry, None  # the whole range is one teacher
    return _Range(out, head, carry)


def _split(pf: pq.ParquetFile, parts: int) -> list[list[int]]:
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
                     options: dict[str, str] | None = None, workers: int | None = None, batch_rows: int = 250_000,
                     read_rows: int = 500_000) -> pl.DataFrame:
    """One row per teacher (``teacher_id``, units, ``passed``, ``status``,
    ``total_milli``, ``routed``, ``cat:…``), in file order of each range."""
    path = str(path)
    pf = pq.ParquetFile(path)
    n_workers = workers or min(2, os.cpu_count() or 1)
    ranges = _split(pf, n_workers)
    args: list[tuple[Any, ...]] = [
        (policy_id, path, as_of, options, rgs, i == 0, i == len(ranges) - 1, batch_rows, read_rows)
        for i, rgs in enumerate(ranges)]
    try:
        if len(ranges) <= 1:
            results = [_evaluate_range(*a) for a in args] if ranges else []
        else:
            results = _in_processes(args)
    except InputError as exc:
        name = Path(path).name
        raise InputError([dataclasses.replace(p, file=p.file or name) for p in exc.problems]) from None
    plan, _, _ = _open(policy_id, path, as_of, options)
    frames: list[pl.DataFrame] = []
    pieces: list[pa.Table] = []
    for r in results:
        frames += r.teachers
        pieces += [p for p in (r.head, r.tail) if p is not None and p.num_rows]
    # join the pieces of one teacher (a teacher may straddle ranges) and evaluate them
    group: list[pa.Table] = []
    groups: list[list[pa.Table]] = []
    for piece in pieces:
        tid = piece.column("teacher_id")[0].as_py()
        if group and group[-1].column("teacher_id")[0].as_py() != tid:
            groups.append(group)
            group = []
        group.append(piece)
    if group:
        groups.append(group)
    for g in groups:
        table = g[0] if len(g) == 1 else pa.concat_tables(g).unify_dictionaries().combine_chunks()
        if len(ranges) > 1:
            # a teacher or two per range: not worth loading the compiled kernels here
            with kernels.disabled():
                frames.append(_run(plan, table))
        else:
            frames.append(_run(plan, table))
    teachers = pl.concat(frames, how="vertical_relaxed") if frames else pl.DataFrame()
    if output_path is not None:
        teachers.write_parquet(str(output_path))
    return teachers


def _in_processes(args: list[tuple[Any, ...]]) -> list[_Range]:
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
            # one process a core: their libraries' own thread pools would only
            # compete.  Polars' allocator returns freed pages at once: measured
            # here, about 100 MB less at the peak of each worker
            env = {**os.environ, "POLARS_MAX_THREADS": "1",
                   "_RJEM_MALLOC_CONF": os.environ.get("_RJEM_MALLOC_CONF", "dirty_decay_ms:0,muzzy_decay_ms:0")}
            procs.append(subprocess.Popen([sys.executable, "-m", "xuefen.batch.parquet", json.dumps(spec)],  # noqa: S603
                                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, env=env))
        errors = []
        problems: list[Problem] = []
        for i, proc in enumerate(procs):
            _, err = proc.communicate()
            if proc.returncode == BAD_INPUT:
                data = json.loads((Path(tmp) / str(i) / "problems.json").read_text(encoding="utf-8"))
                problems += [Problem(**p) for p in data]
            elif proc.returncode != 0:
                errors.append(err.strip().splitlines()[-1] if err.strip() else f"exit {proc.returncode}")
        if problems:
            raise InputError(problems)
        if errors:
            raise RuntimeError("批量评估的工作进程失败：" + "；".join(errors))
        return [_load(Path(tmp) / str(i)) for i in range(len(args))]


def _save(r: _Range, out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    (pl.concat(r.teachers, how="vertical_relaxed") if r.teachers else pl.DataFrame()).write_ipc(out / "teachers.arrow")
    for name, table in (("head", r.head), ("tail", r.tail)):
        if table is not None:
            with pa.ipc.new_file(str(out / f"{name}.arrow"), table.schema) as writer:
                writer.write_table(table)


def _load(out: Path) -> _Range:
    teachers = pl.read_ipc(out / "teachers.arrow")
    pieces: dict[str, pa.Table | None] = {}
    for name in ("head", "tail"):
        f = out / f"{name}.arrow"
        pieces[name] = pa.ipc.open_file(pa.memory_map(str(f))).read_all() if f.exists() else None
    return _Range([teachers] if teachers.height else [], pieces["head"], pieces["tail"])


def _worker(spec_text: str) -> int:
    spec = json.loads(spec_text)
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    out = Path(spec["out"])
    try:
        r = _evaluate_range(spec["policy"], spec["path"], dt.date.fromisoformat(spec["as_of"]), spec["options"],
                            spec["row_groups"], spec["first"], spec["last"], spec["batch_rows"], spec["read_rows"],
                            threads=False)
    except InputError as exc:
        # bad input is the user's to fix: hand the problems back whole
        out.mkdir(parents=True, exist_ok=True)
        (out / "problems.json").write_text(json.dumps([dataclasses.asdict(p) for p in exc.problems],
                                                      ensure_ascii=False), encoding="utf-8")
        return BAD_INPUT
    _save(r, out)
    return 0


if __name__ == "__main__":
    sys.exit(_worker(sys.argv[1]))
