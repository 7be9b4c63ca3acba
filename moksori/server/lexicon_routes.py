"""The studio's routes for a voice's pronunciation lexicon (:mod:`moksori.text.lexicon`).

``GET/PUT/DELETE /api/studio/voices/{id}/lexicon`` and ``POST /api/studio/voices/{id}/lexicon/test``
go through the studio's guards: the same origin check and error handling as every studio route
(``_StudioRoute``), the signed-in caller (``Caller``; 401 where anonymous use is off), and
``check_voice``, which answers 404 for a voice that is not the caller's, so nobody reads or edits
another user's lexicon. The entries are stored in the database (``lexicon_entries``).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from moksori.server.errors import ApiError
from moksori.server.studio import Caller, Id, StudioDep, _StudioRoute
from moksori.text.lexicon import MAX_SPOKEN_CHARS, MAX_WRITTEN_CHARS, Lexicon, LexiconError

MAX_TEST_CHARS = 500

router = APIRouter(route_class=_StudioRoute, tags=["studio"])

class LexiconEntryBody(BaseModel):
    written: str = Field(min_length=1, max_length=MAX_WRITTEN_CHARS, description="the text as written, e.g. K-pop")
    spoken: str = Field(min_length=1, max_length=MAX_SPOKEN_CHARS, description="how to say it, e.g. 케이팝")


class LexiconTestBody(BaseModel):
    text: str = Field(min_length=1, max_length=MAX_TEST_CHARS)


def _entries_json(lexicon: Lexicon) -> dict[str, Any]:
    return {"entries": [{"written": w, "spoken": s} for w, s in sorted(lexicon.entries.items())]}


def _invalid(error: LexiconError) -> ApiError:
    return ApiError(400, "invalid_lexicon_entry", str(error))


@router.get("/api/studio/voices/{voice_id}/lexicon", summary="The voice's pronunciation lexicon")
def get_lexicon(voice_id: Id, studio: StudioDep, user: Caller) -> dict[str, Any]:
    from moksori.store.lexicon import load_lexicon

    studio.service.get_voice(voice_id, user)  # 404 unless it is the caller's voice
    return _entries_json(load_lexicon(studio.service.db, voice_id))


@router.put("/api/studio/voices/{voice_id}/lexicon", summary="Add an entry or change its spoken form")
def put_lexicon_entry(voice_id: Id, body: LexiconEntryBody, studio: StudioDep, user: Caller) -> dict[str, Any]:
    from moksori.store.lexicon import set_entry

    voice = studio.service.get_voice(voice_id, user)
    _check_readable(body.spoken, voice.language)
    try:
        written, spoken = set_entry(studio.service.db, voice_id, body.written, body.spoken)
    except LexiconError as error:
        raise _invalid(error) from None
    return {"written": written, "spoken": spoken}


def _check_readable(spoken: str, language: str) -> None:
    """400 for a spoken form the voice cannot read: stored, it would fail every request with the word."""
    from moksori.text import TextFrontend
    from moksori.text.errors import UnreadableTextError

    try:
        TextFrontend(language if language in ("ko", "en") else "ko").process(spoken, strict=True)
    except UnreadableTextError as error:  # punctuation alone (a pause) is fine
        raise ApiError(400, "invalid_lexicon_entry", f"the spoken form {spoken!r} cannot be read aloud: {error}") from None


@router.delete("/api/studio/voices/{voice_id}/lexicon", summary="Remove an entry")
def delete_lexicon_entry(
    voice_id: Id, studio: StudioDep, user: Caller,
    written: str = Query(min_length=1, max_length=MAX_WRITTEN_CHARS),
) -> dict[str, Any]:
    from moksori.store.lexicon import remove_entry

    studio.service.get_voice(voice_id, user)
    try:
        remove_entry(studio.service.db, voice_id, written)
    except LookupError as error:
        raise ApiError(404, "lexicon_entry_not_found", str(error.args[0])) from None
    return {"deleted": written.strip()}


@router.post("/api/studio/voices/{voice_id}/lexicon/test", summary="The text after the lexicon and normalisation")
async def test_lexicon(voice_id: Id, body: LexiconTestBody, studio: StudioDep, user: Caller) -> dict[str, Any]:
    return await run_in_threadpool(_test, studio, voice_id, user, body.text)


def _test(studio: Any, voice_id: int, user: int | None, text: str) -> dict[str, Any]:
    from moksori.store.lexicon import load_lexicon
    from moksori.text import TextFrontend

    voice = studio.service.get_voice(voice_id, user)
    from moksori.text.lexicon import load_global_lexicon, merge

    replaced = merge(load_global_lexicon(), load_lexicon(studio.service.db, voice_id)).apply(text)
    language = voice.language if voice.language in ("ko", "en") else "ko"
    try:
        result = TextFrontend(language).process(replaced, strict=True)
    except ValueError as error:  # unreadable characters, or nothing left to say
        raise ApiError(422, "invalid_text", str(error)) from None
    return {"lexicon": replaced, "normalized": result.normalized, "pronounced": result.pronounced}
