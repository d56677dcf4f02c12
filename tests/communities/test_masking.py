from communities import pii


def test_id_mask_keeps_first_and_last_two_characters():
    assert pii.mask_id("11010519491231002X") == "11" + "*" * 14 + "2X"


def test_name_mask_keeps_the_surname():
    assert pii.mask_name("张三丰") == "张**"
    assert pii.mask_name("李四") == "李*"


def test_phone_mask_hides_the_middle_four_digits():
    assert pii.mask_phone("13812345678") == "138****5678"
    assert pii.mask_phone("+86 138-1234-5678") == "138****5678"


def test_masked_person_combines_surname_and_id():
    assert pii.masked_person("王小明", pii.mask_id("11010519491231002X")) == "王** 11**************2X"
