"""The popup rules engine: which automatic popups (types 1, 2, 4, 5) are active at an instant,
raised and lifted set-wise in SQL, with the records that decided each change.

One implementation serves both paths:
- event-driven: `evaluate(resident_ids=[...])` after a batch of signals commits (a Celery task);
- the periodic sweep: `sweep()` = the same statement without the resident filter, after a
  lean step that lists what changes (nothing listed: nothing else runs; see _CHANGES).
The simulator calls `evaluate` for its one resident at each event's instant.

How a rule is expressed: each rule turns signal rows into *intervals* `[starts_at, ends_at)`
during which it holds for a resident, clipped to the validity of each (non-abolished) policy
version of its type and using that version's parameters. A popup type is active at `at` when
some interval contains `at`. Each interval carries the ids of the records that make it
(`refs`) and of those that end it (`end_refs`), which become the popup event's `data`: the
answer to a resident's "why?". An interval never starts before its records were on record
(`received_at`), so a popup is never back-dated to before the engine could have known.

- type 1: a stay in county C × a local case in C: from max(stay start, case) until
  min(left + window_days, case + case_free_days) (window 14 d before 2022-07-16, then 7 d).
- type 2: a quarantine order: from its start until 00:00 (city time) of the day after its end.
- type 4: a trigger (arrival, drug purchase, clinic visit) at T: from T + deadline_hours (a
  TestRequirement: its own deadline_at) until
  the first negative result sampled after T is *received*.
- type 5: a stay in a border-port county: from its start until left + window_days; the policy
  version from 2022-07-16 is abolished, so intervals end at 2022-07-16 00:00 +08:00 and any
  still-open type-5 popup (whatever raised it) is lifted at that instant.
- type 3 is never lifted here: upstream assignments raise it once (`dedupe_key='upstream'`).

Raising: an open case is never duplicated (the unique partial index popup_one_open_per_cause,
INSERT ... ON CONFLICT DO NOTHING, rows inserted in (resident, type) order so two concurrent
runs never deadlock). A popup lifted by a person (community decision) is not re-raised for the
same records: only an interval that started after that lift raises it again.
Lifting: open engine cases with no interval containing `at`, locked in primary-key order with
SKIP LOCKED (a case a person is transitioning right now is left for the next run); lifted_at is
the instant the last interval ended, not the time the sweep happened to run.
Every raise and lift writes a PopupEvent and an outbox record in the same statement.
"""

import datetime as dt
import functools
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils.translation import gettext as _

from healthkit import clock
from healthkit.outbox import outbox_sql_ctes

RULES = {1: "risk_county", 2: "entry_quarantine", 3: "upstream_assignment", 4: "missed_test", 5: "border_port"}
SWEEP_LOCK_KEY = 4_202_207_16  # pg advisory lock: one sweep at a time (others skip)
SWEEP_OVERLAP = dt.timedelta(minutes=5)  # each sweep re-covers the end of the previous window
OPEN = "('active', 'under_review')"

_POLICY_AT = """
    SELECT {cols} FROM healthkit_popuppolicy p
    WHERE p.popup_type = {t} AND p.effective_from <= {at}
      AND (p.effective_to IS NULL OR p.effective_to > {at})
    ORDER BY p.effective_from DESC LIMIT 1
"""

# The rules as intervals. {fs1}/{fq}/{fa}/{fm}/{ft}/{fs5} are resident filters and {t4_*} the type-4
# end (fixed SQL from this module, no input). Lean rows: keys and scalars only (the record's
# kind and ids, the county, the type-4 deadline, what ended it); the jsonb "why" records are
# built later, only for the rows that change. Written once, used twice (see _T4_NOW/_T4_ENDED).
_RULES = """
    -- type 1: stayed in a county while/before it was affected, left less than W days ago
    SELECT s.resident_id, 1 AS popup_type,
           GREATEST(s.started_at, c.reported_at, s.received_at, c.received_at, p.pf) AS starts_at,
           LEAST(w.left_until, w.case_free_at, p.pt) AS ends_at,
           -- the records' ids, plus the facts staff read first (county; for type 4 the deadline)
           'stay'::text AS kind, s.id AS rec, c.id AS rec2, s.county, NULL::timestamptz AS deadline,
           CASE WHEN p.pt <= LEAST(w.left_until, w.case_free_at) THEN 'policy_boundary'
                WHEN w.case_free_at <= w.left_until THEN 'county_case_free'
                ELSE 'window_since_leaving' END AS ended_by,
           p.id AS policy_id,  -- the version that decides the interval (its "why" names it)
           NULL::timestamptz AS trigger_at  -- type 4: the trigger's instant (see cur)
    FROM healthkit_stay s
    JOIN pol p ON p.popup_type = 1
    JOIN healthkit_localcase c ON c.county = s.county
         AND c.reported_at < COALESCE(s.ended_at, 'infinity') + p.window_days
         AND c.reported_at + p.case_free_days > s.started_at
    CROSS JOIN LATERAL (SELECT
        COALESCE(s.ended_at, 'infinity') + p.window_days AS left_until,
        c.reported_at + p.case_free_days AS case_free_at
    ) w
    WHERE s.started_at <= %(at)s {fs1}
  UNION ALL
    -- type 2: entry quarantine, lifted 00:00 (city time) the day after it ends
    SELECT q.resident_id, 2,
           GREATEST(q.starts_at, q.received_at, p.pf),
           LEAST((date_trunc('day', q.ends_at AT TIME ZONE %(tz)s) + interval '1 day') AT TIME ZONE %(tz)s, p.pt),
           'quarantine_order', q.id, NULL, NULL, NULL, 'quarantine_ended', p.id, NULL
    FROM healthkit_quarantineorder q
    JOIN pol p ON p.popup_type = 2
    WHERE q.starts_at <= %(at)s {fq}
  UNION ALL
    -- type 4: no negative result sampled after the trigger on record by the deadline (the kind as
    -- text, as the other rules give it: the four rules are then one append, not a projection
    -- of every interval to common types)
    SELECT g.resident_id, 4,
           GREATEST(d.deadline, g.received_at),
           {t4_end},
           g.kind::text, g.id, {t4_result}, NULL, d.deadline, 'negative_result',
           p.id,  -- the version in force at the trigger, whose deadline applies, whenever it falls
           g.at
    FROM (
        SELECT * FROM (
            SELECT 'arrival' AS kind, a.id, a.resident_id, a.arrived_at AS at, a.received_at,
                   NULL::timestamptz AS deadline_at
            FROM healthkit_arrival a WHERE a.arrived_at <= %(at)s {fa}
            UNION ALL
            SELECT m.kind, m.id, m.resident_id, m.occurred_at, m.received_at, NULL
            FROM healthkit_medicalevent m WHERE m.occurred_at <= %(at)s {fm}
            UNION ALL
            -- a test requirement (screening, investigation, checkpoint) carries its own deadline
            SELECT 'test_requirement', t.id, t.resident_id, t.trigger_at, t.received_at, t.deadline_at
            FROM healthkit_testrequirement t WHERE t.trigger_at <= %(at)s AND t.withdrawn_at IS NULL {ft}
        ) g {t4_triggers}
        OFFSET 0  -- planned on its own: see _T4_NOW
    ) g
    {t4_policy}
    CROSS JOIN LATERAL (SELECT COALESCE(g.deadline_at, g.at + p.deadline_after) AS deadline) d
    {t4_join}
    WHERE d.deadline <= %(at)s  -- not due yet: no interval has started
  UNION ALL
    -- type 5: stayed in a county with a land border port within W days
    SELECT s.resident_id, 5,
           GREATEST(s.started_at, s.received_at, p.pf),
           LEAST(w.left_until, p.pt),
           'stay', s.id, NULL, s.county, NULL,
           CASE WHEN p.pt <= w.left_until THEN 'policy_boundary' ELSE 'window_since_leaving' END, p.id, NULL
    FROM healthkit_stay s
    JOIN pol p ON p.popup_type = 5
    CROSS JOIN LATERAL (SELECT COALESCE(s.ended_at, 'infinity') + p.window_days AS left_until) w
    WHERE s.border_port AND s.started_at <= %(at)s {fs5}
"""
# _RULES by popup type (each rule's text between the UNION ALLs), for a statement that reads
# some types' rules only (_rules_of), and the interval columns as _RULES gives them
_RULE_BRANCHES = dict(zip((1, 2, 4, 5), _RULES.split("\n  UNION ALL\n"), strict=True))
# (typed there: a rule's bare NULL, alone or beside other rules' NULLs, would be text)
_INTERVAL_COLUMNS = (("resident_id", "bigint"), ("popup_type", "integer"), ("starts_at", "timestamptz"),
                     ("ends_at", "timestamptz"), ("kind", "text"), ("rec", "bigint"), ("rec2", "bigint"),
                     ("county", "text"), ("deadline", "timestamptz"), ("ended_by", "text"), ("policy_id", "bigint"),
                     ("trigger_at", "timestamptz"))


def _rules_of(types: Sequence[int]) -> str:
    """_RULES with the rules of these popup types only (none: no interval), columns named as
    _RULES names them. A lift's "why" is read per type for that type's lifted residents, so
    leaving out the types nobody is lifted from changes no row; it leaves their relations
    unplanned and their resident filters unrun."""
    branches = [_RULE_BRANCHES[t] for t in sorted(set(types)) if t in _RULE_BRANCHES]
    if not branches:
        return "SELECT " + ", ".join(f"NULL::{type_} AS {name}" for name, type_ in _INTERVAL_COLUMNS) + " WHERE false"
    union = "\n  UNION ALL\n".join(branches)
    names = ", ".join(name for name, _type in _INTERVAL_COLUMNS)
    columns = ", ".join(f"r.{name}::{type_} AS {name}" for name, type_ in _INTERVAL_COLUMNS)
    return f"SELECT {columns} FROM (\n{union}\n) r({names})"  # noqa: S608 - this module's constants only


# The type-4 version in force at the trigger: joined (by hash when the planner knows the triggers
# are many), or for each trigger (one version at a time: policy_one_version_at_a_time), a
# LATERAL with LIMIT so the triggers are read once even when the planner guesses them few.
_T4_POLICY_JOIN = "JOIN pol4 p ON p.kind = g.kind AND p.pf <= g.at AND g.at < p.pt"
_T4_POLICY_EACH = ("CROSS JOIN LATERAL (SELECT * FROM pol4 p WHERE p.kind = g.kind AND p.pf <= g.at AND g.at < p.pt"
                   " LIMIT 1) p")
# A negative result that counts for a trigger: sampled after it, not (yet) superseded at `at`.
_NEGATIVE_AFTER = """
    r.resident_id = g.resident_id AND r.result = 'negative' AND r.sampled_at > g.at
    AND (r.superseded_at IS NULL OR r.superseded_at > %(at)s)  -- a corrected result no longer counts
"""
# Intervals holding at `at`: for type 4, none such result received by then (an anti-join the
# planner runs as one hash join over the results, or as index probes for a few residents). The
# end itself is not needed to decide what changes.
_T4_NOW = {
    # Before the policy join, the triggers planned on their own (OFFSET 0): the planner cannot
    # estimate how many triggers the policy versions keep; guessing a few, it would probe the
    # results index once per trigger (a million probes) instead of hashing the results once,
    # and read the triggers again for each kind of trigger.
    "t4_triggers": "WHERE NOT EXISTS (SELECT 1 FROM healthkit_testresult r WHERE " + _NEGATIVE_AFTER  # noqa: S608
                   + " AND r.received_at <= %(at)s)",
    "t4_result": "NULL", "t4_end": "'infinity'::timestamptz", "t4_join": "", "t4_policy": _T4_POLICY_JOIN,
}
# The same test as index probes, one per trigger (a LATERAL with LIMIT is never hashed): for a
# full sweep when the results outnumber the triggers several times (see _type4_by_probe).
_T4_NOW_PROBE = {
    **_T4_NOW,
    "t4_triggers": "LEFT JOIN LATERAL (SELECT true AS found FROM healthkit_testresult r WHERE "  # noqa: S608
                   + _NEGATIVE_AFTER + " AND r.received_at <= %(at)s LIMIT 1) x ON true WHERE x.found IS NULL",
    "t4_policy": _T4_POLICY_EACH,
}
# Intervals that ended by `at` (read for the lifted residents only): a type-4 interval ends
# when the first such result was received; that result (earliest id on a tie) is the lift's
# record. One probe per trigger of a lifted resident.
_T4_ENDED = {
    "t4_triggers": "", "t4_result": "n.id", "t4_end": "n.received_at", "t4_policy": _T4_POLICY_EACH,
    "t4_join": "CROSS JOIN LATERAL (SELECT r.received_at, r.id FROM healthkit_testresult r WHERE "  # noqa: S608
               + _NEGATIVE_AFTER + " AND r.received_at <= %(at)s ORDER BY r.received_at, r.id LIMIT 1) n",
}

_POL = """
pol AS (  -- the non-abolished versions, their parameters read once
    SELECT id, popup_type, effective_from AS pf, COALESCE(effective_to, 'infinity'::timestamptz) AS pt,
           CASE WHEN popup_type IN (1, 5) THEN make_interval(days => (params->>'window_days')::int) END
               AS window_days,
           CASE WHEN popup_type = 1 THEN make_interval(days => COALESCE((params->>'case_free_days')::int, 7)) END
               AS case_free_days,
           CASE WHEN popup_type = 4 THEN make_interval(hours => (params->>'deadline_hours')::int) END
               AS deadline_after,
           COALESCE(params->'triggers', '[]'::jsonb) AS triggers
    FROM healthkit_popuppolicy
    WHERE NOT COALESCE((params->>'abolished')::boolean, false)
),
-- type 4 by trigger kind (a test requirement always counts): joined by hash, or read for each
-- trigger (_T4_POLICY_EACH). Computed once: a statement that reads it once (the lifts-only one,
-- for the lifts' "why") would otherwise plan it inline, and each trigger would scan the policies
-- and test their `triggers` jsonb again
pol4 AS MATERIALIZED (
    SELECT p.id, p.pf, p.pt, p.deadline_after, k.kind
    FROM pol p CROSS JOIN unnest(%(trigger_kinds)s::text[]) k(kind)
    WHERE p.popup_type = 4 AND (k.kind = 'test_requirement' OR p.triggers ? k.kind)
)"""

# What an evaluation needs to know first, in one round trip (constants only; values are
# parameters): its settings for the transaction (JIT compiling the evaluation costs more than it
# saves, 2.3 s of 3.8 s over 100k popups, measured; a full sweep sorts and hashes far more than
# the default work_mem), the abolished types, the result and trigger tables' sizes (for
# _type4_by_probe) and whether any upstream assignment waits (_ASSIGNMENTS is skipped if not).
_PRELUDE = """
SELECT set_config('jit', 'off', true),
       set_config('work_mem', COALESCE(%(work_mem)s, current_setting('work_mem')), true),
       (SELECT COALESCE(array_agg(DISTINCT popup_type), '{{}}') FROM healthkit_popuppolicy
        WHERE COALESCE((params->>'abolished')::boolean, false)
          AND effective_from <= %(at)s AND (effective_to IS NULL OR effective_to > %(at)s)),
       (SELECT COALESCE(sum(GREATEST(reltuples, 0)) FILTER (WHERE relname = 'healthkit_testresult'), 0)
        FROM pg_class WHERE relkind = 'r' AND relname = 'healthkit_testresult'),
       (SELECT COALESCE(sum(GREATEST(reltuples, 0)), 0) FROM pg_class WHERE relkind = 'r'
        AND relname IN ('healthkit_arrival', 'healthkit_medicalevent', 'healthkit_testrequirement')),
       EXISTS (SELECT 1 FROM healthkit_popupassignment a
               WHERE a.case_id IS NULL AND GREATEST(a.assigned_at, a.received_at) <= %(at)s {fa})
"""

# What changes ({cmp} of _EVALUATE), found by the statement itself: open popups (one per resident
# and type) against the intervals holding at `at`. Unmatched on the case side: a lift; on the
# interval side: a raise (the interval's lean row comes along, so nothing is read twice).
_CMP_BY_JOIN = (
    "\n"  # noqa: S608
    + """open_cases AS (
    SELECT pc.id, pc.resident_id, pc.popup_type, pc.source FROM healthkit_popupcase pc
    WHERE pc.state IN """ + OPEN + """ AND pc.dedupe_key = '' {fc}
),
cmp AS (
    SELECT oc.id, oc.source, oc.popup_type AS case_type,
           a.resident_id, a.popup_type, a.starts_at, a.kind, a.rec, a.rec2, a.county, a.deadline, a.policy_id,
           a.trigger_at
    FROM open_cases oc
    FULL JOIN (
        SELECT iv.resident_id, iv.popup_type, iv.starts_at, iv.kind, iv.rec, iv.rec2, iv.county, iv.deadline,
               iv.policy_id, iv.trigger_at
        FROM ({iv_now}) iv WHERE iv.starts_at <= %(at)s AND %(at)s < iv.ends_at
    ) a ON a.resident_id = oc.resident_id AND a.popup_type = oc.popup_type
    WHERE oc.id IS NULL OR a.resident_id IS NULL
),""")
# The same rows, as a full sweep's lean step (_CHANGES) listed them: the raises' intervals read
# again for the listed residents and types only (their "why"); the popups to lift are not read
# here, the victims take them by id from the list (_VICTIMS_LISTED). The lists go in as arrays
# read by a sub-select (planned once, whatever their length).
_CMP_LISTED = """
cmp AS (
    SELECT NULL::bigint AS id, NULL::text AS source, NULL::integer AS case_type,
           iv.resident_id, iv.popup_type, iv.starts_at, iv.kind::text AS kind, iv.rec, iv.rec2,
           iv.county::text AS county, iv.deadline, iv.policy_id, iv.trigger_at
    FROM ({iv_now}) iv WHERE iv.starts_at <= %(at)s AND %(at)s < iv.ends_at
),"""
# A list with lifts only (the usual sweep): no raise, so the rules are not read for raises at all
# (neither planned nor run).
_CMP_LIFTS_ONLY = """
cmp AS (
    SELECT NULL::bigint AS id, NULL::text AS source, NULL::integer AS case_type,
           NULL::bigint AS resident_id, NULL::integer AS popup_type, NULL::timestamptz AS starts_at,
           NULL::text AS kind, NULL::bigint AS rec, NULL::bigint AS rec2, NULL::text AS county,
           NULL::timestamptz AS deadline, NULL::bigint AS policy_id, NULL::timestamptz AS trigger_at
    WHERE false
),"""
# The popups to lift ({victim_ids} of _EVALUATE): found by the statement's own join, plus the open
# popups of an abolished type; or, listed by the lean step, which found both the same way, by id.
_VICTIMS_BY_JOIN = (
    "\n"  # noqa: S608
    + """        SELECT id FROM cmp
        WHERE resident_id IS NULL AND source = 'engine' AND case_type IN (1, 2, 4, 5)
      UNION ALL  -- an abolished rule lifts every open popup of its type, whatever raised it
        SELECT o.id FROM healthkit_popupcase o  -- the types of `abolished`, read just before
        WHERE o.popup_type = ANY(%(abolished_types)s::int[]) AND o.state IN """ + OPEN)
_VICTIMS_LISTED = "SELECT unnest(%(lift_ids)s::bigint[])"
# The residents of an evaluation (`evaluate(resident_ids=...)`), for _filters: an array read by a
# sub-select, so its length does not reach the planner (given as an array constant, each filter
# of 10,000 ids was estimated element by element: 35 ms of planning, see docs/engine.md).
_IDS = "ARRAY(SELECT unnest(%(ids)s::bigint[]))"
# the raise list's residents of one popup type, for _filters
_RAISE_LISTED = "ARRAY(SELECT r FROM unnest(%(raise_residents)s::bigint[], %(raise_types)s::int[]) x(r, t) WHERE t = {t})"

# Composed only from constants in this module; all values go through query parameters.
# {iv_now} / {iv_ended}: _RULES with the filters of the call (see _evaluate_sql); {fc}: the
# resident filter on popups.
_EVALUATE = (
    "WITH "  # noqa: S608
    + _POL
    + """,
{cmp}
abolished AS (
    SELECT popup_type, effective_from FROM healthkit_popuppolicy
    WHERE COALESCE((params->>'abolished')::boolean, false)
      AND effective_from <= %(at)s AND (effective_to IS NULL OR effective_to > %(at)s)
),
victims AS (
    SELECT pc.id, pc.resident_id, pc.popup_type, pc.state, pc.raised_at
    FROM healthkit_popupcase pc
    WHERE pc.state IN """ + OPEN + """ {fc}
      AND pc.id IN ({victim_ids}
      )
    ORDER BY pc.id
    FOR UPDATE OF pc SKIP LOCKED
),
-- the intervals that ended by `at`, read for the lifted residents only
iv AS (
    SELECT * FROM ({iv_ended}) iv WHERE iv.starts_at < iv.ends_at AND iv.ends_at <= %(at)s
),
-- each victim with the interval that ended last for its resident and type, if any: the victims
-- and the ended intervals in one sort by resident, type and victim (an interval first, the one
-- that ended last foremost), each victim reading its partition's first row. Then one row of
-- arrays in that order: the planner, blind to the victims' count, sees a few and updates the
-- popups by key (no per-popup group of arrays, no join of two CTEs it cannot estimate: a
-- nested loop over thousands of lifts on each side would be quadratic). That row is held in
-- memory: roughly 150 bytes a lift (the lean step's list already holds their ids)
marked AS (
    SELECT u.id, u.state, u.raised_at, u.popup_type,
           first_value(u.ends_at) OVER w AS ends_at, first_value(u.end_refs) OVER w AS end_refs
    FROM (
        SELECT id, resident_id, popup_type, state, raised_at, NULL::timestamptz AS ends_at, NULL::jsonb AS end_refs
        FROM victims
      UNION ALL
        -- the interval's record built here, once per interval: a window function evaluates its
        -- argument on the partition's first row again for every row of the partition
        SELECT NULL, iv.resident_id, iv.popup_type, NULL, NULL, iv.ends_at, CASE iv.popup_type
               WHEN 1 THEN jsonb_build_object('stay', iv.rec, 'local_case', iv.rec2, 'ended_by', iv.ended_by)
               WHEN 2 THEN jsonb_build_object('quarantine_order', iv.rec, 'ended_by', iv.ended_by)
               -- type 4: rec2 is the first negative result received after the trigger
               WHEN 4 THEN jsonb_build_object(iv.kind, iv.rec, 'ended_by', iv.ended_by, 'test_result', iv.rec2)
               ELSE jsonb_build_object('stay', iv.rec, 'ended_by', iv.ended_by) END
        FROM iv  -- only the victims' residents and types (see _evaluate_sql)
    ) u
    WINDOW w AS (PARTITION BY u.resident_id, u.popup_type ORDER BY u.id NULLS FIRST, u.ends_at DESC)
),
last_end AS (
    SELECT array_agg(m.id) AS ids, array_agg(m.state) AS states, array_agg(m.raised_at) AS raised,
           array_agg(m.popup_type) AS types, array_agg(m.ends_at) AS ends, array_agg(m.end_refs) AS end_refs
    FROM marked m
    WHERE m.id IS NOT NULL
),
lifted AS (
    UPDATE healthkit_popupcase pc
    SET state = 'lifted', updated_at = now(),
        lifted_at = GREATEST(v.raised_at, LEAST(%(at)s, COALESCE(v.ends_at, ab.effective_from, %(at)s)))
    FROM last_end le
    CROSS JOIN LATERAL unnest(le.ids, le.states, le.raised, le.types, le.ends, le.end_refs)
        AS v(id, state, raised_at, popup_type, ends_at, end_refs)
    LEFT JOIN abolished ab ON ab.popup_type = v.popup_type
    WHERE pc.id = v.id AND pc.state IN """ + OPEN + """
    RETURNING pc.id, pc.resident_id, pc.popup_type, pc.lifted_at AS at, v.state AS from_state,
              COALESCE(v.end_refs, CASE WHEN ab.popup_type IS NOT NULL
                  THEN jsonb_build_object('ended_by', 'policy_abolished')
                  ELSE jsonb_build_object('ended_by', 'no_rule_holds') END) AS records
),
{raises}ch AS (
    -- a raise names the version that decided it (the popup's policy); a lift the version in
    -- force at the lift: a plain join (at most one version at a time:
    -- policy_one_version_at_a_time), not a sorted LIMIT 1 per change
    SELECT ch.*, COALESCE(pr.version, pv.version) AS policy FROM changes ch
    LEFT JOIN healthkit_popuppolicy pr ON pr.id = ch.policy_id
    LEFT JOIN healthkit_popuppolicy pv ON ch.policy_id IS NULL AND pv.popup_type = ch.popup_type
         AND pv.effective_from <= ch.at AND (pv.effective_to IS NULL OR pv.effective_to > ch.at)
),
ev AS (
    INSERT INTO healthkit_popupevent
        (case_id, kind, from_state, to_state, actor_id, actor_label, reason, data, at, recorded_at)
    SELECT id, kind, from_state, to_state, NULL, 'engine',
           %(reasons)s::jsonb->kind->>(popup_type::text),
           -- the object jsonb_build_object('rule', ..., 'evaluated_at', ...) would give, built
           -- from a row (its column names are not looked up per row; see outbox_sql_ctes)
           (SELECT to_jsonb(d) FROM (SELECT %(rules)s::jsonb->>(popup_type::text) AS rule, policy, records,
                                            %(at)s AS evaluated_at) d),
           at, now()
    FROM ch
),
""" + outbox_sql_ctes(changes="ch", rule="%(rules)s::jsonb->>(popup_type::text)") + """
SELECT {raised_count}, (SELECT count(*) FROM lifted), (SELECT count(*) FROM dl),
       {raises_capped} = %(max_raises)s
"""
)
# The raises ({raises} of _EVALUATE, after the lifts): their "why", the candidates (not re-raised
# after a person's lift, at most max_raises) and the insert; then every change of the statement.
_EVALUATE_RAISES = (
    "-- the \"why\" records, only for the residents and types raised\n"  # noqa: S608
    + """cur AS (
    SELECT iv.resident_id, iv.popup_type,
           array_agg(st.starts_at ORDER BY st.starts_at) AS starts,
           array_agg(iv.policy_id ORDER BY st.starts_at) AS policies,
           jsonb_agg(CASE iv.popup_type
               WHEN 1 THEN jsonb_build_object('stay', iv.rec, 'local_case', iv.rec2, 'county', iv.county)
               WHEN 2 THEN jsonb_build_object('quarantine_order', iv.rec)
               WHEN 4 THEN jsonb_build_object(iv.kind, iv.rec, 'deadline', iv.deadline)
               ELSE jsonb_build_object('stay', iv.rec, 'county', iv.county) END
               ORDER BY st.starts_at) AS records
    FROM cmp iv
    -- A type-4 interval holds again from when the last negative that counted for its trigger
    -- was superseded (a lab's correction): a popup raised now is dated then, not at the deadline
    -- or at its previous lift, when the resident was green and was told so. Read for the
    -- raises only: one probe of the resident's results sampled after the trigger (the
    -- (resident, sampled_at) index), as the lift's record reads them.
    CROSS JOIN LATERAL (SELECT GREATEST(iv.starts_at, CASE WHEN iv.popup_type = 4 THEN (
        SELECT max(r.superseded_at) FROM healthkit_testresult r
        WHERE r.resident_id = iv.resident_id AND r.result = 'negative' AND r.superseded_at IS NOT NULL
          AND r.sampled_at > iv.trigger_at AND r.superseded_at <= %(at)s) END) AS starts_at) st
    WHERE iv.id IS NULL
    GROUP BY iv.resident_id, iv.popup_type
),
candidates AS (
    SELECT cur.resident_id, cur.popup_type, cur.records,
           GREATEST(
               (SELECT min(x) FROM unnest(cur.starts) x WHERE x > COALESCE(lc.last_manual, '-infinity')),
               COALESCE(lc.last_close, '-infinity')) AS raised_at,
           -- the version that decided the interval the popup is dated from (a type-4 deadline
           -- may fall in a later version than the trigger's, whose deadline applied)
           (SELECT u.p FROM unnest(cur.starts, cur.policies) u(x, p)
            WHERE u.x > COALESCE(lc.last_manual, '-infinity') ORDER BY u.x LIMIT 1) AS policy_id
    FROM cur
    LEFT JOIN LATERAL (
        SELECT max(c.lifted_at) AS last_close,
               max(c.lifted_at) FILTER (WHERE NOT EXISTS (
                   SELECT 1 FROM healthkit_popupevent e
                   WHERE e.case_id = c.id AND e.kind IN ('lifted', 'withdrawn') AND e.actor_label = 'engine'
               )) AS last_manual
        FROM healthkit_popupcase c
        WHERE c.resident_id = cur.resident_id AND c.popup_type = cur.popup_type
          -- closed (so lifted_at is set: popup_lifted_at_matches_state), written on the state so
          -- the resident's index is used: the partial index on lifted_at would be scanned whole
          -- per raise when its statistics are stale after a mass lift (quadratic)
          AND c.dedupe_key = '' AND c.state IN ('lifted', 'withdrawn')
    ) lc ON true
    WHERE cur.starts[array_upper(cur.starts, 1)] > COALESCE(lc.last_manual, '-infinity')
    -- a full sweep raises at most max_raises per statement (NULL: no limit), the first ones in
    -- (resident, type) order: each chunk commits and the next one takes the rest (see sweep)
    ORDER BY cur.resident_id, cur.popup_type
    LIMIT %(max_raises)s
),
raised AS (
    INSERT INTO healthkit_popupcase
        (resident_id, popup_type, dedupe_key, cause, source, state, policy_id, raised_at, lifted_at, updated_at)
    SELECT c.resident_id, c.popup_type, '',
           jsonb_build_object('rule', %(rules)s::jsonb->>(c.popup_type::text), 'records', c.records),
           'engine', 'active', c.policy_id, c.raised_at, NULL, now()
    FROM candidates c
    ORDER BY c.resident_id, c.popup_type
    ON CONFLICT DO NOTHING
    RETURNING id, resident_id, popup_type, raised_at AS at, cause->'records' AS records, policy_id
),
changes AS (
    SELECT 'raised' AS kind, id, resident_id, popup_type, at, '' AS from_state, 'active' AS to_state, records,
           policy_id
    FROM raised
  UNION ALL
    SELECT 'lifted', id, resident_id, popup_type, at, from_state, 'lifted', records, NULL FROM lifted
),
""")
# A list with lifts only (_CMP_LIFTS_ONLY): no raise CTE at all, so none is planned.
_EVALUATE_NO_RAISES = """changes AS (
    SELECT 'lifted' AS kind, id, resident_id, popup_type, at, from_state, 'lifted' AS to_state, records,
           NULL::bigint AS policy_id
    FROM lifted
),
"""

# Constants only; values are query parameters.
_ASSIGNMENTS = """
WITH todo AS (
    SELECT a.id, a.resident_id, a.popup_type, a.reason, GREATEST(a.assigned_at, a.received_at) AS at
    FROM healthkit_popupassignment a
    WHERE a.case_id IS NULL AND GREATEST(a.assigned_at, a.received_at) <= %(at)s {fa}
    ORDER BY a.id
    FOR UPDATE SKIP LOCKED
),
first AS (
    SELECT DISTINCT ON (resident_id, popup_type) * FROM todo ORDER BY resident_id, popup_type, at, id
),
raised AS (
    INSERT INTO healthkit_popupcase
        (resident_id, popup_type, dedupe_key, cause, source, state, policy_id, raised_at, lifted_at, updated_at)
    SELECT f.resident_id, f.popup_type, 'upstream',
           jsonb_build_object('rule', 'upstream_assignment', 'reason', f.reason,
                              'records', jsonb_build_array(jsonb_build_object('popup_assignment', f.id))),
           'upstream', 'active', pv.id, f.at, NULL, now()
    FROM first f
    JOIN LATERAL (""" + _POLICY_AT.format(cols="p.id, p.version", t="f.popup_type", at="f.at") + """) pv ON true
    WHERE NOT EXISTS (SELECT 1 FROM healthkit_popuppolicy ap WHERE ap.id = pv.id
                      AND COALESCE((ap.params->>'abolished')::boolean, false))
    ORDER BY f.resident_id, f.popup_type
    ON CONFLICT DO NOTHING
    RETURNING id, resident_id, popup_type, raised_at AS at, cause
),
ch AS (
    SELECT r.*, pv.version AS policy FROM raised r
    LEFT JOIN LATERAL (""" + _POLICY_AT.format(cols="p.id, p.version", t="r.popup_type", at="r.at") + """) pv ON true
),
ev AS (
    INSERT INTO healthkit_popupevent
        (case_id, kind, from_state, to_state, actor_id, actor_label, reason, data, at, recorded_at)
    SELECT id, 'raised', '', 'active', NULL, 'upstream', cause->>'reason',
           jsonb_build_object('rule', 'upstream_assignment', 'policy', policy,
                              'records', cause->'records', 'cause', cause), at, now()
    FROM ch
),
""" + outbox_sql_ctes(changes="ch", kind="'raised'", rule="'upstream_assignment'") + """
SELECT (SELECT count(*) FROM raised), (SELECT coalesce(array_agg(id), '{{}}') FROM todo),
       (SELECT count(*) FROM dl)
"""  # noqa: S608

_LINK_ASSIGNMENTS = """
UPDATE healthkit_popupassignment a SET case_id = o.id
FROM healthkit_popupcase o
WHERE a.id = ANY(%(ids)s) AND a.case_id IS NULL
  AND o.resident_id = a.resident_id AND o.popup_type = a.popup_type
  AND o.dedupe_key = 'upstream' AND o.state IN """ + OPEN


@dataclass(frozen=True)
class Evaluation:
    raised: int = 0
    lifted: int = 0
    deliveries: int = 0
    more: bool = False  # the raises were capped (max_raises): more are left for the next run

    def __add__(self, other: "Evaluation") -> "Evaluation":
        return Evaluation(raised=self.raised + other.raised, lifted=self.lifted + other.lifted,
                          deliveries=self.deliveries + other.deliveries, more=other.more)


# _RULES' resident filters: placeholder, table alias, the popup type the rows serve (popups: any)
_FILTERED = (("fs1", "s", 1), ("fq", "q", 2), ("fa", "a", 4), ("fm", "m", 4), ("ft", "t", 4), ("fs5", "s", 5),
             ("fc", "pc", 0))


def _filters(ids: str | None) -> dict[str, str]:
    """Resident filters of _RULES' tables (`ids`: an SQL array expression, where `{t}` stands for
    the popup type the table's rows serve; None: everyone)."""
    if ids is None:
        return dict.fromkeys((key for key, _alias, _t in _FILTERED), "")
    return {key: f"AND {alias}.resident_id = ANY({ids.format(t=t)})" for key, alias, t in _FILTERED}


def _evaluate_sql(ids: str | None, *, probe: bool = False, listed: bool = False, lifts_only: bool = False,
                  lifted_types: Sequence[int] | None = None) -> str:
    """_EVALUATE for these residents (None: everyone), or (`listed`) for the changes a full
    sweep's lean step listed (_CHANGES; `lifts_only`: a list without raises). The ended
    intervals are read for the lifted residents only, whatever the call's filter, and with
    `lifted_types` (the types of the listed lifts) from those types' rules only."""
    rules_now = _RULES.format(**_filters(_RAISE_LISTED if listed else ids), **(_T4_NOW_PROBE if probe else _T4_NOW))
    cmp = _CMP_LIFTS_ONLY if lifts_only else _CMP_LISTED if listed else _CMP_BY_JOIN
    sql = _EVALUATE.replace("{cmp}", cmp)
    if lifts_only:
        sql = sql.replace("{raises}", _EVALUATE_NO_RAISES).replace("{raised_count}", "0").replace(
            "{raises_capped}", "0")
    else:
        sql = sql.replace("{raises}", _EVALUATE_RAISES).replace("{raised_count}", "(SELECT count(*) FROM raised)").replace(
            "{raises_capped}", "(SELECT count(*) FROM candidates)")
    return sql.format(
        iv_now=rules_now,
        victim_ids=_VICTIMS_LISTED if listed or lifts_only else _VICTIMS_BY_JOIN,
        # per type: the rows of the lifted residents' lifted types only, so nothing joins them
        # back to the victims (a join the planner, blind to the victims' count, ran as a nested
        # loop: 500,000 comparisons for 1,000 lifts)
        iv_ended=(_RULES if lifted_types is None else _rules_of(lifted_types)).format(
            **_filters("ARRAY(SELECT resident_id FROM victims WHERE popup_type = {t})"), **_T4_ENDED),
        fc=_filters(ids)["fc"],
    )


# A full sweep first asks only WHAT changes (the lean step): the same open popups against the
# same intervals holding at `at`, by keys alone (its hash holds resident and type, not the lean
# row), and the open popups of an abolished type. Nothing found: nothing else runs (no writing
# statement is planned or executed). Otherwise the full statement runs on that list
# (_evaluate_listed: the popups to lift by id; the intervals of the raises read again for their
# residents and types only), making the same changes, "why", events and outbox records; or, when
# more than SWEEP_LISTED_RAISES_AT_MOST raises are listed (a first sweep raising everyone), as
# before by its own join. A listed raise may still not be made (a popup a person lifted while
# its rule still holds is not raised again): the full statement decides, as it always did.
_CHANGES = (
    "WITH "  # noqa: S608
    + _POL
    + """,
open_cases AS (
    SELECT pc.id, pc.resident_id, pc.popup_type, pc.source FROM healthkit_popupcase pc
    WHERE pc.state IN """ + OPEN + """ AND pc.dedupe_key = ''
),
cmp AS (
    SELECT oc.id, oc.source, oc.popup_type AS case_type, a.resident_id, a.popup_type
    FROM open_cases oc
    FULL JOIN (
        SELECT iv.resident_id, iv.popup_type
        FROM ({iv_now}) iv WHERE iv.starts_at <= %(at)s AND %(at)s < iv.ends_at
    ) a ON a.resident_id = oc.resident_id AND a.popup_type = oc.popup_type
    WHERE oc.id IS NULL OR a.resident_id IS NULL
),
lifts AS (
    SELECT id, case_type AS popup_type FROM cmp
    WHERE resident_id IS NULL AND source = 'engine' AND case_type IN (1, 2, 4, 5)
  UNION  -- an abolished rule lifts every open popup of its type, whatever raised it
    SELECT o.id, o.popup_type FROM healthkit_popupcase o
    WHERE o.popup_type = ANY(%(abolished_types)s::int[]) AND o.state IN """ + OPEN + """
),
raises AS (
    SELECT DISTINCT resident_id, popup_type FROM cmp WHERE id IS NULL
    ORDER BY resident_id, popup_type LIMIT %(limit)s
)
-- the lists as array text, passed back as they are (not parsed into Python and written out
-- again), with their lengths; and the types lifted (the "why" reads only their rules)
SELECT l.ids, l.n, l.types, r.residents, r.types, r.n
FROM (SELECT COALESCE(array_agg(id ORDER BY id), '{{}}')::text AS ids, count(*) AS n,
             COALESCE(array_agg(DISTINCT popup_type), '{{}}') AS types FROM lifts) l,
     (SELECT COALESCE(array_agg(resident_id ORDER BY resident_id, popup_type), '{{}}')::text AS residents,
             COALESCE(array_agg(popup_type ORDER BY resident_id, popup_type), '{{}}')::text AS types,
             count(*) AS n FROM raises) r
""")
# The popups, events, outbox records and deliveries the statement writes skip their per-statement
# reference checks (migrations 0023/0024, an anti-join per reference and statement): their parents
# are held by ROW EXCLUSIVE on these tables, taken just before the statement reads the popups,
# residents, signals, policies and endpoints it refers to (healthkit_references_hold, migrations
# 0026, 0027, 0029). A delete of a parent locks these tables SHARE first: one not yet committed waits for
# this transaction, then refuses while referred to; one committed before is not seen by the
# statement. Taken in the order a resident's delete guards lock them (outbox records, deliveries,
# popups), so neither waits for the other in a cycle. Released right after the statement, so the
# transaction's later writes are checked again.
_HOLD_REFERENCES = ("SELECT healthkit_references_hold('healthkit_popupevent', 'healthkit_outboxrecord', "
                    "'healthkit_outboxdelivery', 'healthkit_popupcase')")
_RELEASE_REFERENCES = "SELECT set_config('healthkit.references_held', '', true)"

# Beyond this many raises listed, the full statement finds them by its own join (the listed
# residents' rules are read by index, one resident at a time).
SWEEP_LISTED_RAISES_AT_MOST = 10_000

# Built once: for a sweep of everyone and for a list of residents.
_EVALUATE_ALL = _evaluate_sql(None)
_EVALUATE_ALL_PROBE = _evaluate_sql(None, probe=True)
_EVALUATE_IDS = _evaluate_sql(_IDS)
_CHANGES_ALL = _CHANGES.format(iv_now=_RULES.format(**_filters(None), **_T4_NOW))
_CHANGES_ALL_PROBE = _CHANGES.format(iv_now=_RULES.format(**_filters(None), **_T4_NOW_PROBE))
# Hashing the results costs per result, probing per trigger (an index descent: a few times a
# hash insert, measured). The planner's costs favour the hash even with ten results per trigger,
# where the probes were 1.5x faster; with ten triggers per result the hash was 5x faster.
PROBE_WHEN_RESULTS_PER_TRIGGER = 3


@functools.lru_cache(maxsize=32)
def _evaluate_listed(*, raises: bool, lifted_types: tuple[int, ...]) -> str:
    """The statement for the changes a full sweep's lean step listed: with `raises`, type 4 of
    the listed raises by index probes, one per trigger of theirs (a hash would read every result
    for a few residents); without, no raise CTE at all. The "why" of the lifts from the rules of
    `lifted_types` only (at most 2 x 16 texts, built once)."""
    return _evaluate_sql(None, probe=raises, listed=True, lifts_only=not raises, lifted_types=lifted_types)


def _type4_by_probe(results: float, triggers: float) -> bool:
    """A full sweep tests the type-4 triggers by index probes when the results outnumber them
    PROBE_WHEN_RESULTS_PER_TRIGGER times (table statistics, read by _PRELUDE), by one hash of
    the results otherwise. The same answer either way."""
    return results > PROBE_WHEN_RESULTS_PER_TRIGGER * triggers


def _reasons() -> str:
    lifted = {
        1: _("Rule 1: no longer within the window after leaving a county with local cases."),
        2: _("Rule 2: entry quarantine ended; lifted at 00:00 the day after."),
        4: _("Rule 4: a negative result sampled after the trigger is on record."),
        5: _("Rule 5: no longer within 14 days of a border-port county, or the rule was abolished."),
        3: _("The rule for this popup type was abolished."),
    }
    raised = {
        1: _("Rule 1: stayed in a county with local cases within the window."),
        2: _("Rule 2: in entry quarantine."),
        4: _("Rule 4: no negative result sampled after the trigger by the deadline."),
        5: _("Rule 5: stayed in a county with a land border port within 14 days."),
    }
    return json.dumps({
        "raised": {str(k): str(v) for k, v in raised.items()},
        "lifted": {str(k): str(v) for k, v in lifted.items()},
    }, ensure_ascii=False)


def evaluate(*, resident_ids: Sequence[int] | None, at: dt.datetime | None = None,
             max_raises: int | None = None) -> Evaluation:
    """Bring the automatic popups of these residents (None: everyone) in line with the rules
    at `at` (default: healthkit.clock.now()). Idempotent; safe to run concurrently with itself,
    the sweep and staff transitions. One transaction; outbox delivery is kicked on commit.
    `max_raises` caps the raises (every lift is still made); `more` says the cap was reached."""
    from healthkit import outbox
    from healthkit.models import MedicalEvent

    at = at or clock.now()
    if resident_ids is not None:
        resident_ids = sorted({int(r) for r in resident_ids})
        if not resident_ids:
            return Evaluation()
    params = {
        "at": at, "ids": resident_ids, "tz": settings.TIME_ZONE,
        "rules": json.dumps({str(k): v for k, v in RULES.items()}), "reasons": _reasons(),
        # every kind of trigger the type-4 rule reads (the policy's `triggers` pick among them)
        "trigger_kinds": ["arrival", "test_requirement", *MedicalEvent.Kind.values],
        "max_raises": max_raises,
        "work_mem": settings.ENGINE_SWEEP_WORK_MEM if resident_ids is None else None,
    }
    fa = "" if resident_ids is None else _filters(_IDS)["fa"]
    raised_upstream = deliveries_upstream = 0
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_PRELUDE.format(fa=fa), params)
        _jit, _work_mem, abolished_types, results, triggers, assignments_due = cursor.fetchone()
        if assignments_due:
            cursor.execute(_ASSIGNMENTS.format(fa=fa), params)
            raised_upstream, todo_ids, deliveries_upstream = cursor.fetchone()
            if todo_ids:
                cursor.execute(_LINK_ASSIGNMENTS, {"ids": list(todo_ids)})
        # The abolished types as a literal list: the planner then reads their few open popups by
        # index instead of scanning every open popup for an unknown type.
        params["abolished_types"] = list(abolished_types)
        raised = lifted = deliveries = more = 0
        statement, statement_params = None, params
        if resident_ids is not None:
            statement = _EVALUATE_IDS
        else:  # a full sweep: what changes first (see _CHANGES)
            probe = _type4_by_probe(results, triggers)
            cursor.execute(_CHANGES_ALL_PROBE if probe else _CHANGES_ALL,
                           {**params, "limit": SWEEP_LISTED_RAISES_AT_MOST + 1})
            lift_ids, lifts, lifted_types, raise_residents, raise_types, raises = cursor.fetchone()
            if raises > SWEEP_LISTED_RAISES_AT_MOST:
                statement = _EVALUATE_ALL_PROBE if probe else _EVALUATE_ALL
            elif lifts or raises:
                statement = _evaluate_listed(raises=bool(raises), lifted_types=tuple(sorted(lifted_types)))
                statement_params = {**params, "lift_ids": lift_ids, "raise_residents": raise_residents,
                                    "raise_types": raise_types}
        if statement is not None:
            cursor.execute(_HOLD_REFERENCES)
            cursor.execute(statement, statement_params)
            raised, lifted, deliveries, more = cursor.fetchone()
            cursor.execute(_RELEASE_REFERENCES)
        if deliveries or deliveries_upstream:
            outbox.dispatch_on_commit()
    return Evaluation(raised=raised + raised_upstream, lifted=lifted,
                      deliveries=deliveries + deliveries_upstream, more=bool(more))


def _ranges(column: str, name: str, deltas: Sequence[dt.timedelta], since: dt.datetime, at: dt.datetime,
            params: dict) -> str:
    """SQL: `column + delta` falls in (since, at] for some delta (sargable: ranges on column)."""
    clauses = []
    for n, delta in enumerate(sorted(set(deltas))):
        params[f"{name}_lo{n}"], params[f"{name}_hi{n}"] = since - delta, at - delta
        clauses.append(f"({column} > %({name}_lo{n})s AND {column} <= %({name}_hi{n})s)")
    return " OR ".join(clauses) or "false"


def due_residents(*, since: dt.datetime, at: dt.datetime) -> list[int]:
    """Residents with a time boundary of a rule in (since, at]: a type-4 deadline, a quarantine
    starting or ending (00:00 the day after), a window since leaving a county expiring, a county
    going case-free. Data changes are evaluated when they arrive (event-driven); policy
    boundaries make the caller sweep everyone. Index range scans only."""
    from healthkit.models import PopupPolicy

    policies = list(PopupPolicy.objects.values_list("popup_type", "params"))
    hours = [dt.timedelta(hours=int(p.get("deadline_hours", 72))) for t, p in policies if t == 4]
    windows = [dt.timedelta(days=int(p["window_days"])) for t, p in policies
               if t in (1, 5) and p.get("window_days") is not None]
    case_free = [dt.timedelta(days=int(p.get("case_free_days", 7))) for t, p in policies if t == 1]
    longest = max(windows, default=dt.timedelta(days=14))
    params: dict = {"since": since, "at": at, "day": dt.timedelta(days=1, hours=1), "longest": longest}
    sql = f"""
        SELECT resident_id FROM healthkit_arrival WHERE {_ranges("arrived_at", "arr", hours, since, at, params)}
        UNION SELECT resident_id FROM healthkit_medicalevent
              WHERE {_ranges("occurred_at", "med", hours, since, at, params)}
        UNION SELECT resident_id FROM healthkit_testrequirement
              WHERE deadline_at > %(since)s AND deadline_at <= %(at)s
        UNION SELECT resident_id FROM healthkit_quarantineorder
              WHERE (starts_at > %(since)s AND starts_at <= %(at)s)
                 OR (ends_at > %(since)s - %(day)s AND ends_at <= %(at)s)
        UNION SELECT resident_id FROM healthkit_stay WHERE {_ranges("ended_at", "stay", windows, since, at, params)}
        UNION SELECT s.resident_id FROM healthkit_localcase c
              JOIN healthkit_stay s ON s.county = c.county
               AND (s.ended_at IS NULL OR s.ended_at > c.reported_at - %(longest)s)
              WHERE {_ranges("c.reported_at", "case", case_free, since, at, params)}
    """  # noqa: S608 - composed from constants; every value is a parameter
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return [row[0] for row in cursor.fetchall()]


def _policy_boundary_crossed(since: dt.datetime, at: dt.datetime) -> bool:
    from healthkit.models import PopupPolicy

    return PopupPolicy.objects.filter(
        Q(effective_from__gt=since, effective_from__lte=at) | Q(effective_to__gt=since, effective_to__lte=at)
    ).exists()


def sweep(*, at: dt.datetime | None = None, full: bool | None = None) -> Evaluation | None:
    """The periodic, time-based pass: deadlines passed, quarantines ended, windows expired,
    policy boundaries crossed. Evaluates only the residents with a time boundary since the
    previous sweep (`due_residents`), or everyone (`full=True`; also when there is no previous
    sweep, a policy boundary was crossed, the clock went back, the last full sweep is older
    than ENGINE_FULL_SWEEP_HOURS (the safety net for an evaluation task that was lost), or the
    previous sweep left raises for the next run).
    A full sweep raises at most ENGINE_SWEEP_MAX_RAISES popups per transaction: each chunk
    commits and is logged (`more` when raises are left), the next chunk takes the rest, and no
    chunk is started after half the task's soft time limit; a run stopped or killed in between
    keeps the committed chunks, and the next run, full again, goes on from there (raising a
    million popups at once outlived the task limit, and a killed run rolled back and repeated).
    Idempotent. Returns None if another sweep holds the lock. Each chunk is an EngineSweep."""
    from healthkit.models import EngineSweep

    at = at or clock.now()
    started = time.monotonic()
    total = residents = None
    while True:
        chunk_started = time.monotonic()
        with transaction.atomic():
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_try_advisory_xact_lock(%s)", [SWEEP_LOCK_KEY])
                if not cursor.fetchone()[0]:
                    return total
            if total is None and not full:  # the first chunk decides for the run (full=True: no reads)
                last = EngineSweep.objects.order_by("-pk").first()
                if full is None:
                    last_full = EngineSweep.objects.filter(full=True).order_by("-pk").first()
                    full = (
                        last is None or last_full is None or last.more or at <= last.at
                        or at - last_full.at >= dt.timedelta(hours=settings.ENGINE_FULL_SWEEP_HOURS)
                        or _policy_boundary_crossed(last.at - SWEEP_OVERLAP, at)
                    )
                residents = None if full else due_residents(since=last.at - SWEEP_OVERLAP, at=at)
            result = evaluate(resident_ids=residents, at=at,
                              max_raises=settings.ENGINE_SWEEP_MAX_RAISES if full else None)
            EngineSweep.objects.create(
                at=at, full=full, more=result.more, residents=None if residents is None else len(residents),
                raised=result.raised, lifted=result.lifted,
                duration_ms=int((time.monotonic() - chunk_started) * 1000),
            )
        total = result if total is None else total + result
        if not result.more or time.monotonic() - started >= settings.CELERY_TASK_SOFT_TIME_LIMIT / 2:
            return total
