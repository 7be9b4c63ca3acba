"""English text cleaning: ASCII letters, lowercase, abbreviations and numbers in words.

In the spirit of keithito's ``english_cleaners``, written for this project.
Numbers are spelled out by our own small functions rather than ``inflect``: the
rules needed here (cardinals, ordinals, years, decimals, money) fit in a few lines
and that keeps the package free of another dependency with its own typing runtime.

Readings that need the written form (``expand_written_forms``, before numbers are spelled):
a day after a month name is an ordinal (Jan. 5 → January fifth, 5 May → the fifth of May,
10/15/2025 → October fifteenth); Roman numerals after a ruler's name are ordinals (Henry VIII →
Henry the eighth) and after other capitalised words numbers (World War II → two); a number written
with a comma is a quantity, never a year (1,999 → one thousand nine hundred ninety-nine); St. and
Dr. after a name or an ordinal are a street and a drive (Main St., Sunset Dr.), otherwise saint and
doctor.
"""

from __future__ import annotations

import re
import unicodedata
import warnings

from moksori.text.errors import UnreadableTextError, UnreadableTextWarning

_ONES = (
    "zero one two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen"
).split()
_TENS = "_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()
_SCALES = (
    (10**12, "trillion"),
    (10**9, "billion"),
    (10**6, "million"),
    (10**3, "thousand"),
)
_IRREGULAR_ORDINALS = {
    "one": "first",
    "two": "second",
    "three": "third",
    "five": "fifth",
    "eight": "eighth",
    "nine": "ninth",
    "twelve": "twelfth",
}

_ABBREVIATIONS = [
    (re.compile(rf"\b{short}\.", re.IGNORECASE), long)
    for short, long in (
        ("mrs", "missus"),
        ("mr", "mister"),
        ("ms", "miss"),
        ("dr", "doctor"),
        ("st", "saint"),
        ("co", "company"),
        ("jr", "junior"),
        ("sr", "senior"),
        ("maj", "major"),
        ("gen", "general"),
        ("drs", "doctors"),
        ("rev", "reverend"),
        ("lt", "lieutenant"),
        ("hon", "honorable"),
        ("sgt", "sergeant"),
        ("capt", "captain"),
        ("esq", "esquire"),
        ("ltd", "limited"),
        ("col", "colonel"),
        ("ft", "fort"),
        ("prof", "professor"),
        ("vs", "versus"),
        ("etc", "et cetera"),
        ("mt", "mount"),
        ("ave", "avenue"),
        ("blvd", "boulevard"),
        ("rd", "road"),
        ("apt", "apartment"),
        ("dept", "department"),
        ("fig", "figure"),
        ("vol", "volume"),
        ("approx", "approximately"),
        ("ext", "extension"),
    )
]
_MONTHS = ("january", "february", "march", "april", "may", "june", "july", "august", "september", "october",
           "november", "december")
# Abbreviations read only before a number: "No. 5", "Jan. 5" (a bare "Jan." may be a name).
_DAY_OR_YEAR = r"(?:[12]?\d|3[01])(?!\d|:)|(?:19|20)\d\d\b"
_BEFORE_NUMBER = [(re.compile(r"\bno\.\s?(?=\d)", re.IGNORECASE), "number ")] + [
    (re.compile(rf"\b{month[:3]}{'t?' if month == 'september' else ''}\.\s?(?=\d)", re.IGNORECASE), f"{month.title()} ")
    for month in _MONTHS if len(month) > 3
] + [  # without the full stop only capitalised and before a day or a year: Nov 5, Sept 30, Aug 2024
    (re.compile(rf"\b{month[:3].title()}{'t?' if month == 'september' else ''} (?={_DAY_OR_YEAR})"), f"{month.title()} ")
    for month in _MONTHS if len(month) > 3
]
# "St." and "Dr." after a name or an ordinal and not before a name are a street and a drive (Main St.,
# 5th St., Sunset Dr.); otherwise saint and doctor (St. Mary's, in St. Louis, Dr. Smith).
_STREET = re.compile(r"\b([A-Z][a-z]+|\d+(?:st|nd|rd|th)) (St|Dr)\.(?!\s?[A-Z])")
_STREET_WORDS = {"St": "street", "Dr": "drive"}
_LATIN_ABBREVIATIONS = [
    (re.compile(r"\be\.g\.", re.IGNORECASE), "for example"),
    (re.compile(r"\bi\.e\.", re.IGNORECASE), "that is"),
]

# Letters NFKD cannot take apart into ASCII.
_LETTER_FOLDS = str.maketrans(
    {"ß": "ss", "æ": "ae", "Æ": "AE", "œ": "oe", "Œ": "OE", "ø": "o", "Ø": "O",
     "ł": "l", "Ł": "L", "đ": "d", "Đ": "D", "ð": "d", "Ð": "D", "þ": "th", "Þ": "Th",
     "ı": "i", "‘": "'", "’": "'", "ʼ": "'", "“": '"', "”": '"', "„": '"', "«": '"',
     "»": '"', "‐": "-", "‑": "-", "−": "-", "×": " times ", "…": "...", "℃": "°C", "℉": "°F",
     "²": " squared", "³": " cubed", "±": " plus or minus ", "½": "1/2", "⅓": "1/3", "⅔": "2/3",
     "¼": "1/4", "¾": "3/4", "⁄": "/"}
)
_SYMBOL_WORDS = {"&": " and ", "%": " percent ", "+": " plus ", "=": " equals ",
                 "@": " at ", "/": " ", "#": " number ",
                 # separators with no sound, as in the Korean front end
                 "\\": " ", "|": " ", "_": " ", "*": " ", "~": " ", "^": " ", "•": " ", "·": " "}
_CURRENCIES = {"$": ("dollar", "dollars", "cent", "cents"),
               "£": ("pound", "pounds", "penny", "pence"),
               "€": ("euro", "euros", "cent", "cents"),
               "¥": ("yen", "yen", "sen", "sen"),
               "₩": ("won", "won", "jeon", "jeon")}
_READABLE = re.compile(r"[a-z0-9\s.,?!;:'\"()\[\]\-—–]")

_COMMA_NUMBER = re.compile(r"(?<![\d,.])\d{1,3}(?:,\d{3})+(?![,\d])")
_MONEY = re.compile(
    r"([$£€¥₩])\s?(\d+)(?:\.(\d{1,2}))?(?:\s(thousand|million|billion|trillion)\b|(k|K|m|M|mn|bn|b|B|tn)\b|\b)"
)
_SCALE_ABBREVIATIONS = {"k": "thousand", "m": "million", "mn": "million", "b": "billion", "bn": "billion",
                        "tn": "trillion"}
_ORDINAL = re.compile(r"\b(\d+)(st|nd|rd|th)\b", re.IGNORECASE)
_TIME = re.compile(r"\b(\d{1,2}):(\d{2})\b")
_DECIMAL = re.compile(r"(?<![\d.])(\d+)\.(\d+)\b")
_NEGATIVE = re.compile(r"(?<![\w-])-(?=\d)")
_NUMBER = re.compile(r"\d+")
_DEGREES = re.compile(r"(?<![\d.])(-?\d+(?:\.\d+)?)\s?°(?:\s?([CF])(?![A-Za-z]))?")
_SCALE_NAMES = {"C": " celsius", "F": " fahrenheit", None: ""}
_FRACTION = re.compile(r"(?<![\d/])([1-9])/([2-9]|10)(?![\d/])")
_FRACTION_NAMES = {2: ("half", "halves"), 4: ("quarter", "quarters")}
_UNITS = {"km": "kilometer", "kg": "kilogram", "cm": "centimeter", "mm": "millimeter", "mg": "milligram",
          "ml": "milliliter", "mph": "mile per hour", "kph": "kilometer per hour", "km/h": "kilometer per hour",
          "lb": "pound", "lbs": "pound", "oz": "ounce", "gb": "gigabyte", "mb": "megabyte", "kb": "kilobyte",
          "min": "minute", "mins": "minute", "hr": "hour", "hrs": "hour", "sec": "second", "secs": "second",
          "ft": "foot", "tbsp": "tablespoon", "tsp": "teaspoon"}
_IRREGULAR_PLURALS = {"foot": "feet"}
_UNIT = re.compile(r"(?<![\w.])(\d+(?:\.\d+)?)\s?(" + "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True))
                   + r")(?![\w/])", re.IGNORECASE)
_PHONE = re.compile(r"(?<![\d-])(?:\(\d{3}\)\s?|1-)?(?:\d{3}-)?\d{3}-\d{4}(?![\d-])")
_ISO_DATE = re.compile(r"(?<![\d-])(\d{4})-(0?[1-9]|1[0-2])-(0?[1-9]|[12]\d|3[01])(?![\d-])")
_DECADE = re.compile(r"(?<![\w'])'?(\d{1,3}0)s\b")
_NUMBER_RANGE = re.compile(r"(?<![\w.-])(\d+)[-–](\d+)(?![\w-])")
_DIGIT_LETTER = re.compile(r"(?<=\d)(?=[A-Za-z])|(?<=[A-Za-z])(?=\d)")
_MERIDIEM = re.compile(r"(?<=\d)\s?([ap])\.?m(\.)?(?![a-z])", re.IGNORECASE)
_VERSION = re.compile(r"(?<![\d.])\d+(?:\.\d+){2,}(?![.\d])")
_WHITESPACE = re.compile(r"\s+")


def clean_english(text: str, *, strict: bool = False) -> str:
    """Cleaned, lowercase English with every number and symbol in words.

    Unreadable characters (ones with no English reading, such as Hangul or emoji)
    are dropped with an ``UnreadableTextWarning``, or raise ``UnreadableTextError``
    when ``strict``.
    """
    original = text
    text = to_ascii(text)
    text = expand_abbreviations(text)
    text = expand_written_forms(text)
    text = expand_numbers(text)
    text = text.lower()
    text = _drop_unreadable(text, original, strict=strict)
    return _WHITESPACE.sub(" ", text).strip()


_SUPERSCRIPT = re.compile("(?<=[0-9A-Za-z])(⁻?[⁰¹⁴⁵⁶⁷⁸⁹][⁰¹²³⁴⁵⁶⁷⁸⁹]*|⁻?[²³][⁰¹²³⁴⁵⁶⁷⁸⁹]+|⁻[²³])")
_SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")
_POWER = re.compile(r"(?<=[\dA-Za-z])\s?\^\s?(?=-?\d)")


def to_ascii(text: str) -> str:
    """Fold accented and typographic characters to ASCII (é → e, ’ → ').

    A character with no ASCII form (Hangul, emoji) is left as it is, so that the
    unreadable-character check can name it.
    """
    text = re.sub(r"(?<=\d)(?=[½⅓⅔¼¾])", " and ", text)  # 3½ → 3 and 1/2
    # 10⁸ → 10 to the power of 8 (NFKD would fold it into the number: 108); ² and ³ are words
    text = _SUPERSCRIPT.sub(lambda m: " to the power of " + m.group(1).translate(_SUPERSCRIPT_DIGITS), text)
    return "".join(_fold_character(character) for character in text.translate(_LETTER_FOLDS))


def _fold_character(character: str) -> str:
    if character.isascii():
        return character
    if unicodedata.category(character) == "Cf":  # zero-width and other invisible marks
        return ""
    decomposed = unicodedata.normalize("NFKD", character)
    folded = "".join(c for c in decomposed if unicodedata.category(c) != "Mn")
    return folded if folded.isascii() else character


def expand_abbreviations(text: str) -> str:
    for pattern, replacement in _BEFORE_NUMBER:
        text = pattern.sub(replacement, text)
    text = _STREET.sub(lambda m: f"{m.group(1)} {_abbreviation_words(m, _STREET_WORDS[m.group(2)])}", text)
    for pattern, replacement in _LATIN_ABBREVIATIONS + _ABBREVIATIONS:
        text = pattern.sub(lambda match: _abbreviation_words(match, replacement), text)
    return text


def _abbreviation_words(match: re.Match[str], words: str) -> str:
    # An abbreviation that ends the text also ends the sentence: keep its full stop.
    at_end = not match.string[match.end() :].strip()
    if match.group(0)[:1].isupper():  # Vol. III → Volume III, for the readings that need capitals
        words = words[:1].upper() + words[1:]
    return words + "." if at_end else words


_MONTH_NAMES = "|".join(month.title() for month in _MONTHS)
# January 5 → January fifth; 5 January → the fifth of January (a day, not a count).
_MONTH_DAY = re.compile(rf"\b({_MONTH_NAMES}) ([12]?\d|3[01])(?![\d:/A-Za-z]|[.,]\d|\s?[-–]\s?\d|\s?(?:st|nd|rd|th)\b)")
_DAY_MONTH = re.compile(rf"(?<![\d.,])\b([12]?\d|3[01]) (?=(?:{_MONTH_NAMES})\b)")
# 1,999 and 2,026 are quantities, never years (a comma is not written in a year); before a unit the
# number is left to the unit rule.
_COMMA_QUANTITY = re.compile(
    r"(?<![\d,.$£€¥₩–-])([12]),(\d{3})(?![,\dA-Za-z]|\.\d|\s?[-–]\s?\d|\s?(?:"
    + "|".join(sorted(map(re.escape, _UNITS), key=len, reverse=True)) + r")\b)", re.IGNORECASE
)
# 2 1/2 → 2 and 1/2, as 2½ is read (a proper fraction after a whole number).
_MIXED_NUMBER = re.compile(r"(?<=\d) (?=([1-9])/([2-9]|10)(?![\d/]))")
# Roman numerals after a ruler's name are ordinals (Henry VIII → Henry the eighth); after another
# capitalised word they are numbers (World War II, Chapter IV, Rocky II). A lone I, V or X is read
# only after a ruler's name or a numbering word (Elizabeth I, Part I; not "Then I", "Malcolm X").
_RULERS = frozenset(
    "Henry Louis Elizabeth George Edward Charles William James Richard John Paul Pius Benedict Leo Gregory "
    "Innocent Clement Alexander Peter Frederick Philip Napoleon Mary Victor Emmanuel Ferdinand Nicholas Ivan "
    "Catherine Anne Stephen Harold Alfonso Carlos Felipe Juan Otto Wilhelm Francis Urban Boniface Sixtus "
    "Gustav Christian Ramesses Ramses Constantine Justinian Rama".split()
)
_NUMBERING_WORDS = frozenset(
    "Chapter Part Volume Book Act Scene War Phase Episode Season Title Type Class Level Stage Grade "
    "Section Article Appendix Round Division Tier Schedule".split()
)
_ROMAN = re.compile(r"\b([A-Z][a-z]+) (X{0,3}(?:IX|IV|V?I{0,3}))\b(?!['’-])")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10}


_WEEKDAY_NAMES = {"Mon": "Monday", "Tue": "Tuesday", "Tues": "Tuesday", "Wed": "Wednesday", "Thu": "Thursday",
                  "Thur": "Thursday", "Thurs": "Thursday", "Fri": "Friday", "Sat": "Saturday", "Sun": "Sunday"}
_WEEKDAY = "|".join(sorted(_WEEKDAY_NAMES, key=len, reverse=True))
# Mon-Fri → Monday to Friday (only as a range: a lone "Sun" is a word).
_WEEKDAY_RANGE = re.compile(rf"\b({_WEEKDAY})\.?\s?[-–]\s?({_WEEKDAY})\b\.?")
# Call 911 → nine one one: an emergency or short service number after call/dial is said digit by digit.
_DIALLED = re.compile(r"\b((?:call|dial|phone|ring)(?:ed|ing|s)?\s)(\d{3})(?![\d-])", re.IGNORECASE)


# A decimal written without its 0: a .45 caliber, batted .300 → point four five, point three zero zero.
_BARE_DECIMAL = re.compile(r"(?<![\w.])\.(\d+)\b")


# 10/15/2025 → October fifteenth, 2025 (month first, as in the US, unless the first number cannot be
# a month: 25/12/2025 is the twenty-fifth of December).
_SLASH_DATE = re.compile(r"(?<![\d/.])(\d{1,2})/(\d{1,2})/((?:1[89]|20)\d\d)(?![\d/])")


def _slash_date_words(match: re.Match[str]) -> str:
    first, second, year = int(match.group(1)), int(match.group(2)), match.group(3)
    month, day = (first, second) if first <= 12 else (second, first)
    if not (1 <= month <= 12 and 1 <= day <= 31):
        return match.group(0)
    if first > 12:
        return f"the {ordinal_words(day)} of {_MONTHS[month - 1].title()} {year}"
    return f"{_MONTHS[month - 1].title()} {ordinal_words(day)}, {year}"


def expand_written_forms(text: str) -> str:
    """Dates with a month name, mixed numbers and Roman numerals, which need the text's capitals;
    decimals without their 0."""
    text = _BARE_DECIMAL.sub(lambda m: "point " + _digit_words(m.group(1)), text)
    text = _WEEKDAY_RANGE.sub(lambda m: f"{_WEEKDAY_NAMES[m.group(1)]} to {_WEEKDAY_NAMES[m.group(2)]}", text)
    text = _DIALLED.sub(lambda m: m.group(1) + _digit_words(m.group(2)), text)
    text = _SLASH_DATE.sub(_slash_date_words, text)
    text = _MONTH_DAY.sub(lambda m: f"{m.group(1)} {ordinal_words(int(m.group(2)))}", text)
    text = _DAY_MONTH.sub(lambda m: f"the {ordinal_words(int(m.group(1)))} of ", text)
    text = _COMMA_QUANTITY.sub(lambda m: number_to_words(int(m.group(1) + m.group(2))), text)
    text = _MIXED_NUMBER.sub(lambda m: " and " if int(m.group(1)) < int(m.group(2)) else " ", text)
    return _ROMAN.sub(_roman_words, text)


def _roman_value(numeral: str) -> int:
    values = [_ROMAN_VALUES[letter] for letter in numeral]
    return sum(-v if i + 1 < len(values) and v < values[i + 1] else v for i, v in enumerate(values))


def _roman_words(match: re.Match[str]) -> str:
    name, numeral = match.group(1), match.group(2)
    if not numeral or (len(numeral) == 1 and name not in _RULERS | _NUMBERING_WORDS):
        return match.group(0)
    value = _roman_value(numeral)
    if name in _RULERS:
        return f"{name} the {ordinal_words(value)}"
    return f"{match.group(0)[: -len(numeral)]}{number_to_words(value)}"


def expand_numbers(text: str) -> str:
    """Money, ordinals, times, decimals, years and plain numbers → words."""
    text = _COMMA_NUMBER.sub(lambda m: m.group(0).replace(",", ""), text)
    text = _PHONE.sub(_digit_groups, text)
    text = _POWER.sub(" to the power of ", text)
    text = re.sub(r"(?<=\d)\s*\*\s*(?=\d)", " times ", text)
    text = _ISO_DATE.sub(_iso_date_words, text)
    text = _DECADE.sub(_decade_words, text)
    text = _NUMBER_RANGE.sub(r"\1 to \2", text)
    text = re.sub(r"(?<=\d%)\s?[-–]\s?(?=\d)", " to ", text)  # 5%-6%
    text = _MERIDIEM.sub(_meridiem_words, text)
    text = re.sub(r"(?<=[ap] m)\s?[-–]\s?(?=\d)", " to ", text)  # 10am-6pm
    text = _VERSION.sub(lambda m: " point ".join(number_to_words(int(p)) for p in m.group(0).split(".")), text)
    text = _DEGREES.sub(_degree_words, text)
    text = _FRACTION.sub(_fraction_words, text)
    text = _UNIT.sub(_unit_words, text)
    text = _MONEY.sub(_money_words, text)
    text = _ORDINAL.sub(lambda m: ordinal_words(int(m.group(1))), text)
    text = _DIGIT_LETTER.sub(" ", text)  # 4K, MP3, 3x: the number is a word of its own
    text = _TIME.sub(_time_words, text)
    text = _DECIMAL.sub(_decimal_words, text)
    text = _NEGATIVE.sub("minus ", text)
    text = _NUMBER.sub(lambda m: _plain_number_words(m.group(0)), text)
    for symbol, words in _SYMBOL_WORDS.items():
        text = text.replace(symbol, words)
    return text


def number_to_words(number: int) -> str:
    """Cardinal in words, American style: 105 → "one hundred five"."""
    if number < 0:
        return "minus " + number_to_words(-number)
    if number < 20:
        return _ONES[number]
    if number < 100:
        tens, ones = divmod(number, 10)
        return _TENS[tens] + (f"-{_ONES[ones]}" if ones else "")
    if number < 1000:
        hundreds, rest = divmod(number, 100)
        return f"{_ONES[hundreds]} hundred" + (f" {number_to_words(rest)}" if rest else "")
    for scale, name in _SCALES:
        if number >= scale:
            count, rest = divmod(number, scale)
            return f"{number_to_words(count)} {name}" + (f" {number_to_words(rest)}" if rest else "")
    raise AssertionError("unreachable")


def ordinal_words(number: int) -> str:
    """1 → "first", 22 → "twenty-second", 100 → "one hundredth"."""
    words = number_to_words(number)
    head, separator, last = _split_last_word(words)
    if last in _IRREGULAR_ORDINALS:
        last = _IRREGULAR_ORDINALS[last]
    elif last.endswith("y"):
        last = last[:-1] + "ieth"
    else:
        last += "th"
    return head + separator + last


def year_words(year: int) -> str:
    """Read like a year: 1995 → "nineteen ninety-five", 2005 → "two thousand five"."""
    if not 1000 <= year <= 9999:
        return number_to_words(year)
    century, rest = divmod(year, 100)
    if year % 1000 == 0 or 2000 <= year <= 2009:
        return number_to_words(year)
    if rest == 0:
        return f"{number_to_words(century)} hundred"
    if rest < 10:
        return f"{number_to_words(century)} oh {number_to_words(rest)}"
    return f"{number_to_words(century)} {number_to_words(rest)}"


def _plain_number_words(digits: str) -> str:
    number = int(digits)
    if len(digits) == 4 and 1000 < number < 3000:
        return year_words(number)
    return number_to_words(number)


def _digit_words(digits: str) -> str:
    """0199 → "zero one nine nine": each digit by its name."""
    return " ".join(_ONES[int(digit)] for digit in digits)


def _digit_groups(match: re.Match[str]) -> str:
    """555-1234 → "five five five, one two three four" (a phone number, digit by digit)."""
    return ", ".join(_digit_words(group) for group in re.findall(r"\d+", match.group(0)))


def _iso_date_words(match: re.Match[str]) -> str:
    """2024-03-01 → "march first, twenty twenty-four"."""
    year, month, day = (int(group) for group in match.groups())
    return f"{_MONTHS[month - 1]} {ordinal_words(day)}, {year_words(year)}"


def _decade_words(match: re.Match[str]) -> str:
    """1990s → "nineteen nineties", '90s → "nineties", 2000s → "two thousands", 100s → "hundreds"."""
    digits = match.group(1)
    if digits in ("100", "1000"):
        return "hundreds" if digits == "100" else "thousands"  # 100s of people
    if len(digits) == 1:
        return match.group(0)
    words = year_words(int(digits)) if len(digits) == 4 else number_to_words(int(digits))
    return words[:-1] + "ies" if words.endswith("y") else words + "s"


def _meridiem_words(match: re.Match[str]) -> str:
    """5 p.m. → "5 p m" (a full stop that ends the text stays)."""
    at_end = match.group(2) and not match.string[match.end() :].strip()
    return f" {match.group(1).lower()} m" + ("." if at_end else "")


def _degree_words(match: re.Match[str]) -> str:
    """-5°C → "-5 degrees celsius" (the number is read later), 1° → "1 degree"."""
    number = match.group(1)
    unit = "degree" if number.lstrip("-") == "1" else "degrees"
    return f"{number} {unit}{_SCALE_NAMES[match.group(2) and match.group(2).upper()]}"


def _fraction_words(match: re.Match[str]) -> str:
    """1/2 → "one half", 3/4 → "three quarters", 2/3 → "two thirds"."""
    numerator, denominator = int(match.group(1)), int(match.group(2))
    one, many = _FRACTION_NAMES.get(denominator, (ordinal_words(denominator),) * 2)
    if denominator not in _FRACTION_NAMES:
        many += "s"
    return f"{number_to_words(numerator)} {one if numerator == 1 else many}"


def _unit_words(match: re.Match[str]) -> str:
    """10km → "10 kilometers", 1 kg → "1 kilogram"."""
    number, unit = match.group(1), _UNITS[match.group(2).lower()]
    if number != "1":
        head, per, tail = unit.partition(" per ")
        unit = _IRREGULAR_PLURALS.get(head, head + "s") + per + tail
    return f"{number} {unit}"


def _money_words(match: re.Match[str]) -> str:
    one, many, one_small, many_small = _CURRENCIES[match.group(1)]
    whole = int(match.group(2))
    fraction = match.group(3)
    scale = match.group(4) or _SCALE_ABBREVIATIONS.get((match.group(5) or "").lower())
    if scale:  # "$3 million" → "three million dollars"
        return f"{_decimal_text(match.group(2), fraction)} {scale} {many}"
    small = int(fraction.ljust(2, "0")) if fraction else 0
    parts = []
    if whole or not small:
        parts.append(f"{number_to_words(whole)} {one if whole == 1 else many}")
    if small:
        parts.append(f"{number_to_words(small)} {one_small if small == 1 else many_small}")
    return ", ".join(parts)


def _time_words(match: re.Match[str]) -> str:
    hours, minutes = int(match.group(1)), int(match.group(2))
    if hours > 24 or minutes > 59:
        return match.group(0).replace(":", " ")
    if minutes == 0:
        meridiem = re.match(r"\s?[ap] m\b", match.string[match.end() :])
        return number_to_words(hours) if meridiem else f"{number_to_words(hours)} o'clock"  # 3:00 p.m.
    if minutes < 10:
        return f"{number_to_words(hours)} oh {number_to_words(minutes)}"
    return f"{number_to_words(hours)} {number_to_words(minutes)}"


def _decimal_words(match: re.Match[str]) -> str:
    return _decimal_text(match.group(1), match.group(2))


def _decimal_text(whole: str, fraction: str | None) -> str:
    words = number_to_words(int(whole))
    if fraction:
        words += " point " + _digit_words(fraction)
    return words


def _split_last_word(words: str) -> tuple[str, str, str]:
    cut = max(words.rfind(" "), words.rfind("-"))
    if cut < 0:
        return "", "", words
    return words[:cut], words[cut], words[cut + 1 :]


def _drop_unreadable(text: str, original: str, *, strict: bool) -> str:
    unreadable: list[str] = []
    kept = []
    for character in text:
        if _READABLE.match(character):
            kept.append(character)
        elif character not in unreadable:
            unreadable.append(character)
    if unreadable:
        if strict:
            raise UnreadableTextError(unreadable, original)
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in unreadable)
        warnings.warn(f"dropped unreadable {shown} from {original[:80]!r}", UnreadableTextWarning, stacklevel=3)
    return "".join(kept)
