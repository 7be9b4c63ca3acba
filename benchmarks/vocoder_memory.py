"""Vocoder peak memory on one long sentence: whole-sentence vocoding vs spans (VOCODE_CHUNK_FRAMES
of moksori.synthesis.synthesizer and moksori.models.layers.common).

Each measurement runs in a fresh child process (peak RSS = that case alone, ``getrusage``), with
the allocator settings `moksori say` uses and 2 threads. Random weights (memory does not depend on
training); Glow-TTS base with a constant 3 frames per token, so one sentence of ~20 s of audio.
Also checks that the two outputs agree (max |difference|).

    .venv/bin/python benchmarks/vocoder_memory.py                # HiFi-GAN V1 and Vocos small
    .venv/bin/python benchmarks/vocoder_memory.py --config "glow_tts base + hifigan v2"
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

CONFIGS = ("glow_tts base + hifigan v1", "glow_tts base + vocos small")
# One sentence (commas only) of about 20 s with 3 frames per token.
TEXT = ("주말에는 밀린 빨래를 하고 집 안 청소를 합니다, 저는 보통 일곱 시쯤 일어나서 물 한 잔부터 마셔요, "
        "아버지는 매일 밤 뉴스를 보시다가 소파에서 잠이 드신다, 생크림 케이크를 자를 때는 칼을 뜨거운 물에 "
        "담갔다가 쓰면 단면이 깔끔하게 나온다")


def child(voice_dir: str, mode: str, out: str) -> None:
    import numpy as np
    import torch

    from moksori.synthesis import Synthesizer, configure_allocator
    from moksori.models.layers import common
    from moksori.synthesis import synthesizer as module

    configure_allocator()
    torch.set_num_threads(2)
    if mode == "whole":  # as before spans: both levels off
        module.VOCODE_CHUNK_FRAMES = common.VOCODE_CHUNK_FRAMES = 10**9
    synth = Synthesizer(voice_dir, use_onnx=False)
    synth.synthesize("안녕하세요.", seed=0)  # warm-up on a short sentence
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    wave = synth.synthesize(TEXT, seed=0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    np.save(out, wave)
    print("RESULT " + json.dumps({"mode": mode, "audio_s": round(wave.size / synth.sample_rate, 2),
                                  "rss_before_mb": round(before), "peak_rss_mb": round(peak)}), flush=True)


def measure(config: str, work: Path) -> dict[str, object]:
    from moksori.bench.synth import _random_voice

    voice = _random_voice(config, work / config.replace(" ", "_").replace("+", ""))
    rows = {}
    for mode in ("whole", "chunked"):
        out = work / f"{mode}.npy"
        result = subprocess.run([sys.executable, __file__, "--child", str(voice), mode, str(out)],
                                capture_output=True, text=True, check=True)
        line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
        rows[mode] = json.loads(line[7:])
    import numpy as np

    difference = float(np.abs(np.load(work / "whole.npy") - np.load(work / "chunked.npy")).max())
    return {"config": config, **{f"{mode}_{key}": value for mode, row in rows.items() for key, value in row.items()
                                 if key != "mode"}, "max_abs_difference": difference}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--config", action="append", help=f"model pair (default: {list(CONFIGS)})")
    parser.add_argument("--child", nargs=3, metavar=("VOICE", "MODE", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return 0
    print(f"{'config':<30} {'audio s':>7} {'whole MB':>9} {'chunked MB':>10} {'loaded MB':>9} {'max |diff|':>10}")
    with tempfile.TemporaryDirectory(prefix="moksori-vocmem-") as temp:
        for config in args.config or CONFIGS:
            row = measure(config, Path(temp))
            print(f"{config:<30} {row['whole_audio_s']:>7} {row['whole_peak_rss_mb']:>9} {row['chunked_peak_rss_mb']:>10} "
                  f"{row['chunked_rss_before_mb']:>9} {row['max_abs_difference']:>10.2e}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
