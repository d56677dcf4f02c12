"""Engine work outbox: a committed signal always reaches evaluation, whatever the broker does.

`evaluate_later(resident_ids)` runs inside the transaction that stores the signals: it writes
one `EngineWork` row per evaluation task (its residents, at most CHUNK, as an array; one
statement) and, on commit, publishes one message: the row's id, or for several rows (an
ingest batch of 10,000 results writes ten) their ids, whose worker sends one message per row but
the first and evaluates that one (`evaluate_batch`). Each row's task
(`evaluate_work`) deletes its row and evaluates the residents it held in one transaction, so the
row disappears only with a committed evaluation. What no task took (broker down when the batch
committed, a worker killed, retries given up during a database outage) is taken by the beat
job `engine_work_due` every minute once it is `GRACE` old: at most about 90 s late.

Order matters in `evaluate_work`: the row is deleted first, then the evaluation reads the
signals, and it sees every signal of the row, because the signals committed together with it. A
row locked by a concurrent evaluation (the sweep taking it) is skipped: that evaluation covers
it. A task whose row is gone (the sweep took it, or a redelivered message whose first run
committed) does nothing. The message carries a number, not a thousand resident ids: smaller to
build, send and route (docs/engine.md).

Messages queued before that change carry the residents themselves (`evaluate_now`): such a task
finds its row by those residents (the same list, sorted, as the row holds) and evaluates them,
whether or not its row is still there, which is harmless.
"""

import datetime as dt
from collections.abc import Iterable, Sequence
from typing import NamedTuple

from django.db import connection, transaction

from healthkit import queues

CHUNK = 1000  # residents per evaluation task (and per sweep transaction)
GRACE = dt.timedelta(seconds=30)  # a fresh row belongs to its on-commit task first


class Work(NamedTuple):
    """What `evaluate_later` writes, prepared: the residents (sorted, once each) and one text of
    their ids per task (joined by commas: a text the server splits, not an array the driver
    adapts id by id)."""

    resident_ids: list[int]
    chunks: list[str]


def prepare(resident_ids: Iterable[int]) -> Work:
    """The work for these residents, built apart from writing it: the ingest builds it while the
    server is still inserting the batch's last rows, instead of after (healthkit.ingest)."""
    ids = sorted({int(r) for r in resident_ids})
    return Work(ids, [",".join(map(str, ids[i:i + CHUNK])) for i in range(0, len(ids), CHUNK)])


def evaluate_later(resident_ids: Iterable[int] = (), *, work: Work | None = None) -> None:
    """In the caller's transaction: record the work (for `resident_ids`, or `work` prepared),
    and publish the tasks after commit (a broker error is logged, never raised: the rows are
    the promise)."""
    from healthkit import tasks

    if work is None:
        work = prepare(resident_ids)
    if not work.resident_ids:
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO healthkit_enginework (resident_ids, created_at) "
            "SELECT string_to_array(c, ',')::bigint[], now() FROM unnest(%s::text[]) AS c RETURNING id",
            [work.chunks],
        )
        work_ids = [work_id for (work_id,) in cursor.fetchall()]
    if len(work_ids) == 1:
        queues.publish_on_commit(tasks.engine_evaluate_work, [(work_ids[0],)])
    else:  # one message for the whole commit; the worker that takes it sends the rest (evaluate_batch)
        queues.publish_on_commit(tasks.engine_evaluate_batch, [(work_ids,)])


def _claim(cursor, *, resident_ids: Sequence[int] | None, limit: int = CHUNK) -> list[int]:
    """Delete and return the residents of the rows this evaluation takes: a task's own row(s)
    (the same residents; a batch repeated before any task ran wrote the same row twice), or for
    the sweep the oldest rows past GRACE, whole rows up to `limit` residents (at least one row)."""
    if resident_ids is not None:
        ids = sorted({int(r) for r in resident_ids})
        if not ids:
            return []
        cursor.execute(
            """DELETE FROM healthkit_enginework WHERE id IN (
                   SELECT id FROM healthkit_enginework WHERE resident_ids[1] = %s AND resident_ids = %s::bigint[]
                   FOR UPDATE SKIP LOCKED)
               RETURNING resident_ids""",
            [ids[0], "{" + ",".join(map(str, ids)) + "}"],
        )
    else:
        cursor.execute(
            """DELETE FROM healthkit_enginework WHERE id IN (
                   SELECT id FROM healthkit_enginework WHERE id IN (
                       SELECT id FROM (
                           SELECT id, sum(cardinality(resident_ids)) OVER (ORDER BY id) AS upto,
                                  row_number() OVER (ORDER BY id) AS n
                           FROM (SELECT id, resident_ids FROM healthkit_enginework
                                 WHERE created_at <= clock_timestamp() - %s ORDER BY id LIMIT %s) oldest
                       ) counted WHERE upto <= %s OR n = 1)
                   FOR UPDATE SKIP LOCKED)
               RETURNING resident_ids""",
            [GRACE, limit, limit],
        )
    return sorted({resident for (row,) in cursor.fetchall() for resident in row})


def evaluate_work(*, work_id: int) -> int:
    """The task's body: take this work row and evaluate its residents, one transaction. A row
    already taken (by the sweep, or by an earlier delivery of the same message) or held by a
    running evaluation is left to whoever has it. Returns residents evaluated."""
    from healthkit import engine

    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            """DELETE FROM healthkit_enginework WHERE id IN (
                   SELECT id FROM healthkit_enginework WHERE id = %s FOR UPDATE SKIP LOCKED)
               RETURNING resident_ids""",
            [work_id],
        )
        row = cursor.fetchone()
        if row is None:
            return 0
        resident_ids = row[0]
        engine.evaluate(resident_ids=resident_ids)
    return len(resident_ids)


def evaluate_batch(*, work_ids: Sequence[int], fan_out: bool = True) -> int:
    """The body of a commit's one message when it wrote several work rows (an ingest batch of
    10,000 results writes ten): send one `engine_evaluate_work` message for every row but the
    first, so that idle workers take them at once, then evaluate the first row here. Sending the
    ten messages from the ingest took 4-10 ms of the lab's request (docs/engine.md); a worker
    sends them now. A broker error while sending leaves those rows to `engine_work_due`; a
    message delivered twice sends them twice, and each extra task finds its row gone.
    `fan_out` is off on a retry, whose earlier attempt sent them already."""
    from healthkit import tasks

    first, rest = work_ids[0], work_ids[1:]
    if rest and fan_out:
        queues.publish(tasks.engine_evaluate_work, [(work_id,) for work_id in rest])
    return evaluate_work(work_id=first)


def evaluate_now(*, resident_ids: Sequence[int]) -> None:
    """The body of a task queued before messages carried the work row's id (the residents
    themselves): take these residents' work rows and evaluate them, one transaction."""
    from healthkit import engine

    with transaction.atomic(), connection.cursor() as cursor:
        _claim(cursor, resident_ids=resident_ids)
        engine.evaluate(resident_ids=resident_ids)


def evaluate_due(*, max_chunks: int = 100) -> int:
    """The sweep: residents whose rows are older than GRACE, a chunk per transaction (a failure
    rolls back only its chunk, which stays for the next run). Returns residents evaluated."""
    from healthkit import engine

    done = 0
    for _ in range(max_chunks):
        with transaction.atomic(), connection.cursor() as cursor:
            ids = _claim(cursor, resident_ids=None)
            if not ids:
                break
            engine.evaluate(resident_ids=ids)
        done += len(ids)
    return done


def pending_count() -> int:
    """Rows waiting, one per evaluation task (readiness and operations)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM healthkit_enginework")
        return cursor.fetchone()[0]
