"""The web server ``xuefen serve`` runs (issue 19 item 11).

Production (``XUEFEN_ENV=production``) and, on POSIX, the embedded default
run gunicorn: ``XUEFEN_WORKERS`` processes (default 2 × cores + 1, at most
8) of ``XUEFEN_THREADS`` threads each (default 4).  Django keeps one
database connection per thread (``CONN_MAX_AGE``), so the server holds at
most workers × threads connections — 20 on a 2-core machine — however many
browsers are open; PostgreSQL's ``max_connections`` (100 by default) must
exceed that sum over all servers.  Static files are served by WhiteNoise
from the collected, precompressed copies.  Django's development server is
still there (``--server runserver``), for debugging.

gunicorn needs ``fcntl``: on Windows the embedded default falls back to the
development server."""

from __future__ import annotations

import os
from typing import Any


def default_workers() -> int:
    return min(8, 2 * (os.cpu_count() or 1) + 1)


def options(host: str, port: str | int) -> dict[str, Any]:
    workers = int(os.environ.get("XUEFEN_WORKERS", default_workers()))
    threads = int(os.environ.get("XUEFEN_THREADS", "4"))
    return {
        "bind": f"{host}:{port}",
        "workers": workers,
        "threads": threads,
        "worker_class": "gthread",
        # A request may run an import of up to IMPORT_BACKGROUND_ROWS rows (or
        # more, when the broker is down): minutes on a loaded machine.
        "timeout": int(os.environ.get("XUEFEN_REQUEST_TIMEOUT", "600")),
        "graceful_timeout": 30,
        "keepalive": 5,
        # Recycle workers now and then: a slow leak never grows without bound.
        "max_requests": 5000,
        "max_requests_jitter": 500,
        "accesslog": os.environ.get("XUEFEN_ACCESS_LOG") or None,
        "errorlog": "-",
        "loglevel": "warning",
        # Bounded request lines and headers (gunicorn's defaults, stated).
        "limit_request_line": 8190,
        "limit_request_fields": 100,
    }


def gunicorn_available() -> bool:
    try:
        import fcntl  # noqa: F401  (gunicorn is POSIX-only)

        import gunicorn  # noqa: F401
    except ImportError:
        return False
    return True


def run_gunicorn(host: str, port: str | int) -> None:
    from gunicorn.app.base import BaseApplication

    from xuefen.web.wsgi import application

    class Server(BaseApplication):
        def load_config(self) -> None:
            for key, value in options(host, port).items():
                if value is not None:
                    self.cfg.set(key, value)

        def load(self) -> Any:
            return application

    Server().run()


def connection_budget() -> int:
    """How many database connections the server may hold at most."""
    o = options("127.0.0.1", 0)
    return int(o["workers"]) * int(o["threads"])
