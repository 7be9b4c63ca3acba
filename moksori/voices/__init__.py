"""Voices shipped inside the package, and how a command-line voice argument is resolved.

The default Korean voice lives in ``moksori/voices/ko_default/`` (voice.json, acoustic.pt,
vocoder.pt, README.md; package data, so an installed moksori has it too). It is built with
the ``default_ko`` recipe (``moksori/recipes/``); a development checkout may not have it yet.

:func:`resolve_voice` maps what a user typed to a voice folder: nothing, ``"default"`` or
``"ko_default"`` is the shipped voice, anything else is a path. Importing this module does not
import torch.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["DEFAULT_VOICE_ALIASES", "DEFAULT_VOICE_NAME", "default_voice_available", "default_voice_path", "resolve_voice"]

DEFAULT_VOICE_NAME = "ko_default"
# What `--voice` accepts for the shipped voice (besides leaving it out).
DEFAULT_VOICE_ALIASES = ("default", DEFAULT_VOICE_NAME)


def default_voice_path() -> Path:
    """The folder of the shipped default voice (it may be absent in a development checkout)."""
    return Path(__file__).resolve().parent / DEFAULT_VOICE_NAME


def default_voice_available() -> bool:
    """Whether the shipped default voice is present (its voice.json exists)."""
    return (default_voice_path() / "voice.json").is_file()


def resolve_voice(spec: str | Path | None) -> Path:
    """The voice folder that ``spec`` names.

    ``None``, ``"default"`` or ``"ko_default"`` → the shipped default voice (``VoiceError`` when
    this installation has none); anything else → ``Path(spec)``, unchanged (loading it reports
    what is wrong with it).
    """
    if spec is not None and str(spec) not in DEFAULT_VOICE_ALIASES:
        return Path(spec)
    path = default_voice_path()
    if not (path / "voice.json").is_file():
        from moksori.synthesis.bundle import VoiceError  # here: keeps this module free of torch

        raise VoiceError(
            f"this moksori ships no default voice (no voice.json in {path}). Build one with "
            f"the default_ko recipe (moksori/recipes/default_ko.yaml; its header lists the commands) and put the bundle "
            f"there, or name a voice folder with --voice VOICE_DIR"
        )
    return path
