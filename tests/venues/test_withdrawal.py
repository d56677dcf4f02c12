"""Corrected and withdrawn risk windows: untouched popups follow, acted-on ones are flagged."""

import datetime as dt

import pytest

from healthkit.models import OutboxRecord, PopupCase, PopupEvent
from healthkit.services import popup_start_review
from tests.factories import ResidentFactory, UserFactory
from tests.factories.venues import VenueFactory, VenueScanFactory, cst
from venues import services
from venues.exposure import exposure_run
from venues.models import Exposure, RiskWindow, RiskWindowEvent

pytestmark = pytest.mark.django_db
T0 = cst(2022, 9, 2, 9)


@pytest.fixture
def supervisor():
    return UserFactory(role="supervisor")


@pytest.fixture
def marked(supervisor):
    """A venue with three visitors inside [10:00, 14:00) and one at 15:00; window marked, run."""
    venue = VenueFactory()
    scans = {name: VenueScanFactory(venue=venue, resident=ResidentFactory(), scanned_at=at)
             for name, at in {"early": cst(2022, 9, 1, 10, 30), "mid": cst(2022, 9, 1, 12),
                              "late": cst(2022, 9, 1, 13, 30), "after": cst(2022, 9, 1, 15)}.items()}
    window = services.risk_window_create(venue=venue, starts_at=cst(2022, 9, 1, 10),
                                         ends_at=cst(2022, 9, 1, 14), risk_level="high",
                                         reason="确诊病例到访", actor=supervisor, at=T0)
    exposure_run(window_id=window.pk, at=T0)
    return window, scans


def _case(scan):
    return PopupCase.objects.get(resident_id=scan.resident_id, popup_type=3)


def test_withdrawal_withdraws_untouched_popups_with_events_and_outbox(marked, supervisor):
    window, scans = marked
    services.risk_window_withdraw(window=window, actor=supervisor, reason="误报", at=T0 + dt.timedelta(hours=1))

    result = exposure_run(window_id=window.pk, at=T0 + dt.timedelta(hours=1))

    assert result.withdrawn == 3
    for name in ("early", "mid", "late"):
        case = _case(scans[name])
        assert case.state == "withdrawn" and case.lifted_at == T0 + dt.timedelta(hours=1)
        assert case.events.filter(kind="withdrawn", actor_label="venue-exposure").exists()
        assert OutboxRecord.objects.filter(case=case, kind="withdrawn").exists()
    assert Exposure.objects.filter(window=window, withdrawn_at__isnull=False).count() == 3
    trace = RiskWindowEvent.objects.filter(window=window).values_list("kind", flat=True)
    assert list(trace) == ["created", "exposure", "withdrawn", "exposure"]


def test_withdrawal_leaves_acted_on_popups_and_flags_them_once(marked, supervisor):
    window, scans = marked
    worker = UserFactory(role="community_worker")
    popup_start_review(case=_case(scans["early"]), actor=worker, reason="核查中")
    # a human note on an otherwise active popup also counts as acted on
    PopupEvent.objects.create(case=_case(scans["mid"]), kind="note", actor=worker, reason="已电话联系",
                              at=T0 + dt.timedelta(minutes=30))

    services.risk_window_withdraw(window=window, actor=supervisor, reason="误报", at=T0 + dt.timedelta(hours=1))
    result = exposure_run(window_id=window.pk, at=T0 + dt.timedelta(hours=1))

    assert result.withdrawn == 1
    assert _case(scans["late"]).state == "withdrawn"
    assert _case(scans["early"]).state == "under_review"
    assert _case(scans["mid"]).state == "active"
    flagged = sorted([_case(scans["early"]).pk, _case(scans["mid"]).pk])
    assert result.flagged == flagged
    trace = RiskWindowEvent.objects.filter(window=window, kind="exposure").last()
    assert trace.data["flagged"] == flagged
    assert PopupEvent.objects.filter(case_id__in=flagged, kind="note", actor_label="venue-exposure").count() == 2

    # a re-run flags nothing again
    again = exposure_run(window_id=window.pk, at=T0 + dt.timedelta(hours=2))
    assert again.flagged == [] and not again.changed


def test_correction_narrowing_withdraws_visits_outside_and_updates_the_rest(marked, supervisor):
    window, scans = marked
    services.risk_window_correct(window=window, starts_at=cst(2022, 9, 1, 11), ends_at=cst(2022, 9, 1, 14),
                                 risk_level="medium", reason="确诊病例到访", actor=supervisor,
                                 correction="到访时间更正为11点后", at=T0 + dt.timedelta(hours=1))

    result = exposure_run(window_id=window.pk, at=T0 + dt.timedelta(hours=1))

    assert (result.raised, result.updated, result.withdrawn) == (0, 2, 1)
    assert _case(scans["early"]).state == "withdrawn"
    mid = _case(scans["mid"])
    assert mid.state == "active" and mid.cause["risk_level"] == "medium"
    assert mid.cause["window_version"] == 2
    assert mid.events.filter(kind="cause_updated").count() == 1
    corrected = RiskWindowEvent.objects.get(window=window, kind="corrected")
    assert corrected.data["before"]["risk_level"] == "high" and corrected.data["after"]["version"] == 2


def test_correction_widening_raises_new_and_re_raises_what_it_withdrew(marked, supervisor):
    window, scans = marked
    services.risk_window_correct(window=window, starts_at=cst(2022, 9, 1, 11), ends_at=cst(2022, 9, 1, 14),
                                 risk_level="high", reason="确诊病例到访", actor=supervisor,
                                 correction="缩小", at=T0 + dt.timedelta(hours=1))
    exposure_run(window_id=window.pk, at=T0 + dt.timedelta(hours=1))
    window.refresh_from_db()
    services.risk_window_correct(window=window, starts_at=cst(2022, 9, 1, 10), ends_at=cst(2022, 9, 1, 16),
                                 risk_level="high", reason="确诊病例到访", actor=supervisor,
                                 correction="扩大到16点", at=T0 + dt.timedelta(hours=2))

    result = exposure_run(window_id=window.pk, at=T0 + dt.timedelta(hours=2))

    assert result.raised == 2  # "after" is new, "early" comes back
    early = PopupCase.objects.filter(resident_id=scans["early"].resident_id).order_by("pk")
    assert [c.state for c in early] == ["withdrawn", "active"]
    assert _case_open(scans["after"]).cause["window_version"] == 3
    again = Exposure.objects.get(window=window, resident_id=scans["early"].resident_id)
    assert again.withdrawn_at is None and again.case_id == early.last().pk  # the row names the new popup
    assert Exposure.objects.filter(window=window).count() == len(scans)  # rewritten, not added


def _case_open(scan):
    return PopupCase.objects.get(resident_id=scan.resident_id, popup_type=3, state="active")


def test_withdrawn_window_cannot_be_corrected_and_withdraw_is_idempotent(marked, supervisor):
    from healthkit.errors import ApplicationError

    window, _scans = marked
    services.risk_window_withdraw(window=window, actor=supervisor, reason="误报")
    again = services.risk_window_withdraw(window=window, actor=supervisor, reason="误报")
    assert again.state == RiskWindow.State.WITHDRAWN
    assert RiskWindowEvent.objects.filter(window=window, kind="withdrawn").count() == 1
    with pytest.raises(ApplicationError):
        services.risk_window_correct(window=window, starts_at=cst(2022, 9, 1, 10), ends_at=cst(2022, 9, 1, 12),
                                     risk_level="high", reason="x", actor=supervisor, correction="y")


def test_window_services_validate_input(supervisor):
    from healthkit.errors import ApplicationError

    venue = VenueFactory()
    bad = [
        {"starts_at": cst(2022, 9, 1, 14), "ends_at": cst(2022, 9, 1, 10)},
        {"starts_at": cst(2022, 9, 1, 10), "ends_at": cst(2022, 9, 1, 10)},
        {"starts_at": cst(2022, 8, 1), "ends_at": cst(2022, 9, 5)},
        {"risk_level": "extreme"},
        {"reason": "  "},
    ]
    for override in bad:
        kwargs = {"venue": venue, "starts_at": cst(2022, 9, 1, 10), "ends_at": cst(2022, 9, 1, 14),
                  "risk_level": "high", "reason": "r", "actor": supervisor, **override}
        with pytest.raises(ApplicationError):
            services.risk_window_create(**kwargs)
    assert not RiskWindow.objects.exists()


def test_window_create_kicks_the_exposure_task_on_commit(supervisor, django_capture_on_commit_callbacks):
    venue = VenueFactory()
    scan = VenueScanFactory(venue=venue, scanned_at=cst(2022, 9, 1, 11))
    with django_capture_on_commit_callbacks(execute=True):
        window = services.risk_window_create(venue=venue, starts_at=cst(2022, 9, 1, 10),
                                             ends_at=cst(2022, 9, 1, 14), risk_level="low",
                                             reason="r", actor=supervisor)
    assert PopupCase.objects.filter(resident_id=scan.resident_id, popup_type=3, state="active").exists()
    window.refresh_from_db()
    assert window.exposure_due is False


def test_correction_leaves_a_popup_under_review_untouched_and_flags_it(marked, supervisor):
    window, scans = marked
    reviewed = _case(scans["mid"])
    popup_start_review(case=reviewed, actor=UserFactory(role="community_worker"), reason="核查")
    before = dict(reviewed.cause)
    services.risk_window_correct(window=window, starts_at=cst(2022, 9, 1, 10), ends_at=cst(2022, 9, 1, 14),
                                 risk_level="medium", reason="确诊病例到访", actor=supervisor,
                                 correction="风险等级调整", at=T0 + dt.timedelta(hours=1))

    result = exposure_run(window_id=window.pk, at=T0 + dt.timedelta(hours=1))

    assert result.updated == 2 and result.flagged == [reviewed.pk]
    reviewed.refresh_from_db()
    assert reviewed.state == "under_review" and reviewed.cause == before
    note = reviewed.events.get(kind="note", actor_label="venue-exposure")
    assert note.data["still_inside"] is True and note.data["window_version"] == 2


def test_withdrawal_run_twice_withdraws_nothing_twice(marked, supervisor):
    window, _scans = marked
    services.risk_window_withdraw(window=window, actor=supervisor, reason="误报", at=T0)
    assert exposure_run(window_id=window.pk, at=T0).withdrawn == 3
    again = exposure_run(window_id=window.pk, at=T0 + dt.timedelta(hours=1))
    assert not again.changed
    assert OutboxRecord.objects.filter(kind="withdrawn").count() == 3


def test_beat_sweep_runs_windows_still_due(supervisor):
    from venues.tasks import venue_exposure_due

    venue = VenueFactory()
    scan = VenueScanFactory(venue=venue, scanned_at=cst(2022, 9, 1, 11))
    # created without its on-commit kick ever running (e.g. the broker was down)
    window = services.risk_window_create(venue=venue, starts_at=cst(2022, 9, 1, 10),
                                         ends_at=cst(2022, 9, 1, 14), risk_level="high",
                                         reason="r", actor=supervisor)
    assert window.exposure_due

    assert venue_exposure_due.delay().get() == 1

    assert PopupCase.objects.filter(resident_id=scan.resident_id, state="active").exists()
    assert venue_exposure_due.delay().get() == 0
