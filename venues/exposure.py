"""The exposure job: a risk window → popup 3 for everyone who scanned there inside it.

One SQL statement per window brings the window's popups in line with the window as it now
stands (set-based; no Python loop over scans or residents):

- hits: residents with a scan at the venue in [starts_at, ends_at) (half-open: a scan at exactly
  `starts_at` counts, one at exactly `ends_at` does not); the first such scan is the cause.
- raised: a hit with no exposure row yet (or whose popup this job itself withdrew earlier) gets
  a popup 3 (source 'venue', dedupe_key 'venue-risk:<window id>'), a PopupEvent and an Exposure
  row. The ticket systems hear of the raises of one window version as ONE batch outbox record
  (`window-<id>-v<version>-raised`, one delivery per active endpoint, sent in pages: see
  healthkit.outbox); raises of a later run at the same version (late scans) go as single-popup
  records, since that version's batch has gone or is on its way already.
- updated: an exposure whose popup is still 'active' and untouched by a person (no event with an
  actor), still a hit, but raised for another window version or scan: its cause is rewritten
  and a 'cause_updated' PopupEvent records before/after.
- withdrawn: such an untouched 'active' popup that is no longer a hit (window withdrawn, or
  corrected away from the visit): state 'withdrawn' + PopupEvent + a single-popup outbox record
  (delivered after the batch that carried its raise).
- flagged: a popup someone has acted on (under review, or any event with an actor) whose window
  changed is left as it is; it gets one 'note' PopupEvent per window version and is listed in
  the window's trace (RiskWindowEvent) for the community to decide.

Idempotent: a second run with the same window changes nothing (an exposure row exists per
window and resident, so a popup the community lifted is never raised again). Runs of one
window are serialised by an advisory lock and the window's row lock. Popup rows are not locked
up front (a no-op re-run would otherwise write a lock on every one): the UPDATEs lock what they
change and re-check the state they read ('active'), so a popup a person moves to review
concurrently is left alone (PostgreSQL re-evaluates the condition on the new row version). The
popup's cause carries what the community's investigation needs: venue
id/code/name, window id/version/from/to, risk level, first scan id and time, the resident's
community. Its 'raised' event carries per popup only what differs (the rest once, in the run's
RiskWindowEvent; see cause_as_raised). The job's popups, events and exposure rows skip their
per-statement reference checks: it holds their parents by a lock taken before it reads them
(_references_held; healthkit migration 0026).
"""

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from django.db import connection, transaction
from django.utils.translation import gettext as _

from healthkit import clock, outbox
from healthkit.models import OutboxRecord, PopupEvent
from healthkit.selectors import policy_in_force
from venues.models import RiskWindow, RiskWindowEvent

ACTOR_LABEL = "venue-exposure"
LOCK_NAMESPACE = 3_2022  # pg_advisory_xact_lock(namespace, window id)
MAX_TRACE_IDS = 1000

# Per-popup records (withdrawals; raises after the version's batch) and the version's batch.
_OUTBOX_CTES = outbox.outbox_sql_ctes(
    changes="changes", popup_type="3", policy="%(policy_version)s", rule="'venue_risk'",
) + ",\n" + outbox.batch_sql_ctes(
    changes="batch_changes", key="%(batch_key)s::varchar", kind="'raised'::varchar", popup_type="3",
    policy="%(policy_version)s", rule="'venue_risk'",
    extra="jsonb_build_object('window', jsonb_build_object('id', %(window)s, 'version', %(version)s))")

# For this transaction only: the visitors' sort and hashes (50 k rows, a few MB) stay in memory
# instead of spilling to disk at the default 4 MB; the plan is never worth compiling (JIT).
_SETTINGS = ["SET LOCAL work_mem = '64MB'", "SET LOCAL jit = off"]

# A popup 3 per visit to raise, in resident order (todo_raise is sorted on its lean columns), the
# cause built per row here; written by two CTEs (first raises, raises after a withdrawal) so that
# the first ones' exposure rows are plain inserts.
_RAISE = """
    INSERT INTO healthkit_popupcase
        (resident_id, popup_type, dedupe_key, cause, source, state, policy_id, raised_at, lifted_at, updated_at)
    SELECT t.resident_id, 3, %(key)s,
           w.cause_base || jsonb_build_object(
               'scan', t.scan_id, 'scanned_at', t.scanned_at, 'scans_in_window', t.scans,
               'community', r.community_id,
               'records', jsonb_build_array(jsonb_build_object('venue_scan', t.scan_id), w.window_record)),
           'venue', 'active', %(policy_id)s, %(at)s, NULL, now()
    FROM todo_raise t CROSS JOIN w JOIN communities_resident r ON r.id = t.resident_id
    WHERE {which}
    RETURNING id, resident_id, raised_at AS at, cause
"""

_EXPOSURE = """
WITH w AS (
    -- the cause's window part, built once (not once per visitor)
    SELECT rw.id, rw.venue_id, rw.starts_at, rw.ends_at, rw.risk_level, rw.version, rw.state,
           jsonb_build_object(
               'rule', 'venue_risk', 'venue', rw.venue_id, 'venue_code', v.code, 'venue_name', v.name,
               'window_id', rw.id, 'window_version', rw.version,
               'window', jsonb_build_object('id', rw.id, 'version', rw.version, 'from', rw.starts_at,
                                            'to', rw.ends_at, 'risk_level', rw.risk_level,
                                            'reason', rw.reason),
               'risk_level', rw.risk_level) AS cause_base,
           jsonb_build_object('risk_window', rw.id) AS window_record
    FROM venues_riskwindow rw JOIN venues_venue v ON v.id = rw.venue_id
    WHERE rw.id = %(window)s
),
hits AS (
    -- one sort serves both the count per resident and the first scan (DISTINCT ON)
    SELECT DISTINCT ON (s.resident_id) s.resident_id, s.id AS scan_id, s.scanned_at,
           count(*) OVER (PARTITION BY s.resident_id ORDER BY s.scanned_at, s.id
                          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS scans
    FROM venues_venuescan s
    JOIN w ON w.state = 'active' AND s.venue_id = w.venue_id
          AND s.scanned_at >= w.starts_at AND s.scanned_at < w.ends_at
    ORDER BY s.resident_id, s.scanned_at, s.id
),
ex AS (
    SELECT x.id AS exposure_id, x.resident_id, x.withdrawn_at, x.flagged_version,
           pc.id AS case_id, pc.state, pc.cause, pc.raised_at,
           EXISTS (SELECT 1 FROM healthkit_popupevent e
                   WHERE e.case_id = pc.id AND e.actor_id IS NOT NULL) AS human
    FROM venues_exposure x JOIN healthkit_popupcase pc ON pc.id = x.case_id
    WHERE x.window_id = %(window)s
),
cls AS (
    -- each exposure of this window against the current hits (one hash join on lean keys, not a
    -- probe per row; causes are built below only for the popups that change)
    SELECT ex.*, h.scan_id AS new_scan_id, h.scanned_at AS new_scanned_at, h.scans AS new_scans,
           (h.resident_id IS NOT NULL) AS inside
    FROM ex LEFT JOIN hits h ON h.resident_id = ex.resident_id
),
todo_raise AS (
    -- `again`: a visit whose popup this job withdrew (its exposure row is rewritten, not added).
    -- An open popup of this window's key without an exposure row cannot arise (the job writes
    -- both, serialised per window); if one did, it is skipped as ON CONFLICT DO NOTHING did,
    -- by a probe instead of a speculative insertion per row
    SELECT h.*, ex.case_id IS NOT NULL AS again FROM hits h
    LEFT JOIN ex ON ex.resident_id = h.resident_id
    WHERE (ex.case_id IS NULL OR (ex.state = 'withdrawn' AND ex.withdrawn_at IS NOT NULL))
      AND NOT EXISTS (SELECT 1 FROM healthkit_popupcase o
                      WHERE o.resident_id = h.resident_id AND o.popup_type = 3 AND o.dedupe_key = %(key)s
                        AND o.state IN ('active', 'under_review'))
    ORDER BY h.resident_id
),
todo_update AS MATERIALIZED (
    SELECT cls.case_id, cls.exposure_id, cls.state, cls.cause AS old_cause, cls.new_scan_id AS scan_id,
           cls.new_scanned_at AS scanned_at,
           w.cause_base || jsonb_build_object(
               'scan', cls.new_scan_id, 'scanned_at', cls.new_scanned_at, 'scans_in_window', cls.new_scans,
               'community', r.community_id,
               'records', jsonb_build_array(jsonb_build_object('venue_scan', cls.new_scan_id), w.window_record)
           ) AS cause
    FROM cls CROSS JOIN w JOIN communities_resident r ON r.id = cls.resident_id
    WHERE cls.inside AND cls.state = 'active' AND NOT cls.human
      AND (cls.cause->'window_version' IS DISTINCT FROM to_jsonb(w.version)
           OR cls.cause->'scan' IS DISTINCT FROM to_jsonb(cls.new_scan_id))
),
todo_withdraw AS MATERIALIZED (
    SELECT case_id, exposure_id, state, raised_at FROM cls
    WHERE NOT inside AND state = 'active' AND NOT human
),
todo_flag AS (
    SELECT cls.case_id, cls.exposure_id, cls.state, cls.inside AS still_inside
    FROM cls CROSS JOIN w
    WHERE cls.state IN ('active', 'under_review') AND (cls.human OR cls.state = 'under_review')
      AND cls.flagged_version < w.version
      AND (w.state <> 'active' OR NOT cls.inside
           OR cls.cause->'window_version' IS DISTINCT FROM to_jsonb(w.version))
),
raised_first AS (""" + _RAISE.format(which="NOT t.again") + """),
raised_again AS (""" + _RAISE.format(which="t.again") + """),
raised AS (
    SELECT * FROM raised_first UNION ALL SELECT * FROM raised_again
),
updated AS (
    -- the state re-checked is the one read (a column of the materialised CTE, not the constant
    -- 'active', which would let the planner reach the popups through popup_open_type_idx: with
    -- statistics taken before a big raise it counts one open popup and loops over all of them
    -- once per popup to change, > 5 minutes for 50 k); here each popup is reached by its key
    UPDATE healthkit_popupcase pc SET cause = t.cause, updated_at = now()
    FROM todo_update t
    WHERE pc.id = t.case_id AND pc.state = t.state
    RETURNING pc.id, pc.resident_id, t.old_cause, t.cause, t.exposure_id, t.scan_id, t.scanned_at
),
withdrawn AS (
    UPDATE healthkit_popupcase pc
    SET state = 'withdrawn', lifted_at = GREATEST(t.raised_at, %(at)s), updated_at = now()
    FROM todo_withdraw t
    WHERE pc.id = t.case_id AND pc.state = t.state
    RETURNING pc.id, pc.resident_id, pc.lifted_at AS at, pc.cause, t.exposure_id
),
x_raised AS (
    -- a first exposure is a new row: a plain insert (nothing can conflict, a window's runs being
    -- serialised), not an upsert's speculative insertion per row
    INSERT INTO venues_exposure
        (window_id, resident_id, case_id, scan_id, scanned_at, raised_at, withdrawn_at, flagged_version)
    SELECT %(window)s, r.resident_id, r.id, (r.cause->>'scan')::bigint,
           (r.cause->>'scanned_at')::timestamptz, r.at, NULL, 0
    FROM raised_first r
    RETURNING 1
),
x_raised_again AS (
    -- a visit raised again after a withdrawal rewrites its row, found by the unique key: no join
    -- of `raised` with `ex`, whose planned shape would rest on the CTEs' row estimates (two 50 k
    -- sets estimated at a dozen rows each make a nested loop)
    UPDATE venues_exposure x
    SET case_id = r.id, scan_id = (r.cause->>'scan')::bigint, scanned_at = (r.cause->>'scanned_at')::timestamptz,
        raised_at = r.at, withdrawn_at = NULL, flagged_version = 0
    FROM raised_again r WHERE x.window_id = %(window)s AND x.resident_id = r.resident_id
    RETURNING 1
),
x_updated AS (
    UPDATE venues_exposure x SET scan_id = u.scan_id, scanned_at = u.scanned_at
    FROM updated u WHERE x.id = u.exposure_id
    RETURNING 1
),
x_withdrawn AS (
    UPDATE venues_exposure x SET withdrawn_at = wd.at
    FROM withdrawn wd WHERE x.id = wd.exposure_id
    RETURNING 1
),
x_flagged AS (
    UPDATE venues_exposure x SET flagged_version = w.version
    FROM todo_flag f CROSS JOIN w WHERE x.id = f.exposure_id
    RETURNING x.case_id
),
ev AS (
    INSERT INTO healthkit_popupevent
        (case_id, kind, from_state, to_state, actor_id, actor_label, reason, data, at, recorded_at)
    -- the cause as raised, per popup only what differs between popups (its window's part is
    -- kept once, in this run's RiskWindowEvent: cause_as_raised() puts them together)
    SELECT id, 'raised'::varchar, ''::varchar, 'active'::varchar, NULL::bigint, %(label)s::varchar, %(reason_raised)s,
           jsonb_build_object('rule', 'venue_risk', 'policy', %(policy_version)s,
                              'cause', jsonb_build_object('window_id', %(window)s,
                                                          'window_version', %(version)s, 'scan', cause->'scan',
                                                          'scanned_at', cause->'scanned_at',
                                                          'scans_in_window', cause->'scans_in_window',
                                                          'community', cause->'community'),
                              'cause_shared', 'window_event', 'records', cause->'records'), at, now()
    FROM raised
  UNION ALL
    SELECT id, 'cause_updated', 'active', 'active', NULL, %(label)s, %(reason_updated)s,
           jsonb_build_object('rule', 'venue_risk', 'before', old_cause->'window',
                              'after', cause->'window', 'scanned_at_before', old_cause->'scanned_at',
                              'scanned_at_after', cause->'scanned_at'), %(at)s, now()
    FROM updated
  UNION ALL
    SELECT id, 'withdrawn', 'active', 'withdrawn', NULL, %(label)s, %(reason_withdrawn)s,
           jsonb_build_object('rule', 'venue_risk', 'window', %(window)s,
                              'window_state', (SELECT state FROM w),
                              'window_version', (SELECT version FROM w)), at, now()
    FROM withdrawn
  UNION ALL
    SELECT f.case_id, 'note', f.state, f.state, NULL, %(label)s, %(reason_flagged)s,
           jsonb_build_object('rule', 'venue_risk', 'window', %(window)s, 'window_state', w.state,
                              'window_version', w.version, 'still_inside', f.still_inside,
                              'flag', 'window_changed_after_action'), %(at)s, now()
    FROM todo_flag f CROSS JOIN w
),
changes AS (
    SELECT 'raised' AS kind, id, resident_id, at FROM raised WHERE NOT %(batch)s
  UNION ALL
    SELECT 'withdrawn', id, resident_id, at FROM withdrawn
),
batch_changes AS (
    SELECT id, resident_id, at FROM raised WHERE %(batch)s
),
""" + _OUTBOX_CTES + """
SELECT (SELECT count(*) FROM raised), (SELECT count(*) FROM updated),
       (SELECT count(*) FROM withdrawn),
       (SELECT coalesce(array_agg(case_id ORDER BY case_id), '{}') FROM x_flagged),
       (SELECT count(*) FROM dl) + (SELECT count(*) FROM dlb), (SELECT count(*) FROM hits),
       (SELECT count(*) FROM x_raised) + (SELECT count(*) FROM x_raised_again) + (SELECT count(*) FROM x_updated) + (SELECT count(*) FROM x_withdrawn),
       (SELECT cause_base FROM w)
"""  # noqa: S608 - constants only; every value is a query parameter


# The tables the job writes whose per-statement reference checks it may skip (healthkit 0026,
# venues 0004/0005), in the order their parents' delete guards lock them (events before exposures
# for a popup delete, exposures before popups for a resident delete), so neither deadlocks with it.
_HELD_TABLES = ("healthkit_popupevent", "venues_exposure", "healthkit_popupcase")


@contextmanager
def _references_held() -> Iterator[None]:
    """Hold the parents of the rows the job writes, for its transaction, so that their
    per-statement reference checks can be skipped: ROW EXCLUSIVE on the tables above, taken
    BEFORE the window, policy, residents and popups are read. A parent delete or id change locks
    these tables SHARE first, so one that has not committed waits for this transaction and then
    refuses; one that committed before is not seen by the statements that follow (READ
    COMMITTED). Released (checked again) once the job's statement is done; on an error the
    rollback restores the setting."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT healthkit_references_hold(%s, %s, %s)", list(_HELD_TABLES))
    yield
    with connection.cursor() as cursor:
        cursor.execute("SELECT set_config('healthkit.references_held', '', true)")


@dataclass
class ExposureResult:
    window_id: int
    visitors: int = 0
    raised: int = 0
    updated: int = 0
    withdrawn: int = 0
    flagged: list[int] = field(default_factory=list)
    deliveries: int = 0
    batch: str = ""
    skipped: str = ""
    cause_shared: dict = field(default_factory=dict)  # the raised popups' common cause, kept once

    @property
    def changed(self) -> bool:
        return bool(self.raised or self.updated or self.withdrawn or self.flagged)

    def as_dict(self) -> dict:
        return {"visitors": self.visitors, "raised": self.raised, "updated": self.updated,
                "withdrawn": self.withdrawn, "flagged": self.flagged[:MAX_TRACE_IDS],
                "flagged_count": len(self.flagged), "deliveries": self.deliveries,
                **({"outbox_batch": self.batch} if self.batch else {}),
                **({"skipped": self.skipped} if self.skipped else {})}


def cause_as_raised(event: PopupEvent) -> dict:
    """The whole cause a 'raised' event stands for. The job's events keep per popup only what
    differs (scan, its time, count, community; the records beside), the part every popup of the
    run shares once in the run's RiskWindowEvent ('cause_shared'): a tenth of the bytes per
    event. Events written before, and those of other raisers, carry the whole cause."""
    data = event.data if isinstance(event.data, dict) else {}
    cause = data.get("cause") if isinstance(data.get("cause"), dict) else {}
    if data.get("cause_shared") != "window_event":
        return cause
    run = (RiskWindowEvent.objects.filter(window_id=cause.get("window_id"), kind=RiskWindowEvent.Kind.EXPOSURE,
                                          at=event.at, data__window_version=cause.get("window_version"),
                                          data__has_key="cause_shared")
           .order_by("-pk").values_list("data", flat=True).first()) or {}
    return {**run.get("cause_shared", {}), **cause, "records": data.get("records")}


def batch_record_key(*, window_id: int, version: int, action: str) -> str:
    """The batch outbox record's key; each page is sent as `<key>-p<page>`."""
    return f"window-{window_id}-v{version}-{action}"


def exposure_run(*, window_id: int, at: dt.datetime | None = None) -> ExposureResult:
    """Bring the popups of one risk window in line with it at `at` (default: now). Idempotent;
    one transaction; serialised per window. Writes a RiskWindowEvent when anything changed.
    A window whose exposure is not due and that nothing changed is a cheap no-op re-check.
    Raises nothing for a missing window (returns skipped='missing')."""
    at = at or clock.now()
    result = ExposureResult(window_id=window_id)
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s, %s)", [LOCK_NAMESPACE, window_id])
        window = RiskWindow.objects.select_for_update().filter(pk=window_id).first()
        if window is None:
            result.skipped = "missing"
            return result
        with _references_held():  # the window is held by its row lock, taken above
            policy = policy_in_force(3, at)
            if policy is not None and not policy.abolished:
                _exposure_statement(window=window, policy=policy, at=at, result=result)
        if policy is None or policy.abolished:
            # Without a rule in force nothing may be raised, and nothing is withdrawn either.
            result.skipped = "no_policy"
            RiskWindow.objects.filter(pk=window_id).update(exposure_due=False)
            RiskWindowEvent.objects.create(window=window, kind=RiskWindowEvent.Kind.EXPOSURE,
                                           actor_label=ACTOR_LABEL, data=result.as_dict(), at=at,
                                           reason=_("Popup type 3 is not in force; nothing raised."))
            return result
        RiskWindow.objects.filter(pk=window_id).update(exposure_due=False)
        if result.changed:
            RiskWindowEvent.objects.create(
                window=window, kind=RiskWindowEvent.Kind.EXPOSURE, actor_label=ACTOR_LABEL,
                data={**result.as_dict(), "window_version": window.version,
                      "window_state": window.state,
                      **({"cause_shared": result.cause_shared} if result.cause_shared else {})}, at=at,
            )
        if result.deliveries:
            outbox.dispatch_on_commit()
    return result


def _exposure_statement(*, window: RiskWindow, policy, at: dt.datetime, result: ExposureResult) -> None:
    """The one statement; fills `result`. The window is locked; the references are held."""
    # The version's first raises go as one batch record; later ones (late scans) one by one.
    batch_key = batch_record_key(window_id=window.pk, version=window.version, action="raised")
    batch = not OutboxRecord.objects.filter(idempotency_key=batch_key, case__isnull=True).exists()
    params = {
        "window": window.pk, "at": at, "key": window.dedupe_key, "label": ACTOR_LABEL,
        "version": window.version, "batch": batch, "batch_key": batch_key,
        "policy_id": policy.pk, "policy_version": policy.version,
        "reason_raised": _("Scanned at a venue inside its risk window; risk investigation by "
                           "the resident's community."),
        "reason_updated": _("The venue's risk window was corrected; the cause was updated."),
        "reason_withdrawn": _("The venue's risk window was withdrawn or corrected so that this "
                              "visit is no longer inside it."),
        "reason_flagged": _("The venue's risk window changed after this popup was acted on; "
                            "it is left for the community to decide."),
    }
    with connection.cursor() as cursor:
        for setting in _SETTINGS:
            cursor.execute(setting)
        cursor.execute(_EXPOSURE, params)
        (result.raised, result.updated, result.withdrawn, flagged, result.deliveries,
         result.visitors, _rows, cause_shared) = cursor.fetchone()
    result.flagged = list(flagged)
    if result.raised:  # Django's cursor hands jsonb over as text
        result.cause_shared = json.loads(cause_shared) if isinstance(cause_shared, str) else cause_shared
    if batch and result.raised:
        result.batch = batch_key


def exposure_run_due(*, at: dt.datetime | None = None, limit: int = 100) -> list[ExposureResult]:
    """Run every window marked due (few: windows, not scans), oldest first."""
    ids = list(RiskWindow.objects.filter(exposure_due=True).order_by("pk").values_list("pk", flat=True)[:limit])
    return [exposure_run(window_id=pk, at=at) for pk in ids]
