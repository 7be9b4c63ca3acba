"""Studio voices' pronunciation lexicons in the database (``lexicon_entries`` rows).

Who may read or change a voice's lexicon is the caller's business (the studio routes check that
the voice is the caller's first); these functions only store and read.
"""

from __future__ import annotations

from sqlalchemy import delete, select

from moksori.store.database import Database
from moksori.store.models import LexiconEntry
from moksori.text.lexicon import MAX_ENTRIES, Lexicon, LexiconError, check_entry


def load_lexicon(database: Database, voice_id: int) -> Lexicon:
    """The voice's lexicon (empty when it has no entries)."""
    with database.session() as session:
        rows = session.scalars(select(LexiconEntry).where(LexiconEntry.voice_id == voice_id)).all()
        return Lexicon({row.written: row.spoken for row in rows})


def set_entry(database: Database, voice_id: int, written: str, spoken: str) -> tuple[str, str]:
    """Add the entry, or change the spoken form of an existing one; the checked entry."""
    written, spoken = check_entry(written, spoken)
    with database.session() as session:
        row = session.scalars(
            select(LexiconEntry).where(LexiconEntry.voice_id == voice_id, LexiconEntry.written == written)
        ).first()
        if row is not None:
            row.spoken = spoken
            return written, spoken
        count = len(session.scalars(select(LexiconEntry.id).where(LexiconEntry.voice_id == voice_id)).all())
        if count >= MAX_ENTRIES:
            raise LexiconError(f"the lexicon is full ({MAX_ENTRIES} entries)")
        session.add(LexiconEntry(voice_id=voice_id, written=written, spoken=spoken))
    return written, spoken


def remove_entry(database: Database, voice_id: int, written: str) -> None:
    """Remove the entry; LookupError naming it when the voice has none such."""
    with database.session() as session:
        result = session.execute(
            delete(LexiconEntry).where(LexiconEntry.voice_id == voice_id, LexiconEntry.written == written.strip())
        )
        if not result.rowcount:
            raise LookupError(f"the lexicon has no entry {written.strip()!r}")
