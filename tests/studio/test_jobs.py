"""Training jobs started from the studio: export → preprocess → train (a child process) → bundle;
cancel; resume after a server restart."""

from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import pytest

from moksori.studio.jobs import child_main, last_metrics, read_log_tail
from moksori.training import load_checkpoint


def _run(client, run_id):
    response = client.get(f"/api/studio/training/{run_id}")
    assert response.status_code == 200, response.text
    return response.json()


def _start(client, voice, recipe):
    response = client.post(f"/api/studio/voices/{voice}/training", json={"recipe": recipe})
    assert response.status_code == 202, response.text
    return response.json()


def _ended(client, run_id):
    run = _run(client, run_id)
    return run if run["status"] not in ("queued", "running") else None


def _ready_voice(client, tools, spoken, name="지민"):
    voice = tools.new_voice(client, name)
    tools.upload_spoken(client, voice, spoken, 5)
    return voice


def test_training_run_builds_a_served_voice(site, client, tools, spoken):
    voice = _ready_voice(client, tools, spoken, name="jimin")
    recipes = client.get("/api/studio/recipes").json()
    # The operator's recipes beside the shipped ones; a vocoder-only recipe cannot make a voice.
    assert recipes["default"] == "tiny"
    assert {"tiny", "tiny_long", "tiny_resume", "tiny_two_stage", "glowtts_hifigan_ko", "default_ko"} <= set(recipes["recipes"])
    assert "tiny_hifigan" not in recipes["recipes"]
    run = _start(client, voice, "tiny")
    assert run["status"] in ("queued", "running") and run["recipe"] == "tiny"

    done = tools.wait_for(lambda: _ended(client, run["id"]), 120, "the run to end")
    assert done["status"] == "succeeded", done["log_tail"] + str(done["error"])
    assert done["progress"] == 1.0 and done["step"] == 15
    assert "== preprocess ==" in done["log_tail"] or "exported 5" in read_log_tail(_log(site, voice, run["id"]), 400)
    assert "voice bundle written to <voices>/studio-" in done["log_tail"]
    # The server's folders are not the user's to know.
    assert str(site.voices_dir) not in done["log_tail"] and str(site.voices_dir.resolve()) not in done["log_tail"]
    assert str(site.root) not in done["log_tail"] and str(site.root.resolve()) not in done["log_tail"]

    bundle = site.voices_dir / f"studio-{voice}"
    assert (bundle / "voice.json").is_file()
    card = json.loads((bundle / "voice.json").read_text(encoding="utf-8"))["data"]
    assert card["source"] == "studio recordings" and 0 < card["minutes"] < 5, card  # the kept takes' length
    listed = {v["name"]: v for v in client.get("/voices").json()["voices"]}
    assert listed["jimin"]["id"] == str(voice)
    assert client.get(f"/api/studio/voices/{voice}").json()["trained"] is True
    speech = client.get("/infer", params={"text": "안녕하세요", "voice": "jimin"})
    assert speech.status_code == 200 and speech.headers["content-type"] == "audio/wav"

    runs = client.get(f"/api/studio/voices/{voice}/training").json()["runs"]
    assert [r["id"] for r in runs] == [run["id"]]
    assert client.post(f"/api/studio/training/{run['id']}/cancel").status_code == 409  # already ended

    # Deleting the voice removes the trained bundle too, and /voices stops listing it.
    assert client.delete(f"/api/studio/voices/{voice}", params={"confirm": "jimin"}).status_code == 200
    assert not bundle.exists()
    assert "jimin" not in [v["name"] for v in client.get("/voices").json()["voices"]]


def test_two_stage_recipe_bundles_acoustic_model_and_vocoder(site, client, tools, spoken):
    voice = _ready_voice(client, tools, spoken, name="two-stage")
    run = _start(client, voice, "tiny_two_stage")
    done = tools.wait_for(lambda: _ended(client, run["id"]), 180, "the run to end")
    assert done["status"] == "succeeded", done["log_tail"] + str(done["error"])
    log = read_log_tail(_log(site, voice, run["id"]), 1000)
    assert "== train acoustic ==" in log and "== train vocoder ==" in log
    (info,) = [v for v in client.get("/voices").json()["voices"] if v["id"] == str(voice)]
    assert info["training"]["acoustic"]["step"] == 4 and info["training"]["vocoder"]["step"] == 2
    assert info["training"]["recipe"] == "tiny_two_stage"
    refused = client.post(f"/api/studio/voices/{voice}/training", json={"recipe": "vocoder_only"})
    assert refused.status_code == 400 and "unknown recipe" not in refused.json()["error"]["message"]
    assert "acoustic model first" in refused.json()["error"]["message"]


def _log(site, voice, run_id):
    return str(site.studio.data_dir / "voices" / str(voice) / "runs" / str(run_id) / "job.log")


def test_training_needs_enough_takes_and_a_known_recipe(client, tools, spoken):
    voice = tools.new_voice(client)
    tools.upload_spoken(client, voice, spoken, 2)
    too_few = client.post(f"/api/studio/voices/{voice}/training", json={"recipe": "tiny"})
    assert too_few.status_code == 409 and "at least 4 kept recordings" in too_few.json()["error"]["message"]
    tools.upload_spoken(client, voice, spoken[2:], 2)
    for recipe in ("nope", "../configs/tiny_glowtts", "/etc/passwd"):
        unknown = client.post(f"/api/studio/voices/{voice}/training", json={"recipe": recipe})
        assert unknown.status_code == 400 and "unknown recipe" in unknown.json()["error"]["message"]
    bad_base = client.post(f"/api/studio/voices/{voice}/training", json={"recipe": "tiny", "init_from_voice": "nobody"})
    assert bad_base.status_code == 400 and "not found" in bad_base.json()["error"]["message"]


def test_cancel_stops_the_training_child(site, client, tools, spoken):
    voice = _ready_voice(client, tools, spoken)
    run = _start(client, voice, "tiny_long")
    again = client.post(f"/api/studio/voices/{voice}/training", json={"recipe": "tiny"})
    assert again.status_code == 409 and "already training" in again.json()["error"]["message"]
    tools.wait_for(lambda: _run(client, run["id"])["step"] >= 2, 120, "training steps")

    cancelled = client.post(f"/api/studio/training/{run['id']}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    jobs = client.app.state.studio.jobs
    tools.wait_for(lambda: jobs.current_run is None, 30, "the runner to let go of the run")
    final = _run(client, run["id"])
    assert final["status"] == "cancelled" and final["step"] < 100000
    log = read_log_tail(_log(site, voice, run["id"]), 400)
    assert "cancelled by the user" in log and "the run stopped" in log
    # The child is gone: its metrics stop growing.
    stage_dir = site.studio.data_dir / "voices" / str(voice) / "runs" / str(run["id"]) / "train" / "model"
    step = last_metrics(stage_dir)["step"]
    time.sleep(1.5)
    assert last_metrics(stage_dir)["step"] == step
    assert not (site.voices_dir / f"studio-{voice}").exists()
    # The voice can train again.
    assert client.post(f"/api/studio/voices/{voice}/training", json={"recipe": "tiny_long"}).status_code == 202
    assert client.delete(f"/api/studio/voices/{voice}", params={"confirm": "지민"}).status_code == 200


def test_run_resumes_from_its_checkpoint_after_a_restart(site, tools, spoken):
    first = site.client()
    voice = _ready_voice(first, tools, spoken)
    run = _start(first, voice, "tiny_resume")
    tools.wait_for(lambda: _run(first, run["id"])["step"] >= 6, 120, "the first checkpoint")
    site.stop(first)  # the server shuts down: the child is stopped, the run stays "running"

    stage_dir = site.studio.data_dir / "voices" / str(voice) / "runs" / str(run["id"]) / "train" / "model"
    stopped_at = load_checkpoint(stage_dir)["step"]
    assert 5 <= stopped_at < 60

    second = site.client()
    assert _run(second, run["id"])["status"] in ("queued", "running")
    done = tools.wait_for(lambda: _ended(second, run["id"]), 120, "the resumed run to end")
    assert done["status"] == "succeeded", done["log_tail"]
    log = read_log_tail(_log(site, voice, run["id"]), 1000)
    assert "server stopping" in log and "server restarted: resuming" in log
    assert "data already prepared" in log
    resumed_from = int(re.search(r"resuming model from step (\d+)", log).group(1))
    assert resumed_from == stopped_at
    assert load_checkpoint(stage_dir)["step"] == 60
    assert str(voice) in [v["id"] for v in second.get("/voices").json()["voices"]]


@pytest.fixture
def clear_death_signal():
    """child_main sets a parent-death signal on the calling process (here: pytest); undo it."""
    yield
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, 0)  # PR_SET_PDEATHSIG, none


@pytest.fixture
def restore_torch_threads():
    import torch

    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_child_main_runs_the_training_stage_with_threads_set(monkeypatch, clear_death_signal, restore_torch_threads):
    import torch

    torch.set_num_threads(2)
    calls = []
    monkeypatch.setenv("MOKSORI_STUDIO_TRAIN_THREADS", "1")
    monkeypatch.setenv("MOKSORI_STUDIO_PARENT_PID", str(__import__("os").getppid()))
    # the training stage must already run with the thread count the studio asked for
    main = lambda argv: calls.append((argv, torch.get_num_threads())) or 0  # noqa: E731
    assert child_main(["train", "x.yaml"], main=main) == 0
    assert calls == [(["train", "x.yaml"], 1)]


def test_child_main_leaves_threads_alone_when_unset(monkeypatch, clear_death_signal, restore_torch_threads):
    import torch

    torch.set_num_threads(2)
    calls = []
    monkeypatch.delenv("MOKSORI_STUDIO_TRAIN_THREADS", raising=False)
    monkeypatch.setenv("MOKSORI_STUDIO_PARENT_PID", str(__import__("os").getppid()))
    assert child_main(["train", "x.yaml"], main=lambda argv: calls.append(torch.get_num_threads()) or 0) == 0
    assert calls == [2]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="parent-death signal is Linux only")
def test_child_exits_when_its_server_is_already_gone(monkeypatch, clear_death_signal):
    monkeypatch.setenv("MOKSORI_STUDIO_PARENT_PID", "1")  # not our parent: as if the server died
    calls = []
    with pytest.raises(SystemExit):
        child_main(["train", "x.yaml"], main=lambda argv: calls.append(argv) or 0)
    assert calls == []


def test_log_tail_and_metrics_readers(tmp_path: Path):
    assert read_log_tail(None) == "" and read_log_tail(str(tmp_path / "none.log")) == ""
    log = tmp_path / "job.log"
    log.write_text("".join(f"line {i}\n" for i in range(100)) + "bar 10%\rbar 20%\r")
    assert read_log_tail(str(log), 3).splitlines() == ["line 99", "bar 10%", "bar 20%"]
    assert last_metrics(tmp_path) is None
    (tmp_path / "metrics.jsonl").write_text('{"step": 4, "split": "train"}\n{"step": 4, "split": "val"}\n{"step": 5, "spl')
    assert last_metrics(tmp_path) == {"step": 4, "split": "train"}
