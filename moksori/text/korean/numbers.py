"""Reading numbers aloud in Korean: Sino-Korean (일, 이, 삼) and native (하나, 둘, 셋).

These are pure functions on integers and digit strings; deciding *which* reading a
number gets (by the counter after it) is the job of ``moksori.text.korean.normalize``.

We write our own because no maintained library reads Korean numbers correctly:
ko-speech-tools reads 11명 as 시빌명 and 20세기 as 이영세기.

Conventions (Korean standard usage):

- a leading 1 is silent before 십, 백 and 천 (100 → 백, 1000 → 천, never 일백/일천),
  and before 만 when 만 is the highest unit (10000 → 만, 15000 → 만 오천); before
  억, 조 and 경 it is read (일억, 일조);
- the reading is spaced by 만 units as standard spelling spaces written numbers
  (1,234,567 → 백이십삼만 사천오백육십칠; 한글 맞춤법 제44항).
"""

from __future__ import annotations

SINO_DIGITS = ("영", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구")
_SMALL_UNITS = ("", "십", "백", "천")
_LARGE_UNITS = ("", "만", "억", "조", "경")
_LARGEST_SINO = 10 ** (4 * len(_LARGE_UNITS)) - 1

_NATIVE_ONES = ("", "하나", "둘", "셋", "넷", "다섯", "여섯", "일곱", "여덟", "아홉")
_NATIVE_ONES_PRENOMINAL = ("", "한", "두", "세", "네", "다섯", "여섯", "일곱", "여덟", "아홉")
_NATIVE_TENS = ("", "열", "스물", "서른", "마흔", "쉰", "예순", "일흔", "여든", "아흔")


def _below_10000(n: int) -> str:
    """Sino-Korean reading of 1..9999 with no spaces (천이백삼십사)."""
    parts = []
    for power in (3, 2, 1, 0):
        digit = n // 10**power % 10
        if digit == 0:
            continue
        digit_text = "" if digit == 1 and power > 0 else SINO_DIGITS[digit]
        parts.append(digit_text + _SMALL_UNITS[power])
    return "".join(parts)


def sino_korean(n: int) -> str:
    """Sino-Korean reading of an integer, spaced by 만 units.

    >>> sino_korean(15000)
    '만 오천'
    >>> sino_korean(1234567)
    '백이십삼만 사천오백육십칠'
    """
    if n < 0:
        return "마이너스 " + sino_korean(-n)
    if n == 0:
        return "영"
    if n > _LARGEST_SINO:
        return read_digits(str(n), zero="영")
    groups = []
    power = 0
    while n:
        n, group = divmod(n, 10000)
        if group:
            text = _below_10000(group)
            if group == 1 and power == 1 and n == 0:
                text = ""  # 만, not 일만, when 만 is the highest unit
            groups.append(text + _LARGE_UNITS[power])
        power += 1
    return " ".join(reversed(groups))


def _native_below_100(n: int, prenominal: bool) -> str:
    if prenominal and n == 20:
        return "스무"
    tens, ones = divmod(n, 10)
    ones_words = _NATIVE_ONES_PRENOMINAL if prenominal else _NATIVE_ONES
    return _NATIVE_TENS[tens] + ones_words[ones]


def native_korean(n: int, *, prenominal: bool) -> str:
    """Native Korean reading; ``prenominal`` gives the form used before a counter.

    Native numerals exist for 1..99; from 100 up the hundreds and above are read
    Sino-Korean and the rest native (125 → 백스물다섯). 0 is 영.

    >>> native_korean(21, prenominal=True)
    '스물한'
    >>> native_korean(20, prenominal=False)
    '스물'
    """
    if n < 0:
        raise ValueError(f"native Korean numerals are for counting, not for {n}")
    if n == 0:
        return "영"
    rest = n % 100
    upper = n - rest
    if upper == 0:
        return _native_below_100(n, prenominal)
    upper_text = sino_korean(upper)
    if rest == 0:
        return upper_text
    separator = " " if upper % 10000 == 0 else ""
    return upper_text + separator + _native_below_100(rest, prenominal)


def native_ordinal(n: int) -> str:
    """The native form before 번째 and the like: 1 → 첫, 2 → 두, 11 → 열한."""
    if n == 1:
        return "첫"
    return native_korean(n, prenominal=True)


def read_digits(digits: str, *, zero: str = "공") -> str:
    """Digit by digit, as phone numbers are read: '010' → '공일공'."""
    return "".join(zero if d == "0" else SINO_DIGITS[int(d)] for d in digits)


def read_decimal(text: str) -> str:
    """A decimal number: the integer part Sino-Korean, then 점, then the digits.

    >>> read_decimal("3.14")
    '삼 점 일사'
    >>> read_decimal("0.05")
    '영 점 영오'
    """
    whole, _, fraction = text.replace(",", "").partition(".")
    whole_text = sino_korean(int(whole or "0"))
    if not fraction:
        return whole_text
    return f"{whole_text} 점 {read_digits(fraction, zero='영')}"


def read_number(text: str) -> str:
    """A written number as a plain Sino-Korean reading.

    Handles thousands separators ('15,000' → '만 오천') and decimals ('3.14'). A
    number written with a leading zero ('007', '0123') is a code, not a quantity,
    and is read digit by digit with 0 as 공.
    """
    plain = text.replace(",", "")
    if "." in plain:
        return read_decimal(plain)
    if len(plain) > 1 and plain.startswith("0"):
        return read_digits(plain, zero="공")
    return sino_korean(int(plain))
