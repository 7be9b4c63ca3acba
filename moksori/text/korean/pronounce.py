"""Korean standard pronunciation (표준 발음법) as Hangul syllables.

The rules come from ko-speech-tools' G2p (a g2pK descendant): its morphological
annotation (MeCab), idiom list, special rules, coda×onset rule table and liaison.
We run those steps ourselves instead of calling ``G2p()(text)`` because:

- Numbers and Latin letters must never reach G2p's own converters (its number reading
  is weak: 20세기 → 이영세기). ``normalize`` spells them out first, so those steps
  are skipped.
- A space never moves. G2p links a coda across a space (오늘은 이천 → 오느르 니천,
  옷 한 벌 → 오 탄 벌). Standard pronunciation only links across words for some
  content words said as one phrase, and a reader may pause there; the word-boundary
  token is a prosody cue for the acoustic model, so the coda stays on its own side,
  reduced to its representative sound as before any boundary (꽃 위 → 꼳 위).
  Rules that change a sound but leave it on its side are kept across spaces, as the
  standard allows for phrases: 비음화 (밥 먹는다 → 밤 멍는다), 경음화 after the
  ㄹ-modifier (할 수 → 할 쑤) and after obstruents (책 가방 → 책 까방).
  Within an eojeol every rule applies, with MeCab's context.
- Three fixes where the library goes wrong: 육 after a numeral with a coda takes an
  inserted ㄴ (십육 → 심뉵, 이천이십육 → 이처니심뉵; the library gives 시븅), which
  matters because normalize writes every number this way; 밟- before a consonant
  reads [밥] (밟고 → 밥꼬, 제10항) and 넓- in 넓죽하다/넓둥글다 reads [넙]; the
  library's own regexes for these two use a precomposed 바/너 and never match
  decomposed text.
- Rules that need morphemes (제15·16·26·29·30항 and lexical tensification) run in
  ``morphemes.py`` on MeCab's analysis, before the library's sound rules; the library's
  idiom list (whole words replaced by their pronunciation) is kept only for the entries the
  rules do not get right (see ``_idioms``).

Known differences from the standard: no liaison across words (꽃 위 → 꼳 위 for [꼬뒤],
돈 있어 → 돈 이써 for [도니써]; see above), and across-word 유음화 of ㄴ+ㄹ is applied
(한 라운드 → 할 라운드); ㄹ+ㄴ across words is [ㄹㄹ] only after a number (일 년 → 일 련; 물 나오는
keeps 물 나오는). ㄴ-insertion across words is done where it moves nothing
(옷 입다 → 온 닙따, 제29항 붙임 2).
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache

from ko_speech_tools.g2p import special
from ko_speech_tools.g2p.g2p import G2p
from ko_speech_tools.g2p.regular import link1, link2, link4
from ko_speech_tools.g2p.utils import annotate, compose
from ko_speech_tools.jamo import h2j

from moksori.text.korean.morphemes import annotate_with_rules

# The library's special rules in its order, minus its broken 밟 rule (ours below).
_SPECIAL_RULES = (
    special.jyeo,
    special.ye,
    special.consonant_ui,
    special.josa_ui,
    special.vowel_ui,
    special.jamo,
    special.rieulgiyeok,
    special.rieulbieub,
    special.verb_nieun,
    special.palatalize,
    special.modifying_rieul,
)
_ANNOTATION_TAG = re.compile("/[PJEB]")
# 밟 (decomposed, optionally tagged as a predicate) before anything but a vowel or ㅎ.
_BALB = re.compile("(\u1107\u1161)\u11b2(/P)?(?=$|[^\u110b\u1112/])")
# 넓 before 죽/쭉/둥/뚱 (넓죽하다, 넓둥글다).
_NEOLB = re.compile("(\u1102\u1165)\u11b2(?=[\u110c\u110d\u1103\u1104]\u116e)")
# 육 right after a numeral syllable with a coda: 십육, 백육, 천육, 만육, 억육, 조육.
_NUMERAL_YUK = re.compile("(?<=[십백천만억조])육")
_SPACE_IN_PATTERN = "( ?)"

_lock = threading.Lock()
_mecab_lock = threading.Lock()  # one MeCab tagger is shared; don't trust it across threads
_g2p: G2p | None = None


def pronounce(text: str, *, strict: bool = False) -> str:
    """Normalise ``text`` (numbers, Latin letters, symbols → Hangul), then apply the
    standard pronunciation rules; sentence punctuation and word spacing are kept."""
    from moksori.text.korean.normalize import normalize

    return pronounce_hangul(normalize(text, strict=strict))


def pronounce_hangul(text: str) -> str:
    """The pronunciation rules alone, for text that ``normalize`` already spelled out.

    Line breaks are kept; each line is handled on its own.
    """
    return "\n".join(_pronounce_line(line) for line in text.split("\n"))


def _pronounce_line(line: str, *, idioms: bool = True) -> str:
    if not line.strip():
        return line
    g2p = _get_g2p()
    text = _NUMERAL_YUK.sub("뉵", line)
    if idioms:
        for written, spoken in _get_g2p()._idioms:
            if written in text and _idiom_needed(written, spoken):
                text = text.replace(written, spoken)
    with _mecab_lock:
        # Morpheme rules (제15·16·26·29·30항, lexical tensification), then the annotation.
        annotated = annotate_with_rules(text, g2p.mecab)
        text = annotated if annotated is not None else annotate(text, g2p.mecab)
    jamo = h2j(text)
    jamo = _BALB.sub("\\1\u11b8\\2", jamo)
    jamo = _NEOLB.sub("\\1\u11b8", jamo)
    for rule in _SPECIAL_RULES:
        jamo = rule(jamo)
    jamo = _ANNOTATION_TAG.sub("", jamo)
    jamo = _BEFORE_NIEUN_ACROSS_WORDS.sub(_hold_nieun_after_word, jamo)
    for pattern, replacement in _rule_table():
        jamo = pattern.sub(replacement, jamo)
    jamo = jamo.replace(_HELD_SPACE, " ")
    for link in (link1, link2, link4):  # link3 (liaison across a space) left out
        jamo = link(jamo)
    return compose(jamo)


# ㄹ + ㄴ → [ㄹㄹ] (제20항) is a rule inside words. Across a space the table would also apply it
# between any two words (원을 냈어요 → 워늘 래써요, 물 나오는 → 물 라오는), where careful speech
# keeps [ㄴ]; only a Sino-Korean number before a counter is said as one word (일 년 → [일련]).
# At other ㄹ-space-ㄴ boundaries the space is held out of the table's reach.
_BEFORE_NIEUN_ACROSS_WORDS = re.compile("(\\S*\u11af) (?=\u1102)")
_NUMBER_WORD = re.compile("[일이삼사오육륙칠팔구십백천만억조]+")
_HELD_SPACE = "\u2060"  # word joiner: no table pattern has it


def _hold_nieun_after_word(match: re.Match[str]) -> str:
    word = match.group(1)
    return match.group(0) if _NUMBER_WORD.fullmatch(compose(word)) else word + _HELD_SPACE


def _get_g2p() -> G2p:
    """One G2p per process: building it loads MeCab and dictionaries (~0.3 s)."""
    global _g2p
    if _g2p is None:
        with _lock:
            if _g2p is None:
                _g2p = G2p()
    return _g2p


@lru_cache(maxsize=None)
def _idiom_needed(written: str, spoken: str) -> bool:
    """Whether our rules say the idiom ``written`` other than ``spoken`` (see :func:`_idioms`).
    Asked only for idioms found in a text: judging the whole list up front runs MeCab over every
    entry, which costs ~0.3 s and ~50 MB of its dictionary pages in every process."""
    return _pronounce_line(written, idioms=False) != spoken


@lru_cache(maxsize=1)
def _idioms() -> list[tuple[str, str]]:
    """G2p's idiom list (whole words replaced by their pronunciation, mostly the standard's
    own examples) minus the entries our rules already say right.

    Rules come first: a replaced word has lost its underlying coda, so a following vowel
    links the wrong sound (꽃잎이 → 꼰닙이 → 꼰니비 for [꼰니피]). Entries the rules do not
    reach yet (사잇소리 without ㅅ such as 눈동자 [눈똥자], ㄴ+ㄹ → [ㄴㄴ] in 의견란) stay.
    """
    return [(written, spoken) for written, spoken in _get_g2p()._idioms if _idiom_needed(written, spoken)]


@lru_cache(maxsize=1)
def _rule_table() -> list[tuple[re.Pattern[str], str]]:
    """G2p's coda×onset table, compiled once.

    An entry whose result starts with the onset group (``\\1``) removes or moves
    the coda (liaison, aspiration with ㅎ); such an entry is restricted to within
    an eojeol so that no consonant crosses a space.
    """
    compiled = []
    for pattern, replacement, _rule_ids in _get_g2p().table:
        if replacement.startswith("\\1") and _SPACE_IN_PATTERN in pattern:
            pattern = pattern.replace(_SPACE_IN_PATTERN, "()")
        compiled.append((re.compile(pattern), replacement))
    return compiled
