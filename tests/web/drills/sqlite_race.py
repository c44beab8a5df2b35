"""50 simultaneous approvals on the embedded SQLite database, through the
API with real threads and one connection each (issue 19 item 5).

Run in its own process (``python -m tests.web.drills.sqlite_race DIR``) so
the database is a file under DIR, as in ``./run.sh``, not the test run's
in-memory one.  Prints one JSON line: the status codes of the racing
requests, and what the database holds afterwards."""

from __future__ import annotations

import json
import os
import sys
import threading
from collections import Counter
from decimal import Decimal


def main() -> None:
    data_dir = sys.argv[1]
    os.environ["XUEFEN_DATA_DIR"] = data_dir
    os.environ.pop("DATABASE_URL", None)
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xuefen.web.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.core.management import call_command

    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    if len(sys.argv) > 2 and sys.argv[2] == "as-before":
        # the settings before issue 19: deferred transactions, sessions saved on every request
        settings.DATABASES["default"]["OPTIONS"] = {"timeout": 20}
        settings.SESSION_SAVE_EVERY_REQUEST = True
    call_command("migrate", verbosity=0)
    call_command("createcachetable", verbosity=0)

    from django.contrib.auth.models import User
    from django.db import connections
    from django.test import Client

    from xuefen import idnumber
    from xuefen.web.models import AuditEntry, Org, OrgKind, Profile, Record, Role, Source, Status
    from xuefen.web.services.evaluation import price_records
    from xuefen.web.services.teachers import add_teacher

    city = Org.objects.create(name="示范市", kind=OrgKind.CITY)
    east = Org.objects.create(name="东区", kind=OrgKind.DISTRICT, parent=city, policy="yongji")
    school = Org.objects.create(name="东区实验小学", kind=OrgKind.SCHOOL, parent=east)
    n = 50
    officers = []
    for i in range(n):
        u = User.objects.create_user(f"officer{i}", password="a-long-test-password")
        Profile.objects.create(user=u, role=Role.SCHOOL_OFFICER, org=school)
        officers.append(u)
    records = []
    for i in range(n):
        u = User.objects.create_user(f"teacher{i}", password="a-long-test-password")
        Profile.objects.create(user=u, role=Role.TEACHER, org=school)
        t = add_teacher(school, user=u, teacher_no=f"T{i:04d}", name=f"教师{i}", stage="小学",
                        id_number=idnumber.make("220221", "19850101", i + 1), post="专任教师", hired_year=2010)
        r = Record(teacher=t, uid="X001", source=Source.DECLARATION, status=Status.PENDING, year=2026, title="培训",
                   form="集中", level="区县级", hours=Decimal(24), result="合格")
        price_records(t, [r])
        r.save()
        records.append(r)
    clients = []
    for u in officers:
        c = Client()
        c.force_login(u)
        clients.append(c)
    connections.close_all()

    def race(targets: list[int]) -> Counter[int]:
        barrier = threading.Barrier(n)
        codes: Counter[int] = Counter()
        lock = threading.Lock()

        def one(i: int) -> None:
            barrier.wait(timeout=30)
            try:
                code = clients[i].post(f"/api/records/{targets[i]}/approve/", {"version": 1},
                                       content_type="application/json").status_code
            except Exception as exc:  # a 500 raised through the test client
                code = 500
                sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
            finally:
                connections.close_all()
            with lock:
                codes[code] += 1

        threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=120)
        return codes

    same = race([records[0].pk] * n)
    different = race([r.pk for r in records])

    # Browsing while a long write (an import's commit) holds the database:
    # pages that only read must not wait for it, let alone fail.
    from django.db import transaction

    from xuefen.web.models import Notification

    holding = threading.Event()
    release = threading.Event()

    def long_write() -> None:
        try:
            with transaction.atomic():
                Notification.objects.create(user=officers[0], message="导入中")
                holding.set()
                release.wait(timeout=60)
        finally:
            connections.close_all()

    teacher_client = Client()
    teacher_client.force_login(User.objects.get(username="teacher0"))
    for c, path in ((teacher_client, "/me/"), (clients[1], "/review/"), (clients[2], "/dashboard/")):
        c.get(path)  # signed in and seen once, as a browsing user is
    connections.close_all()
    writer = threading.Thread(target=long_write)
    writer.start()
    holding.wait(timeout=30)
    browse: Counter[int] = Counter()
    pages = [(clients[1], "/review/"), (clients[2], "/dashboard/"), (teacher_client, "/me/")]
    for c, path in pages * 3:
        try:
            browse[c.get(path).status_code] += 1
        except Exception as exc:
            browse[500] += 1
            sys.stderr.write(f"{type(exc).__name__}: {exc}\n")
    release.set()
    writer.join(timeout=60)
    connections.close_all()
    out = {
        "same": dict(same), "different": dict(different), "browse_during_write": dict(browse),
        "approved": Record.objects.filter(status=Status.SCHOOL_APPROVED).count(),
        "audit_first": AuditEntry.objects.filter(action="school_approve", object_id=str(records[0].pk)).count(),
        "version_first": Record.objects.get(pk=records[0].pk).version,
    }
    print(json.dumps(out))


if __name__ == "__main__":
    main()
