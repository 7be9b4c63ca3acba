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


def test_default_voice_path_is_inside_the_package() -> None:
    path = shipped.default_voice_path()
    assert path.name == shipped.DEFAULT_VOICE_NAME == "ko_default"
    assert path.parent == Path(shipped.__file__).resolve().parent


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
    assert "configs/default_ko.yaml" in str(error.value) and str(no_shipped_voice) in str(error.value)
    assert shipped.resolve_voice("voices/mine") == Path("voices/mine")  # paths never need it


def test_voices_module_does_not_import_torch() -> None:
    code = "import sys, moksori.voices as v; v.default_voice_path(); print('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"


def test_package_data_lists_the_shipped_voice() -> None:
    import tomllib

    pyproject = tomllib.loads((Path(__file__).resolve().parents[1] / "pyproject.toml").read_text("utf-8"))
    assert pyproject["tool"]["setuptools"]["package-data"]["moksori.voices"] == ["ko_default/*"]


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
