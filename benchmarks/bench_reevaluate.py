"""Re-evaluation on PostgreSQL reads only the teachers a change affects:
timed in a province-sized database, so that the cost is seen to follow the
affected teachers and not the population.

    python benchmarks/bench_reevaluate.py --teachers 100000
    python benchmarks/bench_reevaluate.py --teachers 1000000 --records 10

It empties the PostgreSQL database given (``--database``, default
``postgres://postgres@127.0.0.1:5432/reeval_bench``; created when missing),
migrates, and writes a population with COPY (not timed): one city,
districts of about 8,300 teachers (schools of 100), the first district (西区)
bound to 山东 (``shandong``), the others to 永吉 (``yongji``); ``--records``
approved records per teacher over 2022–2026 (the forms of
``bench_import.FORMS``).  Every teacher has a stored result: the two
districts the timed steps touch get their real results from
``refresh_results`` (not timed); the rest hold placeholder rows, there so
that the tables and their indexes are of the population's size — a step
that read one of them would find it stale and rewrite it, which the printed
"re-evaluated" counts would show.

Then, timed, through the platform's own services (``services/reevaluate``
with the ``sql`` method, ``services/imports``):

1. after 山东's policy file changed: ``reevaluate(policy="shandong")``,
   results current — every teacher of 西区 confirmed in SQL, nothing written;
2. after 东区1's options changed (``partial_cycle: full``):
   ``reevaluate(东区1, bound_here=True)`` — each of its teachers re-evaluated
   and stored;
3. the same again with the results now current: confirmed, nothing written;
4. a district office's import of ``--import-teachers`` teachers × 5 rows into
   东区2 (receive, check, commit): only those teachers are re-evaluated.

The load average is printed before and after; figures go to
``docs/performance.md``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import resource
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_import import FORMS, HEADER

DISTRICT = 8_300
SCHOOL = 100
YEARS = range(2022, 2027)


def _copy(cursor: Any, table: str, columns: list[str], rows: Any) -> int:
    n = 0
    with cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(row)
            n += 1
    return n


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--teachers", type=int, default=100_000)
    ap.add_argument("--records", type=int, default=10, help="records per teacher")
    ap.add_argument("--import-teachers", type=int, default=1_000)
    ap.add_argument("--database", default="postgres://postgres@127.0.0.1:5432/reeval_bench")
    args = ap.parse_args(argv)

    import psycopg

    base, _, name = args.database.rpartition("/")
    with psycopg.connect(f"{base}/postgres", autocommit=True) as admin:
        if admin.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
            admin.execute(f'CREATE DATABASE "{name}"')
    tmp = tempfile.TemporaryDirectory(prefix="xuefen-bench-reeval-")
    os.environ["XUEFEN_DATA_DIR"] = tmp.name
    os.environ["DATABASE_URL"] = args.database
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xuefen.web.settings")
    import django

    django.setup()
    from django.contrib.auth.models import User
    from django.core.management import call_command
    from django.db import connection, transaction

    from xuefen.web.models import ImportBatch, Org, OrgKind, Profile, Record, Role, Status, Teacher, TeacherResult
    from xuefen.web.services import imports, tallies
    from xuefen.web.services.evaluation import refresh_results
    from xuefen.web.services.ledger import Actor
    from xuefen.web.services.reevaluate import reevaluate

    t0 = time.perf_counter()
    with connection.cursor() as cur:  # an empty database: the benchmark owns it
        cur.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public;")
    call_command("migrate", verbosity=0)
    city = Org.objects.create(name="示范市", kind=OrgKind.CITY)
    n_districts = max(3, -(-args.teachers // DISTRICT))
    districts = [Org.objects.create(name="西区" if d == 0 else f"东区{d}", kind=OrgKind.DISTRICT, parent=city,
                                    policy="shandong" if d == 0 else "yongji") for d in range(n_districts)]
    n_schools = -(-args.teachers // SCHOOL)
    schools = [Org.objects.create(name=f"第{s + 1}学校", kind=OrgKind.SCHOOL, parent=districts[s % n_districts])
               for s in range(n_schools)]
    staff = User.objects.create_user("carol", password="x-bench-not-a-secret")
    Profile.objects.create(user=staff, role=Role.DISTRICT_OFFICE, org=districts[2])
    now = dt.datetime.now(dt.UTC)
    with transaction.atomic(), connection.cursor() as cur:
        raw = cur.cursor
        # teacher i sits in school i // SCHOOL; ids are assigned in that order
        _copy(raw, Teacher._meta.db_table,
              ["teacher_no", "name", "stage", "post", "hired_year", "leaves", "school_id", "id_number_enc", "id_hmac",
               "transfer_from"],
              ((f"T{i:07d}", f"教师{i}", "小学", "专任教师", 2010, "[]", schools[i // SCHOOL].pk, "", f"{i:064x}", "")
               for i in range(args.teachers)))
        first = Teacher.objects.order_by("pk").values_list("pk", flat=True).first()
        assert first is not None

        def records() -> Any:
            for i in range(args.teachers):
                for k in range(args.records):
                    form, level, hours = FORMS[(i + k) % len(FORMS)]
                    yield (first + i, f"R{k:03d}", YEARS[k % len(YEARS)], f"培训项目{k}", "", "", level, form, "",
                           hours, "合格", "", "", "", "district", Status.SCHOOL_APPROVED, "", "0", "", "", "", now,
                           now, 1)

        n_records = _copy(raw, Record._meta.db_table,
                          ["teacher_id", "uid", "year", "title", "category", "theme", "level", "form", "location",
                           "hours", "result", "role", "achievement", "program", "source", "status", "status_reason",
                           "credits", "credit_category", "explanation", "policy_id", "created_at", "updated_at",
                           "version"], records())
        # placeholders: replaced below for the districts the timed steps read
        _copy(raw, TeacherResult._meta.db_table,
              ["teacher_id", "policy_id", "cycle_start", "cycle_end", "passed", "status", "total", "year_total",
               "data", "computed_at"],
              ((first + i, "placeholder", 2021, 2025, False, "未达标", "0", "0", "{}", now)
               for i in range(args.teachers)))
        cur.execute("ANALYZE")
    tallies.rebuild()
    touched = [districts[0], districts[1]]
    for d in touched:
        refresh_results(Teacher.objects.select_related("school").filter(school__path__startswith=d.path))
    setup_s = time.perf_counter() - t0
    print(f"PostgreSQL; {args.teachers:,} teachers in {n_districts} districts and {n_schools:,} schools, "
          f"{n_records:,} records; setup (not timed) {setup_s:.0f} s")

    rows: list[tuple[str, Any, float]] = []
    load = os.getloadavg()
    out = reevaluate(policy="shandong", method="sql")
    rows.append(("policy file of 山东 changed, results current: reevaluate(policy='shandong')", out, out.seconds))
    east = districts[1]
    east.policy_options = {"partial_cycle": "full"}
    east.save()
    out = reevaluate(east, method="sql", bound_here=True)
    rows.append(("options of 东区1 changed: reevaluate(东区1, bound_here=True)", out, out.seconds))
    out = reevaluate(east, method="sql", bound_here=True)
    rows.append(("the same, results now current", out, out.seconds))

    actor = Actor(staff, "127.0.0.1")
    members = list(Teacher.objects.filter(school__path__startswith=districts[2].path).order_by("pk")
                   .values_list("teacher_no", "name")[:args.import_teachers])
    import csv
    import io

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(HEADER)
    for no, nm in members:
        for k in range(5):
            form, level, hours = FORMS[k % len(FORMS)]
            w.writerow([no, nm, f"I{k:03d}", "2026", f"2026年培训项目{k}", form, level, hours, "合格"])
    started = time.perf_counter()
    batch = imports.receive(actor, districts[2], "roster.csv", buf.getvalue().encode("utf-8"))
    batch = imports.check_batch(batch)
    if batch.state != ImportBatch.State.VALID:
        print(f"校验未通过：{batch.errors[:5]}", file=sys.stderr)
        return 1
    batch = imports.commit_batch(actor, batch)
    import_s = time.perf_counter() - started
    if batch.state != ImportBatch.State.DONE:
        print(f"导入未完成：{batch.state} {batch.errors[:5]}", file=sys.stderr)
        return 1
    placeholders = TeacherResult.objects.filter(policy_id="placeholder").count()
    after = os.getloadavg()
    print(f"load average (1/5/15 min) before: {load[0]:.2f}/{load[1]:.2f}/{load[2]:.2f}, "
          f"after: {after[0]:.2f}/{after[1]:.2f}/{after[2]:.2f}; peak RSS "
          f"{resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")
    print(f"| step ({args.teachers:,} teachers) | teachers read | confirmed | re-evaluated and stored | s |")
    print("|---|---:|---:|---:|---:|")
    for label, o, s in rows:
        print(f"| {label} | {o.teachers:,} | {o.unchanged:,} | {o.refreshed:,} | {s:.1f} |")
    print(f"| district import of {len(members):,} teachers × 5 rows into 东区2 (receive, check, commit) | "
          f"{len(members):,} | — | {len(members):,} | {import_s:.1f} |")
    print(f"placeholder results left untouched: {placeholders:,} of {args.teachers:,} "
          f"(expected {args.teachers - sum(o.teachers for _l, o, _s in rows[:2]) - len(members):,})")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
