"""The multi-instance proof, with real processes on loopback (``benchmarks/cluster.py`` prints it).

PostgreSQL, Redis, two ``moksori serve`` instances behind nginx (round-robin) and ``moksori worker``
processes share one storage root (a temporary folder standing for the shared filesystem). Checks:

1. one API key's rate limit holds across both instances (requests through nginx);
2. killing one instance in the middle of a load of studio uploads loses no accepted upload, and
   the other keeps serving;
3. a training run submitted to one instance runs on the worker; the worker is killed mid-run and
   a new one resumes it from its checkpoint;
4. the trained voice is then served by both instances, neither restarted for it.

Every check is a :class:`Check` (held or not, with what was seen); nothing is skipped silently.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from moksori.services import LocalNginx, LocalPostgres, LocalRedis, free_port

RATE_LIMIT = 10
TAKES = 8
RECIPE = "tiny_cluster"


@dataclass
class Check:
    name: str
    held: bool
    detail: str


class Cluster:
    """The running set-up; ``with Cluster() as cluster`` starts PostgreSQL and Redis, the rest on demand."""

    def __init__(self, root: Path | None = None) -> None:
        self._own = root is None
        self.root = Path(tempfile.mkdtemp(prefix="moksori-cluster-")) if root is None else root
        self.processes: dict[str, subprocess.Popen[bytes]] = {}
        self.ports: dict[str, int] = {}
        self.postgres = LocalPostgres()
        self.redis = LocalRedis()
        self.nginx: LocalNginx | None = None
        self.db_url = ""

    def __enter__(self) -> Cluster:
        try:
            self.postgres.start()
            self.redis.start()
            self.db_url = self.postgres.create_database("moksori")
            for folder in ("voices", "studio", "recipes", "logs"):
                (self.root / folder).mkdir(parents=True, exist_ok=True)
            _write_recipe(self.root / "recipes" / f"{RECIPE}.yaml")
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def env(self) -> dict[str, str]:
        return dict(
            os.environ,
            MOKSORI_REDIS_URL=self.redis.url, MOKSORI_TRAINING_QUEUE=self.redis.url,
            MOKSORI_STUDIO_DATA_DIR=str(self.root / "studio"), MOKSORI_STUDIO_RECIPES_DIR=str(self.root / "recipes"),
            MOKSORI_STUDIO_DEFAULT_RECIPE=RECIPE, MOKSORI_STUDIO_ALLOW_ANONYMOUS="true",
            MOKSORI_STUDIO_TRAIN_THREADS="1", PYTHONUNBUFFERED="1",
        )

    def start_server(self, name: str) -> None:
        port = self.ports.get(name) or free_port()  # a restarted instance takes its old place behind nginx
        self.ports[name] = port
        self._spawn(name, ["serve", "--host", "127.0.0.1", "--port", str(port), "--voices", str(self.root / "voices"),
                           "--db-url", self.db_url, "--api-keys", "--max-concurrency", "1"])

    def start_worker(self, name: str) -> None:
        self._spawn(name, ["worker", "--queue", self.redis.url, "--db-url", self.db_url,
                           "--voices", str(self.root / "voices"), "--device", "cpu"])

    def start_nginx(self, names: list[str]) -> str:
        self.nginx = LocalNginx([self.ports[name] for name in names])
        self.nginx.start()
        return self.nginx.url

    def wait_healthy(self, names: list[str], timeout_s: float = 180) -> None:
        for name in names:
            _wait(lambda n=name: _healthy(self.url(n)) or self._exited(n), timeout_s, f"{name} to start")
            if self._exited(name):
                raise RuntimeError(f"{name} exited with {self.processes[name].returncode}:\n{self.log_tail(name)}")

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.ports[name]}"

    def kill(self, name: str) -> None:
        """SIGKILL: no goodbye, as a crashed machine."""
        process = self.processes[name]
        process.kill()
        process.wait()

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.root / "logs" / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.is_file() else ""

    def close(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for service in (self.nginx, self.redis, self.postgres):
            if service is not None:
                service.stop()
        if self._own:
            shutil.rmtree(self.root, ignore_errors=True)

    def _spawn(self, name: str, args: list[str]) -> None:
        with open(self.root / "logs" / f"{name}.log", "ab") as log:
            self.processes[name] = subprocess.Popen([sys.executable, "-m", "moksori.cli", *args], env=self.env(),
                                                    stdout=log, stderr=subprocess.STDOUT, cwd=self.root)

    def _exited(self, name: str) -> bool:
        return self.processes[name].poll() is not None


def _write_recipe(path: Path) -> None:
    """The shipped tiny Glow-TTS recipe cut to 6 steps with a checkpoint every 2 (its own 50-step
    warm-up kept: a 5-step one reached learning rates that sent some uploads' runs to NaN mels)."""
    import yaml

    from moksori.recipes import available_recipes

    recipe = yaml.safe_load(available_recipes([])["tiny_glowtts"].read_text(encoding="utf-8"))
    recipe["train"].update(steps=6, checkpoint_interval=2, eval_interval=100000, log_interval=1)
    path.write_text(yaml.safe_dump(recipe), encoding="utf-8")


def _healthy(url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return httpx.get(f"{url}/health", timeout=2).status_code == 200
    return False


def _wait(check: Callable[[], Any], timeout_s: float, what: str) -> Any:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def spoken_takes(count: int) -> list[tuple[str, bytes]]:
    """(prompt text, WAV bytes) for the first built-in Korean prompts, spoken by espeak-ng with
    80 ms of silence each side (as a recorded take has)."""
    import numpy as np
    import soundfile

    from moksori.audio import resample
    from moksori.data.prompt_sets import builtin_prompts
    from moksori.espeak import synthesize

    takes = []
    for text in builtin_prompts("ko")[:count]:
        wave, rate = synthesize(text, voice="ko")
        pad = np.zeros(int(0.08 * 22050), np.float32)
        buffer = io.BytesIO()
        soundfile.write(buffer, np.concatenate([pad, resample(wave, rate, 22050), pad]), 22050, format="WAV",
                        subtype="PCM_16")
        takes.append((text, buffer.getvalue()))
    return takes


def check_rate_limit(proxy: str, key: str, cluster: Cluster, metrics_key: str) -> Check:
    headers = {"Authorization": f"Bearer {key}"}
    statuses = [httpx.get(f"{proxy}/voices", headers=headers, timeout=30).status_code for _ in range(RATE_LIMIT + 6)]
    served = {name: _metric(cluster.url(name), metrics_key, '/voices",status="200"') for name in ("a", "b")}
    held = statuses.count(200) == RATE_LIMIT and statuses.count(429) == 6 and all(served.values())
    return Check(f"rate limit {RATE_LIMIT}/min for one key across 2 instances", held,
                 f"{statuses.count(200)} × 200, {statuses.count(429)} × 429 of {len(statuses)}; "
                 f"200s served by a: {served['a']:.0f}, b: {served['b']:.0f}")


def _metric(url: str, key: str, contains: str) -> float:
    """The sum of one instance's own request counts whose labels contain ``contains``."""
    text = httpx.get(f"{url}/metrics", headers={"Authorization": f"Bearer {key}"}, timeout=10).text
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith("moksori_requests_total") and contains in line)


def check_uploads_survive_a_killed_instance(proxy: str, cluster: Cluster, voice: int, prompts: dict[str, int],
                                            takes: list[tuple[str, bytes]]) -> Check:
    accepted: list[int] = []
    refused: list[str] = []
    lock = threading.Lock()
    two_accepted = threading.Event()

    def upload(text: str, data: bytes) -> None:
        try:
            response = httpx.post(f"{proxy}/api/studio/voices/{voice}/takes", data={"prompt_id": str(prompts[text])},
                                  files={"audio": ("take.wav", data, "application/octet-stream")}, timeout=60)
        except httpx.HTTPError as error:
            with lock:
                refused.append(type(error).__name__)
            return
        with lock:
            if response.status_code == 201:
                accepted.append(response.json()["recording"]["id"])
                if len(accepted) >= 2:
                    two_accepted.set()
            else:
                refused.append(str(response.status_code))

    threads = [threading.Thread(target=upload, args=take) for take in takes]
    for thread in threads:
        thread.start()
        time.sleep(0.05)
    two_accepted.wait(120)
    cluster.kill("b")
    for thread in threads:
        thread.join()
    missing = [i for i in accepted if httpx.get(f"{proxy}/api/studio/recordings/{i}/audio", timeout=30).status_code != 200]
    health = [httpx.get(f"{proxy}/health", timeout=10).status_code for _ in range(6)]
    held = not missing and len(accepted) >= 2 and health == [200] * 6
    return Check("instance b killed mid-upload: no accepted upload lost, a keeps serving", held,
                 f"{len(accepted)} accepted, {len(refused)} refused ({', '.join(refused) or 'none'}), "
                 f"{len(missing)} accepted missing; /health after: {health.count(200)}/6 × 200")


def check_training_on_worker(cluster: Cluster, voice: int) -> tuple[Check, Check]:
    a = cluster.url("a")
    response = httpx.post(f"{a}/api/studio/voices/{voice}/training", json={"recipe": RECIPE}, timeout=30)
    if response.status_code != 202:
        failed = Check("training run submitted to a runs on the worker", False, f"{response.status_code} {response.text[:200]}")
        return failed, Check("worker killed mid-run: a new worker resumes it", False, "not reached")
    run_id = response.json()["id"]
    started = time.monotonic()
    checkpoint = cluster.root / "studio" / "voices" / str(voice) / "runs" / str(run_id) / "train" / "model" / "latest.pt"
    run = _wait(lambda: checkpoint.is_file() and (r := _run(a, run_id))["step"] >= 2 and r, 180,
                "the worker's first checkpoint")
    ran = Check("training run submitted to a runs on the worker", run["stage"].startswith("train"),
                f"run {run_id}: step {run['step']}, stage {run['stage']!r} after {time.monotonic() - started:.0f} s")
    cluster.kill("worker")
    killed_at = run["step"]
    cluster.start_worker("worker2")
    done = _wait(lambda: _run(a, run_id)["status"] not in ("queued", "running") and _run(a, run_id), 240, "the run to end")
    log = done["log_tail"]
    match = re.search(r"resuming model from step (\d+)", _full_log(cluster, voice, run_id))
    resumed = Check("worker killed mid-run: a new worker resumes it", done["status"] == "succeeded" and match is not None,
                    f"killed at step ≥{killed_at}; resumed from {match.group(1) if match else '?'}; "
                    f"status {done['status']}" + ("" if done["status"] == "succeeded" else f": {log[-300:]}"))
    return ran, resumed


def _run(url: str, run_id: int) -> dict[str, Any]:
    return httpx.get(f"{url}/api/studio/training/{run_id}", timeout=30).json()


def _full_log(cluster: Cluster, voice: int, run_id: int) -> str:
    path = cluster.root / "studio" / "voices" / str(voice) / "runs" / str(run_id) / "job.log"
    return path.read_text(errors="replace") if path.is_file() else ""


def check_voice_served_by_both(cluster: Cluster, key: str, name: str) -> Check:
    headers = {"Authorization": f"Bearer {key}"}
    results = {}
    for instance in ("a", "b"):
        response = httpx.get(f"{cluster.url(instance)}/infer", params={"text": "안녕하세요", "voice": name},
                             headers=headers, timeout=120)
        results[instance] = f"{response.status_code} {response.headers.get('content-type', '')}"
    held = all(r == "200 audio/wav" for r in results.values())
    return Check("the worker's voice is served by both instances", held, "; ".join(f"{k}: {v}" for k, v in results.items()))


def run_proof(root: Path | None = None, progress: Callable[[str], None] = lambda _: None) -> list[Check]:
    """Start everything, run the four checks, stop everything; the checks in order."""
    from moksori.store import Database
    from moksori.store.keys import create_api_key

    checks: list[Check] = []
    started = time.monotonic()
    inner = progress
    progress = lambda line: inner(f"[{time.monotonic() - started:5.1f} s] {line}")  # noqa: E731
    with Cluster(root) as cluster:
        with Database(cluster.db_url) as database:
            _, key = create_api_key(database, "proof", rate_limit_per_minute=RATE_LIMIT)
            _, voice_key = create_api_key(database, "voice", rate_limit_per_minute=600)
        progress("starting two instances and a worker")
        cluster.start_server("a")
        cluster.start_server("b")
        cluster.start_worker("worker")
        cluster.wait_healthy(["a", "b"])
        progress("instances up")
        proxy = cluster.start_nginx(["a", "b"])
        checks.append(check_rate_limit(proxy, key, cluster, voice_key))
        progress(f"{checks[-1].name}: {checks[-1].detail}")

        response = httpx.post(f"{proxy}/api/studio/voices", json={"name": "cluster-voice", "language": "ko"}, timeout=30)
        response.raise_for_status()
        voice = response.json()["id"]
        sets = httpx.get(f"{proxy}/api/studio/prompt-sets", timeout=30).json()["prompt_sets"]
        set_id = next(s["id"] for s in sets if s["source"] == "builtin" and s["language"] == "ko")
        prompts = {p["text"]: p["id"] for p in httpx.get(f"{proxy}/api/studio/prompt-sets/{set_id}/prompts",
                                                         timeout=30).json()["prompts"]}
        checks.append(check_uploads_survive_a_killed_instance(proxy, cluster, voice, prompts, spoken_takes(TAKES)))
        progress(f"{checks[-1].name}: {checks[-1].detail}")
        cluster.start_server("b")  # a replacement instance joins on the same port
        checks.extend(check_training_on_worker(cluster, voice))
        progress(f"{checks[-2].name}: {checks[-2].detail}")
        progress(f"{checks[-1].name}: {checks[-1].detail}")
        cluster.wait_healthy(["b"])
        checks.append(check_voice_served_by_both(cluster, voice_key, "cluster-voice"))
        checks.append(Check("whole proof", all(c.held for c in checks), f"{time.monotonic() - started:.0f} s"))
    return checks


def format_table(checks: list[Check]) -> str:
    width = max(len(c.name) for c in checks)
    lines = [f"| {'check':<{width}} | held | what was seen", f"|{'-' * (width + 2)}|------|--------------"]
    lines += [f"| {c.name:<{width}} | {'yes' if c.held else 'NO':<4} | {c.detail}" for c in checks]
    return "\n".join(lines)
