"""The split path: two Celery worker processes on this machine evaluate a
synthetic province in row-group ranges; the ranges' results, concatenated,
are the single-process run's, row for row, however the row groups cut the
teachers."""

from __future__ import annotations

import datetime as dt
import itertools
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest

from benchmarks.generate import generate

REDIS = "redis://127.0.0.1:6379/15"
AS_OF = dt.date(2022, 12, 31)
QUEUE = f"xuefen-test-{os.getpid()}"


def _redis_up() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
        return True
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _redis_up(), reason="Redis is not reachable on 127.0.0.1:6379")


@pytest.fixture(scope="module")
def workers() -> Iterator[None]:
    os.environ["XUEFEN_BATCH_BROKER"] = REDIS
    from xuefen.batch.distributed import app

    env = {**os.environ, "XUEFEN_BATCH_BROKER": REDIS}
    # a queue and names of this run's own: other runs may share the broker
    names = [f"test{i}-{os.getpid()}@{socket.gethostname()}" for i in (1, 2)]
    procs = [
        subprocess.Popen([sys.executable, "-m", "celery", "-A", "xuefen.batch.distributed", "worker",
                          "--concurrency", "1", "--pool", "solo", "-n", name, "-Q", QUEUE, "--loglevel", "WARNING"],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for name in names
    ]
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if len(app.control.ping(destination=names, timeout=1) or []) >= 2:
                break
        yield
    finally:
        for w in procs:
            w.terminate()
        for w in procs:
            w.wait(timeout=30)


@pytest.fixture(scope="module")
def province(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # 6 row groups of whole teachers
    return generate(600, 20, "yongji", 2022, 7, tmp_path_factory.mktemp("split") / "province.parquet",
                    chunk_teachers=100)


def _ragged(src: Path, dst: Path, rows_per_group: int) -> Path:
    """The same rows, with row groups that ignore teacher boundaries."""
    pq.write_table(pq.read_table(src), dst, row_group_size=rows_per_group, store_decimal_as_integer=True)
    return dst


def _single(path: Path) -> pl.DataFrame:
    from xuefen.batch.parquet import evaluate_parquet

    return evaluate_parquet("yongji", path, AS_OF, workers=1)


@pytest.mark.usefixtures("workers")
def test_two_workers_equal_one_process(province: Path) -> None:
    from xuefen.batch import evaluate_frame
    from xuefen.batch.distributed import evaluate_split
    from xuefen.policy.loader import default_registry

    split = evaluate_split("yongji", province, AS_OF, tasks=6, timeout=300, queue=QUEUE)
    assert split.teachers.equals(_single(province))
    engine_path = evaluate_frame(default_registry().get("yongji"), pl.read_parquet(province), AS_OF).teachers
    key = ["teacher_id"]
    assert split.teachers.sort(key).drop("routed").equals(engine_path.sort(key).drop("routed"))
    assert [(r["start"], r["stop"]) for r in split.reports] == [(k, k + 1) for k in range(6)]
    assert sum(r["teachers"] for r in split.reports) == 600
    assert sum(r["passed"] for r in split.reports) == int(split.teachers.get_column("passed").sum())
    assert len(split.workers) == 2, f"both workers should have taken tasks, saw {split.workers}"


@pytest.mark.usefixtures("workers")
@pytest.mark.parametrize(("rows_per_group", "tasks"), [(97, 7), (7, 40)])
def test_teachers_cut_by_row_groups_are_evaluated_once(province: Path, tmp_path: Path, rows_per_group: int,
                                                        tasks: int) -> None:
    """97 rows a group: nearly every range boundary cuts a teacher (20 rows)
    in two; 7 rows: a teacher spans three or four groups, and many ranges lie
    wholly inside one teacher."""
    from xuefen.batch.distributed import evaluate_split

    ragged = _ragged(province, tmp_path / "ragged.parquet", rows_per_group)
    split = evaluate_split("yongji", ragged, AS_OF, tasks=tasks, timeout=300, queue=QUEUE)
    assert len(split.reports) == tasks
    assert split.teachers.get_column("teacher_id").is_unique().all()
    assert split.teachers.equals(_single(province))


@pytest.mark.usefixtures("workers")
def test_inline_results_and_a_shared_directory(province: Path, tmp_path: Path) -> None:
    from xuefen.batch.distributed import evaluate_split

    reference = _single(province)
    inline = evaluate_split("yongji", province, AS_OF, tasks=3, transport="inline", queue=QUEUE)
    assert inline.teachers.equals(reference)
    shared = tmp_path / "shared"
    assert evaluate_split("yongji", province, AS_OF, tasks=3, out_dir=shared, queue=QUEUE).teachers.equals(reference)
    assert list(shared.iterdir()) == []  # the run's parts are removed once read


@pytest.mark.usefixtures("workers")
def test_bad_input_names_the_file_and_row(province: Path, tmp_path: Path) -> None:

    from tests.test_batch_parquet import with_unknown_form

    from xuefen.batch.distributed import evaluate_split
    from xuefen.errors import InputError

    bad_row = 9_001  # in the fourth of five ranges
    path = with_unknown_form(province, bad_row, tmp_path / "bad.parquet", 2000)
    with pytest.raises(InputError) as caught:
        evaluate_split("yongji", path, AS_OF, tasks=5, queue=QUEUE)
    [problem] = caught.value.problems
    assert (problem.file, problem.row, problem.column) == ("bad.parquet", bad_row + 1, "form")


def test_ranges_cover_the_file_once(province: Path) -> None:
    from xuefen.batch.distributed import plan_tasks

    for n in (1, 2, 5, 6, 50):
        ranges = plan_tasks(province, tasks=n)
        assert ranges[0][0] == 0 and ranges[-1][1] == 6
        assert all(a[1] == b[0] for a, b in itertools.pairwise(ranges))
        assert len(ranges) == min(n, 6)
    assert len(plan_tasks(province, rows_per_task=5_000)) == 3  # 12,000 rows


def test_benchmark_prints_the_speedup(province: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The benchmark's own workers and queues; its line a script reads."""
    import json

    from benchmarks.bench_distributed import main

    os.environ["XUEFEN_BATCH_BROKER"] = REDIS
    assert main(["--file", str(province), "--repeat", "1", "--rows-per-task", "3000", "--json",
                 str(tmp_path / "figures.json")]) == 0
    out = capsys.readouterr().out
    assert "speedup celery 2/1 yongji 600: " in out
    figures = json.loads((tmp_path / "figures.json").read_text(encoding="utf-8"))
    assert figures["tasks"] == 4 and all(r["same"] for r in figures["runs"])
    assert [r["workers"] for r in figures["runs"]] == [1, 2]
