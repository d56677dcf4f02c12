"""Reads for the resident's status page: the history in plain words and the next step with its
expected time. Who did something is said by role ("12345 hotline", "your community"), never by
a staff account name; a filer not confirmed as the resident (`limited`) sees only their own
filing's progress (no community name, no outcome text, no other appeal's reference)."""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext as _

from appeals.clearance.models import ClearanceEvent, ClearanceTask
from appeals.clearance.selectors import ResidentProgress
from appeals.models import OUTCOME_LABELS, Appeal, AppealEvent, AppealLink
from appeals.notices import next_step_text

# Staff actions are told by the role of who acted; automatic steps say so.
_AUTOMATIC_LABELS = {"system", "sla-sweep", "clearance", "clearance-sweep", "relief", "engine"}


@dataclass(frozen=True)
class Step:
    at: dt.datetime
    text: str
    who: str


@dataclass(frozen=True)
class NextStep:
    text: str
    due: dt.datetime | None = None


def _who(actor, actor_label: str, *, community: bool = False) -> str:
    if actor is not None:
        return _("Your community") if community else _("12345 hotline")
    if actor_label == "resident" or actor_label == "":
        return _("You")
    if actor_label in _AUTOMATIC_LABELS:
        return _("Automatic")
    return _("Your community") if community else _("12345 hotline")


def _appeal_step_text(event: AppealEvent, *, limited: bool) -> str | None:
    """The plain sentence for one appeal event, or None where another event already says it."""
    Kind = AppealEvent.Kind
    data = event.data or {}
    if event.kind == Kind.FILED:
        return _("We received your appeal.")
    if event.kind == Kind.REPEAT:
        return _("You appealed again; it was added to this appeal.")
    if event.kind == Kind.EVIDENCE_ADDED:
        return _("Your screenshots were added.")
    if event.kind == Kind.STATUS_CHANGED:
        if data.get("to") == Appeal.Status.IN_PROGRESS and data.get("from") == Appeal.Status.NEW:
            return _("A 12345 operator started handling your appeal.")
        if data.get("to") == Appeal.Status.IN_PROGRESS:
            return _("Your appeal is being handled again.")
        return None  # routed, waiting, closed: their own events say it in words
    if event.kind == Kind.EVIDENCE_REQUESTED:
        return _("We asked you by SMS for more evidence.")
    if event.kind == Kind.ROUTED:
        if limited or not data.get("community_name"):
            return _("Your appeal was passed to the responsible community to check the details.")
        return _("Your appeal was passed to %(community)s to check your details.") % {
            "community": data["community_name"]}
    if event.kind == Kind.MERGED:
        if limited:
            return _("Your appeal was combined with another request about the same matter.")
        return _("Your appeal was merged into appeal %(ref)s: follow that one.") % {"ref": data.get("into", "")}
    if event.kind == Kind.MERGED_IN:
        return None if limited else _("Another appeal of yours was merged into this one.")
    if event.kind == Kind.CLOSED:
        if limited:
            return _("Your appeal was handled and closed.")
        label = OUTCOME_LABELS.get(data.get("outcome", ""))
        return (_("Your appeal was closed: %(outcome)s.") % {"outcome": label}) if label else _(
            "Your appeal was closed.")
    return str(event.get_kind_display())


_COMMUNITY_TEXTS = {
    ClearanceEvent.Kind.OPENED: lambda: _("Your community started checking your appeal."),
    ClearanceEvent.Kind.LINK_SENT: lambda: _("Your community sent you an SMS link to confirm your details."),
    ClearanceEvent.Kind.CONFIRMED: lambda: _("You confirmed your details; the community is checking them."),
    ClearanceEvent.Kind.COMMITMENT_SIGNED: lambda: _("You signed the commitment letter."),
    ClearanceEvent.Kind.INFO_REQUESTED: lambda: _("Your community asked you a question by SMS."),
    ClearanceEvent.Kind.INVESTIGATED: lambda: _("Your community finished its check and sent you what to do."),
    ClearanceEvent.Kind.LIFTED: lambda: _("Your community accepted your return; the popup was lifted."),
    ClearanceEvent.Kind.ACCEPTED: lambda: _("Your community accepted your return."),
    ClearanceEvent.Kind.REJECTED: lambda: _("Your community could not accept your return yet."),
    ClearanceEvent.Kind.CLOSED: lambda: _("Your community's check was closed."),
}


def status_history(appeal: Appeal, events, *, limited: bool,
                   community_step: ResidentProgress | None = None) -> list[Step]:
    """The appeal's public events and the community's resident-facing ones, in time order, each
    in plain words with the role of who acted. Repeated link SMS are told once."""
    steps = []
    for event in events:
        text = _appeal_step_text(event, limited=limited)
        if text:
            steps.append(Step(event.at, text, _who(event.actor, event.actor_label)))
    if community_step is not None and not limited:
        links_told = False
        for event in community_step.events:
            if event.kind == ClearanceEvent.Kind.LINK_SENT:
                if links_told:
                    continue
                links_told = True
            compose = _COMMUNITY_TEXTS.get(event.kind)
            if compose is not None:
                steps.append(Step(event.at, compose(), _who(event.actor, event.actor_label, community=True)))
    steps.sort(key=lambda s: s.at)
    # the same sentence twice in a row says nothing new
    return [s for i, s in enumerate(steps) if i == 0 or s.text != steps[i - 1].text]


def _live_link_expiry(appeal: Appeal) -> dt.datetime | None:
    link = (AppealLink.objects.filter(appeal=appeal, used_at__isnull=True).order_by("-expires_at").first())
    return link.expires_at if link else None


def status_next_step(appeal: Appeal, *, limited: bool,
                     community_step: ResidentProgress | None = None) -> NextStep | None:
    """What happens next and by when (the SLA due time, a link's expiry, the community's due
    time or the end of the measures)."""
    Status = Appeal.Status
    if appeal.status == Status.CLOSED:
        return None if limited else NextStep(next_step_text(appeal.outcome))
    if appeal.status == Status.WAITING_RESIDENT:
        return NextStep(_("Add the evidence we asked for through the link in our SMS."), _live_link_expiry(appeal))
    if appeal.status != Status.ROUTED:
        return NextStep(_("A 12345 operator checks your appeal and answers."), appeal.sla_due_at)
    if limited:
        return NextStep(_("The responsible community is checking the details."))
    task = community_step.task if community_step is not None else None
    if task is None:
        due = (appeal.routed_at + dt.timedelta(hours=settings.CLEARANCE_SLA_HOURS)) if appeal.routed_at else None
        return NextStep(_("Your community will contact you."), due)
    if task.state in (ClearanceTask.State.OPEN, ClearanceTask.State.INFO_REQUESTED):
        link = task.links.filter(used_at__isnull=True, revoked_at__isnull=True).order_by("-expires_at").first()
        return NextStep(_("Confirm your details through the link in your community's SMS."),
                        link.expires_at if link else task.sla_due_at)
    if task.state == ClearanceTask.State.CONFIRMED:
        return NextStep(_("Your community is checking your details."), task.sla_due_at)
    if task.state == ClearanceTask.State.MEASURES:
        return NextStep(_("Complete what your community asked (tests, commitment letter); the popup is lifted "
                          "when everything is on record."), task.measures_until)
    return NextStep(_("Your community has decided; the appeal closes shortly."))
