"""The shipped default voice: resolving it, `moksori say` without --voice, and the server offering it.

The real ko_default bundle may be absent (a development checkout); these tests point
``moksori.voices.default_voice_path`` at a tiny random voice, or at an empty folder.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import soundfile

import moksori.voices as shipped
from moksori.bench.serve import build_tiny_voice
from moksori.cli import main
from moksori.server import ServerSettings, create_app
from moksori.server.voices import VoiceRegistry
from moksori.synthesis import VoiceError

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient


@pytest.fixture(scope="module")
def tiny_default(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random voice laid out like the shipped one (folder ko_default)."""
    return build_tiny_voice(tmp_path_factory.mktemp("package") / "ko_default", name="ko_default")


@pytest.fixture
def shipped_voice(monkeypatch: pytest.MonkeyPatch, tiny_default: Path) -> Path:
    monkeypatch.setattr(shipped, "default_voice_path", lambda: tiny_default)
    return tiny_default


@pytest.fixture
def no_shipped_voice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    missing = tmp_path / "package" / "ko_default"
    monkeypatch.setattr(shipped, "default_voice_path", lambda: missing)
    return missing


# --- resolve_voice ------------------------------------------------------------------------------


@pytest.mark.skipif(not shipped.default_voice_available(), reason="no shipped default voice in this checkout")
def test_the_real_shipped_voice_resolves_loads_and_speaks() -> None:
    import numpy as np

    from moksori.synthesis import Synthesizer

    path = shipped.resolve_voice(None)
    assert shipped.resolve_voice("default") == shipped.resolve_voice("ko_default") == path
    assert path.parent == Path(shipped.__file__).resolve().parent  # inside the package, not the cwd
    synthesizer = Synthesizer(path, use_onnx=False)
    assert synthesizer.voice.name == "ko_default" and synthesizer.sample_rate == 22050

    def spoken(text: str) -> tuple[float, np.ndarray]:
        wave = synthesizer.synthesize(text, seed=0)
        assert wave.dtype == np.float32 and wave.ndim == 1 and np.isfinite(wave).all()
        assert 0.05 < np.abs(wave).max() <= 1.0  # audible, not clipped
        frames = wave[: len(wave) // 256 * 256].reshape(-1, 256)
        loud = np.sqrt((frames**2).mean(axis=1)) > 0.01
        assert loud.mean() > 0.5, "mostly silence"
        return len(wave) / synthesizer.sample_rate, wave

    short, _ = spoken("안녕하세요.")  # 5 syllables
    long, _ = spoken("안녕하세요. 오늘 날씨가 참 좋네요.")  # 15 syllables
    assert 0.4 < short < 2.5 and 1.2 < long < 7.5  # about 3 to 12 syllables a second
    assert long > 2 * short


@pytest.mark.parametrize("spec", [None, "default", "ko_default"])
def test_default_names_resolve_to_the_shipped_voice(shipped_voice: Path, spec) -> None:
    assert shipped.resolve_voice(spec) == shipped_voice


def test_other_names_are_paths_unchanged(shipped_voice: Path, tmp_path: Path) -> None:
    assert shipped.resolve_voice("voices/mine") == Path("voices/mine")
    assert shipped.resolve_voice(tmp_path / "x") == tmp_path / "x"
    assert shipped.resolve_voice(Path("default_voice")) == Path("default_voice")


def test_missing_shipped_voice_is_a_clear_error(no_shipped_voice: Path) -> None:
    assert not shipped.default_voice_available()
    with pytest.raises(VoiceError, match="ships no default voice") as error:
        shipped.resolve_voice(None)
    assert "default_ko" in str(error.value) and str(no_shipped_voice) in str(error.value)
    assert shipped.resolve_voice("voices/mine") == Path("voices/mine")  # paths never need it


def test_voices_module_does_not_import_torch() -> None:
    code = "import sys, moksori.voices as v; v.default_voice_path(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_installed_package_finds_its_data_via_importlib_resources(tmp_path: Path) -> None:
    """Build a wheel from this checkout, install it by unpacking (a pure-Python wheel is just
    that) and, with that copy first on sys.path, find the shipped voice and the other package
    data through importlib.resources, as an installed moksori does wherever it runs."""
    import shutil
    import zipfile

    if not shipped.default_voice_available():
        pytest.skip("no shipped default voice in this checkout")
    root = Path(__file__).resolve().parents[1]
    source = tmp_path / "src"
    source.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        if (root / name).is_file():
            shutil.copy(root / name, source / name)
    shutil.copytree(root / "moksori", source / "moksori", ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.onnx"))
    build = [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "--no-build-isolation", "--no-index",
             "-w", str(tmp_path / "dist"), "-q"]  # fmt: skip
    subprocess.run(build, capture_output=True, text=True, check=True, cwd=tmp_path)
    (wheel,) = (tmp_path / "dist").glob("moksori-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)

    code = """
import json, sys
from importlib import resources
sys.path.insert(0, sys.argv[1])
import moksori.voices as voices
from moksori.data.prompt_sets import builtin_prompts
voice = resources.files("moksori.voices") / "ko_default"
print(json.dumps({
    "module": voices.__file__,
    "voice_files": sorted(entry.name for entry in voice.iterdir()),
    "voice_json": json.loads((voice / "voice.json").read_text("utf-8"))["name"],
    "default_path": str(voices.resolve_voice(None)),
    "available": voices.default_voice_available(),
    "prompts": [len(builtin_prompts("ko")), len(builtin_prompts("en"))],
    "finetune_recipe": (resources.files("moksori.recipes") / "finetune_ko.yaml").is_file(),
    "migration_template": (resources.files("moksori.store") / "migrations" / "script.py.mako").is_file(),
    "studio_page": any(resources.files("moksori.server").joinpath("static", "studio").iterdir()),
}))
"""
    result = subprocess.run([sys.executable, "-c", code, str(site)], capture_output=True, text=True, check=True, cwd=tmp_path)
    found = __import__("json").loads(result.stdout)
    installed = site / "moksori" / "voices"
    assert Path(found["module"]).resolve() == (installed / "__init__.py").resolve()  # not the checkout
    assert found["voice_files"] == ["README.md", "acoustic.pt", "vocoder.pt", "voice.json"]
    assert found["voice_json"] == "ko_default"
    assert Path(found["default_path"]).resolve() == (installed / "ko_default").resolve() and found["available"]
    for name in ("acoustic.pt", "vocoder.pt", "voice.json"):  # the weights themselves, byte for byte
        assert (installed / "ko_default" / name).read_bytes() == (shipped.default_voice_path() / name).read_bytes()
    assert found["prompts"] == [568, 228]
    assert found["finetune_recipe"] and found["migration_template"] and found["studio_page"]


# --- moksori say ----------------------------------------------------------------------------------


def test_say_without_voice_uses_the_shipped_voice(shipped_voice: Path, tmp_path: Path, capsys) -> None:
    out = tmp_path / "x.wav"
    assert main(["say", "안녕하세요", "-o", str(out), "--seed", "0", "--no-onnx"]) == 0
    assert soundfile.info(str(out)).duration > 0
    assert str(out) in capsys.readouterr().out


def test_say_voice_default_is_the_shipped_voice(shipped_voice: Path, tmp_path: Path) -> None:
    assert main(["say", "안녕하세요", "--voice", "default", "-o", str(tmp_path / "d.wav"), "--seed", "0"]) == 0
    assert (tmp_path / "d.wav").is_file()


def test_say_without_voice_and_without_shipped_voice_fails_clearly(no_shipped_voice: Path, tmp_path: Path, capsys) -> None:
    assert main(["say", "안녕하세요", "-o", str(tmp_path / "x.wav")]) == 2
    err = capsys.readouterr().err
    assert "ships no default voice" in err and "--voice" in err
    assert not (tmp_path / "x.wav").exists()


def test_say_help_mentions_the_default(capsys) -> None:
    with pytest.raises(SystemExit):
        main(["say", "--help"])
    assert "ko_default" in capsys.readouterr().out


# --- the server -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def folder_with_voice(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("voices")
    build_tiny_voice(root / "tiny", name="tiny", griffin_lim=True)
    return root


def test_registry_offers_the_shipped_voice_when_the_folder_is_missing(shipped_voice: Path, tmp_path: Path) -> None:
    registry = VoiceRegistry(tmp_path / "no_such_folder", include_default_voice=True)
    assert [info.id for info in registry.all_voices()] == ["ko_default"]
    assert registry.find(None, None).id == "ko_default"
    assert registry.find("ko_default", None).path == shipped_voice.resolve()


def test_registry_offers_it_beside_folder_voices_but_does_not_default_to_it(
    shipped_voice: Path, folder_with_voice: Path
) -> None:
    registry = VoiceRegistry(folder_with_voice, include_default_voice=True)
    assert sorted(info.id for info in registry.all_voices()) == ["ko_default", "tiny"]
    assert registry.find(None, None).id == "tiny"  # the folder's voice stays the default
    assert VoiceRegistry(folder_with_voice, default_voice="ko_default", include_default_voice=True).find(None, None).id == "ko_default"


def test_registry_keeps_a_folder_voice_named_ko_default(shipped_voice: Path, tmp_path: Path) -> None:
    build_tiny_voice(tmp_path / "ko_default", name="mine", griffin_lim=True)
    registry = VoiceRegistry(tmp_path, include_default_voice=True)
    (info,) = registry.all_voices()
    assert info.path == (tmp_path / "ko_default").resolve() and info.name == "mine"


def test_registry_without_the_shipped_voice_serves_the_folder(no_shipped_voice: Path, folder_with_voice: Path) -> None:
    registry = VoiceRegistry(folder_with_voice, include_default_voice=True)
    assert [info.id for info in registry.all_voices()] == ["tiny"]
    assert registry.find(None, None).id == "tiny"
    assert VoiceRegistry(no_shipped_voice.parent, include_default_voice=True).all_voices() == []


def test_registry_leaves_it_out_unless_asked(shipped_voice: Path, folder_with_voice: Path) -> None:
    assert [info.id for info in VoiceRegistry(folder_with_voice).all_voices()] == ["tiny"]


def test_server_lists_and_speaks_with_the_shipped_voice(shipped_voice: Path, tmp_path: Path) -> None:
    settings = ServerSettings(voices_dir=tmp_path / "empty", db_url=None, require_api_keys=False, include_default_voice=True)
    with TestClient(create_app(settings)) as client:
        body = client.get("/voices").json()
        assert [v["id"] for v in body["voices"]] == ["ko_default"] and body["default_voice"] == "ko_default"
        response = client.get("/infer", params={"text": "안녕하세요"})
        assert response.status_code == 200 and response.headers["content-type"].startswith("audio/wav")


def test_settings_carry_the_switch_to_workers() -> None:
    settings = ServerSettings(include_default_voice=True)
    assert ServerSettings.from_env(settings.to_env()).include_default_voice is True
    assert ServerSettings.from_env(ServerSettings().to_env()).include_default_voice is False


def test_moksori_serve_turns_the_shipped_voice_on(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import os

    from moksori.server import run

    started = {}
    monkeypatch.setattr(os, "environ", dict(os.environ))
    monkeypatch.setattr(run.uvicorn, "run", lambda *args, **kwargs: started.update(kwargs))
    assert main(["serve", "--voices", str(tmp_path / "none"), "--db-url", f"sqlite:///{tmp_path / 'db.sqlite'}"]) == 0
    assert started["factory"] is True
    assert ServerSettings.from_env(os.environ).include_default_voice is True
