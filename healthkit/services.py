"""Writes of the popup core: raising, transitions (locked, table-checked, logged), lifting."""

import copy
import datetime as dt
from collections.abc import Collection
from typing import Any

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.translation import gettext as _

from communities.models import PersonalDataAccess, Resident, User
from communities.selectors import resident_by_id_number, residents_visible_to
from communities.services import access_log
from healthkit import clock
from healthkit.errors import ApplicationError, IllegalTransition, RetryLater
from healthkit.models import (
    HealthStatusOrder,
    OutboxRecord,
    PopupCase,
    PopupEvent,
    PopupPolicy,
    TestRequirement,
)
from healthkit.outbox import outbox_record
from healthkit.selectors import health_code_at, policy_in_force

_EVENT_FOR_TARGET = {
    PopupCase.State.UNDER_REVIEW: PopupEvent.Kind.REVIEW_STARTED,
    PopupCase.State.ACTIVE: PopupEvent.Kind.REJECTED,
    PopupCase.State.LIFTED: PopupEvent.Kind.LIFTED,
    PopupCase.State.WITHDRAWN: PopupEvent.Kind.WITHDRAWN,
}


def popup_raise(
    *,
    resident: Resident,
    popup_type: int,
    source: str,
    cause: dict[str, Any],
    at: dt.datetime | None = None,
    dedupe_key: str = "",
    actor: User | None = None,
    actor_label: str = "",
    reason: str = "",
    policy: PopupPolicy | None = None,
) -> tuple[PopupCase, bool]:
    """Open a popup, or return the open one for the same cause (idempotent; returns created flag).

    Raises ApplicationError if the popup type is not in force (abolished or not yet defined) at `at`.
    """
    at = at or clock.now()
    policy = policy or policy_in_force(popup_type, at)
    if policy is None or policy.abolished:
        raise ApplicationError(
            _("Popup type %(type)s is not in force at that time.") % {"type": popup_type},
            extra={"popup_type": popup_type},
        )
    open_case = PopupCase.objects.filter(
        resident=resident, popup_type=popup_type, dedupe_key=dedupe_key,
        state__in=PopupCase.OPEN_STATES,
    ).first()
    if open_case is not None:
        return open_case, False
    try:
        with transaction.atomic():
            case = PopupCase.objects.create(
                resident=resident, popup_type=popup_type, dedupe_key=dedupe_key, cause=cause,
                source=source, policy=policy, raised_at=at,
            )
            PopupEvent.objects.create(
                case=case, kind=PopupEvent.Kind.RAISED, to_state=case.state, actor=actor,
                actor_label=actor_label or source, reason=reason,
                data={"cause": cause, "policy": policy.version}, at=at,
            )
            # The ticket systems learn of it exactly once, from this same transaction.
            outbox_record(case=case, kind=OutboxRecord.Kind.RAISED, at=at, policy=policy.version,
                          rule=str(cause.get("rule", source)))
    except IntegrityError:
        # A concurrent raise for the same cause won the unique index: return its case.
        case = PopupCase.objects.get(
            resident=resident, popup_type=popup_type, dedupe_key=dedupe_key,
            state__in=PopupCase.OPEN_STATES,
        )
        return case, False
    return case, True


@transaction.atomic
def popup_case_transition(
    *,
    case: PopupCase,
    to: str,
    actor: User | None = None,
    actor_label: str = "",
    reason: str = "",
    data: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
    only_from: Collection[str] | None = None,
) -> PopupCase:
    """Move a case to `to`. Locks the row, checks the transition table, writes the event.

    Raises IllegalTransition (translated) if the table forbids it, e.g. lifting a lifted popup.
    `only_from`: the states the caller's decision is about; a case found in another once locked
    (the engine lifted it while a person was deciding) is returned unchanged, with no event. A
    caller must not read the state without the lock to decide whether to call.
    """
    at = at or clock.now()
    locked = PopupCase.objects.select_for_update().get(pk=case.pk)
    if only_from is not None and locked.state not in only_from:
        case.state, case.lifted_at = locked.state, locked.lifted_at
        return locked
    if to not in PopupCase.TRANSITIONS[locked.state]:
        raise IllegalTransition(
            _("A popup that is %(state)s cannot become %(to)s.")
            % {"state": locked.get_state_display(), "to": PopupCase.State(to).label},
            extra={"from": locked.state, "to": to, "case": locked.pk},
        )
    from_state = locked.state
    locked.state = to
    if to in (PopupCase.State.LIFTED, PopupCase.State.WITHDRAWN):
        locked.lifted_at = at
    locked.save(update_fields=["state", "lifted_at", "updated_at"])
    PopupEvent.objects.create(
        case=locked, kind=_EVENT_FOR_TARGET[to], from_state=from_state, to_state=to, actor=actor,
        actor_label=actor_label or (actor.get_username() if actor else ""), reason=reason,
        data=data or {}, at=at,
    )
    if to in (PopupCase.State.LIFTED, PopupCase.State.WITHDRAWN):
        policy = policy_in_force(locked.popup_type, at)
        outbox_record(case=locked, kind=to, at=at, policy=policy.version if policy else None,
                      rule=str((data or {}).get("rule", "")))
    case.state, case.lifted_at = locked.state, locked.lifted_at
    return locked


def popup_start_review(*, case: PopupCase, actor: User | None, reason: str = "") -> PopupCase:
    return popup_case_transition(case=case, to=PopupCase.State.UNDER_REVIEW, actor=actor, reason=reason)


def popup_reject_review(*, case: PopupCase, actor: User | None, reason: str) -> PopupCase:
    """Back to active after a community's rejection, if it is still under review once locked
    (the engine may have lifted it meanwhile: then it stays lifted)."""
    return popup_case_transition(case=case, to=PopupCase.State.ACTIVE, actor=actor, reason=reason,
                                 only_from={PopupCase.State.UNDER_REVIEW})


def popup_lift_authorities(popup_type: int, at: dt.datetime | None = None) -> set[str] | None:
    """Who may lift a popup of this type at `at`, from the policy in force ("who may lift it":
    `lift_authority`, and `in_city_lift_authority` for residents already in the city); None
    where no numbered policy applies (no restriction)."""
    policy = policy_in_force(popup_type, at or clock.now())
    if policy is None:
        return None
    return {who for who in (policy.params.get("lift_authority"), policy.params.get("in_city_lift_authority")) if who}


def popup_lift(
    *,
    case: PopupCase,
    actor: User | None = None,
    actor_label: str = "",
    reason: str,
    data: dict[str, Any] | None = None,
    at: dt.datetime | None = None,
    authority: str | None = None,
    only_open: bool = False,
) -> PopupCase:
    """Lift a popup (community decision, lab upload, or the engine with its 'why' in `data`).
    `only_open`: a popup found closed once locked (lifted by the engine while a person decided)
    is left as it is instead of refused.

    `authority` ("community", "lab"): the kind of decision lifting it, checked against the
    policy in force, so that e.g. a community cannot lift popup 4, which only a negative result
    on record lifts. Raises ApplicationError when the policy gives that decision no say."""
    if authority is not None:
        allowed = popup_lift_authorities(case.popup_type, at)
        if allowed is not None and authority not in allowed:
            raise ApplicationError(
                _("Popup %(n)d is not lifted by a community decision: it lifts by itself when its rule no "
                  "longer holds (for popup 4, once a negative test result is on record).")
                % {"n": case.popup_type} if authority == "community" else
                _("Popup %(n)d cannot be lifted this way under the rules in force.") % {"n": case.popup_type},
                extra={"popup_type": case.popup_type, "authority": authority},
            )
    return popup_case_transition(
        case=case, to=PopupCase.State.LIFTED, actor=actor, actor_label=actor_label,
        reason=reason, data=data, at=at, only_from=PopupCase.OPEN_STATES if only_open else None,
    )


def popup_withdraw(
    *, case: PopupCase, actor: User | None = None, actor_label: str = "", reason: str,
    data: dict[str, Any] | None = None, at: dt.datetime | None = None,
) -> PopupCase:
    """Withdraw a popup raised in error (e.g. a corrected venue risk window)."""
    return popup_case_transition(
        case=case, to=PopupCase.State.WITHDRAWN, actor=actor, actor_label=actor_label,
        reason=reason, data=data, at=at,
    )


def test_requirement_create(
    *,
    resident: Resident,
    kind: str,
    trigger_at: dt.datetime,
    deadline_at: dt.datetime,
    reason: str,
    source_ref: str = "",
) -> TestRequirement:
    """Require a nucleic-acid test of `resident`: if no negative result sampled after
    `trigger_at` has been received by `deadline_at`, rule 4 raises popup 4 at `deadline_at`
    (the sweep or the next evaluation), and lifts it when one is received.

    Idempotent on resident + kind + source_ref + trigger_at (returns the existing row).
    Raises ApplicationError for an unknown kind or a deadline before the trigger."""
    if kind not in TestRequirement.Kind.values:
        raise ApplicationError(_("Unknown test requirement kind."), extra={"kind": kind})
    if deadline_at < trigger_at:
        raise ApplicationError(_("The deadline cannot come before the requirement starts."))
    with transaction.atomic():
        requirement, created = TestRequirement.objects.get_or_create(
            resident=resident, kind=kind, source_ref=source_ref[:100], trigger_at=trigger_at,
            defaults={"deadline_at": deadline_at, "reason": reason[:200], "received_at": clock.now()},
        )
        if created:
            # A deadline already passed raises at once; otherwise the sweep raises it on time.
            from healthkit import engine_work

            engine_work.evaluate_later([resident.pk])
    return requirement


test_requirement_create.__test__ = False  # a service, not a test: pytest must not collect it


def test_requirements_withdraw(*, resident_id: int, source_prefix: str, at: dt.datetime | None = None) -> list[int]:
    """Withdraw the requirements a source made of one resident (`source_ref` starting with
    `source_prefix`) whose deadline has not passed: no longer type-4 triggers, so nobody is asked
    for a test nobody will look at. A requirement already missed keeps what it raised (a negative
    result lifts it, as always). Idempotent; one statement on the resident's rows. Returns the ids."""
    at = at or clock.now()
    with connection.cursor() as cursor:
        cursor.execute(
            "UPDATE healthkit_testrequirement SET withdrawn_at = %s WHERE resident_id = %s AND withdrawn_at IS NULL"
            " AND deadline_at > %s AND starts_with(source_ref, %s) RETURNING id",
            [at, resident_id, at, source_prefix])
        return sorted(row[0] for row in cursor.fetchall())


test_requirements_withdraw.__test__ = False


def health_status_order_create(
    *,
    resident: Resident,
    status: str,
    starts_at: dt.datetime,
    ends_at: dt.datetime | None,
    reason: str,
    actor: User | None,
) -> HealthStatusOrder:
    """Order a yellow (home observation) or red (centralised observation) health code for a
    period; health_code_at reads it. Idempotent: the same order twice returns the first one.
    Raises ApplicationError for an unknown status or an end before the start."""
    if status not in HealthStatusOrder.Status.values:
        raise ApplicationError(_("A status order is yellow or red."), extra={"status": status})
    if ends_at is not None and ends_at <= starts_at:
        raise ApplicationError(_("A status order must end after it starts."))
    with transaction.atomic():
        existing = HealthStatusOrder.objects.filter(
            resident=resident, status=status, starts_at=starts_at, ends_at=ends_at,
        ).first()
        if existing is not None:
            return existing
        return HealthStatusOrder.objects.create(
            resident=resident, status=status, starts_at=starts_at, ends_at=ends_at,
            reason=reason[:200], ordered_by=actor,
        )


# --- Staff health-code look-up ------------------------------------------------------------------

class LookupCapReached(RetryLater):
    """The account has used its health-code look-ups for today (settings.HEALTH_CODE_LOOKUPS_PER_DAY)."""


def health_code_lookup(*, actor: User, id_number: str, reason: str, at: dt.datetime | None = None):
    """One staff look-up of a resident's health code by exact ID number.

    A person's health status is what the 2020 proxy look-up leaked, so every look-up needs a
    reason, counts against a per-account daily cap (hits and misses alike: probing which ID
    numbers are registered costs the same) and writes an access-log row with the reason before
    anything is answered. Scoped like the registry (a worker: residents of their communities).
    Raises ApplicationError (no reason; no resident the actor may see, the same message for an
    unknown number and an out-of-scope one) or LookupCapReached. Returns (resident, HealthCode).
    """
    reason = (reason or "").strip()
    if not reason:
        raise ApplicationError(_("Please say why you need this person's health code."), extra={"field": "reason"})
    with transaction.atomic():
        # One account's look-ups are counted one at a time, so the cap holds under concurrency.
        User.objects.select_for_update(no_key=True).filter(pk=actor.pk).first()  # not FK checks: no deadlock
        today = timezone.localtime(clock.now()).replace(hour=0, minute=0, second=0, microsecond=0)
        used = PersonalDataAccess.objects.filter(actor=actor, context__startswith="api:health-code",
                                                 at__gte=today).count()
        if used >= settings.HEALTH_CODE_LOOKUPS_PER_DAY:
            raise LookupCapReached(
                _("You have used your %(n)d health-code look-ups for today. Ask a supervisor if more are needed.")
                % {"n": settings.HEALTH_CODE_LOOKUPS_PER_DAY}, extra={"cap": settings.HEALTH_CODE_LOOKUPS_PER_DAY},
                retry_after=(today + dt.timedelta(days=1) - timezone.localtime(clock.now())).total_seconds())
        resident = resident_by_id_number(id_number)
        if resident is None or not residents_visible_to(actor).filter(pk=resident.pk).exists():
            access_log(actor=actor, resident=None, action=PersonalDataAccess.Action.LOOKUP,
                       context="api:health-code:no-match", reason=reason)
            miss = ApplicationError(_("No resident you may see has that ID number."))
        else:
            access_log(actor=actor, resident=resident, action=PersonalDataAccess.Action.LOOKUP,
                       context="api:health-code", reason=reason)
            miss = None
    if miss is not None:
        raise miss  # after the commit: the audit row of a miss stays
    return resident, health_code_at(resident, at)


# --- Idempotency keys of REST POSTs (healthkit.api.IdempotentPost) ---------------------------------

def idempotent_requests_purge(*, limit: int | None = None) -> int:
    """Forget the Idempotency-Keys (and the answers kept with them) older than
    IDEMPOTENCY_KEY_HOURS: the oldest `limit` of them, or all. Set-based; returns rows deleted."""
    from healthkit.models import IdempotentRequest

    horizon = clock.now() - dt.timedelta(hours=settings.IDEMPOTENCY_KEY_HOURS)
    expired = IdempotentRequest.objects.filter(created_at__lt=horizon).order_by("created_at").values("pk")
    if limit is not None:
        expired = expired[:limit]
    deleted, _by_model = IdempotentRequest.objects.filter(pk__in=expired).delete()
    return deleted


# --- Policy versions ---------------------------------------------------------------------------
# The rules are data with effective dates (2022-02-12, 2022-07-16, ...). A version's parameters
# decide popups for every instant of its window, and the engine re-reads every version at each
# evaluation, so two things must hold after any change: (1) the rules for an instant already past
# are the ones under which popups were raised and lifted then (a change takes effect from now on,
# never retroactively: a version back-dated into the past would raise popups dated before anyone
# could have known, and re-date lifts already told to residents and the ticket systems); (2) from
# its first version on, a popup type has exactly one version at every instant (a gap would lift
# every popup of the type at its start and raise none until its end; an overlap would apply two).


def _policy_window(policy: PopupPolicy) -> tuple[dt.datetime, dt.datetime | None]:
    return policy.effective_from, policy.effective_to


def policy_time(instant: dt.datetime | None) -> str:
    """An effective date as the admin shows it (city time)."""
    return timezone.localtime(instant).strftime("%Y-%m-%d %H:%M:%S") if instant else _("open-ended")


def _policy_versions_check(*, before: list[PopupPolicy], after: list[PopupPolicy], now: dt.datetime) -> None:
    """Raise ApplicationError unless `after` (one type's versions once the change is made) keeps
    the rules of every instant before `now` as `before` had them and leaves no gap or overlap."""
    stored = {p.pk: p for p in before}
    kept = {p.pk for p in after if p.pk is not None}
    for old in before:
        if old.pk not in kept and old.effective_from < now:
            raise ApplicationError(
                _("Version %(version)s has been in force since %(start)s and cannot be withdrawn; "
                  "add a new version from now on instead.")
                % {"version": old.version, "start": policy_time(old.effective_from)})
    for policy in sorted(after, key=lambda p: p.pk is not None):  # a new version's own error first
        if policy.effective_to is not None and policy.effective_to <= policy.effective_from:
            raise ApplicationError(_("A version must end after it starts."))
        if policy.effective_from >= now:
            continue
        old = stored.get(policy.pk)
        if old is None:
            raise ApplicationError(
                _("A new version cannot take effect in the past: popups were already raised and lifted "
                  "under the rules then in force. Give an effective date from now on (%(now)s).")
                % {"now": policy_time(now)}, extra={"field": "effective_from"})
        past_end = lambda p: p.effective_to if p.effective_to is not None and p.effective_to < now else None  # noqa: E731
        if (old.popup_type, old.version, old.effective_from, old.params, past_end(old)) != (
                policy.popup_type, policy.version, policy.effective_from, policy.params, past_end(policy)):
            raise ApplicationError(
                _("Version %(version)s has been in force since %(start)s: its rule, name and dates up to now "
                  "cannot change. To change the rule from now on, add a new version with the instant it "
                  "takes effect; this one then ends there.")
                % {"version": old.version, "start": policy_time(old.effective_from)})
    ordered = sorted(after, key=lambda p: p.effective_from)
    for earlier, later in zip(ordered, ordered[1:], strict=False):
        if earlier.effective_to is None or earlier.effective_to > later.effective_from:
            raise ApplicationError(
                _("Version %(a)s is still in force when version %(b)s starts (%(start)s): two versions "
                  "would apply at once.")
                % {"a": earlier.version, "b": later.version, "start": policy_time(later.effective_from)})
        if earlier.effective_to < later.effective_from:
            raise ApplicationError(
                _("No version would be in force from %(end)s (end of %(a)s) to %(start)s (start of %(b)s): "
                  "every popup of this type would be lifted in that gap. A version ends where the next "
                  "one starts.")
                % {"end": policy_time(earlier.effective_to), "a": earlier.version,
                   "start": policy_time(later.effective_from), "b": later.version})
    if ordered and ordered[-1].effective_to is not None:
        last = ordered[-1]
        raise ApplicationError(
            _("No version would be in force after %(end)s (end of %(version)s): every popup of this type "
              "would be lifted then. To end or abolish the rule, add a version from that instant "
              "(abolished, if it is).")
            % {"end": policy_time(last.effective_to), "version": last.version}, extra={"field": "effective_to"})


def _policy_plan(*, policy: PopupPolicy | None, withdraw: PopupPolicy | None,
                 versions: list[PopupPolicy]) -> list[PopupPolicy]:
    """One type's versions after the change: a new version splits the one in force at its
    start (which then ends there; the new one ends where it ended, unless given an end); a
    withdrawn version's period goes to the version before it."""
    after = [copy.copy(p) for p in versions]
    if withdraw is not None:
        after = [p for p in after if p.pk != withdraw.pk]
        for p in after:
            if p.effective_to is not None and p.effective_to == withdraw.effective_from:
                p.effective_to = withdraw.effective_to
        return after
    assert policy is not None
    if policy.pk is None:
        for p in after:
            if p.effective_from < policy.effective_from and (p.effective_to is None
                                                             or p.effective_to > policy.effective_from):
                if policy.effective_to is None:
                    policy.effective_to = p.effective_to
                p.effective_to = policy.effective_from
        return [*after, policy]
    old = next((p for p in after if p.pk == policy.pk), None)
    if old is None:
        raise ApplicationError(_("This version no longer exists; reload the page."))
    for p in after:  # a (future) version moved: the one that ended where it started follows it
        if p.pk != policy.pk and p.effective_to is not None and p.effective_to == old.effective_from:
            p.effective_to = policy.effective_from
    return [policy if p.pk == policy.pk else p for p in after]


def policy_version_check(*, policy: PopupPolicy, at: dt.datetime | None = None) -> None:
    """Raise ApplicationError (translated) if saving `policy` (new, or a stored one edited)
    would change the rules of an instant before `at` (default now) or leave its popup type with
    a gap or an overlap. Reads only; policy_version_save makes the change."""
    versions = list(PopupPolicy.objects.filter(popup_type=policy.popup_type).order_by("effective_from"))
    if policy.pk is not None:
        stored = PopupPolicy.objects.filter(pk=policy.pk).values_list("popup_type", flat=True).first()
        if stored is not None and stored != policy.popup_type:
            raise ApplicationError(_("A version's popup type cannot change; add a version of the other type."))
    _policy_versions_check(before=versions, after=_policy_plan(policy=copy.copy(policy), withdraw=None, versions=versions),
                           now=at or clock.now())


@transaction.atomic
def policy_version_save(*, policy: PopupPolicy, at: dt.datetime | None = None) -> PopupPolicy:
    """Save a new or edited policy version, taking effect from `at` (default now) at the
    earliest. A new version starting inside another one ends that one where it starts, in the
    same transaction, so the type is never without a version. Locks the type's versions; raises
    ApplicationError as policy_version_check does, and then changes nothing."""
    versions = list(PopupPolicy.objects.select_for_update().filter(popup_type=policy.popup_type)
                    .order_by("effective_from"))
    if policy.pk is not None:
        stored = next((p for p in versions if p.pk == policy.pk), None)
        if stored is None:
            raise ApplicationError(_("A version's popup type cannot change; add a version of the other type."))
    after = _policy_plan(policy=policy, withdraw=None, versions=versions)
    _policy_versions_check(before=versions, after=after, now=at or clock.now())
    _policy_versions_write(before=versions, after=after)
    return policy


@transaction.atomic
def policy_version_withdraw(*, policy: PopupPolicy, at: dt.datetime | None = None) -> None:
    """Withdraw a version that has not yet taken effect; the version before it stays in force
    over its period. Raises ApplicationError for a version in force or past (its popups were
    decided under it)."""
    versions = list(PopupPolicy.objects.select_for_update().filter(popup_type=policy.popup_type)
                    .order_by("effective_from"))
    after = _policy_plan(policy=None, withdraw=policy, versions=versions)
    _policy_versions_check(before=versions, after=after, now=at or clock.now())
    PopupPolicy.objects.filter(pk=policy.pk).delete()
    _policy_versions_write(before=[p for p in versions if p.pk != policy.pk], after=after)


def _policy_versions_write(*, before: list[PopupPolicy], after: list[PopupPolicy]) -> None:
    """Write the changed versions: those whose window shrinks first, then the rest (no instant
    is ever held by two versions, which the exclusion constraint would refuse)."""
    stored = {p.pk: p for p in before}
    changed = [p for p in after if p.pk is None or _policy_window(p) != _policy_window(stored[p.pk])
               or p.params != stored[p.pk].params or p.version != stored[p.pk].version or p.source != stored[p.pk].source]
    far = dt.datetime.max.replace(tzinfo=dt.UTC)

    def shrinks(p: PopupPolicy) -> bool:
        old = stored.get(p.pk)
        return old is not None and old.effective_from <= p.effective_from and (p.effective_to or far) <= (old.effective_to or far)

    for p in sorted(changed, key=lambda p: not shrinks(p)):
        p.save()
