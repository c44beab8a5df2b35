"""A worker that is killed in the middle of an import's commit (issue 17
item 5).  ``python -m tests.web.drills.kill_commit BATCH USER MEDIA FLAG``
confirms the batch as USER and, once the records are inserted inside the
commit's transaction, writes FLAG and waits to be killed (SIGKILL: no
cleanup of any kind runs)."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any


def main() -> None:
    batch_id, user_id, media, flag = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], Path(sys.argv[4])
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xuefen.web.settings")
    import django

    django.setup()
    from django.conf import settings
    from django.contrib.auth.models import User

    from xuefen.web.models import ImportBatch
    from xuefen.web.services import bulk, imports
    from xuefen.web.services.ledger import Actor

    settings.MEDIA_ROOT = media
    real_insert = bulk.insert

    def insert_then_hang(rows: list[Any]) -> int:
        n = real_insert(rows)
        flag.write_text(str(n))
        time.sleep(300)
        return n

    bulk.insert = insert_then_hang  # type: ignore[assignment]
    imports.commit_batch(Actor(User.objects.get(pk=user_id)), ImportBatch.objects.get(pk=batch_id))


if __name__ == "__main__":
    main()
