"""MOKSORI_STORAGE_ROOT: one folder shared by server instances and workers."""

from pathlib import Path

from moksori.storage import default_studio_dir, default_voices_dir, storage_root
from moksori.studio import StudioSettings


def test_without_a_root_the_defaults_stay(monkeypatch):
    monkeypatch.delenv("MOKSORI_STORAGE_ROOT", raising=False)
    monkeypatch.delenv("MOKSORI_SERVER_VOICES_DIR", raising=False)
    monkeypatch.delenv("MOKSORI_STUDIO_DATA_DIR", raising=False)
    assert storage_root() is None and default_studio_dir() is None
    assert default_voices_dir() == Path("voices")
    assert StudioSettings.from_env().data_dir is None  # beside the SQLite file, as before


def test_the_root_places_voices_and_studio_files_and_explicit_folders_win(monkeypatch, tmp_path):
    monkeypatch.setenv("MOKSORI_STORAGE_ROOT", str(tmp_path))
    monkeypatch.delenv("MOKSORI_SERVER_VOICES_DIR", raising=False)
    monkeypatch.delenv("MOKSORI_STUDIO_DATA_DIR", raising=False)
    assert default_voices_dir() == tmp_path / "voices"
    assert StudioSettings.from_env().data_dir == tmp_path / "studio"
    monkeypatch.setenv("MOKSORI_SERVER_VOICES_DIR", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("MOKSORI_STUDIO_DATA_DIR", str(tmp_path / "takes"))
    assert default_voices_dir() == tmp_path / "elsewhere"
    assert StudioSettings.from_env().data_dir == tmp_path / "takes"


def test_serve_uses_the_roots_voices_folder(monkeypatch, tmp_path):
    import moksori.server.run as run
    from moksori.cli import main

    monkeypatch.setenv("MOKSORI_STORAGE_ROOT", str(tmp_path))
    monkeypatch.delenv("MOKSORI_SERVER_VOICES_DIR", raising=False)
    seen = {}
    monkeypatch.setattr(run, "serve", lambda host, port, voices, **options: seen.update(voices=voices))
    assert main(["serve", "--port", "8123"]) == 0
    assert seen["voices"] == tmp_path / "voices"
    assert main(["serve", "--port", "8123", "--voices", str(tmp_path / "mine")]) == 0
    assert seen["voices"] == tmp_path / "mine"


def test_an_app_started_from_the_environment_uses_the_root(monkeypatch, tmp_path):
    from moksori.server import ServerSettings

    monkeypatch.setenv("MOKSORI_STORAGE_ROOT", str(tmp_path))
    assert ServerSettings.from_env({"MOKSORI_STORAGE_ROOT": str(tmp_path)}).voices_dir == tmp_path / "voices"
    explicit = {"MOKSORI_STORAGE_ROOT": str(tmp_path), "MOKSORI_SERVER_VOICES_DIR": str(tmp_path / "v")}
    assert ServerSettings.from_env(explicit).voices_dir == tmp_path / "v"
