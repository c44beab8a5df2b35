"""The national path on one machine: the Celery split of a province file
timed with 1 worker process against 2.

    python benchmarks/bench_distributed.py --file /work/bench/yongji-1M.parquet --repeat 3
    python benchmarks/bench_distributed.py --size 100k          # generated and cached under var/bench

Two Celery workers (``--pool solo --concurrency 1``: the task runs in the
worker's own process, one thread a library) are started once, on queues of
this run's own: worker A consumes ``…-1`` and ``…-2``, worker B only ``…-2``.
A run sent to ``…-1`` therefore has one worker, a run sent to ``…-2`` two,
and the two kinds of run alternate (1, 2, 2, 1, 1, 2 …) so that they share
the machine's load as it changes (other people's work on a shared machine):
the speed-up is the median of each round's ratio.  The idle worker of a
1-worker run only waits on its Redis connection.

Every run's result is checked row for row against the single-process
``xuefen`` batch run (``evaluate_parquet`` with one worker, in its own
process, timed too).  Printed: each run's wall time and the load average
when it began, the speed-up, the per-worker throughput in teachers·records
a second, each worker's peak memory, and a line a script can read:
``speedup celery 2/1 yongji 1M: 1.85``.  ``--json`` keeps every figure.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.bench_scale import POLICIES, ensure_data, parse_size, size_label, speed_probe  # noqa: E402


def load() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def reference(policy: str, path: Path, as_of: dt.date, out: Path) -> dict[str, Any]:
    """The single-process batch run, in a child so its time and memory are its own."""
    code = ("import datetime as dt, sys; from xuefen.batch.parquet import evaluate_parquet; "
            "evaluate_parquet(sys.argv[1], sys.argv[2], dt.date.fromisoformat(sys.argv[3]), sys.argv[4], workers=1)")
    from xuefen.batch.parquet import worker_env

    t0 = time.perf_counter()
    load_at = load()
    # our own interpreter, with arguments we built: no shell, no outside input
    proc = subprocess.Popen([sys.executable, "-c", code, policy, str(path), as_of.isoformat(), str(out)],
                            env=worker_env())
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"the single-process run failed (exit {proc.returncode})")
    return {"wall": time.perf_counter() - t0, "load": load_at, "peak_rss_mb": usage.ru_maxrss / 1024,
            "cpu": usage.ru_utime + usage.ru_stime}


def vm_hwm_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def start_workers(queue: str, env: dict[str, str]) -> tuple[list[subprocess.Popen[bytes]], list[str], float]:
    from xuefen.batch.distributed import app

    host = socket.gethostname()
    names = [f"bench-a-{os.getpid()}@{host}", f"bench-b-{os.getpid()}@{host}"]
    queues = [f"{queue}-1,{queue}-2", f"{queue}-2"]
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-m", "celery", "-A", "xuefen.batch.distributed", "worker",
                               "--pool", "solo", "--concurrency", "1", "-n", name, "-Q", q,
                               "--loglevel", "WARNING", "--without-gossip", "--without-mingle", "--without-heartbeat"],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
             for name, q in zip(names, queues, strict=True)]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        # a solo worker answers once it is consuming, after its warm-up
        if len(app.control.ping(destination=names, timeout=1) or []) == len(names):
            return procs, names, time.perf_counter() - t0
    for p in procs:
        p.terminate()
    raise SystemExit("the Celery workers did not answer within 120 s (is Redis up?)")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--file", type=Path, help="a generated province file (default: generate --size)")
    ap.add_argument("--size", default="1M", help="teachers, when no --file (e.g. 100k, 1M)")
    ap.add_argument("--records", type=int, default=100)
    ap.add_argument("--policy", default="yongji", choices=sorted(POLICIES))
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=ROOT / "var" / "bench")
    ap.add_argument("--repeat", type=int, default=3, help="rounds; each round runs 1 worker and 2 workers")
    ap.add_argument("--rows-per-task", type=parse_size, default=None,
                    help="rows a task (default: the module's ROWS_PER_TASK)")
    ap.add_argument("--transport", choices=["file", "inline"], default="file")
    ap.add_argument("--json", type=Path, help="write every figure here")
    args = ap.parse_args(argv)

    os.environ.setdefault("XUEFEN_BATCH_BROKER", "redis://127.0.0.1:6379/15")
    import polars as pl
    import pyarrow.parquet as pq

    from xuefen.batch import distributed
    from xuefen.batch.parquet import worker_env

    path = args.file or ensure_data(args.policy, parse_size(args.size), args.records, args.seed, args.cache, 3600)[0]
    meta = pq.read_metadata(path)
    kv = {k.decode().removeprefix("xuefen."): v.decode() for k, v in (meta.metadata or {}).items()}
    policy = kv.get("policy", args.policy)
    as_of = dt.date(int(kv.get("as_of_year", POLICIES[policy])), 12, 31)
    rows = meta.num_rows
    label = size_label(int(kv.get("teachers", 0)) or parse_size(args.size))
    rows_per_task = args.rows_per_task or distributed.ROWS_PER_TASK
    ranges = distributed.plan_tasks(path, rows_per_task)
    figures: dict[str, Any] = {"file": str(path), "policy": policy, "as_of": as_of.isoformat(), "rows": rows,
                               "row_groups": meta.num_row_groups, "tasks": len(ranges), "transport": args.transport,
                               "cpus": os.cpu_count(), "probe_start": speed_probe()}
    print(f"{path}: {rows:,} rows in {meta.num_row_groups} row groups, {policy}, as of {as_of}; "
          f"{len(ranges)} tasks of about {rows // max(len(ranges), 1):,} rows; results by {args.transport}")
    print(f"machine: {os.cpu_count()} CPUs, speed probe {figures['probe_start']:.2f} s, load {load()}")

    with tempfile.TemporaryDirectory(prefix="xuefen-bench-split-") as tmp:
        ref_path = Path(tmp) / "reference.parquet"
        figures["reference"] = reference(policy, path, as_of, ref_path)
        ref = pl.read_parquet(ref_path)
        r = figures["reference"]
        print(f"single process (evaluate_parquet, workers=1): {r['wall']:.2f} s, load {r['load']}, "
              f"peak {r['peak_rss_mb']:.0f} MB, {ref.height:,} teachers, {int(ref['passed'].sum()):,} passed")

        queue = f"xuefen-bench-{os.getpid()}"
        env = {**worker_env(), "PYTHONPATH": os.pathsep.join(p for p in (str(ROOT / "src"),
                                                                          os.environ.get("PYTHONPATH")) if p)}
        procs, _names, started = start_workers(queue, env)
        figures["workers_ready_s"] = started
        print(f"2 Celery workers ready (started and warmed) in {started:.1f} s")
        runs: list[dict[str, Any]] = []
        try:
            for k in range(args.repeat):
                for n in ((1, 2) if k % 2 == 0 else (2, 1)):
                    at = load()
                    t0 = time.perf_counter()
                    split = distributed.evaluate_split(policy, path, as_of, rows_per_task=rows_per_task,
                                                       transport=args.transport, queue=f"{queue}-{n}",
                                                       out_dir=Path(tmp) / "parts")
                    wall = time.perf_counter() - t0
                    same = split.teachers.equals(ref)
                    run = {"round": k + 1, "workers": n, "wall": wall, "load": at, "same": same,
                           "workers_seen": len(split.workers), "gather_s": split.gather_s,
                           "task_cpu_s": sum(x["cpu_s"] for x in split.reports),
                           "task_s": sum(x["seconds"] for x in split.reports),
                           "result_bytes": sum(x["bytes"] for x in split.reports),
                           "peak_rss_mb": max(x["peak_rss"] for x in split.reports) / 2**20}
                    runs.append(run)
                    print(f"round {k + 1}, {n} worker{'s' if n > 1 else ' '}: {wall:6.2f} s  load {at}  "
                          f"tasks' CPU {run['task_cpu_s']:.1f} s  gather {split.gather_s:.2f} s  "
                          f"{'same as the single-process run' if same else 'DIFFERENT from the single-process run'}"
                          f"{'' if split.workers and len(split.workers) == n else f' (seen {len(split.workers)} workers)'}")
                    if not same:
                        figures["runs"] = runs
                        raise SystemExit(1)
        finally:
            figures["worker_peak_rss_mb"] = [vm_hwm_mb(p.pid) for p in procs]
            for p in procs:
                p.terminate()
            for p in procs:
                p.wait(timeout=60)
    figures["runs"] = runs
    figures["probe_end"] = speed_probe()
    walls = {n: [r["wall"] for r in runs if r["workers"] == n] for n in (1, 2)}
    ratios = [a / b for a, b in zip(walls[1], walls[2], strict=True)]
    speedup = statistics.median(ratios)
    figures["speedup"] = speedup
    print()
    for n in (1, 2):
        med = statistics.median(walls[n])
        per_worker = rows / med / n
        figures[f"median_wall_{n}"] = med
        figures[f"rows_per_s_per_worker_{n}"] = per_worker
        print(f"{n} worker{'s' if n > 1 else ''}: median {med:.2f} s (min {min(walls[n]):.2f}), "
              f"{rows / med / 1e6:.1f}M teachers·records/s, {per_worker / 1e6:.2f}M per worker process")
    print(f"speed-up 2 workers over 1, per round: {', '.join(f'{x:.2f}' for x in ratios)}; median {speedup:.2f}")
    print(f"worker peak RSS: {', '.join(f'{x:.0f} MB' for x in figures['worker_peak_rss_mb'])}; "
          f"this process {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB; "
          f"speed probe at the end {figures['probe_end']:.2f} s, load {load()}")
    print(f"speedup celery 2/1 {policy} {label}: {speedup:.2f}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
