"""Province scale: evaluate a whole synthetic population, timed per method.

    python benchmarks/bench_scale.py                         # 100k and 1M teachers × 100 records
    python benchmarks/bench_scale.py --sizes 1k,10k,100k     # scaling
    python benchmarks/bench_scale.py --quick                 # CI smoke: 1k teachers, no doc written
    python benchmarks/bench_scale.py --write-doc             # also replace the table in docs/performance.md

For each policy (永吉, 山东) and size, the synthetic province is generated once
(``benchmarks.generate``, cached under ``var/bench``) and then each method
runs in its own subprocess, so wall time and peak RSS (``os.wait4`` rusage of
that child) belong to that method alone:

* ``batch``  — ``xuefen.batch.evaluate_parquet`` (skipped while it does not exist);
* ``duckdb`` — the hand-written SQL baseline (``benchmarks.baselines``);
* ``python`` — the hand-written Python loop baseline;
* ``engine`` — the per-teacher engine (``Evaluator.evaluate``) over every teacher,
  parsing each row through ``xuefen.model`` as a file reader would; the
  reference for verdicts where it runs.

Every method writes its verdicts (``teacher_id, passed, total_milli``); the
table counts the teachers whose verdict or total differs from the reference
(the engine where it ran, else DuckDB).  Also measured: one teacher with 200
records through the per-teacher engine (median of repeated calls).  Not a test.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import shlex
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
# the generator and the baselines live beside this script, in the `benchmarks`
# package of the source checkout, not in the shipped xuefen package
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
DOC = ROOT / "docs" / "performance.md"
BEGIN = "<!-- bench_scale:begin (written by benchmarks/bench_scale.py --write-doc) -->"
END = "<!-- bench_scale:end -->"
POLICIES = {"yongji": 2022, "shandong": 2028}  # as_of year: the last year of a whole cycle
METHODS = ("batch", "duckdb", "python", "engine")
SKIPPED = 3  # worker exit code: method not available


def parse_size(text: str) -> int:
    text = text.strip().lower().replace("_", "")
    mult = {"k": 1_000, "m": 1_000_000}.get(text[-1:], 1)
    return int(float(text[:-1] if mult > 1 else text) * mult)


def size_label(n: int) -> str:
    if n >= 1_000_000 and n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n >= 1_000 and n % 1_000 == 0:
        return f"{n // 1_000}k"
    return str(n)


# ---------------------------------------------------------------- workers (run in a subprocess)


def _write_verdicts(df: Any, out: str) -> None:
    import polars as pl

    if "total_milli" not in df.columns:
        total = df.get_column("total")
        if total.dtype == pl.Decimal or total.dtype.is_float() or total.dtype == pl.String:
            df = df.with_columns(total_milli=(pl.col("total").cast(pl.Decimal(18, 3)) * 1000).cast(pl.Int64))
        else:
            df = df.with_columns(total_milli=pl.col("total").cast(pl.Int64))
    df.select(pl.col("teacher_id").cast(pl.String), pl.col("passed").cast(pl.Boolean),
              pl.col("total_milli").cast(pl.Int64)).write_parquet(out)


def worker(method: str, policy: str, path: str, as_of: dt.date, out: str) -> int:
    if method == "batch":
        try:
            from xuefen.batch import evaluate_parquet  # type: ignore[attr-defined]
        except ImportError:
            return SKIPPED
        _write_verdicts(evaluate_parquet(policy, path, as_of), out)
    elif method == "duckdb":
        from benchmarks.baselines import duckdb_sql

        _write_verdicts(duckdb_sql(policy, path, as_of), out)
    elif method == "python":
        from benchmarks.baselines import python_loop

        _write_verdicts(python_loop(policy, path, as_of), out)
    elif method == "engine":
        import polars as pl

        ids, passed, totals = [], [], []
        for teacher, records, _ in _parsed(policy, path):
            ev = _evaluator(policy).evaluate(teacher, records, as_of)
            ids.append(teacher.id)
            passed.append(ev.passed)
            totals.append(int(ev.total * 1000))
        _write_verdicts(pl.DataFrame({"teacher_id": ids, "passed": passed, "total_milli": totals}), out)
    else:
        raise SystemExit(f"unknown method {method}")
    return 0


_EVALUATORS: dict[str, Any] = {}


def _evaluator(policy: str) -> Any:
    if policy not in _EVALUATORS:
        from xuefen.engine.evaluate import Evaluator
        from xuefen.policy.loader import default_registry

        _EVALUATORS[policy] = Evaluator(default_registry().get(policy))
    return _EVALUATORS[policy]


def _parsed(policy: str, path: str, limit: int | None = None) -> Any:
    """Teachers and records parsed through the interchange model, as a reader would."""
    from benchmarks.generate import iter_parsed

    return iter_parsed(path, limit=limit)


def single(policy: str, runs: int, out: str) -> int:
    """One teacher, 200 records, through the per-teacher engine."""
    from benchmarks.generate import generate

    as_of = dt.date(POLICIES[policy], 12, 31)
    with tempfile.TemporaryDirectory() as tmp:
        path = generate(1, 200, policy, as_of.year, seed=7, out_path=Path(tmp) / "one.parquet")
        teacher, records, _ = next(_parsed(policy, str(path)))
    ev = _evaluator(policy)
    for _ in range(20):
        ev.evaluate(teacher, records, as_of)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        ev.evaluate(teacher, records, as_of)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    Path(out).write_text(json.dumps({"median_ms": statistics.median(times), "p90_ms": times[int(len(times) * 0.9)],
                                     "min_ms": times[0], "runs": runs}))
    return 0


# ---------------------------------------------------------------- parent


def _group_rss_mb(pgid: int) -> float:
    """Resident memory of every process in a process group, added up (the
    batch evaluator runs worker processes; their memory counts too)."""
    page = os.sysconf("SC_PAGE_SIZE")
    total = 0
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
            if int(stat.rsplit(")", 1)[1].split()[2]) != pgid:
                continue
            total += int(Path(f"/proc/{entry}/statm").read_text().split()[1]) * page
        except (OSError, ValueError, IndexError):
            continue
    return total / 2**20


def run_child(args: list[str], timeout: float) -> dict[str, Any]:
    """Run one child; wall time, CPU of it and its descendants, and peak
    memory: the larger of its own peak RSS (os.wait4) and the peak of the sum
    over its process group, sampled every 50 ms."""
    t0 = time.perf_counter()
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    deadline = t0 + timeout
    status = None
    rusage = None
    group_peak = 0.0
    while True:
        pid, status, rusage = os.wait4(proc.pid, os.WNOHANG)
        if pid:
            break
        group_peak = max(group_peak, _group_rss_mb(proc.pid))
        if time.perf_counter() > deadline:
            os.killpg(proc.pid, signal.SIGKILL)  # the child's own process group, which we started
            _, status, rusage = os.wait4(proc.pid, 0)
            proc.returncode = -9
            return {"status": "timeout", "wall": time.perf_counter() - t0, "rss_mb": rusage.ru_maxrss / 1024,
                    "cpu": rusage.ru_utime + rusage.ru_stime}
        time.sleep(0.05)
    wall = time.perf_counter() - t0
    code = os.waitstatus_to_exitcode(status)
    proc.returncode = code
    err = proc.stderr.read() if proc.stderr else ""
    if proc.stdout:
        proc.stdout.read()
    result = {"status": "ok" if code == 0 else ("skipped" if code == SKIPPED else "failed"), "wall": wall,
              "rss_mb": max(rusage.ru_maxrss / 1024, group_peak) if rusage else float("nan"),
              "cpu": (rusage.ru_utime + rusage.ru_stime) if rusage else float("nan")}
    if code not in (0, SKIPPED):
        result["error"] = err.strip().splitlines()[-1] if err.strip() else f"exit {code}"
    return result


def ensure_data(policy: str, n: int, r: int, seed: int, cache: Path, timeout: float) -> tuple[Path, dict[str, Any]]:
    from benchmarks.generate import GENERATOR_VERSION

    path = cache / f"{policy}-{size_label(n)}x{r}-s{seed}-g{GENERATOR_VERSION}.parquet"
    if path.exists():
        return path, {"status": "cached"}
    cache.mkdir(parents=True, exist_ok=True)
    res = run_child([sys.executable, "-m", "benchmarks.generate", "--teachers", str(n), "--records", str(r),
                     "--policy", policy, "--as-of-year", str(POLICIES[policy]), "--seed", str(seed), "--quiet",
                     "-o", str(path)], timeout)
    if res["status"] != "ok":
        raise SystemExit(f"generating {path} failed: {res}")
    return path, res


def compare(results: dict[str, Path]) -> tuple[str | None, dict[str, dict[str, Any]]]:
    import polars as pl

    frames = {m: pl.read_parquet(p) for m, p in results.items()}
    ref = "engine" if "engine" in frames else ("duckdb" if "duckdb" in frames else None)
    out: dict[str, dict[str, Any]] = {}
    for m, df in frames.items():
        row: dict[str, Any] = {"teachers": df.height, "passed": int(df["passed"].sum())}
        if ref is not None and m != ref:
            j = frames[ref].join(df, on="teacher_id", how="full", suffix="_m")
            row["verdict_diff"] = j.filter(pl.col("passed").ne_missing(pl.col("passed_m"))).height
            row["total_diff"] = j.filter(pl.col("total_milli").ne_missing(pl.col("total_milli_m"))).height
        out[m] = row
    return ref, out


def machine() -> dict[str, str]:
    import duckdb
    import polars
    import pyarrow

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "nproc": str(os.cpu_count()), "cpu": cpu, "python": platform.python_version(),
        "platform": platform.platform(), "polars": polars.__version__, "pyarrow": pyarrow.__version__,
        "duckdb": duckdb.__version__, "mem_gb": f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.1f}",
    }


def speed_probe() -> float:
    """Seconds of a fixed workload (NumPy sorting and gathering, a plain
    interpreter loop), best of three: a figure of how fast the machine is
    at the moment, to read the other figures by."""
    import numpy as np

    rng = np.random.default_rng(0)
    data = rng.integers(0, 1 << 40, 4_000_000)
    best = float("inf")
    for _ in range(3):
        t0 = time.perf_counter()
        order = np.argsort(data, kind="stable")
        data[order].sum()
        acc = 0
        for i in range(1_000_000):
            acc += i & 7
        best = min(best, time.perf_counter() - t0)
    return best


def paired_ratio(runs: list[dict[str, Any]], base: list[dict[str, Any]]) -> str:
    """Median of run i's wall time over the baseline's run i (same round)."""
    pairs = [r["wall"] / b["wall"] for r, b in zip(runs, base, strict=False)
             if r["status"] == "ok" and b["status"] == "ok"]
    return f"{statistics.median(pairs):.2f}" if pairs and runs is not base else "—"


def fmt_row(cells: list[Any]) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="100k,1M", help="teacher counts, e.g. 1k,10k,100k,1M")
    ap.add_argument("--records", type=int, default=100, help="records per teacher")
    ap.add_argument("--policies", default="yongji,shandong")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument("--python-max", type=parse_size, default=parse_size("100k"),
                    help="largest size the Python loop runs at (default 100k)")
    ap.add_argument("--batch-max", type=parse_size, default=None,
                    help="largest size the batch evaluator runs at (default: every size)")
    ap.add_argument("--engine-max", type=parse_size, default=parse_size("10k"),
                    help="largest size the per-teacher engine runs at (default 10k)")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cache", type=Path, default=ROOT / "var" / "bench")
    ap.add_argument("--timeout", type=float, default=3600, help="seconds per child process")
    ap.add_argument("--single-runs", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=1, help="runs of each method; the median wall time is reported")
    ap.add_argument("--quick", action="store_true", help="CI smoke: 1k teachers, every method, no doc")
    ap.add_argument("--write-doc", action="store_true", help=f"replace the generated table in {DOC.relative_to(ROOT)}")
    ap.add_argument("--worker", help=argparse.SUPPRESS)
    ap.add_argument("--single", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--policy", help=argparse.SUPPRESS)
    ap.add_argument("--path", help=argparse.SUPPRESS)
    ap.add_argument("--as-of", help=argparse.SUPPRESS)
    ap.add_argument("--out", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.worker:
        return worker(args.worker, args.policy, args.path, dt.date.fromisoformat(args.as_of), args.out)
    if args.single:
        return single(args.policy, args.single_runs, args.out)

    command = "python benchmarks/bench_scale.py " + " ".join(shlex.quote(a) for a in (argv if argv is not None else sys.argv[1:]))
    if args.quick:
        args.sizes, args.cache, args.single_runs = "1k", args.cache / "quick", 50
        args.write_doc = False
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]
    policies = [p.strip() for p in args.policies.split(",") if p.strip()]
    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    info = machine()
    load_before = os.getloadavg()
    started = dt.datetime.now()
    probes = [speed_probe()]
    lines: list[str] = []
    gen_lines: list[str] = []
    single_lines: list[str] = []
    ratio_lines: list[str] = []
    failures = 0

    def report(done: bool) -> str:
        load = os.getloadavg()
        text = [
            f"Measured {started.isoformat(timespec='minutes')} with `{command.strip()}`"
            + ("." if done else " (partial: the run was still going when this was written)."),
            "",
            f"Machine: nproc={info['nproc']}, CPU {info['cpu']}, {info['mem_gb']} GB RAM, {info['platform']}; "
            f"Python {info['python']}, polars {info['polars']}, pyarrow {info['pyarrow']}, duckdb {info['duckdb']}. "
            f"Load average (1/5/15 min) at the start: {'/'.join(f'{x:.1f}' for x in load_before)}, "
            f"when written: {'/'.join(f'{x:.1f}' for x in load)}. "
            f"Machine speed probe (a fixed NumPy and interpreter workload, lower is faster): "
            f"{', '.join(f'{x:.2f} s' for x in probes)} (at the start{', after each size' if len(probes) > 1 else ''}).",
            "",
            "÷ DuckDB: the median over the rounds of this method's wall time divided by DuckDB's in the same "
            "round (methods run in turn), so it holds when the machine's speed drifts during the run.",
            "",
            "Evaluation, one subprocess per method (wall time includes interpreter start and reading the file; "
            "CPU is user + system time of that process and its worker processes; peak RSS is the peak of their "
            "resident memory added up, sampled every 50 ms, or the process's own `ru_maxrss` if larger):",
            "",
            fmt_row(["policy", "teachers", "rows", "method", "wall s (median)", "min wall s", "runs",
                     "÷ DuckDB", "CPU s", "peak RSS MB", "teachers/s", "passed", "verdicts ≠ ref", "totals ≠ ref"]),
            "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
            *lines,
            "",
        ]
        if gen_lines:
            text += ["Generating the data (`python -m benchmarks.generate`, snappy Parquet, row groups of 1M rows):",
                     "", fmt_row(["policy", "teachers", "rows", "wall s", "CPU s", "peak RSS MB", "file MB"]),
                     "|---|---:|---:|---:|---:|---:|---:|", *gen_lines, ""]
        if single_lines:
            text += ["One teacher with 200 generated records through the per-teacher engine (`Evaluator.evaluate`):",
                     "", fmt_row(["policy", "records", "median ms", "p90 ms", "min ms", "runs"]),
                     "|---|---:|---:|---:|---:|---:|", *single_lines, ""]
        out = "\n".join(text)
        if args.write_doc:
            doc = DOC.read_text(encoding="utf-8")
            block = f"{BEGIN}\n{out}\n{END}"
            if BEGIN in doc and END in doc:
                head, rest = doc.split(BEGIN, 1)
                doc = head + block + rest.split(END, 1)[1]
            else:
                doc = doc.rstrip("\n") + "\n\n## Province scale\n\n" + block + "\n"
            DOC.write_text(doc, encoding="utf-8")
        return out

    with tempfile.TemporaryDirectory() as tmp:
        for policy in policies if args.single_runs > 0 else []:  # --single-runs 0: not measured
            sres = run_child([sys.executable, __file__, "--single", "--policy", policy, "--single-runs",
                              str(args.single_runs), "--out", f"{tmp}/single-{policy}.json"], args.timeout)
            if sres["status"] == "ok":
                s = json.loads(Path(f"{tmp}/single-{policy}.json").read_text())
                single_lines.append(fmt_row([policy, 200, f"{s['median_ms']:.2f}", f"{s['p90_ms']:.2f}",
                                             f"{s['min_ms']:.2f}", s["runs"]]))
                print(f"{policy}: one teacher × 200 records, median {s['median_ms']:.2f} ms", flush=True)
            else:
                failures += 1
                print(f"{policy}: single-teacher run {sres}", flush=True)
        for n in sizes:
            for policy in policies:
                as_of = dt.date(POLICIES[policy], 12, 31)
                path, gres = ensure_data(policy, n, args.records, args.seed, args.cache, args.timeout)
                if gres["status"] == "ok":
                    gen_lines.append(fmt_row([policy, size_label(n), f"{n * args.records:,}", f"{gres['wall']:.1f}",
                                              f"{gres['cpu']:.1f}", f"{gres['rss_mb']:.0f}",
                                              f"{path.stat().st_size / 1e6:.1f}"]))
                print(f"{policy} {size_label(n)}: data {path.name} ({gres['status']})", flush=True)
                outs: dict[str, Path] = {}
                timing: dict[str, dict[str, Any]] = {}
                limits = {"python": args.python_max, "engine": args.engine_max, "batch": args.batch_max}
                to_run = [m for m in methods if limits.get(m) is None or n <= limits[m]]
                for method in methods:
                    if method not in to_run:
                        timing[method] = {"status": "not run"}
                # this machine is shared and its speed drifts (measured here: the same run 40 % slower
                # within the hour): repeat, the methods in turn, each round in the other order, so
                # that a drift weighs on every method alike; keep each method's median wall time
                all_runs: dict[str, list[dict[str, Any]]] = {m: [] for m in to_run}
                for round_no in range(max(1, args.repeat)):
                    for method in to_run if round_no % 2 == 0 else to_run[::-1]:
                        out = Path(tmp) / f"{policy}-{n}-{method}.parquet"
                        all_runs[method].append(run_child(
                            [sys.executable, __file__, "--worker", method, "--policy", policy, "--path", str(path),
                             "--as-of", as_of.isoformat(), "--out", str(out)], args.timeout))
                for method in to_run:
                    out = Path(tmp) / f"{policy}-{n}-{method}.parquet"
                    runs = all_runs[method]
                    ok_runs = sorted((r for r in runs if r["status"] == "ok"), key=lambda r: r["wall"])
                    res = ok_runs[len(ok_runs) // 2] if len(ok_runs) == len(runs) else runs[-1]
                    res["min_wall"] = min(r["wall"] for r in runs)
                    res["runs"] = len(runs)
                    timing[method] = res
                    if res["status"] == "ok":
                        outs[method] = out
                    elif res["status"] != "skipped":
                        failures += 1
                    print(f"  {method}: {res['status']} {res.get('wall', 0):.1f}s {res.get('rss_mb', 0):.0f} MB"
                          f"{' ' + res['error'] if 'error' in res else ''}", flush=True)
                ref, cmp = compare(outs) if outs else (None, {})
                base = all_runs.get("duckdb", [])
                for method in to_run:
                    r = paired_ratio(all_runs[method], base) if method != "duckdb" else "—"
                    if r != "—":
                        # one line a script can read: grep '^ratio ' | awk '{print $NF}'
                        ratio_lines.append(f"ratio {method}/duckdb {policy} {size_label(n)}: {r}")
                        print(ratio_lines[-1], flush=True)
                for method in methods:
                    res = timing[method]
                    if res["status"] != "ok":
                        why = {"skipped": "not available", "not run": "not run at this size"}.get(res["status"],
                                                                                                  res["status"])
                        if res["status"] in ("timeout", "failed"):
                            why += f" after {res['wall']:.0f} s, peak RSS {res['rss_mb']:.0f} MB"
                        lines.append(fmt_row([policy, size_label(n), f"{n * args.records:,}", method, why,
                                              "", "", "", "", "", "", "", "", ""]))
                        continue
                    c = cmp[method]
                    label = f"{method} (ref)" if method == ref else method
                    lines.append(fmt_row([
                        policy, size_label(n), f"{n * args.records:,}", label, f"{res['wall']:.1f}",
                        f"{res['min_wall']:.1f}", res["runs"], paired_ratio(all_runs[method], base),
                        f"{res['cpu']:.1f}", f"{res['rss_mb']:.0f}", f"{n / res['wall']:,.0f}",
                        f"{c['passed']:,} ({c['passed'] / n:.1%})", c.get("verdict_diff", "—"),
                        c.get("total_diff", "—")]))
                report(done=False)
            probes.append(speed_probe())
    text = report(done=True)
    print()
    print(text)
    if ratio_lines:
        print()
        print("\n".join(ratio_lines))
    if args.write_doc:
        print(f"wrote {DOC.relative_to(ROOT)}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
