"""Test results are COPY'd straight into the table; repeats in the batch and keys already on
record (the COPY fails, the batch goes the staging + ON CONFLICT way) count as duplicates;
residents are looked up chunk by chunk; the hash of the fast path is pii.id_hash's."""

import datetime as dt

import pytest
from django.utils import timezone, translation

from communities import pii
from communities.models import Resident
from healthkit import ingest
from healthkit.models import TestResult
from tests.factories import ResidentFactory, make_id_number

pytestmark = pytest.mark.django_db


def _result(id_number, sample_id, *, lab="lab-1", hours_ago=10, result="negative"):
    now = timezone.now()
    return {"id_number": id_number, "lab": lab, "sample_id": sample_id,
            "sampled_at": (now - dt.timedelta(hours=hours_ago)).isoformat(),
            "resulted_at": (now - dt.timedelta(hours=hours_ago - 2)).isoformat(), "result": result}


def test_repeats_within_a_batch_and_keys_on_record_are_duplicates_first_one_kept():
    a, b = ResidentFactory(id_number="110105196001010017"), ResidentFactory(id_number=make_id_number())
    first = ingest.ingest(kind="test_results", records=[_result("110105196001010017", "S1")], evaluate=False)
    assert (first.accepted, first.duplicates, first.resident_ids) == (1, 0, [a.pk])

    number_b = pii.decrypt(b.id_encrypted)
    records = [
        _result("110105196001010017", "S1"),                 # on record already
        _result(number_b, "S2", result="positive"),           # new
        _result(number_b, "S2", result="negative"),           # again with another result: the lab's correction
        _result(number_b, "S2", result="negative"),           # and a repeat of it: a duplicate
        _result(number_b, "S1"),                              # same sample id, other resident: new
        _result("110105196001010017", "S1", lab="lab-2"),     # other lab: new
    ]
    result = ingest.ingest(kind="test_results", records=records, evaluate=False)
    assert (result.accepted, result.corrected, result.duplicates, result.rejected) == (3, 1, 2, [])
    assert result.resident_ids == sorted({a.pk, b.pk})
    assert TestResult.objects.get(resident=b, sample_id="S2", superseded_at__isnull=True).result == "negative"
    assert TestResult.objects.count() == 5


def test_a_key_on_record_fails_the_copy_and_the_batch_goes_the_on_conflict_way(monkeypatch):
    resident = ResidentFactory(id_number="110105196001010017")
    ingest.ingest(kind="test_results", records=[_result("110105196001010017", "S1")], evaluate=False)
    # The COPY meets the unique index, its savepoint rolls back, and the staging path decides.
    fallback = []
    copy_insert = ingest._copy_insert
    monkeypatch.setattr(ingest, "_copy_insert", lambda *a, **k: fallback.append(1) or copy_insert(*a, **k))
    records = [_result("110105196001010017", "S1"), _result("110105196001010017", "S9")]
    result = ingest.ingest(kind="test_results", records=records, evaluate=False)
    assert (result.accepted, result.duplicates, result.resident_ids) == (1, 1, [resident.pk])
    assert sorted(TestResult.objects.values_list("sample_id", flat=True)) == ["S1", "S9"]
    assert fallback == [1]


def test_copy_escapes_backslashes_in_lab_and_sample_id():
    """Both ways in (binary COPY; the staging table's text COPY when a retry is in the batch) store
    backslashes and a literal \\N as sent. Tabs and line breaks never get that far: refused per
    field at the input boundary (healthkit.inputs)."""
    ResidentFactory(id_number="110105196001010017")
    first = _result("110105196001010017", "S\\1\\x", lab="lab\\N")
    assert ingest.ingest(kind="test_results", records=[first], evaluate=False).accepted == 1
    second = _result("110105196001010017", "S\\2\\N", lab="lab\\t")
    assert ingest.ingest(kind="test_results", records=[first, second], evaluate=False).accepted == 1
    assert sorted(TestResult.objects.values_list("lab", "sample_id")) == [("lab\\N", "S\\1\\x"),
                                                                           ("lab\\t", "S\\2\\N")]
    tabbed = _result("110105196001010017", "S\t3", lab="lab")
    with translation.override("en"):
        rejected = ingest.ingest(kind="test_results", records=[tabbed], evaluate=False).rejected
    assert rejected == [{"index": 0, "errors": {"sample_id": "Contains control characters or invalid Unicode."}}]


@pytest.mark.parametrize("key", [b"k", b"x" * 64, b"y" * 100])
def test_precomputed_hmac_pads_give_the_keyed_hash(settings, key):
    settings.PII_HASH_KEY = key.decode()
    number = make_id_number()
    assert ingest._id_hasher(key)(number) == pii.id_hash(number)


def test_residents_looked_up_chunk_by_chunk_match_known_register_named_reject_the_rest(monkeypatch):
    monkeypatch.setattr(ingest, "LOOKUP_CHUNK", 2)
    known = [ResidentFactory(id_number=make_id_number()) for _ in range(3)]
    numbers = [pii.decrypt(r.id_encrypted) for r in known]
    new_named, new_unnamed = make_id_number(), make_id_number()
    records = [
        _result(numbers[0], "A"), _result(new_unnamed, "B"), _result(numbers[1], "C"),
        {**_result(new_named, "D"), "name": "王五"}, _result(numbers[2], "E"), _result(numbers[0], "F"),
        {"id_number": "123", "lab": "x"}, _result(new_named, "G"),
    ]
    result = ingest.ingest(kind="test_results", records=records, evaluate=False)
    assert [r["index"] for r in result.rejected] == [1, 6]
    assert (result.accepted, result.duplicates) == (6, 0)
    registered = Resident.objects.get(id_hash=pii.id_hash(new_named))
    assert registered.name == "王五"
    by_sample = dict(TestResult.objects.values_list("sample_id", "resident_id"))
    assert by_sample == {"A": known[0].pk, "C": known[1].pk, "D": registered.pk, "E": known[2].pk,
                         "F": known[0].pk, "G": registered.pk}
    assert not Resident.objects.filter(id_hash=pii.id_hash(new_unnamed)).exists()
