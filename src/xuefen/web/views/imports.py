"""Roster imports (institution staff and officers).  Placeholder page until
the two-phase import lands."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render


@login_required
def index(request: HttpRequest) -> HttpResponse:
    return render(request, "xuefen/imports.html", {})
