"""Slow take checks by third-party judges, run in the background after a take is stored.

Two checks in the :mod:`moksori.studio.takes` form (``(TakeContext) -> list[Problem]``):

- ``words_mismatch``: the speech recogniser (Whisper base of the ``judges`` extra) transcribes
  the take in the prompt's language and its character error rate against the script (both
  spelled out by the front end, so "3시" and "세 시" agree) is above ``MAX_SCRIPT_CER``:
  a skipped, added or misread word, or another sentence read.
- ``noisy_background`` / ``poor_signal``: DNSMOS P.835 BAK (background) or SIG (speech
  signal) below ``MIN_BAK`` / ``MIN_SIG``: hum, fans, traffic, or distorted, muffled speech.

They take seconds on a CPU, so the studio runs them on one background thread
(:class:`BackgroundJudges`) once the take is stored: an upload answers at once with the fast
checks' verdict and ``judges.status == "pending"``; the result lands in the take's
``quality["judges"]`` and its problems join the take's own. Without the extra the judges are
``"off"`` with a note naming it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from moksori.audio import Problem
from moksori.studio.takes import TakeContext

__all__ = [
    "MAX_SCRIPT_CER",
    "MIN_BAK",
    "MIN_SIG",
    "BackgroundJudges",
    "JudgeOutcome",
    "TakeJudges",
    "judges_unavailable_reason",
]

log = logging.getLogger(__name__)

# Whisper base misreads a few percent of natural speech (more in Korean than in English);
# above these a word is wrong, missing or added.
MAX_SCRIPT_CER = {"ko": 0.25, "en": 0.2}
# DNSMOS P.835 on a 1-5 scale: a quiet room scores BAK ≈ 4, clean read speech SIG ≈ 3.3-3.6.
MIN_BAK = 3.0
MIN_SIG = 2.7
# Takes waiting for the judges beyond this are not judged (the note says so): a burst of
# uploads must not build an unbounded queue of seconds-long jobs.
MAX_PENDING = 16


def judges_unavailable_reason() -> str | None:
    """None when both judges can run, else why not (a sentence naming the extra)."""
    from moksori.evaluation.judges import dnsmos_available, recogniser_unavailable_reason

    return recogniser_unavailable_reason() or dnsmos_available()


@dataclass
class JudgeOutcome:
    """What the judges found in one take: problems, the transcript, its CER, the DNSMOS scores."""

    problems: list[Problem] = field(default_factory=list)
    transcript: str | None = None
    cer: float | None = None
    dnsmos: dict[str, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": "done",
            "transcript": self.transcript,
            "cer": None if self.cer is None else round(self.cer, 4),
            "dnsmos": None if self.dnsmos is None else {k: round(v, 3) for k, v in self.dnsmos.items()},
            "problems": [{"code": p.code, "message": p.message} for p in self.problems],
        }


class TakeJudges:
    """The recogniser's script match and DNSMOS's noise warnings, as take checks.

    ``transcriber`` is anything with ``transcribe(wave, rate, language) -> str`` (default: the
    judges extra's Whisper base, loaded on first use); ``dnsmos`` a function
    ``(wave, rate) -> DnsmosScores`` (default: :func:`moksori.evaluation.judges.dnsmos_scores`).
    """

    def __init__(self, transcriber: Any = None, dnsmos: Callable[..., Any] | None = None) -> None:
        self._transcriber = transcriber
        self._dnsmos = dnsmos

    def judge(self, context: TakeContext) -> JudgeOutcome:
        """Both judges on one take."""
        outcome = JudgeOutcome()
        self._match_script(context, outcome)
        self._rate_noise(context, outcome)
        return outcome

    def script_check(self, context: TakeContext) -> list[Problem]:
        """The ``words_mismatch`` check alone."""
        outcome = JudgeOutcome()
        self._match_script(context, outcome)
        return outcome.problems

    def noise_check(self, context: TakeContext) -> list[Problem]:
        """The ``noisy_background`` / ``poor_signal`` checks alone."""
        outcome = JudgeOutcome()
        self._rate_noise(context, outcome)
        return outcome.problems

    def _match_script(self, context: TakeContext, outcome: JudgeOutcome) -> None:
        from moksori.evaluation.judges import load_recogniser, score_words

        limit = MAX_SCRIPT_CER.get(context.language)
        if limit is None:
            return
        transcriber = self._transcriber if self._transcriber is not None else load_recogniser()
        try:
            words = score_words(context.wave, context.sample_rate, context.text, context.language, transcriber)
        except ValueError:  # a script with nothing to compare (only punctuation)
            return
        outcome.transcript, outcome.cer = words.transcript, words.cer
        if words.cer > limit:
            heard = words.transcript if words.transcript else "(nothing)"
            outcome.problems.append(Problem(
                "words_mismatch",
                f"the words heard do not match the script (character error rate {words.cer:.2f}, above "
                f"{limit:.2f}): heard {heard!r}",
            ))

    def _rate_noise(self, context: TakeContext, outcome: JudgeOutcome) -> None:
        from moksori.evaluation.judges import dnsmos_scores

        judge = self._dnsmos or dnsmos_scores
        try:
            scores = judge(context.wave, context.sample_rate)
        except ValueError:  # too short or silent: the fast checks already say so
            return
        outcome.dnsmos = scores.as_dict()
        if scores.bak < MIN_BAK:
            outcome.problems.append(Problem(
                "noisy_background",
                f"background noise: DNSMOS BAK {scores.bak:.2f} (below {MIN_BAK:.1f}; a quiet room scores about 4)",
            ))
        if scores.sig < MIN_SIG:
            outcome.problems.append(Problem(
                "poor_signal",
                f"the speech itself sounds degraded (distorted, muffled or reverberant): DNSMOS SIG {scores.sig:.2f} "
                f"(below {MIN_SIG:.1f})",
            ))


class BackgroundJudges:
    """Runs :class:`TakeJudges` on one background thread and hands each result to a callback.

    ``enabled`` False (or the extra absent) turns them off; :meth:`initial_state` is what a take
    carries until its result arrives.
    """

    def __init__(self, judges: TakeJudges | None = None, *, enabled: bool = True, max_pending: int = MAX_PENDING) -> None:
        self.note = judges_unavailable_reason() if (enabled and judges is None) else None
        if not enabled:
            self.note = "the take judges are turned off in the studio settings (MOKSORI_STUDIO_JUDGES)"
        self.judges = judges or TakeJudges()
        self.max_pending = max_pending
        self._pending = 0
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None

    @property
    def active(self) -> bool:
        return self.note is None

    def initial_state(self) -> dict[str, Any]:
        """``{"status": "pending"}`` while judging will happen, else ``{"status": "off", "note": ...}``."""
        if not self.active:
            return {"status": "off", "note": self.note}
        return {"status": "pending"}

    def submit(self, context: TakeContext, done: Callable[[dict[str, Any]], None]) -> Future | None:
        """Judge ``context`` in the background, then call ``done`` with the take's ``judges`` entry
        (``status`` "done", "skipped" when too many takes wait, or "error"). None when off."""
        if not self.active:
            return None
        with self._lock:
            if self._pending >= self.max_pending:
                done({"status": "skipped", "note": f"more than {self.max_pending} takes were waiting for the judges"})
                return None
            self._pending += 1
            if self._executor is None:
                self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="take-judges")
        return self._executor.submit(self._run, context, done)

    def _run(self, context: TakeContext, done: Callable[[dict[str, Any]], None]) -> None:
        try:
            try:
                state = self.judges.judge(context).to_dict()
            except Exception as error:  # noqa: BLE001 - a judge failing must not lose the take; say why instead
                log.warning("take judges failed: %s", error)
                state = {"status": "error", "note": f"the judges failed: {error}"}
            done(state)
        except Exception:  # noqa: BLE001 - the callback's own failure (a deleted take) is only logged
            log.exception("could not store the take judges' result")
        finally:
            with self._lock:
                self._pending -= 1

    def wait_idle(self, timeout: float = 60.0) -> bool:
        """Wait until no take is waiting or being judged (for tests and shutdown); False on timeout."""
        import time

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if self._pending == 0:
                    return True
            time.sleep(0.02)
        return False

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
