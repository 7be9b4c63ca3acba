"""Time to the first audio of ``Synthesizer.stream`` for the shipped voice, before and after the
head piece (issue 19: first audio <= 0.03 s), side by side in one process.

Variants, alternated call by call so that other load on the machine hits them alike:

* ``whole-first-sentence``: the first sentence's mel made whole, then a head of 32 frames vocoded
  first (the behaviour before: Glow-TTS through ``AcousticModel.stream``'s default);
* ``head-piece``: Glow-TTS decodes a head (HEAD_FRAMES + the vocoder's context) with its flows'
  receptive field after it first (``GlowTTSAcoustic.stream``), then the rest;
* ``head-piece, head N``: the same with HEAD_FRAMES = N.

Also the parts of the first audio (front end of the whole text, encoder, flows on the head, vocoder
on the head). Text: benchmarks/peer_side_by_side.py's 3-sentence Korean paragraph (its ttfa case).

``--config 'tacotron2 small + vocos small'`` (any ``moksori bench synth`` pair) measures a random-weight
voice instead (durations fixed as bench synth does): ``whole-first-sentence`` then waits for the whole
first sentence's decoder loop, ``head-piece`` for the first decoder chunk (Tacotron2's mel pieces).
Random attention fails its alignment check, so the retry is off for both variants (a streamed first
sentence is never retried).

    .venv/bin/python benchmarks/first_audio.py --rounds 5 --threads 2
    .venv/bin/python benchmarks/first_audio.py --config 'tacotron2 small + vocos small' --rounds 2 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parent))


def _time(run: Callable[[], Any], repeats: int) -> list[float]:
    run()  # warm-up
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        run()
        times.append(time.perf_counter() - started)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per variant per round")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--heads", default="16", help="extra HEAD_FRAMES values to try, comma-separated")
    parser.add_argument("--config", help="a random-weight 'ACOUSTIC PRESET + VOCODER PRESET' voice instead")
    args = parser.parse_args()

    import torch

    from moksori.synthesis import Synthesizer, configure_allocator
    from moksori.synthesis import synthesizer as module
    from moksori.voices import resolve_voice
    from peer_side_by_side import TEXTS

    configure_allocator()  # as `moksori say` does
    if args.config:
        import tempfile

        from moksori.bench.synth import _random_voice

        voice = _random_voice(args.config, Path(tempfile.mkdtemp(prefix="first_audio_")))
        module.ALIGNMENT_RETRIES = 0
    else:
        voice = resolve_voice("default")
    synth = Synthesizer(voice, use_onnx=False, num_threads=args.threads)
    text = TEXTS["ko"]["para"]
    default_head, streams_mel = module.HEAD_FRAMES, module._streams_mel

    def first_audio() -> None:
        stream = synth.stream(text, seed=0)
        next(stream)
        stream.close()

    def variant(head: int, pieces: bool) -> Callable[[], float]:
        def run() -> float:
            module.HEAD_FRAMES = head
            module._streams_mel = streams_mel if pieces else (lambda acoustic: False)
            try:
                started = time.perf_counter()
                first_audio()
                return time.perf_counter() - started
            finally:
                module.HEAD_FRAMES, module._streams_mel = default_head, streams_mel
        return run

    variants = {"whole-first-sentence, head 32": variant(32, False), f"head-piece, head {default_head}": variant(default_head, True)}
    for head in (int(h) for h in args.heads.split(",") if h):
        if head != default_head:
            variants[f"head-piece, head {head}"] = variant(head, True)
    results: dict[str, list[float]] = {name: [] for name in variants}
    for run in variants.values():
        run()  # warm-up
    for _ in range(args.rounds * args.repeats):  # one call of each variant in turn
        for name, run in variants.items():
            results[name].append(run())

    label = args.config or "shipped voice"
    if args.config:
        report(label, args, results, None, {})
        return
    sentences = synth._sentences(text, 0.2, 0.6)
    options = synth._options(1.0, 0.667, None, 0)
    acoustic = synth._acoustic
    ids, lengths = torch.tensor([sentences[0].ids]), torch.tensor([len(sentences[0].ids)])
    context = synth._context_frames
    with torch.inference_mode():
        out = acoustic.durations(ids, lengths, 1.0, None)
        frames = int(out[4][0])
        z = torch.randn(1, 80, frames)
        mel = acoustic.infer(ids, lengths, options.controls, lambda r, f, c: z[0, :c, :f].numpy()).mel[0].numpy()
        parts = {
            "front end (whole text)": lambda: synth._sentences(text, 0.2, 0.6),
            "encoder + durations": lambda: acoustic.durations(ids, lengths, 1.0, None),
            "flows, whole first sentence": lambda: acoustic._flows(z, None),
            f"flows, head ({default_head} + {context} + {acoustic.decoder_context()} frames)":
                lambda: acoustic._flows(z[:, :, : default_head + context + acoustic.decoder_context()], None),
            f"vocoder, head ({default_head} + {context} frames)": lambda: synth._vocode_span(mel, 0, default_head, options),
        }
        breakdown = {name: statistics.median(_time(run, args.repeats * 2)) for name, run in parts.items()}

    report(label, args, results, frames, breakdown, context)


def report(label: str, args: Any, results: dict[str, list[float]], frames: int | None,
           breakdown: dict[str, float], context: int | None = None) -> None:
    facts = f", first sentence {frames} frames, vocoder context {context}" if frames else ""
    print(f"# first audio, {label}, {args.threads} threads, {args.rounds} rounds x {args.repeats} runs{facts}")
    print("| variant | median s | min s | max s |\n| --- | ---: | ---: | ---: |")
    for name, times in results.items():
        print(f"| {name} | {statistics.median(times):.4f} | {min(times):.4f} | {max(times):.4f} |")
    if breakdown:
        print("\n| part | median s |\n| --- | ---: |")
        for name, seconds in breakdown.items():
            print(f"| {name} | {seconds:.4f} |")


if __name__ == "__main__":
    main()
