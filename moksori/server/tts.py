"""The speech endpoints: ``GET /infer``, ``POST /v1/audio/speech`` (OpenAI-compatible),
``POST /synthesize`` (optionally streamed), ``GET /voices``, ``GET /health``, ``GET /metrics``.

Routes only translate HTTP to calls: synthesis is the Synthesizer's, voices the registry's,
keys the store's. Every synthesis runs on the bounded pool, never on the event loop.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator, Iterator
from typing import Annotated, Any
from urllib.parse import quote

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool

from moksori.server.auth import Principal, authenticate, rate_limited
from moksori.server.cache import AudioCache, CachedAudio
from moksori.server.encode import (
    STREAM_FORMATS,
    AudioFormat,
    audio_format,
    encode,
    pcm16,
    streaming_wav_header,
)
from moksori.server.errors import ApiError
from moksori.server.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from moksori.server.state import ServerState, server_state
from moksori.server.voices import UnknownVoiceError, VoiceInfo
from moksori.synthesis import VoiceError
from moksori.synthesis.synthesizer import MAX_SPEED, MIN_SPEED
from moksori.text import UnreadableTextError

log = logging.getLogger(__name__)
router = APIRouter()

State = Annotated[ServerState, Depends(server_state)]
Caller = Annotated[Principal, Depends(authenticate)]
LimitedCaller = Annotated[Principal, Depends(rate_limited)]

# The voices OpenAI clients know; asked for one the server does not have, it uses its default.
OPENAI_VOICES = frozenset(
    {"alloy", "ash", "ballad", "coral", "echo", "fable", "nova", "onyx", "sage", "shimmer", "verse"}
)
# OpenAI's own cap on ``input``; /v1/audio/speech applies it (or max_text_chars, if lower).
OPENAI_MAX_INPUT_CHARS = 4096
AUDIO_RESPONSE = {200: {"content": {"audio/wav": {}, "audio/mpeg": {}, "audio/ogg": {}, "audio/pcm": {}}}}


class SpeechRequest(BaseModel):
    """The body of OpenAI's ``POST /v1/audio/speech``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"model": "tts-1", "input": "안녕하세요. 오늘 날씨가 좋네요.", "voice": "my-voice", "response_format": "mp3", "speed": 1.0}
            ]
        }
    )
    model: str = Field("tts-1", description="accepted for compatibility and ignored")
    input: str = Field(description=f"the text to speak, at most {OPENAI_MAX_INPUT_CHARS} characters")
    voice: str | None = Field(None, description="voice name or id; OpenAI voice names and omission use the default voice")
    response_format: str = Field("mp3", description="mp3, opus, wav, flac, pcm (16-bit little-endian) or ogg (Vorbis)")
    speed: float = Field(1.0, ge=MIN_SPEED, le=MAX_SPEED)
    instructions: str | None = Field(None, description="accepted for compatibility and ignored")


class SynthesizeRequest(BaseModel):
    """The body of ``POST /synthesize``."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"text": "첫 문장입니다. 두 번째 문장입니다. 마지막 문장입니다.", "voice": "my-voice", "speed": 1.0, "format": "wav", "stream": True}
            ]
        }
    )
    text: str = Field(description="the text to speak")
    voice: str | None = Field(None, description="voice name or id; the default voice when omitted")
    speed: float = Field(1.0, ge=MIN_SPEED, le=MAX_SPEED)
    format: str = Field("wav", description="wav or pcm when streaming; any /infer format otherwise")
    stream: bool = Field(False, description="send audio sentence by sentence as it is synthesised")


# --- endpoints -------------------------------------------------------------------------------


@router.get("/infer", responses=AUDIO_RESPONSE, summary="Text to speech (query string)")
async def infer(
    text: Annotated[str, Query(description="the text to speak", examples=["안녕하세요. 만나서 반갑습니다."])],
    principal: LimitedCaller,
    state: State,
    voice: Annotated[str | None, Query(description="voice name or id; the default voice when omitted")] = None,
    speed: Annotated[float, Query(ge=MIN_SPEED, le=MAX_SPEED)] = 1.0,
    format: Annotated[str, Query(description="wav, mp3, ogg, opus, flac or pcm")] = "wav",
) -> Response:
    return await _whole(state, principal, text, voice, speed, format)


@router.post("/v1/audio/speech", responses=AUDIO_RESPONSE, summary="OpenAI-compatible text to speech")
async def openai_speech(
    body: SpeechRequest,
    principal: LimitedCaller,
    state: State,
) -> Response:
    voice = body.voice
    if voice and voice.lower() in OPENAI_VOICES and not await _has_operator_voice(state, voice, principal):
        voice = None  # an OpenAI name means the default voice unless the operator has a voice of that name
    limit = min(state.settings.max_text_chars, OPENAI_MAX_INPUT_CHARS)
    return await _whole(state, principal, body.input, voice, body.speed, body.response_format, limit)


@router.post("/synthesize", responses=AUDIO_RESPONSE, summary="Text to speech, optionally streamed")
async def synthesize(
    body: SynthesizeRequest,
    request: Request,
    principal: LimitedCaller,
    state: State,
) -> Response:
    if not body.stream:
        return await _whole(state, principal, body.text, body.voice, body.speed, body.format)
    return await _streamed(request, state, principal, body.text, body.voice, body.speed, body.format)


@router.get("/voices", summary="The voices this caller may use")
async def voices(principal: Caller, state: State) -> dict[str, Any]:
    visible = await run_in_threadpool(state.voices.voices_for, principal.owner_id)
    try:
        default = (await run_in_threadpool(state.voices.find, None, principal.owner_id)).id
    except UnknownVoiceError:
        default = None
    return {"voices": [info.public_dict() for info in visible], "default_voice": default}


@router.get("/health", summary="Liveness and readiness (no key needed)")
async def health(state: State) -> JSONResponse:
    """No key needed, so it names no private voice: only public voices' names, private ones counted."""
    stats = state.pool.stats
    body: dict[str, Any] = {
        "status": "ok",
        "queue": {
            "running": stats.running,
            "waiting": stats.waiting,
            "max_concurrency": state.pool.max_concurrency,
            "max_queue": state.pool.max_queue,
        },
    }
    try:
        infos = await run_in_threadpool(state.voices.all_voices)
    except Exception as error:  # noqa: BLE001 - a broken database makes this instance unready, not dead
        log.warning("health check failed: %s", error)
        return JSONResponse({**body, "status": "unavailable", "problem": type(error).__name__}, status_code=503)
    in_memory = state.voices.loaded_paths()
    loaded = [info for info in infos if info.path in in_memory]
    body["voices"] = len(infos)
    body["loaded_voices"] = sorted(info.name for info in loaded if not info.is_private)
    body["loaded_private_voices"] = sum(info.is_private for info in loaded)
    return JSONResponse(body)


@router.get("/metrics", summary="Prometheus metrics")
async def metrics(principal: Caller, state: State) -> Response:
    return Response(state.metrics.render(), media_type=METRICS_CONTENT_TYPE)


# --- whole responses ---------------------------------------------------------------------------


async def _whole(
    state: ServerState, principal: Principal, text: str, voice: str | None, speed: float, format_name: str,
    max_chars: int | None = None,
) -> Response:
    _check_text(text, max_chars or state.settings.max_text_chars)
    fmt = _format(format_name)
    info = await _find_voice(state, voice, principal)
    key = AudioCache.key(text, f"{info.id}|{info.version}", speed, fmt.name)
    cached = state.cache.get(key)
    hit = cached is not None
    state.metrics.cache.labels("hit" if hit else "miss").inc()
    if cached is None:
        cached = await _run(state, info, _synthesize_job, state, info, text, speed, fmt)
        state.cache.put(key, cached)
    state.metrics.audio_seconds.labels(metric_voice(info)).inc(cached.seconds)
    headers = {"X-Voice": _header_name(info), "X-Audio-Seconds": f"{cached.seconds:.3f}", "X-Cache": "hit" if hit else "miss"}
    return Response(cached.body, media_type=cached.media_type, headers=headers)


def _synthesize_job(state: ServerState, info: VoiceInfo, text: str, speed: float, fmt: AudioFormat) -> CachedAudio:
    """Runs on a worker thread: load (once), synthesise, encode."""
    synthesizer = state.voices.synthesizer(info)
    started = time.perf_counter()
    wave = synthesizer.synthesize(text, speed=speed)
    body, sample_rate = encode(wave, synthesizer.sample_rate, fmt.name)
    state.metrics.synthesis_seconds.labels(metric_voice(info)).observe(time.perf_counter() - started)
    media_type = fmt.media_type if fmt.name != "pcm" else f"audio/pcm;rate={sample_rate}"
    return CachedAudio(body, media_type, len(wave) / synthesizer.sample_rate)


# --- streamed responses --------------------------------------------------------------------


async def _streamed(
    request: Request, state: ServerState, principal: Principal, text: str, voice: str | None, speed: float, format_name: str
) -> Response:
    _check_text(text, state.settings.max_text_chars)
    fmt = _format(format_name)
    if fmt.name not in STREAM_FORMATS:
        raise ApiError(400, "unsupported_format", f"format {fmt.name!r} cannot be streamed; use one of: {', '.join(STREAM_FORMATS)}")
    info = await _find_voice(state, voice, principal)

    def sentences() -> Iterator[bytes]:
        synthesizer = state.voices.synthesizer(info)
        return (pcm16(chunk) for chunk in synthesizer.stream(text, speed=speed))

    chunks = state.pool.stream(sentences)
    try:
        # The first sentence is awaited before answering, so bad text still gets its 4xx.
        first = await _translate_errors(anext(chunks), info)
    except StopAsyncIteration:
        first = b""
    sample_rate = info.sample_rate
    body = _stream_body(request, state, info, chunks, first, streaming_wav_header(sample_rate) if fmt.name == "wav" else b"")
    media_type = "audio/wav" if fmt.name == "wav" else f"audio/pcm;rate={sample_rate}"
    headers = {"X-Voice": _header_name(info), "X-Sample-Rate": str(sample_rate), "Cache-Control": "no-store"}
    return StreamingResponse(body, media_type=media_type, headers=headers)


async def _stream_body(
    request: Request, state: ServerState, info: VoiceInfo, chunks: AsyncIterator[bytes], first: bytes, header: bytes
) -> AsyncIterator[bytes]:
    sent = len(first)
    try:
        yield header + first
        async for chunk in chunks:
            if await request.is_disconnected():
                break
            sent += len(chunk)
            yield chunk
    finally:
        await chunks.aclose()  # stops the worker between sentences if the client left
        state.metrics.audio_seconds.labels(metric_voice(info)).inc(sent / 2 / info.sample_rate)


# --- shared steps ----------------------------------------------------------------------------


def _check_text(text: str, max_chars: int) -> None:
    if not text or not text.strip():
        raise ApiError(400, "empty_text", "the text is empty: nothing to say")
    if len(text) > max_chars:
        raise ApiError(413, "text_too_long", f"the text has {len(text)} characters; the limit is {max_chars}",
                       details={"limit": max_chars})


def _format(name: str) -> AudioFormat:
    try:
        return audio_format(name)
    except ValueError as error:
        raise ApiError(400, "unsupported_format", str(error)) from None


def metric_voice(info: VoiceInfo) -> str:
    """The ``voice`` label of metrics, which every key may read: an operator's public voice by
    name; private voices and studio voices (names chosen by users, unbounded in number) pooled."""
    if info.is_private:
        return "(private)"
    return "(studio)" if info.studio else info.name


def _header_name(info: VoiceInfo) -> str:
    # HTTP headers are latin-1: a Korean voice name goes percent-encoded (UTF-8), ASCII names unchanged.
    return quote(info.name, safe=" -_.()")


async def _find_voice(state: ServerState, voice: str | None, principal: Principal) -> VoiceInfo:
    try:
        return await run_in_threadpool(state.voices.find, voice, principal.owner_id)
    except UnknownVoiceError as error:
        if not error.available:
            raise ApiError(404, "no_voices", f"this server has no voices; put voice bundles into {state.settings.voices_dir}") from None
        raise ApiError(404, "voice_not_found", str(error), details={"available": error.available}) from None


async def _has_operator_voice(state: ServerState, voice: str, principal: Principal) -> bool:
    try:
        info = await run_in_threadpool(state.voices.find, voice, principal.owner_id)
    except UnknownVoiceError:
        return False
    return not info.studio


async def _run(state: ServerState, info: VoiceInfo, function: Any, *args: Any) -> Any:
    return await _translate_errors(state.pool.run(function, *args), info)


async def _translate_errors(awaitable: Any, info: VoiceInfo) -> Any:
    """Await a synthesis; turn what the Synthesizer raises into API errors."""
    try:
        return await awaitable
    except (ApiError, StopAsyncIteration):
        raise
    except UnreadableTextError as error:
        shown = ", ".join(f"{c!r} (U+{ord(c):04X})" for c in error.characters)
        raise ApiError(422, "unreadable_text", f"voice {info.name!r} cannot read these characters: {shown}",
                       details={"characters": error.characters}) from None
    except VoiceError as error:
        log.error("voice %s cannot be loaded: %s", info.path, error)
        raise ApiError(500, "voice_unusable", f"voice {info.name!r} cannot be loaded: {error}") from None
    except ValueError as error:
        raise ApiError(422, "invalid_text", str(error)) from None
    except Exception as error:
        log.exception("synthesis failed for voice %s", info.name)
        raise ApiError(500, "synthesis_failed", f"synthesis failed ({type(error).__name__}); the server is still running") from None
