"""Where one batch worker's time goes, for a generated Parquet file.

    python benchmarks/profile_batch.py FILE [--groups 10] [--runs 3] [--profile] [--columns]

Runs what one worker process of ``evaluate_parquet`` runs (``evaluate_range``
over the first ``--groups`` row groups, compiled kernels on) in this process,
once to load the compiled code, then ``--runs`` times, and prints the CPU
time of each run.  ``--profile``: one run under cProfile instead (the top 30
functions by own time).  ``--columns``: the time to read each column the
policy needs, alone, one thread.  The policy and the date are the file's own
(``xuefen.policy``, ``xuefen.as_of_year`` in its metadata, as
``benchmarks/generate.py`` writes them).  Not a test: the figures are this
machine's, and docs/performance.md quotes them with the command.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import gc
import os
import pstats
import resource
import sys
import time

# one worker's settings (xuefen.batch.parquet._in_processes): one thread each
os.environ.setdefault("POLARS_MAX_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import pyarrow as pa
import pyarrow.parquet as pq

from xuefen.batch import kernels, parquet


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("file")
    ap.add_argument("--groups", type=int, default=10, help="row groups to evaluate (default 10: 10M rows)")
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--rows", type=int, default=500_000, help="piece and read batch size (the driver's default)")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--columns", action="store_true")
    args = ap.parse_args(argv)
    pa.set_cpu_count(1)
    pa.set_io_thread_count(1)
    meta = pq.read_schema(args.file).metadata or {}
    policy = meta[b"xuefen.policy"].decode()
    as_of = dt.date(int(meta[b"xuefen.as_of_year"]), 12, 31)
    groups = list(range(min(args.groups, pq.ParquetFile(args.file).metadata.num_row_groups)))
    kernels.load()
    parquet._keep_freed_memory()

    # the compiled kernels however few the rows, as a worker of a large file
    parquet.KERNEL_MIN_ROWS = 0

    def run() -> None:
        parquet.evaluate_range(policy, args.file, as_of, None, groups, True, True, args.rows, args.rows,
                                threads=False)

    run()  # loads the compiled code from Numba's cache
    gc.freeze()
    if args.columns:
        _, pf, columns = parquet._open(policy, args.file, as_of, None)
        for c in columns:
            t0 = time.process_time()
            for _batch in pf.iter_batches(batch_size=args.rows, columns=[c], row_groups=groups, use_threads=False):
                pass
            print(f"read {c}: {time.process_time() - t0:.3f} s CPU")
    if args.profile:
        prof = cProfile.Profile()
        prof.enable()
        run()
        prof.disable()
        pstats.Stats(prof).sort_stats("tottime").print_stats(30)
    else:
        times = []
        for _ in range(args.runs):
            t0 = time.process_time()
            run()
            times.append(time.process_time() - t0)
        print(f"{policy}, {len(groups)} row groups: CPU s per run {', '.join(f'{t:.3f}' for t in times)}; "
              f"min {min(times):.3f}")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss // 1024} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
