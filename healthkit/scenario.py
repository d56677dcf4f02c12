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
"""

import datetime as dt
from dataclasses import dataclass
from typing import Any

from django.utils.translation import gettext as _

from communities.models import Resident
from healthkit import engine, ingest
from healthkit.errors import ApplicationError
from healthkit.models import IngestBatch, PopupCase
from healthkit.simulator import register_event


class ScenarioError(ApplicationError):
    """A malformed or impossible scenario event."""


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
            popup_lift(case=case, actor_label="community", reason=str(reason),
                       data={"decision": "lift", "via": "scenario"}, at=ctx.at)


ENGINE_EVENTS = {
    "arrival": arrival, "stay": stay, "local_case": local_case, "quarantine": quarantine,
    "drug_purchase": drug_purchase, "clinic_visit": clinic_visit, "test_result": test_result,
    "popup_assignment": popup_assignment, "community_decision": community_decision,
}


def register_engine_events() -> None:
    for event_type, handler in ENGINE_EVENTS.items():
        register_event(event_type, handler)
