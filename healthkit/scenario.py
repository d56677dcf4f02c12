"""The simulator's world: the context handed to scenario event handlers, and the engine's own
event types (registered in HealthkitConfig.ready()).

Handler contract (other apps register theirs with healthkit.simulator.register_event):

    def handler(*, ctx: ScenarioContext, event: dict, index: int) -> None

- `ctx.resident` is the scenario's resident (created inside the throwaway transaction),
  `ctx.at` the event's instant (the engine clock, healthkit.clock.now(), is frozen at it);
- `event` is the raw JSON object (with "at" and "type"); validate what you read from it and
  raise `ScenarioError(message)` if it is malformed: the command stops and names the index;
- write through your services as in production; the command re-evaluates the resident's
  automatic popups right after the handler and before the next event, so a handler that raises
  a popup itself (venue exposure) should pass `at=ctx.at`.

Isolation (`isolated_world`): inside the replay's throwaway transaction every table of the
database except the rules in force (PopupPolicy) and Django's framework bookkeeping is
shadowed by an empty TEMPORARY table of the same name and shape. PostgreSQL resolves an
unqualified table name in pg_temp first, so the same engine, ingest and venue code, ORM and
raw SQL alike, reads and writes only the scenario's own rows: a local case, risk window or
scan stored in the database cannot change the answer, and nothing stored is touched.
"""

import contextlib
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.apps import apps
from django.db import connection
from django.utils.translation import gettext as _

from communities.models import Resident
from healthkit import engine, ingest
from healthkit.errors import ApplicationError
from healthkit.models import IngestBatch, PopupCase
from healthkit.simulator import register_event


class ScenarioError(ApplicationError):
    """A malformed or impossible scenario event."""


# What a scenario sees of the stored database: the rules in force (a replay answers "what would
# the rules do", so they must be the real ones) and Django's framework bookkeeping, which holds
# no resident data. Every other table, present and future, is shadowed.
SHARED_MODELS = frozenset({"healthkit.popuppolicy"})
SHARED_APPS = frozenset({"admin", "auth", "contenttypes", "sessions"})


def shadowed_tables() -> list[str]:
    """The tables a scenario gets empty copies of (model tables, many-to-many tables included)."""
    tables = set()
    for model in apps.get_models(include_auto_created=True):
        meta = model._meta
        if meta.label_lower in SHARED_MODELS or meta.app_label in SHARED_APPS:
            continue
        if meta.managed and not meta.proxy and not meta.swapped:
            tables.add(meta.db_table)
    return sorted(tables)


@contextlib.contextmanager
def isolated_world() -> Iterator[list[str]]:
    """Shadow every table of `shadowed_tables()` with an empty TEMPORARY table of the same name,
    columns, defaults, identity, CHECK constraints and indexes (the unique and partial indexes the
    engine's ON CONFLICT relies on included; foreign keys are not copied, so nothing reaches back
    to stored rows). Yields the shadowed names.

    Must run inside a transaction that the caller rolls back: the shadows are dropped with it
    (ON COMMIT DROP besides). While inside, pg_temp is first on the search path (as PostgreSQL
    does by default; made explicit so a configured search_path cannot change it) and the
    connection prepares no statements, so no plan made against a stored table is reused. Each
    shadow has its own identity sequence: ids start at 1 and mean nothing outside. Raises
    RuntimeError outside a transaction, when nested, or if a name does not resolve to its shadow.
    """
    if not connection.in_atomic_block:
        raise RuntimeError("isolated_world() needs a transaction that is rolled back")
    names = shadowed_tables()
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.relname, n.nspname, n.oid = pg_my_temp_schema() FROM pg_class c "
            "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = ANY(SELECT to_regclass(t) "
            "FROM unnest(%s::text[]) t)", [names])
        found = {name: (schema, temporary) for name, schema, temporary in cursor.fetchall()}
        if any(temporary for _schema, temporary in found.values()):
            raise RuntimeError("isolated_world() is already active on this connection")
        names = [name for name in names if name in found]  # a table not migrated yet: nothing to hide
        for name in names:
            # Names come from the model registry and the catalogue, quoted; no input reaches this SQL.
            cursor.execute(f"CREATE TEMPORARY TABLE {quote(name)} (LIKE {quote(found[name][0])}.{quote(name)} "
                           "INCLUDING ALL) ON COMMIT DROP")
        cursor.execute("SELECT set_config('search_path', 'pg_temp, ' || current_setting('search_path'), true)")
        cursor.execute(
            "SELECT t FROM unnest(%s::text[]) t JOIN pg_class c ON c.oid = to_regclass(t) "
            "WHERE c.relnamespace <> pg_my_temp_schema()", [names])
        leaking = [row[0] for row in cursor.fetchall()]
    if leaking:
        raise RuntimeError(f"not shadowed: {', '.join(leaking)}")
    raw = connection.connection
    threshold = raw.prepare_threshold
    raw.prepare_threshold = None
    try:
        yield names
    finally:
        raw.prepare_threshold = threshold


@dataclass
class ScenarioContext:
    resident: Resident
    at: dt.datetime

    def evaluate(self) -> engine.Evaluation:
        return engine.evaluate(resident_ids=[self.resident.pk], at=self.at)


def require(event: dict[str, Any], *names: str) -> list[Any]:
    """The named fields of an event, or ScenarioError naming the first missing one."""
    missing = [n for n in names if event.get(n) in (None, "")]
    if missing:
        raise ScenarioError(_("missing field %(field)s") % {"field": missing[0]})
    return [event[n] for n in names]


def _ingest(ctx: ScenarioContext, kind: str, record: dict[str, Any]) -> None:
    result = ingest.ingest(kind=kind, records=[record], resident=ctx.resident, evaluate=False)
    if result.rejected:
        errors = result.rejected[0]["errors"]
        raise ScenarioError("; ".join(f"{k}: {v}" for k, v in errors.items()))


def _at(ctx: ScenarioContext) -> str:
    return ctx.at.isoformat()


def arrival(*, ctx, event, index):
    (county,) = require(event, "county")
    _ingest(ctx, IngestBatch.Kind.ARRIVALS, {"arrived_at": _at(ctx), "from_county": county})


def stay(*, ctx, event, index):
    county, start = require(event, "county", "from")
    _ingest(ctx, IngestBatch.Kind.STAYS, {"county": county, "from": start, "to": event.get("to"),
                                          "border_port": event.get("border_port", False)})


def local_case(*, ctx, event, index):
    (county,) = require(event, "county")
    _ingest(ctx, IngestBatch.Kind.LOCAL_CASES, {"county": county, "reported_at": _at(ctx)})


def quarantine(*, ctx, event, index):
    start, end = require(event, "from", "to")
    _ingest(ctx, IngestBatch.Kind.QUARANTINE_ORDERS, {"from": start, "to": end})


def drug_purchase(*, ctx, event, index):
    (category,) = require(event, "category")
    _ingest(ctx, IngestBatch.Kind.MEDICAL_EVENTS,
            {"kind": "drug_purchase", "category": category, "occurred_at": _at(ctx)})


def clinic_visit(*, ctx, event, index):
    (symptom,) = require(event, "symptom")
    _ingest(ctx, IngestBatch.Kind.MEDICAL_EVENTS,
            {"kind": "clinic_visit", "symptom": symptom, "occurred_at": _at(ctx)})


def test_result(*, ctx, event, index):
    sampled, outcome = require(event, "sampled_at", "result")
    _ingest(ctx, IngestBatch.Kind.TEST_RESULTS, {
        "lab": event.get("lab", "scenario"), "sample_id": event.get("sample_id", f"scenario-{index}"),
        "sampled_at": sampled, "resulted_at": _at(ctx), "result": outcome,
        "from_other_province": event.get("from_other_province", False),
    })


def popup_assignment(*, ctx, event, index):
    popup_type, reason = require(event, "popup_type", "reason")
    _ingest(ctx, IngestBatch.Kind.POPUP_ASSIGNMENTS,
            {"popup_type": popup_type, "reason": reason, "assigned_at": _at(ctx)})


def community_decision(*, ctx, event, index):
    """The community lifts (or keeps) the resident's open popups of that type."""
    from healthkit.services import popup_lift

    popup_type, decision, reason = require(event, "popup_type", "decision", "reason")
    if decision not in ("lift", "keep"):
        raise ScenarioError(_('decision must be "lift" or "keep"'))
    ctx.evaluate()  # the decision is about the popups as they stand at this instant
    cases = list(PopupCase.objects.filter(resident=ctx.resident, popup_type=popup_type,
                                          state__in=PopupCase.OPEN_STATES).order_by("pk"))
    if not cases:
        raise ScenarioError(_("no open popup of type %(t)s to decide on") % {"t": popup_type})
    if decision == "lift":
        for case in cases:
            try:  # the policy in force decides whether a community may lift this type
                popup_lift(case=case, actor_label="community", reason=str(reason),
                           data={"decision": "lift", "via": "scenario"}, at=ctx.at, authority="community")
            except ScenarioError:
                raise
            except ApplicationError as exc:
                raise ScenarioError(str(exc.message)) from None


ENGINE_EVENTS = {
    "arrival": arrival, "stay": stay, "local_case": local_case, "quarantine": quarantine,
    "drug_purchase": drug_purchase, "clinic_visit": clinic_visit, "test_result": test_result,
    "popup_assignment": popup_assignment, "community_decision": community_decision,
}


def register_engine_events() -> None:
    for event_type, handler in ENGINE_EVENTS.items():
        register_event(event_type, handler)
