"""``moksori evaluate VOICE DATASET_DIR``: how close a voice comes to held-out recordings.

For each utterance of a preprocessed dataset's split (``val.jsonl`` by default), the
voice speaks the utterance's text with a fixed seed, and the synthesis is compared with
the processed recording: mel-cepstral distortion, F0 error and voicing error over a DTW
alignment, and the ratio of speech durations. With a local faster-whisper model, both
the synthesis and the recording are transcribed and their character error rates against
the text reported (the recording's CER is the floor the ASR itself sets). Without
``--asr-model``, the Whisper base of the ``judges`` extra is used when installed.

With the ``judges`` extra, DNSMOS (P.835 SIG/BAK/OVRL and P.808) rates the synthesis and the
recording alike, so a voice is judged relative to its own data: the table shows both side by
side, and the gap.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from moksori.audio import load_audio
from moksori.data.manifest import load_config, read_manifest, write_json
from moksori.evaluation.asr import Transcriber, try_load_asr
from moksori.evaluation.judges import (
    JudgeUnavailable,
    dnsmos_available,
    dnsmos_scores,
    load_recogniser,
    word_error_rate,
)
from moksori.evaluation.metrics import (
    align,
    character_error_rate,
    f0_metrics_of_alignment,
    mcd_of_alignment,
)
from moksori.synthesis import Synthesizer, Voice, load_voice
from moksori.text import TextFrontend

__all__ = [
    "METRICS",
    "EvaluationResult",
    "UtteranceScores",
    "evaluate_voice",
    "format_table",
    "run",
    "to_json",
]

# metric → (table label, number format). Lower is better for all but the duration ratio (best at 1).
METRICS: dict[str, tuple[str, str]] = {
    "mcd_db": ("MCD dB", ".2f"),
    "f0_rmse_cents": ("F0 RMSE cents", ".1f"),
    "vuv_error": ("V/UV error", ".3f"),
    "duration_ratio": ("duration ratio", ".3f"),
    "alignment_failed": ("alignment failed", ".2f"),
    "cer_synthesis": ("CER synthesis", ".3f"),
    "cer_recording": ("CER recording", ".3f"),
    "wer_synthesis": ("WER synthesis", ".3f"),
    "wer_recording": ("WER recording", ".3f"),
    "dnsmos_ovrl_synthesis": ("OVRL synthesis", ".2f"),
    "dnsmos_ovrl_recording": ("OVRL recording", ".2f"),
    "dnsmos_sig_synthesis": ("SIG synthesis", ".2f"),
    "dnsmos_sig_recording": ("SIG recording", ".2f"),
    "dnsmos_bak_synthesis": ("BAK synthesis", ".2f"),
    "dnsmos_bak_recording": ("BAK recording", ".2f"),
    "dnsmos_p808_synthesis": ("P.808 synthesis", ".2f"),
    "dnsmos_p808_recording": ("P.808 recording", ".2f"),
}
# The judges' scores, shown as voice | recordings | gap (DNSMOS: higher is better).
JUDGED: dict[str, str] = {
    "cer": "CER",
    "wer": "WER",
    "dnsmos_ovrl": "DNSMOS OVRL",
    "dnsmos_sig": "DNSMOS SIG",
    "dnsmos_bak": "DNSMOS BAK",
    "dnsmos_p808": "DNSMOS P.808",
}
_DNSMOS_FIELDS = ("sig", "bak", "ovrl", "p808")


@dataclass
class UtteranceScores:
    """The metrics of one utterance; None where a metric could not be computed."""

    id: str
    text: str
    recording_s: float | None = None
    synthesis_s: float | None = None
    mcd_db: float | None = None
    f0_rmse_cents: float | None = None
    f0_voiced_frames: int | None = None
    vuv_error: float | None = None
    duration_ratio: float | None = None
    # Attention models: 1.0 when the free-running alignment failed (after the synthesizer's retry),
    # else 0.0, so its mean is the failure rate; None for models without an alignment to check.
    alignment_failed: float | None = None
    cer_synthesis: float | None = None
    cer_recording: float | None = None
    asr_synthesis: str | None = None
    asr_recording: str | None = None
    wer_synthesis: float | None = None
    wer_recording: float | None = None
    dnsmos_ovrl_synthesis: float | None = None
    dnsmos_ovrl_recording: float | None = None
    dnsmos_sig_synthesis: float | None = None
    dnsmos_sig_recording: float | None = None
    dnsmos_bak_synthesis: float | None = None
    dnsmos_bak_recording: float | None = None
    dnsmos_p808_synthesis: float | None = None
    dnsmos_p808_recording: float | None = None
    error: str | None = None


@dataclass
class EvaluationResult:
    """Per-utterance scores of one voice on one dataset split, and their summary."""

    voice: str
    voice_path: str
    dataset: str
    split: str
    seed: int
    sample_rate: int
    rows: list[UtteranceScores] = field(default_factory=list)
    asr_note: str | None = None  # why CER was not computed; None when it was
    dnsmos_note: str | None = None  # why DNSMOS was not computed; None when it was

    @property
    def summary(self) -> dict[str, dict[str, float | int | None]]:
        """metric → {"mean", "median", "n"} over the utterances where it was computed."""
        return {name: _summarize([getattr(row, name) for row in self.rows]) for name in METRICS}


def _summarize(values: list[float | None]) -> dict[str, float | int | None]:
    present = [value for value in values if value is not None]
    if not present:
        return {"mean": None, "median": None, "n": 0}
    return {"mean": statistics.fmean(present), "median": statistics.median(present), "n": len(present)}


# --------------------------------------------------------------------------- evaluation


def evaluate_voice(
    voice: str | Path | Voice,
    dataset_dir: str | Path,
    *,
    split: str = "val",
    limit: int | None = None,
    asr_model: str | Path | None = None,
    seed: int = 0,
    progress: bool = True,
    dnsmos: bool = True,
    asr: bool = True,
    precision: str = "fp32",
) -> EvaluationResult:
    """Synthesise every utterance of ``split`` ("val", "train" or "all") and score it against its recording.

    ``limit`` keeps the first N utterances. ``asr_model`` is a local faster-whisper model
    folder for CER (never downloaded); without it, the judges extra's Whisper base when
    installed, else CER is left out and the reason noted. ``dnsmos`` / ``asr`` False skip a judge.
    ``precision`` (fp32, bf16, int8, auto) is the synthesizer's: a reduced precision scored
    against the same recordings as fp32 (PyTorch path).
    An utterance that cannot be synthesised or compared gets an ``error`` and no metrics;
    the others go on.
    """
    dataset_dir = Path(dataset_dir)
    records = read_manifest(dataset_dir, split)
    if limit is not None:
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        records = records[:limit]
    if not records:
        raise ValueError(f"{dataset_dir}: split {split!r} holds no utterances; try --split all")
    loaded = voice if isinstance(voice, Voice) else load_voice(voice)
    _check_language(loaded, dataset_dir)
    synthesizer = Synthesizer(loaded) if precision == "fp32" else Synthesizer(loaded, use_onnx=False, precision=precision)
    transcriber, asr_note = _recogniser(asr_model) if asr else (None, "turned off (--no-asr)")
    dnsmos_note = (dnsmos_available() if dnsmos else "turned off (--no-dnsmos)")
    result = EvaluationResult(
        voice=loaded.name,
        voice_path=str(loaded.path),
        dataset=str(dataset_dir),
        split=split,
        seed=seed,
        sample_rate=loaded.sample_rate,
        asr_note=asr_note,
        dnsmos_note=dnsmos_note,
    )
    for record in tqdm(records, desc=f"evaluate {loaded.name}", unit="utt", disable=not progress):
        result.rows.append(_score_utterance(record, dataset_dir, synthesizer, transcriber, seed, dnsmos_note is None))
    return result


def _check_language(voice: Voice, dataset_dir: Path) -> None:
    """A voice scored on another language's sentences reads them with the wrong front end: its
    figures would describe that, not the voice."""
    spoken = (load_config(dataset_dir).get("text") or {}).get("language")
    reads = voice.frontend.language
    if spoken and spoken != reads:
        raise ValueError(f"{dataset_dir} holds {spoken!r} speech, and voice {voice.name!r} reads {reads!r}: "
                         "evaluate a voice on recordings of its own language")


def _recogniser(asr_model: str | Path | None) -> tuple[Transcriber | None, str | None]:
    """The given faster-whisper folder, else the judges extra's Whisper base, else (None, why not)."""
    if asr_model is not None:
        return try_load_asr(asr_model)
    try:
        return load_recogniser(), None
    except JudgeUnavailable as error:
        return None, f"no --asr-model given, and {error}"


def _score_utterance(
    record: dict[str, Any],
    dataset_dir: Path,
    synthesizer: Synthesizer,
    transcriber: Transcriber | None,
    seed: int,
    dnsmos: bool = False,
) -> UtteranceScores:
    scores = UtteranceScores(id=str(record["id"]), text=str(record["text"]))
    sample_rate = synthesizer.sample_rate
    try:
        # load_audio resamples the recording to the voice's rate when the two differ.
        recording = load_audio(dataset_dir / record["audio"], sample_rate=sample_rate)
        result = synthesizer.synthesize_report(scores.text, seed=seed, speaker=_speaker_of(record, synthesizer.voice))
        synthesis = result.wave
        if result.sentences_checked:
            scores.alignment_failed = 0.0 if result.alignment_ok else 1.0
        scores.recording_s = recording.size / sample_rate
        scores.synthesis_s = synthesis.size / sample_rate
        alignment = align(recording, synthesis, sample_rate)
    except ValueError as error:  # unreadable text or audio, a silent clip (AudioError is a ValueError)
        scores.error = str(error)
        return scores
    scores.mcd_db = mcd_of_alignment(alignment)
    f0 = f0_metrics_of_alignment(alignment, sample_rate)
    scores.f0_rmse_cents = None if math.isnan(f0["f0_rmse_cents"]) else f0["f0_rmse_cents"]
    scores.f0_voiced_frames = int(f0["voiced_both"])
    scores.vuv_error = f0["vuv_error"]
    scores.duration_ratio = alignment.synthesized.size / alignment.reference.size
    if transcriber is not None:
        _add_cer(scores, recording, synthesis, sample_rate, transcriber, synthesizer.voice.frontend)
    if dnsmos:
        _add_dnsmos(scores, recording, synthesis, sample_rate)
    return scores


def _add_dnsmos(scores: UtteranceScores, recording: np.ndarray, synthesis: np.ndarray, sample_rate: int) -> None:
    for side, wave in (("synthesis", synthesis), ("recording", recording)):
        try:
            judged = dnsmos_scores(wave, sample_rate)
        except ValueError:  # too short or silent to judge: left out, like an unaligned F0
            continue
        for name in _DNSMOS_FIELDS:
            setattr(scores, f"dnsmos_{name}_{side}", getattr(judged, name))


def _speaker_of(record: dict[str, Any], voice: Voice) -> str | None:
    """The record's speaker when the voice knows it (multi-speaker voices), else the voice's default."""
    speaker = record.get("speaker")
    return speaker if voice.speakers and speaker in voice.speakers else None


def _add_cer(
    scores: UtteranceScores,
    recording: np.ndarray,
    synthesis: np.ndarray,
    sample_rate: int,
    transcriber: Transcriber,
    frontend: TextFrontend,
) -> None:
    language = frontend.language
    scores.asr_synthesis = transcriber.transcribe(synthesis, sample_rate, language)
    scores.asr_recording = transcriber.transcribe(recording, sample_rate, language)
    # Both sides spelled out the same way, so "3시" in the text and "세 시" from the ASR agree.
    reference = _spelled_out(scores.text, frontend)
    scores.cer_synthesis = character_error_rate(reference, _spelled_out(scores.asr_synthesis, frontend))
    scores.cer_recording = character_error_rate(reference, _spelled_out(scores.asr_recording, frontend))
    scores.wer_synthesis = word_error_rate(reference, _spelled_out(scores.asr_synthesis, frontend))
    scores.wer_recording = word_error_rate(reference, _spelled_out(scores.asr_recording, frontend))


def _spelled_out(text: str, frontend: TextFrontend) -> str:
    """The front end's normalised form of ``text`` (digits, Latin letters … spelled out), or ``text`` itself
    when nothing readable is left (an empty transcript then counts as all deletions)."""
    try:
        return frontend.process(text, strict=False).normalized
    except ValueError:
        return text


# --------------------------------------------------------------------------- output


def format_table(result: EvaluationResult, other: EvaluationResult | None = None) -> str:
    """The per-utterance scores and the summary of ``result``; with ``other``, the two summaries side by side."""
    header = f"dataset {result.dataset} (split {result.split}, {len(result.rows)} utterances, seed {result.seed})"
    if other is None:
        body = [_utterance_table(result), "", f"voice {result.voice}: summary", _summary_table(result)]
    else:
        body = [_comparison_table(result, other)]
    judges = [_judges_table(item) for item in (result, other) if item is not None]
    return "\n".join([header, *body, *[table for table in judges if table], _asr_line(result), _dnsmos_line(result)])


def _cell(value: float | None, spec: str, width: int) -> str:
    return f"{'-' if value is None else format(value, spec):>{width}}"


def _utterance_table(result: EvaluationResult) -> str:
    width = max([len("id"), *(len(row.id) for row in result.rows)])
    # One line per utterance: the core metrics, CER and DNSMOS OVRL where computed (the rest is in the JSON).
    shown = [name for name in METRICS if not name.startswith(("wer", "dnsmos_sig", "dnsmos_bak", "dnsmos_p808"))]
    columns = [name for name in shown if not name.startswith(("cer", "dnsmos", "alignment")) or _any_value(result, name)]
    labels = [METRICS[name][0] for name in columns]
    lines = [f"{'id':<{width}}  " + "  ".join(f"{label:>{len(label)}}" for label in labels)]
    for row in result.rows:
        cells = [_cell(getattr(row, name), METRICS[name][1], len(METRICS[name][0])) for name in columns]
        line = f"{row.id:<{width}}  " + "  ".join(cells)
        lines.append(line + (f"  error: {row.error}" if row.error else ""))
    return "\n".join(lines)


def _any_value(result: EvaluationResult, name: str) -> bool:
    return any(getattr(row, name) is not None for row in result.rows)


def _summary_table(result: EvaluationResult) -> str:
    lines = [f"{'metric':<16} {'mean':>9} {'median':>9} {'n':>4}"]
    for name, stats in result.summary.items():
        label, spec = METRICS[name]
        lines.append(f"{label:<16} {_cell(stats['mean'], spec, 9)} {_cell(stats['median'], spec, 9)} {stats['n']:>4}")
    return "\n".join(lines)


def _comparison_table(first: EvaluationResult, second: EvaluationResult) -> str:
    names = (first.voice, second.voice if second.voice != first.voice else f"{second.voice} (2)")
    width = max(19, *(len(name) for name in names))
    lines = [
        f"{'':<16} {names[0]:>{width}} {names[1]:>{width}}  better",
        f"{'metric':<16} {'mean / median':>{width}} {'mean / median':>{width}}",
    ]
    first_summary, second_summary = first.summary, second.summary
    for name, (label, spec) in METRICS.items():
        cells = [_mean_median(summary[name], spec, width) for summary in (first_summary, second_summary)]
        better = _better(name, spec, first_summary[name]["mean"], second_summary[name]["mean"], names)
        lines.append(f"{label:<16} {cells[0]} {cells[1]}  {better}".rstrip())
    lines.append(f"{'utterances':<16} {len(first.rows):>{width}} {len(second.rows):>{width}}")
    return "\n".join(lines)


def _mean_median(stats: dict[str, Any], spec: str, width: int) -> str:
    if stats["mean"] is None:
        return f"{'-':>{width}}"
    return f"{format(stats['mean'], spec)} / {format(stats['median'], spec)}".rjust(width)


def _better(name: str, spec: str, first: float | None, second: float | None, names: tuple[str, str]) -> str:
    """The voice with the better mean; "=" when the printed means are the same."""
    if first is None or second is None or name.endswith("_recording"):  # the recordings rate the judge
        return ""
    if format(first, spec) == format(second, spec):
        return "="
    if name.startswith("dnsmos"):  # a mean opinion score: higher is better
        first, second = -first, -second
    if name == "duration_ratio":  # closest to 1 wins, measured as a factor either way
        first, second = abs(math.log(first)), abs(math.log(second))
    return names[0] if first < second else names[1]


def _judges_table(result: EvaluationResult) -> str:
    """The judges' means for the voice beside the same judges on the recordings, and the gap; "" if none ran."""
    summary = result.summary
    lines = []
    for key, label in JUDGED.items():
        voice, recordings = summary[f"{key}_synthesis"]["mean"], summary[f"{key}_recording"]["mean"]
        if voice is None and recordings is None:
            continue
        gap = None if voice is None or recordings is None else voice - recordings
        spec = METRICS[f"{key}_synthesis"][1]
        lines.append(f"{label:<14} {_cell(voice, spec, 9)} {_cell(recordings, spec, 11)} {_cell(gap, '+' + spec, 9)}")
    if not lines:
        return ""
    head = [f"judges, voice {result.voice} against its recordings (means)", f"{'judge':<14} {'voice':>9} {'recordings':>11} {'gap':>9}"]
    return "\n".join(["", *head, *lines])


def _dnsmos_line(result: EvaluationResult) -> str:
    if result.dnsmos_note is None:
        return "DNSMOS: Microsoft's P.835 (SIG speech, BAK background, OVRL overall) and P.808, 1-5, higher is better"
    return f"DNSMOS not computed: {result.dnsmos_note}"


def _asr_line(result: EvaluationResult) -> str:
    if result.asr_note is None:
        return "CER: character error rate of the ASR transcript against the text (recording = the ASR's own floor)"
    return f"CER not computed: {result.asr_note}"


def to_json(result: EvaluationResult) -> dict[str, Any]:
    """A JSON-ready dict: voice, dataset, split, seed, sample_rate, asr_note, summary, rows."""
    return {
        "voice": result.voice,
        "voice_path": result.voice_path,
        "dataset": result.dataset,
        "split": result.split,
        "seed": result.seed,
        "sample_rate": result.sample_rate,
        "asr_note": result.asr_note,
        "dnsmos_note": result.dnsmos_note,
        "summary": result.summary,
        "rows": [dataclasses.asdict(row) for row in result.rows],
    }


# --------------------------------------------------------------------------- command line


def run(args: argparse.Namespace) -> int:
    """Run ``moksori evaluate`` with parsed arguments: print the table, write the JSON."""
    from moksori.voices import resolve_voice

    options = {"split": args.split, "limit": args.limit, "asr_model": args.asr_model, "seed": args.seed}
    options.update(dnsmos=not getattr(args, "no_dnsmos", False), asr=not getattr(args, "no_asr", False))
    result = evaluate_voice(resolve_voice(args.voice), args.dataset_dir, **options)
    other = None
    if args.compare is not None:
        other = evaluate_voice(resolve_voice(args.compare), args.dataset_dir, **options)
    print(format_table(result, other))
    if args.json is not None:
        evaluations = [result] if other is None else [result, other]
        write_json(args.json, {"evaluations": [to_json(item) for item in evaluations]})
        print(f"results written to {args.json}")
    return 0
