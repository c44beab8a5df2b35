"""A roster import through the platform's own import path, timed.

    python benchmarks/bench_import.py                          # 100,000 rows, 20,000 teachers, SQLite
    python benchmarks/bench_import.py --rows 10000 --teachers 2000
    python benchmarks/bench_import.py --database postgres://postgres@127.0.0.1:5432/bench_import
    python benchmarks/bench_import.py --as district --reevaluate --methods sql,batch \
        --database postgres://postgres@127.0.0.1:5432/sqlpath_bench

What it does, in a fresh database (a temporary SQLite file, or the PostgreSQL
database given, which is emptied first): migrate; one city, one district bound
to 永吉 (``yongji``), 100 schools, one training institution and its staff
member; ``--teachers`` teachers, each with an account, so each is notified of
her records (bulk-created, not timed).  Then it writes a
CSV roster of ``--rows`` rows in the template's columns (a teacher several
records of different courses) and times the three service calls a user's
upload and confirmation go through:

* ``imports.receive``  — store the file, count the rows;
* ``imports.check_batch`` — phase 1: read and check every row;
* ``imports.commit_batch`` — phase 2: check again, price every record with
  the engine, write all in one transaction.

The institution's rows start 待审核 (they do not count until the school
approves them); ``--as district`` imports as the district office instead,
whose rows count at once, so every teacher is also re-evaluated.  The
teachers start without a stored verdict, so even the institution's import
stores each one's first; ``--evaluated`` stores every teacher's verdict
before the import (not timed), as on a platform in use: the institution's
import then re-evaluates no one, and the district's updates every verdict.
Peak memory is the process's ``ru_maxrss``.

``--reevaluate`` then times ``services.reevaluate`` over the district with
each method of ``--methods`` in turn (``sql`` on PostgreSQL only): once with
the results current (all confirmed, nothing written), once after the
binding's options change (every teacher re-evaluated and stored); each
method's change is the opposite of the previous one's, so each starts from
current results.  The load average is printed before and after.
"""

from __future__ import annotations

import argparse
import csv
import io
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
HEADER = ["教师编号", "姓名", "记录编号", "登记年度", "培训项目名称", "形式", "级别", "学时", "考核结果"]
FORMS = [("集中", "区县级", "24"), ("网络", "市级", "30"), ("校本", "校级", "12"), ("集中", "省级", "40"),
         ("学区", "校级", "16")]


def roster(rows: int, teachers: int) -> bytes:
    out = io.StringIO()
    w = csv.writer(out)
    w.writerow(HEADER)
    for i in range(rows):
        t = i % teachers
        k = i // teachers
        form, level, hours = FORMS[k % len(FORMS)]
        w.writerow([f"T{t:06d}", f"教师{t}", f"R{k:03d}", "2022", f"2022年培训项目{k}", form, level, hours,
                    "优秀" if (i * 7) % 50 == 0 else "合格"])
    return out.getvalue().encode("utf-8")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--teachers", type=int, default=20_000)
    ap.add_argument("--as", dest="importer", choices=["institution", "district"], default="institution")
    ap.add_argument("--database", help="DATABASE_URL (default: a temporary SQLite file)")
    ap.add_argument("--evaluated", action="store_true", help="store every teacher's verdict before the import")
    ap.add_argument("--reevaluate", action="store_true",
                    help="then time services.reevaluate over the district, current and after an option change")
    ap.add_argument("--methods", default=None,
                    help="re-evaluation methods, comma-separated: sql,batch (default: the database's default)")
    args = ap.parse_args(argv)

    tmp = tempfile.TemporaryDirectory(prefix="xuefen-bench-import-")
    os.environ["XUEFEN_DATA_DIR"] = tmp.name
    if args.database:
        os.environ["DATABASE_URL"] = args.database
    else:
        os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xuefen.web.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection

    from xuefen import idnumber
    from xuefen.web.models import ImportBatch, Notification, Org, OrgKind, Profile, Record, Role, Teacher
    from xuefen.web.services import imports
    from xuefen.web.services.ledger import Actor

    if args.database:
        with connection.cursor() as cur:  # an empty database: the benchmark owns it
            cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    t0 = time.perf_counter()
    call_command("migrate", verbosity=0)
    city = Org.objects.create(name="示范市", kind=OrgKind.CITY)
    district = Org.objects.create(name="东区", kind=OrgKind.DISTRICT, parent=city, policy="yongji")
    schools = [Org.objects.create(name=f"第{i + 1}学校", kind=OrgKind.SCHOOL, parent=district) for i in range(100)]
    inst = Org.objects.create(name="教师进修学校", kind=OrgKind.INSTITUTION, parent=district)
    staff = User.objects.create_user("ivan", password="x-bench-not-a-secret")
    if args.importer == "institution":
        Profile.objects.create(user=staff, role=Role.INSTITUTION_STAFF, org=inst)
        unit = inst  # an institution imports for the jurisdiction it sits in
    else:
        Profile.objects.create(user=staff, role=Role.DISTRICT_OFFICE, org=district)
        unit = district
    accounts = User.objects.bulk_create([User(username=f"t{i:06d}", password="!") for i in range(args.teachers)],
                                        batch_size=5000)  # "!": no password can log in
    Teacher.objects.bulk_create([
        Teacher(school=schools[i % len(schools)], teacher_no=f"T{i:06d}", name=f"教师{i}", stage="小学",
                post="专任教师", hired_year=2010, id_number=_id_number(idnumber, i), user=accounts[i])
        for i in range(args.teachers)
    ], batch_size=5000)
    rebuild = _rebuild_tallies()
    if rebuild is not None:
        rebuild()
    if args.evaluated:
        from xuefen.web.services.evaluation import refresh_results

        refresh_results(Teacher.objects.select_related("school"))
    setup_s = time.perf_counter() - t0
    data = roster(args.rows, args.teachers)
    actor = Actor(staff, "127.0.0.1")

    timings: dict[str, float] = {}
    t = time.perf_counter()
    batch = imports.receive(actor, unit, "roster.csv", data)
    timings["receive"] = time.perf_counter() - t
    t = time.perf_counter()
    batch = imports.check_batch(batch)
    timings["check"] = time.perf_counter() - t
    if batch.state != ImportBatch.State.VALID:
        print(f"校验未通过：{batch.errors[:5]}", file=sys.stderr)
        return 1
    t = time.perf_counter()
    batch = imports.commit_batch(actor, batch)
    timings["commit"] = time.perf_counter() - t
    if batch.state != ImportBatch.State.DONE:
        print(f"导入未完成：{batch.state} {batch.errors[:5]}", file=sys.stderr)
        return 1
    stored = Record.objects.count()
    total = sum(timings.values())
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    engine = connection.vendor
    print(f"database {engine}; {args.rows:,} rows for {args.teachers:,} teachers imported as {args.importer}"
          f"{' (every teacher evaluated before)' if args.evaluated else ''}; setup (not timed) {setup_s:.1f} s; "
          f"{Notification.objects.count():,} teachers notified")
    print("| rows | teachers | importer | database | receive s | check s | commit s | total s | records stored "
          "| peak RSS MB |")
    print("|---:|---:|---|---|---:|---:|---:|---:|---:|---:|")
    print(f"| {args.rows:,} | {args.teachers:,} | {args.importer} | {engine} | {timings['receive']:.1f} | "
          f"{timings['check']:.1f} | {timings['commit']:.1f} | {total:.1f} | {stored:,} | {rss:.0f} |")
    if args.reevaluate:
        from xuefen.web.services.reevaluate import default_method, reevaluate

        methods = (args.methods or default_method()).split(",")
        load = os.getloadavg()
        runs = []
        options: list[dict[str, str]] = [{}, {"partial_cycle": "full"}]
        for i, method in enumerate(methods):
            # the district's results are current: confirmed, nothing written
            current = reevaluate(district, method=method)
            # a changed option of the binding: every teacher is re-evaluated and stored
            district.policy_options = options[(i + 1) % 2]
            district.save()
            changed = reevaluate(district, method=method)
            runs.append((method, current, changed))
        after = os.getloadavg()
        print(f"load average (1/5/15 min) before the re-evaluations: {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}, "
              f"after: {after[0]:.2f}/{after[1]:.2f}/{after[2]:.2f}")
        print("| re-evaluation of the district | method | teachers | confirmed | re-evaluated one by one "
              "| to the batch evaluator | s |")
        print("|---|---|---:|---:|---:|---:|---:|")
        for method, current, changed in runs:
            for label, out in (("results current", current), ("after an option change", changed)):
                print(f"| {label} | {method} | {out.teachers:,} | {out.unchanged:,} | {out.refreshed:,} | "
                      f"{out.routed:,} | {out.seconds:.1f} |")
    tmp.cleanup()
    return 0 if stored == args.rows else 1


def _id_number(idnumber: Any, i: int) -> str:
    """A distinct, valid 身份证号 for teacher i (999 a birthday)."""
    import datetime as dt

    birth = dt.date(1970, 1, 1) + dt.timedelta(days=i // 999)
    return str(idnumber.make("220221", birth.strftime("%Y%m%d"), i % 999 + 1))


def _rebuild_tallies() -> Any:
    """The platform's per-unit tallies, rebuilt after the bulk-created teachers
    (when the platform keeps them)."""
    try:
        from xuefen.web.services import tallies  # type: ignore[attr-defined]
    except ImportError:
        return None
    return getattr(tallies, "rebuild", None) or getattr(tallies, "rebuild_all", None)


if __name__ == "__main__":
    sys.exit(main())
