"""Pronunciation rules that depend on morphemes (표준 발음법), applied before the sound rules.

MeCab (mecab-ko with mecab-ko-dic, the analyser ko-speech-tools uses) splits each eojeol into
morphemes; its dictionary also splits compounds (맨입 → 맨/NNG + 입/NNG). At each boundary
inside an eojeol, never across a space:

- 제15항: a coda before a *content* morpheme beginning with ㅏㅓㅗㅜㅟ is neutralised to its
  representative sound, then linked (첫아들 → 처다들, 값없다 → 가법다), unlike a coda before
  a particle or an ending (제13·14항), which links as it is. A stem ending in 없- after a
  syllable with a coda (덧없-) is split there: mecab-ko-dic lists such stems as one.
- 제16항: the letter names 디귿 지읒 치읓 키읔 티읕 피읖 히읗 before a particle beginning
  with a vowel link [ㅅ] [ㄱ] [ㅂ] (지읒이 → 지으시).
- 제29항 and 제30항: before a content morpheme or a suffix beginning with 이 야 여 요 유, an
  ㄴ is inserted ([ㄹ] after ㄹ); the sound rules then nasalise the coda (꽃잎 → 꼰닙) and
  사이시옷 becomes [ㄴ] (나뭇잎 → 나문닙). Second elements that take no ㄴ (-인 人, -요일,
  -일 日 after two or more syllables: 기념일) and whole exceptions come from
  ``data/no_n_insertion.tsv``; Sino-Korean numerals take none (이천이십); reduplicated adverbs are split
  into their halves (유들유들 → 유들류들). Across a space only for phrases said as one
  (제29항 붙임 2, see ``_insert_n_across_space``), and no consonant crosses the space.
- 제20항 다만: ㄴ before a Sino-Korean suffix beginning with ㄹ stays [ㄴ] and the ㄹ is
  read [ㄴ] (생산 + 량 → 생산냥).
- 제26항: inside a noun, ㄷ ㅅ ㅈ after a coda ㄹ is tensed (물질 → 물찔), except between
  two identical syllables (허허실실, 절절하다) and before 드/스/즈, which no Sino-Korean
  syllable is (loanwords: 골드). This is the Sino-Korean rule applied to every noun: the
  dictionary does not mark word origin, and native nouns with ㄹ+ㄷㅅㅈ are mostly tensed
  too (물소 [물쏘], 술잔 [술짠]).
- Lexical tensification: words whose dictionary pronunciation has a tense onset no rule
  predicts (사건 [사껀], 문법 [문뻡]) come from ``data/tensification.tsv``, with sources.

python-mecab-ko was compared and not adopted: it ships the same mecab-ko-dic, tags the verb
stems of 제24항 the same way, and its dictionary package installs over this one's
``mecab_ko_dic/__init__.py`` (the two cannot be installed together).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

_DATA = Path(__file__).resolve().parent / "data"
_FIRST, _LAST = 0xAC00, 0xD7A3

# Onset indices (ㄱㄲㄴㄷㄸㄹㅁㅂㅃㅅㅆㅇㅈㅉㅊㅋㅌㅍㅎ), vowel and coda indices of Unicode syllables.
_ONSET_NIEUN, _ONSET_RIEUL, _ONSET_IEUNG = 2, 5, 11
_TENSE_ONSET = {0: 1, 3: 4, 7: 8, 9: 10, 12: 13}
_CODA_RIEUL, _CODA_IEUNG = 8, 21
# 제15항: a coda's representative sound, as the onset it links as.
_LINKED_REPRESENTATIVE = {
    1: 0, 2: 0, 24: 0, 3: 0, 9: 0,  # ㄱ ㄲ ㅋ ㄳ ㄺ → ㄱ
    4: 2, 5: 2, 6: 2,  # ㄴ ㄵ ㄶ → ㄴ
    7: 3, 19: 3, 20: 3, 22: 3, 23: 3, 25: 3, 27: 3,  # ㄷ ㅅ ㅆ ㅈ ㅊ ㅌ ㅎ → ㄷ
    8: 5, 11: 5, 12: 5, 13: 5, 15: 5,  # ㄹ ㄼ ㄽ ㄾ ㅀ → ㄹ
    16: 6, 10: 6,  # ㅁ ㄻ → ㅁ
    17: 7, 26: 7, 18: 7, 14: 7,  # ㅂ ㅍ ㅄ ㄿ → ㅂ
}
_VOWELS_LINK_NEUTRALISED = {0, 4, 8, 13, 16}  # ㅏ ㅓ ㅗ ㅜ ㅟ
_VOWELS_TAKING_N = {20, 2, 6, 12, 17}  # ㅣ ㅑ ㅕ ㅛ ㅠ
# 제16항: the names of ㄷ ㅈ ㅊ ㅋ ㅌ ㅍ ㅎ, and the onset each one's coda links as.
_LETTER_NAME_LINK = {"디귿": 9, "지읒": 9, "치읓": 9, "키읔": 0, "티읕": 9, "피읖": 7, "히읗": 9}
_CONTENT_LEFT = {"NNG", "NNP", "NR", "MM", "XPN", "MAG"}
_CONTENT_RIGHT = {"NNG", "NR", "VV", "VA", "MAG"}  # not NNP: unknown words split there
_NOT_SINO_KOREAN = {"드", "스", "즈"}
# The adverbs that are said as one phrase with the verb after them (잘 입다, 못 잊다, 안 읽다).
_CLITIC_ADVERBS = frozenset({"잘", "못", "안"})
# 제20항 다만: Sino-Korean suffixes beginning with ㄹ (欄 量 力 令 例 路 論 料 類 率) read [ㄴ]
# after a word ending in ㄴ (결단력 [결딴녁], 생산량 [생산냥]), where 유음화 would give [ㄹㄹ].
_SUFFIXES_KEEPING_NIEUN = frozenset("란량력령례로론료류률")
_CODA_NIEUN = 4
# Sino-Korean numerals take no inserted ㄴ (이천이십 [이처니십]; 육 is pronounce.py's); native
# ones do (열여섯 [열려섣], 열일곱 [열릴곱]).
_SINO_NUMERAL_SYLLABLES = frozenset("영일이삼사오육칠팔구십백천만억조경")


@dataclass
class Morpheme:
    surface: str
    tag: str
    start: int  # offset of the first character in the line
    part: bool = False  # a piece of a compound or of a split word, not a whole token

    @property
    def end(self) -> int:
        return self.start + len(self.surface)


def _split(ch: str) -> tuple[int, int, int] | None:
    code = ord(ch)
    if not _FIRST <= code <= _LAST:
        return None
    code -= _FIRST
    return code // 588, (code % 588) // 28, code % 28


def _join(onset: int, vowel: int, coda: int) -> str:
    return chr(_FIRST + onset * 588 + vowel * 28 + coda)


def annotate_with_rules(line: str, tagger: Any) -> str | None:
    """``line`` with the morpheme rules applied and ko-speech-tools' morpheme annotation
    (/P /J /E /B) added, as its ``annotate`` writes it; None when MeCab's morphemes do not
    line up with the text (the caller then falls back to the plain annotation)."""
    tokens = _parse(line, tagger)
    if tokens is None:
        return None
    chars = list(line)
    morphemes = [part for token in tokens for part in _parts(token)]
    for token in tokens:
        _apply_tensification(chars, token)
    for left, right in zip(morphemes, morphemes[1:]):
        if left.end == right.start:
            _apply_boundary(chars, line, left, right)
        elif line[left.end : right.start] == " ":
            _insert_n_across_space(chars, left, right)
    return _annotated(chars, tokens)


def _parse(line: str, tagger: Any) -> list[tuple[Morpheme, str, str]] | None:
    """(morpheme, kind, expression) per MeCab token, placed on ``line``."""
    tokens = []
    position = 0
    for row in tagger.parse(line).split("\n"):
        if row == "EOS" or not row:
            break
        surface, _, features = row.partition("\t")
        fields = features.split(",")
        while position < len(line) and line[position].isspace():
            position += 1
        if line[position : position + len(surface)] != surface or len(fields) < 8:
            return None
        tokens.append((Morpheme(surface, fields[0], position), fields[4], fields[7]))
        position += len(surface)
    if line[position:].strip():
        return None
    return tokens


def _parts(token: tuple[Morpheme, str, str]) -> list[Morpheme]:
    """A token split into the morphemes a rule sees at its boundaries."""
    morpheme, kind, expression = token
    if kind == "Compound":
        pieces = [piece.split("/") for piece in expression.split("+")]
        if all(len(piece) >= 2 for piece in pieces) and "".join(p[0] for p in pieces) == morpheme.surface:
            parts, start = [], morpheme.start
            for piece in pieces:
                parts.append(Morpheme(piece[0], piece[1], start, part=True))
                start += len(piece[0])
            return parts
        return [morpheme]
    if morpheme.tag == "MAG" and _is_reduplication(morpheme.surface):
        half = len(morpheme.surface) // 2
        return [
            Morpheme(morpheme.surface[:half], "MAG", morpheme.start, part=True),
            Morpheme(morpheme.surface[half:], "MAG", morpheme.start + half, part=True),
        ]
    if morpheme.tag in {"VA", "VV", "MAG"}:
        return _split_existential(morpheme)
    return [morpheme]


def _is_reduplication(word: str) -> bool:
    half = len(word) // 2
    return len(word) >= 4 and len(word) % 2 == 0 and word[:half] == word[half:]


def _split_existential(morpheme: Morpheme) -> list[Morpheme]:
    """덧없-, 상관없이: a noun with a coda + 없- is split before 없. (맛있다, 멋있다 are left
    to plain linking: [마싣따] is the other reading the standard allows and the usual one.)"""
    word = morpheme.surface
    for index in range(1, len(word)):
        syllable = _split(word[index - 1])
        if word[index] == "없" and syllable and syllable[2]:
            return [
                Morpheme(word[:index], "NNG", morpheme.start, part=True),
                Morpheme(word[index:], morpheme.tag, morpheme.start + index, part=True),
            ]
    return [morpheme]


def _apply_boundary(chars: list[str], line: str, left: Morpheme, right: Morpheme) -> None:
    last, first = _split(chars[left.end - 1]), _split(chars[right.start])
    if last is None or first is None or not last[2]:
        return
    if first[0] == _ONSET_RIEUL:
        _keep_nieun_before_suffix(chars, left, right, last[2])
    if first[0] != _ONSET_IEUNG:
        return
    onset, vowel, coda = last
    if left.surface in _LETTER_NAME_LINK and right.tag.startswith("J"):
        chars[left.end - 1] = _join(onset, vowel, 0)
        chars[right.start] = _join(_LETTER_NAME_LINK[left.surface], first[1], first[2])
        return
    if left.tag not in _CONTENT_LEFT:
        return
    if right.tag in _CONTENT_RIGHT and first[1] in _VOWELS_LINK_NEUTRALISED:
        if coda != _CODA_IEUNG:
            chars[left.end - 1] = _join(onset, vowel, 0)
            chars[right.start] = _join(_LINKED_REPRESENTATIVE[coda], first[1], first[2])
        return
    takes_n = right.tag in _CONTENT_RIGHT or (right.tag == "XSN" and right.surface != "이")
    if takes_n and first[1] in _VOWELS_TAKING_N and not _blocks_n_insertion(line, left, right):
        new_onset = _ONSET_RIEUL if coda == _CODA_RIEUL else _ONSET_NIEUN
        chars[right.start] = _join(new_onset, first[1], first[2])


def _keep_nieun_before_suffix(chars: list[str], left: Morpheme, right: Morpheme, coda: int) -> None:
    """제20항 다만: 결단 + 력 → 결단녁, not 결딸력."""
    if coda != _CODA_NIEUN or len(left.surface) < 2 or right.tag not in {"NNG", "XSN"}:
        return
    if right.surface[0] in _SUFFIXES_KEEPING_NIEUN:
        onset, vowel, final = _split(chars[right.start])
        chars[right.start] = _join(_ONSET_NIEUN, vowel, final)


def _insert_n_across_space(chars: list[str], left: Morpheme, right: Morpheme) -> None:
    """제29항 붙임 2: two words said as one phrase take the inserted ㄴ too (옷 입다 [온닙따],
    할 일 [할릴], 먹은 엿 [머근녇], 잘 입다 [잘립따], 서른 여섯 [서른녀섣]).

    No consonant crosses the space: the right word's onset becomes [ㄴ]/[ㄹ] and the left
    word's coda assimilates in place, as 비음화 does across spaces. Phrases taken: a modifier
    (관형사, -ㄴ/-ㄹ) before a one-syllable noun, a bare noun or 잘/못/안 before a verb or
    adjective (not 있-), and two native numerals. A longer noun after a modifier is usually
    linked instead (새로운 영화 [새로우녕화]), and other adverbs are said apart (물론 읽었지만),
    so those are left alone.
    """
    last, first = _split(chars[left.end - 1]), _split(chars[right.start])
    if last is None or first is None or not last[2] or first[0] != _ONSET_IEUNG:
        return
    if first[1] not in _VOWELS_TAKING_N:
        return
    if left.part or right.part:
        return
    left_tag, right_tag = left.tag.split("+")[-1], right.tag.split("+")[0]
    verb = right_tag in {"VV", "VA"} and not right.surface.startswith("있")
    phrase = (
        (left_tag in {"ETM", "MM"} and right_tag == "NNG" and len(right.surface) == 1)
        or (left_tag == "NNG" and verb)
        or (left_tag == "MAG" and left.surface in _CLITIC_ADVERBS and verb)
        or (left_tag == right_tag == "NR" and not set(right.surface) <= _SINO_NUMERAL_SYLLABLES)
    )
    if phrase:
        new_onset = _ONSET_RIEUL if last[2] == _CODA_RIEUL else _ONSET_NIEUN
        chars[right.start] = _join(new_onset, first[1], first[2])


def _blocks_n_insertion(line: str, left: Morpheme, right: Morpheme) -> bool:
    """A Sino-Korean numeral, or an exception of ``data/no_n_insertion.tsv``."""
    seconds, after_polysyllable, words = _no_n_insertion()
    if right.tag == "NR" and set(right.surface) <= _SINO_NUMERAL_SYLLABLES:
        return True
    if right.surface in seconds:
        return True
    if right.surface in after_polysyllable and len(left.surface) >= 2:
        return True
    start = right.start
    return any(
        line[start - k : start - k + len(word)] == word for word in words for k in range(1, len(word))
    )


def _apply_tensification(chars: list[str], token: tuple[Morpheme, str, str]) -> None:
    morpheme = token[0]
    lexicon = _tensification()
    if morpheme.surface in lexicon:
        chars[morpheme.start : morpheme.end] = list(lexicon[morpheme.surface])
        return
    for part in _parts(token):
        if part.surface in lexicon:
            chars[part.start : part.end] = list(lexicon[part.surface])
    if morpheme.tag in {"NNG", "XR"}:
        _tense_after_rieul(chars, morpheme)


def _tense_after_rieul(chars: list[str], morpheme: Morpheme) -> None:
    """제26항: ㄹ + ㄷ ㅅ ㅈ inside a noun."""
    for index in range(morpheme.start, morpheme.end - 1):
        here, after = _split(chars[index]), _split(chars[index + 1])
        if here is None or after is None or here[2] != _CODA_RIEUL or after[0] not in (3, 9, 12):
            continue
        if chars[index + 1] == chars[index] or chars[index + 1] in _NOT_SINO_KOREAN:
            continue
        chars[index + 1] = _join(_TENSE_ONSET[after[0]], after[1], after[2])


def _annotated(chars: list[str], tokens: list[tuple[Morpheme, str, str]]) -> str:
    """ko-speech-tools' ``annotate``, on our (edited) characters and the same tokens."""
    tags = [""] * len(chars)
    for morpheme, _kind, _expression in tokens:
        tag = morpheme.tag.split("+")[-1]
        tags[morpheme.end - 1] = "B" if tag == "NNBC" else tag[0]
    out = []
    for char, tag in zip(chars, tags, strict=True):
        out.append(char)
        syllable = _split(char)
        coda = chr(0x11A7 + syllable[2]) if syllable and syllable[2] else ""
        if char == "의" and tag == "J":
            out.append("/J")
        elif tag == "E" and coda == "ᆯ":
            out.append("/E")
        elif tag == "V" and coda and coda in "ᆫᆬᆷᆱᆰᆲᆴ":
            out.append("/P")
        elif tag == "B":
            out.append("/B")
    return "".join(out)


@lru_cache(maxsize=1)
def _tensification() -> dict[str, str]:
    lexicon = {}
    for row in _rows("tensification.tsv"):
        word, spoken = row[0], row[1]
        if len(word) != len(spoken):
            raise ValueError(f"tensification.tsv: {word} and {spoken} differ in length")
        lexicon[word] = spoken
    return lexicon


@lru_cache(maxsize=1)
def _no_n_insertion() -> tuple[frozenset[str], frozenset[str], frozenset[str]]:
    kinds: dict[str, set[str]] = {"second": set(), "second_after_polysyllable": set(), "word": set()}
    for kind, item, *_source in _rows("no_n_insertion.tsv"):
        if kind not in kinds:
            raise ValueError(f"no_n_insertion.tsv: unknown kind {kind!r}")
        kinds[kind].add(item)
    return tuple(frozenset(kinds[kind]) for kind in ("second", "second_after_polysyllable", "word"))


def _rows(name: str) -> list[list[str]]:
    lines = (_DATA / name).read_text(encoding="utf-8").splitlines()
    return [line.split("\t") for line in lines if line.strip() and not line.startswith("#")]
