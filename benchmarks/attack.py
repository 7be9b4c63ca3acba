"""A reproducible loopback attack suite against a moksori server (issue 14).

Starts its own server (``moksori.server.run.serve``, as ``moksori serve`` does) on a free
loopback port in a temporary data folder, runs each attack case a bounded number of times with
bounded waits, and prints one table row per case:

    tried / clean 4xx / 5xx / hang / memory growth (RSS of the server process) / outcome

"clean 4xx" counts JSON error answers with a 4xx status (and deliberate JSON 503/507 answers
with a code and Retry-After, such as a read-only data folder's); "5xx" every other 5xx; "hang" counts connections or requests
still open at the case's deadline; "mem" is the growth of the server's peak RSS during the case
over its RSS before it; "outcome" says whether the attack worked.

    .venv/bin/python benchmarks/attack.py                      # the tree this script is in
    .venv/bin/python benchmarks/attack.py --tree /tmp/before   # another checkout (e.g. a git worktree)
    .venv/bin/python benchmarks/attack.py --cases signout,huge_ids --json out.json

Loopback only; nothing leaves the machine. The read-only-folder case needs root (chattr +i) or a
non-root user (chmod); it reports "skipped" otherwise.
"""

from __future__ import annotations

import argparse
import http.client
import io
import json
import os
import shutil
import socket
import sqlite3
import stat
import subprocess
import sys
import tempfile
import threading
import time
import wave
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PASSWORD = "correct horse battery"


@dataclass
class Row:
    case: str
    tried: int = 0
    clean_4xx: int = 0
    server_5xx: int = 0
    hang: int = 0
    mem_mb: float = 0.0
    outcome: str = ""
    other: int = 0  # 2xx/3xx and non-JSON 4xx

    def count(self, status: int, json_body: bool = True, retry_after: bool = False) -> None:
        self.tried += 1
        if status in (503, 507) and json_body and retry_after:
            self.clean_4xx += 1  # a deliberate "try later" with a code (e.g. a read-only data folder)
        elif status >= 500:
            self.server_5xx += 1
        elif 400 <= status < 500 and json_body:
            self.clean_4xx += 1
        else:
            self.other += 1

    def add(self, reply: Reply) -> None:
        self.count(reply.status, reply.is_json, "retry-after" in reply.headers)


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def is_json(self) -> bool:
        return self.headers.get("content-type", "").startswith("application/json")

    def json(self) -> Any:
        return json.loads(self.body)


# --- the server ----------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


# Runs in the server's process: the tree under test comes first, ahead of an editable install.
BOOT = """
import sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in str(getattr(f, "__module__", ""))]
sys.path.insert(0, {tree!r})
for name in [m for m in sys.modules if m == "moksori" or m.startswith("moksori.")]:
    del sys.modules[name]
from moksori.server.run import serve
serve(host="127.0.0.1", port={port}, voices_dir={voices!r}, db_url={db!r}, max_concurrency=2, max_queue=16,
      include_default_voice=True, log_level="warning")
"""


class Server:
    def __init__(self, tree: Path, root: Path) -> None:
        self.tree = tree
        self.root = root
        self.port = _free_port()
        self.db_path = root / "moksori.db"
        self.data_dir = root / "studio"
        (root / "voices").mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, MOKSORI_STUDIO_DATA_DIR=str(self.data_dir), OMP_NUM_THREADS="1",
                   PYTHONPATH=str(tree))
        code = BOOT.format(tree=str(tree), port=self.port, voices=str(root / "voices"), db=f"sqlite:///{self.db_path}")
        self.log = open(root / "server.log", "wb")
        self.process = subprocess.Popen([sys.executable, "-c", code], stdout=self.log, stderr=subprocess.STDOUT, cwd=root, env=env)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"the server exited; see {root / 'server.log'}")
            try:
                if self.request("GET", "/health", timeout=2).status in (200, 503):
                    return
            except OSError:
                time.sleep(0.3)
        raise RuntimeError("the server did not start within 90 s")

    def rss_mb(self) -> float:
        try:
            for line in Path(f"/proc/{self.process.pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
        except OSError:
            pass
        return 0.0

    def request(self, method: str, path: str, body: bytes | str | None = None, headers: dict[str, str] | None = None,
                timeout: float = 60.0) -> Reply:
        connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = body.encode() if isinstance(body, str) else body
            connection.request(method, path, body=data, headers=headers or {})
            response = connection.getresponse()
            return Reply(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
        finally:
            connection.close()

    def json(self, method: str, path: str, payload: Any, headers: dict[str, str] | None = None, **kw: Any) -> Reply:
        return self.request(method, path, json.dumps(payload), {"Content-Type": "application/json", **(headers or {})}, **kw)

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()


class PeakRss:
    """Samples the server's RSS while a case runs; ``growth`` is peak minus the start."""

    def __init__(self, server: Server) -> None:
        self.server = server
        self.start = server.rss_mb()
        self.peak = self.start
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.05):
            self.peak = max(self.peak, self.server.rss_mb())

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.server.rss_mb())

    @property
    def growth(self) -> float:
        return self.peak - self.start


# --- helpers ---------------------------------------------------------------------------------------


def cookie_of(reply: Reply) -> str:
    raw = reply.headers.get("set-cookie", "")
    return raw.split(";", 1)[0]


def sign_up(server: Server, name: str) -> str:
    reply = server.json("POST", "/api/studio/account/signup", {"username": name, "password": PASSWORD})
    if reply.status != 201:
        raise RuntimeError(f"sign-up failed: {reply.status} {reply.body[:200]!r}")
    return cookie_of(reply)


def wav_take(seconds: float = 1.5, rate: int = 22050) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * (t > 0.2) * (t < seconds - 0.2) * 32767).astype(np.int16)
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(tone.tobytes())
    return buffer.getvalue()


def multipart(fields: dict[str, str], file_field: str, filename: str, data: bytes) -> tuple[bytes, str]:
    boundary = "moksoriattackboundary"
    parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"{k}\"\r\n\r\n{v}\r\n".encode() for k, v in fields.items()]
    parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"{file_field}\"; filename=\"{filename}\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + data + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def studio_voice(server: Server, cookie: str, name: str) -> int:
    reply = server.json("POST", "/api/studio/voices", {"name": name, "language": "ko"}, {"Cookie": cookie})
    if reply.status != 201:
        raise RuntimeError(f"creating a voice failed: {reply.status} {reply.body[:200]!r}")
    return reply.json()["id"]


def first_prompt(server: Server, cookie: str) -> int:
    sets = server.request("GET", "/api/studio/prompt-sets", headers={"Cookie": cookie}).json()["prompt_sets"]
    set_id = next(s["id"] for s in sets if s["source"] == "builtin" and s["language"] == "ko")
    return server.request("GET", f"/api/studio/prompt-sets/{set_id}/prompts", headers={"Cookie": cookie}).json()["prompts"][0]["id"]


def upload_take(server: Server, cookie: str, voice_id: int, prompt_id: int) -> Reply:
    body, content_type = multipart({"prompt_id": str(prompt_id)}, "audio", "take.wav", wav_take())
    return server.request("POST", f"/api/studio/voices/{voice_id}/takes", body, {"Content-Type": content_type, "Cookie": cookie})


def raw_socket(server: Server, payload: bytes) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    sock.sendall(payload)
    return sock


def wait_closed(sockets: list[socket.socket], deadline_s: float) -> tuple[int, bytes]:
    """How many sockets are still open after ``deadline_s``; the first reply bytes seen."""
    end = time.monotonic() + deadline_s
    first = b""
    open_ = list(sockets)
    while open_ and time.monotonic() < end:
        for sock in list(open_):
            sock.settimeout(0.1)
            try:
                data = sock.recv(4096)
            except TimeoutError:
                continue
            except OSError:
                data = b""
            if data:
                first = first or data
                continue
            open_.remove(sock)
    for sock in sockets:
        sock.close()
    return len(open_), first


# --- the cases -------------------------------------------------------------------------------------


def case_signin_memory(server: Server, row: Row) -> None:
    sign_up(server, "memory01")
    with PeakRss(server) as rss, ThreadPoolExecutor(10) as pool:
        replies = list(pool.map(lambda _: server.json("POST", "/api/studio/account/signin",
                                                      {"username": "memory01", "password": PASSWORD}), range(10)))
    for reply in replies:
        row.add(reply)
    row.mem_mb = rss.growth
    ok = sum(reply.status == 200 for reply in replies)
    row.outcome = f"{ok}/10 signed in; peak RSS +{rss.growth:.0f} MB"


def case_signin_guessing(server: Server, row: Row) -> None:
    sign_up(server, "victim01")
    limited = 0
    retry_after = None
    with PeakRss(server) as rss:
        for index in range(30):
            reply = server.json("POST", "/api/studio/account/signin", {"username": "victim01", "password": f"wrong-{index:04d}"})
            row.add(reply)
            if reply.status == 429:
                limited += 1
                retry_after = retry_after or reply.headers.get("retry-after")
    row.mem_mb = rss.growth
    row.outcome = f"{30 - limited}/30 wrong passwords checked, {limited} refused (429" + (
        f", Retry-After {retry_after})" if retry_after else ")")


def case_signout(server: Server, row: Row) -> None:
    cookie = sign_up(server, "signout01")
    reply = server.request("POST", "/api/studio/account/signout", b"", {"Cookie": cookie, "Content-Type": "application/json"})
    row.add(reply)
    after = server.request("GET", "/api/studio/account", headers={"Cookie": cookie})
    row.add(after)
    alive = after.status == 200 and (after.json().get("user") or None) is not None
    row.outcome = "old cookie still signed in (attack works)" if alive else "old cookie refused"


def case_lone_surrogate(server: Server, row: Row) -> None:
    bodies = [("/synthesize", b'{"text":"\\ud800"}'), ("/synthesize", b'{"text":"abc \\udfff def"}'),
              ("/v1/audio/speech", b'{"input":"\\ud800","voice":"ko_default"}'),
              ("/api/studio/voices", b'{"name":"\\ud800","language":"ko"}')]
    for path, body in bodies:
        reply = server.request("POST", path, body, {"Content-Type": "application/json"})
        row.add(reply)
    reply = server.request("GET", "/infer?text=%ED%A0%80")
    row.add(reply)
    row.outcome = f"{row.server_5xx} of {row.tried} answered 5xx"


def case_huge_ids(server: Server, row: Row) -> None:
    paths = [
        ("GET", "/api/studio/voices/{n}"), ("DELETE", "/api/studio/voices/{n}?confirm=x"),
        ("GET", "/api/studio/voices/{n}/progress"), ("GET", "/api/studio/voices/{n}/export"),
        ("GET", "/api/studio/prompt-sets/{n}/prompts"), ("GET", "/api/studio/prompt-sets/1/prompts?voice_id={n}"),
        ("GET", "/api/studio/voices/1/progress?prompt_set_id={n}"),
        ("PATCH", "/api/studio/recordings/{n}"), ("POST", "/api/studio/recordings/{n}/trim"),
        ("DELETE", "/api/studio/recordings/{n}"), ("GET", "/api/studio/recordings/{n}/audio"),
        ("GET", "/api/studio/voices/{n}/training"), ("POST", "/api/studio/voices/{n}/training"),
        ("GET", "/api/studio/training/{n}"), ("POST", "/api/studio/training/{n}/cancel"),
        ("POST", "/api/studio/voices/{n}/takes"),
    ]
    for number in (2**63, 2**64, 10**30):
        for method, template in paths:
            body = b'{"kept": true}' if method == "PATCH" else (b"{}" if method == "POST" else None)
            reply = server.request(method, template.format(n=number), body, {"Content-Type": "application/json"})
            row.add(reply)
    row.outcome = f"{row.server_5xx} of {row.tried} answered 5xx"


def _immutable(path: Path, on: bool) -> bool:
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            return False
        return subprocess.run(["chattr", "-R", "+i" if on else "-i", str(path)], capture_output=True).returncode == 0
    for folder, dirs, files in os.walk(path):
        for name in [folder] + [os.path.join(folder, f) for f in files]:
            mode = os.stat(name).st_mode
            os.chmod(name, (mode & ~0o222) if on else (mode | 0o200))
    return True


def case_read_only_data(server: Server, row: Row) -> None:
    cookie = sign_up(server, "readonly01")
    voice = studio_voice(server, cookie, "readonly voice")
    prompt = first_prompt(server, cookie)
    takes = [upload_take(server, cookie, voice, prompt).json()["recording"] for _ in range(3)]
    with sqlite3.connect(server.db_path) as db:  # a running training run to cancel (no runner picks it up)
        run_dir = server.data_dir / f"voices/{voice}/runs/999"
        run_dir.mkdir(parents=True)
        db.execute("INSERT INTO training_runs (id, voice_id, recipe, status, progress, step, run_dir, log_path, created_at, updated_at) "
                   "VALUES (999, ?, 'x', 'running', 0, 0, ?, ?, '2026-01-01 00:00:00', '2026-01-01 00:00:00')",
                   (voice, str(run_dir), str(run_dir / "job.log")))
    if not _immutable(server.data_dir, True):
        row.outcome = "skipped (cannot make the folder read-only)"
        return
    headers = {"Cookie": cookie, "Content-Type": "application/json"}
    try:
        attempts = [
            upload_take(server, cookie, voice, prompt),
            server.request("POST", f"/api/studio/recordings/{takes[0]['id']}/trim", b"", headers),
            server.request("DELETE", f"/api/studio/recordings/{takes[1]['id']}", None, headers),
            server.request("GET", f"/api/studio/voices/{voice}/export", None, headers),
            server.request("POST", "/api/studio/training/999/cancel", b"", headers),
        ]
        codes = []
        for reply in attempts:
            row.add(reply)
            codes.append(str(reply.status))
    finally:
        _immutable(server.data_dir, False)
    with sqlite3.connect(server.db_path) as db:
        paths = dict(db.execute("SELECT id, path FROM recordings").fetchall())
    half = 0
    for take in takes:
        has_row = take["id"] in paths
        has_file = has_row and (server.data_dir / paths[take["id"]]).is_file()
        listed = any(p.name for p in (server.data_dir / f"voices/{voice}/takes").glob("*.wav"))
        if has_row != has_file or (not has_row and not listed and False):
            half += 1
    files = len(list((server.data_dir / f"voices/{voice}/takes").glob("*.wav")))
    if files != len(paths):
        half += 1
    row.outcome = f"statuses {'/'.join(codes)}; rows {len(paths)} vs files {files}" + ("; HALF-DONE" if half else "; consistent")


def case_abandoned(server: Server, row: Row, clients: int = 10) -> None:
    text = ("오늘은 날씨가 맑고 바람이 조금 붑니다. 내일은 비가 올 수도 있다고 합니다. " * 20)[:800]
    body = json.dumps({"text": text, "stream": False}).encode()
    server.json("POST", "/synthesize", {"text": "준비."}, timeout=120)  # the voice is loaded before the attack
    with PeakRss(server) as rss:
        for index in range(clients):
            payload = (f"POST /synthesize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                       f"Content-Length: {len(body)}\r\n\r\n").encode() + body[:-1] + (b" " if index % 2 else body[-1:])
            sock = raw_socket(server, payload)
            time.sleep(0.05)
            sock.close()
            row.tried += 1
        time.sleep(0.5)
        started = time.monotonic()
        try:
            reply = server.json("POST", "/synthesize", {"text": "안녕하세요."}, timeout=120)
            waited = time.monotonic() - started
            row.count(reply.status, reply.is_json)  # a 503 "busy" here is the attack working, not a clean refusal
            status = reply.status
        except TimeoutError:
            waited, status = 120.0, 0
            row.hang += 1
    row.mem_mb = rss.growth
    row.outcome = f"{clients} abandoned 800-char requests; a new short request waited {waited:.1f} s ({status})"


def case_slow_headers(server: Server, row: Row, deadline_s: float) -> None:
    sockets = [raw_socket(server, b"GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ") for _ in range(5)]
    row.tried = len(sockets)
    still, _ = wait_closed(sockets, deadline_s)
    row.hang = still
    row.outcome = f"{still}/5 incomplete-header connections still open after {deadline_s:.0f} s"


def case_short_body(server: Server, row: Row, deadline_s: float) -> None:
    head = b"POST /synthesize HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n"
    sockets = [raw_socket(server, head + b'{"text": "') for _ in range(3)]
    upload = (b"POST /api/studio/voices/1/takes HTTP/1.1\r\nHost: x\r\nContent-Type: multipart/form-data; boundary=b\r\n"
              b"Content-Length: 5000\r\n\r\n--b\r\n")
    sockets += [raw_socket(server, upload) for _ in range(2)]
    row.tried = len(sockets)
    still, first = wait_closed(sockets, deadline_s)
    row.hang = still
    status = first.split(b" ", 2)[1].decode() if first.startswith(b"HTTP/") else "none"
    row.outcome = f"{still}/5 short-body requests still open after {deadline_s:.0f} s (first answer: {status})"


def case_foreign_origin(server: Server, row: Row) -> None:
    cookie = sign_up(server, "origin01")
    evil = {"Cookie": cookie, "Origin": "https://evil.example"}
    accepted = 0
    replies = [server.json("POST", "/api/studio/voices", {"name": "csrf voice", "language": "ko"}, evil)]
    body, content_type = multipart({"name": "csrf set", "language": "ko"}, "file", "p.txt", "안녕하세요.\n".encode())
    replies.append(server.request("POST", "/api/studio/prompt-sets", body, {**evil, "Content-Type": content_type}))
    replies.append(server.json("POST", "/api/studio/account/signin", {"username": "origin01", "password": PASSWORD},
                               {"Referer": "https://evil.example/page"}))
    for reply in replies:
        row.add(reply)
        accepted += reply.status < 300
    same = server.json("POST", "/api/studio/voices", {"name": "same origin", "language": "ko"},
                       {"Cookie": cookie, "Origin": f"http://127.0.0.1:{server.port}"})
    page = server.request("GET", "/studio")
    framing = "X-Frame-Options " + ("set" if "x-frame-options" in page.headers else "missing") + \
              ", CSP " + ("set" if "content-security-policy" in page.headers else "missing")
    row.outcome = f"{accepted}/3 foreign-origin writes accepted; same-origin {same.status}; {framing}"


def case_protocol(server: Server, row: Row) -> None:
    checks = []
    reply = server.request("GET", "/health", headers={"X-Big": "a" * 70000})
    row.add(reply)
    checks.append(f"70 kB header {reply.status} {'json' if reply.is_json else 'text'}")
    reply = server.request("GET", "/infer?text=" + "a" * 70000)
    row.add(reply)
    checks.append(f"70 kB URL {reply.status} {'json' if reply.is_json else 'text'}")
    reply = server.request("POST", "/synthesize", b'{"text": "\xff\xfe"}', {"Content-Type": "application/json"})
    row.add(reply)
    code = reply.json()["error"]["code"] if reply.is_json else "text"
    checks.append(f"bad UTF-8 JSON {reply.status} {code}")
    for text in ("안녕\x00하세요.", "안녕\x07하세요."):
        reply = server.json("POST", "/synthesize", {"text": text})
        row.add(reply)
        checks.append(f"control char {reply.status}")
    row.outcome = "; ".join(checks)


def case_key_limits(server: Server, row: Row) -> None:
    code = ("import sys\nsys.meta_path[:] = [f for f in sys.meta_path if 'editable' not in str(getattr(f, '__module__', ''))]\n"
            f"sys.path.insert(0, {str(server.tree)!r})\nfrom moksori.server.run import keys_create\n"
            f"keys_create('sqlite:///{server.db_path}', 'attack', rate_limit=5)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    key = out.strip().splitlines()[1]
    limited = {"/voices": 0, "/metrics": 0}
    for path in limited:
        for _ in range(12):
            reply = server.request("GET", path, headers={"Authorization": f"Bearer {key}"})
            row.add(reply)
            limited[path] += reply.status == 429
    row.outcome = ", ".join(f"{path}: {n}/12 limited" for path, n in limited.items()) + " (key: 5/min)"


def case_files(server: Server, row: Row) -> None:
    mode = stat.S_IMODE(server.db_path.stat().st_mode)
    row.tried = 1
    row.outcome = f"database file mode {mode:o}"


CASES: dict[str, Callable[..., None]] = {
    "signin_memory": case_signin_memory,
    "signin_guessing": case_signin_guessing,
    "signout": case_signout,
    "lone_surrogate": case_lone_surrogate,
    "huge_ids": case_huge_ids,
    "read_only_data": case_read_only_data,
    "abandoned": case_abandoned,
    "slow_headers": case_slow_headers,
    "short_body": case_short_body,
    "foreign_origin": case_foreign_origin,
    "protocol": case_protocol,
    "key_limits": case_key_limits,
    "files": case_files,
}


def run(tree: Path, names: list[str], deadline_s: float) -> list[Row]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="moksori-attack-") as folder:
        server = Server(tree, Path(folder))
        try:
            for name in names:
                row = Row(name)
                started = time.monotonic()
                try:
                    if name in ("slow_headers", "short_body"):
                        CASES[name](server, row, deadline_s)
                    else:
                        CASES[name](server, row)
                except Exception as error:  # noqa: BLE001 - a broken case is reported, the others still run
                    row.outcome = f"case failed: {type(error).__name__}: {error}"[:160]
                row.outcome += f" [{time.monotonic() - started:.0f} s]"
                rows.append(row)
                print(format_row(row), flush=True)
                if server.process.poll() is not None:
                    raise RuntimeError("the server died")
        finally:
            server.stop()
            _immutable(Path(folder), False)
    return rows


HEADER = "| case | tried | clean 4xx (+503/507) | 5xx | hang | mem MB | outcome |\n| --- | ---: | ---: | ---: | ---: | ---: | --- |"


def format_row(row: Row) -> str:
    return f"| {row.case} | {row.tried} | {row.clean_4xx} | {row.server_5xx} | {row.hang} | {row.mem_mb:+.0f} | {row.outcome} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tree", type=Path, default=REPO, help="the moksori checkout to attack (default: this one)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from: {', '.join(CASES)}")
    parser.add_argument("--slow-deadline", type=float, default=45.0, help="seconds a slow client may hold a connection")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    names = [name.strip() for name in args.cases.split(",") if name.strip()]
    unknown = [name for name in names if name not in CASES]
    if unknown:
        parser.error(f"unknown cases: {', '.join(unknown)}")
    print(f"attacking {args.tree} on loopback\n{HEADER}", flush=True)
    rows = run(args.tree.resolve(), names, args.slow_deadline)
    if args.json:
        args.json.write_text(json.dumps([row.__dict__ for row in rows], indent=2, ensure_ascii=False))
    bad = sum(row.server_5xx + row.hang for row in rows)
    print(f"\ntotal: {sum(r.tried for r in rows)} tried, {sum(r.server_5xx for r in rows)} × 5xx, "
          f"{sum(r.hang for r in rows)} hangs, max memory growth {max((r.mem_mb for r in rows), default=0):+.0f} MB")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
