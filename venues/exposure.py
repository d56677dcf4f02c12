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

import contextlib
import datetime as dt
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import psycopg
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from healthkit import clock, outbox, second_connection
from healthkit.models import OutboxRecord, PopupEvent
from healthkit.selectors import policy_in_force
from venues.models import Exposure, ExposurePending, RiskWindow, RiskWindowEvent

logger = logging.getLogger(__name__)

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
# For the job's statements (the one statement, the two halves of a parallel first run and its
# announcement, _ANNOUNCE): no sequential scan. Their probes follow the popup and exposure
# tables' statistics, and statistics that say a table is nearly empty (a new
# database; one vacuumed right after a purge) make the planner probe it by a scan of the whole
# table per visitor: quadratic. A half's open-popup probe read the other half's rows too, as it
# inserted them (10.5 s instead of 0.8 s for 25 k visitors at 1 M scans); the announcement's
# join of 50 k exposure rows to their popups ran for minutes (bench/venues.py, 10 M scans, after
# VACUUM had counted 18 popups); the one statement once took 173 s on a new database at 10 M
# scans. Every table they read has an index for their access.
_PLAN_BY_INDEX = "SET LOCAL enable_seqscan = off"
_HALF_SETTINGS = [*_SETTINGS, _PLAN_BY_INDEX]

# How long the second half may wait for a lock. The job waits for that half in Python, where the
# server's deadlock detector cannot see it: a parent delete queued behind the job's locks (a
# SHARE request waiting for this transaction) makes the half's own ROW EXCLUSIVE request queue
# behind the delete, and the three would wait for each other until the task's hard time limit.
# Waiting longer than this, the half gives up: before it started, the run falls back to one
# statement; later, the run fails and rolls back, and the beat job runs the window again.
_HALF_LOCK_WAIT = "1s"

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

_W = """w AS (
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
)
"""

# {only}: an extra condition on the scans (a half of a parallel first run)
_HITS = """hits AS (
    -- one sort serves both the count per resident and the first scan (DISTINCT ON)
    SELECT DISTINCT ON (s.resident_id) s.resident_id, s.id AS scan_id, s.scanned_at,
           count(*) OVER (PARTITION BY s.resident_id ORDER BY s.scanned_at, s.id
                          ROWS BETWEEN UNBOUNDED PRECEDING AND UNBOUNDED FOLLOWING) AS scans
    FROM venues_venuescan s
    JOIN w ON w.state = 'active' AND s.venue_id = w.venue_id
          AND s.scanned_at >= w.starts_at AND s.scanned_at < w.ends_at{only}
    ORDER BY s.resident_id, s.scanned_at, s.id
)
"""

# A first exposure is a new row: a plain insert (nothing can conflict, a window's runs being
# serialised), not an upsert's speculative insertion per row. {source}: the popups just raised.
_X_RAISED = """
    INSERT INTO venues_exposure
        (window_id, resident_id, case_id, scan_id, scanned_at, raised_at, withdrawn_at, flagged_version)
    SELECT %(window)s, r.resident_id, r.id, (r.cause->>'scan')::bigint,
           (r.cause->>'scanned_at')::timestamptz, r.at, NULL, 0
    FROM {source} r
    RETURNING 1
"""

# The 'raised' events of the popups in `raised`: the cause as raised, per popup only what differs
# between popups (its window's part is kept once, in the run's RiskWindowEvent: cause_as_raised()
# puts them together).
_RAISED_EVENTS = """    SELECT id, 'raised'::varchar, ''::varchar, 'active'::varchar, NULL::bigint, %(label)s::varchar, %(reason_raised)s,
           jsonb_build_object('rule', 'venue_risk', 'policy', %(policy_version)s,
                              'cause', jsonb_build_object('window_id', %(window)s,
                                                          'window_version', %(version)s, 'scan', cause->'scan',
                                                          'scanned_at', cause->'scanned_at',
                                                          'scans_in_window', cause->'scans_in_window',
                                                          'community', cause->'community'),
                              'cause_shared', 'window_event', 'records', cause->'records'), at, now()
    FROM raised
"""

# An open popup of this window's key without an exposure row cannot arise (the job writes both,
# serialised per window); if one did, its visit is skipped, by a probe (no speculative insertion)
_NO_OPEN_POPUP = """NOT EXISTS (SELECT 1 FROM healthkit_popupcase o
                      WHERE o.resident_id = h.resident_id AND o.popup_type = 3 AND o.dedupe_key = %(key)s
                        AND o.state IN ('active', 'under_review'))
"""

# The open-popup probe stays a subplan run per visitor (OFFSET 0 keeps the planner from turning
# NOT EXISTS into an anti-join): as a join, with the visitors estimated at one row, the planner
# may scan every open popup 3 of every window once per visitor (popup_open_type_idx), a plan it
# chose at 10 M scans with 25 k open popups 3 of another window (a half ran for more than 90 s;
# the one statement took 173 s once on a new database). Per visitor, the resident is known and
# the probe is one look-up in popup_one_open_per_cause. Both the one statement and the halves.
_NO_OPEN_POPUP_PER_VISITOR = _NO_OPEN_POPUP.replace(
    "AND o.state IN ('active', 'under_review'))", "AND o.state IN ('active', 'under_review') OFFSET 0)")

_EXPOSURE = """
WITH """ + _W + ",\n" + _HITS.format(only="") + """,
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
    -- `again`: a visit whose popup this job withdrew (its exposure row is rewritten, not added)
    SELECT h.*, ex.case_id IS NOT NULL AS again FROM hits h
    LEFT JOIN ex ON ex.resident_id = h.resident_id
    WHERE (ex.case_id IS NULL OR (ex.state = 'withdrawn' AND ex.withdrawn_at IS NOT NULL))
      AND """ + _NO_OPEN_POPUP_PER_VISITOR + """    ORDER BY h.resident_id
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
x_raised AS (""" + _X_RAISED.format(source="raised_first") + """),
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
    """ + _RAISED_EVENTS + """  UNION ALL
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
    -- `defer`: the raises are announced by the statement that follows (_ANNOUNCE), together with
    -- the popups of a parallel first run left unannounced (ExposurePending)
    SELECT 'raised' AS kind, id, resident_id, at FROM raised WHERE NOT %(batch)s AND NOT %(defer)s
  UNION ALL
    SELECT 'withdrawn', id, resident_id, at FROM withdrawn
),
batch_changes AS (
    SELECT id, resident_id, at FROM raised WHERE %(batch)s AND NOT %(defer)s
),
""" + _OUTBOX_CTES + """
SELECT (SELECT count(*) FROM raised), (SELECT count(*) FROM updated),
       (SELECT count(*) FROM withdrawn),
       (SELECT coalesce(array_agg(case_id ORDER BY case_id), '{}') FROM x_flagged),
       (SELECT count(*) FROM dl) + (SELECT count(*) FROM dlb), (SELECT count(*) FROM hits),
       (SELECT count(*) FROM x_raised) + (SELECT count(*) FROM x_raised_again) + (SELECT count(*) FROM x_updated) + (SELECT count(*) FROM x_withdrawn),
       (SELECT cause_base FROM w)
"""  # noqa: S608 - constants only; every value is a query parameter

# A parallel first run (no exposure row for the window yet): the raises of one half of the
# visitors (resident id parity), as _EXPOSURE makes them on a first run (nothing to update,
# withdraw or flag; no raise again), without their announcement (_ANNOUNCE, by the leader once
# both halves are written). The half on the second connection (`marker`) also leaves the trace
# that its popups await announcement, in its own transaction (ExposurePending).
_RAISE_HALF = """
WITH """ + _W + ",\n" + _HITS.format(only="\n          AND s.resident_id %% 2 = %(half)s") + """,
todo_raise AS (
    SELECT h.*, false AS again FROM hits h
    WHERE """ + _NO_OPEN_POPUP_PER_VISITOR + """    ORDER BY h.resident_id
),
raised AS (""" + _RAISE.format(which="NOT t.again") + """),
x_raised AS (""" + _X_RAISED.format(source="raised") + """),
ev AS (
    INSERT INTO healthkit_popupevent
        (case_id, kind, from_state, to_state, actor_id, actor_label, reason, data, at, recorded_at)
    """ + _RAISED_EVENTS + """
),
marker AS (
    INSERT INTO venues_exposurepending (window_id, version, at, policy_version, raised, cause_shared)
    SELECT w.id, w.version, %(at)s, %(policy_version)s, (SELECT count(*) FROM raised), w.cause_base
    FROM w WHERE %(marker)s
    RETURNING 1
)
SELECT (SELECT count(*) FROM raised), (SELECT count(*) FROM hits), (SELECT count(*) FROM x_raised),
       (SELECT count(*) FROM marker), (SELECT cause_base FROM w)
"""  # noqa: S608 - constants only; every value is a query parameter

# The announcement of popups raised at `instants` (their exposure rows' raised_at) that are
# still open and not announced yet: ONE batch record of the window version if `batch`, else a
# record per popup; the pending traces of those instants settled in the same statement. The
# leader's last step of a parallel first run (`fresh`: its own popups, none announced, no probe
# needed), and a later run's recovery of a run whose leader failed after its second half
# committed. A popup lifted meanwhile is not announced raised (its lift would be overtaken).
_ANNOUNCE = """
WITH settled AS (
    DELETE FROM venues_exposurepending WHERE window_id = %(window)s AND at = ANY(%(instants)s)
    RETURNING 1
),
unannounced AS (
    SELECT pc.id, pc.resident_id, pc.raised_at AS at
    FROM venues_exposure x JOIN healthkit_popupcase pc ON pc.id = x.case_id
    WHERE x.window_id = %(window)s AND x.raised_at = ANY(%(instants)s)
      AND pc.state IN ('active', 'under_review')
      AND (%(fresh)s OR NOT EXISTS (SELECT 1 FROM healthkit_outboxrecord o
                                    WHERE o.case_id = pc.id AND o.kind = 'raised'))
),
changes AS (
    SELECT 'raised'::varchar AS kind, id, resident_id, at FROM unannounced WHERE NOT %(batch)s
),
batch_changes AS (
    SELECT id, resident_id, at FROM unannounced WHERE %(batch)s
),
""" + _OUTBOX_CTES + """
SELECT (SELECT count(*) FROM unannounced), (SELECT count(*) FROM dl) + (SELECT count(*) FROM dlb)
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
    recovered: int = 0  # popups of an interrupted parallel run announced by this run

    @property
    def changed(self) -> bool:
        return bool(self.raised or self.updated or self.withdrawn or self.flagged or self.recovered)

    def as_dict(self) -> dict:
        return {"visitors": self.visitors, "raised": self.raised, "updated": self.updated,
                "withdrawn": self.withdrawn, "flagged": self.flagged[:MAX_TRACE_IDS],
                "flagged_count": len(self.flagged), "deliveries": self.deliveries,
                **({"outbox_batch": self.batch} if self.batch else {}),
                **({"skipped": self.skipped} if self.skipped else {}),
                **({"recovered": self.recovered} if self.recovered else {})}


def cause_as_raised(event: PopupEvent) -> dict:
    """The whole cause a 'raised' event stands for. The job's events keep per popup only what
    differs (scan, its time, count, community; the records beside), the part every popup of the
    run shares once in the run's RiskWindowEvent ('cause_shared'): a tenth of the bytes per
    event. Events written before, and those of other raisers, carry the whole cause. A parallel
    run's popups whose leader has not committed (or failed) read it from the run's pending trace."""
    data = event.data if isinstance(event.data, dict) else {}
    cause = data.get("cause") if isinstance(data.get("cause"), dict) else {}
    if data.get("cause_shared") != "window_event":
        return cause
    run = (RiskWindowEvent.objects.filter(window_id=cause.get("window_id"), kind=RiskWindowEvent.Kind.EXPOSURE,
                                          at=event.at, data__window_version=cause.get("window_version"),
                                          data__has_key="cause_shared")
           .order_by("-pk").values_list("data", flat=True).first()) or {}
    shared = run.get("cause_shared")
    if shared is None:
        shared = (ExposurePending.objects.filter(window_id=cause.get("window_id"), at=event.at,
                                                 version=cause.get("window_version"))
                  .values_list("cause_shared", flat=True).first()) or {}
    return {**shared, **cause, "records": data.get("records")}


def batch_record_key(*, window_id: int, version: int, action: str) -> str:
    """The batch outbox record's key; each page is sent as `<key>-p<page>`."""
    return f"window-{window_id}-v{version}-{action}"


def exposure_run(*, window_id: int, at: dt.datetime | None = None) -> ExposureResult:
    """Bring the popups of one risk window in line with it at `at` (default: now). Idempotent;
    one transaction; serialised per window. Writes a RiskWindowEvent when anything changed.
    A window whose exposure is not due and that nothing changed is a cheap no-op re-check.
    Raises nothing for a missing window (returns skipped='missing').

    A large first run in a transaction of its own raises half of its popups on a second
    connection at the same time (_parallel_first_run); the result and rows are the same."""
    at = at or clock.now()
    result = ExposureResult(window_id=window_id)
    # The second connection cannot see a caller's uncommitted changes, nor be rolled back with them
    own_transaction = not connection.in_atomic_block
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
                _exposure_statement(window=window, policy=policy, at=at, result=result,
                                    parallel=own_transaction)
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


def _statement_params(*, window: RiskWindow, policy, at: dt.datetime, batch: bool, batch_key: str) -> dict:
    return {
        "window": window.pk, "at": at, "key": window.dedupe_key, "label": ACTOR_LABEL,
        "version": window.version, "batch": batch, "batch_key": batch_key, "defer": False,
        "policy_id": policy.pk, "policy_version": policy.version,
        "reason_raised": _("Scanned at a venue inside its risk window; risk investigation by "
                           "the resident's community."),
        "reason_updated": _("The venue's risk window was corrected; the cause was updated."),
        "reason_withdrawn": _("The venue's risk window was withdrawn or corrected so that this "
                              "visit is no longer inside it."),
        "reason_flagged": _("The venue's risk window changed after this popup was acted on; "
                            "it is left for the community to decide."),
    }


def _exposure_statement(*, window: RiskWindow, policy, at: dt.datetime, result: ExposureResult,
                        parallel: bool = False) -> None:
    """The one statement; fills `result`. The window is locked; the references are held.
    Popups a parallel first run left unannounced are announced first (or with this run's raises
    in the version's batch). `parallel`: a large first run may use the second connection."""
    # The version's first raises go as one batch record; later ones (late scans) one by one.
    batch_key = batch_record_key(window_id=window.pk, version=window.version, action="raised")
    batch = not OutboxRecord.objects.filter(idempotency_key=batch_key, case__isnull=True).exists()
    params = _statement_params(window=window, policy=policy, at=at, batch=batch, batch_key=batch_key)
    pending = list(ExposurePending.objects.filter(window_id=window.pk).order_by("at", "pk"))
    if (parallel and batch and not pending and _parallel_worthwhile(window)
            and _parallel_first_run(params=params, result=result)):
        return
    # Unannounced popups of an earlier version, or of this one whose batch exists, are announced
    # before this statement may withdraw them; those of this version join this run's batch.
    joining = [p for p in pending if p.version == window.version and batch]
    for trace in pending:
        if trace not in joining:
            result.recovered += _recover(window=window, trace=trace)
    params["defer"] = bool(joining)
    with connection.cursor() as cursor:
        for setting in _HALF_SETTINGS:
            cursor.execute(setting)
        cursor.execute(_EXPOSURE, params)
        (result.raised, result.updated, result.withdrawn, flagged, result.deliveries,
         result.visitors, _rows, cause_shared) = cursor.fetchone()
        cursor.execute("RESET enable_seqscan")  # for this statement only
    result.flagged = list(flagged)
    if result.raised:  # Django's cursor hands jsonb over as text
        result.cause_shared = json.loads(cause_shared) if isinstance(cause_shared, str) else cause_shared
    if joining:
        _trace_recovered(window=window, traces=joining)
        announced, deliveries = _announce(params=params, instants=[p.at for p in joining] + [at], batch=True)
        result.recovered += announced - result.raised
        result.deliveries += deliveries
        if announced:
            result.batch = batch_key
    elif batch and result.raised:
        result.batch = batch_key


def _parallel_worthwhile(window: RiskWindow) -> bool:
    """A first run (no exposure row for the window) of an active window with at least
    EXPOSURE_PARALLEL_MIN scans inside it (counted up to that many: a bounded index-only scan)."""
    threshold = settings.EXPOSURE_PARALLEL_MIN
    if threshold <= 0 or window.state != RiskWindow.State.ACTIVE:
        return False
    if Exposure.objects.filter(window_id=window.pk).exists():
        return False
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM (SELECT 1 FROM venues_venuescan WHERE venue_id = %s "
                       "AND scanned_at >= %s AND scanned_at < %s LIMIT %s) s",
                       [window.venue_id, window.starts_at, window.ends_at, threshold])
        return cursor.fetchone()[0] >= threshold


def _parallel_first_run(*, params: dict, result: ExposureResult) -> bool:
    """A first run on both cores: the residents of even id raised on the thread's second
    connection (healthkit.second_connection) in a transaction of its own that holds the same
    references and leaves a pending trace, while this connection raises the odd ones; once
    both are written, the second commits and this transaction announces them all (_ANNOUNCE,
    which sees the committed half) and settles the trace. Returns False, having written
    nothing, if the second connection cannot be had (the caller runs the single statement).
    Any failure before the second half committed rolls both back (raised here). A failure
    after it leaves its popups and trace committed, unannounced: the window's next run
    announces them (_exposure_statement), once. The second half takes no lock this transaction
    holds: the window row is not written nor referred to by a key there (the trace names it by
    a plain id), and the three tables' ROW EXCLUSIVE locks do not conflict; nor does it wait for
    one long behind another session that waits for this one (_HALF_LOCK_WAIT)."""
    try:
        other = second_connection.second_connection()
        other.execute("BEGIN")
        # the same session time zone as Django's: the causes' instants are rendered as text
        other.execute("SELECT set_config('TimeZone', %s, true), set_config('lock_timeout', %s, true)",
                      [connection.timezone_name, _HALF_LOCK_WAIT])
        other.execute("SELECT healthkit_references_hold(%s, %s, %s)", list(_HELD_TABLES))
        for setting in _HALF_SETTINGS:
            other.execute(setting)
        query = psycopg.ClientCursor(other).mogrify(_RAISE_HALF, {**params, "half": 0, "marker": True})
        other_half = second_connection.send_in_background(query.encode(), other.pgconn)
    except psycopg.Error as exc:
        logger.warning("exposure run of window %s: no second connection (%s); one statement instead",
                       params["window"], exc)
        second_connection.close_second_connection()
        return False
    try:
        with connection.cursor() as cursor:
            for setting in _HALF_SETTINGS:
                cursor.execute(setting)
            cursor.execute(_RAISE_HALF, {**params, "half": 1, "marker": False})
            raised, visitors, _rows, _marker, cause_shared = cursor.fetchone()
            cursor.execute("RESET enable_seqscan")  # for this half only (_HALF_SETTINGS)
        with connection.wrap_database_errors:  # raised as the same error would be on this connection
            ((raised_other, visitors_other, _rows_other, _marker_other, _shared),) = other_half()
            other.execute("COMMIT")
    except BaseException:
        # the second half rolls back with this transaction: cancelled if still running, and its
        # session closed (the server rolls back what it had not committed)
        with contextlib.suppress(psycopg.Error):
            other.cancel_safe(timeout=5)
        second_connection.close_second_connection()
        raise
    result.raised, result.visitors = raised + int(raised_other), visitors + int(visitors_other)
    _announced, result.deliveries = _announce(params=params, instants=[params["at"]], batch=True, fresh=True)
    if result.raised:
        result.cause_shared = json.loads(cause_shared) if isinstance(cause_shared, str) else cause_shared
        result.batch = params["batch_key"]
    return True


def _announce(*, params: dict, instants: list[dt.datetime], batch: bool, fresh: bool = False) -> tuple[int, int]:
    """Run _ANNOUNCE with the run's parameters; returns (popups announced, deliveries)."""
    with connection.cursor() as cursor:
        cursor.execute(_PLAN_BY_INDEX)
        cursor.execute(_ANNOUNCE, {**params, "instants": instants, "batch": batch, "fresh": fresh})
        announced, deliveries = cursor.fetchone()
        cursor.execute("RESET enable_seqscan")
    return announced, deliveries


def _recover(*, window: RiskWindow, trace: ExposurePending) -> int:
    """Announce the popups a parallel run's second half committed and its leader never announced
    (an earlier window version, or this version's batch already written): in the batch of the
    version they were raised for if that does not exist yet, else one record each; the trace
    settled and the run's RiskWindowEvent written (cause_as_raised reads its shared cause).
    Returns the popups announced."""
    batch_key = batch_record_key(window_id=window.pk, version=trace.version, action="raised")
    batch = not OutboxRecord.objects.filter(idempotency_key=batch_key, case__isnull=True).exists()
    params = {"window": window.pk, "version": trace.version, "batch_key": batch_key,
              "policy_version": trace.policy_version}
    announced, deliveries = _announce(params=params, instants=[trace.at], batch=batch)
    _trace_recovered(window=window, traces=[trace], announced=announced,
                     batch=batch_key if batch and announced else "")
    if deliveries:
        outbox.dispatch_on_commit()
    return announced


def _trace_recovered(*, window: RiskWindow, traces: list[ExposurePending], announced: int | None = None,
                     batch: str = "") -> None:
    """The RiskWindowEvent a parallel run's leader did not write, at that run's instant and
    version (its popups' raised events read their shared cause from it), marked recovered."""
    RiskWindowEvent.objects.bulk_create(
        RiskWindowEvent(window=window, kind=RiskWindowEvent.Kind.EXPOSURE, actor_label=ACTOR_LABEL, at=t.at,
                        reason=_("Popups raised by an interrupted run, announced by a later run."),
                        data={"raised": t.raised, "recovered": True, "window_version": t.version,
                              "cause_shared": t.cause_shared,
                              **({"announced": announced} if announced is not None else {}),
                              **({"outbox_batch": batch} if batch else {})})
        for t in traces)


def exposure_run_due(*, at: dt.datetime | None = None, limit: int = 100) -> list[ExposureResult]:
    """Run every window marked due (few: windows, not scans), oldest first, and every window with
    popups a parallel run left unannounced (its leader failed after the second half committed)."""
    ids = list(RiskWindow.objects.filter(Q(exposure_due=True) | Q(pk__in=ExposurePending.objects.values("window_id")))
               .order_by("pk").values_list("pk", flat=True)[:limit])
    return [exposure_run(window_id=pk, at=at) for pk in ids]
