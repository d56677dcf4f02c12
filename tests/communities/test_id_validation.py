import datetime as dt

import pytest
from django.core.exceptions import ValidationError

from communities import pii
from tests.factories import make_id_number

VALID = "11010519491231002X"  # the GB 11643 standard's own example


def test_standard_example_is_valid():
    assert pii.validate_id_number(VALID) == VALID


def test_lowercase_x_and_spaces_are_normalised():
    assert pii.validate_id_number(" 11010519491231002x ") == VALID


def test_generated_numbers_pass():
    for _ in range(50):
        number = make_id_number()
        assert pii.validate_id_number(number) == number


def test_wrong_check_digit_is_refused_with_its_own_message():
    with pytest.raises(ValidationError) as error:
        pii.validate_id_number(VALID[:-1] + "1")
    assert error.value.code == "check_digit"
    assert VALID[:-1] not in str(error.value)  # the number is never echoed


@pytest.mark.parametrize("number", ["110105194902300010", "110105194913310010"])
def test_impossible_birth_date_is_refused(number):
    number = number[:17] + pii.id_check_digit(number[:17])
    with pytest.raises(ValidationError) as error:
        pii.validate_id_number(number)
    assert error.value.code == "birth_date"


def test_birth_date_in_the_future_is_refused():
    first17 = "110105" + (dt.date.today() + dt.timedelta(days=400)).strftime("%Y%m%d") + "001"
    with pytest.raises(ValidationError) as error:
        pii.validate_id_number(first17 + pii.id_check_digit(first17))
    assert error.value.code == "birth_date"


@pytest.mark.parametrize("number", ["1101051949123100", "11010519491231002X1", ""])
def test_wrong_length_is_refused(number):
    with pytest.raises(ValidationError) as error:
        pii.validate_id_number(number)
    assert error.value.code == "length"


def test_letters_inside_are_refused():
    with pytest.raises(ValidationError) as error:
        pii.validate_id_number("1101051949A231002X")
    assert error.value.code == "format"


def test_messages_are_translated_to_chinese():
    from django.utils import translation

    with translation.override("zh-hans"), pytest.raises(ValidationError) as error:
        pii.validate_id_number("123")
    assert "18" in error.value.messages[0]
    assert "ID number has" not in error.value.messages[0]


FULL_WIDTH = str.maketrans("0123456789X", "０１２３４５６７８９Ｘ")


def test_full_width_digits_and_x_are_read_as_ascii():
    # given the standard's example as a Chinese input method types it (full-width, ideographic space)
    typed = VALID[:6].translate(FULL_WIDTH) + "\u3000" + VALID[6:].translate(FULL_WIDTH)
    # then it is the same number, so the same person and the same keyed hash
    assert pii.validate_id_number(typed) == VALID
    assert pii.id_hash(typed) == pii.id_hash(VALID)


def test_full_width_body_with_ascii_check_digit_is_the_same_person():
    typed = VALID[:17].translate(FULL_WIDTH) + VALID[17]
    assert pii.validate_id_number(typed) == VALID
    assert pii.id_hash(typed) == pii.id_hash(VALID)


@pytest.mark.parametrize("digit", ["\u00b2", "\u2460", "\u2082"])  # superscript 2, circled 1, subscript 2
def test_digit_like_characters_are_refused_not_a_crash(digit):
    # str.isdigit() is true of these but int() cannot read them
    for position in (3, 15):
        with pytest.raises(ValidationError) as error:
            pii.validate_id_number(VALID[:position] + digit + VALID[position + 1:])
        assert error.value.code == "format"


@pytest.mark.parametrize("typed", ["１３８４３５３１６０８", "13８４３５３１６０８", "＋８６ １３８－４３５３－１６０８", "1٣843531608"])
def test_a_phone_typed_full_width_is_the_ascii_number(typed):
    # given a mobile number typed (in part) with full-width or other Unicode digits
    # then it is the ASCII number the SMS gateway can dial, with the same keyed hash
    assert pii.validate_phone(typed) == "13843531608"
    assert pii.phone_hash(typed) == pii.phone_hash("13843531608")


@pytest.mark.parametrize("typed", ["13\u00b2843531608"[:11], "1384353160\u2460"])
def test_digit_like_characters_in_a_phone_are_refused(typed):
    with pytest.raises(ValidationError) as error:
        pii.validate_phone(typed)
    assert error.value.code == "phone"
