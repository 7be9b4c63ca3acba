"""Does the shipped Korean voice say what the text says? Whisper base listens to it and to its teacher.

Each line of ``--sentences`` (``kind<TAB>text``; default ``benchmarks/data/listen_ko.tsv``, 156
everyday sentences) is spoken by the voice (``--seed``, ``--speed``) and by espeak-ng ``ko``, the
rule-based synthesiser the voice learned from, reading the front end's normalised text. Whisper base
(``moksori.evaluation.judges``) transcribes both; WER and CER are taken against the normalised text,
both sides spelled out by the front end. The teacher's scores say what the judge can hear at all in
this kind of speech; the voice's MCD (DTW) and duration ratio against the teacher say whether the
voice mumbles or skips, without the judge.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/listen_ko.py --out /tmp/listen_ko
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from moksori.espeak import synthesize as espeak_synthesize
from moksori.evaluation.judges import load_recogniser, spelled_out, word_error_rate
from moksori.evaluation.metrics import character_error_rate, duration_ratio, mcd_dtw
from moksori.synthesis import Synthesizer

SENTENCES = Path(__file__).resolve().parent / "data" / "listen_ko.tsv"
LENGTH_BINS = ((0, 12), (12, 20), (20, 30), (30, 10_000))  # syllables of the normalised text


def read_sentences(path: Path) -> list[tuple[str, str]]:
    """(kind, text) per non-empty line of a ``kind<TAB>text`` file."""
    rows = [line.split("\t", 1) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [(kind, text) for kind, text in rows]


def listen(
    sentences: list[tuple[str, str]], voice: str = "default", seed: int = 0, speed: float = 1.0
) -> list[dict[str, Any]]:
    """One row per sentence: what the judge heard from the voice and from espeak-ng, the error rates,
    and the voice's MCD and duration ratio against espeak-ng."""
    synth = Synthesizer(voice, num_threads=1)
    judge = load_recogniser()
    rows = []
    for kind, text in sentences:
        expected = spelled_out(text, "ko")
        voice_wave = synth.synthesize(text, seed=seed, speed=speed)
        teacher_wave, teacher_rate = espeak_synthesize(expected, "ko")
        if teacher_rate != synth.sample_rate:
            raise ValueError(f"espeak-ng speaks at {teacher_rate} Hz, the voice at {synth.sample_rate} Hz")
        row: dict[str, Any] = {"kind": kind, "text": text, "expected": expected,
                                  "syllables": len("".join(expected.split()))}
        for name, wave in (("voice", voice_wave), ("teacher", teacher_wave)):
            heard = spelled_out(judge.transcribe(wave, synth.sample_rate, "ko"), "ko")
            row[f"{name}_heard"] = heard
            row[f"{name}_wer"] = word_error_rate(expected, heard)
            row[f"{name}_cer"] = character_error_rate(expected, heard)
        row["mcd_db"] = mcd_dtw(teacher_wave, voice_wave, synth.sample_rate)
        row["duration_ratio"] = duration_ratio(teacher_wave, voice_wave, synth.sample_rate)
        rows.append(row)
    return rows


def summary(rows: list[dict[str, Any]]) -> str:
    """Medians and 90th percentiles of the error rates, and MCD by sentence length."""
    def column(name: str, keep: list[bool] | None = None) -> np.ndarray:
        return np.array([row[name] for i, row in enumerate(rows) if keep is None or keep[i]], dtype=float)

    lines = [f"{len(rows)} sentences"]
    for name in ("voice", "teacher"):
        wer, cer = column(f"{name}_wer"), column(f"{name}_cer")
        lines.append(f"{name:8s} WER median {np.median(wer):.2f} p90 {np.percentile(wer, 90):.2f} | "
                     f"CER median {np.median(cer):.2f} p90 {np.percentile(cer, 90):.2f}")
    ratio = column("duration_ratio")
    lines.append(f"voice vs teacher: MCD median {np.median(column('mcd_db')):.2f} dB, "
                 f"duration ratio median {np.median(ratio):.2f} (min {ratio.min():.2f}, max {ratio.max():.2f})")
    for low, high in LENGTH_BINS:
        keep = [low <= int(row["syllables"]) < high for row in rows]
        if any(keep):
            lines.append(f"  {low:2d}+ syllables: n={sum(keep):3d} MCD median {np.median(column('mcd_db', keep)):.2f} dB, "
                         f"voice CER median {np.median(column('voice_cer', keep)):.2f}, "
                         f"teacher CER median {np.median(column('teacher_cer', keep)):.2f}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sentences", type=Path, default=SENTENCES, help="kind<TAB>text per line")
    parser.add_argument("--voice", default="default", help="voice folder (default: the shipped ko_default)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--speed", type=float, default=1.0)
    parser.add_argument("--limit", type=int, default=None, help="only the first N sentences")
    parser.add_argument("--out", type=Path, default=None, help="write the rows to OUT/rows.json")
    args = parser.parse_args()
    rows = listen(read_sentences(args.sentences)[: args.limit], args.voice, args.seed, args.speed)
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "rows.json").write_text(json.dumps(rows, ensure_ascii=False, indent=1), encoding="utf-8")
    print(summary(rows))


if __name__ == "__main__":
    main()
