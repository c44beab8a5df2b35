"""The embedded demo, dumped (issue 17 item 2 and 3, "Done when"): after
the demo is loaded and browsed — a district office opening pages that show
身份证号 in full, an export, the API — neither the SQLite dump nor the log
output contains the 18-character ID number of any demo teacher, nor any
valid ID number at all; ``xuefen manage audit verify`` passes, and fails
once one audit row is edited behind the triggers' back."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

from cryptography.fernet import Fernet

from xuefen import idnumber
from xuefen.web.logmask import ID_NUMBER

ROOT = Path(__file__).resolve().parents[2]

BROWSE = """
import django
django.setup()
from django.core.management import call_command
from django.test import Client
from django.contrib.auth.models import User
from xuefen.web.models import Org, Teacher
call_command("migrate", verbosity=0)
call_command("createcachetable", verbosity=0)
call_command("demo")
for login in ("east", "city", "officer", "teacher", "admin"):
    c = Client()
    c.force_login(User.objects.get(username=login))
    for org in Org.objects.all():
        c.get(f"/dashboard/org/{org.pk}/")
        c.get(f"/dashboard/org/{org.pk}/export.xlsx")
        c.get(f"/publicity/{org.pk}/")
    for t in Teacher.objects.all()[:20]:
        c.get(f"/teachers/{t.pk}/")
    c.get("/api/teachers/")
    c.get("/audit/")
    c.get("/me/")
Client().post("/login/", {"username": "east", "password": "wrong"})
"""


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=900, check=False)


def test_demo_dump_and_logs_hold_no_id_number(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "XUEFEN_ENV", "XUEFEN_ID_KEYS",
                                                             "XUEFEN_ID_HMAC_KEY")}
    env.update(XUEFEN_DATA_DIR=str(tmp_path), DJANGO_SETTINGS_MODULE="xuefen.web.settings", XUEFEN_DEBUG="0")
    browsed = _run([sys.executable, "-c", BROWSE], env)
    assert browsed.returncode == 0, browsed.stderr[-3000:]
    logs = browsed.stdout + browsed.stderr

    database = tmp_path / "xuefen.sqlite3"
    with sqlite3.connect(database) as db:
        dump = "\n".join(db.iterdump())
        tokens = [row[0] for row in db.execute("SELECT id_number_enc FROM xuefen_teacher")]
    fernet_key = (tmp_path / "id_keys").read_text(encoding="utf-8").split()[0]
    numbers = {Fernet(fernet_key.encode()).decrypt(t.encode()).decode() for t in tokens}
    assert len(numbers) == 300 and all(idnumber.problem(n) is None for n in numbers)
    files = [p for p in tmp_path.rglob("*") if p.is_file() and p.suffix in (".log", ".txt")]
    texts = {"dump": dump, "logs": logs, **{str(p): p.read_text(errors="replace") for p in files}}
    for where, text in texts.items():
        assert not [n for n in numbers if n in text], where
        valid = [m.group(0) for m in ID_NUMBER.finditer(text) if idnumber.problem(m.group(0)) is None]
        assert valid == [], (where, valid[:3])

    manage = [sys.executable, "-m", "xuefen.cli", "manage", "audit", "verify"]
    verified = _run(manage, env)
    assert verified.returncode == 0 and "校验通过" in verified.stdout, verified.stderr[-2000:]

    with sqlite3.connect(database) as db:
        # Editing needs the triggers out of the way, as someone with the file would do.
        try:
            db.execute("UPDATE xuefen_auditentry SET comment = 'edited' WHERE id = (SELECT MIN(id) FROM xuefen_auditentry)")
            refused = False
        except sqlite3.DatabaseError:
            refused = True
        assert refused  # the trigger stands even outside the application
        db.execute("DROP TRIGGER xuefen_audit_append_only_update")
        db.execute("UPDATE xuefen_auditentry SET comment = 'edited' WHERE id = (SELECT MIN(id) FROM xuefen_auditentry)")
    broken = _run(manage, env)
    assert broken.returncode != 0 and "断开" in broken.stderr, broken.stdout + broken.stderr
