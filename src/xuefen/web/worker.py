"""Celery application.  With no broker configured (the embedded default),
tasks run inline in the caller (CELERY_TASK_ALWAYS_EAGER)."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "xuefen.web.settings")
app = Celery("xuefen")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks(["xuefen.web"])
