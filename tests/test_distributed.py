"""The split path: two Celery worker processes on this machine evaluate a
synthetic province unit by unit; the union equals the single-process run."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
from pathlib import Path

import polars as pl
import pytest

REDIS = "redis://127.0.0.1:6379/15"


def _redis_up() -> bool:
    try:
        import redis

        redis.Redis.from_url(REDIS, socket_connect_timeout=2).ping()
        return True
    except Exception:
        return False


pytestmark = pytest.mark.skipif(not _redis_up(), reason="Redis is not reachable on 127.0.0.1:6379")


def test_two_workers_equal_one_process(tmp_path: Path) -> None:
    from benchmarks.generate import generate
    from xuefen.batch import evaluate_frame
    from xuefen.policy.loader import default_registry

    path = tmp_path / "province.parquet"
    generate(600, 20, "yongji", 2022, 7, path)
    env = {**os.environ, "XUEFEN_BATCH_BROKER": REDIS}
    workers = [
        subprocess.Popen([sys.executable, "-m", "celery", "-A", "xuefen.batch.distributed", "worker",
                          "--concurrency", "1", "--pool", "solo", "-n", f"w{i}@%h", "--loglevel", "WARNING"],
                         env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for i in (1, 2)
    ]
    try:
        os.environ["XUEFEN_BATCH_BROKER"] = REDIS
        from xuefen.batch.distributed import app, evaluate_split

        app.control.purge()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            replies = app.control.ping(timeout=1) or []
            if len(replies) >= 2:
                break
        split, seen = evaluate_split("yongji", path, dt.date(2022, 12, 31), level="school", timeout=300)
        single = evaluate_frame(default_registry().get("yongji"), pl.read_parquet(path), dt.date(2022, 12, 31)).teachers
        key = ["teacher_id"]
        assert split.sort(key).drop("routed").equals(single.sort(key).drop("routed"))
        assert len(seen) == 2, f"both workers should have taken units, saw {seen}"
    finally:
        for w in workers:
            w.terminate()
        for w in workers:
            w.wait(timeout=30)
