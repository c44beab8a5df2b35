"""Time to evaluate one teacher with 200 records under each policy.

    python benchmarks/bench_engine.py [--records 200] [--runs 200] [--warmup 20] [--profile POLICY]

The ledger is generated deterministically (a fixed seed) from the vocabulary
and the policy's own categories, with years spread over the evaluated cycle,
so every policy sees the same kind of mix: training records with hours, some
preset credits, some achievements, a few failed or unapproved ones.  The
figure is the median of ``--runs`` calls of ``Evaluator.evaluate`` after
``--warmup`` calls (the evaluator is built once, as the CLI builds it once for
a whole file).  Goal: at most 5 ms per teacher.  Not a test.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import platform
import pstats
import random
import statistics
import sys
import time
from decimal import Decimal
from typing import Any

from xuefen import vocab
from xuefen.engine.evaluate import Evaluator
from xuefen.model import Leave, Record, Teacher
from xuefen.policy.loader import default_registry
from xuefen.policy.schema import Policy

GOAL_MS = 5.0


def as_of_for(policy: Policy) -> dt.date:
    """The last day of the policy's first cycle, or of its effective period
    if that ends sooner."""
    evaluator = Evaluator(policy)
    _, end = evaluator.cycle_for(policy.effective.from_.year)
    day = dt.date(end, 12, 31)
    if policy.effective.to is not None:
        day = min(day, policy.effective.to - dt.timedelta(days=1))
    return day


def ledger(policy: Policy, n: int, seed: int = 20240901) -> tuple[Teacher, list[Record], dt.date]:
    rng = random.Random(seed)
    as_of = as_of_for(policy)
    start, end = Evaluator(policy).cycle_for(as_of.year)
    years = list(range(start, min(end, as_of.year) + 1))
    categories = [c.id for c in policy.categories]
    themes = [t for c in policy.categories for t in c.themes]

    def pick(field: str, p: float = 1.0) -> str | None:
        return rng.choice(vocab.allowed(field)) if rng.random() < p else None

    records: list[Record] = []
    for i in range(n):
        kind = rng.random()
        hours = Decimal(rng.randint(4, 600)) / 10
        common: dict[str, Any] = {"id": f"r{i:03d}", "year": rng.choice(years), "title": f"培训项目{i}"}
        if kind < 0.75:  # training with hours
            rec = Record(**common, form=pick("form"), level=pick("level"), location=pick("location", 0.5),
                         hours=hours, days=Decimal(rng.randint(1, 10)),
                         result=rng.choice(["合格", "合格", "合格", "优秀", "不合格"]),
                         approved=rng.random() > 0.05, program=pick("program", 0.15),
                         category=rng.choice(categories) if categories and rng.random() < 0.4 else None,
                         theme=rng.choice(themes) if themes and rng.random() < 0.3 else None,
                         role=rng.choice(["学员"] * 8 + ["主讲教师", "指导教师"]),
                         absent_hours=Decimal(rng.randint(0, 20)) / 10 if rng.random() < 0.1 else None)
        elif kind < 0.9:  # achievements
            rec = Record(**common, achievement=pick("achievement"), level=pick("level"), role=pick("role", 0.5),
                         words=rng.randint(2000, 20000), topics=rng.randint(1, 6),
                         certificate=rng.random() > 0.2, education_system=rng.random() > 0.3)
        else:  # credits preset by an authority
            rec = Record(**common, form=pick("form"), level=pick("level"), hours=hours,
                         credits=Decimal(rng.randint(5, 100)) / 10,
                         category=rng.choice(categories) if categories else None, approved=rng.random() > 0.5)
        records.append(rec)
    teacher = Teacher(id="BENCH-1", name="基准教师", stage="初中", post="专任教师", hired_year=start - 8,
                      normal_graduate=True, leaves=(Leave(years[len(years) // 2], "产假"),))
    return teacher, records, as_of


def measure(policy: Policy, n_records: int, runs: int, warmup: int) -> dict[str, float]:
    teacher, records, as_of = ledger(policy, n_records)
    evaluator = Evaluator(policy)
    for _ in range(warmup):
        evaluator.evaluate(teacher, records, as_of)
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        evaluator.evaluate(teacher, records, as_of)
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    t0 = time.perf_counter()
    Evaluator(policy)
    build = (time.perf_counter() - t0) * 1000
    return {
        "median": statistics.median(times),
        "p90": times[int(0.9 * (len(times) - 1))],
        "min": times[0],
        "build": build,
    }


def profile(policy: Policy, n_records: int, runs: int) -> None:
    teacher, records, as_of = ledger(policy, n_records)
    evaluator = Evaluator(policy)
    evaluator.evaluate(teacher, records, as_of)
    prof = cProfile.Profile()
    prof.enable()
    for _ in range(runs):
        evaluator.evaluate(teacher, records, as_of)
    prof.disable()
    stats = pstats.Stats(prof)
    stats.sort_stats("tottime").print_stats(15)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--records", type=int, default=200)
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--policy", action="append", help="only these policies (default: all)")
    parser.add_argument("--profile", metavar="POLICY", help="print a cProfile of evaluate() for one policy")
    args = parser.parse_args(argv)
    registry = default_registry()
    if args.profile:
        profile(registry.get(args.profile), args.records, max(1, args.runs // 4))
        return 0
    ids = args.policy or sorted(registry.policies)
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"xuefen engine benchmark: one teacher, {args.records} records, median of {args.runs} runs "
          f"after {args.warmup} warm-up runs")
    print(f"machine: nproc={cores}, {platform.machine()}, {platform.system()} {platform.release()}; "
          f"Python {platform.python_version()} ({platform.python_implementation()})")
    print(f"command: python benchmarks/bench_engine.py --records {args.records} --runs {args.runs} "
          f"--warmup {args.warmup}")
    print()
    header = f"{'policy':<24}{'median ms':>10}{'p90 ms':>9}{'min ms':>9}{'build ms':>10}  goal ≤ {GOAL_MS:g} ms"
    print(header)
    print("-" * len(header))
    worst = 0.0
    for pid in ids:
        m = measure(registry.get(pid), args.records, args.runs, args.warmup)
        worst = max(worst, m["median"])
        verdict = "ok" if m["median"] <= GOAL_MS else "OVER"
        print(f"{pid:<24}{m['median']:>10.2f}{m['p90']:>9.2f}{m['min']:>9.2f}{m['build']:>10.2f}  {verdict}")
    print()
    print(f"slowest median: {worst:.2f} ms per teacher ({'within' if worst <= GOAL_MS else 'above'} the goal)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
