"""Writes of the dashboard: the summary refresh (the only writer of the summary tables)."""

import datetime as dt
import time

from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from appeals.oversight.models import SummaryRefresh
from healthkit import clock

# Hourly points are kept for this many days (the hours chart shows the last two).
HOURLY_DAYS = 3
# Each refresh rewrites the history (trends, times) from this many days before the previous
# refresh: what happened earlier no longer changes (a nightly full rebuild catches the rest).
REWRITE_DAYS = 3
# SMS "not delivered" counts the messages of this many days (older ones were followed up).
SMS_DAYS = 7
STRANDED_DAYS = 30

# Where a resident lives: district and community, joined once per table below.
_PLACE = """
    LEFT JOIN communities_community pc ON pc.id = {community}
    LEFT JOIN communities_street ps ON ps.id = pc.street_id
"""
# bin = floor(4 * log2(1 + minutes)): a quarter power of two wide (selectors.bin_minutes reverses it)
_BIN = "floor(4 * log(2, 1 + GREATEST(EXTRACT(EPOCH FROM ({end}) - ({start})) / 60, 0)))::int"

# Open popups once through the join, written twice: per district (the figures) and per community
# (the "by community" chart of one district).
_OPEN_POPUPS = """
WITH g AS (
    SELECT p.popup_type, p.state, p.source, ps.district_id, r.community_id, count(*) AS n
    FROM healthkit_popupcase p
    JOIN communities_resident r ON r.id = p.resident_id
""" + _PLACE.format(community="r.community_id") + """
    WHERE p.state IN ('active', 'under_review')
    GROUP BY 1, 2, 3, 4, 5
), by_community AS (
    INSERT INTO oversight_openpopupbycommunity (popup_type, district_id, community_id, n)
    SELECT popup_type, district_id, community_id, sum(n) FROM g WHERE community_id IS NOT NULL GROUP BY 1, 2, 3
)
INSERT INTO oversight_openpopupfigure (popup_type, state, source, district_id, n)
SELECT popup_type, state, source, district_id, sum(n) FROM g GROUP BY 1, 2, 3, 4
"""  # noqa: S608 - composed from constants; every value is a parameter

_OPEN_APPEALS = """
INSERT INTO oversight_openappealfigure
    (status, category, channel, popup_type, district_id, n, breached, escalated, repeated, repeats,
     stranded_long)
SELECT a.status, a.category, a.channel, COALESCE(p.popup_type, a.popup_type_claimed), ps.district_id, count(*),
       count(*) FILTER (WHERE a.sla_breached_at IS NOT NULL OR a.sla_due_at < %(now)s),
       count(*) FILTER (WHERE a.escalated_at IS NOT NULL),
       count(*) FILTER (WHERE a.repeat_count > 0),
       COALESCE(sum(a.repeat_count), 0),
       count(*) FILTER (WHERE a.currently_outside_city AND a.outside_since <= %(stranded_since)s)
FROM appeals_appeal a
LEFT JOIN communities_resident r ON r.id = a.resident_id  -- an unregistered filer's appeal counts too
LEFT JOIN healthkit_popupcase p ON p.id = a.popup_id
""" + _PLACE.format(community="COALESCE(a.routed_community_id, a.community_id, r.community_id)") + """
WHERE a.status IN ('new', 'in_progress', 'waiting_resident', 'routed')
GROUP BY 1, 2, 3, 4, 5
"""

_OPEN_TASKS = """
INSERT INTO oversight_opentaskfigure (state, origin, popup_type, district_id, n, overdue)
SELECT t.state, t.origin, p.popup_type, ps.district_id, count(*),
       count(*) FILTER (WHERE t.sla_due_at < %(now)s AND t.state IN ('open', 'confirmed', 'info_requested')
                        AND t.on_hold_since IS NULL)  -- on hold: the SLA clock stands
FROM clearance_clearancetask t
LEFT JOIN healthkit_popupcase p ON p.id = t.popup_id
""" + _PLACE.format(community="t.community_id") + """
WHERE t.state IN ('open', 'confirmed', 'info_requested', 'measures')
GROUP BY 1, 2, 3, 4
"""

_DELIVERIES = """
INSERT INTO oversight_deliveryfigure (metric, district_id, n)
SELECT CASE m.state WHEN 'dead' THEN 'sms_dead' ELSE 'sms_undelivered' END, ps.district_id, count(*)
FROM healthkit_smsmessage m
LEFT JOIN communities_resident r ON r.id = m.resident_id
""" + _PLACE.format(community="r.community_id") + """
WHERE m.state IN ('undelivered', 'dead') AND m.created_at >= %(sms_since)s
GROUP BY 1, 2
UNION ALL
SELECT CASE d.state WHEN 'dead' THEN 'outbox_dead' ELSE 'outbox_failed' END, ps.district_id, count(*)
FROM healthkit_outboxdelivery d
JOIN communities_resident r ON r.id = d.resident_id
""" + _PLACE.format(community="r.community_id") + """
WHERE d.state IN ('failed', 'dead')
GROUP BY 1, 2
UNION ALL
-- A batch (one record for a window's residents; resident NULL on the delivery) is one delivery:
-- once in the city's figure (no district) ...
SELECT CASE d.state WHEN 'dead' THEN 'outbox_dead' ELSE 'outbox_failed' END, NULL, count(*)
FROM healthkit_outboxdelivery d
WHERE d.state IN ('failed', 'dead') AND d.resident_id IS NULL
GROUP BY 1
UNION ALL
-- ... and once in each district one of its residents lives in (read by a district's view only).
SELECT CASE d.state WHEN 'dead' THEN 'outbox_batch_dead' ELSE 'outbox_batch_failed' END, b.district_id, count(*)
FROM healthkit_outboxdelivery d
JOIN healthkit_outboxrecord o ON o.id = d.record_id
CROSS JOIN LATERAL (
    SELECT DISTINCT ps.district_id
    FROM unnest(o.resident_ids) AS u(resident_id)
    JOIN communities_resident r ON r.id = u.resident_id
""" + _PLACE.format(community="r.community_id") + """
    WHERE ps.district_id IS NOT NULL
) b
WHERE d.state IN ('failed', 'dead') AND d.resident_id IS NULL
GROUP BY 1, 2
"""  # noqa: S608 - composed from constants; every value is a parameter

# One statement per grain; {unit} is 'day' or 'hour' (constants, never input).
TREND_SELECT = """
WITH popups AS (
    SELECT p.id, p.popup_type, p.raised_at, p.lifted_at, p.state, ps.district_id, r.community_id
    FROM healthkit_popupcase p
    JOIN communities_resident r ON r.id = p.resident_id
""" + _PLACE.format(community="r.community_id") + """
    WHERE {popup_scope} AND (p.raised_at >= %(since)s OR p.lifted_at >= %(since)s)
), appeals AS (
    SELECT a.created_at, a.closed_at, a.status, COALESCE(p.popup_type, a.popup_type_claimed) AS popup_type,
           ps.district_id, pc.id AS community_id
    FROM appeals_appeal a
    LEFT JOIN communities_resident r ON r.id = a.resident_id
    LEFT JOIN healthkit_popupcase p ON p.id = a.popup_id
""" + _PLACE.format(community="COALESCE(a.routed_community_id, a.community_id, r.community_id)") + """
    WHERE {appeal_scope} AND (a.created_at >= %(since)s OR a.closed_at >= %(since)s)
), points AS (
    SELECT 'popups_raised' AS metric, raised_at AS at, popup_type, district_id, community_id
    FROM popups WHERE raised_at >= %(since)s
  UNION ALL
    SELECT CASE WHEN e.actor_id IS NULL THEN 'lifted_auto' ELSE 'lifted_person' END, x.lifted_at,
           x.popup_type, x.district_id, x.community_id
    FROM popups x JOIN healthkit_popupevent e ON e.case_id = x.id AND e.kind = 'lifted'
    WHERE x.state = 'lifted' AND x.lifted_at >= %(since)s
  UNION ALL
    SELECT 'appeals_filed', created_at, popup_type, district_id, community_id FROM appeals
    WHERE created_at >= %(since)s
  UNION ALL
    SELECT 'appeals_closed', closed_at, popup_type, district_id, community_id FROM appeals
    WHERE status = 'closed' AND closed_at >= %(since)s
)
SELECT metric, '{unit}', date_trunc('{unit}', at AT TIME ZONE %(tz)s) AT TIME ZONE %(tz)s,
       popup_type, district_id, count(*)
FROM points
GROUP BY 1, 2, 3, 4, 5
"""  # noqa: S608 - composed from constants; every value is a parameter
_TREND = "INSERT INTO oversight_trendpoint (metric, grain, bucket, popup_type, district_id, n)" + TREND_SELECT

DURATIONS_SELECT = """
SELECT 'appeal_decision', a.category, NULL::boolean, COALESCE(p.popup_type, a.popup_type_claimed), ps.district_id,
       (a.closed_at AT TIME ZONE %(tz)s)::date, """ + _BIN.format(start="a.created_at", end="a.closed_at") + """,
       count(*)
FROM appeals_appeal a
LEFT JOIN communities_resident r ON r.id = a.resident_id  -- an unregistered filer's appeal counts too
LEFT JOIN healthkit_popupcase p ON p.id = a.popup_id
""" + _PLACE.format(community="COALESCE(a.routed_community_id, a.community_id, r.community_id)") + """
WHERE {appeal_scope} AND a.status = 'closed' AND a.closed_at >= %(since)s AND a.merged_into_id IS NULL
GROUP BY 1, 2, 3, 4, 5, 6, 7
UNION ALL
SELECT 'popup_lift', p.source, e.actor_id IS NOT NULL, p.popup_type, ps.district_id,
       (p.lifted_at AT TIME ZONE %(tz)s)::date, """ + _BIN.format(start="p.raised_at", end="p.lifted_at") + """,
       count(*)
FROM healthkit_popupcase p
JOIN healthkit_popupevent e ON e.case_id = p.id AND e.kind = 'lifted'
JOIN communities_resident r ON r.id = p.resident_id
""" + _PLACE.format(community="r.community_id") + """
WHERE {popup_scope} AND p.state = 'lifted' AND p.lifted_at >= %(since)s
GROUP BY 1, 2, 3, 4, 5, 6, 7
UNION ALL
-- the negative result that ended a popup (its lift event names it) was on file at received_at;
-- the lift was written at recorded_at: the wait a resident sees after the lab did its part
SELECT 'record_lift', p.source, e.actor_id IS NOT NULL, p.popup_type, ps.district_id,
       (p.lifted_at AT TIME ZONE %(tz)s)::date, """ + _BIN.format(start="tr.received_at", end="e.recorded_at") + """,
       count(*)
FROM healthkit_popupcase p
JOIN healthkit_popupevent e ON e.case_id = p.id AND e.kind = 'lifted'
JOIN healthkit_testresult tr ON tr.id = (e.data->'records'->>'test_result')::bigint
JOIN communities_resident r ON r.id = p.resident_id
""" + _PLACE.format(community="r.community_id") + """
WHERE {popup_scope} AND p.state = 'lifted' AND p.lifted_at >= %(since)s
  AND jsonb_typeof(e.data->'records'->'test_result') = 'number'
GROUP BY 1, 2, 3, 4, 5, 6, 7
"""  # noqa: S608 - composed from constants; every value is a parameter
_DURATIONS = ("INSERT INTO oversight_durationbin (measure, key, by_person, popup_type, district_id, day, bin, n)"
              + DURATIONS_SELECT)

# The rows a history statement reads: every row for the summary tables, or one community's (its
# own popups; the appeals routed to it, else filed with it, else of its residents - the same place
# the summary gives an appeal), found through the community, resident and appeal indexes.
CITY_SCOPE = {"{popup_scope}": "TRUE", "{appeal_scope}": "TRUE"}
COMMUNITY_SCOPE = {
    "{popup_scope}": "r.community_id = %(community)s",
    "{appeal_scope}": """a.id IN (
        SELECT id FROM appeals_appeal WHERE routed_community_id = %(community)s
        UNION ALL
        SELECT id FROM appeals_appeal WHERE routed_community_id IS NULL AND community_id = %(community)s
        UNION ALL
        SELECT a2.id FROM appeals_appeal a2 JOIN communities_resident r2 ON r2.id = a2.resident_id
        WHERE r2.community_id = %(community)s AND a2.routed_community_id IS NULL AND a2.community_id IS NULL)""",
}


def scoped(sql: str, scope: dict[str, str], unit: str = "day") -> str:
    """A history statement for the rows of `scope` (constants only, never input)."""
    for placeholder, clause in {**scope, "{unit}": unit}.items():
        sql = sql.replace(placeholder, clause)
    return sql


_SNAPSHOT_TABLES = ("oversight_openpopupfigure", "oversight_openpopupbycommunity", "oversight_openappealfigure",
                    "oversight_opentaskfigure", "oversight_deliveryfigure")


LOCK_SQL = "SELECT {fn}(hashtext('oversight_summary_refresh'))"


def summary_refresh(*, now: dt.datetime | None = None, full: bool = False) -> SummaryRefresh | None:
    """Refresh the summary tables from the base tables in one transaction (readers keep the
    previous figures until it commits). The open-items tables are rebuilt whole; the history
    (trends, times) from REWRITE_DAYS before the previous refresh, or whole when `full` or on the
    first run. Idempotent: a rerun replaces the same rows. Set-based: one INSERT ... SELECT per
    table, whatever the number of popups and appeals.

    Never two at once (a transaction-level advisory lock): the every-minute run gives up when one
    is still running (returns None: that one's figures are as fresh), so a slow refresh never
    piles runs up behind it; the full rebuild waits for its turn."""
    now = now or clock.now()
    started = time.monotonic()
    today = timezone.localdate(now)
    previous = SummaryRefresh.objects.order_by("-as_of").first()
    first_day = dt.date(1, 1, 2)
    if not full and previous is not None:
        first_day = timezone.localdate(min(previous.as_of, now)) - dt.timedelta(days=REWRITE_DAYS)
    since = timezone.make_aware(dt.datetime.combine(first_day, dt.time()))
    params = {
        "now": now, "tz": settings.TIME_ZONE, "since": since,
        "stranded_since": today - dt.timedelta(days=STRANDED_DAYS),
        "sms_since": now - dt.timedelta(days=SMS_DAYS),
    }
    with transaction.atomic(), connection.cursor() as cursor:
        if full:
            cursor.execute(LOCK_SQL.format(fn="pg_advisory_xact_lock"))
        else:
            cursor.execute(LOCK_SQL.format(fn="pg_try_advisory_xact_lock"))
            if not cursor.fetchone()[0]:
                return None
        for table in _SNAPSHOT_TABLES:
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 - constant table names
        for sql in (_OPEN_POPUPS, _OPEN_APPEALS, _OPEN_TASKS, _DELIVERIES):
            cursor.execute(sql, params)
        cursor.execute("DELETE FROM oversight_durationbin WHERE day >= %s", [first_day])
        cursor.execute(scoped(_DURATIONS, CITY_SCOPE), params)
        cursor.execute("DELETE FROM oversight_trendpoint WHERE grain = 'hour' OR bucket >= %s", [since])
        cursor.execute(scoped(_TREND, CITY_SCOPE, "day"), params)
        cursor.execute(scoped(_TREND, CITY_SCOPE, "hour"), {**params, "since": now - dt.timedelta(days=HOURLY_DAYS)})
        # Fresh statistics: with stale ones the planner sorts the bins on disk instead of hashing.
        cursor.execute("ANALYZE oversight_durationbin, oversight_trendpoint")
        refresh = SummaryRefresh.objects.create(as_of=now, duration_ms=int((time.monotonic() - started) * 1000))
        SummaryRefresh.objects.filter(as_of__lt=now - dt.timedelta(days=1)).delete()
    return refresh
