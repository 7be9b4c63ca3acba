"""Pronunciation lexicons on the server.

:func:`voice_lexicon` is what the speech endpoints apply to a request's text before synthesis:
the global lexicon (``$MOKSORI_LEXICON`` of the server process), then the voice bundle's
``lexicon.json``, then, for a voice that is a database row, the row's entries (studio voices
are edited in the studio) — later ones win (:mod:`moksori.text.lexicon`).

The studio's routes to edit a voice's lexicon are in :mod:`moksori.server.lexicon_routes`.
"""

from __future__ import annotations

from pathlib import Path

from moksori.server.state import ServerState
from moksori.server.voices import VoiceInfo
from moksori.text.lexicon import Lexicon, effective_lexicon


def _database_lexicon(state: ServerState, info: VoiceInfo) -> Lexicon | None:
    """The entries of the database row ``info`` was served from, if it was served from one."""
    if state.database is None or not info.id.isdigit():
        return None
    from moksori.store.lexicon import load_lexicon
    from moksori.store.models import Voice as VoiceRow

    with state.database.session() as session:
        row = session.get(VoiceRow, int(info.id))
        bundle = None if row is None or row.bundle_path is None else Path(row.bundle_path).expanduser()
    if bundle is None:
        return None
    bundle = (bundle if bundle.is_absolute() else state.voices.voices_dir / bundle).resolve()
    if bundle != info.path:  # a folder voice whose name only looks like a row id
        return None
    return load_lexicon(state.database, int(info.id))


def voice_lexicon(state: ServerState, info: VoiceInfo) -> Lexicon:
    """Global, then the bundle's, then the database row's entries (blocking: run it on a thread)."""
    row_lexicon = _database_lexicon(state, info)
    return effective_lexicon(info.path, [row_lexicon] if row_lexicon else [])
