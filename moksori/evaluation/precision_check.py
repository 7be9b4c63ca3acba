"""The quality guard of reduced-precision synthesis: ``moksori evaluate VOICE --precision bf16``.

The same voice speaks held-out sentences in fp32 and in the reduced precision (same seed, so the
same noise), and the two outputs are compared sentence by sentence:

* durations: the frames of every input symbol (from the acoustic model's alignment) must be
  identical: reduced precision may not change timing;
* MCD (dB) between the two waveforms, frame by frame (they have the same length when the
  durations agree; DTW otherwise), over the frames of the fp32 output within 40 dB of its loudest;
* F0 error (RMSE in cents over frames voiced in both) and the voiced/unvoiced disagreement;
* the speed: both precisions synthesise all sentences in alternating rounds (best of each).

An *autoregressive* voice (an attention model: Tacotron2, Flowtron) cannot keep its durations
exactly: each frame is fed back, so any numeric change moves the stop step and every later frame,
and with the prenet's dropout on at inference (the reference's choice) fp32 itself speaks every
sentence differently for another noise draw. For those voices the reduced precision is compared
with that spread instead: fp32 is run again with :data:`RESEEDS` other seeds, and the reduced
precision is safe when every sentence fp32 reads with an alignment that passes the check still
passes, and its mean MCD and mean duration change against fp32 (same seed) are no larger than
fp32's own against its other draws. A deterministic voice has no spread, so this falls back to
"no change at all".

A voice is *safe* for the precision when every sentence is within :data:`LIMITS`; the result
goes into ``voice.json`` (``precision``: the checks, their limits and the *recommended*
precision: the fastest safe one, if it is at least :data:`MIN_SPEEDUP` faster than fp32 on this
machine, else fp32). :class:`moksori.synthesis.Synthesizer` warns about a precision the voice was
not checked for (or failed), and ``precision="auto"`` uses the recommended one.

Held-out sentences: a few written for this check per language (in no training set moksori ships),
or the caller's.
"""

from __future__ import annotations

import datetime as _dt
import logging
import math
import platform
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from moksori.cpu import native_bf16
from moksori.evaluation.metrics import MCD_SCALE, Alignment, f0_metrics_of_alignment, mcd_dtw, mel_cepstrum
from moksori.synthesis import Synthesizer, load_voice
from moksori.synthesis.bundle import Voice, update_voice_json
from moksori.synthesis.precision import FP32, REDUCED, check_precision

# A voice is safe for a precision when every sentence keeps its durations and stays within these.
LIMITS = {"mcd_db": 0.3, "f0_rmse_cents": 20.0, "vuv_error": 0.02}
# A reduced precision is recommended only when it is at least this much faster than fp32 here
# (bf16 is slower than fp32 on a CPU without bf16 instructions, e.g. AVX2 only).
MIN_SPEEDUP = 1.1
# Autoregressive voices: fp32 is run again with this many other seeds (seed + 1, seed + 2, ...) to
# measure the output's own spread.
RESEEDS = 2
# Frames of the fp32 output more than this far below its loudest are left out of the MCD
# (natural-log amplitude of c0: 40 dB), so near-silence does not dominate the distance.
SPEECH_RANGE = math.log(100.0)

HELD_OUT = {
    "ko": [
        "창밖으로 보이는 산봉우리에 첫눈이 하얗게 내려앉았다.",
        "다음 주 화요일 오후 세 시에 회의실에서 만나기로 했어요.",
        "도서관 이층 창가 자리는 언제나 조용해서 공부하기 좋다.",
        "그 가게는 오래된 나무 간판 때문에 멀리서도 눈에 띈다.",
        "버스가 늦게 와서 우리는 결국 택시를 타고 갔습니다.",
        "할머니께서 끓여 주신 된장찌개 냄새가 온 집 안에 퍼졌다.",
    ],
    "en": [
        "The lighthouse keeper wrote a letter every evening before sunset.",
        "Please bring two umbrellas, because the forecast looks uncertain.",
        "A quiet corner of the library is the best place to read.",
        "The train to the coast leaves at a quarter past nine.",
        "She painted the old fence a bright shade of green.",
        "Our neighbours grow tomatoes and peppers on their balcony.",
    ],
}


@dataclass(frozen=True)
class SentenceComparison:
    text: str
    same_durations: bool
    duration_ratio: float  # reduced-precision samples / fp32 samples
    mcd_db: float
    f0_rmse_cents: float  # NaN when no frame is voiced in both
    vuv_error: float
    # Autoregressive voices only (None otherwise): whether each precision's alignment passed the
    # check, and fp32's own spread: mean MCD and mean |log duration ratio| of its other draws.
    alignment_ok_fp32: bool | None = None
    alignment_ok_reduced: bool | None = None
    reseed_mcd_db: float | None = None
    reseed_log_duration: float | None = None


@dataclass
class PrecisionCheck:
    """The comparison of one precision with fp32 for one voice."""

    precision: str
    rows: list[SentenceComparison]
    fp32_s: float  # best time for all sentences
    reduced_s: float
    modules: list[str] = field(default_factory=list)

    @property
    def speedup(self) -> float:
        return self.fp32_s / self.reduced_s if self.reduced_s > 0 else math.nan

    @property
    def autoregressive(self) -> bool:
        return any(row.reseed_mcd_db is not None for row in self.rows)

    @property
    def failures(self) -> list[str]:
        """What breaks the limits, one phrase each (empty: safe)."""
        if self.autoregressive:
            return self._spread_failures()
        found = []
        changed = [row for row in self.rows if not row.same_durations]
        if changed:
            found.append(f"durations changed in {len(changed)} of {len(self.rows)} sentences")
        for name, limit in LIMITS.items():
            values = [getattr(row, name) for row in self.rows if math.isfinite(getattr(row, name))]
            if values and max(values) >= limit:
                found.append(f"{name} {max(values):.3g} >= {limit:g}")
        return found

    def _spread_failures(self) -> list[str]:
        found = []
        lost = [row for row in self.rows if row.alignment_ok_fp32 and not row.alignment_ok_reduced]
        if lost:
            found.append(f"the alignment fails in {len(lost)} of the {sum(bool(r.alignment_ok_fp32) for r in self.rows)} "
                         "sentences fp32 reads")
        mcd, spread = self.mean("mcd_db"), self.mean("reseed_mcd_db")
        if mcd > spread:
            found.append(f"mean MCD to fp32 {mcd:.3g} dB > fp32's own spread {spread:.3g} dB")
        change, spread = self.mean_log_duration(), self.mean("reseed_log_duration")
        if change > spread:
            found.append(f"mean duration change {math.expm1(change):.2%} > fp32's own spread {math.expm1(spread):.2%}")
        return found

    def mean(self, name: str) -> float:
        values = [getattr(row, name) for row in self.rows if getattr(row, name) is not None]
        values = [value for value in values if math.isfinite(value)]
        return float(np.mean(values)) if values else math.nan

    def mean_log_duration(self) -> float:
        return float(np.mean([abs(math.log(row.duration_ratio)) for row in self.rows])) if self.rows else math.nan

    @property
    def safe(self) -> bool:
        return not self.failures

    def summary(self) -> dict[str, Any]:
        """The record voice.json keeps for this precision."""

        def worst(name: str) -> float | None:
            values = [getattr(row, name) for row in self.rows if math.isfinite(getattr(row, name))]
            return round(max(values), 4) if values else None

        return {
            "safe": self.safe,
            "reason": "; ".join(self.failures) if self.failures else "within the limits",
            "sentences": len(self.rows),
            "identical_durations": all(row.same_durations for row in self.rows),
            "max_mcd_db": worst("mcd_db"),
            "max_f0_rmse_cents": worst("f0_rmse_cents"),
            "max_vuv_error": worst("vuv_error"),
            "speedup": round(self.speedup, 3),
            "modules": self.modules,
            **({"criterion": "within fp32's own spread (autoregressive)",
                "mean_mcd_db": round(self.mean("mcd_db"), 4), "fp32_spread_mcd_db": round(self.mean("reseed_mcd_db"), 4),
                "mean_duration_change": round(math.expm1(self.mean_log_duration()), 4),
                "fp32_spread_duration_change": round(math.expm1(self.mean("reseed_log_duration")), 4)}
               if self.autoregressive else {"criterion": "identical durations and limits"}),
        }


def compare_waves(reference: np.ndarray, reduced: np.ndarray, sample_rate: int, *, f0: bool = True) -> dict[str, float]:
    """MCD, F0 RMSE and V/UV error of ``reduced`` against ``reference`` (frame by frame when they
    have the same length, else after DTW)."""
    if reference.shape != reduced.shape:
        return {"mcd_db": mcd_dtw(reference, reduced, sample_rate), "f0_rmse_cents": math.nan, "vuv_error": math.nan}
    reference_cepstrum = mel_cepstrum(reference, sample_rate)
    reduced_cepstrum = mel_cepstrum(reduced, sample_rate)
    speech = reference_cepstrum[:, 0] > reference_cepstrum[:, 0].max() - SPEECH_RANGE
    distances = np.sqrt(np.sum((reference_cepstrum[speech, 1:] - reduced_cepstrum[speech, 1:]) ** 2, axis=1))
    result = {"mcd_db": float(MCD_SCALE * distances.mean()), "f0_rmse_cents": math.nan, "vuv_error": math.nan}
    if f0:
        steps = np.arange(reference_cepstrum.shape[0])
        alignment = Alignment(reference, reduced, reference_cepstrum, reduced_cepstrum, np.stack([steps, steps], 1))
        metrics = f0_metrics_of_alignment(alignment, sample_rate)
        result.update(f0_rmse_cents=metrics["f0_rmse_cents"], vuv_error=metrics["vuv_error"])
    return result


def held_out_sentences(language: str) -> list[str]:
    if language not in HELD_OUT:
        raise ValueError(f"no held-out sentences for language {language!r}; pass sentences=[...]")
    return list(HELD_OUT[language])


def check_voice_precision(
    voice: Voice | str | Path,
    precision: str,
    *,
    sentences: list[str] | None = None,
    seed: int = 0,
    f0: bool = True,
    rounds: int = 2,
) -> PrecisionCheck:
    """Compare ``precision`` with fp32 for ``voice`` on ``sentences`` (default: :data:`HELD_OUT`)."""
    precision = check_precision(precision, allow_auto=False)
    if precision == FP32:
        raise ValueError(f"choose a reduced precision to check against fp32: {', '.join(REDUCED)}")
    voice = voice if isinstance(voice, Voice) else load_voice(voice)
    sentences = sentences or held_out_sentences(voice.language)
    reference = Synthesizer(voice, use_onnx=False)
    synthesis_log = logging.getLogger("moksori.synthesis.synthesizer")
    level = synthesis_log.level
    synthesis_log.setLevel(logging.ERROR)  # its "not checked for" warning: this is the check
    try:
        reduced = Synthesizer(voice, use_onnx=False, precision=precision)
    finally:
        synthesis_log.setLevel(level)
    rows = []
    quiet = {"sentence_silence_s": 0.0, "paragraph_silence_s": 0.0}
    for text in sentences:
        fp32 = reference.synthesize_report(text, seed=seed, **quiet)
        reduced_result = reduced.synthesize_report(text, seed=seed, **quiet)
        fp32_wave, reduced_wave = fp32.wave, reduced_result.wave
        same = _same_durations(reference.sentence_durations(text, seed=seed), reduced.sentence_durations(text, seed=seed))
        scores = compare_waves(fp32_wave, reduced_wave, voice.sample_rate, f0=f0)
        if fp32.sentences_checked:
            scores.update(alignment_ok_fp32=fp32.alignment_ok, alignment_ok_reduced=reduced_result.alignment_ok,
                          **_fp32_spread(reference, text, seed, fp32_wave, voice.sample_rate))
        rows.append(SentenceComparison(text, same, reduced_wave.size / max(fp32_wave.size, 1), **scores))
    fp32_s, reduced_s = _timed(reference, reduced, sentences, seed, rounds)
    return PrecisionCheck(precision, rows, fp32_s, reduced_s, list(reduced.precision_modules))


def _fp32_spread(reference: Synthesizer, text: str, seed: int, fp32_wave: np.ndarray,
                 sample_rate: int) -> dict[str, float]:
    """How far fp32's own output moves for other noise draws: the mean MCD and mean |log duration
    ratio| of :data:`RESEEDS` other seeds against the ``seed`` output."""
    mcds, log_durations = [], []
    for other in range(seed + 1, seed + 1 + RESEEDS):
        wave = reference.synthesize(text, seed=other, sentence_silence_s=0.0, paragraph_silence_s=0.0)
        mcds.append(compare_waves(fp32_wave, wave, sample_rate, f0=False)["mcd_db"])
        log_durations.append(abs(math.log(max(wave.size, 1) / max(fp32_wave.size, 1))))
    return {"reseed_mcd_db": float(np.mean(mcds)), "reseed_log_duration": float(np.mean(log_durations))}


def _same_durations(first: list[np.ndarray], second: list[np.ndarray]) -> bool:
    return len(first) == len(second) and all(np.array_equal(a, b) for a, b in zip(first, second))


def _timed(reference: Synthesizer, reduced: Synthesizer, sentences: list[str], seed: int, rounds: int) -> tuple[float, float]:
    """Best time of each for all sentences, in alternating rounds (load changes hit both alike)."""
    best = {"fp32": math.inf, "reduced": math.inf}
    text = " ".join(sentences)
    for _ in range(max(1, rounds)):
        for name, synthesizer in (("fp32", reference), ("reduced", reduced)):
            started = time.perf_counter()
            synthesizer.synthesize(text, seed=seed)
            best[name] = min(best[name], time.perf_counter() - started)
    return best["fp32"], best["reduced"]


def recommended_precision(checks: list[PrecisionCheck]) -> str:
    """The fastest safe reduced precision at least :data:`MIN_SPEEDUP` faster than fp32, else fp32."""
    candidates = [check for check in checks if check.safe and check.speedup >= MIN_SPEEDUP]
    return max(candidates, key=lambda check: check.speedup).precision if candidates else FP32


def record_checks(voice_dir: str | Path, checks: list[PrecisionCheck]) -> dict[str, Any]:
    """Write the checks into the bundle's voice.json ``precision`` (earlier checks of other
    precisions are kept) and the recommended precision; returns that section."""
    voice_dir = Path(voice_dir)
    from moksori.synthesis.bundle import read_voice_json

    section = dict(read_voice_json(voice_dir).get("precision") or {})
    checked = dict(section.get("checked") or {})
    for check in checks:
        checked[check.precision] = check.summary()
    machine = {"cpu": platform.processor() or platform.machine(), "isa": torch.backends.cpu.get_cpu_capability(),
               "native_bf16": native_bf16(), "threads": torch.get_num_threads()}
    fast_and_safe = {name: float(record.get("speedup") or 0) for name, record in checked.items()
                     if record.get("safe") and float(record.get("speedup") or 0) >= MIN_SPEEDUP}
    best = max(fast_and_safe, key=fast_and_safe.__getitem__) if fast_and_safe else FP32
    section.update(checked=checked, limits={**LIMITS, "identical_durations": True, "min_speedup": MIN_SPEEDUP,
                                            "autoregressive": f"within fp32's own spread over {RESEEDS} other seeds"},
                   recommended=best, machine=machine,
                   checked_at=_dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat())
    update_voice_json(voice_dir, {"precision": section})
    return section


def format_check(check: PrecisionCheck) -> str:
    lines = [f"{check.precision} vs fp32 ({', '.join(check.modules) or 'no module'} in {check.precision}):",
             f"  {'sentence':<34} {'same dur':>8} {'dur ratio':>9} {'MCD dB':>7} {'F0 cents':>8} {'V/UV':>6}"]
    for row in check.rows:
        text = row.text if len(row.text) <= 32 else row.text[:31] + "…"
        lines.append(f"  {text:<34} {'yes' if row.same_durations else 'NO':>8} {row.duration_ratio:>9.4f} "
                     f"{row.mcd_db:>7.3f} {_number(row.f0_rmse_cents, 8, '.1f')} {_number(row.vuv_error, 6, '.3f')}")
    verdict = "SAFE" if check.safe else "NOT SAFE: " + "; ".join(check.failures)
    if check.autoregressive:
        lines.append(f"  autoregressive voice: compared with fp32's own spread over {RESEEDS} other seeds: mean MCD "
                     f"{check.mean('mcd_db'):.3f} dB (spread {check.mean('reseed_mcd_db'):.3f}), mean duration change "
                     f"{math.expm1(check.mean_log_duration()):.2%} (spread {math.expm1(check.mean('reseed_log_duration')):.2%}), "
                     f"alignments passing fp32 {sum(bool(r.alignment_ok_fp32) for r in check.rows)}, "
                     f"{check.precision} {sum(bool(r.alignment_ok_reduced) for r in check.rows)} of {len(check.rows)} -> {verdict}")
    else:
        limits = ", ".join(f"{name} < {limit:g}" for name, limit in LIMITS.items())
        lines.append(f"  limits: identical durations, {limits} -> {verdict}")
    lines.append(f"  speed: fp32 {check.fp32_s:.3f} s, {check.precision} {check.reduced_s:.3f} s "
                 f"(x{check.speedup:.2f}, best of alternating rounds on this machine)")
    return "\n".join(lines)


def _number(value: float, width: int, spec: str) -> str:
    return f"{value:>{width}{spec}}" if math.isfinite(value) else f"{'-':>{width}}"


def to_json(check: PrecisionCheck) -> dict[str, Any]:
    return {"precision": check.precision, **check.summary(), "fp32_s": check.fp32_s, "reduced_s": check.reduced_s,
            "rows": [{key: _finite_or_none(value) for key, value in asdict(row).items()} for row in check.rows]}


def _finite_or_none(value: Any) -> Any:
    return None if isinstance(value, float) and not math.isfinite(value) else value


def run(args: Any) -> int:
    """``moksori evaluate VOICE --precision bf16 [int8]``: print each check, record it in voice.json
    (unless ``--no-record``), write ``--json``."""
    from moksori.voices import resolve_voice

    voice_dir = resolve_voice(args.voice)
    voice = load_voice(voice_dir)
    sentences = held_out_sentences(voice.language)[: args.limit] if args.limit else None
    checks = []
    for precision in dict.fromkeys(args.precision):
        check = check_voice_precision(voice, precision, sentences=sentences, seed=args.seed)
        checks.append(check)
        print(format_check(check))
    if not getattr(args, "no_record", False):
        section = record_checks(voice_dir, checks)
        print(f"recorded in {Path(voice_dir) / 'voice.json'}: recommended precision {section['recommended']}")
    if args.json is not None:
        from moksori.data.manifest import write_json

        write_json(args.json, {"precision_checks": [to_json(check) for check in checks]})
        print(f"results written to {args.json}")
    return 0


__all__ = [
    "HELD_OUT",
    "LIMITS",
    "MIN_SPEEDUP",
    "PrecisionCheck",
    "RESEEDS",
    "SentenceComparison",
    "check_voice_precision",
    "compare_waves",
    "format_check",
    "held_out_sentences",
    "recommended_precision",
    "record_checks",
    "run",
    "to_json",
]
