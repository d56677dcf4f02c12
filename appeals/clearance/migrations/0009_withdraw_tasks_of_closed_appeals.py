"""Open tasks still holding an appeal the hotline had closed (before closing withdrew them): the
same rule as appeals.services.appeal_close now applies. A task opened for the appeal and still
awaiting the community is withdrawn (its unused links stop working); any other goes on without
the appeal. Each gets the event a close writes now, so a later decision cannot text the resident
a second, contradicting outcome."""

from django.db import migrations

SQL = """
WITH stale AS (
    SELECT t.id, t.state, a.id AS appeal_id, a.reference, a.outcome, a.close_reason,
           t.origin = 'appeal' AND t.state IN ('open', 'confirmed', 'info_requested') AS withdraw
    FROM clearance_clearancetask t JOIN appeals_appeal a ON a.id = t.appeal_id
    WHERE t.state IN ('open', 'confirmed', 'info_requested', 'measures') AND a.status = 'closed'
), withdrawn AS (
    UPDATE clearance_clearancetask t
    SET state = 'closed', closed_at = now(), decided_at = now(), decision_reason = s.close_reason, updated_at = now()
    FROM stale s WHERE t.id = s.id AND s.withdraw
    RETURNING t.id
), detached AS (
    UPDATE clearance_clearancetask t SET appeal_id = NULL, updated_at = now()
    FROM stale s WHERE t.id = s.id AND NOT s.withdraw
    RETURNING t.id
), revoked AS (
    UPDATE clearance_clearancelink l SET revoked_at = now()
    FROM withdrawn w WHERE l.task_id = w.id AND l.used_at IS NULL AND l.revoked_at IS NULL
    RETURNING l.id
)
INSERT INTO clearance_clearanceevent (task_id, kind, from_state, to_state, actor_label, reason, data, at)
SELECT s.id, CASE WHEN s.withdraw THEN 'withdrawn' ELSE 'appeal_closed' END, s.state,
       CASE WHEN s.withdraw THEN 'closed' ELSE '' END, 'hotline', s.close_reason,
       jsonb_build_object('appeal', s.appeal_id, 'reference', s.reference, 'outcome', s.outcome), now()
FROM stale s
"""


class Migration(migrations.Migration):
    dependencies = [
        ("clearance", "0008_withdrawn_events"),
        ("appeals", "0014_claimed_masked_holds_a_64_character_name"),
    ]

    operations = [migrations.RunSQL(SQL, migrations.RunSQL.noop)]
