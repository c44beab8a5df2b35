"""A bounded load test of the running platform (issue 19's load goal):
N virtual users, each signed in as a demo account and cycling over one page
with a think time between requests, for a fixed duration; latency
percentiles and errors per page.  Loopback only: the script refuses any
other host.  Standard library only (threads and http.client).

    xuefen serve --port 8119 &            # the demo data, as ./run.sh
    python benchmarks/bench_load.py --url http://127.0.0.1:8119 --users 50 --duration 60

Pages, one per user in turn: the district dashboard (``east``), the school
officer's review queue (``officer``), the teacher home (``teacher``).  Each
user signs in through the login page with its own session before the clock
starts.  An error is any status other than 200, or a failed connection."""

from __future__ import annotations

import argparse
import http.client
import ipaddress
import json
import random
import re
import socket
import statistics
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlencode, urlsplit

PAGES = [("district dashboard", "east", "/dashboard/"), ("review queue", "officer", "/review/"),
         ("teacher home", "teacher", "/me/")]
DEMO = Path(__file__).resolve().parents[1] / "src/xuefen/web/management/commands/demo.py"


def demo_password() -> str:
    found = re.search(r'^DEMO_PASSWORD = "([^"]+)"', DEMO.read_text(encoding="utf-8"), re.M)
    if not found:
        raise SystemExit("demo password not found")
    return found.group(1)


@dataclass
class Tally:
    latencies: list[float] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)


class User:
    def __init__(self, host: str, port: int, login: str, password: str) -> None:
        self.host, self.port = host, port
        self.cookies: dict[str, str] = {}
        self.conn = http.client.HTTPConnection(host, port, timeout=60)
        self.login, self.password = login, password

    def _headers(self) -> dict[str, str]:
        # X-Forwarded-Proto: production settings redirect plain HTTP (as a TLS proxy would set it).
        h = {"X-Forwarded-Proto": "https", "Accept-Language": "zh-hans"}
        if self.cookies:
            h["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        return h

    def request(self, method: str, path: str, body: str | None = None) -> tuple[int, bytes]:
        headers = self._headers()
        if body is not None:
            headers["Content-Type"] = "application/x-www-form-urlencoded"
            headers["Referer"] = f"https://{self.host}:{self.port}/login/"
        try:
            self.conn.request(method, path, body=body, headers=headers)
            response = self.conn.getresponse()
            data = response.read()
        except (OSError, http.client.HTTPException):
            self.conn.close()
            self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)
            raise
        for value in response.headers.get_all("Set-Cookie") or []:
            name, _, rest = value.partition("=")
            self.cookies[name.strip()] = rest.split(";", 1)[0]
        return response.status, data

    def sign_in(self) -> None:
        status, page = self.request("GET", "/login/")
        token = re.search(rb'name="csrfmiddlewaretoken" value="([^"]+)"', page)
        if status != 200 or token is None:
            raise SystemExit(f"login page: {status}")
        body = urlencode({"username": self.login, "password": self.password,
                          "csrfmiddlewaretoken": token.group(1).decode()})
        status, _ = self.request("POST", "/login/", body)
        if status != 302 or "sessionid" not in self.cookies:
            raise SystemExit(f"login as {self.login}: {status}")
        # A fresh connection for the measured part: signing everyone in takes
        # longer than the server keeps an idle connection open.
        self.conn.close()
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=60)


def percentile(values: list[float], p: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, round(p / 100 * len(ordered) + 0.5) - 1))
    return ordered[k]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--url", default="http://127.0.0.1:8000")
    ap.add_argument("--users", type=int, default=50)
    ap.add_argument("--duration", type=float, default=60.0, help="seconds of measurement")
    ap.add_argument("--think", default="1-2", help="think time between requests, seconds: MIN-MAX")
    ap.add_argument("--password", default=None, help="the demo password (read from the demo command by default)")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args(argv)
    parts = urlsplit(args.url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    if not ipaddress.ip_address(socket.gethostbyname(host)).is_loopback:
        raise SystemExit("bench_load runs against this machine only (a loopback address)")
    if not 1 <= args.users <= 500 or not 0 < args.duration <= 600:
        raise SystemExit("bounded: 1-500 users, at most 600 s")
    lo, hi = (float(x) for x in args.think.split("-"))
    password = args.password or demo_password()

    users = []
    for i in range(args.users):
        _label, login, _path = PAGES[i % len(PAGES)]
        u = User(host, port, login, password)
        u.sign_in()
        users.append((u, PAGES[i % len(PAGES)]))
    tallies = {label: Tally() for label, _, _ in PAGES}
    lock = threading.Lock()
    start = time.monotonic()
    end = start + args.duration
    rnd = random.Random(19)
    offsets = [rnd.uniform(0, hi) for _ in users]  # users do not all start in the same instant

    def run(u: User, page: tuple[str, str, str], offset: float) -> None:
        label, _login, path = page
        time.sleep(offset)
        local = random.Random(offset)
        while time.monotonic() < end:
            t0 = time.perf_counter()
            try:
                status, _ = u.request("GET", path)
                error = None if status == 200 else str(status)
            except (OSError, http.client.HTTPException) as exc:
                error = type(exc).__name__
            elapsed = time.perf_counter() - t0
            with lock:
                tallies[label].latencies.append(elapsed)
                if error:
                    tallies[label].errors[error] = tallies[label].errors.get(error, 0) + 1
            time.sleep(local.uniform(lo, hi))

    threads = [threading.Thread(target=run, args=(u, page, off)) for (u, page), off in zip(users, offsets, strict=True)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.monotonic() - start

    report: dict[str, object] = {"url": args.url, "users": args.users, "duration_s": round(wall, 1),
                                 "think_s": args.think, "pages": {}}
    every: list[float] = []
    errors = 0
    for label, t in tallies.items():
        every += t.latencies
        errors += sum(t.errors.values())
        report["pages"][label] = {  # type: ignore[index]
            "requests": len(t.latencies), "errors": t.errors,
            "p50_ms": round(1000 * percentile(t.latencies, 50), 1),
            "p95_ms": round(1000 * percentile(t.latencies, 95), 1),
            "max_ms": round(1000 * max(t.latencies, default=float("nan")), 1),
        }
    report["all"] = {"requests": len(every), "errors": errors, "rps": round(len(every) / wall, 1),
                     "p50_ms": round(1000 * percentile(every, 50), 1), "p95_ms": round(1000 * percentile(every, 95), 1),
                     "p99_ms": round(1000 * percentile(every, 99), 1),
                     "mean_ms": round(1000 * statistics.fmean(every), 1) if every else None}
    if args.json:
        print(json.dumps(report, ensure_ascii=False))
    else:
        print(f"{args.users} users, think {args.think} s, {wall:.0f} s against {args.url}")
        print(f"{'page':<20}{'requests':>9}{'errors':>8}{'p50 ms':>9}{'p95 ms':>9}{'max ms':>9}")
        for label, row in report["pages"].items():  # type: ignore[attr-defined]
            print(f"{label:<20}{row['requests']:>9}{sum(row['errors'].values()):>8}{row['p50_ms']:>9}"
                  f"{row['p95_ms']:>9}{row['max_ms']:>9}  {row['errors'] or ''}")
        a = report["all"]
        print(f"{'all':<20}{a['requests']:>9}{a['errors']:>8}{a['p50_ms']:>9}{a['p95_ms']:>9}"  # type: ignore[index]
              f"   p99 {a['p99_ms']} ms, {a['rps']} req/s")  # type: ignore[index]
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
