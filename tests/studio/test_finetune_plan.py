"""Fine-tuning from a voice in the studio: the plan (the base voice's architecture, the small-data
settings, an estimate), the refusal of a recipe that would drop most of the base voice's weights,
and the shipped recipes offered wherever the server runs. A whole fine-tune run from the shipped
voice, its log's tensor count asserted, is in test_pages_browser.py (from the page)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from moksori.recipes import RECIPES_DIR


@pytest.fixture(scope="module")
def finetune_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An operator's ``finetune_ko.yaml`` (it replaces the shipped one): 2 acoustic steps and no
    vocoder steps (the base voice's vocoder is kept), so a test run is short."""
    folder = tmp_path_factory.mktemp("finetune_recipes")
    recipe = yaml.safe_load((RECIPES_DIR / "finetune_ko.yaml").read_text())
    acoustic, vocoder = recipe["stages"]
    acoustic["train"].update(steps=2, checkpoint_interval=2, eval_interval=100000, warmup_steps=1)
    acoustic["data"]["batch_size"] = 2
    vocoder["train"]["steps"] = 0
    (folder / "finetune_ko.yaml").write_text(yaml.safe_dump(recipe))
    return folder


@pytest.fixture
def client(site_factory: Any, finetune_dir: Path) -> Any:
    site = site_factory(recipes_dir=finetune_dir, default_recipe="glowtts_hifigan_ko", train_threads=1)
    return site.client(include_default_voice=True)


def _voice_with_takes(client: Any, tools: Any, spoken: list, n: int = 4) -> int:
    voice = tools.new_voice(client, "미나")
    for result in tools.upload_spoken(client, voice, spoken, n):
        # Kept whatever the quality verdict: this test is about training, not about takes.
        recording = result["recording"]["id"]
        assert client.patch(f"/api/studio/recordings/{recording}", json={"kept": True}).status_code == 200
    return voice


def test_plan_fine_tunes_the_voice_own_architecture_and_refuses_a_mismatched_recipe(client, tools, spoken):
    voice = _voice_with_takes(client, tools, spoken)
    plan = client.get(f"/api/studio/voices/{voice}/training/plan", params={"init_from_voice": "ko_default"})
    assert plan.status_code == 200, plan.text
    body = plan.json()
    assert body["ok"] and body["kind"] == "finetune" and body["recipe"] == "finetune_ko"
    assert [s["model"] for s in body["stages"]] == ["glow_tts"]  # the shipped voice's model, 0 vocoder steps here
    assert body["stages"][0]["init_from"] and body["stages"][0]["lr"] == 0.05
    acoustic = body["weights"][0]
    assert acoustic["skipped"] == 0 and acoustic["loaded"] > 300
    assert body["estimate_s"] > 0 and "ko_default's vocoder as it is" in body["summary"]

    # The GPU-sized recipe builds a bigger Glow-TTS: most of the voice's tensors do not fit.
    mismatch = {"init_from_voice": "ko_default", "recipe": "glowtts_hifigan_ko"}
    refused = client.get(f"/api/studio/voices/{voice}/training/plan", params=mismatch).json()
    assert not refused["ok"] and refused["weights"][0]["skipped"] > refused["weights"][0]["loaded"]
    start = client.post(f"/api/studio/voices/{voice}/training", json=mismatch)
    assert start.status_code == 400, start.text
    error = start.json()["error"]
    assert error["code"] == "incompatible_base"
    assert re.search(r"only \d+ of its \d+ tensors fit", error["message"]) and "fine-tune from ko_default" in error["message"]
    assert client.get(f"/api/studio/voices/{voice}/training").json()["runs"] == []  # nothing was queued

    english = tools.new_voice(client, "Ann", language="en")
    wrong_language = client.get(f"/api/studio/voices/{english}/training/plan", params={"init_from_voice": "ko_default"})
    assert wrong_language.status_code == 400 and "speaks 'ko'" in wrong_language.json()["error"]["message"]
    unknown = client.get(f"/api/studio/voices/{voice}/training/plan", params={"init_from_voice": "nobody"})
    assert unknown.status_code == 400 and unknown.json()["error"]["code"] == "unknown_voice"


def test_shipped_recipes_are_offered_wherever_the_server_runs(client, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no configs/ folder here
    body = client.get("/api/studio/recipes").json()
    assert {"glowtts_hifigan_ko", "default_ko"} <= set(body["recipes"])
    assert body["finetune"] == "finetune_ko" and "finetune_ko" not in body["recipes"]
    assert body["default"] == "glowtts_hifigan_ko"


def test_without_any_recipe_the_studio_offers_none(site_factory, tmp_path, monkeypatch):
    import moksori.recipes

    monkeypatch.setattr(moksori.recipes, "RECIPES_DIR", tmp_path / "no-shipped-recipes")
    client = site_factory(recipes_dir=tmp_path / "empty").client()
    assert client.get("/api/studio/recipes").json() == {"recipes": [], "default": None, "finetune": None, "bases": []}


def test_fine_tune_settings_follow_the_base_voice_family(tmp_path):
    import json

    from moksori.recipes import available_recipes
    from moksori.studio.plans import pick_finetune_recipe
    from moksori.voices import default_voice_path

    recipes = available_recipes()
    assert pick_finetune_recipe(recipes, default_voice_path())[0] == "finetune_ko"  # Glow-TTS
    tacotron = tmp_path / "taco"
    tacotron.mkdir()
    fields = {"format": "moksori-voice-1", "name": "taco", "text_frontend": {}, "audio": {}, "vocoder": {}, "files": {},
              "acoustic": {"model_name": "tacotron2", "model_config": {}}}
    (tacotron / "voice.json").write_text(json.dumps(fields))
    assert pick_finetune_recipe(recipes, tacotron)[0] == "finetune_tacotron2_ko"
    assert pick_finetune_recipe({}, tacotron) is None


def test_plans_build_their_models_one_at_a_time(monkeypatch):
    """Each plan builds the recipe's models (a few hundred MB for a GPU-sized one): eight concurrent
    plan requests for different recipes held 2.8 GB at once."""
    import threading
    import time
    from concurrent.futures import ThreadPoolExecutor

    from moksori.studio import plans

    running, most = [0], [0]
    lock = threading.Lock()

    def slow_inspect(stages, base, base_json, language):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
        time.sleep(0.05)
        with lock:
            running[0] -= 1
        return [], 1.0

    monkeypatch.setattr(plans, "_inspect", slow_inspect)
    monkeypatch.setattr(plans, "_INSPECTED", {})
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: plans._inspect_cached([{"name": f"s{n}"}], None, None, "ko"), range(8)))
        list(pool.map(lambda n: plans._inspect_cached([{"name": "same"}], None, None, "ko"), range(8)))
    assert most[0] == 1


def test_a_signed_in_owner_is_offered_their_private_trained_voice_to_start_from(site_factory, finetune_dir):
    """The page's "Start from" list: ``/voices`` answers by API key, so a private voice of the
    signed-in owner (which the plan and the run accept) was never offered; the studio's own list is."""
    from sqlalchemy import update

    from moksori.store import Database, Voice
    from moksori.voices import default_voice_path

    site = site_factory(recipes_dir=finetune_dir)
    alice = site.client(include_default_voice=True)
    bob = site.client(include_default_voice=True)
    alice.post("/api/studio/account/signup", json={"username": "alice", "password": "correct horse"})
    bob.post("/api/studio/account/signup", json={"username": "bob", "password": "battery staple"})
    secret = alice.post("/api/studio/voices", json={"name": "비밀", "language": "ko", "private": True}).json()["id"]
    with Database(site.db_url) as db, db.session() as session:  # as a finished run leaves it: trained
        session.execute(update(Voice).where(Voice.id == secret).values(bundle_path=str(default_voice_path())))
        session.commit()
    own = alice.post("/api/studio/voices", json={"name": "둘째", "language": "ko"}).json()["id"]
    plan = alice.get(f"/api/studio/voices/{own}/training/plan", params={"init_from_voice": str(secret)})
    assert plan.status_code == 200, plan.text

    offered = {v["id"]: v for v in alice.get("/api/studio/recipes").json()["bases"]}
    assert str(secret) in offered and offered[str(secret)]["private"]
    assert str(secret) not in {v["id"] for v in bob.get("/api/studio/recipes").json()["bases"]}


def _recipe_plan(name: str, minutes: float, **train: Any) -> Any:
    from moksori.studio.plans import make_plan
    from moksori.training.pipeline import voice_stages

    stages = [{"name": s.name, "kind": s.role, "recipe": s.recipe.to_dict()}
              for s in voice_stages(RECIPES_DIR / f"{name}.yaml", where=name)]
    for stage in stages:
        stage["recipe"]["train"].update(train)
    return make_plan(stages, name, None, language="ko", minutes=minutes)


def test_the_estimate_of_a_tiny_run_counts_what_does_not_shrink_with_the_model():
    """A studio run of the shipped tiny_glowtts (300 steps) on 16 s of takes took 26.6 s from Start
    training to a voice on a 2-core CPU (plans.py says how it was measured); scaling the big model's
    step time by parameter count alone estimated 3 s. The estimate now counts the run's start, the
    per-step floor, validation passes and checkpoints."""
    plan = _recipe_plan("tiny_glowtts", 16 / 60)
    assert 26.6 / 2 <= plan.estimate_s <= 26.6 * 2, plan.estimate_s
    # Validating or checkpointing more often costs time that the parameter count does not show.
    more_evals = _recipe_plan("tiny_glowtts", 16 / 60, eval_interval=10)
    more_checkpoints = _recipe_plan("tiny_glowtts", 16 / 60, checkpoint_interval=10)
    assert more_evals.estimate_s - plan.estimate_s >= 27 * 1.0  # 30 passes instead of 3, about 1 s each
    assert more_checkpoints.estimate_s - plan.estimate_s >= 27 * 0.4
    # A tiny vocoder's step is not ~0 s either (tiny_hifigan measured 0.027 s a step, 20 steps 5.1 s).
    from moksori.studio.plans import stage_seconds
    from moksori.training.recipe import TrainRecipe

    twenty = TrainRecipe(steps=20, eval_interval=100000, checkpoint_interval=100000)
    assert 5.1 / 2 <= stage_seconds(twenty, 45_394, 4) <= 5.1 * 2
    # The big model's measured step stays what it was.
    thousand = TrainRecipe(steps=1000, eval_interval=100000, checkpoint_interval=100000)
    assert stage_seconds(thousand, 7_180_000, 8) == pytest.approx(1000 * 0.66, rel=0.02)
