"""Demo access audit: ordinary looks by the demo staff, a reveal with its reason, and one account
that opened many different residents in a few minutes, so the supervisors' audit page
(console/audit/) shows an open enumeration alert to explore."""

from django.conf import settings

from communities.models import PersonalDataAccess, Resident, User
from communities.services import access_log


def is_loaded() -> bool:
    """For seed_demo's resume: the core step fills this app's other tables, so the audit rows
    tell whether this step ran."""
    return PersonalDataAccess.objects.filter(context__startswith="demo:").exists()


def seed(*, rng, stdout) -> None:
    staff = {u.username: u for u in User.objects.filter(username__in=["operator1", "operator2", "worker1",
                                                                      "supervisor1"])}
    if len(staff) < 4:
        stdout.write("  communities: demo staff missing; audit demo skipped")
        return
    residents = list(Resident.objects.order_by("pk").values_list("pk", flat=True)[:400])
    worker_residents = list(Resident.objects.filter(community__workers=staff["worker1"])
                            .order_by("pk").values_list("pk", flat=True)[:6])
    View = PersonalDataAccess.Action.VIEW
    for resident_id in rng.sample(residents, min(8, len(residents))):
        access_log(actor=staff["operator1"], resident_id=resident_id, action=View, context="demo:ticket")
    for resident_id in worker_residents:
        access_log(actor=staff["worker1"], resident_id=resident_id, action=View, context="demo:task")
    if residents:
        access_log(actor=staff["supervisor1"], resident_id=residents[0], action=PersonalDataAccess.Action.REVEAL_ID,
                   context="demo:reveal", reason="回访核实身份")
    # operator2 browses beyond the alarm's threshold: the audit page shows the alert
    browsed = settings.AUDIT_ENUMERATION_THRESHOLD + 5
    for resident_id in residents[-browsed:]:
        access_log(actor=staff["operator2"], resident_id=resident_id, action=View, context="demo:ticket")
