import pytest

from moksori.text.korean.numbers import (
    native_korean,
    native_ordinal,
    read_decimal,
    read_digits,
    read_number,
    sino_korean,
)


@pytest.mark.parametrize(
    ("number", "expected"),
    [
        (0, "영"),
        (1, "일"),
        (7, "칠"),
        (10, "십"),
        (11, "십일"),
        (20, "이십"),
        (99, "구십구"),
        (100, "백"),
        (101, "백일"),
        (110, "백십"),
        (111, "백십일"),
        (200, "이백"),
        (1000, "천"),
        (1001, "천일"),
        (1100, "천백"),
        (2026, "이천이십육"),
        (9999, "구천구백구십구"),
        (10000, "만"),
        (10001, "만 일"),
        (15000, "만 오천"),
        (20000, "이만"),
        (110000, "십일만"),
        (1000000, "백만"),
        (1234567, "백이십삼만 사천오백육십칠"),
        (10000000, "천만"),
        (100000000, "일억"),
        (100005000, "일억 오천"),
        (100010000, "일억 일만"),
        (123456789, "일억 이천삼백사십오만 육천칠백팔십구"),
        (10**12, "일조"),
        (3 * 10**12 + 2 * 10**8, "삼조 이억"),
        (10**16, "일경"),
        (-5, "마이너스 오"),
    ],
)
def test_sino_korean(number, expected):
    assert sino_korean(number) == expected


def test_sino_korean_beyond_its_units_reads_digits():
    assert sino_korean(10**20) == "일" + "영" * 20


@pytest.mark.parametrize(
    ("number", "prenominal", "expected"),
    [
        (1, True, "한"),
        (1, False, "하나"),
        (2, True, "두"),
        (2, False, "둘"),
        (3, True, "세"),
        (3, False, "셋"),
        (4, True, "네"),
        (4, False, "넷"),
        (5, True, "다섯"),
        (10, True, "열"),
        (11, True, "열한"),
        (12, True, "열두"),
        (20, True, "스무"),
        (20, False, "스물"),
        (21, True, "스물한"),
        (21, False, "스물하나"),
        (30, True, "서른"),
        (44, True, "마흔네"),
        (50, True, "쉰"),
        (60, True, "예순"),
        (70, True, "일흔"),
        (80, True, "여든"),
        (99, True, "아흔아홉"),
        (100, True, "백"),
        (101, True, "백한"),
        (120, True, "백스무"),
        (125, True, "백스물다섯"),
        (1500, True, "천오백"),
        (10025, True, "만 스물다섯"),
        (0, True, "영"),
    ],
)
def test_native_korean(number, prenominal, expected):
    assert native_korean(number, prenominal=prenominal) == expected


def test_native_korean_rejects_negative_numbers():
    with pytest.raises(ValueError):
        native_korean(-1, prenominal=True)


@pytest.mark.parametrize(("number", "expected"), [(1, "첫"), (2, "두"), (11, "열한"), (20, "스무"), (21, "스물한")])
def test_native_ordinal(number, expected):
    assert native_ordinal(number) == expected


@pytest.mark.parametrize(
    ("digits", "zero", "expected"),
    [("010", "공", "공일공"), ("1234", "공", "일이삼사"), ("19", "공", "일구"), ("05", "영", "영오")],
)
def test_read_digits(digits, zero, expected):
    assert read_digits(digits, zero=zero) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("3.14", "삼 점 일사"),
        ("0.5", "영 점 오"),
        ("0.05", "영 점 영오"),
        ("1,234.5", "천이백삼십사 점 오"),
        ("12", "십이"),
    ],
)
def test_read_decimal(text, expected):
    assert read_decimal(text) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("15,000", "만 오천"),
        ("4,500", "사천오백"),
        ("1,234,567", "백이십삼만 사천오백육십칠"),
        ("2.5", "이 점 오"),
        ("007", "공공칠"),
        ("0", "영"),
    ],
)
def test_read_number(text, expected):
    assert read_number(text) == expected
