"""Per-unit tallies (``UnitTally``): how many teachers of each unit's subtree
have passed, are in progress, have failed or are not evaluated, and how many
have met this year's minimums — maintained as the results change, so a
dashboard reads one row per unit instead of counting a subtree.

Upkeep has one entry point, :func:`change`: given a teacher's school and her
standing before and after a write, it adds the difference to the row of the
school and of every ancestor, with ``F()`` increments, in the caller's
transaction.  It is called by ``evaluation.refresh_result`` (every stored
result is written there) and ``teachers.add_teacher``; ``Org.save`` gives a
new unit its zero row.  :func:`rebuild` recounts everything from scratch,
for repair and after bulk loads.

Locks, in one global order so that no two writers wait on each other in a
cycle: a teacher's row (``refresh_result``), then tally rows by ascending
unit id.  A write that touches many teachers (an import, the demo) runs
inside :func:`deferred`, which sums the changes and takes the tally locks
once, at its end — taking them teacher by teacher would hold the province's
row while waiting for the next teacher's lock, which an approval holding
that teacher might be waiting to release.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Count, F, Q, QuerySet

from xuefen.engine.core import EARLY, FAILED, IN_PROGRESS, PASSED
from xuefen.web.models import Org, Teacher, TeacherResult, UnitTally

log = logging.getLogger(__name__)

FIELDS = ("teachers", "passed", "in_progress", "failed", "unevaluated", "year_passed", "year_checked")
# A teacher who completed her cycle ahead of time has nothing left to do: she
# counts with those who passed (so in the cycle's 合格率 a school's floor is
# judged on, officer.school_threshold), not with those still in progress.
_BUCKET = {PASSED: "passed", EARLY: "passed", IN_PROGRESS: "in_progress", FAILED: "failed"}
COMPLETED = (PASSED, EARLY)
# SQLite caps the parameters of one statement.
_CHUNK = 500

Figures = dict[str, int]


@dataclass(frozen=True)
class Standing:
    """What one teacher contributes to her units' tallies: her stored cycle
    status ("" when she has no result) and whether she met this year's
    minimums (None when this year is not checked)."""

    status: str = ""
    year_passed: bool | None = None

    @classmethod
    def of(cls, result: TeacherResult | None) -> Standing:
        return UNEVALUATED if result is None else cls(result.status, result.year_passed)

    def figures(self) -> Figures:
        out = zero()
        out["teachers"] = 1
        out[_BUCKET.get(self.status, "unevaluated")] = 1
        if self.year_passed is not None:
            out["year_checked"] = 1
            out["year_passed"] = int(self.year_passed)
        return out


UNEVALUATED = Standing()


def zero() -> Figures:
    return dict.fromkeys(FIELDS, 0)


def _delta(before: Standing | None, after: Standing | None) -> Figures:
    """``None`` is a teacher who is not (or no longer) in the unit at all."""
    old = before.figures() if before is not None else zero()
    new = after.figures() if after is not None else zero()
    return {f: new[f] - old[f] for f in FIELDS}


def ancestor_ids(path: str) -> list[int]:
    """The unit of ``path`` and every unit above it."""
    return [int(x) for x in path.strip("/").split("/") if x]


# Changes summed by an open ``deferred()`` block, per unit id; None outside one.
_pending: ContextVar[dict[int, Figures] | None] = ContextVar("xuefen_tally_pending", default=None)


def change(school: Org, before: Standing | None, after: Standing | None) -> None:
    """Count one teacher of ``school`` as ``after`` instead of ``before`` in
    the tallies of the school and its ancestors.  Call it after the write it
    describes, in the same transaction."""
    delta = _delta(before, after)
    if not any(delta.values()):
        return
    pending = _pending.get()
    if pending is not None:
        for org_id in ancestor_ids(school.path):
            sums = pending.setdefault(org_id, zero())
            for f, n in delta.items():
                sums[f] += n
        return
    _apply({org_id: delta for org_id in ancestor_ids(school.path)})


@contextmanager
def deferred() -> Iterator[None]:
    """One transaction whose tally changes are summed and applied once, at
    its end.  A nested block joins the outermost one; when it raises, the
    changes made inside it are dropped with its savepoint.  (A savepoint
    that is rolled back inside a block must itself be a ``deferred()`` block,
    or its changes would still be applied.)"""
    pending = _pending.get()
    if pending is not None:
        saved = {org_id: dict(sums) for org_id, sums in pending.items()}
        try:
            with transaction.atomic():
                yield
        except BaseException:
            pending.clear()
            pending.update(saved)
            raise
        return
    sums: dict[int, Figures] = {}
    token = _pending.set(sums)
    try:
        with transaction.atomic():
            yield
            _apply(sums)
    finally:
        _pending.reset(token)


def _apply(deltas: dict[int, Figures]) -> None:
    ids = sorted(org_id for org_id, d in deltas.items() if any(d.values()))
    if not ids:
        return
    found: set[int] = set()
    for i in range(0, len(ids), _CHUNK):
        # Locked in ascending id before any is changed: see the module's note.
        found.update(UnitTally.objects.select_for_update().filter(org_id__in=ids[i:i + _CHUNK])
                     .order_by("org_id").values_list("org_id", flat=True))
    # Units whose change is the same (a school's ancestors, usually all of
    # them) share one UPDATE.
    groups: dict[tuple[tuple[str, int], ...], list[int]] = defaultdict(list)
    for org_id in ids:
        if org_id in found:
            groups[tuple((f, n) for f, n in deltas[org_id].items() if n)].append(org_id)
    for key, members in groups.items():
        increments: dict[str, Any] = {f: F(f) + n for f, n in key}
        for i in range(0, len(members), _CHUNK):
            UnitTally.objects.filter(org_id__in=members[i:i + _CHUNK]).update(**increments)
    missing = [org_id for org_id in ids if org_id not in found]
    if missing:
        # Only a unit created behind Org.save (bulk_create, raw SQL) lacks a
        # row.  Counting it now, after the write, already includes the change.
        log.warning("units without a tally, counted from scratch: %s", missing)
        orgs = Org.objects.filter(pk__in=missing)
        UnitTally.objects.bulk_create([UnitTally(org=o, **figures(_subtree_teachers(o))) for o in orgs],
                                      ignore_conflicts=True)


# ------------------------------------------------------------------ from scratch


def _aggregates() -> dict[str, Any]:
    return {
        "teachers": Count("id"),
        "passed": Count("id", filter=Q(result__status__in=COMPLETED)),
        "in_progress": Count("id", filter=Q(result__status=IN_PROGRESS)),
        "failed": Count("id", filter=Q(result__status=FAILED)),
        "year_passed": Count("id", filter=Q(result__year_passed=True)),
        "year_checked": Count("id", filter=Q(result__year_passed__isnull=False)),
    }


def _complete(row: dict[str, Any]) -> Figures:
    out = {f: int(row.get(f) or 0) for f in FIELDS}
    out["unevaluated"] = out["teachers"] - out["passed"] - out["in_progress"] - out["failed"]
    return out


def _subtree_teachers(org: Org) -> QuerySet[Teacher]:
    return Teacher.objects.filter(school__path__startswith=org.path)


def figures(teachers: QuerySet[Teacher]) -> Figures:
    """The figures of a set of teachers counted from their stored results
    (what a tally must equal for the teachers of its subtree)."""
    return _complete(teachers.aggregate(**_aggregates()))


def count_all() -> dict[int, Figures]:
    """Every unit's figures from scratch: one pass over the teachers grouped
    by school, each school's counts added to its ancestors."""
    paths = dict(Org.objects.values_list("id", "path"))
    out = {org_id: zero() for org_id in paths}
    for row in Teacher.objects.order_by().values("school_id").annotate(**_aggregates()):
        counts = _complete(row)
        for org_id in ancestor_ids(paths[row["school_id"]]):
            if org_id in out:
                sums = out[org_id]
                for f in FIELDS:
                    sums[f] += counts[f]
    return out


def stored(orgs: Iterable[Org]) -> dict[int, Figures]:
    """The tallies of ``orgs``, by unit id.  A unit without a row is counted
    from scratch, so a missing row costs time, never a wrong figure."""
    orgs = list(orgs)
    out: dict[int, Figures] = {}
    ids = [o.pk for o in orgs]
    for i in range(0, len(ids), _CHUNK):
        for row in UnitTally.objects.filter(org_id__in=ids[i:i + _CHUNK]).values("org_id", *FIELDS):
            out[row["org_id"]] = {f: row[f] for f in FIELDS}
    for o in orgs:
        if o.pk not in out:
            out[o.pk] = figures(_subtree_teachers(o))
    return out


@dataclass(frozen=True)
class Rebuilt:
    units: int
    corrected: int


@transaction.atomic
def rebuild() -> Rebuilt:
    """Recount every unit's tally from the stored results and store it.

    On PostgreSQL the tally table is locked against writers (readers go on)
    before counting: a writer that has already changed a tally has then
    committed, so the count sees its result; a writer that has not is held
    at its tally update until this commits, and then applies its change on
    top of a count that did not include it."""
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute(f"LOCK TABLE {connection.ops.quote_name(UnitTally._meta.db_table)} IN EXCLUSIVE MODE")
    fresh = count_all()
    current = {row["org_id"]: {f: row[f] for f in FIELDS} for row in UnitTally.objects.values("org_id", *FIELDS)}
    changed = [UnitTally(org_id=org_id, **figs) for org_id, figs in sorted(fresh.items())
               if org_id in current and current[org_id] != figs]
    created = [UnitTally(org_id=org_id, **figs) for org_id, figs in sorted(fresh.items()) if org_id not in current]
    UnitTally.objects.bulk_update(changed, list(FIELDS), batch_size=_CHUNK)
    UnitTally.objects.bulk_create(created, batch_size=_CHUNK)
    return Rebuilt(units=len(fresh), corrected=len(changed) + len(created))
