import json
import subprocess
import sys

import pytest

from moksori.cli import build_parser, main

SUBCOMMANDS = ["text", "sample-dataset", "preprocess", "train", "bundle", "export", "say", "finetune", "evaluate", "serve", "keys", "db", "bench", "demo", "models", "users"]


@pytest.mark.parametrize("command", SUBCOMMANDS)
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: moksori " + command in capsys.readouterr().out


def test_models_lists_every_registered_family_with_presets(capsys):
    from moksori.models import registry

    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for family in registry.families():
        line = next(line for line in out.splitlines() if line.startswith(family.name + " "))
        assert family.role in line and all(preset in line for preset in family.presets)
    assert "glow_tts" in out and "tiny 0.11M" in out  # Glow-TTS tiny's parameter count
    assert "glowtts_hifigan_ko" in out.split("recipes")[-1]


def test_console_script_runs():
    result = subprocess.run([sys.executable, "-m", "moksori.cli", "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.startswith("moksori ")


def test_text_reads_the_issue_sentence(capsys):
    assert main(["text", "오늘은 2026년 11월 21일, 사과 3개에 4,500원이에요."]) == 0
    out = capsys.readouterr().out
    assert "normalized: 오늘은 이천이십육 년 십일월 이십일 일, 사과 세 개에 사천오백 원이에요." in out
    assert "pronounced: " in out and "ids: " in out


def test_text_json_round_trips_ids(capsys):
    assert main(["text", "--json", "안녕하세요."]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["normalized"] == "안녕하세요."
    assert all(isinstance(i, int) for i in result["ids"]) and result["ids"]


def test_text_names_unreadable_characters(capsys):
    assert main(["text", "사과 🍎 주세요"]) == 2
    err = capsys.readouterr().err
    assert "🍎" in err and "error" in err


def test_text_rejects_empty_input(capsys):
    assert main(["text", "   "]) == 2
    assert "empty" in capsys.readouterr().err


def test_parser_requires_a_command():
    with pytest.raises(SystemExit):
        build_parser().parse_args([])


def test_demo_builds_preprocesses_and_reports(tmp_path, capsys):
    assert main(["demo", "--out", str(tmp_path), "--n", "4", "--train-steps", "0"]) == 0
    out = capsys.readouterr().out
    assert "clips" in out.lower()
    assert (tmp_path / "dataset" / "metadata.csv").is_file()
    manifest = (tmp_path / "preprocessed" / "manifest.jsonl").read_text(encoding="utf-8").splitlines()
    assert len(manifest) == 4


def test_demo_trains_and_speaks_in_both_voices(tmp_path, capsys):
    """The whole `make demo` path, with a few steps: the demo's `say` takes every option `say` has."""
    import soundfile

    assert main(["demo", "--out", str(tmp_path), "--n", "4", "--train-steps", "2"]) == 0
    for name in ("demo.wav", "default_voice.wav"):
        info = soundfile.info(str(tmp_path / name))
        assert info.samplerate == 22050 and info.duration > 0.3, (name, info.duration)
    assert "real-time factor" in capsys.readouterr().out


def test_sample_dataset_adds_extra_prompt_files(tmp_path, capsys):
    extra = tmp_path / "extra.tsv"
    extra.write_text("우리만의 특별한 문장입니다.\t14\n", encoding="utf-8")
    out = tmp_path / "set"
    # More clips than the built-in list has sentences: the extra file's sentence must be used.
    from moksori.data.prompt_sets import builtin_prompts

    n = len(builtin_prompts("ko")) + 1
    args = ["sample-dataset", "--n", str(n), "--out", str(out), "--extra-prompts", str(extra)]
    assert main(args) == 0
    assert "우리만의 특별한 문장입니다." in (out / "metadata.csv").read_text(encoding="utf-8")


def test_operator_creates_a_user_and_a_key_owned_by_them(tmp_path, monkeypatch, capsys):
    import io

    from moksori.store import Database
    from moksori.store.accounts import authenticate
    from moksori.store.keys import list_api_keys

    db_url = f"sqlite:///{tmp_path / 'm.db'}"
    monkeypatch.setattr(sys, "stdin", io.StringIO("a long enough password\n"))
    assert main(["users", "--db-url", db_url, "create", "Jimin", "--password-stdin"]) == 0
    assert "created user" in capsys.readouterr().out
    with Database(db_url) as db:
        user = authenticate(db, "jimin", "a long enough password")
    assert user is not None

    assert main(["keys", "--db-url", db_url, "create", "jimin-app", "--owner", "jimin"]) == 0
    with Database(db_url) as db:
        (key,) = list_api_keys(db)
    assert key.owner_id == user.id

    assert main(["keys", "--db-url", db_url, "create", "x", "--owner", "nobody"]) == 2
    assert "no user 'nobody'" in capsys.readouterr().err
    monkeypatch.setattr(sys, "stdin", io.StringIO("short\n"))
    assert main(["users", "--db-url", db_url, "create", "minho", "--password-stdin"]) == 2
    assert "password is too short" in capsys.readouterr().err


def test_export_says_when_the_vocoder_stays_in_pytorch(tmp_path, capsys):
    """A WaveNet vocoder has no single ONNX graph: `export --onnx` writes the acoustic graphs only
    and says so (its help promises vocoder.onnx)."""
    from moksori.bench.synth import _random_voice

    voice = _random_voice("glow_tts tiny + wavenet tiny", tmp_path)
    assert main(["export", str(voice), "--onnx"]) == 0
    captured = capsys.readouterr()
    assert "acoustic.onnx" in captured.out and not (voice / "vocoder.onnx").exists()
    assert "note: the wavenet vocoder has no ONNX graph; say and serve run it in PyTorch" in captured.err
