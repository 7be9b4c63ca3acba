"""Issue 14.9, 500s instead of 4xx: a lone surrogate in JSON text crashed while the 422 was
built; studio ids >= 2^63 overflowed SQLite (16 routes); a read-only data folder gave 500 on
upload/trim/delete/export/cancel, and delete/cancel took effect anyway (row gone, file kept; a
run whose runner failed stayed "running" for ever)."""

from __future__ import annotations

import io
import os
import re
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
import soundfile
from sqlalchemy import select

from moksori.bench.serve import build_tiny_voice
from moksori.store import Database, Recording, TrainingRun


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> Path:
    return build_tiny_voice(tmp_path_factory.mktemp("bundles") / "tiny", name="tiny")


@pytest.mark.parametrize("path, body", [
    ("/synthesize", b'{"text": "\\ud800"}'),
    ("/synthesize", b'{"text": "abc \\udfff def", "stream": true}'),
    ("/v1/audio/speech", b'{"input": "\\ud800", "voice": "tiny"}'),
    ("/synthesize", b'{"text": "hello", "voice": "\\ud800"}'),  # echoed in the voice_not_found message
    ("/api/studio/voices", b'{"name": "\\ud800", "language": "ko"}'),
    ("/api/studio/account/signin", b'{"username": "alice", "password": "\\ud800\\ud800\\ud800\\ud800"}'),
    ("/api/studio/account/signup", b'{"username": "alice", "password": "\\ud800\\ud800\\ud800\\ud800"}'),
])
def test_lone_surrogates_get_a_clean_4xx(make_site, tiny_bundle, path, body):
    site = make_site()
    shutil.copytree(tiny_bundle, site.voices_dir / "tiny")
    client = site.client(host="127.0.0.1")
    response = client.post(path, content=body, headers={"Content-Type": "application/json"})
    assert 400 <= response.status_code < 500, response.text
    assert "code" in response.json()["error"]


def test_text_fields_name_the_control_character(make_site, tiny_bundle):
    site = make_site()
    shutil.copytree(tiny_bundle, site.voices_dir / "tiny")
    client = site.client(host="127.0.0.1")
    response = client.post("/v1/audio/speech", json={"input": "안녕\x00하세요", "voice": "tiny"})
    error = response.json()["error"]
    assert response.status_code == 400 and error["code"] == "invalid_text"
    assert "input" in error["message"] and "U+0000" in error["message"] and error["position"] == 2
    assert client.get("/infer", params={"text": "안녕\x07"}).json()["error"]["code"] == "invalid_text"
    # tabs and line breaks are text
    assert client.post("/synthesize", json={"text": "안녕하세요.\n\t반갑습니다.\r\n"}).status_code == 200


def _all_routes(routes) -> Iterator:
    for route in routes:
        nested = getattr(route, "original_router", None)  # an included router (newer FastAPI)
        if nested is not None:
            yield from _all_routes(nested.routes)
        else:
            yield route


def _id_routes(app) -> list[tuple[str, str]]:
    routes = []
    for route in _all_routes(app.routes):
        if "_id}" not in getattr(route, "path", ""):
            continue
        for method in sorted(route.methods - {"HEAD"}):
            routes.append((method, route.path))
    return routes


@pytest.mark.parametrize("number", [2**63, 2**64, 10**40])
def test_huge_ids_are_404_or_422_on_every_route(make_site, number):
    client = make_site().client(host="127.0.0.1")
    routes = _id_routes(client.app)
    assert len(routes) >= 14  # with the two query-string ids below: the 16 routes of the issue
    for method, template in routes:
        path = re.sub(r"\{[a-z_]+\}", str(number), template)
        body = {"kept": True} if method == "PATCH" else ({} if method == "POST" else None)
        response = client.request(method, path, json=body)
        assert response.status_code in (404, 422), (method, path, response.status_code, response.text)
    for query in (f"/api/studio/prompt-sets/1/prompts?voice_id={number}", f"/api/studio/voices/1/progress?prompt_set_id={number}"):
        assert client.get(query).status_code in (404, 422)
    voice = client.post("/api/studio/voices", json={"name": "v", "language": "ko"}).json()["id"]
    response = client.post(f"/api/studio/voices/{voice}/takes", data={"prompt_id": str(number)},
                           files={"audio": ("a.wav", b"RIFF", "audio/wav")})
    assert response.status_code == 404


@contextmanager
def read_only(folder: Path) -> Iterator[None]:
    """Make ``folder`` unwritable for this process (root: chattr +i, which binds root too)."""
    if os.geteuid() == 0:
        if shutil.which("chattr") is None:
            pytest.skip("needs chattr to make a folder read-only for root")
        on, off = ["chattr", "-R", "+i", str(folder)], ["chattr", "-R", "-i", str(folder)]
    else:
        on, off = ["chmod", "-R", "a-w", str(folder)], ["chmod", "-R", "u+w", str(folder)]
    if subprocess.run(on, capture_output=True).returncode != 0:
        pytest.skip(f"cannot make {folder} read-only here")
    try:
        probe = folder / "probe"
        try:
            probe.write_bytes(b"")
        except OSError:
            pass
        else:
            probe.unlink()
            pytest.skip("the folder stays writable (file system without immutable files?)")
        yield
    finally:
        subprocess.run(off, capture_output=True)


def _tone(seconds: float = 2.0, rate: int = 22050) -> bytes:
    """A WAV of a tone between two short silences: something to trim."""
    t = np.arange(int(seconds * rate)) / rate
    wave = 0.3 * np.sin(2 * np.pi * 220 * t) * ((t > 0.5) & (t < seconds - 0.5))
    buffer = io.BytesIO()
    soundfile.write(buffer, wave.astype(np.float32), rate, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _rows_and_files(site, voice_id: int) -> tuple[set[str], set[str]]:
    database = Database(site.db_url)
    with database.session() as session:
        rows = set(session.scalars(select(Recording.path).where(Recording.voice_id == voice_id)))
    database.dispose()
    takes = site.root / "studio" / f"voices/{voice_id}/takes"
    files = {p.relative_to(site.root / "studio").as_posix() for p in takes.glob("*.wav")
             if not p.name.endswith(".untrimmed.wav")}
    # A take's untrimmed original (kept beside it, see docs/studio.md) never outlives the take.
    originals = {p.relative_to(site.root / "studio").as_posix().replace(".untrimmed.wav", ".wav")
                 for p in takes.glob("*.untrimmed.wav")}
    assert originals <= files, originals - files
    return rows, files


def _insert_run(site, voice_id: int, status: str) -> int:
    database = Database(site.db_url)
    folder = site.root / "studio" / f"voices/{voice_id}/runs/x"
    folder.mkdir(parents=True, exist_ok=True)
    with database.session() as session:
        run = TrainingRun(voice_id=voice_id, recipe="tiny", status=status, run_dir=str(folder), log_path=str(folder / "job.log"))
        session.add(run)
        session.flush()
        run_id = run.id
    database.dispose()
    return run_id


def _status(site, run_id: int) -> str:
    database = Database(site.db_url)
    with database.session() as session:
        status = session.get(TrainingRun, run_id).status
    database.dispose()
    return status


def test_read_only_data_folder_gives_clean_errors_and_nothing_half_done(make_site, sec):
    site = make_site()
    client = site.client(host="127.0.0.1")
    voice = sec.new_voice(client, "voice")
    prompt = sec.first_ko_prompt(client)
    takes = [sec.upload(client, voice, prompt, _tone()).json()["recording"]["id"] for _ in range(2)]
    for take in takes:
        assert client.patch(f"/api/studio/recordings/{take}", json={"kept": True}).status_code == 200
    run_id = _insert_run(site, voice, "running")
    before = _rows_and_files(site, voice)
    assert before[0] == before[1] and len(before[0]) == 2

    with read_only(site.root / "studio"):
        attempts = {
            "upload": sec.upload(client, voice, prompt, sec.flac_silence(1.0)),
            "trim": client.post(f"/api/studio/recordings/{takes[0]}/trim"),
            "delete take": client.delete(f"/api/studio/recordings/{takes[1]}"),
            "export": client.get(f"/api/studio/voices/{voice}/export"),
            "delete voice": client.delete(f"/api/studio/voices/{voice}", params={"confirm": "voice"}),
        }
        for what, response in attempts.items():
            assert response.status_code in (503, 507), (what, response.status_code, response.text)
            assert response.json()["error"]["code"].startswith("storage_"), what
            assert "retry-after" in response.headers
        assert _rows_and_files(site, voice) == before  # the deletes did not half-happen
        assert _status(site, run_id) == "running"  # deleting the voice did not cancel its run first
        # Cancelling is a database change: it happens whole (its log line cannot be written, and that is no error).
        response = client.post(f"/api/studio/training/{run_id}/cancel")
        assert response.status_code == 200 and response.json()["status"] == "cancelled"
    assert _status(site, run_id) == "cancelled"
    assert client.delete(f"/api/studio/recordings/{takes[1]}").status_code == 200
    rows, files = _rows_and_files(site, voice)
    assert rows == files and len(rows) == 1


def test_a_run_whose_runner_fails_is_not_left_running(make_site, sec):
    site = make_site()
    client = site.client(host="127.0.0.1")
    voice = sec.new_voice(client, "voice")
    site.stop(client)
    run_id = _insert_run(site, voice, "queued")
    with read_only(site.root / "studio"):
        site.client(host="127.0.0.1")  # the runner picks the queued run up and cannot open its folder
        deadline = time.monotonic() + 10
        while _status(site, run_id) in ("queued", "running") and time.monotonic() < deadline:
            time.sleep(0.1)
        assert _status(site, run_id) == "failed"
