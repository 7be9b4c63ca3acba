"""The command line's answers to common user mistakes: one line "moksori COMMAND: error: ...",
exit status 2, never a Python traceback; warnings without source paths; help text for every
option."""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import pytest

from moksori.cli import build_parser, main

# (argv, a phrase the one-line error must contain). {tmp} is a fresh folder.
MISTAKES = [
    (["train", "no_such_recipe"], "no recipe file no_such_recipe"),
    (["train", "tiny_glowtts", "--data-dir", "{tmp}/data", "--run-dir", "{tmp}/run", "--max-steps", "0"],
     "max_steps must be positive"),
    (["train", "tiny_glowtts", "--data-dir", "{tmp}/data", "--run-dir", "{tmp}/empty", "--resume"],
     "cannot resume: no latest.pt"),
    (["train", "tiny_glowtts", "--stage", "vocoder"], "has no stages"),
    (["say", "안녕", "--voice", "{tmp}/no_voice", "-o", "{tmp}/x.wav"], "voice folder not found"),
    (["say", "안녕", "-o", "{tmp}/data"], "data: is a folder; -o takes the file to write"),
    (["evaluate", "default", "--precision", "int8", "--json", "{tmp}/data"], "data: is a folder; --json takes the file"),
    (["text", "😀"], "cannot read '😀'"),
    (["preprocess", "{tmp}/no_dataset", "--out", "{tmp}/out"], "dataset not found"),
    (["sample-dataset", "--out", "{tmp}/s", "--n", "0"], "n must be at least 1"),
    (["sample-dataset", "--out", "/proc/moksori/s", "--n", "1"], "/proc/moksori"),
    (["bundle", "{tmp}/no_run", "--out", "{tmp}/v"], "checkpoint not found"),
    (["export", "{tmp}/no_voice"], "pass --onnx"),
    (["import", "no_such_model", "{tmp}/x.pt", "--out", "{tmp}/y.pt"], "unknown model 'no_such_model'"),
    (["finetune", "{tmp}/no_dataset"], "dataset not found"),
    (["lexicon", "remove", "없는말"], "no entry"),
    (["keys", "--db-url", "bogus://", "list"], "bogus"),
    (["db", "upgrade", "--db-url", "bogus://"], "bogus"),
]


@pytest.fixture
def tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("MOKSORI_LEXICON", str(tmp_path / "lexicon.json"))
    (tmp_path / "data").mkdir()
    return tmp_path


@pytest.mark.parametrize(("argv", "phrase"), MISTAKES, ids=[" ".join(a[:2]) for a, _ in MISTAKES])
def test_a_mistake_is_one_clear_line(argv, phrase, tmp, capsys):
    argv = [arg.replace("{tmp}", str(tmp)) for arg in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith(f"moksori {argv[0]}: error: ") and phrase in err[-1], err
    assert not any("Traceback" in line for line in err)


def test_train_into_a_used_run_folder_without_resume_says_so_without_a_traceback(tmp):
    """The issue's case, as a user runs it: a run folder that already holds a checkpoint."""
    run = tmp / "run"
    run.mkdir()
    (run / "latest.pt").write_bytes(b"")
    result = subprocess.run(
        [sys.executable, "-m", "moksori.cli", "train", "tiny_glowtts", "--data-dir", str(tmp / "data"),
         "--run-dir", str(run)], capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last == f"moksori train: error: {run} already holds checkpoints; resume it (--resume) or choose another run folder"


def test_a_bad_port_is_refused_by_the_parser(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--port", "99999"])
    assert exit_info.value.code == 2
    assert "a port is 1-65535, got 99999" in capsys.readouterr().err


def test_no_strict_prints_a_clean_warning(capsys):
    assert main(["text", "--no-strict", "안녕 😀"]) == 0
    captured = capsys.readouterr()
    assert captured.err.strip() == (
        "moksori text: warning: dropped characters that cannot be read aloud: '😀' (U+1F600) in '안녕 😀'")
    assert "normalized: 안녕" in captured.out


def _options(parser: argparse.ArgumentParser, path: str):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _options(sub, f"{path} {name}")
        elif not isinstance(action, (argparse._HelpAction, argparse._VersionAction)):
            yield path, action


def test_every_option_and_argument_has_help():
    missing = [f"{path} {'/'.join(a.option_strings) or a.dest}" for path, a in _options(build_parser(), "moksori")
               if not a.help]
    assert missing == []


def test_help_reads_for_users(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    top = capsys.readouterr().out
    assert "Korean and English text-to-speech" in top and "moksori serve" in top and "Thin:" not in top
    with pytest.raises(SystemExit):
        main(["serve", "--help"])
    serve = " ".join(capsys.readouterr().out.split())
    assert "port to listen on (default: 8000)" in serve


def test_a_style_reference_longer_than_the_servers_limit_is_refused_before_it_is_decoded(tmp, capsys):
    """say --style-ref reads a reference as the server does: a long recording is refused from its
    header, not decoded whole (a 10-minute one used 1.4 GB)."""
    import numpy as np
    import soundfile

    from moksori.synthesis.style_reference import MAX_REFERENCE_SECONDS

    path = tmp / "long.wav"
    rate = 8000
    soundfile.write(path, np.zeros(int((MAX_REFERENCE_SECONDS + 1) * rate), dtype=np.float32), rate)
    assert main(["say", "안녕", "--style-ref", str(path), "-o", str(tmp / "x.wav")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == (f"moksori say: error: {path}: the style reference is {MAX_REFERENCE_SECONDS + 1:.1f} s long; "
                       f"a style reference may be at most {MAX_REFERENCE_SECONDS:g} s")


def test_text_that_starts_with_a_minus_is_text_not_an_option(capsys):
    """argparse took "-5도" for an unknown option ("unrecognized arguments: -5도")."""
    assert main(["text", "-5도", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["normalized"] == "영하 오 도"
    assert main(["text", "--lang", "en", "-5 degrees", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["normalized"] == "minus five degrees"
    with pytest.raises(SystemExit):
        main(["text", "-x"])  # a real unknown option is still one


def test_preprocess_that_keeps_no_clip_fails_and_says_why(tmp, capsys):
    # `moksori preprocess … && moksori train …` must stop here, not at an empty train.jsonl.
    dataset = tmp / "recordings"
    dataset.mkdir()
    (dataset / "metadata.csv").write_text("a|안녕하세요.\nb|반갑습니다.\n", encoding="utf-8")
    assert main(["preprocess", str(dataset), "--out", str(tmp / "out"), "--workers", "1"]) == 2
    captured = capsys.readouterr()
    assert "2 rejected" in captured.out  # the report is still printed
    last = captured.err.strip().splitlines()[-1]
    assert last.startswith("moksori preprocess: error: no clip was kept") and "2 missing" in last
    assert str(tmp / "out" / "rejected.jsonl") in last


def test_a_folder_holding_a_filelist_names_it(tmp, capsys):
    dataset = tmp / "my_recordings"
    dataset.mkdir()
    (dataset / "train.txt").write_text("clips/a.wav|안녕하세요.\n", encoding="utf-8")
    assert main(["preprocess", str(dataset), "--out", str(tmp / "out")]) == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert f"pass the filelist itself: {dataset / 'train.txt'}" in last
