"""Two submissions of the same appeal at the same moment open one appeal, counted once as a repeat."""

import threading

import pytest
from django.db import connection

from appeals.models import Appeal
from appeals.services import appeal_file
from tests.factories import PopupCaseFactory

pytestmark = pytest.mark.django_db(transaction=True)


def test_simultaneous_submissions_fold_into_one_appeal():
    popup = PopupCaseFactory()
    barrier = threading.Barrier(2)
    results, errors = [], []

    def submit():
        try:
            barrier.wait()
            results.append(appeal_file(resident=popup.resident, popup=popup, category="correction"))
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert Appeal.objects.count() == 1
    assert sorted(folded for _appeal, folded in results) == [False, True]
    assert Appeal.objects.get().repeat_count == 1
