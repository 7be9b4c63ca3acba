"""Korean text normalisation: digits, Latin letters, units and symbols → Hangul.

``normalize(text)`` spells out everything a Korean reader would say but that is
not written in Hangul, and changes nothing else: Hangul and the sentence
punctuation ``. , ? ! ; : … ' " ( ) [ ] { } “ ” ‘ ’ 「 」 『 』 《 》 〈 〉 < > —``
pass through (the tokenizer keeps them as prosody symbols), and whitespace is
collapsed to single spaces.

Why our own code: ko-speech-tools' number reading is weak (20세기 → 이영세기,
1권 → 한권, 11명 → 시빌명), and no maintained library reads Korean numbers with
counters correctly. Its CMUdict English → Hangul converter *is* used, for Latin
words missing from our loanword dictionary (see ``latin.py``).

Rules, applied in this order (each one rewrites the text for the next):

1. Characters: NFC for Hangul, NFKC for everything else (full-width digits and
   letters, ㎏, ①; never NFKC on Hangul, which would split compatibility jamo); a circled number
   before 번 is a choice (정답은 ③번 → 삼 번).
   (주) and ㈜ are 주식회사 ((사) 사단법인, (재) 재단법인, (유) 유한회사).
   Accents on Latin letters are dropped (café → cafe); zero-width and other
   invisible format characters are removed. Hanja used as headline abbreviations are read
   (美 대선 → 미 대선, 與野 → 여야, 3日 → 삼 일) when every character of the run is one of them;
   other Chinese characters (大韓民國) stay unreadable.
2. Latin phrases with punctuation inside (Wi-Fi, COVID-19 → 코로나 일구, R&D → 알앤디); No. before
   a number is 넘버, a single digit after it said in English as Koreans say it (No.1 and #1 → 넘버 원).
3. Dates: 2026-11-21, 2026/11/21 and 2026.11.21. → 이천이십육 년 십일월 이십일 일.
   The trailing dot of 2026.11.21. is part of the date unless it ends the text. A year (1950-2039)
   and month are a date when written 2026. 12., 2026-12 or 2026/12, or as a range
   (2020.03~2024.02 → 이천이십 년 삼월에서 이천이십사 년 이월); a lone 2026.12 stays a decimal.
4. Phone numbers and other hyphenated digit codes, digit by digit with 0 as 공
   (010-1234-5678 → 공일공 일이삼사 오육칠팔; also 010 1234 5678, 010.1234.5678, a local
   123-4567, a 900101-1234567 registration number, +82 10-… and N-0M codes such as
   20261202-0001); 3·1절 and 3.1절 → 삼일절. The emergency numbers 112, 114 and 119 (일일구), and
   four or more digits after 번호, 코드, 내선, 계좌, PIN and a postal code after (우) or 우: (인증번호
   123456 → 일이삼사오육), too.
5. Ranges: 3~4개 → 세 개에서 네 개 (the counter is repeated on the first number),
   10~20명 → 열 명에서 스무 명, 21일~23일 → 이십일 일에서 이십삼 일; a hyphen is
   read as a range only when a counter or unit follows the second number (2-3일); weekdays too
   (월~금 → 월요일에서 금요일), and a time-of-day word may open the second end (오전 9시~오후 6시 →
   오전 아홉 시에서 오후 여섯 시). Two
   neighbouring digits with a comma before a counter are one approximate count: 2,3명 → 두세 명
   (한두, 두세, 서너, 네다섯, 대여섯, 예닐곱, 일고여덟, 여덟아홉 before native counters),
   3,4일 → 삼사 일 (5,6년 → 오륙 년, 5,6월 → 오뉴월, as they are written).
6. Times: 14:30 → 열네 시 삼십 분, 9:05 → 아홉 시 오 분, 3 PM and PM 3:00 → 오후 세 시, 오전9시 →
   오전 아홉 시 (a word of its own, as it is said); after
   기록, 마라톤, 소요 … H:MM:SS is a duration (마라톤 2:03:45 → 두 시간 삼 분 사십오 초).
7. Money signs: $5 → 오 달러, ₩5,000 → 오천 원 (also € 유로, £ 파운드, ¥ 엔, US$); an English scale
   word or letter becomes 만/억 units ($1.5 million → 백오십만 달러, 3 billion → 삼십억, $2.5B →
   이십오억 달러, $100K → 십만 달러); currency codes too (USD 100, 100 USD → 백 달러).
8. Units: 5kg → 오 킬로그램, 50% → 오십 퍼센트, 100km/h → 시속 백 킬로미터, a rate per another
   unit with 당 (2.5kg/m² → 제곱미터당 이 점 오 킬로그램, 120원/kWh → 킬로와트시당 백이십 원; a unit
   symbol written before 당 alone too: ℓ당 → 리터당),
   -5℃ → 영하 오 도.
   Powers: 10^8 and 10⁸ → 십의 팔 제곱, x⁴ → 엑스 사 제곱 (superscripts are never folded into
   the number).
9. Arithmetic between numbers: 3/4 → 사분의 삼, - 마이너스, + 플러스, × and x
   between numbers 곱하기 (not inside a model name: 7800X3D; a hyphen after letters and digits
   is no minus either: i7-13700K, DDR5-6400), ÷ 나누기, 3:2 → 삼 대 이; -5 → 마이너스 오.
10. 제 + number: 제3회 → 제삼 회 (always Sino-Korean); 제2조제1항제3호 is read as spaced
    (제이조 제일 항 제삼 호).
11. Number + counter. Native numbers before native counters (3개 → 세 개,
    20명 → 스무 명, 125개 → 백스물다섯 개), Sino-Korean before the others
    (3분 → 삼 분, 20세기 → 이십 세기). Months: 6월 → 유월, 10월 → 시월.
    Ambiguous counters:

    - 번: a count of times (세 번 했다, 다섯 번이나) unless a numbered thing
      follows (3번 출구 → 삼 번 출구, 2번 선수, 7번 버스) or a copula
      (정답은 3번입니다 → 삼 번입니다), or it follows such a noun and ends its phrase or is over
      99 (버스 472번 → 사백칠십이 번, 2반 15번이 → 십오 번이; 버스 3번 갈아탔다 stays 세 번);
      번째 is always native (1번째 → 첫 번째).
    - 분: minutes (삼 분), unless it is the honorific counter for people, which
      needs clear context: 께서 follows (3분께서 → 세 분께서) or a noun for
      people comes right before the number (손님 3분 → 손님 세 분).
    - 대: a count of machines (3대 → 세 대) except round tens, which are age
      groups (20대 → 이십 대).
    - 시 is the hour (세 시), 살 native age, 세 Sino-Korean age.

12. Number + 십/백/천/만/억/조/경: 5만 원 → 오만 원, 1천만 → 천만, 3억 → 삼억.
13. Plain numbers, Sino-Korean, spaced by 만 units (1,234,567 → 백이십삼만
    사천오백육십칠); decimals with 점 (3.14 → 삼 점 일사), also when letters follow (1.5x → 일 점
    오 엑스); numbers written with a leading 0 are codes, read digit by digit (007 → 공공칠).
14. Video resolutions: 1080p → 천팔십 피. p.23 and pp. 10-15 are pages (페이지 이십삼).
    Latin words (``latin.py``): acronyms letter by letter, dictionary loanwords,
    CMUdict, espeak-ng's letter-to-sound rules, then letter by letter; dots inside web
    addresses are 닷.
15. Symbols: = 은/는 (the particle that fits the word before), + 플러스, √ 루트, ∞ 무한대,
    & 앤드, # 샵, @ 골뱅이, % 퍼센트, ° 도, Greek letters by name. Separators
    with no sound (/ \\ | _ * • · - and a ~ that is not a range) become spaces.
16. Hangul compatibility jamo written alone, as in chat: a consonant is read
    with ㅡ (ㅋㅋ → 크크, ㅎㅎ → 흐흐), a vowel with silent ㅇ (ㅠㅠ → 유유).

Context. Some readings depend on the words around the number; where a case stays
ambiguous the likelier reading is chosen as written here (cue lists in ``units.py``):

- Dotted (or slashed) month.day before an event noun (운동, 혁명, 전쟁, 사태, 민주화운동 …, with up
  to two syllables before it: 2.28 민주운동, 9.19 군사합의) names a historical event, digit by
  digit: 5.18 민주화운동 → 오일팔, 4.19 혁명 → 사일구, 3.1 운동 → 삼일. Without such a noun 5.18
  stays a decimal (오 점 일팔), and 운동량/운동장 are not events (1.5 운동량). M·D with a middle dot is always
  an event (6·25 → 육이오). A day that is a round ten, or repeats a two-digit month, is read
  as a number (6·10 → 육십, 12.12 → 십이십이), as these names are said.
- Blood pressure after 혈압 is two readings joined by 에 (혈압 120/80 → 백이십에 팔십), not a fraction.
- A baseball rate after 타율, 승률, 출루율 or 장타율 is said in 할, 푼, 리 (타율 .325 → 삼할 이푼 오리,
  승률 0.600 → 육할); elsewhere a decimal written without its 0 (.5) is read 영 점 오.
- 1/4분기 … 4/4분기 are quarters (일사분기), never fractions. 24/7 (round the clock) is 이십사 칠,
  as it is said, not the fraction 칠분의 이십사.
- M/D with a slash is a date (12/25 → 십이월 이십오 일) only with a date cue: a weekday in
  brackets after it (12/25(금)), another M/D as a range, 오는/지난/마감/일정 … before it or
  부터/까지/개강/출시 … after it. Otherwise it is a fraction (3/4 → 사분의 삼). A weekday in
  brackets after any date is said in full (12/25(금) → 십이월 이십오 일 금요일), and makes a dotted
  M.D. a date (12.2.(수) → 십이월 이 일 수요일, not the decimal 십이 점 이).
- N대M, N 대 M: a ratio, score or competition rate, Sino-Korean (2대1 → 이 대 일, 100 대 1 →
  백 대 일), unless a counter, unit or magnitude follows M (3대 2천만 원 stays a count).
- N-M next to a word about a game (3-2로 이겼다, 2-1 역전승, 스코어 3-2) is a score: 삼 대 이.
- N-M before 번지, or after a road or district name (산, 23길, 테헤란로, 역삼동, 진암리; a two-syllable
  …동 or …로 only after …시/구/군: 중구 명동) is a lot or building number with its sub-number, read
  with 의 (12-3번지 → 십이의 삼 번지, 한빛로 73-2 → 칠십삼의 이), not a range or a subtraction; a game
  word still makes it a score.
- N대 alone: a rank noun after it (대통령, 영화제 …) makes it Sino-Korean (25대 대통령 → 이십오 대);
  a round ten before an age word (남성, 초반 …) is an age group; a machine noun before or after
  it (자동차 20대, 20대의 차량) makes it a count (스무 대); a noun glued to it (4대강, 5대양) makes
  it Sino-Korean (사대강); otherwise round tens are age groups
  (20대 → 이십 대) and other numbers counts (3대 → 세 대).
- N+M with one digit each, next to an offer word (행사, 증정, 편의점 …), is a buy-N-get-M offer,
  said in English (1+1 행사 → 원 플러스 원); otherwise arithmetic.
- An equation (with =) reads + - × ÷ / as 더하기 빼기 곱하기 나누기 and = as 은/는 (3+4=7 → 삼
  더하기 사는 칠); without = the signs stay 플러스/마이너스 (a sum of amounts, a signed value).
- A signed number of 도 or ℃ is a temperature (-5도 → 영하 오 도; 영하 -3℃ → 영하 삼 도), except
  after an angle word (기울기, 각도, 회전 …), where it is 마이너스. No cue: a temperature.
- Versions: three or more dotted parts (3.2.1), a number after v/V, or two parts after 버전 or a
  Latin name (Python 3.11, iOS 17.1) are read part by part as whole numbers (삼 점 십일), unless a
  unit or counter follows (3.5인치 stays a decimal).
- Two neighbouring decades written as one number before a word for people (2030 세대, 5060 여성)
  are a generation, digit by digit (이공삼공 세대); 코로나19 is 코로나 일구, as COVID-19.
- Paper sizes and model codes joined to letters follow the Latin rule: a single digit in
  English (A4 → 에이포, K5 → 케이파이브), two digits as a number (S23 → 에스이십삼), three or more
  digit by digit (A380 → 에이삼팔공) except a round hundred (H100 → 에이치백); a hyphen before one
  digit changes nothing (GPT-4 → 지피티 포, as GPT4). A three- or four-digit number after a
  capitalised name (RTX 4090 → 사공구공) or 보잉/에어버스 is a model number, digit by digit, unless
  it is a likely year, 1950 to 2039 (Office 2019 → 이천십구, BTS 2013 → 이천십삼; so RTX 2060 is
  read 이천육십).

Spacing: a number's reading is separated from its counter or unit by a space, as
standard spelling separates them (3개 → 세 개, 2026년 → 이천이십육 년), except
month names, which are one word (십일월, 유월), and 분의 in fractions (오분의 일).

Unreadable characters. Whatever is still not Hangul, whitespace or the
punctuation above after these rules (emoji, Chinese characters, Cyrillic, kana,
unknown symbols) is never passed through silently: with ``strict=False`` it is
dropped and an ``UnreadableTextWarning`` naming the characters is issued; with
``strict=True`` an ``UnreadableTextError`` is raised whose ``.characters`` lists
them.
"""

from __future__ import annotations

import re
import unicodedata
import warnings
from collections.abc import Callable
from dataclasses import dataclass

from moksori.text.errors import UnreadableTextError, UnreadableTextWarning
from moksori.text.korean.latin import ENGLISH_DIGITS, PHRASES, read_latin, spell_letters
from moksori.text.korean.numbers import (
    native_korean,
    native_ordinal,
    read_decimal,
    read_digits,
    read_number,
    sino_korean,
)
from moksori.text.korean.units import (
    AGE_NOUNS,
    ANGLE_CUES,
    CURRENCY_SIGNS,
    DATE_CUES_AFTER,
    DATE_CUES_BEFORE,
    EVENT_NOUNS,
    MACHINE_NOUNS,
    OFFER_CUES_BEFORE,
    OFFER_NOUNS,
    RANKED_NOUNS,
    SCORE_CUES_AFTER,
    SCORE_CUES_BEFORE,
    VERSION_CUES,
    WEEKDAYS,
    NATIVE_COUNTERS,
    NUMBERED_COPULAS,
    NUMBERED_NOUNS,
    PEOPLE_NOUNS,
    SINO_COUNTERS,
    TEMPERATURE_UNITS,
    UNITS,
)

__all__ = ["normalize", "KEPT_PUNCTUATION"]

KEPT_PUNCTUATION = frozenset(".,?!;:…'\"()[]{}“”‘’「」『』《》〈〉<>—")

# ---------------------------------------------------------------------------
# Pattern pieces
# ---------------------------------------------------------------------------

# A written number: 15,000 / 3.14 / 2026.
NUM = r"(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?"
# A number starts here, not inside a Latin token or after a decimal point.
START = r"(?<![A-Za-z\d])(?<!\d\.)"
# A number ends here, not inside a Latin token or a longer number.
END = r"(?![A-Za-z\d])(?![.,]\d)"
MAGNITUDE = r"(?:[십백천]?[만억조경]|[십백천])(?!큼)"

# Words after two neighbouring decades written as one number (2030 세대, 5060 여성): a generation,
# said digit by digit (이공삼공), not a year or a number.
GENERATION_CUES = ("세대", "여성", "남성", "청년", "층", "음악", "가요", "직장인", "고객", "소비자", "남녀", "유권자")

_SPECIAL_COUNTERS = {"번", "번째", "분의", "월", "대"}
_ALL_COUNTERS = NATIVE_COUNTERS | SINO_COUNTERS | _SPECIAL_COUNTERS


def _alternation(words) -> str:
    """Regex alternation that tries longer words first (개월 before 개)."""
    return "|".join(re.escape(w) for w in sorted(words, key=len, reverse=True))


COUNTER = _alternation(_ALL_COUNTERS)
UNIT = _alternation(UNITS)
SUFFIX = rf"(?:{MAGNITUDE})?\s?(?:{COUNTER}|{UNIT})|{MAGNITUDE}"

_MAGNITUDE_POWERS = {"십": 1, "백": 2, "천": 3, "만": 4, "억": 8, "조": 12, "경": 16}
_MONTHS = {6: "유월", 10: "시월"}

# ---------------------------------------------------------------------------
# Step 1: characters
# ---------------------------------------------------------------------------

_PRE_MAP = {
    "㎡": "m²", "㎢": "km²", "㎥": "m³", "㎠": "cm²", "㎤": "cm³",
    "(주)": "주식회사 ", "㈜": "주식회사 ", "(사)": "사단법인 ", "(재)": "재단법인 ", "(유)": "유한회사 ",
    "US$": "$", "−": "-", "‐": "-", "‑": "-", "⁄": "/", "№": "No. ",
    "ㆍ": "·", "・": "·", "･": "·", "∙": "·", "〜": "~", "∼": "~",
    "Ⅰ": "일", "Ⅱ": "이", "Ⅲ": "삼", "Ⅳ": "사", "Ⅴ": "오", "Ⅵ": "육",
    "Ⅶ": "칠", "Ⅷ": "팔", "Ⅸ": "구", "Ⅹ": "십", "Ⅺ": "십일", "Ⅻ": "십이",
}  # fmt: skip
# Kept out of NFKC, which would turn them into something else ("…" → "...", "²" → "2").
_KEEP_FROM_NFKC = frozenset("…²³·")


def _is_hangul(char: str) -> bool:
    code = ord(char)
    return (
        0xAC00 <= code <= 0xD7A3  # syllables
        or 0x1100 <= code <= 0x11FF  # conjoining jamo
        or 0x3131 <= code <= 0x318E  # compatibility jamo
        or 0xA960 <= code <= 0xA97F
        or 0xD7B0 <= code <= 0xD7FF
    )


def _normalize_character(char: str) -> str:
    if _is_hangul(char) or char in _KEEP_FROM_NFKC:
        return char
    category = unicodedata.category(char)
    if category == "Cf" or category.startswith("M"):
        return ""  # invisible: zero-width joiners, variation selectors, stray accents
    if category == "Cc" and not char.isspace():
        return ""
    out = []
    for c in unicodedata.normalize("NFKC", char):
        base = unicodedata.normalize("NFD", c)[0]
        out.append(base if base.isascii() and base.isalpha() else c)
    return "".join(out)


# Superscript exponents, which NFKC would fold into the number (10⁸ → 108): 10⁸ → 10^8.
_SUPERSCRIPTS = re.compile("(?<=[0-9A-Za-z])(⁻[⁰¹²³⁴⁵⁶⁷⁸⁹]+|[⁰¹²³⁴⁵⁶⁷⁸⁹]*[⁰¹⁴⁵⁶⁷⁸⁹][⁰¹²³⁴⁵⁶⁷⁸⁹]*)")
_SUPERSCRIPT_DIGITS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻", "0123456789-")

# Vulgar fractions, which NFKC would write with U+2044 (a character nothing reads): ½ → 1/2.
_VULGAR_FRACTIONS = {"½": "1/2", "⅓": "1/3", "⅔": "2/3", "¼": "1/4", "¾": "3/4", "⅕": "1/5", "⅛": "1/8"}


# Hanja that news headlines use as abbreviations (美 대선, 與野, 北 미사일), read in Hangul; the
# date and unit characters only after a number (2026年 12月 2日, 3萬).
_HEADLINE_HANJA = str.maketrans(
    "美中北南韓英佛獨伊印與野靑軍檢警前現新高低反親故對比總株價金文尹李朴崔鄭趙",
    "미중북남한영불독이인여야청군검경전현신고저반친고대비총주가금문윤이박최정조",
)
_HANJA_AFTER_NUMBER = {"年": "년", "月": "월", "日": "일", "時": "시", "分": "분", "秒": "초", "萬": "만", "億": "억",
                       "兆": "조"}
_HANJA_AFTER_NUMBER_PATTERN = re.compile(rf"(?<=\d)\s?([{''.join(_HANJA_AFTER_NUMBER)}])")
_HANJA_RUN = re.compile("[\u4e00-\u9fff]+")
_HEADLINE_HANJA_CHARACTERS = frozenset(chr(code) for code in _HEADLINE_HANJA) | {"日"}


def _headline_hanja(match: re.Match) -> str:
    """美, 與野, 韓美 → 미, 여야, 한미; a run with any other Hanja (大韓民國, a gloss) stays unreadable."""
    run = match.group(0)
    if not set(run) <= _HEADLINE_HANJA_CHARACTERS:
        return run
    return run.replace("日", "일").translate(_HEADLINE_HANJA)  # 日 정부 (Japan) and 3日 (a day) alike


# A circled number names a choice or an item: 정답은 ③번 → 삼 번 (never a count of times, 세 번).
_CIRCLED_NUMBER_BEFORE_BEON = re.compile(r"([\u2460-\u2473])\s?번(?!째)")


def _prepare(text: str) -> str:
    text = unicodedata.normalize("NFC", text)
    text = _HANJA_AFTER_NUMBER_PATTERN.sub(lambda m: _HANJA_AFTER_NUMBER[m.group(1)], text)
    text = _HANJA_RUN.sub(_headline_hanja, text)
    text = _CIRCLED_NUMBER_BEFORE_BEON.sub(lambda m: f"{sino_korean(ord(m.group(1)) - 0x245F)} 번", text)
    for old, new in _PRE_MAP.items():
        text = text.replace(old, new)
    text = _SUPERSCRIPTS.sub(lambda m: "^" + m.group(1).translate(_SUPERSCRIPT_DIGITS), text)
    for old, new in _VULGAR_FRACTIONS.items():  # 3½ → 3 1/2
        text = re.sub(rf"(?<=\d){old}", " " + new, text).replace(old, new)
    text = "".join(_normalize_character(c) for c in text)
    return re.sub(r"\s+", " ", text)


# ---------------------------------------------------------------------------
# Readings used by the rules
# ---------------------------------------------------------------------------


def _month(number: str) -> str:
    n = int(number.replace(",", ""))
    return _MONTHS.get(n, sino_korean(n) + "월")


def _is_label_number(after: str) -> bool:
    """After "N번": is this the number of a thing (3번 출구) rather than a count?"""
    after = after.lstrip()
    return after.startswith(NUMBERED_NOUNS + NUMBERED_COPULAS)


# "N번" that ends its phrase (nothing, punctuation, or a case particle after it): 버스 472번, 15번이.
_PHRASE_END = re.compile(r"(?:[을를은는이가의에]|에서|으로)?(?:\s*$|\s*[.,!?)\]]|(?<=[을를은는이가의에서로])\s)")
_LABEL_NOUN_BEFORE = re.compile(rf"(?:{_alternation(NUMBERED_NOUNS + ('반',))})\s?$")


def _is_numbered_after_noun(n: int, before: str, after: str) -> bool:
    """버스 472번, 2반 15번이: "N번" right after a numbered noun is that thing's number when it ends
    its phrase or is a number no one counts times to (over 99); 버스 3번 갈아탔다 stays a count."""
    return bool(_LABEL_NOUN_BEFORE.search(before)) and (n >= 100 or bool(_PHRASE_END.match(after)))


# Valuation multiples are read Sino-Korean: PER 15배 → 십오 배 (a count of times is 열다섯 배).
_VALUATION_BEFORE = re.compile(r"(?:PER|PBR|PSR|PEG|EV/EBITDA|주가수익비율|주가순자산비율)\s?$")


def _reads_native(counter: str, n: int, before: str, after: str) -> bool:
    if counter == "배" and _VALUATION_BEFORE.search(before):
        return False
    if counter in NATIVE_COUNTERS:
        return True
    if counter == "번":
        return not (_is_label_number(after) or _is_numbered_after_noun(n, before, after))
    if counter == "분":
        return after.startswith("께서") or before.rstrip().endswith(PEOPLE_NOUNS)
    if counter == "대":
        return _dae_is_count(n, before, after)
    return False


def _counted(number: str, counter: str, before: str = "", after: str = "") -> str:
    """A number and the counter after it: ('3', '개') → '세 개'."""
    if "." in number:
        return f"{read_decimal(number)} {counter}"
    if counter == "월":
        return _month(number)
    n = int(number.replace(",", ""))
    if counter == "분의":
        return f"{sino_korean(n)}분의"
    if counter == "번째":
        return f"{native_ordinal(n)} {counter}"
    if _reads_native(counter, n, before, after):
        return f"{native_korean(n, prenominal=True)} {counter}"
    return f"{sino_korean(n)} {counter}"


def _with_particle(match: re.Match) -> str:
    """= read as the topic particle that fits the word before it (일은, 이는)."""
    before = match.string[: match.start()].rstrip()
    last = before[-1:] if before else ""
    last = _SYMBOL_WORDS.get(last, last)[-1:]  # y² = 1: after 제곱, 은
    has_final = "가" <= last <= "힣" and (ord(last) - 0xAC00) % 28 != 0
    return "은 " if has_final else "는 "


# ---------------------------------------------------------------------------
# The rules
# ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Rule:
    name: str
    pattern: re.Pattern
    replace: str | Callable[[re.Match], str]

    def apply(self, text: str) -> str:
        return self.pattern.sub(self.replace, text)


def _phrase_pattern() -> re.Pattern:
    parts = []
    for phrase in sorted(PHRASES, key=len, reverse=True):
        part = re.escape(phrase)
        if phrase[0].isalnum():
            part = r"(?<![A-Za-z0-9])" + part
        if phrase[-1].isalnum():
            part += r"(?![A-Za-z0-9])"
        parts.append(part)
    return re.compile("|".join(parts), re.IGNORECASE)


def _around(match: re.Match) -> tuple[str, str]:
    """The text before and after ``match``, which decides how many of the rules read it."""
    return match.string[: match.start()], match.string[match.end() :]


def _date(match: re.Match) -> str:
    year, month, day = match.group("y"), int(match.group("m")), int(match.group("d"))
    return f"{year}년 {month}월 {day}일"


def _emergency_number(match: re.Match) -> str:
    """119에 신고 → 일일구; after a numbered noun (버스 112) it is that thing's number."""
    if _LABEL_NOUN_BEFORE.search(match.string[: match.start()]):
        return match.group(0)
    return read_digits(match.group(0))


def _digit_groups(match: re.Match) -> str:
    return " ".join(read_digits(group) for group in re.findall(r"\d+", match.group(0)))  # masked * dropped


def _bare_mobile(match: re.Match) -> str:
    return " ".join(read_digits(group) for group in match.groups())


def _range_with_counter(match: re.Match) -> str:
    first, sign, second, suffix = match.group(1), match.group(2) or "", match.group(3), match.group(4)
    before, after = _around(match)
    if suffix.strip() == "번" and "." not in first + second and not before.endswith("제"):  # 문제 1~5번 → 일 번에서 오 번
        if _reads_native("번", int(second.replace(",", "")), before, after):
            return f"{_counted(first, '번')}에서 {_counted(second, '번')}"
        return f"{read_number(first)} 번에서 {read_number(second)} 번"
    return f"{first}{suffix}에서 {sign}{second}{suffix}"


# Two neighbouring numbers before a native counter make one approximate count: 2,3명 → 두세 명.
_NATIVE_APPROXIMATE = {1: "한두", 2: "두세", 3: "서너", 4: "네다섯", 5: "대여섯", 6: "예닐곱", 7: "일고여덟",
                       8: "여덟아홉"}


def _approximate_count(match: re.Match) -> str:
    """2,3명 → 두세 명, 3,4일 → 삼사 일, 3,4월 → 삼사월: N,N+1 before a counter is "N or N+1"."""
    first, second, space, counter = int(match.group(1)), int(match.group(2)), match.group(3), match.group(4)
    if second != first + 1:
        return match.group(0)
    before, after = _around(match)
    if counter == "번째" or _reads_native(counter, first, before, after):
        return f"{_NATIVE_APPROXIMATE[first]} {counter}"
    pair = "오륙" if first == 5 else f"{sino_korean(first)}{sino_korean(second)}"  # 五六 is written 오륙
    if counter == "월":
        return "오뉴월" if first == 5 else f"{pair}월"  # as 유월: the word is 오뉴월
    return f"{pair}{space or ' '}{counter}"


_ENGLISH_SCALES = {"thousand": 3, "million": 6, "billion": 9, "trillion": 12}


def _english_scale(match: re.Match) -> str:
    """1.5 million → 1500000 (then read 백오십만), as a Korean reader turns it into 만/억 units."""
    return _scaled(match.group(1), _ENGLISH_SCALES[match.group(2).lower()]) or match.group(0)


def _scaled(number: str, power: int) -> str | None:
    whole, _, fraction = number.replace(",", "").partition(".")
    if len(fraction) > power:  # more decimals than the scale has zeros: leave it
        return None
    return str(int(whole + fraction.ljust(power, "0")))


_SCALE_LETTERS = {"K": 3, "M": 6, "B": 9, "bn": 9}


def _money_with_scale_letter(match: re.Match) -> str:
    """$2.5B → $2500000000 (이십오억 달러), $100K → $100000 (십만 달러)."""
    scaled = _scaled(match.group(2), _SCALE_LETTERS[match.group(3)])
    return f"{match.group(1)}{scaled}" if scaled else match.group(0)


_CURRENCY_CODES = {"USD": "달러", "EUR": "유로", "JPY": "엔", "KRW": "원", "CNY": "위안", "GBP": "파운드"}


def _currency_code(match: re.Match) -> str:
    """USD 100 and 100 USD → 100달러 (then 백 달러), not a model number read digit by digit."""
    code = match.group(1) or match.group(4)
    number = match.group(2) or match.group(3)
    return f"{number}{_CURRENCY_CODES[code]}"


def _exponent(written: str) -> str:
    return ("마이너스 " if written.startswith("-") else "") + sino_korean(int(written.lstrip("-")))


def _year_range(match: re.Match) -> str:
    """1950-1953 → 1950에서 1953 (years, not a phone number or a subtraction)."""
    first, second = match.group(1), match.group(2)
    return f"{first}에서 {second}" if int(second) > int(first) else match.group(0)


_YEAR_MONTH_AFTER = re.compile(r"\s?[~–-]\s?(?:19|20)\d\d[./-]\d\d(?!\d)")
_YEAR_MONTH_BEFORE = re.compile(r"(?:19|20)\d\d[./-]\d\d\s?[~–-]\s?$")


def _year_month(match: re.Match) -> str:
    """2026. 12., 2026-12, 2026/12 and 2020.03~2024.02 → 2026년 12월; a lone 2026.12 is a decimal."""
    year, separator, month, dot = match.groups()
    before, after = _around(match)
    two_digits = len(month) == 2
    in_range = two_digits and not dot and (_YEAR_MONTH_AFTER.match(after) or _YEAR_MONTH_BEFORE.search(before))
    spaced = " " in match.group(0)
    # 2026. 12. and 2026.05. are dates; 2031.5. ends a sentence with a decimal
    dotted = separator == "." and dot and (spaced or two_digits)
    if not (dotted or (separator != "." and two_digits) or in_range):
        return match.group(0)
    end_of_text = dot and not after.strip()
    return f"{year}년 {int(month)}월" + ("." if end_of_text else "")


# Words before H:MM(:SS) that make it a duration, not a time of day: 마라톤 2:03:45 → 두 시간 삼 분.
_DURATION_CUES = ("기록", "마라톤", "완주", "소요", "러닝타임", "상영 시간", "상영시간", "재생 시간", "재생시간")


def _time(match: re.Match) -> str:
    hour, minute, second = int(match.group("h")), match.group("min"), match.group("s")
    if hour > 24:
        return match.group(0)
    duration = any(cue in match.string[max(0, match.start() - 12) : match.start()] for cue in _DURATION_CUES)
    words = [f"{hour}시간" if duration else f"{hour}시"]
    if minute and int(minute):
        words.append(f"{int(minute)}분")
    if second and int(second):
        words.append(f"{int(second)}초")
    meridiem = match.group("ampm")
    if meridiem:
        words.insert(0, "오전" if meridiem.lower() == "a" else "오후")
    return " ".join(words)


def _money(match: re.Match) -> str:
    return f"{match.group(2)}{match.group(3)}{CURRENCY_SIGNS[match.group(1)]}"


def _unit(match: re.Match) -> str:
    sign, number, unit = match.group(1), match.group(2), match.group(3)
    prefix, reading = UNITS[unit]
    words = [prefix] if prefix else []
    if sign and unit in TEMPERATURE_UNITS:
        words.append("영하" if sign == "-" else "영상")
    elif sign:
        words.append("마이너스" if sign == "-" else "플러스")
    words += [read_number(number), reading]
    return " ".join(words)


# The unit after the slash of a rate, read before the number with 당: 2.5kg/m² → 제곱미터당 이 점 오
# 킬로그램, 3.5GB/s → 초당 삼 점 오 기가바이트.
_PER_UNITS = {unit: reading for unit, (prefix, reading) in UNITS.items() if not prefix and "/" not in unit} | {
    "s": "초", "h": "시간", "hr": "시간", "day": "일", "d": "일"}  # fmt: skip
PER_UNIT = _alternation(_PER_UNITS)


def _unit_per_unit(match: re.Match) -> str:
    number, unit, per = match.group(1), match.group(2), match.group(3)
    if f"{unit}/{per}" in UNITS:  # km/h, m/s: a unit of its own (시속, 초속)
        return match.group(0)
    reading = UNITS[unit][1] if unit in UNITS else unit
    return f"{_PER_UNITS[per]}당 {read_number(number)} {reading}"


def _hal_pun_ri(match: re.Match) -> str:
    """타율 .325 → 삼할 이푼 오리: a baseball rate in 할, 푼 and 리 (tenths, hundredths, thousandths)."""
    digits = match.group(2).ljust(3, "0")
    parts = [sino_korean(int(d)) + unit for d, unit in zip(digits, ("할", "푼", "리")) if d != "0"]
    return match.group(1) + (" ".join(parts) or "영")


def _fraction(match: re.Match) -> str:
    numerator, denominator = int(match.group(1)), int(match.group(2))
    return f"{sino_korean(denominator)}분의 {sino_korean(numerator)}"


def _middle_dot_digits(match: re.Match) -> str:
    return read_digits(match.group(0).replace("·", ""), zero="영")


def _ordinal_je(match: re.Match) -> str:
    number, counter = match.group(1), match.group(2)
    reading = "제" + read_number(number)
    return f"{reading} {counter}" if counter else reading


# First letters of particles and endings that may follow a counter (3 개를, 3 명이).
_PARTICLE_STARTS = frozenset("이가은는을를에의도만씩째쯤과와로으부까보뿐밖간당마요")


def _counter(match: re.Match) -> str:
    number, space, counter = match.group(1), match.group(2), match.group(3)
    text, end = match.string, match.end()
    after = text[end:]
    if space and after[:1] >= "가" and after[:1] <= "힣" and after[0] not in _PARTICLE_STARTS:
        # "2 알약": the counter is only the start of the next word; read the number plainly.
        return match.group(0)
    reading = _counted(number, counter, text[: match.start()], after)
    return reading + " " if after[:1].isdigit() else reading  # 7월1일 → 칠월 일 일, not 칠월일 일


def _ratio(match: re.Match) -> str:
    return f"{read_number(match.group(1))} 대 {read_number(match.group(2))}"


def _magnitude(match: re.Match) -> str:
    number, magnitude, counter = match.group(1), match.group(2), match.group(3)
    if "." in number:
        reading = read_decimal(number) + magnitude
    else:
        power = sum(_MAGNITUDE_POWERS[c] for c in magnitude)
        reading = sino_korean(int(number.replace(",", "")) * 10**power)
    return f"{reading} {counter}" if counter else reading


def _plain_number(match: re.Match) -> str:
    return read_number(match.group(0))


def _latin(match: re.Match) -> str:
    return read_latin(match.group(0))


def _ampersand_letters(match: re.Match) -> str:
    return f"{spell_letters(match.group(1))}앤{spell_letters(match.group(2))}"


def _stray_tilde(match: re.Match) -> str:
    text, start, end = match.string, match.start(), match.end()
    between_words = start > 0 and end < len(text) and text[start - 1].isalnum() and text[end].isalnum()
    return " " if between_words else ""


# ---------------------------------------------------------------------------
# Readings that depend on the words around a number (see "Context" in the docstring)
# ---------------------------------------------------------------------------

_EVENT = _alternation(EVENT_NOUNS)
_OPERATORS = {"+": "더하기", "-": "빼기", "×": "곱하기", "*": "곱하기", "x": "곱하기", "X": "곱하기",
              "÷": "나누기", "/": "나누기"}  # fmt: skip
_OPERATOR = r"[-+×*xX÷/]"
_PARTICLES_AFTER_NOUN = r"(?:이|가|는|은|를|을|도|만|의)?"


def _topic_particle(reading: str) -> str:
    """은 after a final consonant, 는 after a vowel: 칠은, 사는."""
    last = reading.rstrip()[-1:]
    has_final = "가" <= last <= "힣" and (ord(last) - 0xAC00) % 28 != 0
    return "은" if has_final else "는"


def _event_date(match: re.Match) -> str:
    """5.18 → 오일팔, 4.19 → 사일구, 6.10 → 육십, 12.12 → 십이십이 (historical events)."""
    month, day = int(match.group("m")), int(match.group("d"))
    if day % 10 == 0 or (month >= 10 and day == month):
        day_text = sino_korean(day)
    else:
        day_text = read_digits(str(day))
    return sino_korean(month) + day_text


def _version_components(version: str) -> str:
    """3.11 → 삼 점 십일: each part of a version is a whole number, unlike a decimal's digits."""
    return " 점 ".join(sino_korean(int(part)) for part in version.split("."))


# A time-of-day word (or 영하/영상) may open the second end of a range: 오전 9시~오후 6시,
# 22:00~익일 2:00, 영하 10~영하 5도.
_TIME_OF_DAY = r"(?:오전|오후|새벽|아침|낮|저녁|밤|익일|다음 날|다음날|영하|영상)\s?"

_SUFFIX_AHEAD = re.compile(rf"\s?(?:{SUFFIX})")
_LATIN_WORD_BEFORE = re.compile(r"[A-Za-z][A-Za-z0-9+#]*\s$")


def _cued_version(match: re.Match) -> str:
    """A two-part number after 버전 or a Latin word (Python 3.11, iOS 17.1) is a version."""
    before, after = _around(match)
    if _SUFFIX_AHEAD.match(after):
        return match.group(0)
    cued = before.rstrip().endswith(VERSION_CUES) or bool(_LATIN_WORD_BEFORE.search(before))
    return _version_components(match.group(1)) if cued else match.group(0)


def _quarter(match: re.Match) -> str:
    return f"{read_digits(match.group(1))}사분기"


_WEEKDAY_AFTER = re.compile(rf"\s?\(\s?[{WEEKDAYS}](?:요일)?\s?\)")
_DATE_RANGE_AFTER = re.compile(r"\s*[~–-]\s*\d{1,2}/\d{1,2}")
_DATE_RANGE_BEFORE = re.compile(r"\d{1,2}/\d{1,2}\s*[~–-]\s*$")


def _is_date_context(before: str, after: str) -> bool:
    recent = before[-12:].split()
    return bool(
        _WEEKDAY_AFTER.match(after)
        or _DATE_RANGE_AFTER.match(after)
        or _DATE_RANGE_BEFORE.search(before)
        or after.lstrip().startswith(DATE_CUES_AFTER)
        or any(word.startswith(DATE_CUES_BEFORE) for word in recent)
    )


def _slash_date(match: re.Match) -> str:
    """12/25 is a date next to 오는, 까지, (금) and the like; otherwise a fraction."""
    before, after = _around(match)
    if not _is_date_context(before, after):
        return match.group(0)
    return f"{int(match.group('m'))}월 {int(match.group('d'))}일"


def _weekday(match: re.Match) -> str:
    """12월 25일(금) → 12월 25일 금요일; a range sign after it is 에서 (…(금)~12/27(토))."""
    return f" {match.group(1)}요일" + ("에서 " if match.group(2) else "")


def _equation(match: re.Match) -> str:
    """3+4=7 → 삼 더하기 사는 칠: an equation reads its operators as verbs and = as 은/는."""
    left, _, right = match.group(0).partition("=")
    left_text = _read_expression(left)
    if right.strip() in ("", "?"):
        return f"{left_text}{_topic_particle(left_text)}{right.strip()}"
    return f"{left_text}{_topic_particle(left_text)} {_read_expression(right)}"


_EXPRESSION_TOKEN = re.compile(rf"{NUM}|{_OPERATOR}")


def _read_expression(expression: str) -> str:
    words, expect_number = [], True
    for token in _EXPRESSION_TOKEN.findall(expression.strip()):
        if expect_number and token == "-":
            words.append("마이너스")
            continue
        words.append(read_number(token) if token[0].isdigit() else _OPERATORS[token])
        expect_number = not token[0].isdigit()
    return " ".join(words)


def _offer(match: re.Match) -> str:
    """편의점 1+1 행사 → 원 플러스 원: a buy-N-get-M offer is said in English."""
    before, after = _around(match)
    cued = after.lstrip().startswith(OFFER_NOUNS) or any(cue in before[-15:] for cue in OFFER_CUES_BEFORE)
    if not cued:
        return match.group(0)
    first, second = int(match.group(1)), int(match.group(2))
    return f"{ENGLISH_DIGITS[first]} 플러스 {ENGLISH_DIGITS[second]}"


def _is_score(before: str, after: str) -> bool:
    after_word = re.sub(r"^\s?(?:으로|로|의|에서|가|는)?\s?", "", after)
    return after_word.startswith(SCORE_CUES_AFTER) or any(cue in before[-12:] for cue in SCORE_CUES_BEFORE)


def _hyphen_score(match: re.Match) -> str:
    """3-2로 이겼다, 스코어 3-2 → 삼 대 이: a hyphen between scores, next to a word about winning."""
    before, after = _around(match)
    if not _is_score(before, after):
        return match.group(0)
    return f"{sino_korean(int(match.group(1)))} 대 {sino_korean(int(match.group(2)))}"


# A road or district name right before a number: 산, 23길, 12번길, 세종대로 after 중구, or a road
# (테헤란로, 한빛로) or district (역삼동, 진암리) name of three or more syllables; 으로/대로/스스로 and
# two-syllable 이동/활동 are ordinary words.
_ADDRESS_BEFORE = re.compile(
    r"(?:(?:^|\s)산|\d번?[길로]|[가-힣][시구군읍면]\s[가-힣]+[로길동리]|[가-힣]{2,}(?<![으대스])[로길]|[가-힣]{2,}[동리])\s?$"
)


def _lot_number(match: re.Match) -> str:
    """12-3번지, 한빛로 73-2, 역삼동 123-45 → 십이의 삼 번지: a lot or building number and its
    sub-number (지번 본번-부번, 건물번호), read with 의 as the cadastral rules say, not a range."""
    before, after = _around(match)
    if not match.group(3):
        if not _ADDRESS_BEFORE.search(before) or _SUFFIX_AHEAD.match(after) or _is_score(before, after):
            return match.group(0)
    lot = f"{sino_korean(int(match.group(1)))}의 {sino_korean(int(match.group(2)))}"
    return f"{lot} 번지" if match.group(3) else lot


def _ratio_dae(match: re.Match) -> str:
    """2대1, 100 대 1: a ratio, a score or a competition rate, read Sino-Korean."""
    return f"{read_number(match.group(1))} 대 {read_number(match.group(2))}"


_MACHINE_BEFORE = re.compile(rf"(?:{_alternation(MACHINE_NOUNS)}){_PARTICLES_AFTER_NOUN}\s*$")
_MACHINE_AFTER = re.compile(rf"\s?(?:의\s)?(?:{_alternation(MACHINE_NOUNS)})")


def _dae_is_count(n: int, before: str, after: str) -> bool:
    """대 after a number: a count of machines (세 대), an age group (이십 대) or a rank (이십오 대).

    A rank noun after it (대통령, 영화제) makes it Sino-Korean; a machine noun before or after it
    makes it a count; otherwise round tens are age groups and other numbers counts."""
    if after.lstrip().startswith(RANKED_NOUNS):
        return False
    round_ten = 10 <= n <= 90 and n % 10 == 0
    if round_ten and after.lstrip().startswith(AGE_NOUNS):
        return False
    if _MACHINE_BEFORE.search(before) or _MACHINE_AFTER.match(after):
        return True
    if after.startswith(("째", "손")):  # 3대째 가게, 5대손: generations, Sino-Korean
        return False
    if "가" <= after[:1] <= "힣" and after[0] not in _PARTICLE_STARTS:  # 4대강, 5대양 6대주: "great"
        return False
    return not round_ten


def _temperature(match: re.Match) -> str:
    """-5도 → 영하 오 도 (weather), but 기울기 -5도 → 마이너스 오 도 (an angle)."""
    written, sign, number = match.group(1), match.group(2), match.group(3)
    before = match.string[: match.start()]
    if written:
        word = written.strip()
    elif any(cue in before[-20:] for cue in ANGLE_CUES):
        word = "마이너스" if sign == "-" else "플러스"
    else:
        word = "영하" if sign == "-" else "영상"
    return f"{word} {read_number(number)} 도"


def _model_number(match: re.Match) -> str:
    """RTX 4090 → 사공구공: a three- or four-digit number after a Latin name (or 보잉, 에어버스) is a
    model number, read digit by digit, unless it is a likely year, 1950-2039 (Office 2019)."""
    word, number = match.group(1), match.group(2)
    after = match.string[match.end() :]
    if _SUFFIX_AHEAD.match(after):
        return match.group(0)
    if 1950 <= int(number) <= 2039:  # a year (BTS 2013, Office 2019), not RTX 2080
        return match.group(0)
    return f"{word} {read_digits(number)}"


_SYMBOL_WORDS = {
    "+": "플러스", "&": "앤드", "×": "곱하기", "÷": "나누기", "#": "샵", "@": "골뱅이",
    "%": "퍼센트", "°": "도", "²": "제곱", "³": "세제곱", "$": "달러", "₩": "원",
    "€": "유로", "£": "파운드", "¥": "엔", "±": "플러스마이너스", "√": "루트", "∞": "무한대", "α": "알파", "β": "베타", "γ": "감마",
    "δ": "델타", "Δ": "델타", "ε": "엡실론", "θ": "세타", "λ": "람다", "μ": "뮤",
    "π": "파이", "σ": "시그마", "Σ": "시그마", "ω": "오메가", "Ω": "오메가",
}  # fmt: skip
_SILENT_SEPARATORS = "/\\|_*•·^`–-"

_RULES: tuple[Rule, ...] = (
    # 2. Latin phrases with punctuation or digits inside
    Rule("코로나19", re.compile(r"코로나\s?19(?!\d)"), "코로나 일구"),  # as COVID-19
    Rule("unit before 당", re.compile(rf"(?<![A-Za-z\d])({UNIT})(?=당)"), lambda m: UNITS[m.group(1)][1]),  # ℓ당, kg당
    Rule("latin phrase", _phrase_pattern(), lambda m: PHRASES[m.group(0).lower()]),
    Rule("letters & letters", re.compile(r"(?<![A-Za-z])([A-Za-z]{1,2})&([A-Za-z]{1,2})(?![A-Za-z])"), _ampersand_letters),
    Rule("page abbreviation", re.compile(rf"(?<![A-Za-z])pp?\.\s?(\d+)(?:\s?[-–~]\s?(\d+))?(?![\d.,A-Za-z%/:])(?!\s?(?:{SUFFIX}))"),
         lambda m: f"페이지 {m.group(1)}" + (f"에서 {m.group(2)}" if m.group(2) else "")),  # p.23을, pp. 10-15
    Rule("# before a number", re.compile(r"(?<![\w#])#(?=\d+(?![\d가-힣A-Za-z]))"), "No."),  # 빌보드 #1 → 넘버 원
    Rule("No. before a number", re.compile(r"(?<![A-Za-z])No\.\s?(?:([1-9])(?![\d가-힣A-Za-z%]|[.,]\d|\s*[-~–/:×*+=]))?(?=\d|(?<=\d))", re.IGNORECASE),
         lambda m: f"넘버 {ENGLISH_DIGITS[int(m.group(1))]}" if m.group(1) else "넘버 "),  # No.1 → 넘버 원, as said
    # 3. dates
    Rule("ISO date", re.compile(r"(?<![\d.-])(?P<y>\d{4})([-/])(?P<m>0?[1-9]|1[0-2])\2(?P<d>0?[1-9]|[12]\d|3[01])(?![\d-])"), _date),
    Rule("dotted date", re.compile(r"(?<![\d.])(?P<y>\d{4})\.\s?(?P<m>0?[1-9]|1[0-2])\.\s?(?P<d>0?[1-9]|[12]\d|3[01])(?![\d])(?:\.(?!\s*$))?"), _date),
    Rule("year and month", re.compile(rf"(?<![\d.,/-])(19[5-9]\d|20[0-3]\d)([./-])\s?(0?[1-9]|1[0-2])(\.?)(?!\d|[./-]\d|\s?=|[A-Za-z%])(?!{COUNTER})"), _year_month),
    Rule("baseball rate", re.compile(rf"((?:타율|승률|출루율|장타율|피안타율|도루 성공률)(?:은|는|이|가|을|를)?\s?)0?\.(\d{{1,3}})(?![\d.])(?!\s?(?:{SUFFIX}))"), _hal_pun_ri),
    Rule("decimal without its 0", re.compile(r"(?:(?<=^)|(?<=[\s(\[]))\.(?=\d)"), "0."),  # .5 → 0.5
    Rule("dotted month.day before a weekday", re.compile(rf"(?<![\d.])(?P<m>1[0-2]|0?[1-9])\.\s?(?P<d>[12]\d|3[01]|0?[1-9])\.?(?=\s?\(\s?[{WEEKDAYS}](?:요일)?\s?\))"),
         lambda m: f"{int(m.group('m'))}월 {int(m.group('d'))}일"),
    Rule("phone number with spaces or dots", re.compile(r"(?<![\d.-])(0\d{1,2})([ .])(\d{3,4})\2(\d{4})(?![\d-]|\.\d)"),
         lambda m: " ".join(read_digits(group) for group in (m.group(1), m.group(3), m.group(4)))),
    # context: event dates, versions, quarters, month/day with a slash
    Rule("historical event date", re.compile(rf"(?<![\d./])(?P<m>1[0-2]|0?[1-9])[./](?P<d>[12]\d|3[01]|0?[1-9])(?![\d./])(?=절|\s?[가-힣]{{0,2}}(?:{_EVENT})(?![량장화복]))"), _event_date),
    Rule("event date with a middle dot", re.compile(r"(?<![\d·])(?P<m>1[0-2]|[1-9])·(?P<d>[12]\d|3[01]|[1-9])(?![\d·])"), _event_date),
    Rule("v + version", re.compile(r"(?<![A-Za-z])[vV]\.?\s?(\d+(?:\.\d+)+)(?![\d.]\d)"), lambda m: "브이 " + _version_components(m.group(1))),
    Rule("version with three parts", re.compile(START + r"(\d+(?:\.\d+){2,})(?![\d.]\d)"), lambda m: _version_components(m.group(1))),
    Rule("version after 버전 or a name", re.compile(START + r"(\d+\.\d+)(?![\d.]\d)"), _cued_version),
    Rule("quarter", re.compile(START + r"([1-4])\s?/\s?4\s?분기"), _quarter),
    Rule("round the clock", re.compile(START + r"24/7(?![\d/]|[.,]\d)"), "이십사 칠"),
    Rule("blood pressure", re.compile(r"(?<=혈압)([^\d]{0,6}?)(\d{2,3})\s?/\s?(\d{2,3})(?![\d/])"),
         lambda m: f"{m.group(1)}{sino_korean(int(m.group(2)))}에 {sino_korean(int(m.group(3)))}"),
    Rule("month/day with a slash", re.compile(START + r"(?P<m>1[0-2]|0?[1-9])/(?P<d>3[01]|[12]\d|0?[1-9])(?![\d/])"), _slash_date),
    Rule("range of weekdays", re.compile(rf"(?<![가-힣])([{WEEKDAYS}])(?:요일)?\s?[~–-]\s?([{WEEKDAYS}])(?:요일)?(?![가-힣](?<![까에은는도만]))"), r"\1요일에서 \2요일"),
    Rule("weekday in brackets after a date", re.compile(rf"(?<=\d일)\s?\(\s?([{WEEKDAYS}])(?:요일)?\s?\)(\s*[~–]\s*)?"), _weekday),
    # 4. phone numbers and codes
    Rule("phone number", re.compile(r"(?<![\d-])0\d{1,2}-\d{3,4}-\d{4}(?![\d-])"), _digit_groups),
    Rule("country calling code", re.compile(r"(?<![\w+])\+(\d{1,3})[\s-](?=\d{1,4}[\s-]\d{3,4}[\s-]\d{4}(?!\d))"),
         lambda m: f"플러스 {read_digits(m.group(1))} "),
    Rule("service number", re.compile(r"(?<![\d-])1[568]\d\d-\d{4}(?![\d-])(?!\s?년)"), _digit_groups),
    Rule("bare mobile number", re.compile(r"(?<!\d)(01[016789])(\d{3,4})(\d{4})(?!\d)"), _bare_mobile),
    Rule("local number or registration number", re.compile(r"(?<![\d-])(?:\d{3}-\d{4}|\d{6}-\d[\d*]{6})(?![\d-])"), _digit_groups),
    Rule("digit code", re.compile(r"(?<![\d-])\d+(?:-\d+){2,}(?![\d-])"), _digit_groups),
    Rule("hyphenated code", re.compile(rf"(?<![\d.,-])\d+-0\d+(?![\d.,-])(?!\s*=)(?!\s?(?:{SUFFIX}))"), _digit_groups),
    Rule("emergency number", re.compile(rf"(?<![A-Za-z\d.,+~–:/×=-])(?<![-~–/:×*+=]\s)11[249](?![A-Za-z\d.,:/~–-])(?!\s*[-~–/:×*+=])(?!\s?(?:{SUFFIX}))"), _emergency_number),
    Rule("number after 번호 or 코드", re.compile(rf"((?:번호|코드|내선|계좌|PIN|OTP|\(우\)|(?<![가-힣])우\s?:)(?:는|은|:)?\s?[\[(]?\s?)(\d{{4,}})(?![\d.,])(?!\s*[-~–/:×*+=x])(?!\s?(?:{SUFFIX}))"),
         lambda m: m.group(1) + read_digits(m.group(2))),
    Rule("middle-dot digits", re.compile(START + r"\d+(?:·\d+)+"), _middle_dot_digits),
    # powers: 10^8, 10⁸ → 십의 팔 제곱; x⁴ → x 사 제곱 (as x² → 엑스 제곱)
    Rule("power", re.compile(rf"{START}({NUM})\s?\^\s?(-?\d{{1,3}})(?!\d)"), lambda m: f"{read_number(m.group(1))}의 {_exponent(m.group(2))} 제곱"),
    Rule("power of a letter", re.compile(r"(?<![A-Za-z])([A-Za-z])\^(-?\d{1,3})(?!\d)"), lambda m: f"{m.group(1)} {_exponent(m.group(2))} 제곱"),
    # addresses: 12-3번지, 한빛로 73-2, 역삼동 123-45, 산 12-3
    Rule("lot number", re.compile(r"(?<![\d.,-])(\d{1,5})-(\d{1,4})(?![\d:/-]|[.,]\d)(?![A-Za-z])(\s?번지)?"), _lot_number),
    # 5. ranges
    Rule("approximate count", re.compile(rf"(?<![\d,.])([1-8]),([2-9])(\s?)({_alternation(_ALL_COUNTERS - {'분의'})})"), _approximate_count),
    Rule("range, counter on the second number", re.compile(rf"{START}({NUM})\s*[~–-]\s*((?:(?<=[~–])|(?<=[~–]\s))[-+])?({NUM})({SUFFIX})"), _range_with_counter),
    Rule("range of years", re.compile(r"(?<![\d.,-])(1[5-9]\d\d|20\d\d)\s?[-–]\s?(1[5-9]\d\d|20\d\d)(?![\d.,-])(?!\s*=)"), _year_range),
    Rule("range of times", re.compile(r"(?<=\d:\d\d)\s*-\s*(?=\d{1,2}:\d\d)"), "에서 "),
    Rule("range", re.compile(rf"(?<=\d)([가-힣%°℃A-Za-z]{{0,4}})\s*[~–]\s*(?=(?:{_TIME_OF_DAY})?[-+]?[\d$₩€£¥])"), r"\1에서 "),
    # 6. times
    Rule("time-of-day word glued to the hour", re.compile(r"(?<=오전|오후|새벽|아침|저녁)(?=\d{1,2}(?::\d\d|\s?시))|(?<=[낮밤])(?=\d{1,2}\s?시)"), " "),  # 오전9시
    Rule("am/pm before a time", re.compile(r"(?<![A-Za-z])([AaPp])\.?[Mm]\.?\s?(?=\d{1,2}(?::\d\d|\s?시))"), lambda m: "오전 " if m.group(1) in "Aa" else "오후 "),
    Rule("clock time", re.compile(r"(?<![\d:])(?P<h>\d{1,2}):(?P<min>[0-5]\d)(?::(?P<s>[0-5]\d))?(?![\d:]|,\d{3})(?:\s?(?P<ampm>[AaPp])\.?[Mm]\.?(?![A-Za-z])|분)?"), _time),
    Rule("hour with am/pm", re.compile(r"(?<![\d:])(?P<h>\d{1,2})\s?(?P<ampm>[AaPp])\.?[Mm]\.?(?![A-Za-z])(?P<min>)(?P<s>)"), _time),
    Rule("a.m./p.m.", re.compile(r"(?<![A-Za-z])([AaPp])\.[Mm]\.?(?![A-Za-z])"), lambda m: "오전" if m.group(1) in "Aa" else "오후"),
    # 7-8. money and units
    Rule("temperature", re.compile(rf"(영[하상]\s?)?(?<![^\s(\[하상])([-+])({NUM})\s?(?:도|℃|°C)"), _temperature),
    Rule("times", re.compile(rf"(?<=\d)\s*[×*]\s*(?=\d)|(?<=\d)(?:[xX]|\s[xX]\s)(?=\d+(?:\.\d+)?(?:{UNIT})?(?![A-Za-z]))"), " 곱하기 "),
    Rule("English scale word", re.compile(rf"{START}({NUM})\s(thousand|million|billion|trillion)(?![A-Za-z])", re.IGNORECASE), _english_scale),
    Rule("currency sign with K, M or B", re.compile(rf"([{''.join(CURRENCY_SIGNS)}])\s?({NUM})(K|M|B|bn)(?![A-Za-z])"), _money_with_scale_letter),
    Rule("currency code", re.compile(rf"(?<![A-Za-z])({'|'.join(_CURRENCY_CODES)})\s?({NUM})(?![\d.,]\d|[\dA-Za-z%/:~–-])(?!\s?(?:{SUFFIX}))|{START}({NUM})\s?({'|'.join(_CURRENCY_CODES)})(?![A-Za-z])"), _currency_code),
    Rule("currency sign", re.compile(rf"([{''.join(CURRENCY_SIGNS)}])\s?({NUM})((?:{MAGNITUDE})?)"), _money),
    Rule("unit per unit", re.compile(rf"{START}({NUM})\s?({UNIT}|원|달러)\s?/\s?({PER_UNIT})(?![A-Za-z0-9²³/])"), _unit_per_unit),
    Rule("unit", re.compile(rf"{START}(?:(?<![^\s(\[])([-+]))?({NUM})\s?({UNIT})(?![A-Za-z0-9²³/])"), _unit),
    # 9. arithmetic between numbers
    Rule("equation", re.compile(rf"{START}-?{NUM}(?:\s*{_OPERATOR}\s*-?{NUM})+\s*=\s*(?:-?{NUM}(?:\s*{_OPERATOR}\s*-?{NUM})*|\?)(?![\d.,]\d)"), _equation),
    Rule("score with a hyphen", re.compile(START + r"(\d{1,3})\s?-\s?(\d{1,3})(?![\d.,:/-])(?![A-Za-z])"), _hyphen_score),
    Rule("buy-N-get-M offer", re.compile(START + r"([1-9])\s?\+\s?([1-9])(?![\d=])(?!\s*=)"), _offer),
    Rule("fraction", re.compile(START + r"(\d+)/(\d+)(?![\d/])"), _fraction),
    Rule("letters, hyphen, one digit", re.compile(r"(?<![A-Za-z\d-])([A-Za-z]+)-(\d)(?![\d.,]\d|[\d-])(?![A-Za-z])"),
         lambda m: f"{m.group(1)} {ENGLISH_DIGITS[int(m.group(2))]}"),  # GPT-4 → GPT 포, as GPT4
    Rule("hyphen in a model name", re.compile(r"(?<![A-Za-z\d])([A-Za-z][A-Za-z\d]*\d)-(?=\d)"), r"\1 "),  # i7-13700K, DDR5-6400
    Rule("divided by", re.compile(r"(?<=\d)\s*÷\s*(?=\d)"), " 나누기 "),
    Rule("minus between numbers", re.compile(r"(?<=\d)\s*-\s*(?=\d)"), " 마이너스 "),
    Rule("plus between numbers", re.compile(r"(?<=\d)\s*\+\s*(?=\d)"), " 플러스 "),
    Rule("negative number", re.compile(r"(?<![^\s(\[=])-(?=\d)"), "마이너스 "),
    Rule("positive number", re.compile(r"(?<![^\s(\[=])\+(?=\d)"), "플러스 "),
    Rule("ratio", re.compile(rf"{START}({NUM})\s*:\s*({NUM}){END}"), _ratio),
    Rule("ratio with 대", re.compile(rf"{START}({NUM})\s?대\s?({NUM})(?![\d.,]\d)(?![A-Za-z])(?!\s?(?:{MAGNITUDE}|{COUNTER}|{UNIT}))"), _ratio_dae),
    # 10-12. ordinals, counters, magnitudes
    Rule("generation", re.compile(rf"(?<![\d.,])([1-8]0)([2-9]0)(?![\d.,])(?=\s?(?:{_alternation(GENERATION_CUES)}))"),
         lambda m: read_digits(m.group(0)) if int(m.group(2)) == int(m.group(1)) + 10 else m.group(0)),
    Rule("제 after an article number", re.compile(r"(?<=\d[조항호목장절편관])(?=제\s?\d)|(?<=\d조의\d)(?=제\s?\d)"), " "),  # 제2조제1항
    Rule("제 + number", re.compile(rf"(?<![가-힣])제\s?{START}({NUM})(?:\s?({COUNTER}))?"), _ordinal_je),
    Rule("number + counter", re.compile(rf"{START}({NUM})(\s?)({COUNTER})"), _counter),
    Rule("number + 만/억/조", re.compile(rf"{START}({NUM})({MAGNITUDE})(?:\s?({COUNTER}))?"), _magnitude),
    Rule("video resolution", re.compile(START + r"(\d{3,4})p(?![A-Za-z\d])"), lambda m: f"{read_number(m.group(1))} 피"),
    Rule("model number", re.compile(r"(?<![A-Za-z])([A-Za-z]+|보잉|에어버스)\s(\d{3,4})(?![\d.,:])"), _model_number),
    # 13. plain numbers
    Rule("letters joined to a decimal", re.compile(r"(?<=[A-Za-z])(?=\d+\.\d+(?![\d.]*\d))"), " "),  # PM2.5 → PM 2.5
    Rule("decimal joined to letters", re.compile(START + r"(\d+\.\d+)(?=[A-Za-z])"), r"\1 "),  # 1.5x → 1.5 x
    Rule("plain number", re.compile(START + NUM + END), _plain_number),
    # 14. Latin
    Rule("web address dot", re.compile(r"(?<=[A-Za-z])\.(?=[A-Za-z])"), " 닷 "),
    Rule("Latin word", re.compile(r"[A-Za-z\d]*[A-Za-z][A-Za-z\d]*(?:'[A-Za-z]+)*"), _latin),
    Rule("leftover digits", re.compile(r"\d+"), _plain_number),
    # 15. symbols
    Rule("equals", re.compile(r"\s*=\s*"), _with_particle),
    Rule("spoken symbol", re.compile("[" + re.escape("".join(_SYMBOL_WORDS)) + "]"), lambda m: f" {_SYMBOL_WORDS[m.group(0)]} "),
    Rule("stray tilde", re.compile(r"~+"), _stray_tilde),
    Rule("silent separator", re.compile("[" + re.escape(_SILENT_SEPARATORS) + "]"), " "),
)  # fmt: skip

# ---------------------------------------------------------------------------
# Step 16: compatibility jamo; then the unreadable-character policy
# ---------------------------------------------------------------------------

_ONSETS = "ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ"
_CLUSTERS = {"ㄳ": "ㄱㅅ", "ㄵ": "ㄴㅈ", "ㄶ": "ㄴㅎ", "ㄺ": "ㄹㄱ", "ㄻ": "ㄹㅁ", "ㄼ": "ㄹㅂ",
             "ㄽ": "ㄹㅅ", "ㄾ": "ㄹㅌ", "ㄿ": "ㄹㅍ", "ㅀ": "ㄹㅎ", "ㅄ": "ㅂㅅ"}  # fmt: skip
_VOWELS = "ㅏㅐㅑㅒㅓㅔㅕㅖㅗㅘㅙㅚㅛㅜㅝㅞㅟㅠㅡㅢㅣ"
_EU = _VOWELS.index("ㅡ")
_SILENT_IEUNG = _ONSETS.index("ㅇ")


def _syllable(onset: int, vowel: int) -> str:
    return chr(0xAC00 + (onset * 21 + vowel) * 28)


def _read_jamo(char: str) -> str:
    """ㅋ → 크, ㅠ → 유, ㄳ → 그스; other characters unchanged."""
    if char in _CLUSTERS:
        return "".join(_read_jamo(c) for c in _CLUSTERS[char])
    if char in _ONSETS:
        return _syllable(_ONSETS.index(char), _EU)
    if char in _VOWELS:
        return _syllable(_SILENT_IEUNG, _VOWELS.index(char))
    return char


def _is_readable(char: str) -> bool:
    return "가" <= char <= "힣" or char == " " or char in KEPT_PUNCTUATION


def _drop_unreadable(text: str, original: str, strict: bool) -> str:
    unreadable = list(dict.fromkeys(c for c in text if not _is_readable(c)))
    if not unreadable:
        return text
    if strict:
        raise UnreadableTextError(unreadable, original)
    shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in unreadable)
    warnings.warn(
        f"dropped characters that cannot be read aloud: {shown} in {original[:80]!r}",
        UnreadableTextWarning,
        stacklevel=3,
    )
    kept = "".join(c for c in text if _is_readable(c))
    return re.sub(r"\(\s*\)|\[\s*\]", "", kept)  # brackets left empty by the drop


def normalize(text: str, *, strict: bool = False) -> str:
    """Spell out digits, Latin letters, units and symbols in Hangul.

    >>> normalize("오늘은 2026년 11월 21일, 사과 3개에 4,500원이에요.")
    '오늘은 이천이십육 년 십일월 이십일 일, 사과 세 개에 사천오백 원이에요.'

    Characters that still cannot be read (emoji, Chinese characters, other
    scripts) are dropped with an ``UnreadableTextWarning``, or with
    ``strict=True`` raise ``UnreadableTextError``.
    """
    result = _prepare(text)
    for rule in _RULES:
        result = rule.apply(result)
    result = "".join(_read_jamo(c) for c in result)
    result = _drop_unreadable(result, text, strict)
    return re.sub(r"\s+", " ", result).strip()
