"""The bridge between the ledger and the policy engine.

Every figure the platform shows comes from here, i.e. from the same engine
and policy files as ``xuefen evaluate``: the platform never computes credits
itself.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import defaultdict
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from django.utils import timezone

from xuefen.engine.evaluate import Evaluation, Evaluator
from xuefen.engine.report import as_dict
from xuefen.model import Leave
from xuefen.model import Record as EngineRecord
from xuefen.model import Teacher as EngineTeacher
from xuefen.policy.loader import default_registry, pick
from xuefen.policy.schema import Policy
from xuefen.web.models import Org, Record, Teacher, TeacherResult
from xuefen.web.permissions import COUNTING
from xuefen.web.services import bulk, tallies

FACT_FIELDS = (
    "year", "title", "category", "theme", "level", "form", "location", "hours", "days", "result", "role",
    "achievement", "program", "absent_hours", "topics", "words", "approved", "certificate", "subject_related",
    "education_system", "completed_year", "makeup_for_year",
)


def engine_teacher(t: Teacher) -> EngineTeacher:
    leaves = tuple(Leave(year=int(lv["year"]), kind=str(lv["kind"]), approved=bool(lv.get("approved", True)))
                   for lv in t.leaves or [])
    return EngineTeacher(
        id=t.teacher_no, name=t.name, stage=t.stage or None, post=t.post or None, hired_year=t.hired_year,
        transfer_in_year=t.transfer_in_year, leaves=leaves, normal_graduate=t.normal_graduate,
    )


def engine_record(r: Record) -> EngineRecord:
    return _engine_record(r.uid, {name: getattr(r, name) for name in FACT_FIELDS}, r.preset_credits)


def _engine_record(uid: str, facts: dict[str, Any], preset_credits: Decimal | None) -> EngineRecord:
    values: dict[str, Any] = {name: None if value == "" else value for name, value in facts.items()}
    values["credits"] = preset_credits
    return EngineRecord(id=uid, **values)


# ------------------------------------------------------------------ policies and evaluators

Chosen = tuple[Policy, dt.date, dict[str, str]]

# Evaluators built, per thread: ``Evaluator.evaluate`` keeps its working state
# for the teacher at hand in the evaluator, so two threads must not share one.
_local = threading.local()
# Policies × option sets in use are few; the bound only keeps a registry that
# was reloaded (tests) from growing the cache without end.
EVALUATORS_KEPT = 64


def evaluator(policy: Policy, options: dict[str, str]) -> Evaluator:
    """The evaluator of ``policy`` under ``options``, built once: building one
    compiles every rule, which costs more than evaluating a teacher, and an
    evaluator evaluates any number of teachers one after another."""
    cache: dict[tuple[int, str], tuple[Policy, Evaluator]] | None = getattr(_local, "evaluators", None)
    if cache is None:
        cache = _local.evaluators = {}
    key = (id(policy), repr(sorted(options.items())))
    hit = cache.get(key)
    # The policy is kept with its evaluator: an id is only unique among live objects.
    if hit is not None and hit[0] is policy:
        return hit[1]
    built = Evaluator(policy, options)
    if len(cache) >= EVALUATORS_KEPT:
        cache.clear()
    cache[key] = (policy, built)
    return built


class Policies:
    """The policy each school is bound to on one day, each school looked up
    once: a write over many teachers (an import) would otherwise read a
    school's line of ancestors again for every teacher.  Use one per write;
    a binding changed afterwards is not seen."""

    def __init__(self, today: dt.date | None = None) -> None:
        self.today = today or timezone.localdate()
        self._binding: dict[int, Org | None] = {}  # school id -> the node binding its policy
        self._picked: dict[str, tuple[Policy, dt.date]] = {}  # binding's policy name -> (version, as of)

    def prefetch(self, schools: Iterable[Org]) -> None:
        """Look up the bindings of many schools with one query per 500 ancestors."""
        todo = {s.pk: s for s in schools if s.pk not in self._binding}
        if not todo:
            return
        lines = {pk: tallies.ancestor_ids(s.path) for pk, s in todo.items()}
        wanted = sorted({i for line in lines.values() for i in line})
        nodes: dict[int, Org] = {}
        for i in range(0, len(wanted), _CHUNK):
            nodes.update((o.pk, o) for o in Org.objects.filter(pk__in=wanted[i:i + _CHUNK]))
        for pk, line in lines.items():
            # the nearest node, itself or an ancestor, that binds a policy (Org.binding)
            self._binding[pk] = next((nodes[i] for i in reversed(line) if i in nodes and nodes[i].policy), None)

    def binding(self, school: Org) -> Org | None:
        """The nearest node, the school or above it, that binds a policy."""
        if school.pk not in self._binding:
            self.prefetch([school])
        return self._binding[school.pk]

    def for_school(self, school: Org) -> Chosen | None:
        """(policy version, date to evaluate at, options), or None when no
        node above the school binds a policy."""
        binding = self.binding(school)
        if binding is None:
            return None
        if binding.policy not in self._picked:
            self._picked[binding.policy] = pick(default_registry(), binding.policy, None, self.today)
        policy, as_of = self._picked[binding.policy]
        return policy, as_of, dict(binding.policy_options or {})


def policy_for(teacher: Teacher, today: dt.date | None = None) -> Chosen | None:
    return Policies(today).for_school(teacher.school)


def evaluate_teacher(teacher: Teacher, today: dt.date | None = None) -> Evaluation | None:
    """The teacher's verdict from her counting records (approved onwards)."""
    chosen = policy_for(teacher, today)
    if chosen is None:
        return None
    policy, as_of, options = chosen
    # by teacher only, the state tested here: see _refresh (SQLite and "status IN")
    records = [engine_record(r) for r in teacher.records.order_by("year", "uid") if r.status in COUNTING]
    return evaluator(policy, options).evaluate(engine_teacher(teacher), records, as_of)


def price_records(teacher: Teacher, records: list[Record], today: dt.date | None = None,
                  policies: Policies | None = None) -> None:
    """Fill each record's own credits and explanation (what it converts to under
    the bound policy), whatever its state — a pending declaration shows the
    teacher what it will be worth.  ``policies``: the lookup of a write that
    prices many teachers (``today`` is then its own)."""
    chosen = (policies or Policies(today)).for_school(teacher.school)
    if chosen is None:
        for r in records:
            r.credits, r.credit_category, r.explanation, r.policy_id = Decimal(0), "", "所在单位未绑定学分政策", ""
        return
    policy, as_of, options = chosen
    priced = evaluator(policy, options).price(engine_teacher(teacher), [engine_record(r) for r in records], as_of)
    by_uid = {rr.id: rr for rr in priced}
    for r in records:
        rr = by_uid[r.uid]
        r.credits = rr.credits
        r.credit_category = rr.category or ""
        r.explanation = rr.explanation
        r.policy_id = policy.id


# ------------------------------------------------------------------ stored results


def refresh_result(teacher: Teacher, today: dt.date | None = None) -> TeacherResult | None:
    """Re-evaluate one teacher, store the verdict and count the change in her
    units' tallies (incremental upkeep: a change to one record re-evaluates
    only its teacher and touches only her school's line of tallies)."""
    with tallies.deferred():
        return _refresh([teacher], Policies(today), keep=True)[teacher.pk]


def refresh_results(teachers: Iterable[Teacher], today: dt.date | None = None) -> int:
    """:func:`refresh_result` for many teachers (an import), in ascending id:
    the same locks, reads and writes, 500 teachers at a time with a handful
    of queries each time instead of several per teacher.  The tally changes
    are applied once, at the end (``tallies.deferred``).  Returns how many
    teachers were refreshed; their results are not kept (for a province's
    teachers they would be hundreds of megabytes)."""
    by_pk = {t.pk: t for t in teachers}
    ids = sorted(by_pk)
    policies = Policies(today)
    policies.prefetch(t.school for t in by_pk.values())
    with tallies.deferred():
        for i in range(0, len(ids), _CHUNK):
            _refresh([by_pk[pk] for pk in ids[i:i + _CHUNK]], policies, keep=False)
    return len(ids)


# Result fields written by a refresh (besides the teacher).
_RESULT_FIELDS = ("policy_id", "cycle_start", "cycle_end", "passed", "status", "total", "year_passed", "year_total",
                  "data", "computed_at")
# Ids per query: SQLite caps the parameters of one statement.
_CHUNK = 500


def _refresh(teachers: list[Teacher], policies: Policies, keep: bool) -> dict[int, TeacherResult | None]:
    """Refresh up to _CHUNK teachers, in ascending id, inside a transaction;
    with ``keep``, return each one's stored result (None: no policy bound)."""
    ids = [t.pk for t in teachers]
    # Each teacher's row is locked before anything of hers is read, so two
    # refreshes of one teacher run one after the other: the second evaluates
    # with the first's records committed and counts the first's result as
    # "before".  FOR NO KEY UPDATE is enough for that, and does not hold up
    # the foreign key checks (FOR KEY SHARE) of others inserting her records
    # meanwhile.  Ascending id, as every writer over many teachers locks them.
    list(Teacher.objects.select_for_update(no_key=True).filter(pk__in=ids).order_by("pk").values_list("pk", flat=True))
    old = {r.teacher_id: r for r in TeacherResult.objects.filter(teacher_id__in=ids)
           .only("pk", "teacher_id", "status", "year_passed")}
    records: dict[int, list[EngineRecord]] = defaultdict(list)
    # Selected by teacher only, the state tested here: given "status IN (…)"
    # too, SQLite (no statistics) reads every counting record of the
    # province through the status index, for each slice of teachers.
    rows = (Record.objects.filter(teacher_id__in=ids).order_by("teacher_id", "year", "uid")
            .values_list("status", "teacher_id", "uid", "preset_credits", *FACT_FIELDS))
    for status, teacher_id, uid, preset, *facts in rows:
        if status in COUNTING:
            records[teacher_id].append(_engine_record(uid, dict(zip(FACT_FIELDS, facts, strict=True)), preset))

    out: dict[int, TeacherResult | None] = {}
    unbound: list[int] = []
    to_create: list[TeacherResult] = []
    to_update: list[TeacherResult] = []
    for teacher in teachers:
        before = tallies.Standing.of(old.get(teacher.pk))
        chosen = policies.for_school(teacher.school)
        if chosen is None:
            unbound.append(teacher.pk)
            out[teacher.pk] = None
            tallies.change(teacher.school, before, tallies.UNEVALUATED)
            continue
        policy, as_of, options = chosen
        ev = evaluator(policy, options).evaluate(engine_teacher(teacher), records.get(teacher.pk, []), as_of)
        year_result = ev.years.get(ev.as_of.year)
        result = TeacherResult(
            teacher=teacher, policy_id=ev.policy.id, cycle_start=ev.cycle_start, cycle_end=ev.cycle_end,
            passed=ev.passed, status=ev.status, total=ev.total,
            year_passed=year_result.passed if year_result else None,
            year_total=year_result.total if year_result else Decimal(0),
            data=_jsonable(as_dict(ev)),
        )
        if teacher.pk in old:
            result.pk = old[teacher.pk].pk
            to_update.append(result)
        else:
            to_create.append(result)
        if keep:
            out[teacher.pk] = result
        # summed by the caller's tallies.deferred(), applied after the results
        tallies.change(teacher.school, before, tallies.Standing.of(result))

    if unbound:
        TeacherResult.objects.filter(teacher_id__in=unbound).delete()
    bulk.update(to_update, _RESULT_FIELDS)
    bulk.insert(to_create)
    if keep and to_create:
        # the new results' ids, so that what is returned is what is stored
        created = {r.teacher_id: r for r in to_create}
        for teacher_id, pk in TeacherResult.objects.filter(teacher_id__in=list(created)).values_list("teacher_id", "pk"):
            created[teacher_id].pk = pk
    return out


def _jsonable(value: Any) -> Any:
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    return value
