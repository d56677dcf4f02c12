"""Set-based beat jobs: open tasks for popups, stranded-resident relief, SLA, measures sweep."""

import datetime as dt
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone
from django.utils.translation import gettext as _

from appeals.clearance.models import (
    OPEN_TASK_STATES,
    ClearanceLink,
    ClearanceTask,
)
from appeals.clearance.services.common import lock_task
from appeals.clearance.services.links import clearance_link_issue
from appeals.clearance.services.measures import clearance_measures_complete
from appeals.models import Appeal
from healthkit import clock

_OPEN = list(OPEN_TASK_STATES)
# The SLA measures the community's response; a task in "measures" has had it.
_SLA_STATES = [s for s in OPEN_TASK_STATES if s != "measures"]

# Raw INSERTs name every NOT NULL column of clearance_clearancetask: Django sets no database defaults.
_SWEEP_SQL = """
WITH candidates AS (
    SELECT p.id AS popup_id, p.resident_id, coalesce(r.community_id, v.community_id) AS community_id,
           v.id AS venue_id, v.code AS venue_code,
           CASE WHEN p.popup_type = 3 THEN 'risk_link'
                WHEN p.source = 'upstream' THEN 'misattribution'
                ELSE 'in_city' END AS origin,
           coalesce((pol.params ->> 'commitment_letter')::boolean, false) AS letter
    FROM healthkit_popupcase p
    JOIN communities_resident r ON r.id = p.resident_id
    LEFT JOIN healthkit_popuppolicy pol ON pol.id = p.policy_id
    -- A resident registered without a community (by scan ingest or online filing): a venue
    -- exposure's popup goes to the community of the venue its cause names (docs/venues.md).
    LEFT JOIN venues_venue v ON r.community_id IS NULL
         AND v.id = CASE WHEN p.cause ->> 'rule' = 'venue_risk' THEN (p.cause ->> 'venue')::bigint END
    WHERE p.state IN ('active', 'under_review') AND coalesce(r.community_id, v.community_id) IS NOT NULL
      AND (p.popup_type = 3
           OR (p.popup_type = 1 AND p.source = 'upstream')
           -- type 1 of a resident already back: arrived after the start of their latest stay
           -- outside, and no stay still open.
           OR (p.popup_type = 1
               AND NOT EXISTS (SELECT 1 FROM healthkit_stay s WHERE s.resident_id = p.resident_id
                               AND s.ended_at IS NULL)
               AND EXISTS (SELECT 1 FROM healthkit_arrival a WHERE a.resident_id = p.resident_id
                           AND a.arrived_at >= (SELECT max(s.started_at) FROM healthkit_stay s
                                                WHERE s.resident_id = p.resident_id))))
      -- once per popup: a rejected task is not reopened by the sweep (the resident re-applies)
      AND NOT EXISTS (SELECT 1 FROM clearance_clearancetask t WHERE t.popup_id = p.id)
    ORDER BY p.raised_at, p.id
    LIMIT %(limit)s
), inserted AS (
    INSERT INTO clearance_clearancetask (
        resident_id, community_id, popup_id, appeal_id, origin, state, priority, sla_due_at,
        outside_since, wishes_to_return, confirmation, contact_phone_encrypted, contact_phone_masked,
        commitment_required, commitment_digest, outcome, decision_reason, created_at, updated_at)
    SELECT resident_id, community_id, popup_id, NULL, origin, 'open', 3, %(due)s, NULL, false, '{}'::jsonb,
           '', '', letter, '', '', '', %(now)s, %(now)s
    FROM candidates
    ON CONFLICT DO NOTHING
    RETURNING id, origin, popup_id
), events AS (
    INSERT INTO clearance_clearanceevent (task_id, kind, from_state, to_state, actor_label, reason, data, at)
    SELECT i.id, 'opened', '', 'open', 'clearance-sweep',
           CASE WHEN c.venue_id IS NULL THEN '' ELSE %(why_venue)s END,
           jsonb_build_object('origin', i.origin, 'popup', i.popup_id)
           || CASE WHEN c.venue_id IS NULL THEN '{}'::jsonb
                   ELSE jsonb_build_object('community_from', 'venue', 'venue', c.venue_id,
                                           'venue_code', c.venue_code) END,
           %(now)s
    FROM inserted i JOIN candidates c ON c.popup_id = i.popup_id
    RETURNING 1
)
SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM inserted
"""


def _try_job_lock(cursor, job: str) -> bool:
    """One run of a beat job at a time (transaction-scoped advisory lock; a late run skips)."""
    cursor.execute("SELECT pg_try_advisory_xact_lock(hashtext(%s))", [f"clearance:{job}"])
    return bool(cursor.fetchone()[0])


def clearance_popup_sweep(*, at: dt.datetime | None = None, limit: int = 5000) -> list[int]:
    """Open a task for every open popup that needs the community (type 3; type 1 assigned
    upstream, i.e. a possible misattribution; type 1 of a resident already back in the city),
    once per popup, in one statement. The task goes to the resident's community; a resident
    with none (registered by scan ingest or online filing) has a venue exposure's popup go to
    the venue's community, the task's "opened" event saying so; other popups of such a resident
    wait until they have a community (no other source names one). The resident's link SMS is
    sent per new task on commit. Returns the new task ids (at most `limit` per run; the next
    run takes the rest)."""
    from appeals.clearance.tasks import clearance_send_link

    at = at or clock.now()
    with transaction.atomic(), connection.cursor() as cursor:
        if not _try_job_lock(cursor, "popup-sweep"):
            return []  # a previous run is still going: it takes these popups
        cursor.execute(_SWEEP_SQL, {
            "now": at, "limit": limit, "due": at + dt.timedelta(hours=settings.CLEARANCE_SLA_HOURS),
            "why_venue": _("The resident has no registered community: this task went to the community of "
                           "the venue in the popup's cause, where the resident scanned during its risk window."),
        })
        ids = list(cursor.fetchone()[0])
        transaction.on_commit(lambda: [clearance_send_link.delay(pk) for pk in ids], robust=True)
    return ids


_RELIEF_SQL = """
WITH wishes AS (
    SELECT DISTINCT ON (c.popup_id) c.popup_id, c.resident_id, c.community_id, c.appeal_id, c.outside_since
    FROM (
        SELECT a.popup_id, a.resident_id,
               coalesce(a.routed_community_id, a.community_id, r.community_id) AS community_id,
               a.id AS appeal_id, a.outside_since
        FROM appeals_appeal a JOIN communities_resident r ON r.id = a.resident_id
        WHERE a.status = ANY(%(appeal_open)s) AND a.merged_into_id IS NULL AND a.currently_outside_city
          AND a.wishes_to_return AND a.outside_since < %(cutoff)s AND a.popup_id IS NOT NULL
        UNION ALL
        SELECT t.popup_id, t.resident_id, t.community_id, NULL, t.outside_since
        FROM clearance_clearancetask t
        WHERE t.wishes_to_return AND t.outside_since < %(cutoff)s AND t.popup_id IS NOT NULL
    ) c
    JOIN healthkit_popupcase p ON p.id = c.popup_id AND p.state IN ('active', 'under_review')
    WHERE c.community_id IS NOT NULL
    ORDER BY c.popup_id, c.appeal_id NULLS LAST, c.outside_since
), raised AS (
    UPDATE clearance_clearancetask t
    SET priority = 2, sla_due_at = least(t.sla_due_at, %(due)s), updated_at = %(now)s
    FROM wishes w
    WHERE t.popup_id = w.popup_id AND t.state = ANY(%(open)s) AND t.priority > 2
    RETURNING t.id
), created AS (
    INSERT INTO clearance_clearancetask (
        resident_id, community_id, popup_id, appeal_id, origin, state, priority, sla_due_at,
        outside_since, wishes_to_return, confirmation, contact_phone_encrypted, contact_phone_masked,
        commitment_required, commitment_digest, outcome, decision_reason, created_at, updated_at)
    SELECT w.resident_id, w.community_id, w.popup_id, w.appeal_id, 'stranded', 'open', 2, %(due)s, w.outside_since,
           true, '{}'::jsonb, '', '', false, '', '', '', %(now)s, %(now)s
    FROM wishes w
    WHERE NOT EXISTS (SELECT 1 FROM clearance_clearancetask t WHERE t.popup_id = w.popup_id
                      AND t.state = ANY(%(open)s))
    ON CONFLICT DO NOTHING
    RETURNING id
), events AS (
    INSERT INTO clearance_clearanceevent (task_id, kind, from_state, to_state, actor_label, reason, data, at)
    SELECT id, 'prioritised', '', '', 'relief', %(why)s, jsonb_build_object('priority', 2), %(now)s FROM raised
    UNION ALL
    SELECT id, 'opened', '', 'open', 'relief', %(why)s, jsonb_build_object('origin', 'stranded'), %(now)s FROM created
    RETURNING 1
)
SELECT (SELECT count(*) FROM raised), (SELECT coalesce(array_agg(id ORDER BY id), '{}') FROM created)
"""


@dataclass(frozen=True)
class ReliefResult:
    prioritised: int
    created: list[int]


def clearance_relief_sweep(*, at: dt.datetime | None = None) -> ReliefResult:
    """Daily relief: residents outside the city for more than CLEARANCE_STRANDED_DAYS with an
    open popup and a wish to return (from an open appeal or their confirmation) become priority
    cases on their community's worklist: an open task is raised to "high", otherwise a new
    "stranded" task is opened (and the resident texted a link). Set-based; a rerun changes nothing."""
    from appeals.clearance.tasks import clearance_send_link

    at = at or clock.now()
    cutoff = timezone.localdate(at) - dt.timedelta(days=settings.CLEARANCE_STRANDED_DAYS)
    params = {
        "now": at, "cutoff": cutoff, "open": _OPEN, "appeal_open": [str(s) for s in Appeal.OPEN_STATUSES],
        "due": at + dt.timedelta(hours=settings.CLEARANCE_SLA_HOURS),
        "why": _("Outside the city for more than %(days)s days and wishes to return.") % {
            "days": settings.CLEARANCE_STRANDED_DAYS},
    }
    with transaction.atomic(), connection.cursor() as cursor:
        if not _try_job_lock(cursor, "relief-sweep"):
            return ReliefResult(prioritised=0, created=[])
        cursor.execute(_RELIEF_SQL, params)
        prioritised, created = cursor.fetchone()
        created = list(created)
        transaction.on_commit(lambda: [clearance_send_link.delay(pk) for pk in created], robust=True)
    return ReliefResult(prioritised=prioritised, created=created)


_SLA_SQL = """
WITH breached AS (
    UPDATE clearance_clearancetask
    SET sla_breached_at = %(now)s, escalated_at = %(now)s
    WHERE state = ANY(%(open)s) AND sla_breached_at IS NULL AND sla_due_at < %(now)s
      AND on_hold_since IS NULL  -- waiting with its appeal for the resident's evidence: the clock stands
    RETURNING id, sla_due_at
), events AS (
    INSERT INTO clearance_clearanceevent (task_id, kind, from_state, to_state, actor_label, reason, data, at)
    SELECT id, 'escalated', '', '', 'sla-sweep', '', jsonb_build_object('due', sla_due_at), %(now)s FROM breached
    RETURNING 1
)
SELECT count(*) FROM breached
"""


def clearance_sla_sweep(*, at: dt.datetime | None = None) -> int:
    """Mark tasks still awaiting the community's response (open, confirmed, information asked;
    not those in measures) past their SLA as breached and escalated, with one event each, in one
    statement, as appeals do; a task on hold (the hotline asked the resident for evidence on its
    appeal) is not: its clock stands. Returns the number marked. The task's version (`updated_at`) stays,
    so a worker's decision form open meanwhile is not refused as stale: an escalation changes
    nothing they decide on."""
    at = at or clock.now()
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_SLA_SQL, {"now": at, "open": _SLA_STATES})
        return cursor.fetchone()[0]


_CLOSE_MOOT_SQL = """
WITH closed AS (
    UPDATE clearance_clearancetask t
    SET state = 'closed', closed_at = %(now)s, updated_at = %(now)s, decision_reason = %(why)s, on_hold_since = NULL
    FROM healthkit_popupcase p
    WHERE p.id = t.popup_id AND p.state IN ('lifted', 'withdrawn') AND t.state = ANY(%(open)s)
    RETURNING t.id, t.resident_id, t.state AS to_state, p.state AS popup_state, t.appeal_id
), requirements AS (
    -- the tests these tasks required and not yet due: nobody follows them now
    -- (common.TASK_ENDS_WITHOUT_MEASURES; by the resident's index, then the task's prefix)
    UPDATE healthkit_testrequirement r SET withdrawn_at = %(now)s
    FROM closed c
    WHERE r.resident_id = c.resident_id AND r.withdrawn_at IS NULL AND r.deadline_at > %(now)s
      AND starts_with(r.source_ref, 'clearance:' || c.id || ':')
    RETURNING c.id AS task_id, r.id
), events AS (
    INSERT INTO clearance_clearanceevent (task_id, kind, from_state, to_state, actor_label, reason, data, at)
    SELECT c.id, 'closed', '', 'closed', 'clearance-sweep', %(why)s,
           jsonb_build_object('popup', c.popup_state)
           || coalesce((SELECT jsonb_build_object('requirements_withdrawn', jsonb_agg(q.id ORDER BY q.id))
                        FROM requirements q WHERE q.task_id = c.id HAVING count(*) > 0), '{}'::jsonb),
           %(now)s
    FROM closed c
    RETURNING 1
)
SELECT coalesce(array_agg(appeal_id ORDER BY appeal_id) FILTER (WHERE appeal_id IS NOT NULL), '{}') FROM closed
"""

# The appeals of those tasks: their popup ended, so they close as "lifted" (the popup news sweep
# in healthkit/notify.py texts the lift or withdrawal: one SMS). Run after the tasks' statement,
# so tasks are locked before appeals, the order every decision takes them in.
_CLOSE_MOOT_APPEALS_SQL = """
WITH moot AS (
    SELECT id, status FROM appeals_appeal
    WHERE id = ANY(%(ids)s) AND status IN ('new', 'in_progress', 'waiting_resident', 'routed')
    ORDER BY id FOR NO KEY UPDATE
), closed AS (
    UPDATE appeals_appeal a
    SET status = 'closed', closed_at = %(now)s, close_reason = left(%(why)s, 200), outcome = 'lifted',
        updated_at = %(now)s
    FROM moot m WHERE a.id = m.id
    RETURNING a.id
), events AS (
    INSERT INTO appeals_appealevent (appeal_id, kind, actor_label, note, data, public, at)
    SELECT m.id, 'status_changed', 'system', %(why)s, jsonb_build_object('from', m.status, 'to', 'closed'), true,
           %(now)s
    FROM moot m
    UNION ALL
    SELECT m.id, 'closed', 'system', %(why)s, jsonb_build_object('outcome', 'lifted'), true, %(now)s FROM moot m
    RETURNING 1
)
SELECT count(*) FROM closed
"""


def clearance_measures_sweep(*, at: dt.datetime | None = None, limit: int = 500) -> int:
    """Lift tasks whose measures are complete (each through popup_lift, bounded per run), and
    close open tasks whose popup was lifted or withdrawn elsewhere, with their appeals (outcome
    "lifted", no SMS of their own: the popup's news is texted once; two statements)."""
    from appeals.clearance.selectors import tasks_measures_done

    at = at or clock.now()
    lifted = 0
    for task in tasks_measures_done(at=at).select_related("community", "resident", "appeal").order_by("id")[:limit]:
        lifted += clearance_measures_complete(task=task, at=at)
    with transaction.atomic(), connection.cursor() as cursor:
        why = _("The popup was lifted or withdrawn by other means.")
        cursor.execute(_CLOSE_MOOT_SQL, {"now": at, "open": _OPEN, "why": why})
        appeal_ids = list(cursor.fetchone()[0])
        if appeal_ids:
            cursor.execute(_CLOSE_MOOT_APPEALS_SQL, {"now": at, "ids": appeal_ids, "why": why})
    return lifted


def clearance_send_first_link(*, task_id: int) -> ClearanceLink | None:
    """The first link of a task opened by a sweep (idempotent: a task that has a link gets none)."""
    with transaction.atomic():
        task = lock_task(task_id, "community", "resident", "appeal") if ClearanceTask.objects.filter(
            pk=task_id).exists() else None
        if task is None or not task.is_open or task.links.exists():
            return None
        link, _token = clearance_link_issue(task=task)
        return link


LINK_GRACE = dt.timedelta(minutes=2)  # a new task's own on-commit send goes first


def clearance_link_catch_up(*, limit: int = 500) -> int:
    """Beat: appeals routed to a community that never got their task, and open tasks that never
    got their first link (the on-commit publish was lost, or its task failed: broker down,
    database restarted), get them now, oldest first, each in its own short transaction
    (idempotent services). Returns tasks opened plus links issued."""
    from appeals.clearance.services.links import clearance_open_for_appeal

    cutoff = clock.now() - LINK_GRACE
    opened = 0
    routed = (Appeal.objects.filter(status=Appeal.Status.ROUTED, routed_at__lte=cutoff, merged_into__isnull=True)
              .filter(~Exists(ClearanceTask.objects.filter(appeal_id=OuterRef("pk"))))
              .order_by("routed_at").values_list("pk", flat=True)[:limit])
    for appeal_id in list(routed):
        with transaction.atomic():
            # clearance_open_for_appeal locks the appeal (after its tasks) and reads it again
            appeal = Appeal.objects.get(pk=appeal_id)
            opened += clearance_open_for_appeal(appeal=appeal) is not None
    ids = list(
        ClearanceTask.objects.filter(state=ClearanceTask.State.OPEN, created_at__lte=cutoff, links__isnull=True)
        .order_by("id").values_list("pk", flat=True)[:limit]
    )
    return opened + sum(clearance_send_first_link(task_id=pk) is not None for pk in ids)
