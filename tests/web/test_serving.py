"""The production server and its settings (issue 19 items 11 and 12).

Before the fix ``xuefen serve`` was Django's runserver: a thread per
request, each keeping its PostgreSQL connection for CONN_MAX_AGE, so 100
open browser sessions used every slot of the database server; production
started on SQLite and on the development host list; /api/schema/ answered
anyone."""

from __future__ import annotations

import http.client
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from tests.web.conftest import World

ROOT = Path(__file__).resolve().parents[2]
KEY = "k" * 20 + "-not-a-real-key-" + "q7" * 20


def _production(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "XUEFEN_ALLOW_SQLITE")}
    env.update(XUEFEN_ENV="production", XUEFEN_SECRET_KEY=KEY, XUEFEN_ALLOWED_HOSTS="xuefen.example",
               XUEFEN_DATA_DIR=str(tmp_path))
    env.update(extra)
    return env


def _check(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "manage.py", "check"], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=300, check=False)


def test_production_refuses_sqlite_unless_told(tmp_path: Path) -> None:
    refused = _check(_production(tmp_path))
    assert refused.returncode != 0 and "PostgreSQL" in refused.stderr
    assert _check(_production(tmp_path, XUEFEN_ALLOW_SQLITE="1")).returncode == 0


def test_production_requires_its_host_names(tmp_path: Path) -> None:
    env = _production(tmp_path, XUEFEN_ALLOW_SQLITE="1")
    env.pop("XUEFEN_ALLOWED_HOSTS")
    result = _check(env)
    assert result.returncode != 0 and "XUEFEN_ALLOWED_HOSTS" in result.stderr


def test_the_api_schema_is_for_signed_in_users(world: World) -> None:
    assert Client().get("/api/schema/").status_code in (401, 403)
    alice = Client()
    alice.force_login(world.users["alice"])
    assert alice.get("/api/schema/").status_code == 200


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _connections() -> int:
    with connection.cursor() as cur:
        cur.execute("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()")
        row = cur.fetchone()
    return int(row[0]) if row else 0


@pytest.mark.postgres
def test_the_production_server_holds_a_bounded_number_of_connections(transactional_db: Any, world: World,
                                                                     tmp_path: Path) -> None:
    """100 signed-in browsers at once against gunicorn with 2 workers × 2
    threads: never more than 4 server connections, every page answered."""
    if connection.vendor != "postgresql":
        pytest.skip("connection budget is a PostgreSQL matter (set DATABASE_URL)")
    db = connection.settings_dict
    url = f"postgres://{db['USER']}:{db['PASSWORD'] or ''}@{db['HOST'] or '127.0.0.1'}:{db['PORT'] or 5432}/{db['NAME']}"
    cookies = []
    for _ in range(100):
        c = Client()
        c.force_login(world.users["carol"])
        cookies.append(c.cookies["sessionid"].value)
    port = _free_port()
    from django.conf import settings

    # the sessions were signed with this process's key
    env = _production(tmp_path, DATABASE_URL=url, XUEFEN_ALLOWED_HOSTS="127.0.0.1", XUEFEN_WORKERS="2",
                      XUEFEN_THREADS="2", XUEFEN_SECRET_KEY=settings.SECRET_KEY)
    server = subprocess.Popen([sys.executable, "-m", "xuefen.cli", "serve", "--no-demo", "--host", "127.0.0.1",
                               "--port", str(port)], cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
    own = _connections()
    try:
        deadline = time.monotonic() + 180
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                assert server.poll() is None, server.stdout.read() if server.stdout else ""
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.5)
        codes: list[int] = []
        peak = [0]
        lock = threading.Lock()

        def browse(cookie: str) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
            conn.request("GET", "/dashboard/", headers={"Cookie": f"sessionid={cookie}",
                                                         "X-Forwarded-Proto": "https"})
            code = conn.getresponse().status
            conn.close()
            with lock:
                codes.append(code)

        def watch(stop: threading.Event) -> None:
            from django.db import connections

            try:
                while not stop.is_set():
                    peak[0] = max(peak[0], _connections() - own - 1)  # less this thread's own connection
                    time.sleep(0.05)
            finally:
                connections.close_all()

        stop = threading.Event()
        watcher = threading.Thread(target=watch, args=(stop,))
        watcher.start()
        browsers = [threading.Thread(target=browse, args=(c,)) for c in cookies]
        for t in browsers:
            t.start()
        for t in browsers:
            t.join(timeout=300)
        stop.set()
        watcher.join()
        peak[0] = max(peak[0], _connections() - own)
        assert codes.count(200) == 100, sorted(set(codes))
        assert 0 < peak[0] <= 4, peak[0]
        # static files come from WhiteNoise's collected, compressed copies
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.request("GET", "/static/xuefen/app.css", headers={"Accept-Encoding": "gzip", "X-Forwarded-Proto": "https"})
        response = conn.getresponse()
        assert response.status == 200 and response.getheader("Content-Encoding") == "gzip"
    finally:
        server.terminate()
        server.wait(timeout=60)
