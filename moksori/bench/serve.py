"""Server load test: ``moksori bench serve``.

Starts ``moksori.server`` on loopback in a subprocess (uvicorn, the same app factory as
``moksori serve``) with a given voice or a tiny random-weight one, then runs N concurrent
clients (httpx, asyncio) for a fixed time, each sending ``POST /v1/audio/speech`` requests
with a different sentence every time (cache off by default, so every request synthesises).
Prints requests/s, latency percentiles, errors and the server's peak resident memory.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import torch

from moksori.bench import write_untrained_checkpoint
from moksori.models import registry
from moksori.server.settings import ServerSettings
from moksori.synthesis import make_bundle
from moksori.text import TextFrontend

TINY_FRAMES_PER_TOKEN = 3.0

__all__ = ["build_tiny_voice", "main", "run_load_test"]


def build_tiny_voice(out_dir: str | Path, *, name: str = "tiny", griffin_lim: bool = False, seed: int = 0) -> Path:
    """A voice bundle with the default acoustic and vocoder families at their "tiny" presets (or
    Griffin-Lim), random weights. Every token lasts the same number of frames, so audio length
    grows with the text."""
    out_dir = Path(out_dir)
    work = Path(tempfile.mkdtemp(prefix="tiny-voice-"))
    frontend = TextFrontend("ko")
    torch.manual_seed(seed)
    acoustic_family = registry.get(registry.DEFAULT_ACOUSTIC)
    acoustic = acoustic_family.build(acoustic_family.config("tiny", n_vocab=len(frontend.symbols)))
    acoustic_family.extra["constant_durations"](acoustic, TINY_FRAMES_PER_TOKEN)
    acoustic_ckpt = write_untrained_checkpoint(work / "acoustic.pt", acoustic, acoustic_family.name, frontend)
    vocoder_ckpt = None
    if not griffin_lim:
        vocoder_family = registry.get(registry.DEFAULT_VOCODER)
        vocoder = vocoder_family.build(vocoder_family.config("tiny"))
        vocoder_ckpt = write_untrained_checkpoint(work / "vocoder.pt", vocoder, vocoder_family.name, None)
    try:
        return make_bundle(acoustic_ckpt, out_dir, vocoder_ckpt=vocoder_ckpt, name=name, description="tiny random voice")
    finally:
        for path in work.iterdir():
            path.unlink()
        work.rmdir()


# --- the load test -----------------------------------------------------------------------------


@dataclass
class LevelResult:
    concurrency: int
    duration_s: float
    latencies: list[float] = field(default_factory=list)
    statuses: Counter[str] = field(default_factory=Counter)
    audio_s: float = 0.0
    peak_rss_mb: float = 0.0

    @property
    def ok(self) -> int:
        return self.statuses.get("200", 0)

    def row(self) -> dict[str, float | int | str]:
        ordered = sorted(self.latencies)
        errors = sum(count for status, count in self.statuses.items() if status != "200")
        return {
            "concurrency": self.concurrency,
            "requests": len(ordered),
            "req_per_s": round(self.ok / self.duration_s, 2),
            "p50_ms": round(_percentile(ordered, 50) * 1000, 1),
            "p95_ms": round(_percentile(ordered, 95) * 1000, 1),
            "p99_ms": round(_percentile(ordered, 99) * 1000, 1),
            "errors": errors,
            "error_kinds": ", ".join(f"{s}×{n}" for s, n in sorted(self.statuses.items()) if s != "200") or "-",
            "audio_s_per_s": round(self.audio_s / self.duration_s, 2),
            "peak_server_rss_mb": round(self.peak_rss_mb, 1),
        }


def _percentile(ordered: Sequence[float], percent: float) -> float:
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, math.ceil(percent / 100 * len(ordered)) - 1))
    return ordered[index]


def run_load_test(
    voice_dir: str | Path | None = None,
    *,
    concurrencies: Sequence[int] = (1, 4, 16),
    duration_s: float = 10.0,
    workers: int = 1,
    max_concurrency: int = 2,
    max_queue: int = 16,
    cache_entries: int = 0,
    response_format: str = "wav",
) -> list[dict[str, float | int | str]]:
    """Start a server, load it at each concurrency in turn, stop it; one result row per level."""
    with tempfile.TemporaryDirectory(prefix="moksori-bench-serve-") as temp:
        voices = Path(voice_dir) if voice_dir is not None else build_tiny_voice(Path(temp) / "voices" / "tiny").parent
        settings = ServerSettings(
            voices_dir=voices.resolve(),
            db_url=None,
            require_api_keys=False,
            max_concurrency=max_concurrency,
            max_queue=max_queue,
            cache_entries=cache_entries,
            synthesis_threads=max(1, (os.cpu_count() or 1) // (max_concurrency * workers)),
        )
        server = _Server(settings, workers)
        with server as base_url:
            texts = _texts()
            asyncio.run(_warm_up(base_url, texts, response_format))
            return [
                asyncio.run(_level(base_url, server.pid, level, duration_s, texts, response_format)).row()
                for level in concurrencies
            ]


class _Server:
    """A uvicorn subprocess on a free loopback port; the context value is its base URL."""

    def __init__(self, settings: ServerSettings, workers: int) -> None:
        self.settings = settings
        self.workers = workers
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> str:
        port = _free_port()
        env = {**os.environ, **self.settings.to_env()}
        command = [sys.executable, "-m", "uvicorn", "moksori.server.run:app_from_env", "--factory",
                   "--host", "127.0.0.1", "--port", str(port), "--workers", str(self.workers), "--log-level", "warning"]
        self.process = subprocess.Popen(command, env=env)
        base_url = f"http://127.0.0.1:{port}"
        _wait_until_up(base_url, self.process)
        return base_url

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def __exit__(self, *exc: object) -> None:
        if self.process is not None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _wait_until_up(base_url: str, process: subprocess.Popen[bytes], timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the server exited with status {process.returncode} before answering")
        try:
            if httpx.get(f"{base_url}/health", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"the server did not answer {base_url}/health within {timeout_s:g} s")


def _texts() -> list[str]:
    from moksori.data.prompt_sets import builtin_prompts

    return builtin_prompts("ko")


def _server_rss_mb(pid: int) -> float:
    """Resident memory of the server process and its children (uvicorn workers), in MiB."""
    total_kb = 0
    pids = [pid]
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        pids += [int(child) for child in children]
    except OSError:
        pass
    for each in pids:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total_kb += int(line.split()[1])
        except OSError:
            continue
    return total_kb / 1024


async def _warm_up(base_url: str, texts: list[str], response_format: str) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=120) as client:
        response = await client.post("/v1/audio/speech", json={"input": texts[0], "response_format": response_format})
        response.raise_for_status()


async def _level(base_url: str, server_pid: int, concurrency: int, duration_s: float, texts: list[str], response_format: str) -> LevelResult:
    result = LevelResult(concurrency, duration_s)
    deadline = time.monotonic() + duration_s
    counter = iter(range(1 << 30))
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base_url, timeout=120, limits=limits) as client:

        async def one_client() -> None:
            while time.monotonic() < deadline:
                text = texts[next(counter) % len(texts)]
                started = time.perf_counter()
                try:
                    response = await client.post("/v1/audio/speech", json={"input": text, "response_format": response_format})
                    status = str(response.status_code)
                    if response.status_code == 200:
                        result.audio_s += float(response.headers.get("x-audio-seconds", 0))
                except httpx.HTTPError as error:
                    status = type(error).__name__
                result.latencies.append(time.perf_counter() - started)
                result.statuses[status] += 1

        async def watch_memory() -> None:
            while time.monotonic() < deadline:
                result.peak_rss_mb = max(result.peak_rss_mb, _server_rss_mb(server_pid))
                await asyncio.sleep(0.2)

        await asyncio.gather(watch_memory(), *(one_client() for _ in range(concurrency)))
    return result


def format_table(rows: list[dict[str, float | int | str]]) -> str:
    columns = ["concurrency", "requests", "req_per_s", "p50_ms", "p95_ms", "p99_ms", "errors", "error_kinds", "audio_s_per_s", "peak_server_rss_mb"]
    lines = ["| " + " | ".join(columns) + " |", "|" + "|".join("---:" for _ in columns) + "|"]
    lines += ["| " + " | ".join(str(row[column]) for column in columns) + " |" for row in rows]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="moksori bench serve", description=__doc__.split("\n\n")[0])
    parser.add_argument("--voice", type=Path, help="voices folder (or one voice bundle) to serve; default: a tiny random voice")
    parser.add_argument("--concurrency", type=int, action="append", help="concurrent clients (repeatable; default 1, 4, 16)")
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per concurrency level")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    parser.add_argument("--max-concurrency", type=int, default=2, help="synthesis jobs at once per worker")
    parser.add_argument("--max-queue", type=int, default=16, help="jobs allowed to wait per worker (beyond: 503)")
    parser.add_argument("--cache-entries", type=int, default=0, help="server audio cache size (0: every request synthesises)")
    parser.add_argument("--format", default="wav", help="response_format of the requests")
    args = parser.parse_args(argv)
    rows = run_load_test(
        args.voice,
        concurrencies=args.concurrency or (1, 4, 16),
        duration_s=args.duration,
        workers=args.workers,
        max_concurrency=args.max_concurrency,
        max_queue=args.max_queue,
        cache_entries=args.cache_entries,
        response_format=args.format,
    )
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
